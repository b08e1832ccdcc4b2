use ipc::supervisor::{SupervisorRequest, SupervisorResponse};
use clap::{ArgGroup, Parser, Subcommand};
use ipc::ctl::{CtlRequest, CtlResponse};
use ipsecctl::{compat, ike_view};
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
    /// Show the supervisor's and each daemon's state and the channels between them, then the IKE
    /// connections, ISAKMP/IKE SAs and IPsec SAs (with fwd's byte counters). Exit status 3 when
    /// the gateway is not running.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Only the daemons' health (no IKE state).
        #[arg(long)]
        daemons: bool,
        /// Only this connection (and its instances) in the IKE part.
        name: Option<String>,
    },
    /// Bytes and packets of each established IPsec SA.
    Trafficstatus {
        #[arg(long)]
        json: bool,
    },
    /// One support dump: versions, normalised config (no secrets), daemons, SAs (no keys),
    /// policies, routes, recent log lines.
    Barf,
    /// Negotiate a connection now (FreeS/WAN's `ipsec auto --up`).
    Up { name: String },
    /// Delete a connection's ISAKMP and IPsec SAs, telling the peer; its routes stay.
    Down { name: String },
    /// Load a connection of ipsec.conf into ikerd (without starting it).
    Add { name: String },
    /// Remove a connection from ikerd, tearing its SAs down.
    Delete { name: String },
    /// Read ipsec.conf again and replace this connection's definition in ikerd.
    Replace { name: String },
    /// Parse ipsec.conf and print the normalised connections (needs no running gateway).
    Checkconfig {
        /// Also say which end of each connection is this host.
        #[arg(long)]
        orient: bool,
    },
    /// Re-read ipsec.conf and apply what changed.
    Reload,
    /// Have keyd read ipsec.secrets again.
    Rereadsecrets,
    /// Make a new RSA key and print it as an ipsec.secrets block.
    Rsasigkey {
        #[arg(long, default_value_t = keyfmt::DEFAULT_BITS)]
        bits: usize,
        /// Allow keys shorter than 2048 bits (tests only).
        #[arg(long)]
        insecure: bool,
    },
    /// Print the public half of the host's RSA key as an ipsec.conf line.
    #[command(group(ArgGroup::new("side").required(true).args(["left", "right"])))]
    Showhostkey {
        #[arg(long)]
        left: bool,
        #[arg(long)]
        right: bool,
        /// Which key, by an ID listed for it in ipsec.secrets or by key id, if there are several.
        #[arg(long)]
        id: Option<String>,
    },
    /// Print N random bits as hex.
    Ranbits { bits: usize },
    /// Bring a manually keyed connection up (install its SAs and policies) or down (delete its
    /// SAs; its routed policies then drop its traffic until `unroute`). FreeS/WAN's
    /// `manual --up NAME` / `--down NAME` work too.
    Manual {
        #[arg(value_parser = ["up", "down"])]
        action: Option<String>,
        name: Option<String>,
        #[arg(long, value_name = "NAME")]
        up: Option<String>,
        #[arg(long, value_name = "NAME")]
        down: Option<String>,
    },
    /// Install a connection's policies and routes with no SA: its traffic is held (dropped, never
    /// sent in the clear) until SAs exist; passthrough/drop/reject conns get their shunt.
    Route { name: String },
    /// Remove a connection's SAs, policies and routes.
    Unroute { name: String },
    /// List the policies (FreeS/WAN's eroutes) with their packet counters.
    Eroute {
        #[arg(long)]
        json: bool,
    },
    /// SAs (without keys), policies, routes and drop counters.
    Look {
        #[arg(long)]
        json: bool,
    },
    /// SA keys for packet capture tools (root only): `--tcpdump-secrets` prints lines for
    /// `tcpdump -E` (or save them and use `-E "file NAME"`); with `--wireshark`, Wireshark's
    /// esp_sa table instead.
    #[command(group(ArgGroup::new("format").required(true).multiple(true).args(["tcpdump_secrets", "wireshark"])))]
    Sa {
        #[arg(long)]
        tcpdump_secrets: bool,
        #[arg(long)]
        wireshark: bool,
    },
    /// Apply a setkey(8) script (KAME / ipsec-tools): manual SAs and policies. The whole script is
    /// checked before anything is installed; `dump;` and `spddump;` print in setkey's layout.
    #[command(group(ArgGroup::new("input").required(true).args(["file", "stdin"])))]
    Setkey {
        /// Read the script from FILE.
        #[arg(short = 'f', value_name = "FILE")]
        file: Option<std::path::PathBuf>,
        /// Read the script from standard input.
        #[arg(short = 'c')]
        stdin: bool,
    },
    /// Convert another IPsec stack's configuration into ipsec.conf (and ipsec.secrets).
    Import {
        #[command(subcommand)]
        what: Import,
    },
    /// Run the supervisor in the foreground (what `start` forks).
    #[command(hide = true)]
    Supervise,
}

