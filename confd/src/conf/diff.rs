//! Differences between two configurations, for `ipsecctl reload`.

use super::model::{Config, Conn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfigDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<String>,
    /// `config setup` or the policy groups changed.
    pub setup_changed: bool,
    pub policy_groups_changed: bool,
}

impl ConfigDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.modified.is_empty()
            && !self.setup_changed
            && !self.policy_groups_changed
    }
}

/// Two conns are the same when everything but their place in the files is equal.
fn same(a: &Conn, b: &Conn) -> bool {
    let mut b2 = b.clone();
    b2.location = a.location.clone();
    *a == b2
}

/// Names (sorted) of conns added, removed and modified from `old` to `new`.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let old_by: BTreeMap<&str, &Conn> = old.conns.iter().map(|c| (c.name.as_str(), c)).collect();
    let new_by: BTreeMap<&str, &Conn> = new.conns.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut d = ConfigDiff {
        setup_changed: old.setup != new.setup,
        policy_groups_changed: old.policy_groups != new.policy_groups,
        ..ConfigDiff::default()
    };
    for (name, conn) in &new_by {
        match old_by.get(name) {
            None => d.added.push((*name).to_string()),
            Some(o) if !same(o, conn) => d.modified.push((*name).to_string()),
            Some(_) => {}
        }
    }
    d.removed = old_by.keys().filter(|n| !new_by.contains_key(*n)).map(|n| (*n).to_string()).collect();
    d
}
