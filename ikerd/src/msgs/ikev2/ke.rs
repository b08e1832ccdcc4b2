//! Key exchange payload (RFC 7296 §3.4).

use super::enums::DhGroup;
use crate::msgs::codec::{put_u16, Codec, DecodeError};
use crate::msgs::reader::Reader;

/// KE payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KePayload {
    /// DH group.
    pub group: DhGroup,
    /// Public value.
    pub data: Vec<u8>,
}

impl Codec for KePayload {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.group.0);
        put_u16(out, 0);
        out.extend_from_slice(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let group = DhGroup(r.u16("KE group")?);
        let _reserved = r.u16("KE reserved")?;
        Ok(KePayload {
            group,
            data: r.rest().to_vec(),
        })
    }
}
