use clap::Parser;

/// confd: loads ipsec.conf, pushes connections to ikerd and fwd, serves the control socket.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    dirs: ipc::DirArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    ipc::runtime::daemon_main("confd", confd::daemon::run(args.dirs.dirs()))
}
