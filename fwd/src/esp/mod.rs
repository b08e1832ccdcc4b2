//! ESP/AH sans-IO codec (owned by the datapath work).
//!
//! Nothing here does I/O or allocates per packet: the datapath reads a packet
//! into its own buffer (leaving [`EspSa::headroom`] bytes in front and
//! [`EspSa::max_tailroom`] behind), calls [`EspSa::seal`] / [`EspSa::open`],
//! and writes the returned range. Errors are typed ([`EspError`]) so drops
//! can be counted per reason.
//!
//! - [`suite`] — algorithms and keyed crypto state (one interface over ring and RustCrypto)
//! - [`codec`] — ESP header / padding / trailer framing, `peek_spi`
//! - [`replay`] — anti-replay window (RFC 6479-style) and ESN inference
//! - [`sa`] — the SA (sequence numbers, ESN, replay, counters, lifetimes)
//! - [`ah`] — AH (RFC 4302)
//! - [`ip`] — IPv4/IPv6/UDP-encap header helpers with checksums

pub mod ah;
pub mod codec;
pub mod error;
pub mod ip;
pub mod replay;
pub mod sa;
pub mod suite;

#[cfg(test)]
mod kat_tests;

pub use codec::{peek_seq, peek_spi, NH_IPV4, NH_IPV6, NH_NO_NEXT};
pub use error::EspError;
pub use replay::ReplayWindow;
pub use sa::{Counters, EspSa, Lifetime, LifetimeState, Mode, Opened, SaConfig};
pub use suite::{EncAlg, GcmIcv, IntegAlg, Suite, SuiteSpec};
