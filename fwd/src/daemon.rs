//! fwd's wiring: binds UDP 500 and 4500 (it is the only daemon with the privilege to) and hands the
//! port-500 socket to ikerd; opens the persistent tunnel device, the raw ESP/AH sockets and its
//! routing table; runs the datapath threads ([`crate::pump`]); and serves ikerd and confd on
//! fwd.sock, turning their requests into engine operations ([`crate::datapath::Engine`]) and route
//! changes.
//!
//! Routes follow the policies, with one rule that keeps cleartext from leaking while fwd restarts:
//! a route is deleted only when a policy this fwd holds stops wanting it. Routes left from a previous
//! run stay (they lead into the tunnel device, where packets with no SA are dropped) until confd and
//! ikerd have pushed their state again.

use crate::datapath::{Engine, EngineConfig, Origin, RouteKind};
use crate::io::{self, EspSockets, NattSocket, Routes, Tun};
use crate::pump::{Pump, Wire};
use ipc::fwd::{FwdChannel, FwdEvent, FwdRequest, FwdResponse};
use ipc::peer::Authz;
use ipc::policy::Net;
use ipc::sa::SaId;
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::{Dirs, Role};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv6Addr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct PortArgs {
    /// UDP port for IKE (handed to ikerd).
    #[arg(long, env = "FERROSWAN_IKE_PORT", default_value_t = 500)]
    pub ike_port: u16,
    /// UDP port for NAT-T: ESP in UDP stays in fwd; IKE (non-ESP marker) is relayed to ikerd.
    #[arg(long, env = "FERROSWAN_NATT_PORT", default_value_t = 4500)]
    pub natt_port: u16,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DatapathArgs {
    /// The tunnel device (persistent: it and its routes outlive fwd, so a dead fwd drops packets).
    #[arg(long, env = "FERROSWAN_TUN", default_value = "ipsec0")]
    pub tun: String,
    /// MTU of the tunnel device.
    #[arg(long, env = "FERROSWAN_TUN_MTU", default_value_t = 1400)]
    pub tun_mtu: u32,
    /// Path MTU towards the peers; DF packets that would not fit once sealed get ICMP "fragmentation
    /// needed" back.
    #[arg(long, env = "FERROSWAN_OUTER_MTU", default_value_t = 1500)]
    pub outer_mtu: u32,
    /// Routing table for tunnelled destinations (an ip rule sends unmarked packets through it).
    #[arg(long, env = "FERROSWAN_ROUTE_TABLE", default_value_t = 220)]
    pub route_table: u32,
    /// The updown script of conns with `leftfirewall=yes` and no `leftupdown=` of their own.
    #[arg(
        long,
        env = "FERROSWAN_UPDOWN_DEFAULT",
        default_value = "/usr/libexec/ferroswan/_updown"
    )]
    pub updown_default: PathBuf,
}

/// One updown script to run: (conn, verb, command, environment).
type UpdownJob = (String, ipc::fwd::UpdownVerb, String, Vec<(String, String)>);

/// Outbound sequence numbers of every SA (manual or negotiated) are saved this often...
const SEQ_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// ...and a restarted fwd resumes this far above the saved value: more than any gateway sends
/// between two checkpoints, so a peer with anti-replay on never sees a number again.
const SEQ_RESUME_MARGIN: u64 = 1 << 24;
const SEQ_FILE: &str = "fwd-txseq.state";

