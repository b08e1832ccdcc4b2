//! `leftupdown=` / `leftfirewall=`: telling fwd when a conn instance's selector pairs come up and
//! go down, as pluto ran the updown script.
//!
//! A selector pair is *up* while an established IPsec SA pair for it is installed both ways. The
//! engine records, per conn instance, the pairs it reported up (with the environment it reported
//! them with) and compares after every change of the instance's fwd state: a pair that appeared
//! gets `up-client` (or `up-host`), after the Install that put its SAs in; a pair that is gone gets
//! `down-client` (`down-host`) with the environment of its `up`, before the SAs are taken out. A
//! rekey keeps the pair covered throughout (the new SAs are installed before the old ones go), so
//! it reports nothing.

use super::engine::Engine;
use super::ids::Ts;
use crate::actions::Action;
use ipc::fwd::{UpdownEnv, UpdownVerb};

/// One selector pair reported up.
#[derive(Debug, Clone, PartialEq)]
pub struct UpPair {
    pub local: Ts,
    pub remote: Ts,
    pub env: UpdownEnv,
    /// `-host` verbs (this end protects only itself), else `-client`.
    pub host: bool,
}

impl UpPair {
    fn verb(&self, up: bool) -> UpdownVerb {
        match (up, self.host) {
            (true, true) => UpdownVerb::UpHost,
            (true, false) => UpdownVerb::UpClient,
            (false, true) => UpdownVerb::DownHost,
            (false, false) => UpdownVerb::DownClient,
        }
    }
}

impl Engine {
    /// The conn whose script runs for instance `name`: the template of a `%any` instance, else
    /// the conn itself.
    fn updown_conn(&self, name: &str) -> Option<String> {
        let c = self.conns.get(name)?;
        Some(c.template.clone().unwrap_or_else(|| name.to_string()))
    }

    /// The instance's selector pairs with an established IPsec SA pair installed both ways, each
    /// with the environment of its newest such SA pair.
    fn up_pairs_now(&self, name: &str) -> Vec<UpPair> {
        let Some(conn) = self.conns.get(name) else {
            return Vec::new();
        };
        let cfg = &conn.cfg;
        if cfg.local.updown.is_none() && !cfg.local.firewall {
            return Vec::new();
        }
        let mut out: Vec<UpPair> = Vec::new();
        // Children are kept by serial: the last one seen for a pair is the newest.
        for c in self
            .children
            .values()
            .filter(|c| c.conn == name && c.established() && c.installed_in && c.installed_out)
        {
            let ike = self.ikes.get(&c.parent);
            let my_id = ike.map_or(&cfg.local.id, |s| &s.local_id);
            let peer_id = ike
                .and_then(|s| s.peer_id.as_ref())
                .unwrap_or(&cfg.remote.id);
            let pair = UpPair {
                local: c.local_ts,
                remote: c.remote_ts,
                env: UpdownEnv {
                    instance: name.to_string(),
                    me: c.local_ip,
                    my_id: my_id.to_string(),
                    my_client: c.local_ts.net,
                    my_protocol: c.local_ts.proto,
                    my_port: c.local_ts.port,
                    my_sourceip: cfg.local.sourceip,
                    peer: c.remote_ip,
                    peer_id: peer_id.to_string(),
                    peer_client: c.remote_ts.net,
                    peer_protocol: c.remote_ts.proto,
                    peer_port: c.remote_ts.port,
                    next_hop: cfg.local.nexthop,
                },
                host: cfg.local.subnets.is_empty(),
            };
            match out
                .iter_mut()
                .find(|p| p.local == pair.local && p.remote == pair.remote)
            {
                Some(p) => *p = pair,
                None => out.push(pair),
            }
        }
        out
    }

    /// Report the instance's pairs that are no longer up (`down-*`). Call before the change
    /// that takes their SAs out of fwd is pushed.
    pub(super) fn updown_sync_down(&mut self, name: &str) {
        let now_up = self.up_pairs_now(name);
        let Some(script_conn) = self.updown_conn(name) else {
            return;
        };
        let Some(c) = self.conns.get_mut(name) else {
            return;
        };
        let mut gone = Vec::new();
        c.updown_up.retain(|p| {
            let keep = now_up
                .iter()
                .any(|n| n.local == p.local && n.remote == p.remote);
            if !keep {
                gone.push(p.clone());
            }
            keep
        });
        for p in gone {
            self.actions.push_back(Action::Updown {
                conn: script_conn.clone(),
                verb: p.verb(false),
                env: p.env,
            });
        }
    }

    /// Report the instance's pairs that have come up (`up-*`). Call after the Install that put
    /// their SAs in fwd was pushed.
    pub(super) fn updown_sync_up(&mut self, name: &str) {
        let now_up = self.up_pairs_now(name);
        let Some(script_conn) = self.updown_conn(name) else {
            return;
        };
        let Some(c) = self.conns.get_mut(name) else {
            return;
        };
        let mut new = Vec::new();
        for p in now_up {
            if !c
                .updown_up
                .iter()
                .any(|u| u.local == p.local && u.remote == p.remote)
            {
                c.updown_up.push(p.clone());
                new.push(p);
            }
        }
        for p in new {
            self.actions.push_back(Action::Updown {
                conn: script_conn.clone(),
                verb: p.verb(true),
                env: p.env,
            });
        }
    }
}
