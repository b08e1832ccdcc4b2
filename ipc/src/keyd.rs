//! Channel `keyd.sock`: ikerd and confd ask keyd. keyd never returns key material on it.

use crate::channel::{Channel, NoEvent};
use crate::hello::Role;
use crate::status::DaemonStatus;
use serde::{Deserialize, Serialize};

pub struct KeydChannel;

impl Channel for KeydChannel {
    const SOCKET: &'static str = "keyd.sock";
    const SERVER: Role = Role::Keyd;
    const CLIENTS: &'static [Role] = &[Role::Ikerd, Role::Confd];
    const MAX_FRAME: usize = 64 * 1024;
    const PASSES_FDS: bool = false;
    const MODE: u32 = 0o660;
    type Request = KeydRequest;
    type Response = KeydResponse;
    type Event = NoEvent;
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeydRequest {
    Ping,
    Status,
    /// Public halves of the RSA keys keyd holds (for `showhostkey`). Never private material.
    HostKeys,
    /// confd only: read ipsec.secrets again (`ipsecctl rereadsecrets`).
    RereadSecrets,
}

/// The public half of one RSA key from ipsec.secrets.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKey {
    /// The IDs the secrets file lists for this key (may be empty).
    pub ids: Vec<String>,
    /// RFC 3110 public key, `0s…`.
    pub pubkey: String,
    pub keyid: String,
    pub bits: u32,
}

/// What a (re)load of ipsec.secrets found.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsSummary {
    pub file: String,
    pub psks: u32,
    pub rsa_keys: u32,
    pub warnings: Vec<String>,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeydResponse {
    Pong,
    Status(DaemonStatus),
    HostKeys(Vec<HostKey>),
    SecretsLoaded(SecretsSummary),
    Denied(String),
    Error(String),
}
