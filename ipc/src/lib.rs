//! ferroswan's inter-process protocol. Every cross-process byte goes through this crate:
//! - [`frame`]: 4-byte big-endian length prefix, per-channel hard cap, strict postcard decoding;
//! - [`hello`]: the versioned hello in which each side names its role;
//! - [`peer`]: SO_PEERCRED and who may claim which role; SCM_RIGHTS on the channels that pass fds;
//! - one module per channel, each with its one request / response / event enum:
//!   [`keyd`], [`fwd`], [`ikerd`], [`ctl`], [`supervisor`];
//! - [`server`] and [`client`]: the only code that reads or writes these sockets.

pub mod channel;
pub mod client;
pub mod ctl;
pub mod frame;
pub mod fwd;
pub mod hello;
pub mod ike;
pub mod ikerd;
pub mod keyd;
pub mod log;
pub mod notify;
pub mod paths;
pub mod peer;
pub mod policy;
pub mod runtime;
pub mod sa;
pub mod server;
pub mod status;
pub mod supervisor;
pub mod wire;

pub use channel::Channel;
pub use hello::Role;
pub use paths::{DirArgs, Dirs};
pub use wire::IpcError;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod roundtrip_tests;
