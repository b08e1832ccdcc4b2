use clap::Parser;

/// keyd: holds ipsec.secrets and performs the operations that need them.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    dirs: ipc::DirArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let code = ipc::runtime::daemon_main("keyd", keyd::daemon::run(args.dirs.dirs()));
    if keyd::daemon::RESTART_REQUESTED.load(std::sync::atomic::Ordering::SeqCst) {
        return std::process::ExitCode::from(ipc::runtime::EXIT_RESTART);
    }
    code
}
