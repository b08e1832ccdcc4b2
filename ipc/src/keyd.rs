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
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeydResponse {
    Pong,
    Status(DaemonStatus),
    Error(String),
}
