//! Connections: loading (add/replace/delete), `%any` instances, which conn answers a peer,
//! up/down/acquire, and the keying-tries logic.

use super::engine::{tag, Engine};
use super::ids::Ts;
use super::proposals::{self, auths};
use crate::crypto::v1_cipher::V1Cipher;
use ipc::ike::{AuthMethod, IkeAuto, IkeConn, IkeEnd, IkeId, LoadSummary};
use ipc::policy::{FlowInfo, Net, RemoveMode};
use ipc::sa::{IpsecProto, SaId};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Wait before another keying attempt after a failure the peer will not fix by itself at once
/// (authentication, proposals).
pub const RETRY_DELAY: Duration = Duration::from_secs(10);
/// A Quick Mode does not start under an ISAKMP SA with less than this left.
pub const ISAKMP_MIN_LEFT: Duration = Duration::from_secs(15);
/// Longest conn name: fwd takes 128 bytes, and `%any` instances add `[N]`.
pub const MAX_CONN_NAME: usize = 116;

pub struct Conn {
    pub cfg: IkeConn,
    /// Load order: responder candidates are tried in it.
    pub order: u64,
    /// For `%any` instances: the template's name.
    pub template: Option<String>,
    /// For templates: the number of the last instance made.
    pub next_instance: u32,
    pub last_failure: Option<String>,
    /// Keep it up: `auto=start`, `ipsecctl up`, an acquire, `dpdaction=restart`.
    pub want_up: bool,
    /// Keying attempts that failed since the last success or `up`.
    pub tries: u32,
    pub retry_at: Option<Instant>,
    /// Something was pushed to fwd under this name.
    pub fwd_installed: bool,
    /// `dpdaction=hold` put the conn's policies into trap.
    pub hold_trap: bool,
    /// Selector pairs reported up to the updown script (`leftupdown=`/`leftfirewall=`).
    pub updown_up: Vec<super::updown::UpPair>,
}

impl Conn {
    /// A `right=%any` conn that only answers, and makes instances.
    pub fn is_template(&self) -> bool {
        self.template.is_none() && self.cfg.remote.host.is_none()
    }

    pub fn routed(&self) -> bool {
        (self.cfg.auto == IkeAuto::Route || self.hold_trap) && self.cfg.remote.host.is_some()
    }
}

fn end_nets(e: &IkeEnd) -> Vec<Net> {
    if e.subnets.is_empty() {
        e.host.map(Net::host).into_iter().collect()
    } else {
        e.subnets
            .iter()
            .map(|n| super::ids::normalise(*n))
            .collect()
    }
}

/// Every same-family (local, remote) selector pair of a conn.
pub fn conn_pairs(cfg: &IkeConn) -> Vec<(Ts, Ts)> {
    let mut out = Vec::new();
    for l in end_nets(&cfg.local) {
        for r in end_nets(&cfg.remote) {
            if l.addr.is_ipv4() == r.addr.is_ipv4() {
                out.push((
                    Ts {
                        net: l,
                        proto: cfg.local.proto,
                        port: cfg.local.port,
                    },
                    Ts {
                        net: r,
                        proto: cfg.remote.proto,
                        port: cfg.remote.port,
                    },
                ));
            }
        }
    }
    out
}

/// The local and remote nets a conn protects (for responder checks).
pub fn conn_nets(cfg: &IkeConn) -> (Vec<Net>, Vec<Net>) {
    (end_nets(&cfg.local), end_nets(&cfg.remote))
}

