//! IKEv2 codec (RFC 7296), with SKF fragments (RFC 7383) and RFC 7427
//! signature authentication data.
//!
//! [`Message::decode`] yields the header and the cleartext payload chain;
//! an SK/SKF payload, which must be last, carries the ciphertext and the
//! type of its first inner payload. [`sk::SkKeys`] opens and seals it.

pub mod auth;
pub mod cert;
pub mod cp;
pub mod delete;
pub mod eap;
pub mod enums;
pub mod header;
pub mod id;
pub mod ke;
pub mod nonce;
pub mod notify;
pub mod sa;
pub mod sk;
pub mod ts;
pub mod vendor;

pub use auth::AuthPayload;
pub use cert::CertPayload;
pub use cp::{CfgAttribute, CpPayload};
pub use delete::DeletePayload;
pub use eap::EapPayload;
pub use enums::*;
pub use header::{Header, HEADER_LEN};
pub use id::IdPayload;
pub use ke::KePayload;
pub use nonce::NoncePayload;
pub use notify::NotifyPayload;
pub use sa::{Proposal, SaPayload, Transform};
pub use sk::{SkPayload, SkfPayload};
pub use ts::{TrafficSelector, TsPayload};
pub use vendor::VendorPayload;

use super::codec::{
    patch_u16_len, patch_u32_len, placeholder_u16, put_u32, read_chain_step, Codec, DecodeError,
};
use super::reader::Reader;

/// Critical bit in the generic payload header.
pub const CRITICAL: u8 = 0x80;

/// A payload body by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadBody {
    /// SA.
    Sa(SaPayload),
    /// KE.
    Ke(KePayload),
    /// IDi.
    IdI(IdPayload),
    /// IDr.
    IdR(IdPayload),
    /// CERT.
    Cert(CertPayload),
    /// CERTREQ.
    CertReq(CertPayload),
    /// AUTH.
    Auth(AuthPayload),
    /// Ni / Nr.
    Nonce(NoncePayload),
    /// N.
    Notify(NotifyPayload),
    /// D.
    Delete(DeletePayload),
    /// V.
    Vendor(VendorPayload),
    /// TSi.
    TsI(TsPayload),
    /// TSr.
    TsR(TsPayload),
    /// SK (must be last).
    Sk(SkPayload),
    /// SKF (must be last).
    Skf(SkfPayload),
    /// CP.
    Cp(CpPayload),
    /// EAP.
    Eap(EapPayload),
    /// Unknown type, kept raw. If the payload's critical bit is set the
    /// state machine must answer UNSUPPORTED_CRITICAL_PAYLOAD.
    Unknown {
        /// Payload type.
        ptype: PayloadType,
        /// Body after the generic header.
        data: Vec<u8>,
    },
}

/// A payload: the critical bit plus the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Critical bit as received / to send.
    pub critical: bool,
    /// Body.
    pub body: PayloadBody,
}

impl Payload {
    /// A payload with the critical bit clear.
    pub fn new(body: PayloadBody) -> Self {
        Payload {
            critical: false,
            body,
        }
    }

    /// Unknown payload with the critical bit set: the state machine must
    /// reject the message with UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 §2.5).
    pub fn unsupported_critical(&self) -> Option<PayloadType> {
        match &self.body {
            PayloadBody::Unknown { ptype, .. } if self.critical => Some(*ptype),
            _ => None,
        }
    }

