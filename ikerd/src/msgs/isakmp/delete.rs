//! Delete payload (RFC 2408 §3.15).

use super::enums::{Doi, ProtocolId};
use crate::msgs::codec::{put_u16, put_u32, Codec, DecodeError, MAX_SPIS};
use crate::msgs::reader::Reader;

/// Delete payload. Every SPI has `spi_size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePayload {
    /// DOI.
    pub doi: Doi,
    /// Protocol ID.
    pub protocol: ProtocolId,
    /// Size of each SPI.
    pub spi_size: u8,
    /// The SPIs (for ISAKMP SAs: icookie‖rcookie).
    pub spis: Vec<Vec<u8>>,
}

impl Codec for DeletePayload {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.doi.0);
        out.push(self.protocol.0);
        out.push(self.spi_size);
        put_u16(out, u16::try_from(self.spis.len()).unwrap_or(u16::MAX));
        for s in &self.spis {
            out.extend_from_slice(s);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let doi = Doi(r.u32("delete doi")?);
        let protocol = ProtocolId(r.u8("delete protocol")?);
        let spi_size = r.u8("delete spi size")?;
        let n = usize::from(r.u16("delete spi count")?);
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
            doi,
            protocol,
            spi_size,
            spis,
        })
    }
}
