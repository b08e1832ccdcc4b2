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
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IkerdResponse {
    Pong,
    Status(DaemonStatus),
    Error(String),
}
