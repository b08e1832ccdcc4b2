//! confd's wiring: links to keyd, fwd and ikerd; serves the operator's control socket, authorising
//! every request by SO_PEERCRED (the socket is 0666: its mode never decides).
//!
//! Manual keying and routing: confd remembers which conns are up (manually keyed) and which are
//! routed (policies with no SA), brings up every `auto=manual` conn and routes every `auto=route`
//! one at start-up, and installs all of them again each time the link to fwd (re)connects, so a
//! restarted fwd gets its state back. The translation into fwd's terms is `crate::manual`.
//!
//! IKE: confd keeps the set of conns "added" to ikerd (`auto=add|route|start`, plus `ipsecctl add`,
//! minus `ipsecctl delete`; `ipsecctl route` of an IKE conn makes it `auto=route`) and pushes the
//! whole set (`LoadConns`) at start-up, each time the link to ikerd (re)connects, and whenever a
//! verb or a reload changes it. ikerd owns everything of those conns in fwd (their traps too), so
//! confd never installs an IKE conn in fwd itself. The translation is `crate::ike_conn`.

use ipc::client::Link;
use ipc::ctl::{CtlChannel, CtlRequest, CtlResponse, DaemonReport, ReloadSummary};
use ipc::fwd::{FwdChannel, FwdRequest, FwdResponse};
use ipc::ike::{IkeAuto, IkeConn, IkeStatusReport, LoadSummary};
use ipc::ikerd::{IkerdChannel, IkerdRequest, IkerdResponse};
use ipc::keyd::{KeydChannel, KeydRequest, KeydResponse};
use ipc::peer::Authz;
use ipc::policy::{ConnState, Net, RemoveMode};
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::status::DaemonStatus;
use ipc::{Dirs, IpcError, Role};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use crate::conf::model::Auto;
use crate::conf::{self, Config, ConfigDiff, GroupAction, Orientation};
use crate::{barf, ike_conn, manual};

/// How long confd waits for a peer daemon's answer before reporting it unreachable.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);
/// ikerd may have many conns to tear down or start when it loads a new set.
const IKERD_LOAD_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// IKE conns added to ikerd, with what ikerd is to do with each (see the module doc).
    added: RefCell<BTreeMap<String, IkeAuto>>,
    /// Held while a `LoadConns` is built and sent, so that pushes reach ikerd in order.
    ike_push: tokio::sync::Mutex<()>,
    /// The conns of the last push ikerd accepted (None: none yet, or the last one failed), and a
    /// line saying how the last push went.
    ike_last: RefCell<(Option<Vec<IkeConn>>, Option<String>)>,
    /// How confd is confined (`sandbox`), for status.
    sandbox_notes: RefCell<Vec<String>>,
    /// `ctlstatus=everyone` (from the configuration confd started with, as `ctlgroup=`).
    status_for_everyone: bool,
    /// What `ipsecctl setkey` scripts installed (fwd holds it as the conn [`SETKEY_CONN`]).
    setkey: RefCell<crate::setkey::apply::SetkeyState>,
    /// One script at a time.
    setkey_lock: tokio::sync::Mutex<()>,
}

/// The name of the setkey state in fwd: `%` cannot start a conn name of ipsec.conf.
pub const SETKEY_CONN: &str = "%setkey";

fn rename_setkey_state(state: &mut ConnState) {
    state.conn = SETKEY_CONN.to_string();
    for sa in &mut state.sas {
        sa.conn = SETKEY_CONN.to_string();
    }
    for p in &mut state.policies {
        p.conn = SETKEY_CONN.to_string();
    }
}

