//! Channel `ctl.sock`: the operator's `ipsecctl` talks to confd, which answers or proxies to the daemon
//! that owns the state. Every request is authorised by SO_PEERCRED, never by the socket mode.

use crate::channel::{Channel, NoEvent};
use crate::hello::Role;
use crate::status::DaemonStatus;
use serde::{Deserialize, Serialize};

pub struct CtlChannel;

impl Channel for CtlChannel {
    const SOCKET: &'static str = "ctl.sock";
    const SERVER: Role = Role::Confd;
    const CLIENTS: &'static [Role] = &[Role::Ctl];
    const MAX_FRAME: usize = 4 * 1024 * 1024;
    const PASSES_FDS: bool = false;
    const MODE: u32 = 0o666;
    type Request = CtlRequest;
    type Response = CtlResponse;
    type Event = NoEvent;
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CtlRequest {
    Ping,
    /// Health of every daemon as confd sees it (confd's own, and what each peer reports).
    Status,
    /// Re-read ipsec.conf and apply only what changed.
    Reload,
    /// Have keyd read ipsec.secrets again.
    RereadSecrets,
    /// Public halves of keyd's RSA keys.
    HostKeys,
    /// `ipsecctl manual up|down NAME`: install or take down a manually keyed conn's SAs and policies.
    ManualUp(String),
    ManualDown(String),
    /// `ipsecctl route|unroute NAME`: the conn's policies and routes with no SA (trap), or remove them.
    Route(String),
    Unroute(String),
    /// `ipsecctl eroute` and `ipsecctl look`: fwd's listing (no keys).
    Look,
    /// `ipsecctl sa --tcpdump-secrets`: root only.
    SaSecrets,
    /// `ipsecctl up|down NAME` (`ipsec auto --up|--down`): IKE negotiation through ikerd.
    Up(String),
    Down(String),
    /// `ipsecctl add|delete|replace NAME`: load a conn of ipsec.conf into ikerd, remove it (tearing
    /// its SAs down), or re-read its definition and replace it.
    Add(String),
    Delete(String),
    Replace(String),
    /// `ipsecctl status`: connections, ISAKMP and IPsec SAs (ikerd), with fwd's counters.
    IkeStatus,
    /// `ipsecctl trafficstatus`: bytes per established IPsec SA.
    TrafficStatus,
    /// `ipsecctl barf`: one support dump (no secrets).
    Barf,
    /// `ipsecctl setkey -f FILE` / `-c`: a setkey(8) script (its name for `file:line:` errors). The
    /// whole script is checked before anything is installed.
    Setkey { file: String, script: String },
}

/// What one daemon answered, or why it could not be asked.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DaemonReport {
    Ok(DaemonStatus),
    Unreachable { role: Role, reason: String },
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CtlResponse {
    Pong,
    Status(Vec<DaemonReport>),
    Reloaded(ReloadSummary),
    /// The new ipsec.conf was refused (`file:line: message` each); the running config is unchanged.
    ReloadFailed(Vec<String>),
    SecretsLoaded(crate::keyd::SecretsSummary),
    HostKeys(Vec<crate::keyd::HostKey>),
    /// A state change was made; the text says what (one line per item).
    Done(Vec<String>),
    Look(crate::policy::Look),
    SaSecrets(Vec<crate::policy::SaSecret>),
    /// ikerd's report, and fwd's listing when fwd could be asked.
    IkeStatus {
        ike: crate::ike::IkeStatusReport,
        look: Option<crate::policy::Look>,
    },
    /// `barf` as text, section by section.
    Barf(String),
    PermissionDenied(String),
    Error(String),
    /// A setkey script refused (`file:line: message` each); nothing was changed.
    SetkeyFailed(Vec<String>),
}

/// What `ipsecctl reload` changed, by connection name.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<String>,
    pub warnings: Vec<String>,
}
