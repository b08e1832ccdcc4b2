//! confd's wiring: links to keyd, fwd and ikerd; serves the operator's control socket, authorising
//! every request by SO_PEERCRED (the socket is 0666: its mode never decides).
//!
//! Manual keying and routing: confd remembers which conns are up (manually keyed) and which are
//! routed (policies with no SA), brings up every `auto=manual` conn and routes every `auto=route`
//! one at start-up, and installs all of them again each time the link to fwd (re)connects, so a
//! restarted fwd gets its state back. The translation into fwd's terms is `crate::manual`.

use ipc::client::Link;
use ipc::ctl::{CtlChannel, CtlRequest, CtlResponse, DaemonReport, ReloadSummary};
use ipc::fwd::{FwdChannel, FwdRequest, FwdResponse};
use ipc::ikerd::{IkerdChannel, IkerdRequest, IkerdResponse};
use ipc::keyd::{KeydChannel, KeydRequest, KeydResponse};
use ipc::peer::Authz;
use ipc::policy::{ConnState, RemoveMode};
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::status::DaemonStatus;
use ipc::{Dirs, IpcError, Role};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use crate::conf::model::Auto;
use crate::conf::{self, Config, ConfigDiff, GroupAction, Orientation};
use crate::manual;

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
    /// Conns confd has installed in fwd (or will, once fwd is reachable).
    pushed: RefCell<Pushed>,
}

/// What confd keeps installed in fwd, by conn name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Manually keyed and up: SAs and policies.
    pub up: BTreeSet<String>,
    /// Routed with no SA (`ipsecctl route`, `auto=route`, or after `manual down`): trap policies.
    pub routed: BTreeSet<String>,
}

impl Pushed {
    /// What a freshly loaded configuration asks for: `auto=manual` conns (and FreeS/WAN 1.x's
    /// `manualstart=`) up, `auto=route` conns routed (until IKE exists they stay traps).
    pub fn wanted(config: &Config) -> Pushed {
        let mut p = Pushed::default();
        for c in &config.conns {
            match c.auto {
                Auto::Manual => {
                    p.up.insert(c.name.clone());
                }
                Auto::Route => {
                    p.routed.insert(c.name.clone());
                }
                Auto::Ignore | Auto::Add | Auto::Start => {}
            }
        }
        for name in &config.setup.manualstart {
            if config.conn(name).is_some() {
                p.up.insert(name.clone());
            }
        }
        p
    }
}

/// What to install for a conn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Manual SAs and policies.
    Up,
    /// Trap (or shunt) policies, no SA.
    Route,
}

/// `FERROSWAN_INSECURE_MANUAL_AEAD=1`: AES-GCM/CTR with manual keys (tests and benchmarks only).
fn insecure_aead() -> bool {
    std::env::var(manual::INSECURE_AEAD_ENV).is_ok_and(|v| v == "1")
}

/// Whether a control request changes state (and so needs root or the admin group).
pub fn changes_state(req: &CtlRequest) -> bool {
    match req {
        CtlRequest::Ping
        | CtlRequest::Status
        | CtlRequest::HostKeys
        | CtlRequest::Look
        | CtlRequest::IkeStatus
        | CtlRequest::TrafficStatus
        | CtlRequest::Barf => false,
        CtlRequest::Up(_)
        | CtlRequest::Down(_)
        | CtlRequest::Add(_)
        | CtlRequest::Delete(_)
        | CtlRequest::Replace(_) => true,
        CtlRequest::Reload
        | CtlRequest::RereadSecrets
        | CtlRequest::ManualUp(_)
        | CtlRequest::ManualDown(_)
        | CtlRequest::Route(_)
        | CtlRequest::Unroute(_)
        | CtlRequest::SaSecrets => true,
    }
}

