//! SA, Proposal and Transform payloads with their data attributes
//! (RFC 2408 §3.4–3.6, attributes §3.3 in both TV and TLV form).

use super::enums::{Doi, PayloadType, ProtocolId};
use crate::msgs::codec::{
    patch_u16_len, placeholder_u16, put_u16, put_u32, Codec, DecodeError, MAX_ATTRIBUTES,
    MAX_PROPOSALS,
};
use crate::msgs::reader::Reader;

/// Situation: identity only (RFC 2407 §4.2).
pub const SIT_IDENTITY_ONLY: u32 = 1;

/// A data attribute value: TV (basic, 16 bits) or TLV (variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// AF=1: the value sits in the length field.
    Basic(u16),
    /// AF=0: length-prefixed value.
    Variable(Vec<u8>),
}

/// One data attribute. `ty` is the 15-bit type, without the AF bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute type (15 bits).
    pub ty: u16,
    /// The value.
    pub value: AttrValue,
}

impl Attribute {
    /// A TV (basic) attribute.
    pub fn basic(ty: u16, v: u16) -> Self {
        Attribute {
            ty: ty & 0x7fff,
            value: AttrValue::Basic(v),
        }
    }

    /// A TLV (variable) attribute.
    pub fn variable(ty: u16, v: Vec<u8>) -> Self {
        Attribute {
            ty: ty & 0x7fff,
            value: AttrValue::Variable(v),
        }
    }

    /// The value as an integer: a basic value, or a variable value of at
    /// most 8 bytes read big-endian (e.g. a 4-byte life duration).
    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            AttrValue::Basic(v) => Some(u64::from(*v)),
            AttrValue::Variable(b) if b.len() <= 8 => {
                Some(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
            }
            AttrValue::Variable(_) => None,
        }
    }
}

impl Codec for Attribute {
    fn encode(&self, out: &mut Vec<u8>) {
        match &self.value {
            AttrValue::Basic(v) => {
                put_u16(out, 0x8000 | (self.ty & 0x7fff));
                put_u16(out, *v);
            }
            AttrValue::Variable(b) => {
                put_u16(out, self.ty & 0x7fff);
                let n = b.len().min(usize::from(u16::MAX));
                put_u16(out, u16::try_from(n).unwrap_or(u16::MAX));
                out.extend_from_slice(b.get(..n).unwrap_or(b));
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = r.u16("attribute type")?;
        let lv = r.u16("attribute length/value")?;
        if t & 0x8000 != 0 {
            Ok(Attribute {
                ty: t & 0x7fff,
                value: AttrValue::Basic(lv),
            })
        } else {
            let v = r.take(usize::from(lv), "attribute value")?;
            Ok(Attribute {
                ty: t,
                value: AttrValue::Variable(v.to_vec()),
            })
        }
    }
}

/// Read attributes until the reader is empty (bounded).
pub fn read_attributes(r: &mut Reader<'_>) -> Result<Vec<Attribute>, DecodeError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        if out.len() >= MAX_ATTRIBUTES {
            return Err(DecodeError::TooMany {
                what: "attributes",
                limit: MAX_ATTRIBUTES,
            });
        }
        out.push(Attribute::read(r)?);
    }
    Ok(out)
}

/// A transform (RFC 2408 §3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// Transform number.
    pub number: u8,
    /// Transform ID (KEY_IKE for phase 1, ESP_* / AH_* for phase 2).
    pub id: u8,
    /// SA attributes.
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// The first attribute of type `ty`.
    pub fn attr(&self, ty: u16) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.ty == ty)
    }

    fn encode_with_next(&self, out: &mut Vec<u8>, last: bool) {
        let start = out.len();
        out.push(if last { 0 } else { PayloadType::TRANSFORM.0 });
        out.push(0);
        let at = placeholder_u16(out);
        out.push(self.number);
        out.push(self.id);
        put_u16(out, 0);
        for a in &self.attributes {
            a.encode(out);
        }
        patch_u16_len(out, at, start);
    }

    fn read_with_next(r: &mut Reader<'_>) -> Result<(Self, u8), DecodeError> {
        let next = r.u8("transform next payload")?;
        let _reserved = r.u8("transform reserved")?;
        let len = usize::from(r.u16("transform length")?);
        if len < 8 {
            return Err(DecodeError::BadLength {
                what: "transform",
                len,
            });
        }
        let mut body = r.sub(len - 4, "transform")?;
        let number = body.u8("transform number")?;
        let id = body.u8("transform id")?;
        let _reserved2 = body.u16("transform reserved2")?;
        let attributes = read_attributes(&mut body)?;
        Ok((
            Transform {
                number,
                id,
                attributes,
            },
            next,
        ))
    }
}