    /// Payload type.
    pub fn payload_type(&self) -> PayloadType {
        match &self.body {
            PayloadBody::Sa(_) => PayloadType::SA,
            PayloadBody::Ke(_) => PayloadType::KE,
            PayloadBody::IdI(_) => PayloadType::IDI,
            PayloadBody::IdR(_) => PayloadType::IDR,
            PayloadBody::Cert(_) => PayloadType::CERT,
            PayloadBody::CertReq(_) => PayloadType::CERTREQ,
            PayloadBody::Auth(_) => PayloadType::AUTH,
            PayloadBody::Nonce(_) => PayloadType::NONCE,
            PayloadBody::Notify(_) => PayloadType::NOTIFY,
            PayloadBody::Delete(_) => PayloadType::DELETE,
            PayloadBody::Vendor(_) => PayloadType::VENDOR,
            PayloadBody::TsI(_) => PayloadType::TSI,
            PayloadBody::TsR(_) => PayloadType::TSR,
            PayloadBody::Sk(_) => PayloadType::SK,
            PayloadBody::Skf(_) => PayloadType::SKF,
            PayloadBody::Cp(_) => PayloadType::CP,
            PayloadBody::Eap(_) => PayloadType::EAP,
            PayloadBody::Unknown { ptype, .. } => *ptype,
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match &self.body {
            PayloadBody::Sa(p) => p.encode(out),
            PayloadBody::Ke(p) => p.encode(out),
            PayloadBody::IdI(p) | PayloadBody::IdR(p) => p.encode(out),
            PayloadBody::Cert(p) | PayloadBody::CertReq(p) => p.encode(out),
            PayloadBody::Auth(p) => p.encode(out),
            PayloadBody::Nonce(p) => p.encode(out),
            PayloadBody::Notify(p) => p.encode(out),
            PayloadBody::Delete(p) => p.encode(out),
            PayloadBody::Vendor(p) => p.encode(out),
            PayloadBody::TsI(p) | PayloadBody::TsR(p) => p.encode(out),
            PayloadBody::Sk(p) => out.extend_from_slice(&p.data),
            PayloadBody::Skf(p) => p.encode(out),
            PayloadBody::Cp(p) => p.encode(out),
            PayloadBody::Eap(p) => p.encode(out),
            PayloadBody::Unknown { data, .. } => out.extend_from_slice(data),
        }
    }

    /// Decode a body of type `ptype`. `next` is the generic header's next
    /// payload field (for SK/SKF: the first inner payload type).
    fn decode_body(
        ptype: PayloadType,
        next: PayloadType,
        body: &[u8],
    ) -> Result<PayloadBody, DecodeError> {
        Ok(match ptype {
            PayloadType::SA => PayloadBody::Sa(SaPayload::read_bytes(body)?),
            PayloadType::KE => PayloadBody::Ke(KePayload::read_bytes(body)?),
            PayloadType::IDI => PayloadBody::IdI(IdPayload::read_bytes(body)?),
            PayloadType::IDR => PayloadBody::IdR(IdPayload::read_bytes(body)?),
            PayloadType::CERT => PayloadBody::Cert(CertPayload::read_bytes(body)?),
            PayloadType::CERTREQ => PayloadBody::CertReq(CertPayload::read_bytes(body)?),
            PayloadType::AUTH => PayloadBody::Auth(AuthPayload::read_bytes(body)?),
            PayloadType::NONCE => PayloadBody::Nonce(NoncePayload::read_bytes(body)?),
            PayloadType::NOTIFY => PayloadBody::Notify(NotifyPayload::read_bytes(body)?),
            PayloadType::DELETE => PayloadBody::Delete(DeletePayload::read_bytes(body)?),
            PayloadType::VENDOR => PayloadBody::Vendor(VendorPayload::read_bytes(body)?),
            PayloadType::TSI => PayloadBody::TsI(TsPayload::read_bytes(body)?),
            PayloadType::TSR => PayloadBody::TsR(TsPayload::read_bytes(body)?),
            PayloadType::SK => PayloadBody::Sk(SkPayload {
                first_inner: next,
                data: body.to_vec(),
            }),
            PayloadType::SKF => PayloadBody::Skf(SkfPayload::read_with_next(next, body)?),
            PayloadType::CP => PayloadBody::Cp(CpPayload::read_bytes(body)?),
            PayloadType::EAP => PayloadBody::Eap(EapPayload::read_bytes(body)?),
            PayloadType::NONE => return Err(DecodeError::Chain("payload of type NONE")),
            other => PayloadBody::Unknown {
                ptype: other,
                data: body.to_vec(),
            },
        })
    }
}

/// Decode a payload chain starting with `first` that fills `bytes`
/// exactly. An SK/SKF payload ends the chain and must be the last bytes;
/// `allow_sk` is false for decrypted inner chains (SK inside SK is an
/// error). Lengths are checked against what remains, the count is bounded
/// by [`read_chain_step`], and every step consumes at least 4 bytes.
pub fn decode_payload_chain(
    first: PayloadType,
    bytes: &[u8],
    allow_sk: bool,
) -> Result<Vec<Payload>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut next = first;
    let mut out = Vec::new();
    while next != PayloadType::NONE {
        let step = read_chain_step(&mut r, out.len())?;
        let (np, flags, body) = (PayloadType(step.next), step.flags, step.body);
        let is_sk = next == PayloadType::SK || next == PayloadType::SKF;
        if is_sk && !allow_sk {
            return Err(DecodeError::Chain(
                "encrypted payload inside encrypted payload",
            ));
        }
        let body = Payload::decode_body(next, np, body)?;
        out.push(Payload {
            critical: flags & CRITICAL != 0,
            body,
        });
        if is_sk {
            if !r.is_empty() {
                return Err(DecodeError::Chain("SK/SKF payload is not last"));
            }
            return Ok(out);
        }
        next = np;
    }
    r.expect_empty("payload chain")?;
    Ok(out)
}