/// Why a push of the IKE conns did not land.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PushError {
    /// ikerd answered, refusing the whole set (its state is unchanged).
    Refused(String),
    /// ikerd could not be asked; confd pushes again when the link comes back.
    Unreachable(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Refused(e) | PushError::Unreachable(e) => f.write_str(e),
        }
    }
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
    /// `manualstart=`) up, `auto=route` shunts and manual conns routed. `auto=route` IKE conns are
    /// ikerd's: it installs their traps.
    pub fn wanted(config: &Config) -> Pushed {
        let mut p = Pushed::default();
        for c in &config.conns {
            match c.auto {
                Auto::Manual => {
                    p.up.insert(c.name.clone());
                }
                Auto::Route if !ike_conn::is_ike(c) => {
                    p.routed.insert(c.name.clone());
                }
                Auto::Route | Auto::Ignore | Auto::Add | Auto::Start => {}
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

/// Longest setkey script accepted over ctl.sock.
const MAX_SETKEY_SCRIPT: usize = 1024 * 1024;

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
        // Even `spddump;` alone: a script is state-changing unless proven otherwise.
        CtlRequest::Setkey { .. } => true,
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
        s.notes.extend(self.sandbox_notes.borrow().iter().cloned());
        let added = self.added.borrow().len();
        match &self.ike_last.borrow().1 {
            Some(last) => s.notes.push(format!(
                "{added} IKE conns added to ikerd; last load: {last}"
            )),
            None => s.notes.push(format!("{added} IKE conns added to ikerd")),
        }
        s
    }

    fn new(
        dirs: Dirs,
        config: Config,
        config_error: Option<String>,
        server: Rc<Server<CtlChannel>>,
    ) -> Confd {
        Confd {
            keyd: Link::spawn(dirs.socket::<KeydChannel>(), Role::Confd, None),
            fwd: Link::spawn(dirs.socket::<FwdChannel>(), Role::Confd, None),
            ikerd: Link::spawn(dirs.socket::<IkerdChannel>(), Role::Confd, None),
            dirs,
            pushed: RefCell::new(Pushed::wanted(&config)),
            added: RefCell::new(ike_conn::wanted(&config)),
            config: RefCell::new(config),
            config_error: RefCell::new(config_error),
            server,
            ike_push: tokio::sync::Mutex::new(()),
            ike_last: RefCell::new((None, None)),
            sandbox_notes: RefCell::new(Vec::new()),
            status_for_everyone: true,
            setkey: RefCell::new(crate::setkey::apply::SetkeyState::new()),
            setkey_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// `ipsecctl reload`: load anew; on success swap in the new config, say what changed, and bring
    /// fwd in line (removed conns taken out, modified ones installed again, new `auto=manual` and
    /// `auto=route` ones brought up and routed).
    async fn reload(&self) -> CtlResponse {
        let path = self.dirs.ipsec_conf();
        match load_config(&path) {
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
                warnings.extend(self.apply_reload_ike(&d).await);
                if !d.is_empty() {
                    self.push_updowns("reload").await;
                }
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
        if self
            .config
            .borrow()
            .conn(name)
            .is_some_and(ike_conn::is_ike)
        {
            // its SAs are ikerd's: taking them out of fwd behind ikerd's back would strand them
            return CtlResponse::Error(format!(
                "\"{name}\" is keyed by IKE, not manually: use `ipsecctl down {name}`; nothing changed"
            ));
        }
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
        if self
            .config
            .borrow()
            .conn(name)
            .is_some_and(ike_conn::is_ike)
        {
            return self.ike_route(name).await;
        }
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
        if self
            .config
            .borrow()
            .conn(name)
            .is_some_and(ike_conn::is_ike)
        {
            return self.ike_unroute(name).await;
        }
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
            self.push_updowns("link to fwd up").await;
            self.push_all("link to fwd up").await;
            self.push_setkey("link to fwd up").await;
        }
    }

    // ------------------------------------------------------------------ IKE conns and ikerd

    /// Why conn `name` cannot be negotiated by IKE (or that it does not exist); `Ok` when it can.
    fn check_ike_name(&self, name: &str) -> Result<(), String> {
        let config = self.config.borrow();
        let Some(c) = config.conn(name) else {
            return Err(format!(
                "no connection named \"{name}\" in {}; nothing changed",
                self.dirs.ipsec_conf().display()
            ));
        };
        if ike_conn::is_ike(c) {
            return Ok(());
        }
        let why = if c.manual.is_some() || c.auto == Auto::Manual {
            format!("it is manually keyed: use `ipsecctl manual up|down {name}`")
        } else {
            format!("it is a shunt or policy-group conn: use `ipsecctl route|unroute {name}`")
        };
        Err(format!(
            "\"{name}\" is not negotiated by IKE ({why}); nothing changed"
        ))
    }

    /// The `IkeConn` for conn `name` of the running config, oriented to this host.
    fn build_ike_conn(
        &self,
        name: &str,
        auto: IkeAuto,
        host: &HostFacts,
    ) -> Result<IkeConn, String> {
        let config = self.config.borrow();
        let conn = config.conn(name).ok_or_else(|| {
            format!(
                "\"{name}\": no longer in {}",
                self.dirs.ipsec_conf().display()
            )
        })?;
        let orientation = conf::orient(conn, &host.addrs).map_err(|e| e.to_string())?;
        ike_conn::ike_conn(conn, orientation, auto, &host.info)
    }

    /// Every added conn that can be built now; one line for each that cannot. Conns of which
    /// neither end is this host are left out quietly (one line said so when the file was
    /// loaded): a file shared by several gateways holds conns for the others too.
    fn ike_conns(&self) -> (Vec<IkeConn>, Vec<String>) {
        let host = HostFacts::now();
        let added = self.added.borrow().clone();
        let mut conns = Vec::new();
        let mut problems = Vec::new();
        for (name, auto) in added {
            let unoriented = self.config.borrow().conn(&name).is_some_and(|c| {
                matches!(conf::orient(c, &host.addrs), Ok(Orientation::Unoriented))
            });
            if unoriented {
                tracing::debug!("\"{name}\": not oriented; not loaded into ikerd");
                continue;
            }
            match self.build_ike_conn(&name, auto, &host) {
                Ok(c) => conns.push(c),
                Err(e) => problems.push(format!("{e}; not loaded into ikerd")),
            }
        }
        (conns, problems)
    }

    /// Send ikerd the whole set of added conns (`LoadConns`). Logs what ikerd changed.
    async fn push_ikerd(&self, why: &str) -> Result<LoadSummary, PushError> {
        let _order = self.ike_push.lock().await;
        let (conns, problems) = self.ike_conns();
        for p in &problems {
            tracing::warn!("{p}");
        }
        // fwd first, so that what ikerd installs for these conns is accepted.
        self.push_scopes(&conns, why).await;
        let settings = ike_conn::settings(&self.config.borrow());
        let n = conns.len();
        let req = IkerdRequest::LoadConns {
            settings,
            conns: conns.clone(),
        };
        let result = match self.ikerd.call(req, IKERD_LOAD_TIMEOUT).await {
            Ok((IkerdResponse::Loaded(s), _)) => Ok(s),
            Ok((IkerdResponse::Error(e), _)) => {
                Err(PushError::Refused(format!("ikerd refused the conns: {e}")))
            }
            Ok((other, _)) => Err(PushError::Refused(format!("ikerd answered {other:?}"))),
            Err(e) => Err(PushError::Unreachable(format!("ikerd unreachable: {e}"))),
        };
        let mut last = self.ike_last.borrow_mut();
        match &result {
            Ok(s) => {
                let line = format!(
                    "{n} conns ({why}): added {:?}, removed {:?}, replaced {:?}, refused {:?}",
                    s.added, s.removed, s.replaced, s.refused
                );
                tracing::info!("loaded into ikerd: {line}");
                for r in &s.refused {
                    tracing::error!("ikerd refused {r}");
                }
                last.0 = Some(conns);
                last.1 = Some(line);
            }
            Err(e) => {
                tracing::error!("{n} IKE conns not loaded into ikerd ({why}): {e}");
                last.0 = None;
                last.1 = Some(format!("failed ({why}): {e}"));
            }
        }
        result
    }

    /// Tell fwd the `leftupdown=`/`leftfirewall=` of this host's end of every IKE conn (the whole
    /// set): fwd runs only these scripts, when ikerd reports a conn up or down.
    /// Tell fwd which IKE conns exist and which subnets this host's end of each protects: fwd
    /// accepts from ikerd nothing outside them.
    async fn push_scopes(&self, conns: &[IkeConn], why: &str) {
        let list = ike_scopes(conns);
        let n = list.len();
        match self.fwd.call(FwdRequest::SetIkeScopes(list), PEER_TIMEOUT).await {
            Ok((FwdResponse::IkeScopesSet { .. }, _)) => {
                tracing::debug!("{why}: {n} IKE conns' scopes sent to fwd")
            }
            Ok((FwdResponse::Denied(e) | FwdResponse::Error(e), _)) => {
                tracing::error!("{why}: fwd refused the IKE conns' scopes: {e}")
            }
            Ok((other, _)) => tracing::error!("{why}: fwd answered {other:?} to SetIkeScopes"),
            Err(e) => tracing::warn!("{why}: IKE conns' scopes not sent: fwd unreachable: {e}"),
        }
    }

    async fn push_updowns(&self, why: &str) {
        let (conns, _) = self.ike_conns();
        self.push_scopes(&conns, why).await;
        let list = updown_configs(&self.config.borrow(), &local_addrs());
        let n = list.len();
        match self
            .fwd
            .call(FwdRequest::SetUpdowns(list), PEER_TIMEOUT)
            .await
        {
            Ok((FwdResponse::UpdownsSet { .. }, _)) => {
                if n > 0 {
                    tracing::info!("{why}: updown settings of {n} conns sent to fwd");
                }
            }
            Ok((FwdResponse::Denied(e) | FwdResponse::Error(e), _)) => {
                tracing::error!("{why}: fwd refused the updown settings: {e}")
            }
            Ok((other, _)) => tracing::error!("{why}: fwd answered {other:?} to SetUpdowns"),
            Err(e) => tracing::warn!("{why}: updown settings not sent: fwd unreachable: {e}"),
        }
    }

    /// Push the IKE conns each time the link to ikerd comes up (a restarted ikerd starts empty).
    async fn sync_ikerd(self: Rc<Self>) {
        let mut connected = self.ikerd.on_connect();
        connected.mark_changed();
        loop {
            if connected.changed().await.is_err() {
                return;
            }
            if !self.ikerd.is_up() {
                continue;
            }
            let _ = self.push_ikerd("link to ikerd up").await;
        }
    }

    /// After a reload: bring the added set in line with the new file and push it if any IKE conn
    /// changed. Returns one line per problem.
    async fn apply_reload_ike(&self, d: &ConfigDiff) -> Vec<String> {
        let new_added = reload_added(&self.added.borrow(), &self.config.borrow(), d);
        *self.added.borrow_mut() = new_added;
        let (conns, mut problems) = self.ike_conns();
        let unchanged = self.ike_last.borrow().0.as_ref() == Some(&conns) && !d.setup_changed;
        if unchanged {
            return problems;
        }
        match self.push_ikerd("reload").await {
            Ok(s) => problems.extend(s.refused.iter().map(|r| format!("ikerd refused {r}"))),
            Err(e) => problems.push(e.to_string()),
        }
        problems
    }

    /// The lines of a push's summary that concern `name`.
    fn summary_lines(name: &str, s: &LoadSummary) -> Vec<String> {
        let mine = |n: &String| n == name || n.starts_with(&format!("{name}["));
        let mut v = Vec::new();
        for (what, list) in [
            ("loaded into ikerd", &s.added),
            ("removed from ikerd", &s.removed),
            ("replaced in ikerd", &s.replaced),
        ] {
            if list.iter().any(mine) {
                v.push(format!("\"{name}\": {what}"));
            }
        }
        v
    }

    /// Change the added set with `change`, push, and answer; when ikerd refuses, the old set is
    /// put back ("nothing changed").
    async fn change_added(
        &self,
        name: &str,
        done: String,
        change: impl FnOnce(&mut BTreeMap<String, IkeAuto>),
    ) -> CtlResponse {
        let before = self.added.borrow().clone();
        change(&mut self.added.borrow_mut());
        match self.push_ikerd(&format!("ipsecctl, \"{name}\"")).await {
            Ok(s) => {
                if let Some(r) = s
                    .refused
                    .iter()
                    .find(|r| r.starts_with(name) || r.starts_with(&format!("\"{name}\"")))
                {
                    *self.added.borrow_mut() = before;
                    return CtlResponse::Error(format!("ikerd refused {r}"));
                }
                let mut lines = vec![done];
                let changes = Self::summary_lines(name, &s);
                if changes.is_empty() {
                    lines.push(format!("\"{name}\": unchanged in ikerd"));
                }
                lines.extend(changes);
                tracing::info!("{}", lines.join("; "));
                CtlResponse::Done(lines)
            }
            Err(PushError::Refused(e)) => {
                *self.added.borrow_mut() = before;
                CtlResponse::Error(format!("\"{name}\": {e}; nothing changed"))
            }
            Err(PushError::Unreachable(e)) => CtlResponse::Done(vec![
                done,
                format!("{e}: ikerd gets the conn when it comes back"),
            ]),
        }
    }

    /// `ipsecctl add NAME`.
    async fn ike_add(&self, name: &str) -> CtlResponse {
        if let Err(e) = self.check_ike_name(name) {
            return CtlResponse::Error(e);
        }
        if let Some(a) = self.added.borrow().get(name) {
            return CtlResponse::Done(vec![format!(
                "\"{name}\": already added (auto={})",
                auto_word(*a)
            )]);
        }
        if let Err(e) = self.build_ike_conn(name, IkeAuto::Add, &HostFacts::now()) {
            return CtlResponse::Error(format!("{e}; nothing changed"));
        }
        self.change_added(name, format!("\"{name}\": added"), |a| {
            a.insert(name.to_string(), IkeAuto::Add);
        })
        .await
    }

    /// `ipsecctl delete NAME`: ikerd tears its SAs down (telling the peer) and forgets it.
    async fn ike_delete(&self, name: &str) -> CtlResponse {
        if let Err(e) = self.check_ike_name(name) {
            return CtlResponse::Error(e);
        }
        if !self.added.borrow().contains_key(name) {
            return CtlResponse::Error(format!("\"{name}\" is not added; nothing changed"));
        }
        self.change_added(name, format!("\"{name}\": deleted"), |a| {
            a.remove(name);
        })
        .await
    }

    /// `ipsecctl replace NAME`: read ipsec.conf again, take this conn's new definition (only this
    /// one: the others stay as they run), and load it into ikerd in place of the old one.
    async fn ike_replace(&self, name: &str) -> CtlResponse {
        let path = self.dirs.ipsec_conf();
        let new = match load_config(&path) {
            Ok((c, _)) => c,
            Err(errors) => {
                let mut lines: Vec<String> =
                    errors.iter().take(20).map(|e| e.to_string()).collect();
                lines.push(format!(
                    "{} not read again; \"{name}\" and everything else unchanged",
                    path.display()
                ));
                return CtlResponse::Error(lines.join("\n"));
            }
        };
        let Some(conn) = new.conn(name).cloned() else {
            return CtlResponse::Error(format!(
                "no connection named \"{name}\" in {} any more (`ipsecctl delete {name}` removes it from ikerd); nothing changed",
                path.display()
            ));
        };
        if !ike_conn::is_ike(&conn) {
            return CtlResponse::Error(format!(
                "\"{name}\" is not negotiated by IKE in {}; nothing changed",
                path.display()
            ));
        }
        let host = HostFacts::now();
        let auto = self
            .added
            .borrow()
            .get(name)
            .copied()
            .unwrap_or(IkeAuto::Add);
        let checked = conf::orient(&conn, &host.addrs)
            .map_err(|e| e.to_string())
            .and_then(|o| ike_conn::ike_conn(&conn, o, auto, &host.info));
        if let Err(e) = checked {
            return CtlResponse::Error(format!("{e}; nothing changed"));
        }
        let old_conn = {
            let mut config = self.config.borrow_mut();
            let old = config.conns.iter().position(|c| c.name == name);
            match old {
                Some(i) => config
                    .conns
                    .get_mut(i)
                    .map(|slot| std::mem::replace(slot, conn)),
                None => {
                    config.conns.push(conn);
                    None
                }
            }
        };
        let resp = self
            .change_added(name, format!("\"{name}\": replaced"), |a| {
                a.insert(name.to_string(), auto);
            })
            .await;
        self.push_updowns("replace").await;
        if matches!(resp, CtlResponse::Error(_)) {
            // ikerd refused: the running definition goes back too
            let mut config = self.config.borrow_mut();
            match old_conn {
                Some(old) => {
                    if let Some(slot) = config.conns.iter_mut().find(|c| c.name == name) {
                        *slot = old;
                    }
                }
                None => config.conns.retain(|c| c.name != name),
            }
        }
        resp
    }

    /// `ipsecctl route NAME` of an IKE conn: ikerd loads it as `auto=route` (traps in fwd).
    async fn ike_route(&self, name: &str) -> CtlResponse {
        if let Err(e) = self.build_ike_conn(name, IkeAuto::Route, &HostFacts::now()) {
            return CtlResponse::Error(format!("{e}; nothing changed"));
        }
        match self.added.borrow().get(name) {
            Some(IkeAuto::Route) => {
                return CtlResponse::Done(vec![format!("\"{name}\": routed already")])
            }
            Some(IkeAuto::Start) => {
                return CtlResponse::Done(vec![format!(
                    "\"{name}\": auto=start: ikerd keeps it up (its policies are routed)"
                )])
            }
            Some(IkeAuto::Add) | None => {}
        }
        self.change_added(
            name,
            format!("\"{name}\": routed (ikerd installs its traps)"),
            |a| {
                a.insert(name.to_string(), IkeAuto::Route);
            },
        )
        .await
    }

    /// `ipsecctl unroute NAME` of an IKE conn: back to `auto=add`.
    async fn ike_unroute(&self, name: &str) -> CtlResponse {
        match self.added.borrow().get(name) {
            Some(IkeAuto::Route) => {}
            Some(a) => {
                return CtlResponse::Error(format!(
                    "\"{name}\" is not routed (auto={}); nothing changed",
                    auto_word(*a)
                ))
            }
            None => return CtlResponse::Error(format!("\"{name}\" is not added; nothing changed")),
        }
        self.change_added(name, format!("\"{name}\": unrouted"), |a| {
            a.insert(name.to_string(), IkeAuto::Add);
        })
        .await
    }

    /// Up or down through ikerd, for an added IKE conn.
    async fn ike_updown(&self, name: &str, up: bool) -> CtlResponse {
        if let Err(e) = self.check_ike_name(name) {
            return CtlResponse::Error(e);
        }
        if !self.added.borrow().contains_key(name) {
            return CtlResponse::Error(format!(
                "\"{name}\" is not added (auto=ignore): `ipsecctl add {name}` first; nothing changed"
            ));
        }
        let req = if up {
            IkerdRequest::Up(name.to_string())
        } else {
            IkerdRequest::Down(name.to_string())
        };
        match self.ikerd.call(req, PEER_TIMEOUT).await {
            Ok((IkerdResponse::Done(lines), _)) => {
                for l in &lines {
                    tracing::info!("{l}");
                }
                CtlResponse::Done(lines)
            }
            Ok((IkerdResponse::Error(e), _)) => CtlResponse::Error(format!("ikerd: {e}")),
            Ok((other, _)) => CtlResponse::Error(format!("ikerd answered {other:?}")),
            Err(e) => CtlResponse::Error(format!("ikerd unreachable: {e}")),
        }
    }

    async fn ike_up(&self, name: &str) -> CtlResponse {
        self.ike_updown(name, true).await
    }

    async fn ike_down(&self, name: &str) -> CtlResponse {
        self.ike_updown(name, false).await
    }

    async fn ike_report(&self) -> Result<IkeStatusReport, String> {
        match self.ikerd.call(IkerdRequest::IkeStatus, PEER_TIMEOUT).await {
            Ok((IkerdResponse::IkeStatus(r), _)) => Ok(r),
            Ok((IkerdResponse::Error(e), _)) => Err(format!("ikerd: {e}")),
            Ok((other, _)) => Err(format!("ikerd answered {other:?}")),
            Err(e) => Err(format!("ikerd unreachable: {e}")),
        }
    }

    async fn fwd_look(&self) -> Result<ipc::policy::Look, String> {
        match self.look().await {
            CtlResponse::Look(l) => Ok(l),
            CtlResponse::Error(e) => Err(e),
            other => Err(format!("{other:?}")),
        }
    }

    /// `ipsecctl status` / `trafficstatus`: ikerd's report with fwd's counters (when fwd answers).
    async fn ike_status(&self) -> CtlResponse {
        match self.ike_report().await {
            Ok(ike) => CtlResponse::IkeStatus {
                ike,
                look: self.fwd_look().await.ok(),
            },
            Err(e) => CtlResponse::Error(e),
        }
    }

    /// `ipsecctl barf`: see `crate::barf`.
    async fn barf(&self) -> String {
        let daemons = self.status().await;
        let binaries = daemons
            .iter()
            .filter_map(|d| match d {
                DaemonReport::Ok(s) => Some(s),
                DaemonReport::Unreachable { .. } => None,
            })
            .map(|s| {
                let exe = std::fs::read_link(format!("/proc/{}/exe", s.pid))
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|e| format!("binary unknown ({e})"));
                (
                    s.role.name().to_string(),
                    format!("pid {} uid {}, {exe}", s.pid, s.uid),
                )
            })
            .collect();
        let ike = self.ike_report().await;
        let look = self.fwd_look().await;
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into())
        };
        let pushed = self.pushed.borrow().clone();
        let input = barf::BarfInput {
            now_unix: ipc::status::now_unix(),
            hostname: read("/proc/sys/kernel/hostname"),
            kernel: read("/proc/sys/kernel/osrelease"),
            version: env!("CARGO_PKG_VERSION").to_string(),
            binaries,
            config_path: self.dirs.ipsec_conf().display().to_string(),
            config: self.config.borrow().clone(),
            config_error: self.config_error.borrow().clone(),
            added: self.added.borrow().clone(),
            manual_up: pushed.up.iter().cloned().collect(),
            routed: pushed.routed.iter().cloned().collect(),
            last_ike_load: self.ike_last.borrow().1.clone(),
            daemons,
            ike,
            look,
            logs: barf::logs(&self.dirs.run),
        };
        let text = barf::render(&input);
        barf::redact(&text, &barf::config_secrets(&self.config.borrow()))
    }

    /// `ipsecctl rereadsecrets`. A confined keyd cannot open the root-only file again: it answers
    /// `Restarting` and exits, its supervisor starts it again (which reads the file as root), and
    /// confd waits for the new keyd to say what it holds.
    async fn reread_secrets(&self) -> CtlResponse {
        match self.keyd.call(KeydRequest::RereadSecrets, PEER_TIMEOUT).await {
            Ok((KeydResponse::Restarting, _)) => {}
            Ok((KeydResponse::SecretsLoaded(s), _)) => return CtlResponse::SecretsLoaded(s),
            Ok((KeydResponse::Error(e) | KeydResponse::Denied(e), _)) => {
                return CtlResponse::Error(format!("keyd: {e}"))
            }
            Ok((other, _)) => return CtlResponse::Error(format!("keyd answered {other:?}")),
            Err(e) => return CtlResponse::Error(e.to_string()),
        }
        tracing::info!("keyd restarts to re-read the secrets; waiting for it");
        // Give the old keyd time to go, then ask until the new one answers.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match self.keyd.call(KeydRequest::SecretsSummary, PEER_TIMEOUT).await {
                Ok((KeydResponse::SecretsLoaded(s), _)) => return CtlResponse::SecretsLoaded(s),
                Ok((KeydResponse::Error(e), _)) => return CtlResponse::Error(format!("keyd: {e}")),
                _ if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Ok((other, _)) => return CtlResponse::Error(format!("keyd answered {other:?}")),
                Err(e) => {
                    return CtlResponse::Error(format!(
                        "keyd did not come back after restarting to re-read the secrets: {e}"
                    ))
                }
            }
        }
    }

    /// Install the setkey state again (a restarted fwd starts empty).
    async fn push_setkey(&self, why: &str) {
        let state = self.setkey.borrow().clone();
        if state.is_empty() {
            return;
        }
        match crate::setkey::apply::convert(&state, &local_addrs(), insecure_aead()) {
            Ok(c) => {
                let mut st = c.state;
                rename_setkey_state(&mut st);
                match self.install(st).await {
                    Ok((sas, policies)) => tracing::info!(
                        "{why}: setkey state installed again ({sas} SAs, {policies} policies)"
                    ),
                    Err(e) => tracing::error!("{why}: setkey state not installed: {e}"),
                }
            }
            Err(e) => tracing::error!("{why}: setkey state not installed: {e}"),
        }
    }

    /// `ipsecctl setkey`: parse the whole script, apply it to a copy of the setkey state, turn that
    /// into fwd state, install it in fwd as one connection (`%setkey`), and only then keep the new
    /// state. Any error leaves everything as it was.
    async fn setkey(&self, peer: &Peer, file: &str, script: &str) -> CtlResponse {
        use crate::setkey::{apply, parser};
        let fail = |errs: Vec<String>| {
            tracing::warn!(
                "setkey script {} from {peer} refused: {}",
                file.escape_debug(),
                errs.join("; ")
            );
            CtlResponse::SetkeyFailed(errs)
        };
        if script.len() > MAX_SETKEY_SCRIPT {
            return fail(vec![format!("{file}: longer than {MAX_SETKEY_SCRIPT} bytes")]);
        }
        let stmts = match parser::parse(script, file) {
            Ok(s) => s,
            Err(errs) => return fail(errs.iter().map(|e| e.to_string()).collect()),
        };
        let _order = self.setkey_lock.lock().await;
        let old = self.setkey.borrow().clone();
        let (new, mut output) =
            match apply::apply_with(&old, &stmts, file, may_read_keys(&peer.cred)) {
                Ok(r) => r,
                Err(errs) => return fail(errs.iter().map(|e| e.to_string()).collect()),
            };
        if new != old {
            let conv = match apply::convert(&new, &local_addrs(), insecure_aead()) {
                Ok(c) => c,
                Err(e) => return fail(vec![format!("{file}: {e}")]),
            };
            let mut state = conv.state;
            rename_setkey_state(&mut state);
            let res = if state.sas.is_empty() && state.policies.is_empty() {
                if old.is_empty() {
                    Ok(())
                } else {
                    self.remove(SETKEY_CONN, RemoveMode::Everything).await.map(|_| ())
                }
            } else {
                self.install(state).await.map(|_| ())
            };
            if let Err(e) = res {
                return fail(vec![format!("{file}: {e}")]);
            }
            tracing::info!(
                "setkey script {} from {peer} applied: {} SAs, {} policies",
                file.escape_debug(),
                new.sas().len(),
                new.policies().len()
            );
            output.extend(conv.notes.into_iter().map(|n| format!("note: {n}")));
            *self.setkey.borrow_mut() = new;
        }
        CtlResponse::Done(output)
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
        let reads_only = !changes_state(&req);
        if reads_only && !self.status_for_everyone && !self.server.authz().may_change_state(&peer.cred) {
            tracing::warn!("ctl.sock: permission denied for {req:?} from {peer} (ctlstatus=group)");
            return Reply::new(CtlResponse::PermissionDenied(format!(
                "permission denied: only root and members of group `{}` may read status here (ctlstatus=group)",
                self.server.authz().admin_group()
            )));
        }
        if !reads_only && !self.server.authz().may_change_state(&peer.cred) {
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
            CtlRequest::RereadSecrets => self.reread_secrets().await,
            CtlRequest::HostKeys => self.keyd_call(KeydRequest::HostKeys).await,
            CtlRequest::ManualUp(name) => self.manual_up(&name).await,
            CtlRequest::ManualDown(name) => self.manual_down(&name).await,
            CtlRequest::Route(name) => self.route(&name).await,
            CtlRequest::Unroute(name) => self.unroute(&name).await,
            CtlRequest::Look => self.look().await,
            CtlRequest::SaSecrets => self.sa_secrets(&peer).await,
            CtlRequest::Up(name) => self.ike_up(&name).await,
            CtlRequest::Down(name) => self.ike_down(&name).await,
            CtlRequest::Add(name) => self.ike_add(&name).await,
            CtlRequest::Delete(name) => self.ike_delete(&name).await,
            CtlRequest::Replace(name) => self.ike_replace(&name).await,
            CtlRequest::IkeStatus | CtlRequest::TrafficStatus => self.ike_status().await,
            CtlRequest::Barf => CtlResponse::Barf(self.barf().await),
            CtlRequest::Setkey { file, script } => self.setkey(&peer, &file, &script).await,
        })
    }
}

