//! Notify payload (RFC 7296 §3.10).

use super::enums::{NotifyType, ProtocolId};
use crate::msgs::codec::{put_u16, Codec, DecodeError};
use crate::msgs::reader::Reader;

/// Notify payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPayload {
    /// Protocol ID (0 when not about an SA).
    pub protocol: ProtocolId,
    /// Notify type.
    pub notify_type: NotifyType,
    /// SPI.
    pub spi: Vec<u8>,
    /// Notification data.
    pub data: Vec<u8>,
}

impl NotifyPayload {
    /// An error notification (type below 16384).
    pub fn is_error(&self) -> bool {
        self.notify_type.0 < 16384
    }
}

impl Codec for NotifyPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.protocol.0);
        out.push(u8::try_from(self.spi.len()).unwrap_or(u8::MAX));
        put_u16(out, self.notify_type.0);
        out.extend_from_slice(self.spi.get(..usize::from(u8::MAX)).unwrap_or(&self.spi));
        out.extend_from_slice(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol = ProtocolId(r.u8("notify protocol")?);
        let spi_size = usize::from(r.u8("notify spi size")?);
        let notify_type = NotifyType(r.u16("notify type")?);
        let spi = r.take(spi_size, "notify spi")?.to_vec();
        Ok(NotifyPayload {
            protocol,
            notify_type,
            spi,
            data: r.rest().to_vec(),
        })
    }
}
