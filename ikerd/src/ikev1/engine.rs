//! The engine: its state, the API the daemon drives, and the plumbing shared by the exchanges.

use super::child::Child;
use super::conns::Conn;
use super::ike_sa::{IkeSa, KeydWhat, Sent};
use super::wire::Datagram;
use crate::actions::Action;
use crate::msgs::isakmp::ExchangeType;
use ipc::ike::{Endpoint, IkeConn, IkeSettings, IkeStatusReport, LoadSummary};
use ipc::keyd::KeydResponse;
use ipc::policy::{ConnState, FlowInfo};
use ipc::sa::SaId;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Ports the engine sends from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// ikerd's own IKE socket (500).
    pub ike_port: u16,
    /// fwd's NAT-T socket (4500); also the port we expect a peer's NAT-T to listen on.
    pub natt_port: u16,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ike_port: 500,
            natt_port: 4500,
        }
    }
}

/// How long keyd may take to answer before the exchange fails.
pub const KEYD_TIMEOUT: Duration = Duration::from_secs(10);
/// Most ISAKMP SAs that are not yet established, in all and per peer address.
pub const MAX_HALF_OPEN: usize = 1024;
pub const MAX_HALF_OPEN_PER_PEER: usize = 32;
/// Most ISAKMP SAs and IPsec SA pairs altogether.
pub const MAX_IKE_SAS: usize = 16 * 1024;
pub const MAX_CHILDREN: usize = 32 * 1024;
/// Log lines kept for `recent_log`.
const LOG_KEEP: usize = 512;

pub(super) struct KeydWait {
    pub serial: u64,
    pub what: KeydWhat,
    pub deadline: Instant,
}

/// The IKEv1 engine.
pub struct Engine {
    pub(super) cfg: EngineConfig,
    pub(super) rng: Box<dyn rand::RngCore>,
    pub(super) settings: IkeSettings,
    pub(super) conns: BTreeMap<String, Conn>,
    pub(super) next_order: u64,
    pub(super) ikes: BTreeMap<u64, IkeSa>,
    pub(super) children: BTreeMap<u64, Child>,
    pub(super) next_serial: u64,
    pub(super) next_ticket: u64,
    pub(super) tickets: BTreeMap<u64, KeydWait>,
    pub(super) actions: VecDeque<Action>,
    pub(super) log: VecDeque<String>,
    /// Dropped-packet log lines in the current window: (window start, lines, suppressed).
    pub(super) drop_log: Option<(Instant, u32, u64)>,
}

/// At most this many dropped-packet lines per [`DROP_LOG_WINDOW`] (a flood is summarised).
pub const DROP_LOG_LINES: u32 = 100;
pub const DROP_LOG_WINDOW: Duration = Duration::from_secs(10);

impl Engine {
    pub fn new(cfg: EngineConfig, rng: Box<dyn rand::RngCore>) -> Engine {
        Engine {
            cfg,
            rng,
            settings: IkeSettings { uniqueids: true },
            conns: BTreeMap::new(),
            next_order: 0,
            ikes: BTreeMap::new(),
            children: BTreeMap::new(),
            next_serial: 1,
            next_ticket: 1,
            tickets: BTreeMap::new(),
            actions: VecDeque::new(),
            log: VecDeque::new(),
            drop_log: None,
        }
    }

    /// Replace the set of conns (pluto's add/delete/replace); start `auto=start` ones, install
    /// traps for `auto=route` ones, tear down removed ones (telling the peer).
    pub fn load_conns(
        &mut self,
        settings: IkeSettings,
        conns: Vec<IkeConn>,
        now: Instant,
    ) -> LoadSummary {
        self.settings = settings;
        self.load(conns, now)
    }

    /// `ipsecctl up`.
    pub fn initiate(&mut self, conn: &str, now: Instant) -> Result<String, String> {
        self.up(conn, now, true)
    }

    /// `ipsecctl down`: delete the conn's ISAKMP and IPsec SAs (telling the peer); routes stay.
    pub fn terminate(&mut self, conn: &str, now: Instant) -> Result<String, String> {
        self.down(conn, now)
    }

    /// fwd's trap fired for `conn`.
    pub fn acquire(&mut self, conn: &str, flow: FlowInfo, now: Instant) {
        self.on_acquire(conn, flow, now)
    }

    /// fwd reports an SA's lifetime.
    pub fn expire(&mut self, conn: &str, id: SaId, hard: bool, now: Instant) {
        self.on_expire(conn, id, hard, now)
    }