pub async fn run(dirs: Dirs) -> Result<(), String> {
    ipc::runtime::started_unix();
    let (listener, path) = server::listen::<CtlChannel>(&dirs.run)?;
    ipc::notify::prepare();
    // From here on: its own user, no capability, Unix and netlink (addresses) sockets only. The
    // configuration is read as that user, at start as on every reload.
    let confined = sandbox::confine(&sandbox::profile::CONFD, &sandbox::Options::new(&dirs.run))
        .map_err(|e| e.to_string())?;
    let (config, config_error) = initial_config(&dirs);
    // Who may do what on ctl.sock, fixed at start (a change of `ctlgroup=` needs a restart).
    let authz = Authz::from_system(&config.setup.ctl_group);
    let status_for_everyone = config.setup.status_for_everyone;
    let srv = Server::<CtlChannel>::new(authz);
    let mut confd = Confd::new(dirs.clone(), config, config_error, srv.clone());
    confd.status_for_everyone = status_for_everyone;
    let confd = Rc::new(confd);
    *confd.sandbox_notes.borrow_mut() = confined.notes();
    tokio::task::spawn_local(confd.clone().sync_fwd());
    tokio::task::spawn_local(confd.clone().sync_ikerd());
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

/// What orienting and building IKE conns needs to know about this host, read once per push.
struct HostFacts {
    addrs: Vec<std::net::IpAddr>,
    info: ike_conn::HostInfo,
}

impl HostFacts {
    fn now() -> HostFacts {
        let addrs = local_addrs();
        let info = ike_conn::HostInfo {
            default_route: default_route_addr(&addrs),
        };
        HostFacts { addrs, info }
    }
}

/// The address of the interface that holds the main table's default route (IPv4 first), for
/// `%defaultroute`: read from /proc/net/route and /proc/net/ipv6_route (no privilege needed).
/// fwd's own table (220) is not in those files, so an extruded `0.0.0.0/0` tunnel never counts.
fn default_route_addr(addrs: &[std::net::IpAddr]) -> Option<std::net::IpAddr> {
    let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    let (if4, if6) = default_route_ifaces(&v4, &v6);
    let Ok(ifs) = nix::ifaddrs::getifaddrs() else {
        return None;
    };
    let ifs: Vec<_> = ifs.collect();
    let pick = |name: &str, v4: bool| {
        ifs.iter().find_map(|i| {
            if i.interface_name != name {
                return None;
            }
            let a = i.address.as_ref()?;
            let ip = if v4 {
                std::net::IpAddr::V4(a.as_sockaddr_in()?.ip())
            } else {
                let ip = a.as_sockaddr_in6()?.ip();
                if ip.is_unicast_link_local() {
                    return None;
                }
                std::net::IpAddr::V6(ip)
            };
            addrs.contains(&ip).then_some(ip)
        })
    };
    if4.and_then(|n| pick(&n, true))
        .or_else(|| if6.and_then(|n| pick(&n, false)))
}

/// The interfaces of the default routes in /proc/net/route and /proc/net/ipv6_route text.
fn default_route_ifaces(v4: &str, v6: &str) -> (Option<String>, Option<String>) {
    let if4 = v4.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            [iface, "00000000", _, _, _, _, _, "00000000", ..] => Some(iface.to_string()),
            _ => None,
        }
    });
    let zero = "00000000000000000000000000000000";
    let if6 = v6.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            [dst, "00", _, _, gw, .., iface] if *dst == zero && *gw != zero && *iface != "lo" => {
                Some(iface.to_string())
            }
            _ => None,
        }
    });
    (if4, if6)
}