/// Encode a payload chain; returns the first payload type.
pub fn encode_payload_chain(payloads: &[Payload], out: &mut Vec<u8>) -> PayloadType {
    let mut iter = payloads.iter().peekable();
    while let Some(p) = iter.next() {
        let start = out.len();
        let next = match &p.body {
            PayloadBody::Sk(sk) => sk.first_inner,
            PayloadBody::Skf(skf) => skf.first_inner,
            _ => iter.peek().map_or(PayloadType::NONE, |n| n.payload_type()),
        };
        out.push(next.0);
        out.push(if p.critical { CRITICAL } else { 0 });
        let at = placeholder_u16(out);
        p.encode_body(out);
        patch_u16_len(out, at, start);
    }
    payloads
        .first()
        .map_or(PayloadType::NONE, |p| p.payload_type())
}

/// An IKEv2 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Header (next payload and length are derived).
    pub header: Header,
    /// Cleartext payloads; an SK/SKF payload, if any, is last.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Decode one IKEv2 message; its length field must equal `bytes.len()`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let spi_i = r.array::<8>("initiator SPI")?;
        let spi_r = r.array::<8>("responder SPI")?;
        let np = PayloadType(r.u8("next payload")?);
        let version = r.u8("version")?;
        if version >> 4 != 2 {
            return Err(DecodeError::UnsupportedVersion(version >> 4));
        }
        let exchange = ExchangeType(r.u8("exchange type")?);
        let flags = r.u8("flags")?;
        let message_id = r.u32("message id")?;
        let length = usize::try_from(r.u32("length")?).unwrap_or(usize::MAX);
        if length < HEADER_LEN {
            return Err(DecodeError::BadLength {
                what: "IKE header length",
                len: length,
            });
        }
        let body = r.take(length - HEADER_LEN, "IKE message")?;
        r.expect_empty("IKE message")?;
        let payloads = decode_payload_chain(np, body, true)?;
        Ok(Message {
            header: Header {
                spi_i,
                spi_r,
                version,
                exchange,
                flags,
                message_id,
            },
            payloads,
        })
    }

    /// Encode to wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let h = &self.header;
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&h.spi_i);
        out.extend_from_slice(&h.spi_r);
        out.push(0);
        out.push(h.version);
        out.push(h.exchange.0);
        out.push(h.flags);
        put_u32(&mut out, h.message_id);
        put_u32(&mut out, 0);
        let np = encode_payload_chain(&self.payloads, &mut out);
        if let Some(b) = out.get_mut(16) {
            *b = np.0;
        }
        patch_u32_len(&mut out, 24, 0);
        out
    }

    /// The SK or SKF payload, if the message has one.
    pub fn encrypted(&self) -> Option<&Payload> {
        self.payloads
            .last()
            .filter(|p| matches!(p.body, PayloadBody::Sk(_) | PayloadBody::Skf(_)))
    }

    /// First unknown payload with the critical bit set.
    pub fn unsupported_critical(&self) -> Option<PayloadType> {
        self.payloads.iter().find_map(Payload::unsupported_critical)
    }
}
