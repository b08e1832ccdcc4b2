//! Time: retransmissions, keyd deadlines, expiries, rekeys, retirement of replaced SAs, DPD and
//! retries.

use super::conns::RETRY_DELAY;
use super::engine::{tag, Engine};
use std::time::{Duration, Instant};

impl Engine {
    /// When to rekey an SA established at `now` with `life` seconds: life − margin − a random
    /// part of fuzz% of the margin (the margin capped at half the lifetime, as pluto does).
    pub(super) fn rekey_time(
        &mut self,
        now: Instant,
        life: u64,
        margin: u64,
        fuzz_percent: u32,
    ) -> Instant {
        let margin = margin.min(life / 2);
        let fuzz_max = margin.saturating_mul(u64::from(fuzz_percent)) / 100;
        let fuzz_ms = if fuzz_max == 0 {
            0
        } else {
            u64::from(self.rng.next_u32()) % (fuzz_max.saturating_mul(1000) + 1)
        };
        let total_ms = margin.saturating_mul(1000).saturating_add(fuzz_ms);
        let life_ms = life.saturating_mul(1000);
        let at = life_ms.saturating_sub(total_ms).max(life_ms / 4);
        now + Duration::from_millis(at)
    }

    pub(super) fn on_tick(&mut self, now: Instant) {
        // keyd that does not answer.
        let late: Vec<u64> = self
            .tickets
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in late {
            self.on_keyd_answer(t, Err("no answer from keyd within 10 s".into()), now);
        }

        let ikes: Vec<u64> = self.ikes.keys().copied().collect();
        for serial in ikes {
            self.ike_tick(serial, now);
        }
        let kids: Vec<u64> = self.children.keys().copied().collect();
        for serial in kids {
            self.child_tick(serial, now);
        }
        let retry: Vec<String> = self
            .conns
            .iter()
            .filter(|(_, c)| c.retry_at.is_some_and(|r| r <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in retry {
            let want = self.conns.get_mut(&name).map(|c| {
                c.retry_at = None;
                c.want_up
            });
            if want == Some(true)
                && !self.missing_pairs(&name).is_empty()
                && self.negotiating_ike(&name).is_none()
            {
                let _ = self.start_negotiation(&name, now);
            }
        }
    }

    fn ike_tick(&mut self, serial: u64, now: Instant) {
        let Some(s) = self.ikes.get_mut(&serial) else {
            return;
        };
        let conn = s.conn.clone();
        let t = tag(&conn, serial);
        if let Some(r) = s.retrans.as_mut() {
            if r.next_at <= now && s.waiting.is_none() {
                if r.fire(now).is_some() {
                    if let Some(out) = s.last_out.clone() {
                        self.send(&out);
                    }
                } else {
                    let (count, state, initiator) = (r.count, s.state, s.initiator);
                    self.fail(
                        &conn,
                        format!("{t}: max number of retransmissions ({count}) reached {state}: no answer from the peer"),
                    );
                    self.delete_ike(serial, false);
                    if initiator {
                        self.attempt_failed(&conn, now, Duration::ZERO);
                    }
                    return;
                }
            }
        }
        let Some(s) = self.ikes.get_mut(&serial) else {
            return;
        };
        if s.expire_at.is_some_and(|e| e <= now) {
            if s.established() {
                self.info(format!("{t}: ISAKMP SA expired"));
                self.delete_ike(serial, true);
            } else {
                let state = s.state;
                self.info(format!("{t}: discarding the half-open state {state}"));
                self.delete_ike(serial, false);
            }
            return;
        }
        if s.initiator
            && s.established()
            && !s.rekeying
            && !s.deleting
            && s.rekey_at.is_some_and(|r| r <= now)
        {
            s.rekeying = true;
            let newer = self
                .ikes
                .values()
                .any(|x| x.serial > serial && x.conn == conn && !x.deleting);
            if !newer {
                self.info(format!("{t}: rekeying the ISAKMP SA"));
                if let Err(e) = self.start_mm(&conn, now, Some(serial)) {
                    self.fail(&conn, format!("{t}: cannot rekey the ISAKMP SA: {e}"));
                }
            }
        }
        self.dpd_tick(serial, now);
    }

    fn child_tick(&mut self, serial: u64, now: Instant) {
        let Some(c) = self.children.get_mut(&serial) else {
            return;
        };
        let conn = c.conn.clone();
        let t = tag(&conn, serial);
        if let Some(r) = c.retrans.as_mut() {
            if r.next_at <= now {
                if r.fire(now).is_some() {
                    if let Some(out) = c.last_out.clone() {
                        self.send(&out);
                    }
                } else {
                    let (count, state) = (r.count, c.state);
                    self.fail(
                        &conn,
                        format!("{t}: max number of retransmissions ({count}) reached {state}: no answer from the peer"),
                    );
                    self.qm_failed(serial, now);
                    self.gc_instance(&conn);
                    return;
                }
            }
        }
        let Some(c) = self.children.get(&serial) else {
            return;
        };
        if c.retire_at.is_some_and(|r| r <= now) {
            self.info(format!("{t}: replaced IPsec SA retired"));
            self.delete_child(serial, now, true);
            self.update_fwd(&conn);
            return;
        }
        if c.expire_at.is_some_and(|e| e <= now) {
            self.info(format!(
                "{t}: IPsec SA expired ({})",
                if c.initiator {
                    "not rekeyed in time"
                } else {
                    "the initiator did not rekey it"
                }
            ));
            self.delete_child(serial, now, true);
            self.update_fwd(&conn);
            self.gc_instance(&conn);
            return;
        }
        let newest = !self
            .children
            .values()
            .any(|x| x.serial > serial && x.conn == conn && x.established());
        if c.initiator
            && c.established()
            && !c.rekeying
            && c.retire_at.is_none()
            && c.rekey_at.is_some_and(|r| r <= now)
        {
            if newest {
                self.info(format!("{t}: rekeying the IPsec SA"));
                self.rekey_child(serial, now);
            } else if let Some(c) = self.children.get_mut(&serial) {
                c.rekey_at = None;
            }
            // A rekey that could not start tries again later.
            if let Some(c) = self.children.get_mut(&serial) {
                if !c.rekeying && c.rekey_at.is_some_and(|r| r <= now) {
                    c.rekey_at = Some(now + RETRY_DELAY);
                }
            }
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        let mut best: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        };
        for w in self.tickets.values() {
            consider(Some(w.deadline));
        }
        for s in self.ikes.values() {
            if s.waiting.is_none() {
                consider(s.retrans.map(|r| r.next_at));
            }
            consider(s.expire_at);
            if s.initiator && s.established() && !s.rekeying {
                consider(s.rekey_at);
            }
            if s.established() {
                consider(s.dpd.deadline());
            }
        }
        for c in self.children.values() {
            consider(c.retrans.map(|r| r.next_at));
            consider(c.retire_at);
            consider(c.expire_at);
            if c.initiator && c.established() && !c.rekeying && c.retire_at.is_none() {
                consider(c.rekey_at);
            }
        }
        for c in self.conns.values() {
            consider(c.retry_at);
        }
        best
    }
}
