//! Identification payload (RFC 2408 §3.8, IPsec DOI RFC 2407 §4.6.2).

use super::enums::IdType;
use crate::msgs::codec::{put_u16, Codec, DecodeError};
use crate::msgs::reader::Reader;
use std::net::{Ipv4Addr, Ipv6Addr};

/// ID payload. `data` is kept raw; [`IdPayload::identity`] interprets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPayload {
    /// ID type.
    pub id_type: IdType,
    /// IP protocol (0 = any).
    pub protocol: u8,
    /// Port (0 = any).
    pub port: u16,
    /// Identification data.
    pub data: Vec<u8>,
}

/// An interpreted identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_IPV6_ADDR.
    Ipv6(Ipv6Addr),
    /// ID_IPV4_ADDR_SUBNET (address, mask).
    Ipv4Subnet(Ipv4Addr, Ipv4Addr),
    /// ID_IPV6_ADDR_SUBNET (address, mask).
    Ipv6Subnet(Ipv6Addr, Ipv6Addr),
    /// ID_IPV4_ADDR_RANGE (start, end).
    Ipv4Range(Ipv4Addr, Ipv4Addr),
    /// ID_IPV6_ADDR_RANGE (start, end).
    Ipv6Range(Ipv6Addr, Ipv6Addr),
    /// ID_FQDN (bytes, not checked for UTF-8).
    Fqdn(Vec<u8>),
    /// ID_USER_FQDN.
    UserFqdn(Vec<u8>),
    /// ID_DER_ASN1_DN.
    DerAsn1Dn(Vec<u8>),
    /// ID_DER_ASN1_GN.
    DerAsn1Gn(Vec<u8>),
    /// ID_KEY_ID.
    KeyId(Vec<u8>),
    /// Any other type.
    Other(IdType, Vec<u8>),
}

fn v4(b: &[u8]) -> Result<Ipv4Addr, DecodeError> {
    let a: [u8; 4] = b.try_into().map_err(|_| DecodeError::BadLength {
        what: "IPv4 identity",
        len: b.len(),
    })?;
    Ok(Ipv4Addr::from(a))
}

fn v6(b: &[u8]) -> Result<Ipv6Addr, DecodeError> {
    let a: [u8; 16] = b.try_into().map_err(|_| DecodeError::BadLength {
        what: "IPv6 identity",
        len: b.len(),
    })?;
    Ok(Ipv6Addr::from(a))
}

/// Interpret identification data of `id_type` (shared with IKEv2, whose
/// address/name types use the same numbers and forms).
pub fn parse_identity(id_type: IdType, d: &[u8]) -> Result<Identity, DecodeError> {
    let pair = |n: usize| -> Result<(&[u8], &[u8]), DecodeError> {
        if d.len() != 2 * n {
            return Err(DecodeError::BadLength {
                what: "identity address pair",
                len: d.len(),
            });
        }
        Ok(d.split_at(n))
    };
    Ok(match id_type {
        IdType::IPV4_ADDR => Identity::Ipv4(v4(d)?),
        IdType::IPV6_ADDR => Identity::Ipv6(v6(d)?),
        IdType::IPV4_ADDR_SUBNET => {
            let (a, b) = pair(4)?;
            Identity::Ipv4Subnet(v4(a)?, v4(b)?)
        }
        IdType::IPV6_ADDR_SUBNET => {
            let (a, b) = pair(16)?;
            Identity::Ipv6Subnet(v6(a)?, v6(b)?)
        }
        IdType::IPV4_ADDR_RANGE => {
            let (a, b) = pair(4)?;
            Identity::Ipv4Range(v4(a)?, v4(b)?)
        }
        IdType::IPV6_ADDR_RANGE => {
            let (a, b) = pair(16)?;
            Identity::Ipv6Range(v6(a)?, v6(b)?)
        }
        IdType::FQDN => Identity::Fqdn(d.to_vec()),
        IdType::USER_FQDN => Identity::UserFqdn(d.to_vec()),
        IdType::DER_ASN1_DN => Identity::DerAsn1Dn(d.to_vec()),
        IdType::DER_ASN1_GN => Identity::DerAsn1Gn(d.to_vec()),
        IdType::KEY_ID => Identity::KeyId(d.to_vec()),
        other => Identity::Other(other, d.to_vec()),
    })
}

impl IdPayload {
    /// Interpret the identification data.
    pub fn identity(&self) -> Result<Identity, DecodeError> {
        parse_identity(self.id_type, &self.data)
    }
}

impl Codec for IdPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.id_type.0);
        out.push(self.protocol);
        put_u16(out, self.port);
        out.extend_from_slice(&self.data);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id_type = IdType(r.u8("id type")?);
        let protocol = r.u8("id protocol")?;
        let port = r.u16("id port")?;
        let p = IdPayload {
            id_type,
            protocol,
            port,
            data: r.rest().to_vec(),
        };
        // Address forms must have exactly their size.
        p.identity()?;
        Ok(p)
    }
}
