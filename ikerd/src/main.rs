use clap::Parser;

/// ikerd: the unprivileged IKE daemon.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    dirs: ipc::DirArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    ipc::runtime::daemon_main("ikerd", ikerd::daemon::run(args.dirs.dirs()))
}
