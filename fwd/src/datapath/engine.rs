//! The [`Engine`]: tables behind one `RwLock`, the control plane (install, remove, flush,
//! listings), the event queue and the drop counters. The packet paths are in [`super::outbound`]
//! and [`super::inbound`], lifetimes in [`super::lifetimes`].

use super::control::{
    check_conn_name, policy_name, sa_key, sa_name, spd_dir, validate_policy, validate_sa, SaFacts,
    ValidPolicy, MAX_POLICIES_PER_CONN, MAX_SAS_PER_CONN,
};
use super::drops::DropCounters;
use super::lifetimes;
use super::tables::{lock, PolicyMeta, Tables};
use super::{EngineConfig, Origin, RouteKind};
use crate::spd;
use ipc::fwd::{FlushWhat, FwdEvent};
use ipc::policy::{
    ConnState, DropCount, Look, Net, PolicyAction, PolicyInfo, PolicySpec, RemoveMode, SaInfo,
    SaSecret,
};
use ipc::sa::{Direction, SaId, SaSpec};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

/// Events kept for `take_events` at most; later ones are counted in `events_lost` and dropped
/// (acquires are rate-limited and expiries bounded by the SA count, so this means nobody reads).
pub const MAX_QUEUED_EVENTS: usize = 4096;

/// fwd's datapath engine. `Send + Sync`: the outbound and inbound paths run on their own threads,
/// the control plane on a third; all methods take `&self`.
pub struct Engine {
    pub(super) cfg: EngineConfig,
    pub(super) tables: RwLock<Tables>,
    pub(super) events: Mutex<Vec<FwdEvent>>,
    pub(super) events_lost: std::sync::atomic::AtomicU64,
    pub(super) drops: DropCounters,
    /// Identification field of the outer IPv4 headers the engine builds (AH).
    pub(super) ip_id: AtomicU16,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.read();
        f.debug_struct("Engine")
            .field("cfg", &self.cfg)
            .field("sas", &t.sad.len())
            .field("policies", &t.spd.len())
            .finish_non_exhaustive()
    }
}

fn too_many(what: &str, n: usize, max: usize) -> String {
    format!("{n} {what} would exceed the limit of {max}")
}