pub struct Fwd {
    server: Rc<Server<FwdChannel>>,
    ike: UdpSocket,
    engine: Arc<Engine>,
    wire: Arc<Wire>,
    pump: RefCell<Option<Pump>>,
    routes: RefCell<Routes>,
    /// Routes the policies of this run wanted last time (only these are ever deleted).
    routed: RefCell<BTreeSet<(Net, RouteKind)>>,
    /// fwd's own writable directory (`RUN_DIR/fwd/`, owned by its service user): the saved
    /// sequence numbers.
    state_dir: PathBuf,
    /// How fwd is confined (`sandbox`), for status.
    sandbox_notes: Vec<String>,
    /// The IKE conns ikerd may install for (from confd); None until confd has said.
    ike_scopes: RefCell<Option<crate::ike_scope::IkeScopes>>,
    scopes_set: tokio::sync::Notify,
    /// Sequence numbers saved by the previous run, applied when confd re-installs those SAs.
    saved_seqs: RefCell<HashMap<SaId, u64>>,
    last_saved: RefCell<Vec<(SaId, u64)>>,
    updowns: RefCell<crate::updown::Updowns>,
    updown_queue: tokio::sync::mpsc::Sender<UpdownJob>,
}

fn origin(role: Role) -> Option<Origin> {
    match role {
        Role::Confd => Some(Origin::Confd),
        Role::Ikerd => Some(Origin::Ikerd),
        _ => None,
    }
}

/// Bind a dual-stack UDP socket on every address (IPv4-mapped included).
fn bind_udp(port: u16) -> std::io::Result<UdpSocket> {
    use nix::sys::socket::{setsockopt, sockopt};
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet6,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&sock, sockopt::Ipv6V6Only, &false)?;
    setsockopt(&sock, sockopt::ReuseAddr, &true)?;
    let udp = UdpSocket::from(sock);
    let raw = nix::sys::socket::SockaddrIn6::from(std::net::SocketAddrV6::new(
        Ipv6Addr::UNSPECIFIED,
        port,
        0,
        0,
    ));
    use std::os::fd::AsRawFd;
    nix::sys::socket::bind(udp.as_raw_fd(), &raw)?;
    Ok(udp)
}

fn seq_line(id: &SaId, seq: u64) -> String {
    let proto = match id.proto {
        ipc::sa::IpsecProto::Esp => "esp",
        ipc::sa::IpsecProto::Ah => "ah",
    };
    format!("{:#010x} {proto} {} {seq}\n", id.spi, id.dst)
}

/// Parse the checkpoint file; lines that do not parse are skipped (it is ours, but never trusted).
fn parse_seqs(text: &str) -> HashMap<SaId, u64> {
    let mut out = HashMap::new();
    for line in text.lines().take(100_000) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [spi, proto, dst, seq] = f.as_slice() else {
            continue;
        };
        let spi = u32::from_str_radix(spi.trim_start_matches("0x"), 16).ok();
        let proto = match *proto {
            "esp" => Some(ipc::sa::IpsecProto::Esp),
            "ah" => Some(ipc::sa::IpsecProto::Ah),
            _ => None,
        };
        if let (Some(spi), Some(proto), Ok(dst), Ok(seq)) = (spi, proto, dst.parse(), seq.parse()) {
            out.insert(SaId { spi, proto, dst }, seq);
        }
    }
    out
}

impl Fwd {
    fn status(&self) -> ipc::status::DaemonStatus {
        let mut s = ipc::runtime::own_status(Role::Fwd);
        s.notes.extend(self.sandbox_notes.iter().cloned());
        s.clients = self.server.clients();
        for (what, sock) in [("ike", &self.ike), ("nat-t", self.wire.natt.socket())] {
            if let Ok(a) = sock.local_addr() {
                s.notes
                    .push(format!("{what} socket: udp port {}", a.port()));
            }
        }
        let look = self.engine.look(Instant::now());
        s.notes.push(format!(
            "SAs: {} ({} from confd, {} from ikerd)",
            look.sas.len(),
            self.engine.sa_count(Origin::Confd),
            self.engine.sa_count(Origin::Ikerd)
        ));
        s.notes.push(format!(
            "tunnel device {} (mtu {}); {} policies, {} routes",
            self.wire.tun.name(),
            self.wire.tun.mtu().unwrap_or(0),
            look.policies.len(),
            self.routed.borrow().len()
        ));
        if let Some(p) = &*self.pump.borrow() {
            let st = &p.stats;
            s.notes.push(format!(
                "datapath: {} packets from the tunnel device, {} from the wire, {} send errors, {} IKE on NAT-T ({} not relayed)",
                st.tun_in.load(Ordering::Relaxed),
                st.wire_in.load(Ordering::Relaxed),
                st.send_errors.load(Ordering::Relaxed),
                st.natt_ike.load(Ordering::Relaxed),
                st.natt_ike_dropped.load(Ordering::Relaxed),
            ));
        }
        let drops: Vec<String> = look
            .drops
            .iter()
            .map(|d| format!("{} {}", d.packets, d.reason))
            .collect();
        if !drops.is_empty() {
            s.notes.push(format!("dropped: {}", drops.join(", ")));
        }
        s
    }