/// Whether a peer may read SA keys (`ipsecctl sa --tcpdump-secrets`): root only, not the admin group.
pub fn may_read_keys(cred: &ipc::peer::PeerCred) -> bool {
    cred.uid == 0
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

    /// `ipsecctl reload`: load anew; on success swap in the new config, say what changed, and bring
    /// fwd in line (removed conns taken out, modified ones installed again, new `auto=manual` and
    /// `auto=route` ones brought up and routed).
    async fn reload(&self) -> CtlResponse {
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
                let mut warnings = warnings;
                warnings.extend(self.apply_reload(&d).await);
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

    /// The state to install for conn `name` of the running config, oriented to this host.
    fn conn_state(&self, name: &str, want: Want) -> Result<ConnState, String> {
        let config = self.config.borrow();
        let conn = config.conn(name).ok_or_else(|| {
            format!(
                "no connection named \"{name}\" in {}",
                self.dirs.ipsec_conf().display()
            )
        })?;
        if want == Want::Up && conn.manual.is_none() && conn.auto != Auto::Manual {
            return Err(format!(
                "\"{name}\" is not a manually keyed conn (it has no spi=, esp=/espenckey= or \
                 ah=/ahkey=); it is keyed by IKE"
            ));
        }
        let orientation = conf::orient(conn, &local_addrs()).map_err(|e| e.to_string())?;
        let conn = manual::oriented(conn, orientation)?;
        match want {
            Want::Route => manual::route_state(&conn),
            Want::Up => {
                let state = manual::manual_state(&conn, insecure_aead())?;
                if manual::uses_counter_mode(&state) {
                    tracing::warn!(
                        "INSECURE: \"{name}\": AES-GCM/AES-CTR with manual keys because {}=1; \
                         nonces repeat after every restart (RFC 4106, RFC 3686): never on a real gateway",
                        manual::INSECURE_AEAD_ENV
                    );
                }
                Ok(state)
            }
        }
    }

    /// Install a conn's state in fwd: (SAs, policies) on success, or why not.
    async fn install(&self, state: ConnState) -> Result<(u32, u32), String> {
        match self
            .fwd
            .call(FwdRequest::InstallConn(state), PEER_TIMEOUT)
            .await
        {
            Ok((FwdResponse::ConnInstalled { sas, policies, .. }, _)) => Ok((sas, policies)),
            Ok((FwdResponse::Denied(e) | FwdResponse::Error(e), _)) => {
                Err(format!("fwd refused: {e}"))
            }
            Ok((other, _)) => Err(format!("fwd answered {other:?}")),
            Err(e) => Err(format!("fwd unreachable: {e}")),
        }
    }

    async fn remove(&self, name: &str, mode: RemoveMode) -> Result<(u32, u32), String> {
        let req = FwdRequest::RemoveConn {
            conn: name.to_string(),
            mode,
        };
        match self.fwd.call(req, PEER_TIMEOUT).await {
            Ok((FwdResponse::ConnRemoved { sas, policies, .. }, _)) => Ok((sas, policies)),
            Ok((FwdResponse::Denied(e) | FwdResponse::Error(e), _)) => {
                Err(format!("fwd refused: {e}"))
            }
            Ok((other, _)) => Err(format!("fwd answered {other:?}")),
            Err(e) => Err(format!("fwd unreachable: {e}")),
        }
    }

    /// Build and install one conn's state; the log line (and answer) says what happened.
    async fn push(&self, name: &str, want: Want) -> Result<String, String> {
        let state = self.conn_state(name, want)?;
        let (sas, policies) = self.install(state).await?;
        Ok(match want {
            Want::Up => {
                format!("\"{name}\": manual SAs installed ({sas} SAs, {policies} policies)")
            }
            Want::Route => format!("\"{name}\": routed ({policies} policies, no SA)"),
        })
    }

    /// `ipsecctl manual up NAME`.
    async fn manual_up(&self, name: &str) -> CtlResponse {
        match self.push(name, Want::Up).await {
            Ok(line) => {
                tracing::info!("{line}");
                let mut p = self.pushed.borrow_mut();
                p.up.insert(name.to_string());
                p.routed.insert(name.to_string());
                CtlResponse::Done(vec![line])
            }
            Err(e) => {
                let msg = if e.starts_with('"') {
                    e
                } else {
                    format!("\"{name}\": {e}")
                };
                tracing::error!("manual up refused: {msg}");
                CtlResponse::Error(msg)
            }
        }
    }

    /// `ipsecctl manual down NAME`: SAs deleted, routed policies left as traps (FreeS/WAN's
    /// behaviour: the conn's traffic is dropped, never sent in the clear, until `unroute`).
    async fn manual_down(&self, name: &str) -> CtlResponse {
        match self.remove(name, RemoveMode::KeepRoute).await {
            Ok((sas, policies)) => {
                let line = format!(
                    "\"{name}\": manual SAs removed ({sas} SAs, {policies} policies); its routed \
                     policies now drop its traffic until `ipsecctl unroute {name}`"
                );
                tracing::info!("{line}");
                let mut p = self.pushed.borrow_mut();
                p.up.remove(name);
                p.routed.insert(name.to_string());
                CtlResponse::Done(vec![line])
            }
            Err(e) => {
                let msg = format!("\"{name}\": not taken down: {e}");
                tracing::error!("{msg}");
                CtlResponse::Error(msg)
            }
        }
    }

    /// `ipsecctl route NAME`.
    async fn route(&self, name: &str) -> CtlResponse {
        if self.pushed.borrow().up.contains(name) {
            return CtlResponse::Done(vec![format!(
                "\"{name}\" is up: its policies are routed already"
            )]);
        }
        match self.push(name, Want::Route).await {
            Ok(line) => {
                tracing::info!("{line}");
                self.pushed.borrow_mut().routed.insert(name.to_string());
                CtlResponse::Done(vec![line])
            }
            Err(e) => {
                let msg = if e.starts_with('"') {
                    e
                } else {
                    format!("\"{name}\": {e}")
                };
                tracing::error!("route refused: {msg}");
                CtlResponse::Error(msg)
            }
        }
    }

    /// `ipsecctl unroute NAME`: SAs, policies and routes removed.
    async fn unroute(&self, name: &str) -> CtlResponse {
        match self.remove(name, RemoveMode::Everything).await {
            Ok((sas, policies)) => {
                let line = format!("\"{name}\": unrouted ({sas} SAs, {policies} policies removed)");
                tracing::info!("{line}");
                let mut p = self.pushed.borrow_mut();
                p.up.remove(name);
                p.routed.remove(name);
                CtlResponse::Done(vec![line])
            }
            Err(e) => {
                let msg = format!("\"{name}\": not unrouted: {e}");
                tracing::error!("{msg}");
                CtlResponse::Error(msg)
            }
        }
    }

    async fn look(&self) -> CtlResponse {
        match self.fwd.call(FwdRequest::Look, PEER_TIMEOUT).await {
            Ok((FwdResponse::Look(l), _)) => CtlResponse::Look(l),
            Ok((FwdResponse::Denied(e) | FwdResponse::Error(e), _)) => {
                CtlResponse::Error(format!("fwd refused the listing: {e}"))
            }
            Ok((other, _)) => CtlResponse::Error(format!("fwd answered {other:?}")),
            Err(e) => CtlResponse::Error(format!("fwd unreachable: {e}")),
        }
    }

    /// `ipsecctl sa --tcpdump-secrets`: SA keys, for root only.
    async fn sa_secrets(&self, peer: &Peer) -> CtlResponse {
        if !may_read_keys(&peer.cred) {
            tracing::warn!("ctl.sock: SA keys refused to {peer}: root only");
            return CtlResponse::PermissionDenied(
                "permission denied: only root may read SA keys".into(),
            );
        }
        match self.fwd.call(FwdRequest::Secrets, PEER_TIMEOUT).await {
            Ok((FwdResponse::Secrets(s), _)) => {
                tracing::warn!("ctl.sock: keys of {} SAs shown to {peer}", s.len());
                CtlResponse::SaSecrets(s)
            }
            Ok((FwdResponse::Denied(e) | FwdResponse::Error(e), _)) => {
                CtlResponse::Error(format!("fwd refused the keys: {e}"))
            }
            Ok((other, _)) => CtlResponse::Error(format!("fwd answered {other:?}")),
            Err(e) => CtlResponse::Error(format!("fwd unreachable: {e}")),
        }
    }

    /// Install everything confd keeps in fwd (after fwd's link (re)connects). A conn that can no
    /// longer be built (e.g. refused keys) is dropped from the set with one error line; one fwd
    /// refuses stays (it is tried again on the next reconnect).
    async fn push_all(&self, why: &str) {
        let p = self.pushed.borrow().clone();
        if p.up.is_empty() && p.routed.is_empty() {
            return;
        }
        tracing::info!(
            "{why}: installing {} manual and {} routed conns",
            p.up.len(),
            p.routed.difference(&p.up).count()
        );
        let jobs =
            p.up.iter()
                .map(|n| (n, Want::Up))
                .chain(p.routed.difference(&p.up).map(|n| (n, Want::Route)));
        for (name, want) in jobs {
            if !self.still_wanted(name, want) {
                continue;
            }
            match self.conn_state(name, want) {
                Err(e) => {
                    tracing::error!("{e}");
                    let mut p = self.pushed.borrow_mut();
                    p.up.remove(name.as_str());
                    p.routed.remove(name.as_str());
                }
                Ok(state) => match self.install(state).await {
                    Ok((sas, policies)) => tracing::info!(
                        "\"{name}\": {} ({sas} SAs, {policies} policies)",
                        if want == Want::Up {
                            "manual SAs installed"
                        } else {
                            "routed"
                        }
                    ),
                    Err(e) => tracing::error!("\"{name}\": not installed: {e}"),
                },
            }
        }
    }

    fn still_wanted(&self, name: &str, want: Want) -> bool {
        let p = self.pushed.borrow();
        match want {
            Want::Up => p.up.contains(name),
            Want::Route => p.routed.contains(name) && !p.up.contains(name),
        }
    }

    /// After a reload: take out removed conns, install modified ones again, bring up and route new
    /// `auto=manual`/`auto=route` ones. Returns one line per problem (the reload answer's warnings).
    async fn apply_reload(&self, d: &ConfigDiff) -> Vec<String> {
        let mut problems = Vec::new();
        let before = self.pushed.borrow().clone();
        for name in &d.removed {
            if before.up.contains(name) || before.routed.contains(name) {
                {
                    let mut p = self.pushed.borrow_mut();
                    p.up.remove(name);
                    p.routed.remove(name);
                }
                match self.remove(name, RemoveMode::Everything).await {
                    Ok((sas, policies)) => tracing::info!(
                        "\"{name}\": removed from ipsec.conf; unrouted ({sas} SAs, {policies} policies)"
                    ),
                    Err(e) => {
                        let m = format!("\"{name}\": removed from ipsec.conf but not from fwd: {e}");
                        tracing::error!("{m}");
                        problems.push(m);
                    }
                }
            }
        }
        let wanted = Pushed::wanted(&self.config.borrow());
        for name in d.modified.iter().chain(&d.added) {
            let want = if before.up.contains(name) || wanted.up.contains(name) {
                Want::Up
            } else if before.routed.contains(name) || wanted.routed.contains(name) {
                Want::Route
            } else {
                continue;
            };
            match self.push(name, want).await {
                Ok(line) => {
                    tracing::info!("{line}");
                    let mut p = self.pushed.borrow_mut();
                    if want == Want::Up {
                        p.up.insert(name.clone());
                    }
                    p.routed.insert(name.clone());
                }
                Err(e) => {
                    let m = if e.starts_with('"') {
                        e
                    } else {
                        format!("\"{name}\": {e}")
                    };
                    tracing::error!("{m}");
                    problems.push(m);
                    if before.up.contains(name) && want == Want::Up {
                        // The old keys no longer match the file: take the SAs down, keep the traps.
                        self.pushed.borrow_mut().up.remove(name);
                        if let Err(e) = self.remove(name, RemoveMode::KeepRoute).await {
                            tracing::error!("\"{name}\": old SAs not taken down: {e}");
                        }
                    }
                }
            }
        }
        problems
    }

    /// Push everything again each time the link to fwd comes up (a restarted fwd starts empty).
    async fn sync_fwd(self: Rc<Self>) {
        let mut connected = self.fwd.on_connect();
        // The link may have come up before we subscribed: look once at the current state too.
        connected.mark_changed();
        loop {
            if connected.changed().await.is_err() {
                return;
            }
            if !self.fwd.is_up() {
                continue;
            }
            self.push_all("link to fwd up").await;
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
            CtlRequest::Reload => self.reload().await,
            CtlRequest::RereadSecrets => self.keyd_call(KeydRequest::RereadSecrets).await,
            CtlRequest::HostKeys => self.keyd_call(KeydRequest::HostKeys).await,
            CtlRequest::ManualUp(name) => self.manual_up(&name).await,
            CtlRequest::ManualDown(name) => self.manual_down(&name).await,
            CtlRequest::Route(name) => self.route(&name).await,
            CtlRequest::Unroute(name) => self.unroute(&name).await,
            CtlRequest::Look => self.look().await,
            CtlRequest::SaSecrets => self.sa_secrets(&peer).await,
            other => CtlResponse::Error(format!("not implemented yet: {other:?}")),
        })
    }
}

