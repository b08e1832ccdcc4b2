//! What a channel is: who serves it, who may connect, how large a frame may be, whether fds travel on
//! it, and its one request / response / event enum.

use crate::hello::Role;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fmt::Debug;

pub trait Channel: 'static {
    /// File name of the listening socket in the run dir.
    const SOCKET: &'static str;
    const SERVER: Role;
    const CLIENTS: &'static [Role];
    /// Hard cap on one frame's payload, both directions.
    const MAX_FRAME: usize;
    /// Whether SCM_RIGHTS may travel on this channel (server to client only).
    const PASSES_FDS: bool;
    /// Socket file mode. The mode never authorises on its own: SO_PEERCRED is checked on every
    /// connection regardless.
    const MODE: u32;
    type Request: Serialize + DeserializeOwned + Debug + Clone + 'static;
    type Response: Serialize + DeserializeOwned + Debug + Clone + 'static;
    type Event: Serialize + DeserializeOwned + Debug + Clone + 'static;
}

/// Client to server.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMsg<Req> {
    pub id: u32,
    pub req: Req,
}

/// Server to client: a response to request `id`, or an unsolicited event.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg<Resp, Ev> {
    Response { id: u32, resp: Resp },
    Event(Ev),
}

/// Event type of channels that have no events yet. It has no values, so no frame can carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoEvent {}
