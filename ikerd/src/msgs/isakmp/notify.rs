//! Notification payload (RFC 2408 §3.14), incl. RFC 3706 DPD
//! R-U-THERE / R-U-THERE-ACK (data = 4-byte sequence number).

use super::enums::{Doi, NotifyType, ProtocolId};
use crate::msgs::codec::{put_u16, put_u32, Codec, DecodeError};
use crate::msgs::reader::Reader;

/// Notification payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPayload {
    /// DOI.
    pub doi: Doi,
    /// Protocol ID.
    pub protocol: ProtocolId,
    /// Notify message type.
    pub notify_type: NotifyType,
    /// SPI (for DPD: icookie‖rcookie, 16 bytes).
    pub spi: Vec<u8>,
    /// Notification data.
    pub data: Vec<u8>,
}

impl NotifyPayload {
    /// The DPD sequence number of an R-U-THERE(-ACK) notify.
    pub fn dpd_sequence(&self) -> Option<u32> {
        if self.notify_type != NotifyType::R_U_THERE
            && self.notify_type != NotifyType::R_U_THERE_ACK
        {
            return None;
        }
        let b: [u8; 4] = self.data.as_slice().try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }
}

impl Codec for NotifyPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.doi.0);
        out.push(self.protocol.0);
        out.push(u8::try_from(self.spi.len()).unwrap_or(u8::MAX));
        put_u16(out, self.notify_type.0);
        out.extend_from_slice(self.spi.get(..usize::from(u8::MAX)).unwrap_or(&self.spi));
        out.extend_from_slice(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let doi = Doi(r.u32("notify doi")?);
        let protocol = ProtocolId(r.u8("notify protocol")?);
        let spi_size = usize::from(r.u8("notify spi size")?);
        let notify_type = NotifyType(r.u16("notify type")?);
        let spi = r.take(spi_size, "notify spi")?.to_vec();
        Ok(NotifyPayload {
            doi,
            protocol,
            notify_type,
            spi,
            data: r.rest().to_vec(),
        })
    }
}