/// ikerd's own checks of a conn from confd.
pub fn validate(c: &IkeConn) -> Result<(), String> {
    if c.name.is_empty() || c.name.len() > MAX_CONN_NAME || c.name.chars().any(char::is_control) {
        return Err(format!(
            "the name must be 1 to {MAX_CONN_NAME} printable characters"
        ));
    }
    let local = c
        .local
        .host
        .ok_or("the local end has no address (left=%any cannot negotiate)")?;
    if let Some(r) = c.remote.host {
        if r.is_ipv4() != local.is_ipv4() {
            return Err(format!("{local} and {r} are of different address families"));
        }
    }
    if !c
        .ike
        .iter()
        .any(|p| V1Cipher::of(p.encr).is_some() && proposals::modp(p.dh))
    {
        return Err(
            "ike= has no proposal IKEv1 can use (AES-CBC or 3DES with a MODP group)".into(),
        );
    }
    if c.esp.is_empty() {
        return Err("esp= is empty".into());
    }
    if matches!(c.local.id, IkeId::Any | IkeId::Dn(_)) {
        super::ids::id_payload(&c.local.id)?;
    }
    if let IkeId::Dn(s) = &c.remote.id {
        return Err(format!(
            "rightid={s}: ID_DER_ASN1_DN identities are not supported yet (they need certificates)"
        ));
    }
    if c.auth != AuthMethod::Psk {
        if c.remote.rsasigkeys.is_empty() && c.auth == AuthMethod::RsaSig {
            return Err("authby=rsasig needs the peer's public key (rightrsasigkey=)".into());
        }
        for k in &c.remote.rsasigkeys {
            keyfmt::rfc3110::parse_rsasigkey(k).map_err(|e| format!("rightrsasigkey: {e}"))?;
        }
    }
    if conn_pairs(c).is_empty() && c.remote.host.is_some() {
        return Err("the local and remote subnets have no address family in common".into());
    }
    Ok(())
}

fn applies_to_v1(c: &IkeConn) -> bool {
    c.versions.accept_v1 || c.versions.initiate == 1
}

