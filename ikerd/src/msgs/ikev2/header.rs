//! IKEv2 fixed header (RFC 7296 §3.1).

use super::enums::{ExchangeType, FLAG_INITIATOR, FLAG_RESPONSE};

/// Length of the IKE header.
pub const HEADER_LEN: usize = 28;

/// IKE header, less next payload and length (derived on encode).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Initiator SPI.
    pub spi_i: [u8; 8],
    /// Responder SPI.
    pub spi_r: [u8; 8],
    /// Version byte (0x20).
    pub version: u8,
    /// Exchange type.
    pub exchange: ExchangeType,
    /// Flags (I, V, R).
    pub flags: u8,
    /// Message ID.
    pub message_id: u32,
}

impl Header {
    /// I flag.
    pub fn is_initiator(&self) -> bool {
        self.flags & FLAG_INITIATOR != 0
    }
    /// R flag.
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }
}
