//! `ipsecctl status`: conns, ISAKMP SAs and IPsec SAs.

use super::engine::Engine;
use super::proposals::{self, esp_encr_name, integ_name};
use ipc::ike::{AuthMethod, ChildSaStatus, ConnStatus, IkeEnd, IkeSaStatus, IkeStatusReport};
use ipc::sa::{IntegAlg, IpsecProto};
use std::time::Instant;

fn end(e: &IkeEnd, local: bool) -> String {
    let host = e.host.map_or("%any".to_string(), |h| h.to_string());
    let id = format!("{host}[{}]", e.id);
    let subs: Vec<String> = e.subnets.iter().map(|n| n.to_string()).collect();
    match (subs.is_empty(), local) {
        (true, _) => id,
        (false, true) => format!("{}==={id}", subs.join(",")),
        (false, false) => format!("{id}==={}", subs.join(",")),
    }
}

fn secs(t: Option<Instant>, now: Instant) -> Option<u64> {
    t.map(|t| t.saturating_duration_since(now).as_secs())
}

fn earliest(events: &[(Option<Instant>, &str)], now: Instant) -> (Option<u64>, String) {
    events
        .iter()
        .filter_map(|(t, w)| t.map(|t| (t, *w)))
        .min_by_key(|(t, _)| *t)
        .map_or((None, String::new()), |(t, w)| {
            (secs(Some(t), now), w.to_string())
        })
}

impl Engine {
    pub(super) fn report(&self, now: Instant) -> IkeStatusReport {
        let mut r = IkeStatusReport::default();
        let mut conns: Vec<(&String, &super::conns::Conn)> = self.conns.iter().collect();
        conns.sort_by_key(|(n, c)| (c.order, (*n).clone()));
        for (name, c) in conns {
            let state = if let Some(k) = self
                .children
                .values()
                .filter(|k| &k.conn == name && k.established() && k.retire_at.is_none())
                .map(|k| k.serial)
                .next_back()
            {
                format!("erouted; eroute owner #{k}")
            } else if let Some(s) = self
                .ikes
                .values()
                .filter(|s| &s.conn == name && !s.established())
                .map(|s| s.serial)
                .chain(
                    self.children
                        .values()
                        .filter(|k| &k.conn == name && !k.established())
                        .map(|k| k.serial),
                )
                .max()
            {
                format!("negotiating #{s}")
            } else if c.routed() {
                "routed (trap)".into()
            } else if c.is_template() {
                "unrouted (road warrior template)".into()
            } else {
                "unrouted".into()
            };
            r.conns.push(ConnStatus {
                name: name.clone(),
                summary: format!(
                    "{}---{}",
                    end(&c.cfg.local, true),
                    end(&c.cfg.remote, false)
                ),
                auth: match c.cfg.auth {
                    AuthMethod::Psk => "PSK",
                    AuthMethod::RsaSig => "RSASIG",
                    AuthMethod::PskOrRsaSig => "PSK+RSASIG",
                }
                .into(),
                version: "IKEv1".into(),
                auto: c.cfg.auto,
                state,
                last_failure: c.last_failure.clone(),
            });
        }
        for s in self.ikes.values() {
            let algs = s.choice.map_or(String::new(), |c| {
                let n = proposals::ike_name(&c.prop);
                let mut parts = n.splitn(3, '/');
                let (e, h, g) = (
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                );
                format!("{e}/HMAC_{h}/{g}")
            });
            let (next_event_secs, next_event) = earliest(
                &[
                    (s.retrans.map(|r| r.next_at), "retransmit"),
                    (
                        if s.initiator && !s.rekeying {
                            s.rekey_at
                        } else {
                            None
                        },
                        "rekey",
                    ),
                    (
                        s.expire_at,
                        if s.established() { "expire" } else { "discard" },
                    ),
                    (s.dpd.deadline(), "dpd"),
                ],
                now,
            );
            r.ike_sas.push(IkeSaStatus {
                serial: s.serial,
                conn: s.conn.clone(),
                version: 1,
                initiator: s.initiator,
                state: s.state.name().into(),
                established: s.established(),
                local: s.local,
                remote: s.remote,
                local_id: s.local_id.to_string(),
                remote_id: s.peer_id.as_ref().map_or(String::new(), |p| p.to_string()),
                algs,
                nat_t: s.nat_in_use(),
                age_secs: now.saturating_duration_since(s.created).as_secs(),
                next_event_secs,
                next_event,
            });
        }
        for k in self.children.values() {
            let algs = k.choice.map_or(String::new(), |c| {
                let mut a = match (c.proto, c.integ) {
                    (IpsecProto::Ah, i) => format!("AH/{}", integ_name(i)),
                    (_, IntegAlg::None) => format!("ESP_{}", esp_encr_name(c.encr)),
                    (_, i) => format!("ESP_{}/{}", esp_encr_name(c.encr), integ_name(i)),
                };
                if let Some(g) = c.pfs {
                    a.push('/');
                    a.push_str(&proposals::group_name(g));
                }
                a
            });
            let (next_event_secs, next_event) = earliest(
                &[
                    (k.retrans.map(|r| r.next_at), "retransmit"),
                    (if k.rekeying { None } else { k.rekey_at }, "rekey"),
                    (k.retire_at, "retire"),
                    (k.expire_at, "expire"),
                ],
                now,
            );
            r.child_sas.push(ChildSaStatus {
                serial: k.serial,
                parent: k.parent,
                conn: k.conn.clone(),
                state: k.state.name().into(),
                established: k.established(),
                proto: k.choice.map_or(IpsecProto::Esp, |c| c.proto),
                spi_in: k.our_spi,
                spi_out: k.peer_spi,
                algs,
                local_ts: k.local_ts.to_string(),
                remote_ts: k.remote_ts.to_string(),
                encap: k.encap_ports.is_some(),
                age_secs: now.saturating_duration_since(k.created).as_secs(),
                next_event_secs,
                next_event,
            });
        }
        r
    }
}
