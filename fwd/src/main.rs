use clap::Parser;

/// fwd: the privileged datapath daemon.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    dirs: ipc::DirArgs,
    #[command(flatten)]
    ports: fwd::daemon::PortArgs,
    #[command(flatten)]
    datapath: fwd::daemon::DatapathArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    ipc::runtime::daemon_main("fwd", fwd::daemon::run(args.dirs.dirs(), args.ports, args.datapath))
}
