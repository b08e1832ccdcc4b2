//! Channel `ikerd.sock`: confd pushes connections to ikerd and asks it for state.

use crate::channel::{Channel, NoEvent};
use crate::hello::Role;
use crate::status::DaemonStatus;
use serde::{Deserialize, Serialize};

pub struct IkerdChannel;

impl Channel for IkerdChannel {
    const SOCKET: &'static str = "ikerd.sock";
    const SERVER: Role = Role::Ikerd;
    const CLIENTS: &'static [Role] = &[Role::Confd];
    const MAX_FRAME: usize = 1024 * 1024;
    const PASSES_FDS: bool = false;
    const MODE: u32 = 0o660;
    type Request = IkerdRequest;
    type Response = IkerdResponse;
    type Event = NoEvent;
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IkerdRequest {
    Ping,
    Status,
    /// The whole set of IKE conns ikerd should know (`auto=add|route|start` and those `ipsecctl add`
    /// added), replacing the previous set: conns no longer listed are torn down, changed ones are
    /// replaced (pluto's `--replace`), new ones started or routed as their `auto` says.
    LoadConns {
        settings: crate::ike::IkeSettings,
        conns: Vec<crate::ike::IkeConn>,
    },
    /// `ipsecctl up NAME`: negotiate now (returns once the attempt has started).
    Up(String),
    /// `ipsecctl down NAME`: delete its ISAKMP and IPsec SAs (telling the peer); routes stay.
    Down(String),
    /// Connections, ISAKMP/IKE SAs and IPsec SAs.
    IkeStatus,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IkerdResponse {
    Pong,
    Status(DaemonStatus),
    Loaded(crate::ike::LoadSummary),
    /// A state change was started or made; one line per item.
    Done(Vec<String>),
    IkeStatus(crate::ike::IkeStatusReport),
    Error(String),
}