/// The updown settings of this host's end of every IKE conn that has any.
/// What fwd lets ikerd install: each IKE conn, with this host's subnets (or its own address).
pub fn ike_scopes(conns: &[IkeConn]) -> Vec<ipc::fwd::IkeScope> {
    conns
        .iter()
        .map(|c| {
            let mut local = c.local.subnets.clone();
            if local.is_empty() {
                local.extend(c.local.host.map(Net::host));
            }
            local.extend(c.local.sourceip.map(Net::host));
            ipc::fwd::IkeScope {
                conn: c.name.clone(),
                local,
            }
        })
        .collect()
}

fn updown_configs(config: &Config, addrs: &[std::net::IpAddr]) -> Vec<ipc::fwd::UpdownConfig> {
    config
        .conns
        .iter()
        .filter(|c| ike_conn::is_ike(c))
        .filter_map(|c| {
            let end = match conf::orient(c, addrs) {
                Ok(Orientation::LeftIsLocal) => &c.left,
                Ok(Orientation::RightIsLocal) => &c.right,
                _ => return None,
            };
            (end.updown.is_some() || end.firewall).then(|| ipc::fwd::UpdownConfig {
                conn: c.name.clone(),
                script: end.updown.clone(),
                firewall: end.firewall,
            })
        })
        .collect()
}

