use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// ipsecctl: control a ferroswan IPsec gateway.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    dirs: ipc::DirArgs,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Start the gateway: a supervisor and its four daemons; returns once all are ready.
    Start,
    /// Stop the gateway.
    Stop,
    /// Show the supervisor's and each daemon's state and the channels between them.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run the supervisor in the foreground (what `start` forks).
    #[command(hide = true)]
    Supervise,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dirs = cli.dirs.dirs();
    if matches!(cli.verb, Verb::Supervise) {
        return ipc::runtime::daemon_main("supervisor", ipsecctl::supervisor::run(dirs));
    }
    let res = ipc::runtime::run_local(async move {
        match cli.verb {
            Verb::Start => ipsecctl::commands::start(&dirs)
                .await
                .map(|m| (m, ExitCode::SUCCESS)),
            Verb::Stop => ipsecctl::commands::stop(&dirs)
                .await
                .map(|m| (m, ExitCode::SUCCESS)),
            Verb::Status { json } => {
                let v = ipsecctl::commands::status(&dirs).await;
                // Like `ipsec status` scripts expect: exit 3 when not running.
                let code = if v.running {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                };
                let text = if json {
                    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
                } else {
                    ipsecctl::status_view::render_text(&v)
                        .trim_end()
                        .to_string()
                };
                Ok((text, code))
            }
            Verb::Supervise => Ok((String::new(), ExitCode::SUCCESS)),
        }
    });
    match res {
        Ok(Ok((msg, code))) => {
            if !msg.is_empty() {
                println!("{msg}");
            }
            code
        }
        Ok(Err(e)) => {
            eprintln!("ipsecctl: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ipsecctl: {e}");
            ExitCode::FAILURE
        }
    }
}
