//! SA lifetimes (RFC 4301 §4.4.2.1): soft limits raise one `Expire { hard: false }` (ikerd
//! rekeys), hard limits make the SA unusable at once, raise `Expire { hard: true }` and remove
//! it. Bytes and packets are checked on the packet path after each packet; time in
//! [`Engine::tick`] (and the packet paths refuse an SA past its hard time even between ticks).

use super::control::sa_id;
use super::engine::Engine;
use super::tables::{lock, SaSlot, SaState};
use crate::sad::SaKey;
use ipc::fwd::FwdEvent;
use std::sync::atomic::Ordering;
use std::time::Instant;

fn over(limit: u64, value: u64) -> bool {
    limit != 0 && value >= limit
}

/// "mature", "soft-expired" or "hard-expired", as `look` shows it.
pub fn state_name(slot: &SaSlot, st: &SaState, now: Instant) -> &'static str {
    if !slot.alive(now) {
        return "hard-expired";
    }
    let c = st.codec.counters();
    let lt = &slot.spec.lifetime;
    let soft_time = matches!(slot.soft_at, Some(t) if now >= t);
    if st.soft_done || soft_time || over(lt.soft_packets, c.packets) || over(lt.soft_bytes, c.bytes)
    {
        "soft-expired"
    } else {
        "mature"
    }
}

impl Engine {
    fn expire_event(&self, slot: &SaSlot, hard: bool) {
        self.push_event(FwdEvent::Expire {
            conn: slot.spec.conn.clone(),
            id: sa_id(&slot.key),
            hard,
        });
    }

    /// Mark an SA hard-expired. True (and an event) the first time only.
    pub(super) fn expire_hard(&self, slot: &SaSlot) -> bool {
        if slot.dead.swap(true, Ordering::Relaxed) {
            return false;
        }
        self.expire_event(slot, true);
        true
    }

    /// After a packet went through `slot`: check the byte and packet limits. True when this
    /// packet made the SA hard-expired (the caller then reaps it once the read lock is gone).
    pub(super) fn after_use(&self, slot: &SaSlot, st: &mut SaState) -> bool {
        let c = st.codec.counters();
        let lt = &slot.spec.lifetime;
        if over(lt.hard_packets, c.packets) || over(lt.hard_bytes, c.bytes) {
            st.soft_done = true;
            return self.expire_hard(slot);
        }
        if !st.soft_done && (over(lt.soft_packets, c.packets) || over(lt.soft_bytes, c.bytes)) {
            st.soft_done = true;
            self.expire_event(slot, false);
        }
        false
    }

    /// Remove the hard-expired SAs among `keys` (takes the write lock; only when there are any).
    pub(super) fn reap(&self, keys: &[Option<SaKey>]) {
        if keys.iter().all(Option::is_none) {
            return;
        }
        let mut t = self.write();
        for k in keys.iter().flatten() {
            if t.sad.get(k).is_some_and(|s| s.dead.load(Ordering::Relaxed)) {
                t.sad.remove(k);
            }
        }
    }

    /// Time-driven work (call every 100 ms to 1 s): soft and hard time lifetimes. Events queue
    /// for [`Engine::take_events`]; hard-expired SAs are removed.
    pub fn tick(&self, now: Instant) {
        let mut dead = Vec::new();
        {
            let t = self.read();
            for (k, slot) in t.sad.iter() {
                if slot.dead.load(Ordering::Relaxed) {
                    dead.push(*k);
                    continue;
                }
                if matches!(slot.hard_at, Some(h) if now >= h) {
                    self.expire_hard(slot);
                    dead.push(*k);
                    continue;
                }
                if matches!(slot.soft_at, Some(s) if now >= s) {
                    let mut st = lock(&slot.state);
                    if !st.soft_done {
                        st.soft_done = true;
                        self.expire_event(slot, false);
                    }
                }
            }
        }
        if !dead.is_empty() {
            let mut t = self.write();
            for k in &dead {
                if t.sad.get(k).is_some_and(|s| s.dead.load(Ordering::Relaxed)) {
                    t.sad.remove(k);
                }
            }
        }
    }
}