    /// One datagram from the wire (`bytes` without any non-ESP marker). Never panics.
    pub fn receive(&mut self, local: Endpoint, remote: Endpoint, bytes: &[u8], now: Instant) {
        let local = Endpoint::new(local.ip.to_canonical(), local.port);
        let remote = Endpoint::new(remote.ip.to_canonical(), remote.port);
        let dg = match Datagram::parse(bytes) {
            Ok(d) => d,
            Err(e) => {
                self.warn(format!(
                    "packet from {remote}: dropped, does not decode: {e}"
                ));
                return;
            }
        };
        let r = match dg.header.exchange {
            ExchangeType::IDENT => self.mm_receive(local, remote, bytes, &dg, now),
            ExchangeType::QUICK => self.qm_receive(local, remote, bytes, &dg, now),
            ExchangeType::INFO => self.info_receive(local, remote, &dg, now),
            ExchangeType::AGGRESSIVE => Err("Aggressive Mode is not supported".into()),
            other => Err(format!("exchange {other:?} is not supported")),
        };
        if let Err(e) = r {
            self.drop_line(format!("packet from {remote}: dropped: {e}"), now);
        }
    }

    /// Log a dropped packet, at most [`DROP_LOG_LINES`] per [`DROP_LOG_WINDOW`].
    fn drop_line(&mut self, line: String, now: Instant) {
        let (start, lines, suppressed) = match self.drop_log {
            Some((s, l, x)) if now.saturating_duration_since(s) < DROP_LOG_WINDOW => (s, l, x),
            Some((_, _, x)) => {
                if x > 0 {
                    self.warn(format!("{x} more dropped packets were not logged"));
                }
                (now, 0, 0)
            }
            None => (now, 0, 0),
        };
        if lines < DROP_LOG_LINES {
            self.warn(line);
            self.drop_log = Some((start, lines + 1, suppressed));
        } else {
            tracing::debug!("{line}");
            self.drop_log = Some((start, lines, suppressed + 1));
        }
    }

    /// keyd's answer to a `Keyd` action.
    pub fn keyd_answer(&mut self, ticket: u64, resp: Result<KeydResponse, String>, now: Instant) {
        self.on_keyd_answer(ticket, resp, now)
    }

    /// Retransmissions, rekeys, expiries, DPD.
    pub fn tick(&mut self, now: Instant) {
        self.on_tick(now)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Everything to push again after fwd restarted (one ConnState per instance with state).
    pub fn fwd_states(&self) -> Vec<ConnState> {
        self.conns
            .keys()
            .filter_map(|n| self.conn_state(n))
            .collect()
    }

    pub fn status(&self, now: Instant) -> IkeStatusReport {
        self.report(now)
    }

    /// The most recent log lines (oldest first), for support dumps and tests.
    pub fn recent_log(&self) -> Vec<String> {
        self.log.iter().cloned().collect()
    }

    // ---- plumbing ----

    pub(super) fn serial(&mut self) -> u64 {
        let s = self.next_serial;
        self.next_serial += 1;
        s
    }

    pub(super) fn random(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.rng.fill_bytes(&mut v);
        v
    }

    pub(super) fn cookie(&mut self) -> [u8; 8] {
        loop {
            let mut c = [0u8; 8];
            self.rng.fill_bytes(&mut c);
            if c != [0u8; 8] && !self.ikes.values().any(|s| s.icookie == c || s.rcookie == c) {
                return c;
            }
        }
    }

    /// A fresh inbound SPI (never reserved, never one we hold).
    pub(super) fn spi(&mut self) -> u32 {
        loop {
            let s = self.rng.next_u32();
            if s >= 0x1000 && !self.children.values().any(|c| c.our_spi == s) {
                return s;
            }
        }
    }

    pub(super) fn msgid(&mut self, ike: u64) -> u32 {
        loop {
            let m = self.rng.next_u32();
            if m != 0 && !self.ikes.get(&ike).is_some_and(|s| s.msgids.contains(&m)) {
                return m;
            }
        }
    }

    pub(super) fn send(&mut self, s: &Sent) {
        self.actions.push_back(Action::Send {
            local: s.local,
            remote: s.remote,
            bytes: s.bytes.clone(),
        });
    }

    pub(super) fn keyd(
        &mut self,
        serial: u64,
        what: KeydWhat,
        req: ipc::keyd::KeydRequest,
        now: Instant,
    ) -> u64 {
        let t = self.next_ticket;
        self.next_ticket += 1;
        self.tickets.insert(
            t,
            KeydWait {
                serial,
                what,
                deadline: now + KEYD_TIMEOUT,
            },
        );
        self.actions.push_back(Action::Keyd { ticket: t, req });
        t
    }

    fn remember(&mut self, line: String) {
        if self.log.len() >= LOG_KEEP {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    pub(super) fn info(&mut self, line: String) {
        tracing::info!("{line}");
        self.remember(line);
    }

    pub(super) fn warn(&mut self, line: String) {
        tracing::warn!("{line}");
        self.remember(line);
    }

    /// Log a failure and keep it as the conn's (and its template's) last failure.
    pub(super) fn fail(&mut self, conn: &str, line: String) {
        self.warn(line.clone());
        let template = self.conns.get(conn).and_then(|c| c.template.clone());
        for name in std::iter::once(conn.to_string()).chain(template) {
            if let Some(c) = self.conns.get_mut(&name) {
                c.last_failure = Some(line.clone());
            }
        }
    }
}

/// `"conn" #serial`.
pub(super) fn tag(conn: &str, serial: u64) -> String {
    format!("\"{conn}\" #{serial}")
}