impl Engine {
    /// An empty engine.
    pub fn new(cfg: EngineConfig) -> Self {
        Engine {
            tables: RwLock::new(Tables::new(cfg.max_sas, cfg.max_policies)),
            cfg,
            events: Mutex::new(Vec::new()),
            events_lost: std::sync::atomic::AtomicU64::new(0),
            drops: DropCounters::default(),
            ip_id: AtomicU16::new(1),
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub(super) fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn push_event(&self, ev: FwdEvent) {
        let mut q = lock(&self.events);
        if q.len() < MAX_QUEUED_EVENTS {
            q.push(ev);
        } else {
            self.events_lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events raised since the last call (acquires from traps, soft/hard expiries).
    pub fn take_events(&self) -> Vec<FwdEvent> {
        std::mem::take(&mut *lock(&self.events))
    }

    /// Events dropped because the queue was full.
    pub fn events_lost(&self) -> u64 {
        self.events_lost.load(Ordering::Relaxed)
    }

    /// Dropped packets by reason (non-zero only).
    pub fn drop_counts(&self) -> Vec<DropCount> {
        self.drops.snapshot()
    }

    // ------------------------------------------------------------------ control plane

    /// Install or replace everything of one connection: its SAs and policies replace the ones the
    /// conn held before, atomically. Everything is checked before anything changes; an error
    /// leaves the engine as it was. Returns (SAs, policies) installed.
    pub fn install_conn(
        &self,
        by: Origin,
        st: &ConnState,
        now: Instant,
    ) -> Result<(u32, u32), String> {
        let conn = &st.conn;
        check_conn_name(conn).map_err(|e| format!("conn {conn:?}: {e}"))?;
        if st.sas.len() > MAX_SAS_PER_CONN {
            return Err(format!(
                "conn {conn:?}: {} SAs, at most {MAX_SAS_PER_CONN} per conn",
                st.sas.len()
            ));
        }
        if st.policies.len() > MAX_POLICIES_PER_CONN {
            return Err(format!(
                "conn {conn:?}: {} policies, at most {MAX_POLICIES_PER_CONN} per conn",
                st.policies.len()
            ));
        }
        let mut new_sas = Vec::with_capacity(st.sas.len());
        let mut keys = HashSet::new();
        for spec in &st.sas {
            if spec.conn != *conn {
                return Err(format!(
                    "conn {conn:?}: SA {} names conn {:?}",
                    sa_name(&spec.id()),
                    spec.conn
                ));
            }
            let v = validate_sa(spec)?;
            if !keys.insert(v.key) {
                return Err(format!("conn {conn:?}: SA {} is listed twice", v.key));
            }
            new_sas.push(v);
        }

        let mut t = self.write();
        for v in &new_sas {
            if let Some(old) = t.sad.get(&v.key) {
                if old.spec.conn != *conn {
                    return Err(format!(
                        "conn {conn:?}: SA {} is installed already, by conn {:?}",
                        v.key, old.spec.conn
                    ));
                }
            }
        }
        let (old_sas, old_pols) = t.conn_counts(conn);
        let sas_after = t.sad.len() - old_sas + new_sas.len();
        if sas_after > self.cfg.max_sas {
            return Err(format!(
                "conn {conn:?}: {}",
                too_many("SAs in all", sas_after, self.cfg.max_sas)
            ));
        }
        let mut new_pols: Vec<ValidPolicy> = Vec::with_capacity(st.policies.len());
        {
            let tables = &*t;
            let facts = |id: &SaId| -> Option<SaFacts> {
                let k = sa_key(id);
                if let Some(v) = new_sas.iter().find(|v| v.key == k) {
                    return Some(SaFacts::of(&v.spec));
                }
                // SAs of this conn that are not in the new state are about to go.
                tables
                    .sad
                    .get(&k)
                    .filter(|s| s.spec.conn != *conn)
                    .map(|s| SaFacts::of(&s.spec))
            };
            for (i, p) in st.policies.iter().enumerate() {
                let what = policy_name(Some(i), p);
                if p.conn != *conn {
                    return Err(format!("{what}: names conn {:?}", p.conn));
                }
                let v = validate_policy(p, &what, facts)?;
                if let Some(j) = new_pols
                    .iter()
                    .position(|o| o.spec.direction == v.spec.direction && o.selector == v.selector)
                {
                    return Err(format!(
                        "{what}: same direction and selector as policy {}",
                        j + 1
                    ));
                }
                if let Some(other) = self.duplicate_of(tables, &v, Some(conn)) {
                    return Err(format!(
                        "{what}: conn {other:?} has a policy with the same selector already"
                    ));
                }
                new_pols.push(v);
            }
        }
        let pols_after = t.spd.len() - old_pols + new_pols.len();
        if pols_after > self.cfg.max_policies {
            return Err(format!(
                "conn {conn:?}: {}",
                too_many("policies in all", pols_after, self.cfg.max_policies)
            ));
        }

        // Checked: from here on nothing can fail (duplicates and room are accounted for).
        for id in t.spd.ids_by_name(conn).to_vec() {
            t.remove_policy(id);
        }
        // An SA listed again unchanged keeps its state (sequence numbers, replay window, counters,
        // lifetimes): ikerd sends a conn's whole state on every change, e.g. a rekey that adds SAs.
        let unchanged: HashSet<_> = new_sas
            .iter()
            .filter(|v| {
                t.sad.get(&v.key).is_some_and(|old| {
                    old.by == by && old.spec.conn == *conn && same_sa(&old.spec, &v.spec)
                })
            })
            .map(|v| v.key)
            .collect();
        for k in t.sa_keys_where(|s| s.spec.conn == *conn) {
            if !unchanged.contains(&k) {
                t.sad.remove(&k);
            }
        }
        let (n_sas, n_pols) = (new_sas.len(), new_pols.len());
        for v in new_sas {
            if !unchanged.contains(&v.key) {
                t.insert_sa(v, by, now)?;
            }
        }
        for v in new_pols {
            t.insert_policy(v, by)?;
        }
        Ok((n_sas as u32, n_pols as u32))
    }

    /// The conn owning a policy with the same direction and selector, unless it is `except`.
    fn duplicate_of(&self, t: &Tables, v: &ValidPolicy, except: Option<&str>) -> Option<String> {
        let id = t
            .spd
            .find_duplicate(spd_dir(v.spec.direction), &v.selector)?;
        let (_, e) = t.spd.get(id)?;
        (Some(e.name.as_str()) != except).then(|| e.name.clone())
    }

    /// Take a connection down (`KeepRoute`: its SAs go; its routed outbound policies stay, a
    /// Protect one turned into Trap, so the traffic is dropped and acquires raised, never sent in
    /// the clear; its other policies go) or remove it entirely (`Everything`). Returns the SAs and
    /// policies removed.
    pub fn remove_conn(&self, conn: &str, mode: RemoveMode) -> (u32, u32) {
        let mut t = self.write();
        let keys = t.sa_keys_where(|s| s.spec.conn == conn);
        for k in &keys {
            t.sad.remove(k);
        }
        let mut removed = 0u32;
        for id in t.spd.ids_by_name(conn).to_vec() {
            let keep = mode == RemoveMode::KeepRoute
                && t.policies
                    .get(&id)
                    .is_some_and(|m| m.spec.direction == Direction::Out && m.spec.route);
            if keep {
                if let Some(m) = t.policies.get_mut(&id) {
                    if matches!(m.spec.action, PolicyAction::Protect { .. }) {
                        m.spec.action = PolicyAction::Trap;
                        m.bundle = Default::default();
                    }
                }
            } else if t.remove_policy(id) {
                removed += 1;
            }
        }
        (keys.len() as u32, removed)
    }

    /// Install one SA.
    pub fn add_sa(&self, by: Origin, spec: &SaSpec, now: Instant) -> Result<SaId, String> {
        let v = validate_sa(spec)?;
        let id = v.spec.id();
        let mut t = self.write();
        if t.sad.contains(&v.key) {
            return Err(format!("SA {} exists already", v.key));
        }
        let (n, _) = t.conn_counts(&v.spec.conn);
        if n >= MAX_SAS_PER_CONN {
            return Err(format!(
                "conn {:?} holds {MAX_SAS_PER_CONN} SAs already (the most per conn)",
                v.spec.conn
            ));
        }
        if t.sad.len() >= self.cfg.max_sas {
            return Err(format!(
                "SA {}: {}",
                v.key,
                too_many("SAs", t.sad.len() + 1, self.cfg.max_sas)
            ));
        }
        t.insert_sa(v, by, now)?;
        Ok(id)
    }

    /// Delete one SA; returns the conn it belonged to. Policies naming it then act as traps.
    pub fn delete_sa(&self, id: &SaId) -> Result<String, String> {
        let key = sa_key(id);
        self.write()
            .sad
            .remove(&key)
            .map(|s| s.spec.conn.clone())
            .ok_or_else(|| format!("no SA {key}"))
    }

    /// Install one policy (its SAs must be installed). Returns its id.
    pub fn add_policy(&self, by: Origin, p: &PolicySpec) -> Result<u64, String> {
        let what = policy_name(None, p);
        let mut t = self.write();
        let v = {
            let tables = &*t;
            validate_policy(p, &what, |id: &SaId| {
                tables.sad.get(&sa_key(id)).map(|s| SaFacts::of(&s.spec))
            })?
        };
        if let Some(other) = self.duplicate_of(&t, &v, None) {
            return Err(format!(
                "{what}: conn {other:?} has a policy with the same selector already"
            ));
        }
        let (_, n) = t.conn_counts(&v.spec.conn);
        if n >= MAX_POLICIES_PER_CONN {
            return Err(format!("{what}: the conn holds {MAX_POLICIES_PER_CONN} policies already (the most per conn)"));
        }
        if t.spd.len() >= self.cfg.max_policies {
            return Err(format!(
                "{what}: {}",
                too_many("policies", t.spd.len() + 1, self.cfg.max_policies)
            ));
        }
        Ok(t.insert_policy(v, by)?.0)
    }

    /// How many SAs `by` installed (for status).
    pub fn sa_count(&self, by: Origin) -> usize {
        self.read().sa_keys_where(|s| s.by == by).len()
    }

    /// Remove every SA (`Sas`) or every policy (`Policies`) that `by` installed. Returns how many.
    pub fn flush(&self, by: Origin, what: FlushWhat) -> u32 {
        let mut t = self.write();
        match what {
            FlushWhat::Sas => {
                let keys = t.sa_keys_where(|s| s.by == by);
                keys.iter().filter(|k| t.sad.remove(k).is_some()).count() as u32
            }
            FlushWhat::Policies => {
                let ids = t.policy_ids_where(|m| m.by == by);
                ids.into_iter().filter(|id| t.remove_policy(*id)).count() as u32
            }
        }
    }

    // ------------------------------------------------------------------ listings

    /// SAs (no keys), policies with counters, drops. `tun`, `tun_mtu` and `routes` are left
    /// empty: the daemon fills them.
    pub fn look(&self, now: Instant) -> Look {
        let t = self.read();
        let mut sas: Vec<SaInfo> = t
            .sad
            .iter()
            .map(|(_, s)| {
                let st = lock(&s.state);
                let c = st.codec.counters();
                let spec = &s.spec;
                SaInfo {
                    id: spec.id(),
                    conn: spec.conn.clone(),
                    direction: spec.direction,
                    src: spec.src,
                    dst: spec.dst,
                    mode: spec.mode,
                    encap: spec.encap,
                    encr: spec.encr,
                    integ: spec.integ,
                    esn: spec.esn,
                    replay_window: spec.replay_window,
                    packets: c.packets,
                    bytes: c.bytes,
                    errors: st.errors,
                    seq: match spec.direction {
                        Direction::Out => st.codec.tx_seq(),
                        Direction::In => st.codec.rx_top(),
                    },
                    age_secs: now.saturating_duration_since(s.installed).as_secs(),
                    state: lifetimes::state_name(s, &st, now).to_string(),
                }
            })
            .collect();
        sas.sort_by(|a, b| (&a.conn, a.id).cmp(&(&b.conn, b.id)));
        let mut policies = Vec::with_capacity(t.policies.len());
        for dir in [spd::Direction::Out, spd::Direction::In] {
            for (id, _) in t.spd.iter(dir) {
                if let Some(m) = t.policies.get(&id) {
                    policies.push(policy_info(id, m));
                }
            }
        }
        Look {
            tun: String::new(),
            tun_mtu: 0,
            sas,
            policies,
            routes: Vec::new(),
            drops: self.drop_counts(),
        }
    }

    /// The keys of every SA (for `ipsecctl sa --tcpdump-secrets`; the caller checks who asks).
    pub fn secrets(&self) -> Vec<SaSecret> {
        let t = self.read();
        let mut v: Vec<SaSecret> = t
            .sad
            .iter()
            .map(|(_, s)| SaSecret {
                id: s.spec.id(),
                src: s.spec.src,
                dst: s.spec.dst,
                proto: s.spec.proto,
                encr: s.spec.encr,
                enc_key: s.spec.enc_key.clone(),
                integ: s.spec.integ,
                auth_key: s.spec.auth_key.clone(),
            })
            .collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// Routes the policies want: every outbound policy with `route`: Protect/Trap/Drop/Reject →
    /// [`RouteKind::Tunnel`] to its destination, Pass → [`RouteKind::Throw`]. A tunnelled policy
    /// also wants a Throw route for its *source* (this end's protected subnet), unless some policy
    /// tunnels that very prefix: the routing table is consulted before the main table for every
    /// unmarked packet, so a wide tunnel route (`rightsubnet=0.0.0.0/0`, an extruded subnet)
    /// would otherwise send packets for our own LAN — the decrypted ones included — back into the
    /// tunnel device. FreeS/WAN's routes lived in the main table, where the connected route won by
    /// prefix length; the throw route gives the same answer. Deduplicated, sorted.
    pub fn wanted_routes(&self) -> Vec<(Net, RouteKind)> {
        let t = self.read();
        let routed = || {
            t.policies
                .values()
                .filter(|m| m.spec.direction == Direction::Out && m.spec.route)
        };
        let mut v: Vec<(Net, RouteKind)> = routed()
            .map(|m| {
                let kind = match m.spec.action {
                    PolicyAction::Pass => RouteKind::Throw,
                    _ => RouteKind::Tunnel,
                };
                (m.spec.selector.dst, kind)
            })
            .collect();
        let tunnelled: HashSet<Net> = v
            .iter()
            .filter(|(_, k)| *k == RouteKind::Tunnel)
            .map(|(n, _)| *n)
            .collect();
        let local_throws: Vec<(Net, RouteKind)> = routed()
            .filter(|m| !matches!(m.spec.action, PolicyAction::Pass))
            .map(|m| m.spec.selector.src)
            .filter(|src| !tunnelled.contains(src))
            .map(|src| (src, RouteKind::Throw))
            .collect();
        v.extend(local_throws);
        v.sort_by_key(|a| (a.0.addr, a.0.prefix, a.1));
        v.dedup();
        v
    }

    /// Last sequence number sent on every outbound SA, to checkpoint across a fwd restart. All
    /// outbound SAs, not only manual ones: an SA re-installed with the same keys must never
    /// reuse a sequence number (CTR/GCM would reuse their counter block).
    pub fn tx_seqs(&self) -> Vec<(SaId, u64)> {
        let t = self.read();
        let mut v: Vec<(SaId, u64)> = t
            .sad
            .iter()
            .filter(|(_, s)| s.spec.direction == Direction::Out)
            .map(|(_, s)| (s.spec.id(), lock(&s.state).codec.tx_seq()))
            .collect();
        v.sort();
        v
    }

    /// Resume an outbound SA so that the next packet has a sequence number above `at_least`
    /// (never moves it back). Unknown SAs are ignored.
    pub fn resume_tx_seq(&self, id: &SaId, at_least: u64) {
        let t = self.read();
        if let Some(s) = t.sad.get(&sa_key(id)) {
            let mut st = lock(&s.state);
            if st.codec.tx_seq() < at_least {
                st.codec.set_tx_seq(at_least);
            }
        }
    }
}

fn policy_info(id: spd::PolicyId, m: &PolicyMeta) -> PolicyInfo {
    PolicyInfo {
        id: id.0,
        conn: m.spec.conn.clone(),
        direction: m.spec.direction,
        selector: m.spec.selector,
        action: m.spec.action.clone(),
        priority: m.spec.priority,
        routed: m.spec.route,
        packets: m.packets.load(Ordering::Relaxed),
        bytes: m.bytes.load(Ordering::Relaxed),
    }
}

/// Two specs of the same SA are the same SA: every field equal, the keys compared in constant time.
fn same_sa(a: &SaSpec, b: &SaSpec) -> bool {
    use subtle::ConstantTimeEq;
    let keys_equal: bool = (a.enc_key.expose().ct_eq(b.enc_key.expose())
        & a.auth_key.expose().ct_eq(b.auth_key.expose()))
    .into();
    keys_equal
        && a.conn == b.conn
        && a.direction == b.direction
        && a.proto == b.proto
        && a.spi == b.spi
        && a.src == b.src
        && a.dst == b.dst
        && a.mode == b.mode
        && a.encap == b.encap
        && a.encr == b.encr
        && a.integ == b.integ
        && a.esn == b.esn
        && a.replay_window == b.replay_window
        && a.lifetime == b.lifetime
}
