//! Identification payloads IDi / IDr (RFC 7296 §3.5).

use super::enums::IdType;
use crate::msgs::codec::{Codec, DecodeError};
use crate::msgs::isakmp::id::{parse_identity, Identity};
use crate::msgs::isakmp::IdType as V1IdType;
use crate::msgs::reader::Reader;

/// ID payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPayload {
    /// ID type.
    pub id_type: IdType,
    /// Identification data.
    pub data: Vec<u8>,
}

impl IdPayload {
    /// Interpret the data (address types must have their exact size;
    /// RFC822_ADDR maps to [`Identity::UserFqdn`]).
    pub fn identity(&self) -> Result<Identity, DecodeError> {
        match self.id_type {
            IdType::IPV4_ADDR
            | IdType::FQDN
            | IdType::RFC822_ADDR
            | IdType::IPV6_ADDR
            | IdType::DER_ASN1_DN
            | IdType::DER_ASN1_GN
            | IdType::KEY_ID => parse_identity(V1IdType(self.id_type.0), &self.data),
            _ => Ok(Identity::Other(V1IdType(self.id_type.0), self.data.clone())),
        }
    }
}

impl Codec for IdPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.id_type.0, 0, 0, 0]);
        out.extend_from_slice(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id_type = IdType(r.u8("ID type")?);
        let _reserved = r.take(3, "ID reserved")?;
        let p = IdPayload {
            id_type,
            data: r.rest().to_vec(),
        };
        p.identity()?;
        Ok(p)
    }
}
