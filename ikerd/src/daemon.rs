//! ikerd's wiring: serves confd on ikerd.sock; links to keyd and fwd; receives its UDP port-500
//! socket from fwd (it holds no capability to bind one itself) each time the fwd link comes up;
//! feeds datagrams, fwd's events, keyd's answers and time into the sans-IO IKE engine
//! ([`crate::ikev1::Engine`]) and carries out the actions it emits. Nothing here decides anything
//! about IKE.

use crate::actions::Action;
use crate::ikev1::{Engine, EngineConfig};
use crate::io::{IkeSocket, MAX_DATAGRAM};
use ipc::client::Link;
use ipc::fwd::{FwdChannel, FwdEvent, FwdRequest, FwdResponse};
use ipc::ike::{Endpoint, IkeConn, IkeSettings, IkeStatusReport, LoadSummary};
use ipc::ikerd::{IkerdChannel, IkerdRequest, IkerdResponse};
use ipc::keyd::{KeydChannel, KeydRequest, KeydResponse};
use ipc::peer::Authz;
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::{Dirs, Role};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

const KEYD_TIMEOUT: Duration = Duration::from_secs(5);
const FWD_TIMEOUT: Duration = Duration::from_secs(5);
/// The engine's clock is checked at least this often even with no deadline (cheap).
const IDLE_TICK: Duration = Duration::from_secs(1);

/// What must reach fwd, in order.
enum FwdWork {
    Action(Action),
}

pub struct Ikerd {
    server: Rc<Server<IkerdChannel>>,
    /// How ikerd is confined (`sandbox`), for status.
    sandbox_notes: Vec<String>,
    keyd: Link<KeydChannel>,
    fwd: Link<FwdChannel>,
    /// The IKE socket fwd handed over.
    ike_socket: RefCell<Option<Rc<IkeSocket>>>,
    /// fwd's NAT-T port (IKE on it is relayed through fwd).
    natt_port: Cell<Option<u16>>,
    /// Created once the ports are known (first IKE socket from fwd); conns loaded before wait here.
    engine: RefCell<Option<Engine>>,
    pending_conns: RefCell<Option<(IkeSettings, Vec<IkeConn>)>>,
    /// Wakes the driver: new input was fed to the engine, or its deadline moved.
    kick: Notify,
    fwd_queue: mpsc::UnboundedSender<FwdWork>,
    /// fwd's events so far: (acquires, soft expiries, hard expiries, relayed IKE messages).
    fwd_events: Cell<(u64, u64, u64, u64)>,
    /// Datagrams received and sent, keyd requests made.
    counters: Cell<(u64, u64, u64)>,
}

impl Ikerd {
    fn status(&self) -> ipc::status::DaemonStatus {
        let mut s = ipc::runtime::own_status(Role::Ikerd);
        s.notes.extend(self.sandbox_notes.iter().cloned());
        s.clients = self.server.clients();
        s.links = vec![self.keyd.report(), self.fwd.report()];
        s.notes.push(match &*self.ike_socket.borrow() {
            Some(sock) => format!(
                "ike socket: udp port {}, received from fwd; NAT-T relayed on {}",
                sock.port(),
                self.natt_port
                    .get()
                    .map_or("(none)".to_string(), |p| p.to_string())
            ),
            None => "ike socket: not yet received from fwd".into(),
        });
        let (acq, soft, hard, relayed) = self.fwd_events.get();
        s.notes.push(format!(
            "from fwd: {acq} acquires, {soft} soft and {hard} hard expiries, {relayed} IKE messages on NAT-T"
        ));
        let (rx, tx, keyd) = self.counters.get();
        s.notes.push(format!(
            "IKE: {rx} datagrams in, {tx} out, {keyd} keyd requests"
        ));
        if let Some(e) = &*self.engine.borrow() {
            let st = e.status(Instant::now());
            s.notes.push(format!(
                "{} conns, {} ISAKMP SAs ({} established), {} IPsec SAs",
                st.conns.len(),
                st.ike_sas.len(),
                st.ike_sas.iter().filter(|x| x.established).count(),
                st.child_sas.iter().filter(|x| x.established).count()
            ));
        }
        s
    }

