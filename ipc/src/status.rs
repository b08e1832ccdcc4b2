//! Health reports every daemon gives: shared by all channels' `Status` answers.

use crate::hello::Role;
use crate::peer::PeerCred;
use serde::{Deserialize, Serialize};

/// The state of one outgoing channel from a daemon to a peer daemon.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkState {
    /// Never connected yet.
    Connecting,
    Up {
        since_unix: u64,
        reconnects: u32,
    },
    Down {
        since_unix: u64,
        reason: String,
        reconnects: u32,
    },
}

impl LinkState {
    pub fn is_up(&self) -> bool {
        matches!(self, LinkState::Up { .. })
    }
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkReport {
    pub peer: Role,
    pub state: LinkState,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientReport {
    pub role: Role,
    pub cred: PeerCred,
    pub since_unix: u64,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub role: Role,
    pub pid: u32,
    pub uid: u32,
    pub started_unix: u64,
    pub ready: bool,
    /// Channels this daemon opened to others.
    pub links: Vec<LinkReport>,
    /// Peers currently connected to this daemon's socket.
    pub clients: Vec<ClientReport>,
    /// Short facts specific to the daemon ("secrets: 3 PSK, 1 RSA", "ike socket: received").
    pub notes: Vec<String>,
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
