//! Mode-config attribute payload (ISAKMP payload 14,
//! draft-dukes-ike-mode-cfg / XAUTH).

use super::enums::CfgType;
use super::sa::{read_attributes, Attribute};
use crate::msgs::codec::{put_u16, Codec, DecodeError};
use crate::msgs::reader::Reader;

/// Attribute payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPayload {
    /// Request / reply / set / ack.
    pub cfg_type: CfgType,
    /// Transaction identifier.
    pub identifier: u16,
    /// Attributes (TV/TLV as in SA transforms).
    pub attributes: Vec<Attribute>,
}

impl Codec for AttrPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.cfg_type.0);
        out.push(0);
        put_u16(out, self.identifier);
        for a in &self.attributes {
            a.encode(out);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let cfg_type = CfgType(r.u8("cfg type")?);
        let _reserved = r.u8("cfg reserved")?;
        let identifier = r.u16("cfg identifier")?;
        let attributes = read_attributes(r)?;
        Ok(AttrPayload {
            cfg_type,
            identifier,
            attributes,
        })
    }
}
