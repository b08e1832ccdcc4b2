//! ISAKMP/IKEv1 and IKEv2 message codecs (owned by the IKE codec work).
//!
//! Sans-IO: everything here turns bytes into typed structures and back,
//! with no sockets, clocks or state. The state machines live elsewhere and
//! call [`decode_any`], [`isakmp::Message::decode`],
//! [`ikev2::Message::decode`] and the matching `encode` methods.
//!
//! Design rules (after the rustls `msgs` split):
//! * [`reader::Reader`] checks every length against what remains and
//!   rejects trailing bytes; nothing in here indexes or unwraps input.
//! * Wire enums are newtypes over the integer with named constants
//!   ([`enums`]), so unknown values survive a decode/encode round trip.
//! * Counts are bounded ([`codec::MAX_PAYLOADS`], …) so a hostile message
//!   costs linear work at most.

pub mod codec;
pub mod enums;
pub mod ikev2;
pub mod isakmp;
pub mod reader;

pub use codec::DecodeError;

/// A decoded datagram of either IKE version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyMessage {
    /// ISAKMP / IKEv1 (major version 1).
    V1(isakmp::Message),
    /// IKEv2 (major version 2).
    V2(ikev2::Message),
}

/// Offset of the version byte in both ISAKMP and IKEv2 headers.
const VERSION_OFFSET: usize = 17;

/// Decode an IKE message of either version, picking the codec by the major
/// version nibble. `bytes` is the UDP payload (without the non-ESP marker).
pub fn decode_any(bytes: &[u8]) -> Result<AnyMessage, DecodeError> {
    match bytes.get(VERSION_OFFSET).map(|v| v >> 4) {
        Some(1) => isakmp::Message::decode(bytes).map(AnyMessage::V1),
        Some(2) => ikev2::Message::decode(bytes).map(AnyMessage::V2),
        Some(v) => Err(DecodeError::UnsupportedVersion(v)),
        None => Err(DecodeError::Truncated {
            what: "IKE header",
            need: 28,
            have: bytes.len(),
        }),
    }
}

/// Strip the 4-byte zero non-ESP marker of a UDP/4500 datagram (RFC 3948).
/// Returns `None` for ESP-in-UDP, NAT keepalives (`0xff`) and short data.
pub fn strip_non_esp_marker(udp_payload: &[u8]) -> Option<&[u8]> {
    match udp_payload.split_first_chunk::<4>() {
        Some(([0, 0, 0, 0], rest)) => Some(rest),
        _ => None,
    }
}

impl AnyMessage {
    /// Encode back to wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            AnyMessage::V1(m) => m.encode(),
            AnyMessage::V2(m) => m.encode(),
        }
    }
}