    /// Bring the routing table in line with the policies: add what they want, delete only what this
    /// run's policies wanted before and no longer do.
    fn sync_routes(&self) {
        let wanted: BTreeSet<(Net, RouteKind)> = self.engine.wanted_routes().into_iter().collect();
        let mut routes = self.routes.borrow_mut();
        let mut routed = self.routed.borrow_mut();
        let ifindex = self.wire.tun.ifindex();
        for (net, kind) in wanted.difference(&routed) {
            let r = match kind {
                RouteKind::Tunnel => routes.add_tunnel_route(*net, ifindex),
                RouteKind::Throw => routes.add_throw_route(*net),
            };
            match r {
                Ok(()) => tracing::info!(
                    "route {net} {}",
                    match kind {
                        RouteKind::Tunnel => format!("dev {}", self.wire.tun.name()),
                        RouteKind::Throw => "throw (cleartext)".into(),
                    }
                ),
                Err(e) => tracing::error!("cannot add route {net}: {e}"),
            }
        }
        for (net, _) in routed.difference(&wanted) {
            if wanted.iter().any(|(n, _)| n == net) {
                continue; // same net, other kind: already replaced above
            }
            match routes.del_route(*net) {
                Ok(_) => tracing::info!("route {net} removed"),
                Err(e) => tracing::error!("cannot remove route {net}: {e}"),
            }
        }
        *routed = wanted;
    }

    fn resume_seqs(&self, st: &ipc::policy::ConnState) {
        let saved = self.saved_seqs.borrow();
        for sa in &st.sas {
            if sa.direction != ipc::sa::Direction::Out {
                continue;
            }
            if let Some(seq) = saved.get(&sa.id()) {
                let at = seq.saturating_add(SEQ_RESUME_MARGIN);
                self.engine.resume_tx_seq(&sa.id(), at);
                tracing::info!(
                    "\"{}\": SA {:#010x} resumes its sequence numbers above {at} (saved before the restart)",
                    st.conn,
                    sa.spi
                );
            }
        }
    }

