//! Channel `fwd.sock`: ikerd and confd ask fwd (the privileged datapath daemon).

use crate::channel::{Channel, NoEvent};
use crate::hello::Role;
use crate::status::DaemonStatus;
use serde::{Deserialize, Serialize};

pub struct FwdChannel;

impl Channel for FwdChannel {
    const SOCKET: &'static str = "fwd.sock";
    const SERVER: Role = Role::Fwd;
    const CLIENTS: &'static [Role] = &[Role::Ikerd, Role::Confd];
    const MAX_FRAME: usize = 256 * 1024;
    /// fwd hands ikerd its bound UDP port-500 socket.
    const PASSES_FDS: bool = true;
    const MODE: u32 = 0o660;
    type Request = FwdRequest;
    type Response = FwdResponse;
    type Event = NoEvent;
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FwdRequest {
    Ping,
    Status,
    /// ikerd only: pass me the bound IKE socket (UDP port 500). The answer carries one fd.
    IkeSocket,
    /// Install an SA (confd: manual keying; ikerd: negotiated).
    AddSa(crate::sa::SaSpec),
    DeleteSa(crate::sa::SaId),
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FwdResponse {
    Pong,
    Status(DaemonStatus),
    /// The fd travels with this frame (SCM_RIGHTS); `port` is the port it is bound to.
    IkeSocket {
        port: u16,
    },
    SaAdded(crate::sa::SaId),
    SaDeleted(crate::sa::SaId),
    Denied(String),
    Error(String),
}
