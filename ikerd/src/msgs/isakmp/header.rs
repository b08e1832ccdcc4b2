//! ISAKMP fixed header (RFC 2408 §3.1).

use super::enums::{ExchangeType, FLAG_ENCRYPTION};

/// Length of the fixed ISAKMP header.
pub const HEADER_LEN: usize = 28;

/// The ISAKMP header, less the two fields the codec derives on encode
/// (next payload and total length).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Initiator cookie.
    pub icookie: [u8; 8],
    /// Responder cookie.
    pub rcookie: [u8; 8],
    /// Version byte: major in the high nibble, minor in the low (0x10).
    pub version: u8,
    /// Exchange type.
    pub exchange: ExchangeType,
    /// Flags (E, C, A).
    pub flags: u8,
    /// Message ID.
    pub message_id: u32,
}

impl Header {
    /// Is the E (encryption) flag set?
    pub fn encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTION != 0
    }
}