#[derive(Subcommand)]
enum Import {
    /// A setkey script's SAs and policies as manually keyed conns (`auto=manual`).
    Setkey {
        file: std::path::PathBuf,
        /// Write ipsec.conf into DIR instead of standard output.
        #[arg(short = 'o', long, value_name = "DIR")]
        output: Option<std::path::PathBuf>,
    },
    /// A racoon configuration (racoon.conf, its psk.txt and the `spdadd … require` policies that
    /// tell racoon what to negotiate) as IKEv1 conns and their secrets.
    Racoon {
        #[arg(long, value_name = "FILE")]
        racoon_conf: std::path::PathBuf,
        #[arg(long, value_name = "FILE")]
        psk: std::path::PathBuf,
        #[arg(long, value_name = "FILE")]
        setkey: Option<std::path::PathBuf>,
        /// Write ipsec.conf and ipsec.secrets (0600) into DIR instead of standard output.
        #[arg(short = 'o', long, value_name = "DIR")]
        output: Option<std::path::PathBuf>,
    },
}

type Outcome = Result<(String, ExitCode), String>;

fn ok(s: String) -> Outcome {
    Ok((s, ExitCode::SUCCESS))
}

async fn ctl(dirs: &ipc::Dirs, req: CtlRequest) -> Result<CtlResponse, String> {
    match ipsecctl::commands::ctl_call(dirs, req).await {
        Ok(CtlResponse::PermissionDenied(m)) | Ok(CtlResponse::Error(m)) => Err(m),
        Ok(r) => Ok(r),
        Err(e) => Err(e.to_string()),
    }
}