    fn checkpoint_seqs(&self) {
        let seqs = self.engine.tx_seqs();
        if *self.last_saved.borrow() == seqs {
            return;
        }
        let text: String = seqs.iter().map(|(id, s)| seq_line(id, *s)).collect();
        let path = self.state_dir.join(SEQ_FILE);
        let tmp = self.state_dir.join(format!("{SEQ_FILE}.tmp"));
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!("cannot save sequence numbers to {}: {e}", path.display());
        }
        *self.last_saved.borrow_mut() = seqs;
    }

    fn ike_socket(&self, peer: Peer) -> Reply<FwdResponse> {
        if peer.role != Role::Ikerd {
            tracing::warn!("fwd.sock: refused IKE socket to {peer}: only ikerd receives it");
            return Reply::new(FwdResponse::Denied(
                "only ikerd receives the IKE socket".into(),
            ));
        }
        let port = self.ike.local_addr().map(|a| a.port()).unwrap_or(0);
        match self.ike.try_clone() {
            Ok(dup) => {
                tracing::info!("handing the IKE socket (udp {port}) to {peer}");
                Reply {
                    resp: FwdResponse::IkeSocket {
                        port,
                        natt_port: Some(self.wire.natt.port()),
                    },
                    fds: vec![OwnedFd::from(dup)],
                }
            }
            Err(e) => Reply::new(FwdResponse::Error(format!(
                "cannot duplicate the IKE socket: {e}"
            ))),
        }
    }

    /// ikerd's IKE message out of the NAT-T socket, with the non-ESP marker.
    fn send_ike(
        &self,
        peer: Peer,
        local: ipc::ike::Endpoint,
        remote: ipc::ike::Endpoint,
        bytes: &[u8],
    ) -> FwdResponse {
        let natt_port = self.wire.natt.port();
        let why = if peer.role != Role::Ikerd {
            Some("only ikerd sends IKE messages".to_string())
        } else if local.port != natt_port {
            Some(format!(
                "source port {} is not the NAT-T port {natt_port}",
                local.port
            ))
        } else if bytes.len() < 28 || bytes.len() > ipc::fwd::MAX_IKE_RELAY {
            Some(format!("an IKE message of {} bytes", bytes.len()))
        } else if remote.port == 0 || remote.ip.is_unspecified() || remote.ip.is_multicast() {
            Some(format!("destination {remote}"))
        } else {
            None
        };
        if let Some(why) = why {
            tracing::warn!("fwd.sock: refused SendIke from {peer}: {why}");
            return FwdResponse::Denied(why);
        }
        let from = crate::datapath::control::canonical(local.ip);
        let to =
            std::net::SocketAddr::new(crate::datapath::control::canonical(remote.ip), remote.port);
        match self.wire.natt.send_ike(bytes, to, from) {
            Ok(()) => FwdResponse::IkeSent,
            Err(e) => {
                tracing::debug!("sending IKE to {to} from {from}: {e}");
                FwdResponse::Error(format!("sending to {to}: {e}"))
            }
        }
    }

    /// confd's `SetUpdowns` and ikerd's `Updown`.
    fn updown_request(&self, peer: Peer, req: FwdRequest) -> FwdResponse {
        match req {
            FwdRequest::SetUpdowns(list) => {
                if peer.role != Role::Confd {
                    tracing::warn!("fwd.sock: refused SetUpdowns from {peer}: only confd configures updown scripts");
                    return FwdResponse::Denied("only confd configures updown scripts".into());
                }
                match self.updowns.borrow_mut().set(list) {
                    Ok(n) => {
                        tracing::info!("{n} conns with updown scripts, from {peer}");
                        FwdResponse::UpdownsSet { conns: n as u32 }
                    }
                    Err(e) => {
                        tracing::warn!("fwd.sock: refused SetUpdowns from {peer}: {e}");
                        FwdResponse::Denied(e)
                    }
                }
            }
            FwdRequest::Updown { conn, verb, env } => {
                if peer.role != Role::Ikerd {
                    tracing::warn!("fwd.sock: refused Updown from {peer}: only ikerd reports conns up and down");
                    return FwdResponse::Denied("only ikerd asks for updown scripts".into());
                }
                let Some(command) = self.updowns.borrow().command(&conn) else {
                    return FwdResponse::Denied(format!("conn \"{conn}\" has no updown script"));
                };
                let env = match crate::updown::environment(verb, &env, self.wire.tun.name()) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!("fwd.sock: refused Updown for \"{conn}\" from {peer}: {e}");
                        return FwdResponse::Denied(e);
                    }
                };
                tracing::info!("\"{conn}\": running updown {} for {peer}", verb.as_str());
                match self.updown_queue.try_send((conn, verb, command, env)) {
                    Ok(()) => FwdResponse::UpdownStarted,
                    Err(_) => FwdResponse::Error("too many updown scripts waiting".into()),
                }
            }
            other => FwdResponse::Error(format!("not an updown request: {other:?}")),
        }
    }

    /// Pass IKE messages that arrived on the NAT-T socket on to ikerd.
    async fn relay_ike(
        self: Rc<Self>,
        mut rx: tokio::sync::mpsc::Receiver<crate::pump::IkeRelayed>,
    ) {
        while let Some((local, remote, bytes)) = rx.recv().await {
            let ev = FwdEvent::IkePacket {
                local: local.into(),
                remote: remote.into(),
                bytes,
            };
            if self.server.send_event(Role::Ikerd, &ev).await == 0 {
                tracing::debug!("IKE message on NAT-T from {remote}: no ikerd connected");
            }
        }
    }

    fn handle_change(&self, peer: Peer, by: Origin, req: FwdRequest) -> FwdResponse {
        let now = Instant::now();
        let refused = |what: String, why: String| {
            tracing::warn!("fwd.sock: refused {what} from {peer}: {why}");
            FwdResponse::Denied(why)
        };
        let resp = match req {
            FwdRequest::AddSa(spec) => match self.engine.add_sa(by, &spec, now) {
                Ok(id) => {
                    tracing::info!(
                        "\"{}\": installed {:?} SA {:#010x} {} -> {} ({:?}/{:?}) for {peer}",
                        spec.conn,
                        spec.direction,
                        spec.spi,
                        spec.src,
                        spec.dst,
                        spec.encr,
                        spec.integ
                    );
                    FwdResponse::SaAdded(id)
                }
                Err(e) => refused(format!("SA {:#010x}", spec.spi), e),
            },
            FwdRequest::DeleteSa(id) => match self.engine.delete_sa(&id) {
                Ok(conn) => {
                    tracing::info!("\"{conn}\": deleted SA {:#010x} for {peer}", id.spi);
                    FwdResponse::SaDeleted(id)
                }
                Err(e) => FwdResponse::Error(e),
            },
            FwdRequest::AddPolicy(p) => match self.engine.add_policy(by, &p) {
                Ok(id) => {
                    tracing::info!(
                        "\"{}\": policy #{id} {:?} {:?} for {peer}",
                        p.conn,
                        p.direction,
                        p.action
                    );
                    FwdResponse::PolicyAdded { id }
                }
                Err(e) => refused(format!("policy of \"{}\"", p.conn), e),
            },
            FwdRequest::InstallConn(st) => match self.engine.install_conn(by, &st, now) {
                Ok((sas, policies)) => {
                    // Manual SAs from confd and negotiated ones from ikerd alike come back after a
                    // restart with the keys they had: their sequence numbers must not start again.
                    self.resume_seqs(&st);
                    tracing::info!(
                        "\"{}\": installed {sas} SAs and {policies} policies for {peer}",
                        st.conn
                    );
                    FwdResponse::ConnInstalled {
                        conn: st.conn,
                        sas,
                        policies,
                    }
                }
                Err(e) => refused(format!("connection \"{}\"", st.conn), e),
            },
            FwdRequest::RemoveConn { conn, mode } => {
                let (sas, policies) = self.engine.remove_conn(&conn, mode);
                tracing::info!(
                    "\"{conn}\": removed {sas} SAs and {policies} policies ({mode:?}) for {peer}"
                );
                FwdResponse::ConnRemoved {
                    conn,
                    sas,
                    policies,
                }
            }
            FwdRequest::Flush(what) => {
                let removed = self.engine.flush(by, what);
                tracing::info!("flushed {removed} ({what:?}) for {peer}");
                FwdResponse::Flushed { removed }
            }
            other => FwdResponse::Error(format!("not a change: {other:?}")),
        };
        self.sync_routes();
        resp
    }

    fn look(&self) -> FwdResponse {
        let mut look = self.engine.look(Instant::now());
        look.tun = self.wire.tun.name().to_owned();
        look.tun_mtu = self.wire.tun.mtu().unwrap_or(0);
        look.routes = self
            .routes
            .borrow_mut()
            .list()
            .unwrap_or_else(|e| vec![format!("(cannot list routes: {e})")]);
        FwdResponse::Look(look)
    }

    /// Time-driven work: lifetimes, events to ikerd, sequence-number checkpoints.
    async fn timers(self: Rc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut last_checkpoint = Instant::now();
        loop {
            tick.tick().await;
            let now = Instant::now();
            self.engine.tick(now);
            for ev in self.engine.take_events() {
                match &ev {
                    FwdEvent::Acquire { conn, flow } => {
                        tracing::info!("\"{conn}\": acquire for {flow}")
                    }
                    FwdEvent::Expire { conn, id, hard } => tracing::info!(
                        "\"{conn}\": SA {:#010x} {} lifetime reached",
                        id.spi,
                        if *hard { "hard" } else { "soft" }
                    ),
                    FwdEvent::IkePacket { .. } => {}
                }
                if self.server.send_event(Role::Ikerd, &ev).await == 0 {
                    tracing::debug!("no ikerd connected to receive {ev:?}");
                }
            }
            if now.duration_since(last_checkpoint) >= SEQ_CHECKPOINT_EVERY {
                last_checkpoint = now;
                self.checkpoint_seqs();
            }
        }
    }
}

