//! confd's wiring: links to keyd, fwd and ikerd; serves the operator's control socket, authorising
//! every request by SO_PEERCRED (the socket is 0666: its mode never decides).

use ipc::client::Link;
use ipc::ctl::{CtlChannel, CtlRequest, CtlResponse, DaemonReport, ReloadSummary};
use ipc::fwd::{FwdChannel, FwdRequest, FwdResponse};
use ipc::ikerd::{IkerdChannel, IkerdRequest, IkerdResponse};
use ipc::keyd::{KeydChannel, KeydRequest, KeydResponse};
use ipc::peer::Authz;
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::status::DaemonStatus;
use ipc::{Dirs, IpcError, Role};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::conf::{self, Config, GroupAction, Orientation};

/// How long confd waits for a peer daemon's answer before reporting it unreachable.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Confd {
    dirs: Dirs,
    /// The running configuration: the last one that loaded without errors.
    config: RefCell<Config>,
    /// Why the last load failed, if it did (shown in status until a load succeeds).
    config_error: RefCell<Option<String>>,
    server: Rc<Server<CtlChannel>>,
    keyd: Link<KeydChannel>,
    fwd: Link<FwdChannel>,
    ikerd: Link<IkerdChannel>,
}

/// Whether a control request changes state (and so needs root or the admin group).
pub fn changes_state(req: &CtlRequest) -> bool {
    match req {
        CtlRequest::Ping | CtlRequest::Status | CtlRequest::HostKeys | CtlRequest::Look => false,
        CtlRequest::Reload
        | CtlRequest::RereadSecrets
        | CtlRequest::ManualUp(_)
        | CtlRequest::ManualDown(_)
        | CtlRequest::Route(_)
        | CtlRequest::Unroute(_)
        | CtlRequest::SaSecrets => true,
    }
}

fn report(role: Role, answer: Result<Option<DaemonStatus>, IpcError>) -> DaemonReport {
    match answer {
        Ok(Some(s)) => DaemonReport::Ok(s),
        Ok(None) => DaemonReport::Unreachable {
            role,
            reason: "unexpected answer to Status".into(),
        },
        Err(e) => DaemonReport::Unreachable {
            role,
            reason: e.to_string(),
        },
    }
}

impl Confd {
    fn own_status(&self) -> DaemonStatus {
        let mut s = ipc::runtime::own_status(Role::Confd);
        s.clients = self.server.clients();
        s.links = vec![self.keyd.report(), self.fwd.report(), self.ikerd.report()];
        s.notes = config_notes(
            &self.dirs,
            &self.config.borrow(),
            self.config_error.borrow().as_deref(),
        );
        s
    }

    /// `ipsecctl reload`: load anew; on success swap in the new config and say what changed.
    fn reload(&self) -> CtlResponse {
        let path = self.dirs.ipsec_conf();
        match conf::load(&path) {
            Ok((new, warnings)) => {
                let warnings: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                let d = conf::diff(&self.config.borrow(), &new);
                tracing::info!(
                    "reloaded {}: added {:?}, removed {:?}, modified {:?}",
                    path.display(),
                    d.added,
                    d.removed,
                    d.modified
                );
                orient_all(&new);
                *self.config.borrow_mut() = new;
                *self.config_error.borrow_mut() = None;
                CtlResponse::Reloaded(ReloadSummary {
                    added: d.added,
                    removed: d.removed,
                    modified: d.modified,
                    warnings,
                })
            }
            Err(errors) => {
                let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                for e in &errors {
                    tracing::error!("{e}");
                }
                tracing::error!(
                    "reload of {} refused; the running configuration is unchanged",
                    path.display()
                );
                CtlResponse::ReloadFailed(errors)
            }
        }
    }

    async fn keyd_call(&self, req: KeydRequest) -> CtlResponse {
        match self.keyd.call(req, PEER_TIMEOUT).await {
            Ok((KeydResponse::SecretsLoaded(s), _)) => CtlResponse::SecretsLoaded(s),
            Ok((KeydResponse::HostKeys(k), _)) => CtlResponse::HostKeys(k),
            Ok((KeydResponse::Error(e) | KeydResponse::Denied(e), _)) => {
                CtlResponse::Error(format!("keyd: {e}"))
            }
            Ok((other, _)) => CtlResponse::Error(format!("keyd answered {other:?}")),
            Err(e) => CtlResponse::Error(e.to_string()),
        }
    }

    async fn status(&self) -> Vec<DaemonReport> {
        let keyd = self
            .keyd
            .call(KeydRequest::Status, PEER_TIMEOUT)
            .await
            .map(|(r, _)| match r {
                KeydResponse::Status(s) => Some(s),
                _ => None,
            });
        let ikerd = self
            .ikerd
            .call(IkerdRequest::Status, PEER_TIMEOUT)
            .await
            .map(|(r, _)| match r {
                IkerdResponse::Status(s) => Some(s),
                _ => None,
            });
        let fwd = self
            .fwd
            .call(FwdRequest::Status, PEER_TIMEOUT)
            .await
            .map(|(r, _)| match r {
                FwdResponse::Status(s) => Some(s),
                _ => None,
            });
        vec![
            report(Role::Keyd, keyd),
            report(Role::Ikerd, ikerd),
            report(Role::Fwd, fwd),
            DaemonReport::Ok(self.own_status()),
        ]
    }
}

