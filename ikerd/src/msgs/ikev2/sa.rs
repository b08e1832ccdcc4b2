//! SA payload: proposals, transforms, transform attributes (RFC 7296 §3.3).

use super::enums::{ProtocolId, TransformAttr, TransformType};
use crate::msgs::codec::{
    patch_u16_len, placeholder_u16, put_u16, Codec, DecodeError, MAX_PROPOSALS,
};
use crate::msgs::isakmp::sa::{read_attributes, Attribute};
use crate::msgs::reader::Reader;

/// A transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// Transform type.
    pub ty: TransformType,
    /// Transform ID (interpret per type: EncrId, PrfId, IntegId, DhGroup).
    pub id: u16,
    /// Attributes (TV/TLV; only KEY_LENGTH is defined).
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// Value of the KEY_LENGTH attribute, if any.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes
            .iter()
            .find(|a| a.ty == TransformAttr::KEY_LENGTH.0)
            .and_then(|a| a.as_u64().and_then(|v| u16::try_from(v).ok()))
    }

    fn encode_with_next(&self, out: &mut Vec<u8>, last: bool) {
        let start = out.len();
        out.push(if last { 0 } else { 3 });
        out.push(0);
        let at = placeholder_u16(out);
        out.push(self.ty.0);
        out.push(0);
        put_u16(out, self.id);
        for a in &self.attributes {
            a.encode(out);
        }
        patch_u16_len(out, at, start);
    }

    fn read_with_next(r: &mut Reader<'_>) -> Result<(Self, u8), DecodeError> {
        let next = r.u8("transform last/more")?;
        let _reserved = r.u8("transform reserved")?;
        let len = usize::from(r.u16("transform length")?);
        if len < 8 {
            return Err(DecodeError::BadLength {
                what: "v2 transform",
                len,
            });
        }
        let mut b = r.sub(len - 4, "v2 transform")?;
        let ty = TransformType(b.u8("transform type")?);
        let _reserved2 = b.u8("transform reserved2")?;
        let id = b.u16("transform id")?;
        let attributes = read_attributes(&mut b)?;
        Ok((Transform { ty, id, attributes }, next))
    }
}

/// A proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal number (1, 2, …).
    pub number: u8,
    /// Protocol.
    pub protocol: ProtocolId,
    /// SPI (empty for the initial IKE SA, 8 bytes for IKE rekey, 4 for ESP/AH).
    pub spi: Vec<u8>,
    /// Transforms.
    pub transforms: Vec<Transform>,
}

impl Proposal {
    /// The transforms of one type.
    pub fn of_type(&self, ty: TransformType) -> impl Iterator<Item = &Transform> {
        self.transforms.iter().filter(move |t| t.ty == ty)
    }

    fn encode_with_next(&self, out: &mut Vec<u8>, last: bool) {
        let start = out.len();
        out.push(if last { 0 } else { 2 });
        out.push(0);
        let at = placeholder_u16(out);
        out.push(self.number);
        out.push(self.protocol.0);
        out.push(u8::try_from(self.spi.len()).unwrap_or(u8::MAX));
        let n = self.transforms.len().min(usize::from(u8::MAX));
        out.push(u8::try_from(n).unwrap_or(u8::MAX));
        out.extend_from_slice(self.spi.get(..usize::from(u8::MAX)).unwrap_or(&self.spi));
        for (i, t) in self.transforms.iter().take(n).enumerate() {
            t.encode_with_next(out, i + 1 == n);
        }
        patch_u16_len(out, at, start);
    }

    fn read_with_next(r: &mut Reader<'_>) -> Result<(Self, u8), DecodeError> {
        let next = r.u8("proposal last/more")?;
        let _reserved = r.u8("proposal reserved")?;
        let len = usize::from(r.u16("proposal length")?);
        if len < 8 {
            return Err(DecodeError::BadLength {
                what: "v2 proposal",
                len,
            });
        }
        let mut b = r.sub(len - 4, "v2 proposal")?;
        let number = b.u8("proposal number")?;
        let protocol = ProtocolId(b.u8("protocol id")?);
        let spi_size = usize::from(b.u8("spi size")?);
        let count = usize::from(b.u8("transform count")?);
        let spi = b.take(spi_size, "proposal spi")?.to_vec();
        let mut transforms = Vec::with_capacity(count);
        for i in 0..count {
            let (t, tnext) = Transform::read_with_next(&mut b)?;
            let want = if i + 1 == count { 0 } else { 3 };
            if tnext != want {
                return Err(DecodeError::Invalid {
                    what: "transform last/more",
                    value: u64::from(tnext),
                });
            }
            transforms.push(t);
        }
        b.expect_empty("v2 proposal transforms")?;
        Ok((
            Proposal {
                number,
                protocol,
                spi,
                transforms,
            },
            next,
        ))
    }
}

/// SA payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaPayload {
    /// Proposals in order.
    pub proposals: Vec<Proposal>,
}

impl Codec for SaPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = self.proposals.len();
        for (i, p) in self.proposals.iter().enumerate() {
            p.encode_with_next(out, i + 1 == n);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut proposals = Vec::new();
        loop {
            if proposals.len() >= MAX_PROPOSALS {
                return Err(DecodeError::TooMany {
                    what: "proposals",
                    limit: MAX_PROPOSALS,
                });
            }
            let (p, next) = Proposal::read_with_next(r)?;
            proposals.push(p);
            match next {
                0 => break,
                2 => {}
                v => {
                    return Err(DecodeError::Invalid {
                        what: "proposal last/more",
                        value: u64::from(v),
                    })
                }
            }
        }
        r.expect_empty("v2 SA payload")?;
        Ok(SaPayload { proposals })
    }
}