/// `auto=` as written.
fn auto_word(a: IkeAuto) -> &'static str {
    match a {
        IkeAuto::Add => "add",
        IkeAuto::Route => "route",
        IkeAuto::Start => "start",
    }
}

/// The added set after a reload to `new`: conns gone from the file (or no longer IKE) leave it;
/// new and modified conns follow their `auto=` (`ignore` takes a modified conn out); the others
/// (including those `ipsecctl add` added) stay as they are.
fn reload_added(
    old: &BTreeMap<String, IkeAuto>,
    new: &Config,
    d: &ConfigDiff,
) -> BTreeMap<String, IkeAuto> {
    let wanted = ike_conn::wanted(new);
    let mut out: BTreeMap<String, IkeAuto> = old
        .iter()
        .filter(|(n, _)| new.conn(n).is_some_and(ike_conn::is_ike))
        .map(|(n, a)| (n.clone(), *a))
        .collect();
    for name in d.added.iter().chain(&d.modified) {
        match wanted.get(name) {
            Some(a) => {
                out.insert(name.clone(), *a);
            }
            None => {
                out.remove(name);
            }
        }
    }
    if d.setup_changed {
        // plutoload=/plutostart= may name conns that did not change themselves
        for (n, a) in &wanted {
            out.entry(n.clone()).or_insert(*a);
        }
    }
    out
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

/// Load ipsec.conf as confd runs it: the language's checks, then the IKE conns' `ike=`/`esp=`
/// proposals (`crate::ike_conn::check_config`). `ipsecctl checkconfig` uses this too.
pub fn load_config(
    path: &std::path::Path,
) -> Result<(Config, Vec<conf::Warning>), Vec<conf::ConfError>> {
    let (config, mut warnings) = conf::load(path)?;
    let (errors, more) = ike_conn::check_config(&config);
    if errors.is_empty() {
        warnings.extend(more);
        Ok((config, warnings))
    } else {
        Err(errors)
    }
}

/// Load ipsec.conf at start-up. With errors, confd still runs (status and checkconfig say why) with
/// no connections, as pluto runs when `ipsec setup` finds a broken file.
fn initial_config(dirs: &Dirs) -> (Config, Option<String>) {
    let path = dirs.ipsec_conf();
    match load_config(&path) {
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
            conn pass\n\tleft=192.0.2.1\n\tright=192.0.2.9\n\ttype=passthrough\n\tauto=route\n\n\
            conn a\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauthby=secret\n\tauto=add\n\n\
            conn listed\n\tleft=192.0.2.1\n\tright=192.0.2.3\n\tspi=0x1000\n\tauto=ignore\n";
        let (config, _) = conf::load_str("ipsec.conf", text).unwrap();
        let p = Pushed::wanted(&config);
        assert_eq!(
            p.up.iter().map(String::as_str).collect::<Vec<_>>(),
            ["listed", "m"]
        );
        // the IKE conn `r` is ikerd's to route (its traps come from ikerd), the shunt is confd's
        assert_eq!(
            p.routed.iter().map(String::as_str).collect::<Vec<_>>(),
            ["pass"]
        );
        let added = ike_conn::wanted(&config);
        assert_eq!(
            added
                .iter()
                .map(|(n, a)| (n.as_str(), *a))
                .collect::<Vec<_>>(),
            [("a", IkeAuto::Add), ("r", IkeAuto::Route)]
        );
    }

    #[test]
    fn default_route_interfaces_from_proc() {
        let v4 =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        let v6 = "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth2\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        assert_eq!(
            default_route_ifaces(v4, v6),
            (Some("eth0".to_string()), Some("eth2".to_string()))
        );
        // no default route: the header only, and v6's unreachable default on lo does not count
        let lo_only = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        assert_eq!(
            default_route_ifaces("Iface\tDestination\n", lo_only),
            (None, None)
        );
    }

    /// The added set across reloads: removed conns leave it, new ones follow auto=, modified ones
    /// follow their new auto= (ignore takes them out), untouched ones (even `ipsecctl add`ed
    /// auto=ignore ones) stay.
    #[test]
    fn reload_keeps_the_added_set_in_line_with_the_file() {
        let conn = |n: &str, auto: &str| {
            format!(
                "conn {n}\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauthby=secret\n\tauto={auto}\n\n"
            )
        };
        let old_text = format!(
            "config setup\n\n{}{}{}{}",
            conn("keep", "add"),
            conn("byhand", "ignore"),
            conn("gone", "start"),
            conn("changes", "start")
        );
        let new_text = format!(
            "config setup\n\n{}{}{}{}",
            conn("keep", "add"),
            conn("byhand", "ignore"),
            conn("changes", "ignore"),
            conn("fresh", "route")
        );
        let (old, _) = conf::load_str("ipsec.conf", &old_text).unwrap();
        let (new, _) = conf::load_str("ipsec.conf", &new_text).unwrap();
        let mut added = ike_conn::wanted(&old);
        added.insert("byhand".into(), IkeAuto::Add);
        let d = conf::diff(&old, &new);
        let after = reload_added(&added, &new, &d);
        assert_eq!(
            after
                .iter()
                .map(|(n, a)| (n.as_str(), *a))
                .collect::<Vec<_>>(),
            [
                ("byhand", IkeAuto::Add),
                ("fresh", IkeAuto::Route),
                ("keep", IkeAuto::Add)
            ]
        );
    }

    /// A stand-in for fwd on fwd.sock: keeps whole-conn states as fwd is specified to (install
    /// replaces, KeepRoute leaves routed outbound policies as traps, Everything removes), and can be
    /// "restarted" (all connections dropped, state lost).
    #[derive(Default)]
    struct FakeFwd {
        conns: RefCell<std::collections::BTreeMap<String, ConnState>>,
        updowns: RefCell<Vec<ipc::fwd::UpdownConfig>>,
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
                FwdRequest::SetUpdowns(list) => {
                    let conns = n(list.len());
                    *self.updowns.borrow_mut() = list;
                    FwdResponse::UpdownsSet { conns }
                }
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
            t.push_str("conn r\n\tleft=127.0.0.1\n\tright=203.0.113.5\n\trightsubnet=10.5.0.0/16\n\ttype=drop\n\tauthby=never\n\tauto=route\n\n");
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
            let confd = Rc::new(Confd::new(
                dirs.clone(),
                config,
                None,
                Server::<CtlChannel>::new(Authz::default()),
            ));
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
            assert_eq!(r.policies[0].action, ipc::policy::PolicyAction::Drop);
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

    /// A stand-in for ikerd on ikerd.sock: keeps the last `LoadConns` set and answers with a
    /// summary computed as ikerd is specified to (added/removed/replaced by name, refusing conns
    /// named in `refuse`), records up/down, reports the loaded conns in `IkeStatus`.
    #[derive(Default)]
    struct FakeIkerd {
        loads: RefCell<Vec<Vec<IkeConn>>>,
        updown: RefCell<Vec<IkerdRequest>>,
        refuse: RefCell<BTreeSet<String>>,
        tasks: RefCell<Vec<tokio::task::JoinHandle<()>>>,
    }

    impl FakeIkerd {
        fn answer(&self, req: IkerdRequest) -> IkerdResponse {
            match req {
                IkerdRequest::LoadConns { settings, conns } => {
                    assert!(settings.uniqueids);
                    let refuse = self.refuse.borrow().clone();
                    let (refused, kept): (Vec<IkeConn>, Vec<IkeConn>) =
                        conns.into_iter().partition(|c| refuse.contains(&c.name));
                    let prev = self.loads.borrow().last().cloned().unwrap_or_default();
                    let mut s = LoadSummary::default();
                    for c in &kept {
                        match prev.iter().find(|p| p.name == c.name) {
                            None => s.added.push(c.name.clone()),
                            Some(p) if p != c => s.replaced.push(c.name.clone()),
                            Some(_) => {}
                        }
                    }
                    for p in &prev {
                        if !kept.iter().any(|c| c.name == p.name) {
                            s.removed.push(p.name.clone());
                        }
                    }
                    s.refused = refused
                        .iter()
                        .map(|c| format!("\"{}\": refused by the fake", c.name))
                        .collect();
                    self.loads.borrow_mut().push(kept);
                    IkerdResponse::Loaded(s)
                }
                IkerdRequest::Up(n) => {
                    self.updown.borrow_mut().push(IkerdRequest::Up(n.clone()));
                    IkerdResponse::Done(vec![format!("\"{n}\" #1: initiating Main Mode")])
                }
                IkerdRequest::Down(n) => {
                    self.updown.borrow_mut().push(IkerdRequest::Down(n.clone()));
                    IkerdResponse::Done(vec![format!("\"{n}\": terminating SAs")])
                }
                IkerdRequest::IkeStatus => IkerdResponse::IkeStatus(IkeStatusReport {
                    conns: self
                        .last()
                        .iter()
                        .map(|c| ipc::ike::ConnStatus {
                            name: c.name.clone(),
                            summary: "fake".into(),
                            auth: "PSK".into(),
                            version: "IKEv1".into(),
                            auto: c.auto,
                            state: "unrouted".into(),
                            last_failure: None,
                        })
                        .collect(),
                    ..IkeStatusReport::default()
                }),
                IkerdRequest::Ping => IkerdResponse::Pong,
                other => IkerdResponse::Error(format!("fake ikerd: {other:?}")),
            }
        }

        fn last(&self) -> Vec<IkeConn> {
            self.loads.borrow().last().cloned().unwrap_or_default()
        }

        fn names(&self) -> Vec<String> {
            self.last().iter().map(|c| c.name.clone()).collect()
        }

        fn start(run: &std::path::Path) -> Rc<FakeIkerd> {
            use ipc::channel::{ClientMsg, NoEvent, ServerMsg};
            use ipc::frame::HELLO_MAX;
            use ipc::hello::{Hello, HelloReply, PROTOCOL_VERSION};
            let _ = std::fs::remove_file(run.join("ikerd.sock"));
            let listener = tokio::net::UnixListener::bind(run.join("ikerd.sock")).unwrap();
            let fake = Rc::new(FakeIkerd::default());
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
                            role: Role::Ikerd,
                        };
                        if ipc::wire::send(&mut w, &hello, HELLO_MAX, &[])
                            .await
                            .is_err()
                        {
                            return;
                        }
                        let max = <IkerdChannel as ipc::Channel>::MAX_FRAME;
                        while let Ok((msg, _)) =
                            ipc::wire::recv::<ClientMsg<IkerdRequest>>(&mut r, max, false).await
                        {
                            let resp = f2.answer(msg.req);
                            let out: ServerMsg<IkerdResponse, NoEvent> =
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

        fn stop(&self, run: &std::path::Path) {
            for t in self.tasks.borrow_mut().drain(..) {
                t.abort();
            }
            let _ = std::fs::remove_file(run.join("ikerd.sock"));
        }
    }

    fn ike_test_conf(ike_right: &str, m_spi: &str) -> String {
        format!(
            "version 2\n\nconfig setup\n\n\
             conn ike\n\tleft=127.0.0.1\n\tright={ike_right}\n\tauthby=secret\n\tike=3des-md5-modp1024\n\
             \tleftupdown=/usr/local/sbin/my-updown\n\trightupdown=/peer/only\n\tauto=add\n\n\
             conn rt\n\tleft=127.0.0.1\n\tleftsubnet=10.1.0.0/16\n\tright=203.0.113.5\n\trightsubnet=10.5.0.0/16\n\
             \tauthby=secret\n\tauto=route\n\n\
             conn ign\n\tright=127.0.0.1\n\tleft=%any\n\tauthby=secret\n\trightfirewall=yes\n\tauto=ignore\n\n\
             conn unor\n\tleft=198.51.100.1\n\tright=198.51.100.2\n\tauthby=secret\n\tauto=ignore\n\n\
             conn m\n\tleft=127.0.0.1\n\tright=203.0.113.2\n\tspi={m_spi}\n\
             \tesp=3des-md5-96\n\tespenckey={K3DES}\n\tespauthkey={KMD5}\n\tauto=manual\n\n"
        )
    }

    /// Every IKE verb against fake fwd and ikerd daemons: the start-up push, add/delete/up/down,
    /// route/unroute of IKE conns, refusals that change nothing, ikerd restarting (pushed again),
    /// reload (pushed only when an IKE conn changed), replace (one conn re-read), status, barf
    /// without secrets, and ikerd gone.
    #[test]
    fn ike_verbs_against_fake_daemons() {
        let base = std::env::temp_dir().join(format!("confd-ike-{}", std::process::id()));
        let dirs = Dirs {
            config: base.join("etc"),
            run: base.join("run"),
        };
        std::fs::create_dir_all(&dirs.config).unwrap();
        std::fs::create_dir_all(&dirs.run).unwrap();
        std::fs::write(dirs.ipsec_conf(), ike_test_conf("203.0.113.4", "0x1000")).unwrap();
        // a log line that (wrongly) holds a manual key: barf must not pass it on
        std::fs::write(
            dirs.run.join("fwd.log"),
            format!("fwd: started\nfwd: oops {}\n", &K3DES[2..]),
        )
        .unwrap();
        let cred = |uid| ipc::peer::PeerCred {
            pid: 1,
            uid,
            gid: uid,
        };
        let root = Peer {
            role: Role::Ctl,
            cred: cred(0),
        };
        let user = Peer {
            role: Role::Ctl,
            cred: cred(1000),
        };
        ipc::runtime::run_local(async {
            let fwd = FakeFwd::start(&dirs.run);
            let ikerd = FakeIkerd::start(&dirs.run);
            let (config, error) = initial_config(&dirs);
            assert_eq!(error, None);
            let confd = Rc::new(Confd::new(
                dirs.clone(),
                config,
                None,
                Server::<CtlChannel>::new(Authz::default()),
            ));
            tokio::task::spawn_local(confd.clone().sync_fwd());
            tokio::task::spawn_local(confd.clone().sync_ikerd());
            let ask = |peer: Peer, req: CtlRequest| {
                let c = confd.clone();
                async move { c.handle(peer, req).await.resp }
            };

            // start-up: auto=add and auto=route IKE conns pushed; fwd gets only the manual conn
            until("start-up push", || ikerd.names() == ["ike", "rt"]).await;
            until("manual conn", || fwd.has("m").is_some()).await;
            let last = ikerd.last();
            let ike = last.iter().find(|c| c.name == "ike").unwrap();
            assert_eq!(ike.auto, IkeAuto::Add);
            assert_eq!(ike.local.host, Some("127.0.0.1".parse().unwrap()));
            assert_eq!(ike.remote.host, Some("203.0.113.4".parse().unwrap()));
            assert_eq!(ike.ike.len(), 1);
            assert_eq!(ike.versions.initiate, 1);
            assert_eq!(
                last.iter().find(|c| c.name == "rt").unwrap().auto,
                IkeAuto::Route
            );
            assert!(
                fwd.has("rt").is_none(),
                "ikerd, not confd, routes IKE conns"
            );
            // fwd learns this host's end's updown settings (not the peer's)
            until("updowns", || fwd.updowns.borrow().len() == 2).await;
            let u = fwd.updowns.borrow().clone();
            assert_eq!(
                (u[0].conn.as_str(), u[0].script.as_deref(), u[0].firewall),
                ("ike", Some("/usr/local/sbin/my-updown"), false)
            );
            assert_eq!(
                (u[1].conn.as_str(), u[1].script.as_deref(), u[1].firewall),
                ("ign", None, true)
            );

            // add: right-is-local with %any peer; refusals change nothing
            let t = done_text(&ask(root, CtlRequest::Add("ign".into())).await);
            assert!(
                t.contains("\"ign\": added") && t.contains("loaded into ikerd"),
                "{t}"
            );
            let ign = ikerd.last().into_iter().find(|c| c.name == "ign").unwrap();
            assert_eq!(ign.local.host, Some("127.0.0.1".parse().unwrap()));
            assert_eq!(
                (ign.remote.host, &ign.remote.id),
                (None, &ipc::ike::IkeId::Any)
            );
            let t = done_text(&ask(root, CtlRequest::Add("ign".into())).await);
            assert!(t.contains("already added"), "{t}");
            let loads = ikerd.loads.borrow().len();
            for (name, want) in [
                ("nope", "no connection named \"nope\""),
                ("m", "manually keyed"),
                ("unor", "neither left=198.51.100.1 nor right=198.51.100.2"),
            ] {
                let e = error_text(&ask(root, CtlRequest::Add(name.into())).await);
                assert!(e.contains(want) && e.contains("nothing changed"), "{e}");
            }
            assert_eq!(
                ikerd.loads.borrow().len(),
                loads,
                "no push for a refused add"
            );
            assert!(matches!(
                ask(user, CtlRequest::Add("ign".into())).await,
                CtlResponse::PermissionDenied(_)
            ));

            let e = error_text(&ask(root, CtlRequest::ManualDown("ike".into())).await);
            assert!(
                e.contains("keyed by IKE") && e.contains("ipsecctl down ike"),
                "{e}"
            );

            // up/down go to ikerd, for added conns only
            let t = done_text(&ask(root, CtlRequest::Up("ign".into())).await);
            assert!(t.contains("initiating Main Mode"), "{t}");
            done_text(&ask(root, CtlRequest::Down("ike".into())).await);
            let e = error_text(&ask(root, CtlRequest::Up("unor".into())).await);
            assert!(
                e.contains("not added") && e.contains("ipsecctl add unor"),
                "{e}"
            );
            assert_eq!(
                *ikerd.updown.borrow(),
                [
                    IkerdRequest::Up("ign".into()),
                    IkerdRequest::Down("ike".into())
                ]
            );

            // route / unroute an IKE conn: ikerd loads it as auto=route, then auto=add again
            done_text(&ask(root, CtlRequest::Route("ign".into())).await);
            assert_eq!(
                ikerd.last().iter().find(|c| c.name == "ign").unwrap().auto,
                IkeAuto::Route
            );
            assert!(fwd.has("ign").is_none());
            done_text(&ask(root, CtlRequest::Unroute("ign".into())).await);
            assert_eq!(
                ikerd.last().iter().find(|c| c.name == "ign").unwrap().auto,
                IkeAuto::Add
            );

            // delete
            let t = done_text(&ask(root, CtlRequest::Delete("ign".into())).await);
            assert!(
                t.contains("deleted") && t.contains("removed from ikerd"),
                "{t}"
            );
            assert_eq!(ikerd.names(), ["ike", "rt"]);
            let e = error_text(&ask(root, CtlRequest::Delete("ign".into())).await);
            assert!(e.contains("not added"), "{e}");

            // ikerd refuses the conn: the add is undone
            ikerd.refuse.borrow_mut().insert("ign".into());
            let e = error_text(&ask(root, CtlRequest::Add("ign".into())).await);
            assert!(e.contains("refused by the fake"), "{e}");
            assert!(!confd.added.borrow().contains_key("ign"));
            ikerd.refuse.borrow_mut().clear();

            // status for anyone: ikerd's report and fwd's look
            match ask(user, CtlRequest::IkeStatus).await {
                CtlResponse::IkeStatus { ike, look } => {
                    assert_eq!(ike.conns.len(), 2);
                    assert!(look.is_some_and(|l| l.sas.len() == 2));
                }
                other => panic!("{other:?}"),
            }

            // ikerd restarts empty: confd pushes the same set again
            ikerd.stop(&dirs.run);
            let ikerd = FakeIkerd::start(&dirs.run);
            until("re-push after ikerd restart", || {
                ikerd.names() == ["ike", "rt"]
            })
            .await;

            // reload: a manual-only change pushes nothing to ikerd; an IKE change does
            std::fs::write(dirs.ipsec_conf(), ike_test_conf("203.0.113.4", "0x1100")).unwrap();
            let loads = ikerd.loads.borrow().len();
            assert!(matches!(
                ask(root, CtlRequest::Reload).await,
                CtlResponse::Reloaded(_)
            ));
            assert_eq!(ikerd.loads.borrow().len(), loads);
            std::fs::write(dirs.ipsec_conf(), ike_test_conf("203.0.113.44", "0x1100")).unwrap();
            assert!(matches!(
                ask(root, CtlRequest::Reload).await,
                CtlResponse::Reloaded(_)
            ));
            let ike = ikerd.last().into_iter().find(|c| c.name == "ike").unwrap();
            assert_eq!(ike.remote.host, Some("203.0.113.44".parse().unwrap()));

            // replace re-reads one conn; the others stay as they run
            std::fs::write(dirs.ipsec_conf(), ike_test_conf("203.0.113.45", "0x1200")).unwrap();
            let t = done_text(&ask(root, CtlRequest::Replace("ike".into())).await);
            assert!(t.contains("replaced in ikerd"), "{t}");
            let t = done_text(&ask(root, CtlRequest::Replace("ike".into())).await);
            assert!(t.contains("\"ike\": unchanged in ikerd"), "{t}");
            let ike = ikerd.last().into_iter().find(|c| c.name == "ike").unwrap();
            assert_eq!(ike.remote.host, Some("203.0.113.45".parse().unwrap()));
            assert_eq!(
                confd
                    .config
                    .borrow()
                    .conn("m")
                    .unwrap()
                    .manual
                    .as_ref()
                    .unwrap()
                    .spi,
                Some(0x1100)
            );
            std::fs::write(
                dirs.ipsec_conf(),
                ike_test_conf("203.0.113.46", "0x1200")
                    .replace("3des-md5-modp1024", "3des-md5-bogus"),
            )
            .unwrap();
            let loads = ikerd.loads.borrow().len();
            let e = error_text(&ask(root, CtlRequest::Replace("ike".into())).await);
            assert!(
                e.contains("`bogus`") && e.contains("conn `ike`") && e.contains("unchanged"),
                "{e}"
            );
            assert_eq!(ikerd.loads.borrow().len(), loads);

            // barf: sections, no key
            let b = match ask(user, CtlRequest::Barf).await {
                CtlResponse::Barf(b) => b,
                other => panic!("{other:?}"),
            };
            for want in [
                "+ versions",
                "conn ike",
                "IKE conns added to ikerd: ike (add), rt (route)",
                "+ ikerd: connections and SAs",
                "+ fwd: SAs, policies, routes",
                "++ fwd.log",
                "fwd: oops <redacted>",
            ] {
                assert!(b.contains(want), "{want:?} missing in barf:\n{b}");
            }
            let hex = &K3DES[2..];
            assert!(!b.contains(hex) && !b.contains(&KMD5[2..]), "{b}");

            // ikerd gone: adds wait for it, up says why
            ikerd.stop(&dirs.run);
            until("ikerd link down", || !confd.ikerd.is_up()).await;
            let t = done_text(&ask(root, CtlRequest::Add("ign".into())).await);
            assert!(t.contains("when it comes back"), "{t}");
            let e = error_text(&ask(root, CtlRequest::Up("ign".into())).await);
            assert!(e.contains("ikerd unreachable"), "{e}");
            let ikerd = FakeIkerd::start(&dirs.run);
            until("pushed on reconnect", || {
                ikerd.names() == ["ign", "ike", "rt"]
            })
            .await;
            drop(fwd);
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&base);
    }

    /// A bad `ike=` is a load-time error with file and line, and keeps confd's running config.
    #[test]
    fn bad_proposals_refuse_the_file() {
        let base = std::env::temp_dir().join(format!("confd-ike-bad-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let path = base.join("ipsec.conf");
        std::fs::write(
            &path,
            "config setup\n\nconn a\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauthby=secret\n\tesp=aes128-shaa1\n\tauto=ignore\n",
        )
        .unwrap();
        let errors = load_config(&path).unwrap_err();
        assert_eq!(errors.len(), 1);
        let e = errors[0].to_string();
        assert!(
            e.starts_with(&format!("{}:3: conn `a`: esp=aes128-shaa1", path.display()))
                && e.contains("`shaa1`"),
            "{e}"
        );
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