pub async fn run(dirs: Dirs) -> Result<(), String> {
    ipc::runtime::started_unix();
    let (listener, path) = server::listen::<CtlChannel>(&dirs.run)?;
    let (config, config_error) = initial_config(&dirs);
    let srv = Server::<CtlChannel>::new(Authz::from_system("ipsec"));
    let pushed = Pushed::wanted(&config);
    let confd = Rc::new(Confd {
        dirs: dirs.clone(),
        config: RefCell::new(config),
        config_error: RefCell::new(config_error),
        server: srv.clone(),
        keyd: Link::spawn(dirs.socket::<KeydChannel>(), Role::Confd, None),
        fwd: Link::spawn(dirs.socket::<FwdChannel>(), Role::Confd, None),
        ikerd: Link::spawn(dirs.socket::<IkerdChannel>(), Role::Confd, None),
        pushed: RefCell::new(pushed),
    });
    tokio::task::spawn_local(confd.clone().sync_fwd());
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn start_up_brings_up_manual_conns_and_routes_route_conns() {
        let text = "version 2\n\nconfig setup\n\tmanualstart=listed\n\n\
            conn m\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tspi=0x1000\n\tauto=manual\n\n\
            conn r\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauthby=secret\n\tauto=route\n\n\
            conn a\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauthby=secret\n\tauto=add\n\n\
            conn listed\n\tleft=192.0.2.1\n\tright=192.0.2.3\n\tspi=0x1000\n\tauto=ignore\n";
        let (config, _) = conf::load_str("ipsec.conf", text).unwrap();
        let p = Pushed::wanted(&config);
        assert_eq!(
            p.up.iter().map(String::as_str).collect::<Vec<_>>(),
            ["listed", "m"]
        );
        assert_eq!(
            p.routed.iter().map(String::as_str).collect::<Vec<_>>(),
            ["r"]
        );
    }

    /// A stand-in for fwd on fwd.sock: keeps whole-conn states as fwd is specified to (install
    /// replaces, KeepRoute leaves routed outbound policies as traps, Everything removes), and can be
    /// "restarted" (all connections dropped, state lost).
    #[derive(Default)]
    struct FakeFwd {
        conns: RefCell<std::collections::BTreeMap<String, ConnState>>,
        tasks: RefCell<Vec<tokio::task::JoinHandle<()>>>,
    }

    impl FakeFwd {
        fn answer(&self, req: FwdRequest) -> FwdResponse {
            use ipc::policy::{Look, PolicyAction, PolicyInfo, SaInfo, SaSecret};
            let n = |v: usize| u32::try_from(v).unwrap();
            match req {
                FwdRequest::InstallConn(s) => {
                    let (conn, sas, policies) =
                        (s.conn.clone(), n(s.sas.len()), n(s.policies.len()));
                    self.conns.borrow_mut().insert(conn.clone(), s);
                    FwdResponse::ConnInstalled {
                        conn,
                        sas,
                        policies,
                    }
                }
                FwdRequest::RemoveConn { conn, mode } => {
                    let mut conns = self.conns.borrow_mut();
                    let Some(s) = conns.get_mut(&conn) else {
                        return FwdResponse::Error(format!("no connection {conn}"));
                    };
                    let sas = n(s.sas.len());
                    let policies = n(s.policies.len());
                    if mode == RemoveMode::Everything {
                        conns.remove(&conn);
                    } else {
                        s.sas.clear();
                        s.policies.retain(|p| p.route);
                        for p in &mut s.policies {
                            p.action = PolicyAction::Trap;
                        }
                    }
                    FwdResponse::ConnRemoved {
                        conn,
                        sas,
                        policies,
                    }
                }
                FwdRequest::Look => {
                    let conns = self.conns.borrow();
                    let sas = conns.values().flat_map(|c| &c.sas).map(|s| SaInfo {
                        id: s.id(),
                        conn: s.conn.clone(),
                        direction: s.direction,
                        src: s.src,
                        dst: s.dst,
                        mode: s.mode,
                        encap: s.encap,
                        encr: s.encr,
                        integ: s.integ,
                        esn: s.esn,
                        replay_window: s.replay_window,
                        packets: 0,
                        bytes: 0,
                        errors: 0,
                        seq: 0,
                        age_secs: 0,
                        state: "mature".into(),
                    });
                    let policies = conns
                        .values()
                        .flat_map(|c| &c.policies)
                        .map(|p| PolicyInfo {
                            id: 0,
                            conn: p.conn.clone(),
                            direction: p.direction,
                            selector: p.selector,
                            action: p.action.clone(),
                            priority: p.priority,
                            routed: p.route,
                            packets: 0,
                            bytes: 0,
                        });
                    FwdResponse::Look(Look {
                        sas: sas.collect(),
                        policies: policies.collect(),
                        ..Look::default()
                    })
                }
                FwdRequest::Secrets => FwdResponse::Secrets(
                    self.conns
                        .borrow()
                        .values()
                        .flat_map(|c| &c.sas)
                        .map(|s| SaSecret {
                            id: s.id(),
                            src: s.src,
                            dst: s.dst,
                            proto: s.proto,
                            encr: s.encr,
                            enc_key: s.enc_key.clone(),
                            integ: s.integ,
                            auth_key: s.auth_key.clone(),
                        })
                        .collect(),
                ),
                FwdRequest::Ping => FwdResponse::Pong,
                other => FwdResponse::Error(format!("fake fwd: {other:?}")),
            }
        }

        /// Bind fwd.sock in `run` and serve it until [`FakeFwd::stop`].
        fn start(run: &std::path::Path) -> Rc<FakeFwd> {
            use ipc::channel::{ClientMsg, ServerMsg};
            use ipc::frame::HELLO_MAX;
            use ipc::fwd::FwdEvent;
            use ipc::hello::{Hello, HelloReply, PROTOCOL_VERSION};
            let _ = std::fs::remove_file(run.join("fwd.sock"));
            let listener = tokio::net::UnixListener::bind(run.join("fwd.sock")).unwrap();
            let fake = Rc::new(FakeFwd::default());
            let f = fake.clone();
            let accept = tokio::task::spawn_local(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let f2 = f.clone();
                    let conn = tokio::task::spawn_local(async move {
                        let (mut r, mut w) = stream.into_split();
                        let Ok((_, _)) = ipc::wire::recv::<Hello>(&mut r, HELLO_MAX, false).await
                        else {
                            return;
                        };
                        let hello = HelloReply::Accepted {
                            version: PROTOCOL_VERSION,
                            role: Role::Fwd,
                        };
                        if ipc::wire::send(&mut w, &hello, HELLO_MAX, &[])
                            .await
                            .is_err()
                        {
                            return;
                        }
                        let max = <FwdChannel as ipc::Channel>::MAX_FRAME;
                        while let Ok((msg, _)) =
                            ipc::wire::recv::<ClientMsg<FwdRequest>>(&mut r, max, false).await
                        {
                            let resp = f2.answer(msg.req);
                            let out: ServerMsg<FwdResponse, FwdEvent> =
                                ServerMsg::Response { id: msg.id, resp };
                            if ipc::wire::send(&mut w, &out, max, &[]).await.is_err() {
                                return;
                            }
                        }
                    });
                    f.tasks.borrow_mut().push(conn);
                }
            });
            fake.tasks.borrow_mut().push(accept);
            fake
        }

        /// fwd dies: every connection closes, its state is gone.
        fn stop(&self, run: &std::path::Path) {
            for t in self.tasks.borrow_mut().drain(..) {
                t.abort();
            }
            let _ = std::fs::remove_file(run.join("fwd.sock"));
        }

        fn has(&self, name: &str) -> Option<ConnState> {
            self.conns.borrow().get(name).cloned()
        }
    }

    async fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !f() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    const K3DES: &str = "0x0123456789abcdef0123456789abcdef0123456789abcdef";
    const KMD5: &str = "0x00112233445566778899aabbccddeeff";

    fn test_conf(m_spi: &str, with_r: bool, with_n: bool) -> String {
        let mut t = format!(
            "version 2\n\nconfig setup\n\n\
             conn m\n\tleft=127.0.0.1\n\tright=203.0.113.2\n\trightsubnet=10.2.0.0/16\n\tspi={m_spi}\n\
             \tesp=3des-md5-96\n\tespenckey={K3DES}\n\tespauthkey={KMD5}\n\tauto=manual\n\n\
             conn gcm\n\tleft=127.0.0.1\n\tright=203.0.113.3\n\tspi=0x2000\n\tesp=aes_gcm128\n\
             \tespenckey=0x{}\n\tauto=ignore\n\n\
             conn ike\n\tleft=127.0.0.1\n\tright=203.0.113.4\n\tauthby=secret\n\tauto=add\n\n",
            "5a".repeat(20)
        );
        if with_r {
            t.push_str("conn r\n\tleft=127.0.0.1\n\tright=203.0.113.5\n\trightsubnet=10.5.0.0/16\n\tauthby=secret\n\tauto=route\n\n");
        }
        if with_n {
            t.push_str(&format!(
                "conn n\n\tleft=127.0.0.1\n\tright=203.0.113.6\n\tspi=0x3000\n\tesp=3des-md5-96\n\
                 \tespenckey={K3DES}\n\tespauthkey={KMD5}\n\tauto=manual\n\n"
            ));
        }
        t
    }

    fn done_text(r: &CtlResponse) -> String {
        match r {
            CtlResponse::Done(lines) => lines.join("\n"),
            other => panic!("expected Done, got {other:?}"),
        }
    }

    fn error_text(r: &CtlResponse) -> String {
        match r {
            CtlResponse::Error(e) => e.clone(),
            other => panic!("expected Error, got {other:?}"),
        }
    }

    /// The whole verb set against a fake fwd: start-up installs, down/unroute/up, refusals, keys
    /// for root only, fwd restart (everything pushed again), fwd gone, reload.
    #[test]
    fn verbs_against_a_fake_fwd() {
        let base = std::env::temp_dir().join(format!("confd-manual-{}", std::process::id()));
        let dirs = Dirs {
            config: base.join("etc"),
            run: base.join("run"),
        };
        std::fs::create_dir_all(&dirs.config).unwrap();
        std::fs::create_dir_all(&dirs.run).unwrap();
        std::fs::write(dirs.ipsec_conf(), test_conf("0x1000", true, false)).unwrap();
        let root = Peer {
            role: Role::Ctl,
            cred: ipc::peer::PeerCred {
                pid: 1,
                uid: 0,
                gid: 0,
            },
        };
        let user = Peer {
            role: Role::Ctl,
            cred: ipc::peer::PeerCred {
                pid: 1,
                uid: 1000,
                gid: 1000,
            },
        };
        ipc::runtime::run_local(async {
            let fake = FakeFwd::start(&dirs.run);
            let (config, error) = initial_config(&dirs);
            assert_eq!(error, None);
            let confd = Rc::new(Confd {
                dirs: dirs.clone(),
                pushed: RefCell::new(Pushed::wanted(&config)),
                config: RefCell::new(config),
                config_error: RefCell::new(None),
                server: Server::<CtlChannel>::new(Authz::default()),
                keyd: Link::spawn(dirs.socket::<KeydChannel>(), Role::Confd, None),
                fwd: Link::spawn(dirs.socket::<FwdChannel>(), Role::Confd, None),
                ikerd: Link::spawn(dirs.socket::<IkerdChannel>(), Role::Confd, None),
            });
            tokio::task::spawn_local(confd.clone().sync_fwd());
            let ask = |peer: Peer, req: CtlRequest| {
                let c = confd.clone();
                async move { c.handle(peer, req).await.resp }
            };

            // start-up: auto=manual up, auto=route routed
            until("start-up installs", || {
                fake.has("m").is_some() && fake.has("r").is_some()
            })
            .await;
            let m = fake.has("m").unwrap();
            assert_eq!((m.sas.len(), m.policies.len()), (2, 2));
            let r = fake.has("r").unwrap();
            assert!(r.sas.is_empty());
            assert_eq!(r.policies.len(), 1);
            assert_eq!(r.policies[0].action, ipc::policy::PolicyAction::Trap);
            assert!(fake.has("gcm").is_none() && fake.has("ike").is_none());

            // down keeps traps, unroute removes, up again
            let t = done_text(&ask(root, CtlRequest::ManualDown("m".into())).await);
            assert!(t.contains("\"m\": manual SAs removed"), "{t}");
            let m = fake.has("m").unwrap();
            assert!(m.sas.is_empty());
            assert_eq!(m.policies[0].action, ipc::policy::PolicyAction::Trap);
            assert!(
                confd.pushed.borrow().routed.contains("m")
                    && !confd.pushed.borrow().up.contains("m")
            );
            done_text(&ask(root, CtlRequest::Unroute("m".into())).await);
            assert!(fake.has("m").is_none());
            assert!(!confd.pushed.borrow().routed.contains("m"));
            let t = done_text(&ask(root, CtlRequest::ManualUp("m".into())).await);
            assert_eq!(t, "\"m\": manual SAs installed (2 SAs, 2 policies)");
            let t = done_text(&ask(root, CtlRequest::Route("m".into())).await);
            assert!(
                t.contains("already"),
                "route of an up conn changes nothing: {t}"
            );
            assert_eq!(fake.has("m").unwrap().sas.len(), 2);

            // refusals say what failed
            let e = error_text(&ask(root, CtlRequest::ManualUp("gcm".into())).await);
            assert!(e.contains("RFC 4106") && e.starts_with("\"gcm\""), "{e}");
            assert!(fake.has("gcm").is_none());
            let e = error_text(&ask(root, CtlRequest::ManualUp("ike".into())).await);
            assert!(e.contains("not a manually keyed conn"), "{e}");
            let e = error_text(&ask(root, CtlRequest::ManualUp("nope".into())).await);
            assert!(e.contains("no connection named \"nope\""), "{e}");
            assert!(matches!(
                ask(user, CtlRequest::ManualDown("m".into())).await,
                CtlResponse::PermissionDenied(_)
            ));

            // keys for root only; look for anyone
            match ask(root, CtlRequest::SaSecrets).await {
                CtlResponse::SaSecrets(s) => assert_eq!(s.len(), 2),
                other => panic!("{other:?}"),
            }
            assert!(matches!(
                ask(user, CtlRequest::SaSecrets).await,
                CtlResponse::PermissionDenied(_)
            ));
            match ask(user, CtlRequest::Look).await {
                CtlResponse::Look(l) => assert_eq!(l.sas.len(), 2),
                other => panic!("{other:?}"),
            }

            // fwd restarts empty: confd installs everything again
            fake.stop(&dirs.run);
            let fake = FakeFwd::start(&dirs.run);
            until("re-push after fwd restart", || {
                fake.has("m").is_some() && fake.has("r").is_some()
            })
            .await;
            assert_eq!(fake.has("m").unwrap().sas.len(), 2);
            assert!(fake.has("r").unwrap().sas.is_empty());

            // fwd gone: the answer says so
            fake.stop(&dirs.run);
            until("link down", || !confd.fwd.is_up()).await;
            let e = error_text(&ask(root, CtlRequest::ManualUp("m".into())).await);
            assert!(e.contains("fwd unreachable"), "{e}");

            // reload: r removed, m modified (new SPI), n added with auto=manual
            let fake = FakeFwd::start(&dirs.run);
            until("reconnect", || fake.has("m").is_some()).await;
            std::fs::write(dirs.ipsec_conf(), test_conf("0x1100", false, true)).unwrap();
            match ask(root, CtlRequest::Reload).await {
                CtlResponse::Reloaded(s) => {
                    assert_eq!(
                        (s.added.as_slice(), s.removed.as_slice()),
                        (&["n".to_string()][..], &["r".to_string()][..])
                    );
                    assert!(s.modified.contains(&"m".to_string()));
                }
                other => panic!("{other:?}"),
            }
            assert!(fake.has("r").is_none(), "removed conn taken out of fwd");
            assert!(fake.has("m").unwrap().sas.iter().all(|s| s.spi == 0x1100));
            assert_eq!(fake.has("n").unwrap().sas.len(), 2);
            let p = confd.pushed.borrow().clone();
            assert!(p.up.contains("n") && p.up.contains("m") && !p.routed.contains("r"));
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn only_root_reads_keys_and_every_manual_verb_changes_state() {
        let cred = |uid| ipc::peer::PeerCred {
            pid: 1,
            uid,
            gid: uid,
        };
        assert!(may_read_keys(&cred(0)));
        assert!(!may_read_keys(&cred(1000)));
        assert!(!may_read_keys(&cred(65534)));
        for req in [
            CtlRequest::ManualUp("x".into()),
            CtlRequest::ManualDown("x".into()),
            CtlRequest::Route("x".into()),
            CtlRequest::Unroute("x".into()),
            CtlRequest::SaSecrets,
        ] {
            assert!(changes_state(&req), "{req:?}");
        }
        assert!(!changes_state(&CtlRequest::Look));
    }
}
