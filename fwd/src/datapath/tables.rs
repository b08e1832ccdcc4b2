//! The SAD and SPD as the engine holds them: each SA with its mutable codec state behind its own
//! mutex, each policy with atomic counters. Everything here is changed only under the engine's
//! write lock; the datapath reads it under the read lock.

use super::control::{Bundle, Codec, Geom, ValidPolicy, ValidSa};
use super::Origin;
use crate::sad::{SaKey, Sad};
use crate::spd::{Action, Entry, PolicyId, PolicyTarget, Spd};
use ipc::policy::PolicySpec;
use ipc::sa::SaSpec;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Lock a mutex; a panic elsewhere while holding it does not take the datapath down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The mutable part of an SA.
pub struct SaState {
    pub codec: Codec,
    /// Packets refused by this SA (ICV, replay, padding...).
    pub errors: u64,
    /// The soft-expire event was sent.
    pub soft_done: bool,
}

/// One installed SA. The spec keeps the key bytes (zeroized on drop) for `secrets()` only.
pub struct SaSlot {
    pub spec: SaSpec,
    pub key: SaKey,
    pub by: Origin,
    pub geom: Geom,
    pub installed: Instant,
    pub soft_at: Option<Instant>,
    pub hard_at: Option<Instant>,
    /// Hard-expired (by bytes, packets, time or sequence overflow): unusable, removal pending.
    pub dead: AtomicBool,
    pub state: Mutex<SaState>,
}

impl SaSlot {
    /// Usable at `now`: not hard-expired.
    pub fn alive(&self, now: Instant) -> bool {
        !self.dead.load(Ordering::Relaxed) && !matches!(self.hard_at, Some(t) if now >= t)
    }
}

fn deadline(now: Instant, secs: u64) -> Option<Instant> {
    if secs == 0 {
        None
    } else {
        // A lifetime beyond what Instant can represent is no lifetime.
        now.checked_add(Duration::from_secs(secs))
    }
}

/// One installed policy.
pub struct PolicyMeta {
    /// Canonical spec; its action turns into Trap when the conn is taken down with KeepRoute.
    pub spec: PolicySpec,
    pub by: Origin,
    pub bundle: Bundle,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Last acquire raised for this policy (rate limit).
    pub last_acquire: Mutex<Option<Instant>>,
}

impl PolicyMeta {
    /// Count one packet.
    pub fn count(&self, bytes: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// SAD + SPD + per-policy state.
pub struct Tables {
    pub sad: Sad<SaSlot>,
    pub spd: Spd,
    pub policies: HashMap<PolicyId, PolicyMeta>,
}

impl Tables {
    pub fn new(max_sas: usize, max_policies: usize) -> Self {
        Tables {
            sad: Sad::with_max(max_sas),
            spd: Spd::with_max(max_policies),
            policies: HashMap::new(),
        }
    }

    /// Insert a checked SA (fails only on a duplicate key or a full SAD).
    pub fn insert_sa(&mut self, v: ValidSa, by: Origin, now: Instant) -> Result<(), String> {
        let ValidSa {
            spec,
            key,
            codec,
            geom,
        } = v;
        let lt = spec.lifetime;
        let slot = SaSlot {
            key,
            by,
            geom,
            installed: now,
            soft_at: deadline(now, lt.soft_secs),
            hard_at: deadline(now, lt.hard_secs),
            dead: AtomicBool::new(false),
            state: Mutex::new(SaState {
                codec,
                errors: 0,
                soft_done: false,
            }),
            spec,
        };
        self.sad
            .insert(key, slot)
            .map_err(|e| format!("SA {key}: {e}"))
    }

    /// Insert a checked policy (fails only on a duplicate selector or a full SPD).
    pub fn insert_policy(&mut self, v: ValidPolicy, by: Origin) -> Result<PolicyId, String> {
        let ValidPolicy {
            spec,
            selector,
            bundle,
        } = v;
        // The SPD's action is informational; the engine acts on `PolicyMeta::spec.action`.
        let action = match spec.action {
            ipc::policy::PolicyAction::Protect { .. } => Action::Protect(PolicyTarget(0)),
            ipc::policy::PolicyAction::Trap => Action::Trap(PolicyTarget(0)),
            ipc::policy::PolicyAction::Pass => Action::Pass,
            ipc::policy::PolicyAction::Drop => Action::Drop,
            ipc::policy::PolicyAction::Reject => Action::Reject,
        };
        let entry = Entry::new(spec.conn.clone(), spec.priority, selector, action);
        let id = self
            .spd
            .insert(super::control::spd_dir(spec.direction), entry)
            .map_err(|e| format!("policy of conn {:?}: {e}", spec.conn))?;
        self.policies.insert(
            id,
            PolicyMeta {
                spec,
                by,
                bundle,
                packets: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                last_acquire: Mutex::new(None),
            },
        );
        Ok(id)
    }

    /// Remove a policy.
    pub fn remove_policy(&mut self, id: PolicyId) -> bool {
        let had = self.spd.remove(id).is_some();
        self.policies.remove(&id).is_some() || had
    }

    /// Keys of every SA matching `f`.
    pub fn sa_keys_where(&self, f: impl Fn(&SaSlot) -> bool) -> Vec<SaKey> {
        self.sad
            .iter()
            .filter(|(_, s)| f(s))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Ids of every policy matching `f`.
    pub fn policy_ids_where(&self, f: impl Fn(&PolicyMeta) -> bool) -> Vec<PolicyId> {
        self.policies
            .iter()
            .filter(|(_, m)| f(m))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Number of SAs and of policies a conn holds.
    pub fn conn_counts(&self, conn: &str) -> (usize, usize) {
        let sas = self.sad.iter().filter(|(_, s)| s.spec.conn == conn).count();
        (sas, self.spd.ids_by_name(conn).len())
    }
}
