//! ikerd's IKEv1 engine (RFC 2408/2409, pluto's behaviour): Main Mode with pre-shared keys and RSA
//! signatures, Quick Mode with and without PFS, informational exchanges (delete, notify, DPD),
//! NAT traversal, retransmission, keying tries, rekeying and `uniqueids`.
//!
//! Sans-IO: [`Engine`] takes datagrams, keyd's answers, fwd's events and the time, and hands back
//! [`crate::actions::Action`]s; it never blocks and holds no socket. Diffie-Hellman and the PRFs
//! run inline; every operation on a pre-shared or private key goes to keyd.

pub mod engine;
pub mod ids;
pub mod natt;
pub mod proposals;
pub mod state;
pub mod wire;

mod child;
mod conns;
mod dpd;
mod ike_sa;
mod informational;
mod install;
mod main_mode;
mod quick_mode;
mod status;
mod timers;
mod updown;

#[cfg(test)]
mod tests;

pub use engine::{Engine, EngineConfig};