    fn count(&self, rx: u64, tx: u64, keyd: u64) {
        let (a, b, c) = self.counters.get();
        self.counters.set((a + rx, b + tx, c + keyd));
    }

    /// Run `f` on the engine if it exists, then let the driver carry out what it emitted.
    fn with_engine<T>(&self, f: impl FnOnce(&mut Engine) -> T) -> Option<T> {
        let r = self.engine.borrow_mut().as_mut().map(f);
        self.kick.notify_one();
        r
    }

    /// The driver: ticks the engine at its deadlines and executes its actions.
    async fn drive(self: Rc<Self>) {
        loop {
            let deadline = self
                .engine
                .borrow()
                .as_ref()
                .and_then(|e| e.next_deadline());
            let now = Instant::now();
            let wait = deadline
                .map(|d| d.saturating_duration_since(now))
                .unwrap_or(IDLE_TICK)
                .min(IDLE_TICK);
            tokio::select! {
                _ = self.kick.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            if let Some(e) = self.engine.borrow_mut().as_mut() {
                e.tick(Instant::now());
            }
            self.run_actions();
        }
    }

    /// Take every pending action out of the engine and start it. Sends go out at once; keyd
    /// requests run as their own tasks (their answers come back into the engine); fwd changes go
    /// through one queue so they reach fwd in the order the engine emitted them.
    fn run_actions(self: &Rc<Self>) {
        loop {
            let action = match self.engine.borrow_mut().as_mut() {
                Some(e) => e.poll_action(),
                None => None,
            };
            let Some(action) = action else { return };
            match action {
                Action::Send {
                    local,
                    remote,
                    bytes,
                } => self.send(local, remote, bytes),
                Action::Keyd { ticket, req } => {
                    self.count(0, 0, 1);
                    tokio::task::spawn_local(self.clone().ask_keyd(ticket, req));
                }
                a @ (Action::Install(_) | Action::Remove { .. } | Action::Updown { .. }) => {
                    let _ = self.fwd_queue.send(FwdWork::Action(a));
                }
            }
        }
    }

    fn send(self: &Rc<Self>, local: Endpoint, remote: Endpoint, bytes: Vec<u8>) {
        self.count(0, 1, 0);
        let sock = self.ike_socket.borrow().clone();
        match sock {
            Some(sock) if sock.port() == local.port => {
                if let Err(e) = sock.send(&bytes, remote.socket_addr(), local.ip) {
                    tracing::warn!("sending IKE to {remote} from {local}: {e}");
                }
            }
            _ if self.natt_port.get() == Some(local.port) => {
                let this = self.clone();
                tokio::task::spawn_local(async move {
                    match this
                        .fwd
                        .call(
                            FwdRequest::SendIke {
                                local,
                                remote,
                                bytes,
                            },
                            FWD_TIMEOUT,
                        )
                        .await
                    {
                        Ok((FwdResponse::IkeSent, _)) => {}
                        Ok((other, _)) => {
                            tracing::warn!("fwd did not send IKE to {remote} on NAT-T: {other:?}")
                        }
                        Err(e) => tracing::warn!("cannot relay IKE to {remote} through fwd: {e}"),
                    }
                });
            }
            _ => tracing::warn!(
                "no socket for IKE from {local} to {remote} (no IKE socket from fwd yet?)"
            ),
        }
    }

    async fn ask_keyd(self: Rc<Self>, ticket: u64, req: KeydRequest) {
        let answer: Result<KeydResponse, String> = match self.keyd.call(req, KEYD_TIMEOUT).await {
            Ok((resp, _)) => Ok(resp),
            Err(e) => Err(format!("keyd: {e}")),
        };
        self.with_engine(|e| e.keyd_answer(ticket, answer, Instant::now()));
    }

    /// Carry fwd changes out one after the other.
    async fn fwd_writer(self: Rc<Self>, mut rx: mpsc::UnboundedReceiver<FwdWork>) {
        while let Some(FwdWork::Action(a)) = rx.recv().await {
            let updown = matches!(a, Action::Updown { .. });
            let (req, what) = match a {
                Action::Install(st) => {
                    let what = format!(
                        "install \"{}\" ({} SAs, {} policies)",
                        st.conn,
                        st.sas.len(),
                        st.policies.len()
                    );
                    (FwdRequest::InstallConn(st), what)
                }
                Action::Remove { conn, mode } => {
                    let what = format!("remove \"{conn}\" ({mode:?})");
                    (FwdRequest::RemoveConn { conn, mode }, what)
                }
                Action::Updown { conn, verb, env } => {
                    let what = format!(
                        "run \"{conn}\"'s updown {} for \"{}\" ({} - {})",
                        verb.as_str(),
                        env.instance,
                        env.my_client,
                        env.peer_client
                    );
                    (FwdRequest::Updown { conn, verb, env }, what)
                }
                _ => continue,
            };
            match self.fwd.call(req, FWD_TIMEOUT).await {
                Ok((
                    FwdResponse::ConnInstalled { .. }
                    | FwdResponse::ConnRemoved { .. }
                    | FwdResponse::UpdownStarted,
                    _,
                )) => tracing::debug!("fwd: {what}: done"),
                // A conn without a script of its own or leftfirewall=yes: nothing to run.
                Ok((FwdResponse::Denied(why), _)) if updown => {
                    tracing::debug!("fwd: {what}: not run: {why}")
                }
                Ok((other, _)) => tracing::error!("fwd refused to {what}: {other:?}"),
                // A script is not run again later: it is about a moment that has passed.
                Err(e) if updown => tracing::warn!("fwd: {what}: {e} (not run)"),
                // A fwd that is down gets the whole state again when it comes back.
                Err(e) => tracing::warn!("fwd: {what}: {e} (re-sent when fwd is back)"),
            }
        }
    }

    /// What fwd reports without being asked.
    async fn fwd_events(self: Rc<Self>, mut rx: mpsc::UnboundedReceiver<FwdEvent>) {
        while let Some(ev) = rx.recv().await {
            let (mut acq, mut soft, mut hard, mut relayed) = self.fwd_events.get();
            let now = Instant::now();
            match ev {
                FwdEvent::Acquire { conn, flow } => {
                    acq += 1;
                    tracing::info!("\"{conn}\": acquire from fwd for {flow}");
                    self.with_engine(|e| e.acquire(&conn, flow, now));
                }
                FwdEvent::Expire { conn, id, hard: h } => {
                    if h {
                        hard += 1;
                    } else {
                        soft += 1;
                    }
                    self.with_engine(|e| e.expire(&conn, id, h, now));
                }
                FwdEvent::IkePacket {
                    local,
                    remote,
                    bytes,
                } => {
                    relayed += 1;
                    self.count(1, 0, 0);
                    self.with_engine(|e| e.receive(local, remote, &bytes, now));
                }
            }
            self.fwd_events.set((acq, soft, hard, relayed));
        }
    }

    /// Read the IKE socket until fwd hands over another one.
    async fn receive(self: Rc<Self>, sock: Rc<IkeSocket>) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let current = self
                .ike_socket
                .borrow()
                .as_ref()
                .is_some_and(|s| Rc::ptr_eq(s, &sock));
            if !current {
                return;
            }
            let got = sock.recv(&mut buf).await;
            match got {
                Ok(r) => {
                    self.count(1, 0, 0);
                    let Some(local_ip) = r.local else {
                        tracing::warn!(
                            "IKE datagram from {} without its destination address; dropped",
                            r.remote
                        );
                        continue;
                    };
                    let local = Endpoint::new(local_ip, sock.port());
                    let remote = Endpoint::from(r.remote);
                    let bytes = buf.get(..r.len).unwrap_or_default();
                    let now = Instant::now();
                    self.with_engine(|e| e.receive(local, remote, bytes, now));
                }
                Err(e) => {
                    tracing::warn!("reading the IKE socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Whenever the link to fwd (re)connects: fetch the IKE socket, and push the SAs and policies
    /// the engine holds (a restarted fwd has lost them).
    async fn on_fwd_connect(self: Rc<Self>) {
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
            match self
                .fwd
                .call(FwdRequest::IkeSocket, Duration::from_secs(5))
                .await
            {
                Ok((FwdResponse::IkeSocket { port, natt_port }, mut fds)) if fds.len() == 1 => {
                    if let Some(fd) = fds.pop() {
                        match IkeSocket::new(std::net::UdpSocket::from(fd)) {
                            Ok(sock) => {
                                tracing::info!(
                                    "received the IKE socket (udp {port}) from fwd; NAT-T on {natt_port:?}"
                                );
                                let sock = Rc::new(sock);
                                *self.ike_socket.borrow_mut() = Some(sock.clone());
                                self.natt_port.set(natt_port);
                                self.ensure_engine(port, natt_port.unwrap_or(4500));
                                tokio::task::spawn_local(self.clone().receive(sock));
                            }
                            Err(e) => tracing::error!("the IKE socket from fwd is unusable: {e}"),
                        }
                    }
                }
                Ok((other, fds)) => {
                    tracing::error!(
                        "fwd answered the IKE socket request with {other:?} and {} fds",
                        fds.len()
                    )
                }
                Err(e) => tracing::warn!("could not get the IKE socket from fwd: {e}"),
            }
            let states = self
                .engine
                .borrow()
                .as_ref()
                .map(|e| e.fwd_states())
                .unwrap_or_default();
            if !states.is_empty() {
                tracing::info!(
                    "re-installing {} connections' SAs and policies in fwd",
                    states.len()
                );
            }
            for st in states {
                let _ = self.fwd_queue.send(FwdWork::Action(Action::Install(st)));
            }
        }
    }

    /// Create the engine once the ports are known, and give it the conns confd sent before.
    fn ensure_engine(&self, ike_port: u16, natt_port: u16) {
        if self.engine.borrow().is_some() {
            return;
        }
        use rand::SeedableRng;
        let engine = Engine::new(
            EngineConfig {
                ike_port,
                natt_port,
            },
            Box::new(rand::rngs::StdRng::from_entropy()),
        );
        *self.engine.borrow_mut() = Some(engine);
        if let Some((settings, conns)) = self.pending_conns.borrow_mut().take() {
            let summary = self.with_engine(|e| e.load_conns(settings, conns, Instant::now()));
            if let Some(s) = summary {
                log_summary(&s);
            }
        }
        self.kick.notify_one();
    }

    fn load_conns(&self, settings: IkeSettings, conns: Vec<IkeConn>) -> IkerdResponse {
        let names: Vec<String> = conns.iter().map(|c| c.name.clone()).collect();
        match self.with_engine(|e| e.load_conns(settings, conns.clone(), Instant::now())) {
            Some(s) => {
                log_summary(&s);
                IkerdResponse::Loaded(s)
            }
            None => {
                // No IKE socket yet: keep them for when the engine starts.
                *self.pending_conns.borrow_mut() = Some((settings, conns));
                IkerdResponse::Loaded(LoadSummary {
                    added: names,
                    ..LoadSummary::default()
                })
            }
        }
    }

    fn ike_status(&self) -> IkeStatusReport {
        if let Some(e) = &*self.engine.borrow() {
            return e.status(Instant::now());
        }
        IkeStatusReport::default()
    }
}

fn log_summary(s: &LoadSummary) {
    if !(s.added.is_empty() && s.removed.is_empty() && s.replaced.is_empty()) {
        tracing::info!(
            "conns: {} added, {} removed, {} replaced",
            s.added.len(),
            s.removed.len(),
            s.replaced.len()
        );
    }
    for r in &s.refused {
        tracing::warn!("conn refused: {r}");
    }
}

impl Handler<IkerdChannel> for Ikerd {
    async fn handle(&self, peer: Peer, req: IkerdRequest) -> Reply<IkerdResponse> {
        tracing::debug!(
            "request from {peer}: {}",
            match &req {
                IkerdRequest::LoadConns { conns, .. } =>
                    format!("LoadConns ({} conns)", conns.len()),
                other => format!("{other:?}"),
            }
        );
        let now = Instant::now();
        let no_engine = || IkerdResponse::Error("ikerd has no IKE socket from fwd yet".into());
        Reply::new(match req {
            IkerdRequest::Ping => IkerdResponse::Pong,
            IkerdRequest::Status => IkerdResponse::Status(self.status()),
            IkerdRequest::LoadConns { settings, conns } => self.load_conns(settings, conns),
            IkerdRequest::Up(name) => match self.with_engine(|e| e.initiate(&name, now)) {
                Some(Ok(line)) => IkerdResponse::Done(vec![line]),
                Some(Err(e)) => IkerdResponse::Error(e),
                None => no_engine(),
            },
            IkerdRequest::Down(name) => match self.with_engine(|e| e.terminate(&name, now)) {
                Some(Ok(line)) => IkerdResponse::Done(vec![line]),
                Some(Err(e)) => IkerdResponse::Error(e),
                None => no_engine(),
            },
            IkerdRequest::IkeStatus => IkerdResponse::IkeStatus(self.ike_status()),
        })
    }
}

pub async fn run(dirs: Dirs) -> Result<(), String> {
    ipc::runtime::started_unix();
    // OpenSSL reads its configuration now: once confined, ikerd cannot open any file.
    openssl::init();
    let (listener, path) = server::listen::<IkerdChannel>(&dirs.run)?;
    let authz = Authz::from_system(sandbox::ADMIN_GROUP);
    ipc::notify::prepare();
    // From here on: its own user, no capability, no file, Unix sockets only (its UDP socket comes
    // from fwd, already bound).
    let confined = sandbox::confine(&sandbox::profile::IKERD, &sandbox::Options::new(&dirs.run))
        .map_err(|e| e.to_string())?;
    let srv = Server::<IkerdChannel>::new(authz);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (fwd_tx, fwd_rx) = mpsc::unbounded_channel();
    let ikerd = Rc::new(Ikerd {
        server: srv.clone(),
        sandbox_notes: confined.notes(),
        keyd: Link::spawn(dirs.socket::<KeydChannel>(), Role::Ikerd, None),
        fwd: Link::spawn(dirs.socket::<FwdChannel>(), Role::Ikerd, Some(events_tx)),
        ike_socket: RefCell::new(None),
        natt_port: Cell::new(None),
        engine: RefCell::new(None),
        pending_conns: RefCell::new(None),
        kick: Notify::new(),
        fwd_queue: fwd_tx,
        fwd_events: Cell::new((0, 0, 0, 0)),
        counters: Cell::new((0, 0, 0)),
    });
    tokio::task::spawn_local(ikerd.clone().fwd_events(events_rx));
    tokio::task::spawn_local(ikerd.clone().fwd_writer(fwd_rx));
    tokio::task::spawn_local(ikerd.clone().on_fwd_connect());
    tokio::task::spawn_local(ikerd.clone().drive());
    srv.spawn(listener, ikerd);
    ipc::runtime::ready_until_signal(Role::Ikerd, &path).await;
    Ok(())
}
