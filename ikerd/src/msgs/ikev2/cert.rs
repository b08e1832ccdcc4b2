//! CERT and CERTREQ payloads (RFC 7296 §3.6, §3.7).

use super::enums::CertEncoding;
use crate::msgs::codec::{Codec, DecodeError};
use crate::msgs::reader::Reader;

/// CERT / CERTREQ payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPayload {
    /// Encoding.
    pub encoding: CertEncoding,
    /// Certificate data / CA key hashes.
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
