//! NAT original address payload (RFC 3947 §5.2).

use super::enums::IdType;
use crate::msgs::codec::{Codec, DecodeError};
use crate::msgs::reader::Reader;
use std::net::IpAddr;

/// NAT-OA payload: ID type (IPV4_ADDR or IPV6_ADDR), 3 reserved bytes,
/// then the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatOaPayload {
    /// The original address.
    pub addr: IpAddr,
}

impl Codec for NatOaPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        match self.addr {
            IpAddr::V4(a) => {
                out.extend_from_slice(&[IdType::IPV4_ADDR.0, 0, 0, 0]);
                out.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                out.extend_from_slice(&[IdType::IPV6_ADDR.0, 0, 0, 0]);
                out.extend_from_slice(&a.octets());
            }
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = IdType(r.u8("NAT-OA id type")?);
        let _reserved = r.take(3, "NAT-OA reserved")?;
        let addr = match t {
            IdType::IPV4_ADDR => IpAddr::from(r.array::<4>("NAT-OA IPv4")?),
            IdType::IPV6_ADDR => IpAddr::from(r.array::<16>("NAT-OA IPv6")?),
            other => {
                return Err(DecodeError::Invalid {
                    what: "NAT-OA id type",
                    value: u64::from(other.0),
                })
            }
        };
        Ok(NatOaPayload { addr })
    }
}