impl Handler<FwdChannel> for Fwd {
    async fn handle(&self, peer: Peer, req: FwdRequest) -> Reply<FwdResponse> {
        tracing::debug!(
            "request from {peer}: {}",
            match &req {
                FwdRequest::AddSa(_) => "AddSa".to_string(),
                FwdRequest::InstallConn(st) => format!("InstallConn \"{}\"", st.conn),
                other => format!("{other:?}"),
            }
        );
        let Some(by) = origin(peer.role) else {
            tracing::warn!("fwd.sock: refused a request from {peer}: not ikerd or confd");
            return Reply::new(FwdResponse::Denied(
                "only ikerd and confd talk to fwd".into(),
            ));
        };
        Reply::new(match req {
            FwdRequest::Ping => FwdResponse::Pong,
            FwdRequest::Status => FwdResponse::Status(self.status()),
            FwdRequest::IkeSocket => return self.ike_socket(peer),
            FwdRequest::SendIke {
                local,
                remote,
                bytes,
            } => self.send_ike(peer, local, remote, &bytes),
            FwdRequest::SetIkeScopes(list) => self.set_ike_scopes(peer, list),
            req @ (FwdRequest::SetUpdowns(_) | FwdRequest::Updown { .. }) => {
                self.updown_request(peer, req)
            }
            FwdRequest::Look => self.look(),
            FwdRequest::Secrets => {
                if by != Origin::Confd {
                    tracing::warn!(
                        "fwd.sock: refused SA keys to {peer}: only confd (for root) gets them"
                    );
                    FwdResponse::Denied("SA keys go only to confd, for root".into())
                } else {
                    tracing::info!("handing SA keys to {peer} (ipsecctl sa --tcpdump-secrets)");
                    FwdResponse::Secrets(self.engine.secrets())
                }
            }
            change if by == Origin::Ikerd => match self.ikerd_may(&change).await {
                Ok(()) => self.handle_change(peer, by, change),
                Err(why) => {
                    tracing::warn!("fwd.sock: refused {} from {peer}: {why}", change_name(&change));
                    FwdResponse::Denied(why)
                }
            },
            change => self.handle_change(peer, by, change),
        })
    }
}