async fn run(verb: Verb, dirs: ipc::Dirs) -> Outcome {
    match verb {
        Verb::Start => ipsecctl::commands::start(&dirs).await.and_then(ok),
        Verb::Stop => ipsecctl::commands::stop(&dirs).await.and_then(ok),
        Verb::Status {
            json,
            daemons,
            name,
        } => {
            // `ctlstatus=group`: status is for root and the operators' group only.
            if let Ok(SupervisorResponse::PermissionDenied(m)) =
                ipsecctl::commands::supervisor_call(&dirs, SupervisorRequest::Status).await
            {
                return Err(m);
            }
            let v = ipsecctl::commands::status(&dirs).await;
            // Like `ipsec status` scripts expect: exit 3 when not running.
            let code = if v.running {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            };
            let ike =
                if v.running && !daemons {
                    Some(ike_status(&dirs, CtlRequest::IkeStatus).await.map(
                        |(r, look)| match &name {
                            Some(n) => (ike_view::filter(&r, n), look),
                            None => (r, look),
                        },
                    ))
                } else {
                    None
                };
            let text = if json {
                let mut doc = serde_json::to_value(&v).map_err(|e| e.to_string())?;
                if let (Some(ike), Some(obj)) = (&ike, doc.as_object_mut()) {
                    let (view, error) = match ike {
                        Ok((r, look)) => (
                            serde_json::to_value(ike_view::ike_view(r, look.as_ref()))
                                .map_err(|e| e.to_string())?,
                            serde_json::Value::Null,
                        ),
                        Err(e) => (serde_json::Value::Null, e.clone().into()),
                    };
                    obj.insert("ike".into(), view);
                    obj.insert("ike_error".into(), error);
                }
                serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
            } else {
                let mut text = ipsecctl::status_view::render_text(&v)
                    .trim_end()
                    .to_string();
                match &ike {
                    Some(Ok((r, look))) => {
                        text.push_str("\n\n");
                        text.push_str(&ike_view::status_text(r, look.as_ref()));
                    }
                    Some(Err(e)) => text.push_str(&format!("\n\nIKE: not available: {e}")),
                    None => {}
                }
                text
            };
            Ok((text, code))
        }
        Verb::Trafficstatus { json } => {
            let (r, look) = ike_status(&dirs, CtlRequest::TrafficStatus).await?;
            let t = ike_view::traffic(&r, look.as_ref());
            if json {
                serde_json::to_string_pretty(&t)
                    .map_err(|e| e.to_string())
                    .and_then(ok)
            } else {
                ok(ike_view::traffic_text(&t))
            }
        }
        Verb::Barf => match ctl(&dirs, CtlRequest::Barf).await? {
            CtlResponse::Barf(text) => ok(text.trim_end().to_string()),
            other => Err(format!("unexpected answer: {other:?}")),
        },
        Verb::Up { name } => done(ctl(&dirs, CtlRequest::Up(name)).await?),
        Verb::Down { name } => done(ctl(&dirs, CtlRequest::Down(name)).await?),
        Verb::Add { name } => done(ctl(&dirs, CtlRequest::Add(name)).await?),
        Verb::Delete { name } => done(ctl(&dirs, CtlRequest::Delete(name)).await?),
        Verb::Replace { name } => done(ctl(&dirs, CtlRequest::Replace(name)).await?),
        Verb::Checkconfig { orient } => {
            match ipsecctl::config::checkconfig(&dirs.ipsec_conf(), orient) {
                Ok((text, warnings)) => {
                    for w in warnings {
                        eprintln!("warning: {w}");
                    }
                    ok(text.trim_end().to_string())
                }
                Err(errors) => Err(errors.join("\n")),
            }
        }
        Verb::Reload => match ctl(&dirs, CtlRequest::Reload).await? {
            CtlResponse::Reloaded(s) => {
                for w in &s.warnings {
                    eprintln!("warning: {w}");
                }
                ok(format!(
                    "reloaded: {} added, {} removed, {} modified{}",
                    s.added.len(),
                    s.removed.len(),
                    s.modified.len(),
                    [
                        ("added", &s.added),
                        ("removed", &s.removed),
                        ("modified", &s.modified)
                    ]
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| format!("\n{k}: {}", v.join(" ")))
                    .collect::<String>()
                ))
            }
            CtlResponse::ReloadFailed(errors) => Err(format!(
                "{}\nipsec.conf not reloaded; the running configuration is unchanged",
                errors.join("\n")
            )),
            other => Err(format!("unexpected answer: {other:?}")),
        },
        Verb::Rereadsecrets => match ctl(&dirs, CtlRequest::RereadSecrets).await? {
            CtlResponse::SecretsLoaded(s) => {
                for w in &s.warnings {
                    eprintln!("warning: {w}");
                }
                ok(format!(
                    "{}: {} PSK, {} RSA keys",
                    s.file, s.psks, s.rsa_keys
                ))
            }
            other => Err(format!("unexpected answer: {other:?}")),
        },
        Verb::Showhostkey { left, id, .. } => match ctl(&dirs, CtlRequest::HostKeys).await? {
            CtlResponse::HostKeys(keys) => {
                let key = ipsecctl::keys::choose(&keys, id.as_deref())?;
                ipsecctl::keys::showhostkey(key, if left { "left" } else { "right" }).and_then(ok)
            }
            other => Err(format!("unexpected answer: {other:?}")),
        },
        Verb::Rsasigkey { bits, insecure } => ipsecctl::keys::rsasigkey(bits, insecure)
            .map(|s| (s.trim_end().to_string(), ExitCode::SUCCESS)),
        Verb::Ranbits { bits } => {
            if bits == 0 || bits > 65536 {
                return Err("ranbits takes a number of bits from 1 to 65536".into());
            }
            ok(keyfmt::ranbits(bits).to_string())
        }
        Verb::Manual {
            action,
            name,
            up,
            down,
        } => {
            let req = ipsecctl::commands::manual_request(
                action.as_deref(),
                name.as_deref(),
                up.as_deref(),
                down.as_deref(),
            )?;
            done(ctl(&dirs, req).await?)
        }
        Verb::Setkey { file, stdin } => {
            let (name, script) = ipsecctl::import::read_input(file.as_deref(), stdin)?;
            match ipsecctl::commands::ctl_call(&dirs, CtlRequest::Setkey { file: name, script }).await {
                Ok(CtlResponse::Done(lines)) => ok(lines.join("\n")),
                Ok(CtlResponse::SetkeyFailed(errors)) => Err(errors.join("\n")),
                Ok(CtlResponse::PermissionDenied(m) | CtlResponse::Error(m)) => Err(m),
                Ok(other) => Err(format!("unexpected answer: {other:?}")),
                Err(e) => Err(e.to_string()),
            }
        }
        Verb::Import { what } => match what {
            Import::Setkey { file, output } => ipsecctl::import::setkey(&file, output.as_deref()).and_then(ok),
            Import::Racoon { racoon_conf, psk, setkey, output } => {
                ipsecctl::import::racoon(&racoon_conf, &psk, setkey.as_deref(), output.as_deref()).and_then(ok)
            }
        },
        Verb::Route { name } => done(ctl(&dirs, CtlRequest::Route(name)).await?),
        Verb::Unroute { name } => done(ctl(&dirs, CtlRequest::Unroute(name)).await?),
        Verb::Eroute { json } => {
            let look = look(&dirs).await?;
            if json {
                serde_json::to_string_pretty(&ipsecctl::sa_view::eroute_json(&look))
                    .map_err(|e| e.to_string())
                    .and_then(ok)
            } else {
                ok(ipsecctl::sa_view::eroute_text(&look))
            }
        }
        Verb::Look { json } => {
            let look = look(&dirs).await?;
            if json {
                serde_json::to_string_pretty(&ipsecctl::sa_view::look_json(&look))
                    .map_err(|e| e.to_string())
                    .and_then(ok)
            } else {
                ok(ipsecctl::sa_view::look_text(&look))
            }
        }
        Verb::Sa { wireshark, .. } => match ctl(&dirs, CtlRequest::SaSecrets).await? {
            CtlResponse::SaSecrets(secrets) => {
                let out = if wireshark {
                    ipsecctl::sa_view::wireshark_esp_sa(&secrets)
                } else {
                    ipsecctl::sa_view::tcpdump_secrets(&secrets)
                };
                use std::io::Write as _;
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(out.expose())
                    .and_then(|()| stdout.flush())
                    .map_err(|e| format!("stdout: {e}"))?;
                ok(String::new())
            }
            other => Err(format!("unexpected answer: {other:?}")),
        },
        Verb::Supervise => ok(String::new()),
    }
}