/// A proposal (RFC 2408 §3.5). Several proposals with the same number
/// form one AND-ed proposal (e.g. AH + ESP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal number.
    pub number: u8,
    /// Protocol.
    pub protocol: ProtocolId,
    /// SPI (empty for phase 1 usually).
    pub spi: Vec<u8>,
    /// Transforms, in order of preference.
    pub transforms: Vec<Transform>,
}

impl Proposal {
    fn encode_with_next(&self, out: &mut Vec<u8>, last: bool) {
        let start = out.len();
        out.push(if last { 0 } else { PayloadType::PROPOSAL.0 });
        out.push(0);
        let at = placeholder_u16(out);
        out.push(self.number);
        out.push(self.protocol.0);
        out.push(u8::try_from(self.spi.len()).unwrap_or(u8::MAX));
        out.push(u8::try_from(self.transforms.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.spi.get(..usize::from(u8::MAX)).unwrap_or(&self.spi));
        let n = self.transforms.len();
        for (i, t) in self
            .transforms
            .iter()
            .take(usize::from(u8::MAX))
            .enumerate()
        {
            t.encode_with_next(out, i + 1 == n.min(usize::from(u8::MAX)));
        }
        patch_u16_len(out, at, start);
    }

    fn read_with_next(r: &mut Reader<'_>) -> Result<(Self, u8), DecodeError> {
        let next = r.u8("proposal next payload")?;
        let _reserved = r.u8("proposal reserved")?;
        let len = usize::from(r.u16("proposal length")?);
        if len < 8 {
            return Err(DecodeError::BadLength {
                what: "proposal",
                len,
            });
        }
        let mut body = r.sub(len - 4, "proposal")?;
        let number = body.u8("proposal number")?;
        let protocol = ProtocolId(body.u8("protocol id")?);
        let spi_size = usize::from(body.u8("spi size")?);
        let count = usize::from(body.u8("transform count")?);
        let spi = body.take(spi_size, "proposal spi")?.to_vec();
        let mut transforms = Vec::with_capacity(count);
        for i in 0..count {
            let (t, tnext) = Transform::read_with_next(&mut body)?;
            let want = if i + 1 == count {
                0
            } else {
                PayloadType::TRANSFORM.0
            };
            if tnext != want {
                return Err(DecodeError::Invalid {
                    what: "transform next payload",
                    value: u64::from(tnext),
                });
            }
            transforms.push(t);
        }
        body.expect_empty("proposal transforms")?;
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

/// The SA payload (RFC 2408 §3.4, RFC 2407 §4.6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaPayload {
    /// Domain of interpretation (1 = IPsec).
    pub doi: Doi,
    /// Situation bitmap (only SIT_IDENTITY_ONLY is supported).
    pub situation: u32,
    /// Proposals in order.
    pub proposals: Vec<Proposal>,
}

impl Codec for SaPayload {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.doi.0);
        put_u32(out, self.situation);
        let n = self.proposals.len();
        for (i, p) in self.proposals.iter().enumerate() {
            p.encode_with_next(out, i + 1 == n);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let doi = Doi(r.u32("SA doi")?);
        if doi != Doi::IPSEC && doi != Doi::ISAKMP {
            return Err(DecodeError::Invalid {
                what: "SA DOI",
                value: u64::from(doi.0),
            });
        }
        let situation = r.u32("SA situation")?;
        if situation & !SIT_IDENTITY_ONLY != 0 {
            // Secrecy/integrity labelled domains are not supported.
            return Err(DecodeError::Invalid {
                what: "SA situation",
                value: u64::from(situation),
            });
        }
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
                other => {
                    return Err(DecodeError::Invalid {
                        what: "proposal next payload",
                        value: u64::from(other),
                    })
                }
            }
        }
        r.expect_empty("SA payload")?;
        Ok(SaPayload {
            doi,
            situation,
            proposals,
        })
    }
}