fn change_name(req: &FwdRequest) -> String {
    match req {
        FwdRequest::AddSa(s) => format!("SA {:#010x} of \"{}\"", s.spi, s.conn.escape_debug()),
        FwdRequest::AddPolicy(p) => format!("a policy of \"{}\"", p.conn.escape_debug()),
        FwdRequest::InstallConn(st) => format!("conn \"{}\"", st.conn.escape_debug()),
        FwdRequest::RemoveConn { conn, .. } => format!("removal of \"{}\"", conn.escape_debug()),
        _ => "a request".into(),
    }
}

impl Fwd {
    /// confd's list of IKE conns and their local subnets.
    fn set_ike_scopes(&self, peer: Peer, list: Vec<ipc::fwd::IkeScope>) -> FwdResponse {
        if peer.role != Role::Confd {
            tracing::warn!("fwd.sock: refused SetIkeScopes from {peer}: only confd says which conns exist");
            return FwdResponse::Denied("only confd says which IKE conns exist".into());
        }
        match crate::ike_scope::IkeScopes::new(list) {
            Ok(s) => {
                let n = s.len();
                *self.ike_scopes.borrow_mut() = Some(s);
                self.scopes_set.notify_waiters();
                FwdResponse::IkeScopesSet {
                    conns: u32::try_from(n).unwrap_or(u32::MAX),
                }
            }
            Err(e) => {
                tracing::warn!("fwd.sock: refused SetIkeScopes from {peer}: {e}");
                FwdResponse::Denied(e)
            }
        }
    }

