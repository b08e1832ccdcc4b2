//! Configuration payload (RFC 7296 §3.15).

use super::enums::{CfgAttr, CfgType};
use crate::msgs::codec::{put_u16, Codec, DecodeError, MAX_ATTRIBUTES};
use crate::msgs::reader::Reader;

/// One configuration attribute (R bit must be 0 and is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgAttribute {
    /// Attribute type (15 bits).
    pub ty: CfgAttr,
    /// Value (may be empty in a request).
    pub value: Vec<u8>,
}

/// CP payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpPayload {
    /// CFG_REQUEST / REPLY / SET / ACK.
    pub cfg_type: CfgType,
    /// Attributes.
    pub attributes: Vec<CfgAttribute>,
}

impl Codec for CpPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.cfg_type.0, 0, 0, 0]);
        for a in &self.attributes {
            put_u16(out, a.ty.0 & 0x7fff);
            let n = a.value.len().min(usize::from(u16::MAX));
            put_u16(out, u16::try_from(n).unwrap_or(u16::MAX));
            out.extend_from_slice(a.value.get(..n).unwrap_or(&a.value));
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let cfg_type = CfgType(r.u8("CP type")?);
        let _reserved = r.take(3, "CP reserved")?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            if attributes.len() >= MAX_ATTRIBUTES {
                return Err(DecodeError::TooMany {
                    what: "CP attributes",
                    limit: MAX_ATTRIBUTES,
                });
            }
            let t = r.u16("CP attribute type")?;
            if t & 0x8000 != 0 {
                return Err(DecodeError::Invalid {
                    what: "CP attribute R bit",
                    value: u64::from(t),
                });
            }
            let n = usize::from(r.u16("CP attribute length")?);
            let value = r.take(n, "CP attribute value")?.to_vec();
            attributes.push(CfgAttribute {
                ty: CfgAttr(t),
                value,
            });
        }
        Ok(CpPayload {
            cfg_type,
            attributes,
        })
    }
}
