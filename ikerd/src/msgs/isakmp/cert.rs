//! Certificate and certificate request payloads (RFC 2408 §3.9, §3.10).

use super::enums::CertEncoding;
use crate::msgs::codec::{Codec, DecodeError};
use crate::msgs::reader::Reader;

/// CERT or CR payload: an encoding byte then the data (for CR, a CA name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPayload {
    /// Certificate encoding.
    pub encoding: CertEncoding,
    /// Certificate data / certificate authority.
    pub data: Vec<u8>,
}

impl Codec for CertPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.encoding.0);
        out.extend_from_slice(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let encoding = CertEncoding(r.u8("cert encoding")?);
        Ok(CertPayload {
            encoding,
            data: r.rest().to_vec(),
        })
    }
}
