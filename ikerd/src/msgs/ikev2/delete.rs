//! Delete payload (RFC 7296 §3.11).

use super::enums::ProtocolId;
use crate::msgs::codec::{put_u16, Codec, DecodeError, MAX_SPIS};
use crate::msgs::reader::Reader;

/// Delete payload; all SPIs have `spi_size` bytes (0 for the IKE SA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePayload {
    /// Protocol.
    pub protocol: ProtocolId,
    /// SPI size.
    pub spi_size: u8,
    /// SPIs.
    pub spis: Vec<Vec<u8>>,
}

impl Codec for DeletePayload {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.protocol.0);
        out.push(self.spi_size);
        put_u16(out, u16::try_from(self.spis.len()).unwrap_or(u16::MAX));
        for s in &self.spis {
            out.extend_from_slice(s);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol = ProtocolId(r.u8("delete protocol")?);
        let spi_size = r.u8("delete spi size")?;
        let n = usize::from(r.u16("delete count")?);
        if n > MAX_SPIS {
            return Err(DecodeError::TooMany {
                what: "delete SPIs",
                limit: MAX_SPIS,
            });
        }
        let need = n * usize::from(spi_size);
        if need != r.left() {
            return Err(DecodeError::CountMismatch {
                what: "delete SPI bytes",
                declared: need,
                found: r.left(),
            });
        }
        let mut spis = Vec::with_capacity(n);
        for _ in 0..n {
            spis.push(r.take(usize::from(spi_size), "delete spi")?.to_vec());
        }
        Ok(DeletePayload {
            protocol,
            spi_size,
            spis,
        })
    }
}