/// The lines of a `Done` answer.
fn done(r: CtlResponse) -> Outcome {
    match r {
        CtlResponse::Done(lines) => ok(lines.join("\n")),
        other => Err(format!("unexpected answer: {other:?}")),
    }
}

/// ikerd's report and fwd's listing (when fwd answered), through confd.
async fn ike_status(
    dirs: &ipc::Dirs,
    req: CtlRequest,
) -> Result<(ipc::ike::IkeStatusReport, Option<ipc::policy::Look>), String> {
    match ctl(dirs, req).await? {
        CtlResponse::IkeStatus { ike, look } => Ok((ike, look)),
        other => Err(format!("unexpected answer: {other:?}")),
    }
}

async fn look(dirs: &ipc::Dirs) -> Result<ipc::policy::Look, String> {
    match ctl(dirs, CtlRequest::Look).await? {
        CtlResponse::Look(l) => Ok(l),
        other => Err(format!("unexpected answer: {other:?}")),
    }
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.first().is_some_and(|a| compat::is_ipsec(a)) {
        let args: Vec<String> = argv
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return match compat::translate(&args) {
            compat::Compat::Say { text, code } => {
                use std::io::Write as _;
                let _ = if code == 0 {
                    writeln!(std::io::stdout().lock(), "{text}")
                } else {
                    writeln!(std::io::stderr().lock(), "{text}")
                };
                ExitCode::from(code)
            }
            compat::Compat::Run(cmds) => {
                for cmd in cmds {
                    let line = std::iter::once("ipsecctl".to_string()).chain(cmd);
                    let (code, success) = run_cli(Cli::parse_from(line));
                    if !success {
                        return code;
                    }
                }
                ExitCode::SUCCESS
            }
        };
    }
    run_cli(Cli::parse()).0
}

/// Run one parsed command line: its exit status, and whether that is success.
fn run_cli(cli: Cli) -> (ExitCode, bool) {
    let dirs = cli.dirs.dirs();
    if matches!(cli.verb, Verb::Supervise) {
        return (
            ipc::runtime::daemon_main("supervisor", ipsecctl::supervisor::run(dirs)),
            false,
        );
    }
    match ipc::runtime::run_local(run(cli.verb, dirs)) {
        Ok(Ok((msg, code))) => {
            if !msg.is_empty() {
                // a reader that stops early (`ipsecctl barf | head`) is no error
                use std::io::Write as _;
                let _ = writeln!(std::io::stdout().lock(), "{msg}");
            }
            let success = code == ExitCode::SUCCESS;
            (code, success)
        }
        Ok(Err(e)) => {
            eprintln!("ipsecctl: {e}");
            (ExitCode::FAILURE, false)
        }
        Err(e) => {
            eprintln!("ipsecctl: cannot start: {e}");
            (ExitCode::FAILURE, false)
        }
    }
}