impl Handler<CtlChannel> for Confd {
    async fn handle(&self, peer: Peer, req: CtlRequest) -> Reply<CtlResponse> {
        if changes_state(&req) && !self.server.authz().may_change_state(&peer.cred) {
            tracing::warn!("ctl.sock: permission denied for {req:?} from {peer}");
            return Reply::new(CtlResponse::PermissionDenied(format!(
                "permission denied: only root and members of group `{}` may do this",
                self.server.authz().admin_group()
            )));
        }
        Reply::new(match req {
            CtlRequest::Ping => CtlResponse::Pong,
            CtlRequest::Status => CtlResponse::Status(self.status().await),
            CtlRequest::Reload => self.reload(),
            CtlRequest::RereadSecrets => self.keyd_call(KeydRequest::RereadSecrets).await,
            CtlRequest::HostKeys => self.keyd_call(KeydRequest::HostKeys).await,
            CtlRequest::ManualUp(_)
            | CtlRequest::ManualDown(_)
            | CtlRequest::Route(_)
            | CtlRequest::Unroute(_)
            | CtlRequest::Look
            | CtlRequest::SaSecrets => CtlResponse::Error("not wired yet".into()),
        })
    }
}

pub async fn run(dirs: Dirs) -> Result<(), String> {
    ipc::runtime::started_unix();
    let (listener, path) = server::listen::<CtlChannel>(&dirs.run)?;
    let (config, config_error) = initial_config(&dirs);
    let srv = Server::<CtlChannel>::new(Authz::from_system("ipsec"));
    let confd = Rc::new(Confd {
        dirs: dirs.clone(),
        config: RefCell::new(config),
        config_error: RefCell::new(config_error),
        server: srv.clone(),
        keyd: Link::spawn(dirs.socket::<KeydChannel>(), Role::Confd, None),
        fwd: Link::spawn(dirs.socket::<FwdChannel>(), Role::Confd, None),
        ikerd: Link::spawn(dirs.socket::<IkerdChannel>(), Role::Confd, None),
    });
    srv.spawn(listener, confd);
    ipc::runtime::ready_until_signal(Role::Confd, &path).await;
    Ok(())
}

/// The host's own addresses, for orienting conns as pluto does.
pub fn local_addrs() -> Vec<std::net::IpAddr> {
    let Ok(ifs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    ifs.filter_map(|i| {
        let a = i.address?;
        if let Some(v4) = a.as_sockaddr_in() {
            Some(std::net::IpAddr::V4(v4.ip()))
        } else {
            a.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip()))
        }
    })
    .collect()
}

/// Decide which end of each conn is this host; one line for each conn that cannot be oriented.
fn orient_all(config: &Config) {
    let addrs = local_addrs();
    for c in &config.conns {
        match conf::orient(c, &addrs) {
            Ok(Orientation::Unoriented) => {
                tracing::info!(
                    "\"{}\": neither end is an address of this host; loaded but not oriented",
                    c.name
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!("{e}"),
        }
    }
}

/// Load ipsec.conf at start-up. With errors, confd still runs (status and checkconfig say why) with
/// no connections, as pluto runs when `ipsec setup` finds a broken file.
fn initial_config(dirs: &Dirs) -> (Config, Option<String>) {
    let path = dirs.ipsec_conf();
    match conf::load(&path) {
        Ok((c, warnings)) => {
            for w in &warnings {
                tracing::warn!("{w}");
            }
            tracing::info!("loaded {}: {} connections", path.display(), c.conns.len());
            orient_all(&c);
            (c, None)
        }
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
            (
                Config::default(),
                Some(format!("{} errors, first: {first}", errors.len())),
            )
        }
    }
}

/// Status lines about the configuration, including what the policy groups do without OE.
pub fn config_notes(dirs: &Dirs, config: &Config, error: Option<&str>) -> Vec<String> {
    let mut notes = vec![match error {
        None => format!(
            "{}: {} connections",
            dirs.ipsec_conf().display(),
            config.conns.len()
        ),
        Some(e) => format!(
            "{}: REFUSED ({e}); see `ipsecctl checkconfig`",
            dirs.ipsec_conf().display()
        ),
    }];
    for g in &config.policy_groups {
        let what = match g.action {
            GroupAction::Clear => "passed in the clear",
            GroupAction::Drop => "dropped",
        };
        notes.push(format!(
            "policy group {}: {} entries, {what} (no opportunistic encryption)",
            g.name,
            g.members.len()
        ));
    }
    notes
}