impl Engine {
    pub(super) fn load(&mut self, conns: Vec<IkeConn>, now: Instant) -> LoadSummary {
        let mut sum = LoadSummary::default();
        let mut keep: BTreeSet<String> = BTreeSet::new();
        let mut start = Vec::new();
        for c in conns {
            if !applies_to_v1(&c) {
                continue;
            }
            let name = c.name.clone();
            if let Err(e) = validate(&c) {
                sum.refused.push(format!("{name}: {e}"));
                self.warn(format!("\"{name}\": refused: {e}"));
                continue;
            }
            if !keep.insert(name.clone()) {
                sum.refused.push(format!("{name}: listed twice"));
                continue;
            }
            match self.conns.get(&name) {
                Some(old) if old.template.is_none() && old.cfg == c => continue,
                Some(_) => {
                    self.teardown(&name, now, RemoveMode::Everything);
                    self.conns.remove(&name);
                    sum.replaced.push(name.clone());
                    self.info(format!("\"{name}\": replaced"));
                }
                None => {
                    sum.added.push(name.clone());
                    self.info(format!("\"{name}\": added"));
                }
            }
            let order = self.next_order;
            self.next_order += 1;
            let auto = c.auto;
            self.conns.insert(
                name.clone(),
                Conn {
                    cfg: c,
                    order,
                    template: None,
                    next_instance: 0,
                    last_failure: None,
                    want_up: false,
                    tries: 0,
                    retry_at: None,
                    fwd_installed: false,
                    hold_trap: false,
                    updown_up: Vec::new(),
                },
            );
            match auto {
                IkeAuto::Route => self.update_fwd(&name),
                IkeAuto::Start => start.push(name),
                IkeAuto::Add => {}
            }
        }
        let gone: Vec<String> = self
            .conns
            .iter()
            .filter(|(n, c)| c.template.is_none() && !keep.contains(*n))
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            self.teardown(&name, now, RemoveMode::Everything);
            self.conns.remove(&name);
            self.info(format!("\"{name}\": deleted"));
            sum.removed.push(name);
        }
        for name in start {
            if let Err(e) = self.up(&name, now, false) {
                self.warn(format!("\"{name}\": cannot start: {e}"));
            }
        }
        sum
    }

    /// Delete every state of a conn and its instances (telling the peer), and take it out of
    /// fwd with `mode`.
    pub(super) fn teardown(&mut self, name: &str, now: Instant, mode: RemoveMode) {
        let instances: Vec<String> = self
            .conns
            .iter()
            .filter(|(_, c)| c.template.as_deref() == Some(name))
            .map(|(n, _)| n.clone())
            .collect();
        for i in instances {
            self.teardown(&i, now, RemoveMode::Everything);
            self.conns.remove(&i);
        }
        self.delete_conn_states(name, now, true);
        if let Some(c) = self.conns.get_mut(name) {
            c.want_up = false;
            c.retry_at = None;
            if c.fwd_installed {
                if mode == RemoveMode::Everything {
                    c.fwd_installed = false;
                }
                self.actions.push_back(crate::actions::Action::Remove {
                    conn: name.to_string(),
                    mode,
                });
            }
        }
    }

    /// Delete all ISAKMP and IPsec SAs of a conn; `tell` sends deletes to the peer.
    pub(super) fn delete_conn_states(&mut self, name: &str, now: Instant, tell: bool) {
        let kids: Vec<u64> = self
            .children
            .values()
            .filter(|c| c.conn == name)
            .map(|c| c.serial)
            .collect();
        for k in kids {
            self.delete_child(k, now, tell);
        }
        let sas: Vec<u64> = self
            .ikes
            .values()
            .filter(|s| s.conn == name)
            .map(|s| s.serial)
            .collect();
        for s in sas {
            self.delete_ike(s, tell);
        }
        self.updown_sync_down(name);
    }

    pub(super) fn up(&mut self, name: &str, now: Instant, manual: bool) -> Result<String, String> {
        let c = self
            .conns
            .get(name)
            .ok_or_else(|| format!("no IKEv1 connection named \"{name}\""))?;
        if c.is_template() {
            return Err(format!(
                "\"{name}\" has right=%any: it answers road warriors and cannot initiate"
            ));
        }
        if self.missing_pairs(name).is_empty() {
            let s = self.live_child(name).unwrap_or(0);
            return Ok(format!("\"{name}\": already up or being negotiated (#{s})"));
        }
        if let Some(s) = self.negotiating_ike(name) {
            if let Some(c) = self.conns.get_mut(name) {
                c.want_up = true;
            }
            return Ok(format!("\"{name}\": Main Mode already in progress (#{s})"));
        }
        if let Some(c) = self.conns.get_mut(name) {
            c.want_up = true;
            c.retry_at = None;
            if manual {
                c.tries = 0;
            }
        }
        self.start_negotiation(name, now)
    }

    /// Quick Mode under an existing ISAKMP SA, else Main Mode first.
    pub(super) fn start_negotiation(&mut self, name: &str, now: Instant) -> Result<String, String> {
        let r = match self.find_isakmp_for(name, now) {
            Some(ike) => self.start_missing_qms(name, ike, now),
            None => match self.negotiating_ike(name) {
                Some(s) => Ok(format!("{}: Main Mode in progress", tag(name, s))),
                None => self
                    .start_mm(name, now, None)
                    .map(|s| format!("{}: initiating Main Mode", tag(name, s))),
            },
        };
        if let Err(e) = &r {
            self.fail(name, format!("\"{name}\": cannot initiate: {e}"));
        }
        r
    }

    pub(super) fn down(&mut self, name: &str, now: Instant) -> Result<String, String> {
        let c = self
            .conns
            .get(name)
            .ok_or_else(|| format!("no IKEv1 connection named \"{name}\""))?;
        let routed = c.routed();
        let template = c.is_template();
        if template {
            self.teardown(name, now, RemoveMode::Everything);
        } else {
            self.delete_conn_states(name, now, true);
        }
        if let Some(c) = self.conns.get_mut(name) {
            c.want_up = false;
            c.retry_at = None;
            c.hold_trap = false;
        }
        if routed {
            self.update_fwd(name);
        } else if self.conns.get(name).is_some_and(|c| c.fwd_installed) {
            self.actions.push_back(crate::actions::Action::Remove {
                conn: name.to_string(),
                mode: RemoveMode::KeepRoute,
            });
        }
        self.info(format!("\"{name}\": terminating SAs using this connection"));
        Ok(format!("\"{name}\": terminated"))
    }

    pub(super) fn on_acquire(&mut self, name: &str, flow: FlowInfo, now: Instant) {
        let Some(c) = self.conns.get(name) else {
            self.warn(format!(
                "acquire for unknown conn \"{name}\" ({flow}): ignored"
            ));
            return;
        };
        if c.is_template() {
            return;
        }
        let covered = self.children.values().any(|k| {
            k.conn == name
                && k.retire_at.is_none()
                && super::ids::net_contains(&k.local_ts.net, &Net::host(flow.src))
                && super::ids::net_contains(&k.remote_ts.net, &Net::host(flow.dst))
        });
        if covered || self.negotiating_ike(name).is_some() {
            return;
        }
        self.info(format!("\"{name}\": acquire for {flow}: initiating"));
        if let Err(e) = self.up(name, now, true) {
            self.warn(format!("\"{name}\": {e}"));
        }
    }

    pub(super) fn on_expire(&mut self, name: &str, id: SaId, hard: bool, now: Instant) {
        let found = self
            .children
            .values()
            .find(|c| {
                c.conn == name
                    && c.choice.is_some_and(|x| x.proto == id.proto)
                    && ((c.our_spi == id.spi && c.local_ip == id.dst.to_canonical())
                        || (c.peer_spi == id.spi && c.remote_ip == id.dst.to_canonical()))
            })
            .map(|c| c.serial);
        let Some(serial) = found else {
            return;
        };
        if hard {
            self.info(format!(
                "{}: IPsec SA {:#010x} reached its hard lifetime in fwd: deleting",
                tag(name, serial),
                id.spi
            ));
            self.delete_child(serial, now, true);
            self.update_fwd(name);
            self.gc_instance(name);
        } else {
            let due = self.children.get(&serial).is_some_and(|c| {
                c.initiator && c.established() && !c.rekeying && c.retire_at.is_none()
            });
            if due {
                self.rekey_child(serial, now);
            }
        }
    }

    /// The conn's selector pairs that have no established or negotiating IPsec SA (not being
    /// retired) yet.
    pub(super) fn missing_pairs(&self, name: &str) -> Vec<(Ts, Ts)> {
        let Some(c) = self.conns.get(name) else {
            return Vec::new();
        };
        conn_pairs(&c.cfg)
            .into_iter()
            .filter(|(l, r)| {
                !self.children.values().any(|k| {
                    k.conn == name && k.retire_at.is_none() && k.local_ts == *l && k.remote_ts == *r
                })
            })
            .collect()
    }

    /// Quick Mode under `ike` for every selector pair of the conn that lacks an IPsec SA.
    pub(super) fn start_missing_qms(
        &mut self,
        name: &str,
        ike: u64,
        now: Instant,
    ) -> Result<String, String> {
        let mut started = Vec::new();
        for pair in self.missing_pairs(name) {
            let s = self.start_qm(name, ike, now, None, Some(pair))?;
            started.push(format!("#{s}"));
        }
        Ok(format!(
            "\"{name}\": initiating Quick Mode {}",
            started.join(", ")
        ))
    }

    /// An established or negotiating IPsec SA of the conn that is not being retired.
    pub(super) fn live_child(&self, name: &str) -> Option<u64> {
        self.children
            .values()
            .filter(|c| c.conn == name && c.retire_at.is_none())
            .map(|c| c.serial)
            .next_back()
    }

    /// An ISAKMP SA of the conn that we are initiating and that is not established yet.
    pub(super) fn negotiating_ike(&self, name: &str) -> Option<u64> {
        self.ikes
            .values()
            .filter(|s| s.conn == name && s.initiator && !s.established() && !s.deleting)
            .map(|s| s.serial)
            .next_back()
    }

    /// An established ISAKMP SA a Quick Mode for `name` can use: the conn's own, or one with the
    /// same hosts and IDs (pluto shares ISAKMP SAs between conns), newest first; not one that
    /// expires within [`ISAKMP_MIN_LEFT`].
    pub(super) fn find_isakmp_for(&self, name: &str, now: Instant) -> Option<u64> {
        let c = self.conns.get(name)?;
        let (lh, rh) = (c.cfg.local.host?, c.cfg.remote.host?);
        self.ikes
            .values()
            .rev()
            .filter(|s| s.established() && !s.deleting)
            .filter(|s| s.expire_at.is_none_or(|e| e > now + ISAKMP_MIN_LEFT))
            .find(|s| {
                s.conn == name
                    || (s.local.ip == lh
                        && s.remote.ip == rh
                        && s.local_id == c.cfg.local.id
                        && s.peer_id
                            .as_ref()
                            .is_some_and(|p| super::ids::id_matches(&c.cfg.remote.id, p))
                        && s.choice
                            .is_some_and(|ch| auths(c.cfg.auth).contains(&ch.auth)))
            })
            .map(|s| s.serial)
    }

    /// Conns that may answer a Main Mode from `remote` to `local`: exact hosts first (load
    /// order), then `right=%any` templates.
    pub(super) fn responder_candidates(&self, local: IpAddr, remote: IpAddr) -> Vec<String> {
        let mut exact: Vec<(u64, String)> = Vec::new();
        let mut any: Vec<(u64, String)> = Vec::new();
        for (n, c) in &self.conns {
            if !c.cfg.versions.accept_v1
                || c.cfg.local.host.map(|h| h.to_canonical()) != Some(local)
            {
                continue;
            }
            match c.cfg.remote.host {
                Some(h) if h.to_canonical() == remote => exact.push((c.order, n.clone())),
                None if c.is_template() => any.push((c.order, n.clone())),
                _ => {}
            }
        }
        exact.sort();
        any.sort();
        exact.into_iter().chain(any).map(|(_, n)| n).collect()
    }

    /// A `name[N]` instance of template `t` for the peer at `remote`.
    pub(super) fn make_instance(&mut self, t: &str, remote: IpAddr) -> Option<String> {
        let tc = self.conns.get_mut(t)?;
        tc.next_instance += 1;
        let name = format!("{t}[{}]", tc.next_instance);
        let mut cfg = tc.cfg.clone();
        cfg.name = name.clone();
        cfg.remote.host = Some(remote);
        let order = tc.order;
        self.conns.insert(
            name.clone(),
            Conn {
                cfg,
                order,
                template: Some(t.to_string()),
                next_instance: 0,
                last_failure: None,
                want_up: false,
                tries: 0,
                retry_at: None,
                fwd_installed: false,
                hold_trap: false,
                updown_up: Vec::new(),
            },
        );
        Some(name)
    }

    /// Drop an instance with no states left.
    pub(super) fn gc_instance(&mut self, name: &str) {
        let Some(c) = self.conns.get(name) else {
            return;
        };
        if c.template.is_none() {
            return;
        }
        if self.ikes.values().any(|s| s.conn == name)
            || self.children.values().any(|c| c.conn == name)
        {
            return;
        }
        let installed = c.fwd_installed;
        self.updown_sync_down(name);
        if installed {
            self.actions.push_back(crate::actions::Action::Remove {
                conn: name.to_string(),
                mode: RemoveMode::Everything,
            });
        }
        self.conns.remove(name);
    }

    /// A keying attempt failed: try again (at once or after `delay`) unless `keyingtries` is
    /// used up.
    pub(super) fn attempt_failed(&mut self, name: &str, now: Instant, delay: Duration) {
        let Some(c) = self.conns.get_mut(name) else {
            return;
        };
        c.tries = c.tries.saturating_add(1);
        if !c.want_up {
            return;
        }
        let (tries, max) = (c.tries, c.cfg.keying_tries);
        if self
            .children
            .values()
            .any(|k| k.conn == name && k.established() && k.retire_at.is_none())
        {
            // A rekey (of the ISAKMP SA or an IPsec SA) failed while the tunnel is up: the
            // rekey timers try again.
            return;
        }
        if max != 0 && tries >= max {
            c.want_up = false;
            self.fail(
                name,
                format!(
                    "\"{name}\": giving up after {tries} keying attempt{}",
                    if tries == 1 { "" } else { "s" }
                ),
            );
            self.update_fwd(name);
            return;
        }
        let limit = if max == 0 {
            "an unlimited number".to_string()
        } else {
            format!("at most {max}")
        };
        self.info(format!(
            "\"{name}\": starting keying attempt {} of {limit}",
            tries + 1
        ));
        if delay.is_zero() {
            let _ = self.start_negotiation(name, now);
        } else if let Some(c) = self.conns.get_mut(name) {
            c.retry_at = Some(now + delay);
        }
    }

    /// The conn's IPsec protocol number for KEYMAT and deletes.
    pub(super) fn proto_number(p: IpsecProto) -> u8 {
        match p {
            IpsecProto::Esp => 3,
            IpsecProto::Ah => 2,
        }
    }
}
