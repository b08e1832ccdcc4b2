//! The versioned hello that opens every connection: each side names its role.

use serde::{Deserialize, Serialize};

/// Fixed bytes at the start of every hello, so a stray client (or a misdirected socket) is told apart
/// from a peer speaking an older or newer ferroswan protocol.
pub const MAGIC: [u8; 8] = *b"FSWANIPC";

/// Bumped on every incompatible change to any channel's messages.
pub const PROTOCOL_VERSION: u16 = 1;

/// Who is speaking on a connection.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Role {
    Keyd,
    Ikerd,
    Fwd,
    Confd,
    /// The operator's client, `ipsecctl`.
    Ctl,
    Supervisor,
}

impl Role {
    pub const DAEMONS: [Role; 4] = [Role::Keyd, Role::Ikerd, Role::Fwd, Role::Confd];

    pub fn name(self) -> &'static str {
        match self {
            Role::Keyd => "keyd",
            Role::Ikerd => "ikerd",
            Role::Fwd => "fwd",
            Role::Confd => "confd",
            Role::Ctl => "ipsecctl",
            Role::Supervisor => "supervisor",
        }
    }

    pub fn from_name(s: &str) -> Option<Role> {
        [
            Role::Keyd,
            Role::Ikerd,
            Role::Fwd,
            Role::Confd,
            Role::Ctl,
            Role::Supervisor,
        ]
        .into_iter()
        .find(|r| r.name() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 8],
    pub version: u16,
    pub role: Role,
}

impl Hello {
    pub fn new(role: Role) -> Self {
        Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            role,
        }
    }
}

/// The server's answer to a hello. A refusal says why, so a misconfigured legitimate peer can log it.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    Accepted { version: u16, role: Role },
    Rejected { reason: String },
}
