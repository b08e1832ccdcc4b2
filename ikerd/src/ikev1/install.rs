//! What fwd should hold for a conn instance: all its live SAs and its policies, rebuilt from the
//! engine's state on every change.

use super::child::Child;
use super::conns::conn_pairs;
use super::engine::Engine;
use super::ids::selector;
use crate::actions::Action;
use ipc::policy::{ConnState, Net, PolicyAction, PolicySpec, RemoveMode, TrafficSelector};
use ipc::sa::{Direction, EncrAlg, IntegAlg, IpsecProto, SaId, SaLifetime, SaSpec, UdpEncap};

/// Anti-replay window of negotiated SAs.
pub const REPLAY_WINDOW: u32 = 128;

fn priority(src: &Net, dst: &Net) -> u32 {
    1000u32.saturating_sub(u32::from(src.prefix) + u32::from(dst.prefix))
}

fn sa_spec(conn: &str, c: &Child, dir: Direction) -> Option<SaSpec> {
    let ch = c.choice?;
    let (spi, src, dst, keys) = match dir {
        Direction::In => (c.our_spi, c.remote_ip, c.local_ip, &c.keys_in),
        Direction::Out => (c.peer_spi, c.local_ip, c.remote_ip, &c.keys_out),
    };
    let encap = c.encap_ports.map(|(ours, theirs)| match dir {
        Direction::Out => UdpEncap {
            src_port: ours,
            dst_port: theirs,
        },
        Direction::In => UdpEncap {
            src_port: theirs,
            dst_port: ours,
        },
    });
    let (encr, integ) = match ch.proto {
        IpsecProto::Esp => (ch.encr, ch.integ),
        IpsecProto::Ah => (EncrAlg::Null, ch.integ),
    };
    Some(SaSpec {
        conn: conn.to_string(),
        direction: dir,
        proto: ch.proto,
        spi,
        src,
        dst,
        mode: ch.mode,
        encap: if ch.proto == IpsecProto::Esp {
            encap
        } else {
            None
        },
        encr,
        enc_key: keys.enc.clone(),
        integ: if integ == IntegAlg::None {
            IntegAlg::None
        } else {
            integ
        },
        auth_key: keys.auth.clone(),
        esn: false,
        replay_window: REPLAY_WINDOW,
        lifetime: SaLifetime {
            hard_secs: ch.life_secs,
            hard_bytes: ch.life_kb.saturating_mul(1024),
            ..SaLifetime::default()
        },
    })
}

fn sa_id(c: &Child, dir: Direction) -> Option<SaId> {
    let ch = c.choice?;
    Some(match dir {
        Direction::In => SaId {
            spi: c.our_spi,
            proto: ch.proto,
            dst: c.local_ip,
        },
        Direction::Out => SaId {
            spi: c.peer_spi,
            proto: ch.proto,
            dst: c.remote_ip,
        },
    })
}

impl Engine {
    /// The whole fwd state of a conn instance, or None when it should hold nothing.
    pub(super) fn conn_state(&self, name: &str) -> Option<ConnState> {
        let conn = self.conns.get(name)?;
        if conn.is_template() {
            return None;
        }
        let kids: Vec<&Child> = self.children.values().filter(|c| c.conn == name).collect();
        let mut sas = Vec::new();
        for c in &kids {
            if c.installed_in {
                sas.extend(sa_spec(name, c, Direction::In));
            }
            if c.installed_out {
                sas.extend(sa_spec(name, c, Direction::Out));
            }
        }
        // Per selector pair: the newest SA not being retired (a rekey's or a duplicate's loser),
        // else the newest.
        let mut pairs: Vec<(super::ids::Ts, super::ids::Ts)> = Vec::new();
        for c in &kids {
            if !pairs.contains(&(c.local_ts, c.remote_ts)) {
                pairs.push((c.local_ts, c.remote_ts));
            }
        }
        let mut policies = Vec::new();
        let mut covered: Vec<TrafficSelector> = Vec::new();
        let mut in_only: Vec<TrafficSelector> = Vec::new();
        for (lts, rts) in pairs {
            let group: Vec<&&Child> = kids
                .iter()
                .filter(|c| c.local_ts == lts && c.remote_ts == rts)
                .collect();
            let pick = |f: fn(&Child) -> bool| {
                group
                    .iter()
                    .rev()
                    .find(|c| f(c) && c.retire_at.is_none())
                    .or_else(|| group.iter().rev().find(|c| f(c)))
            };
            let sel = selector(&lts, &rts);
            if let Some(id) = pick(|c| c.installed_in).and_then(|c| sa_id(c, Direction::In)) {
                let inbound = TrafficSelector {
                    src: sel.dst,
                    dst: sel.src,
                    proto: sel.proto,
                    src_ports: sel.dst_ports,
                    dst_ports: sel.src_ports,
                };
                policies.push(PolicySpec {
                    conn: name.to_string(),
                    direction: Direction::In,
                    selector: inbound,
                    action: PolicyAction::Protect { sas: vec![id] },
                    priority: priority(&inbound.src, &inbound.dst),
                    route: false,
                });
            }
            match pick(|c| c.installed_out).and_then(|c| sa_id(c, Direction::Out)) {
                Some(id) => {
                    policies.push(PolicySpec {
                        conn: name.to_string(),
                        direction: Direction::Out,
                        selector: sel,
                        action: PolicyAction::Protect { sas: vec![id] },
                        priority: priority(&sel.src, &sel.dst),
                        route: true,
                    });
                    covered.push(sel);
                }
                // A responder that installed only the inbound SA so far keeps (or gets) a trap
                // for the negotiated selector when the conn is routed.
                None => in_only.push(sel),
            }
        }
        if conn.routed() {
            let mut traps: Vec<TrafficSelector> = conn_pairs(&conn.cfg)
                .iter()
                .map(|(l, r)| selector(l, r))
                .collect();
            traps.extend(in_only);
            for sel in traps {
                if covered.contains(&sel) {
                    continue;
                }
                covered.push(sel);
                policies.push(PolicySpec {
                    conn: name.to_string(),
                    direction: Direction::Out,
                    selector: sel,
                    action: PolicyAction::Trap,
                    priority: priority(&sel.src, &sel.dst),
                    route: true,
                });
            }
        }
        if sas.is_empty() && policies.is_empty() {
            return None;
        }
        Some(ConnState {
            conn: name.to_string(),
            sas,
            policies,
        })
    }

    /// Push the conn instance's state to fwd (or take it out when nothing is left).
    /// Pairs that went down are reported (updown) before the change, pairs that came up after.
    pub(super) fn update_fwd(&mut self, name: &str) {
        self.updown_sync_down(name);
        match self.conn_state(name) {
            Some(st) => {
                if let Some(c) = self.conns.get_mut(name) {
                    c.fwd_installed = true;
                }
                self.actions.push_back(Action::Install(st));
            }
            None => {
                if let Some(c) = self.conns.get_mut(name) {
                    if c.fwd_installed {
                        c.fwd_installed = false;
                        self.actions.push_back(Action::Remove {
                            conn: name.to_string(),
                            mode: RemoveMode::Everything,
                        });
                    }
                }
            }
        }
        self.updown_sync_up(name);
    }
}