    /// May ikerd make this change? Only within the IKE conns confd named (waiting a little for
    /// confd's list after a restart of fwd, when ikerd may be first to reconnect).
    async fn ikerd_may(&self, req: &FwdRequest) -> Result<(), String> {
        if self.ike_scopes.borrow().is_none() {
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                self.scopes_set.notified(),
            )
            .await;
        }
        let scopes = self.ike_scopes.borrow();
        let Some(s) = scopes.as_ref() else {
            return Err("confd has not said which IKE conns exist yet".into());
        };
        match req {
            FwdRequest::AddSa(spec) => s.check_conn(&spec.conn).map(|_| ()),
            FwdRequest::AddPolicy(p) => s.check_policy(p),
            FwdRequest::InstallConn(st) => s.check_state(st),
            FwdRequest::RemoveConn { conn, .. } => s.check_conn(conn).map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// `RUN_DIR/fwd/`, created owned by fwd's service user (mode 0700) so that fwd, once confined, can
/// still save its sequence numbers there.
fn state_dir(run: &std::path::Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = run.join("fwd");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if nix::unistd::geteuid().is_root() {
        if let Ok(Some(u)) = nix::unistd::User::from_name(sandbox::profile::FWD.user) {
            nix::unistd::chown(&dir, Some(u.uid), Some(u.gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
    }
    Ok(dir)
}

pub async fn run(dirs: Dirs, ports: PortArgs, dp: DatapathArgs) -> Result<(), String> {
    ipc::runtime::started_unix();
    let ike = bind_udp(ports.ike_port)
        .map_err(|e| format!("cannot bind UDP port {}: {e}", ports.ike_port))?;
    io::set_bypass_mark(ike.as_fd()).map_err(|e| format!("SO_MARK on the IKE socket: {e}"))?;
    let natt = bind_udp(ports.natt_port)
        .map_err(|e| format!("cannot bind UDP port {}: {e}", ports.natt_port))?;
    natt.set_nonblocking(true).map_err(|e| e.to_string())?;
    let natt = NattSocket::new(natt).map_err(|e| format!("NAT-T socket: {e}"))?;
    let tun = Tun::open_or_create(&dp.tun, dp.tun_mtu)
        .map_err(|e| format!("tunnel device {}: {e}", dp.tun))?;
    let raw = EspSockets::open().map_err(|e| format!("raw ESP/AH sockets: {e}"))?;
    let mut routes = Routes::with_table(dp.route_table).map_err(|e| format!("netlink: {e}"))?;
    routes
        .ensure_rules()
        .map_err(|e| format!("ip rule for table {}: {e}", dp.route_table))?;
    let engine = Arc::new(Engine::new(EngineConfig {
        tun_mtu: dp.tun_mtu,
        outer_mtu: dp.outer_mtu,
        ..EngineConfig::default()
    }));
    let wire = Arc::new(Wire { tun, raw, natt });
    let state_dir = state_dir(&dirs.run)?;
    let saved = std::fs::read_to_string(state_dir.join(SEQ_FILE))
        .map(|t| parse_seqs(&t))
        .unwrap_or_default();
    if !saved.is_empty() {
        tracing::info!(
            "{} saved sequence numbers from the previous run",
            saved.len()
        );
    }
    let (listener, path) = server::listen::<FwdChannel>(&dirs.run)?;
    let authz = Authz::from_system(sandbox::ADMIN_GROUP);
    ipc::notify::prepare();
    // Everything privileged is open: from here on its own user with CAP_NET_ADMIN and CAP_NET_RAW
    // only. Before the datapath threads start, so they inherit it.
    let confined = sandbox::confine(&sandbox::profile::FWD, &sandbox::Options::new(&dirs.run))
        .map_err(|e| e.to_string())?;
    let (relay_tx, relay_rx) = tokio::sync::mpsc::channel(crate::pump::IKE_RELAY_QUEUE);
    let pump = Pump::start(engine.clone(), wire.clone(), Some(relay_tx))
        .map_err(|e| format!("datapath threads: {e}"))?;
    let srv = Server::<FwdChannel>::new(authz);
    let (updown_tx, mut updown_rx) =
        tokio::sync::mpsc::channel::<UpdownJob>(crate::updown::MAX_QUEUED);
    // Scripts run one at a time, in the order ikerd asked (FreeS/WAN ran them synchronously), by
    // the supervisor, as root.
    let supervisor = ipc::client::Link::<ipc::supervisor::SupervisorChannel>::spawn(
        dirs.socket::<ipc::supervisor::SupervisorChannel>(),
        Role::Fwd,
        None,
    );
    tokio::task::spawn_local(async move {
        while let Some((conn, verb, command, env)) = updown_rx.recv().await {
            crate::updown::run(&supervisor, conn, verb, command, env).await;
        }
    });
    let fwd = Rc::new(Fwd {
        server: srv.clone(),
        ike,
        engine,
        wire: wire.clone(),
        pump: RefCell::new(Some(pump)),
        routes: RefCell::new(routes),
        routed: RefCell::new(BTreeSet::new()),
        state_dir,
        sandbox_notes: confined.notes(),
        ike_scopes: RefCell::new(None),
        scopes_set: tokio::sync::Notify::new(),
        saved_seqs: RefCell::new(saved),
        last_saved: RefCell::new(Vec::new()),
        updowns: RefCell::new(crate::updown::Updowns::new(dp.updown_default.clone())),
        updown_queue: updown_tx,
    });
    srv.spawn(listener, fwd.clone());
    tokio::task::spawn_local(fwd.clone().timers());
    tokio::task::spawn_local(fwd.clone().relay_ike(relay_rx));
    tracing::info!(
        "IKE on udp {}, NAT-T on udp {}, tunnel device {} (mtu {}), routing table {}",
        ports.ike_port,
        ports.natt_port,
        wire.tun.name(),
        dp.tun_mtu,
        dp.route_table
    );
    ipc::runtime::ready_until_signal(Role::Fwd, &path).await;
    // Stop the threads; the device and its routes stay (packets are dropped while fwd is away).
    fwd.checkpoint_seqs();
    if let Some(p) = fwd.pump.borrow_mut().take() {
        p.stop();
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn sequence_checkpoint_round_trips_and_skips_junk() {
        let id = SaId {
            spi: 0x1234,
            proto: ipc::sa::IpsecProto::Esp,
            dst: "192.0.2.2".parse().unwrap(),
        };
        let id6 = SaId {
            spi: 0x99,
            proto: ipc::sa::IpsecProto::Ah,
            dst: "2001:db8::2".parse().unwrap(),
        };
        let text = format!(
            "{}garbage line\n0xzz esp 1.2.3.4 5\n{}",
            seq_line(&id, 77),
            seq_line(&id6, 5)
        );
        let m = parse_seqs(&text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[&id], 77);
        assert_eq!(m[&id6], 5);
    }
}
