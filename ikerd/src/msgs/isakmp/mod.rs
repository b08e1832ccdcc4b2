//! ISAKMP / IKEv1 codec (RFC 2408, RFC 2409, NAT-T RFC 3947, DPD RFC 3706).
//!
//! [`Message::decode`] turns one datagram into a [`Header`] and a [`Body`]:
//! either a typed payload chain or, when the E flag is set, the ciphertext
//! (decrypt it, then call [`decode_payload_chain`] on the plaintext).

pub mod cert;
pub mod cfg;
pub mod delete;
pub mod enums;
pub mod hash;
pub mod header;
pub mod id;
pub mod ke;
pub mod natd;
pub mod natoa;
pub mod nonce;
pub mod notify;
pub mod sa;
pub mod sig;
pub mod vendor;

pub use cert::CertPayload;
pub use cfg::AttrPayload;
pub use delete::DeletePayload;
pub use enums::*;
pub use hash::HashPayload;
pub use header::{Header, HEADER_LEN};
pub use id::{IdPayload, Identity};
pub use ke::KePayload;
pub use natd::NatDPayload;
pub use natoa::NatOaPayload;
pub use nonce::NoncePayload;
pub use notify::NotifyPayload;
pub use sa::{AttrValue, Attribute, Proposal, SaPayload, Transform};
pub use sig::SigPayload;
pub use vendor::VendorPayload;

use super::codec::{
    patch_u16_len, patch_u32_len, placeholder_u16, put_u32, read_chain_step, Codec, DecodeError,
};
use super::reader::Reader;

/// One ISAKMP payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Security association.
    Sa(SaPayload),
    /// Key exchange.
    Ke(KePayload),
    /// Identification.
    Id(IdPayload),
    /// Certificate.
    Cert(CertPayload),
    /// Certificate request.
    CertReq(CertPayload),
    /// Hash.
    Hash(HashPayload),
    /// Signature.
    Sig(SigPayload),
    /// Nonce.
    Nonce(NoncePayload),
    /// Notification.
    Notify(NotifyPayload),
    /// Delete.
    Delete(DeletePayload),
    /// Vendor ID.
    Vendor(VendorPayload),
    /// Mode-config attributes.
    Attr(AttrPayload),
    /// NAT-D; `draft` = the pre-RFC payload number 130.
    NatD {
        /// Sent with the draft number 130 instead of 20.
        draft: bool,
        /// The hash.
        payload: NatDPayload,
    },
    /// NAT-OA; `draft` = the pre-RFC payload number 131.
    NatOa {
        /// Sent with the draft number 131 instead of 21.
        draft: bool,
        /// The address.
        payload: NatOaPayload,
    },
    /// Anything else, kept raw for the state machine to judge.
    Unknown {
        /// Payload type.
        ptype: PayloadType,
        /// Body after the generic header.
        data: Vec<u8>,
    },
}

impl Payload {
    /// The payload type number this payload is sent with.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::SA,
            Payload::Ke(_) => PayloadType::KE,
            Payload::Id(_) => PayloadType::ID,
            Payload::Cert(_) => PayloadType::CERT,
            Payload::CertReq(_) => PayloadType::CR,
            Payload::Hash(_) => PayloadType::HASH,
            Payload::Sig(_) => PayloadType::SIG,
            Payload::Nonce(_) => PayloadType::NONCE,
            Payload::Notify(_) => PayloadType::N,
            Payload::Delete(_) => PayloadType::D,
            Payload::Vendor(_) => PayloadType::VID,
            Payload::Attr(_) => PayloadType::ATTR,
            Payload::NatD { draft: false, .. } => PayloadType::NAT_D,
            Payload::NatD { draft: true, .. } => PayloadType::NAT_D_DRAFT,
            Payload::NatOa { draft: false, .. } => PayloadType::NAT_OA,
            Payload::NatOa { draft: true, .. } => PayloadType::NAT_OA_DRAFT,
            Payload::Unknown { ptype, .. } => *ptype,
        }
    }

    /// Encode the body (without the generic header).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sa(p) => p.encode(out),
            Payload::Ke(p) => p.encode(out),
            Payload::Id(p) => p.encode(out),
            Payload::Cert(p) | Payload::CertReq(p) => p.encode(out),
            Payload::Hash(p) => p.encode(out),
            Payload::Sig(p) => p.encode(out),
            Payload::Nonce(p) => p.encode(out),
            Payload::Notify(p) => p.encode(out),
            Payload::Delete(p) => p.encode(out),
            Payload::Vendor(p) => p.encode(out),
            Payload::Attr(p) => p.encode(out),
            Payload::NatD { payload, .. } => payload.encode(out),
            Payload::NatOa { payload, .. } => payload.encode(out),
            Payload::Unknown { data, .. } => out.extend_from_slice(data),
        }
    }

    /// Decode the body of a payload of type `ptype`; `body` holds exactly
    /// the bytes after the generic header.
    pub fn decode_body(ptype: PayloadType, body: &[u8]) -> Result<Self, DecodeError> {
        Ok(match ptype {
            PayloadType::SA => Payload::Sa(SaPayload::read_bytes(body)?),
            PayloadType::KE => Payload::Ke(KePayload::read_bytes(body)?),
            PayloadType::ID => Payload::Id(IdPayload::read_bytes(body)?),
            PayloadType::CERT => Payload::Cert(CertPayload::read_bytes(body)?),
            PayloadType::CR => Payload::CertReq(CertPayload::read_bytes(body)?),
            PayloadType::HASH => Payload::Hash(HashPayload::read_bytes(body)?),
            PayloadType::SIG => Payload::Sig(SigPayload::read_bytes(body)?),
            PayloadType::NONCE => Payload::Nonce(NoncePayload::read_bytes(body)?),
            PayloadType::N => Payload::Notify(NotifyPayload::read_bytes(body)?),
            PayloadType::D => Payload::Delete(DeletePayload::read_bytes(body)?),
            PayloadType::VID => Payload::Vendor(VendorPayload::read_bytes(body)?),
            PayloadType::ATTR => Payload::Attr(AttrPayload::read_bytes(body)?),
            PayloadType::NAT_D | PayloadType::NAT_D_DRAFT => Payload::NatD {
                draft: ptype == PayloadType::NAT_D_DRAFT,
                payload: NatDPayload::read_bytes(body)?,
            },
            PayloadType::NAT_OA | PayloadType::NAT_OA_DRAFT => Payload::NatOa {
                draft: ptype == PayloadType::NAT_OA_DRAFT,
                payload: NatOaPayload::read_bytes(body)?,
            },
            PayloadType::NONE => return Err(DecodeError::Chain("payload of type NONE")),
            other => Payload::Unknown {
                ptype: other,
                data: body.to_vec(),
            },
        })
    }
}

/// What follows the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Cleartext payload chain.
    Plain(Vec<Payload>),
    /// E flag set: the header's next-payload type and the ciphertext
    /// (IV handling and padding are the decryptor's business).
    Encrypted {
        /// Type of the first (encrypted) payload.
        first_payload: PayloadType,
        /// Everything after the header.
        ciphertext: Vec<u8>,
    },
}

/// An ISAKMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Fixed header (less next-payload and length, derived on encode).
    pub header: Header,
    /// Payloads or ciphertext.
    pub body: Body,
}

/// Decode a payload chain starting with `first`.
///
/// `allow_padding`: a decrypted IKEv1 body carries cipher padding after the
/// last payload; when true, bytes after the chain's end are ignored, when
/// false they are an error. Every payload length is checked against what
/// remains; the chain is bounded by [`read_chain_step`] and always advances,
/// so it cannot loop.
pub fn decode_payload_chain(
    first: PayloadType,
    bytes: &[u8],
    allow_padding: bool,
) -> Result<Vec<Payload>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut next = first;
    let mut out = Vec::new();
    while next != PayloadType::NONE {
        let step = read_chain_step(&mut r, out.len())?;
        let (np, body) = (PayloadType(step.next), step.body);
        out.push(Payload::decode_body(next, body)?);
        next = np;
    }
    if !allow_padding {
        r.expect_empty("payload chain")?;
    }
    Ok(out)
}

/// Encode a payload chain; returns the first payload type (NONE if empty).
pub fn encode_payload_chain(payloads: &[Payload], out: &mut Vec<u8>) -> PayloadType {
    let mut iter = payloads.iter().peekable();
    while let Some(p) = iter.next() {
        let start = out.len();
        out.push(
            iter.peek()
                .map_or(PayloadType::NONE, |n| n.payload_type())
                .0,
        );
        out.push(0);
        let at = placeholder_u16(out);
        p.encode_body(out);
        patch_u16_len(out, at, start);
    }
    payloads
        .first()
        .map_or(PayloadType::NONE, |p| p.payload_type())
}

impl Message {
    /// Decode one ISAKMP datagram. The header length must equal the
    /// datagram length.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let icookie = r.array::<8>("initiator cookie")?;
        let rcookie = r.array::<8>("responder cookie")?;
        let np = PayloadType(r.u8("next payload")?);
        let version = r.u8("version")?;
        if version >> 4 != 1 {
            return Err(DecodeError::UnsupportedVersion(version >> 4));
        }
        let exchange = ExchangeType(r.u8("exchange type")?);
        let flags = r.u8("flags")?;
        let message_id = r.u32("message id")?;
        let length = usize::try_from(r.u32("length")?).unwrap_or(usize::MAX);
        if length < HEADER_LEN {
            return Err(DecodeError::BadLength {
                what: "ISAKMP header length",
                len: length,
            });
        }
        let body = r.take(length - HEADER_LEN, "ISAKMP message")?;
        r.expect_empty("ISAKMP message")?;
        let header = Header {
            icookie,
            rcookie,
            version,
            exchange,
            flags,
            message_id,
        };
        let body = if header.encrypted() {
            Body::Encrypted {
                first_payload: np,
                ciphertext: body.to_vec(),
            }
        } else {
            Body::Plain(decode_payload_chain(np, body, false)?)
        };
        Ok(Message { header, body })
    }

    /// Encode to wire bytes (next payload and length are computed).
    pub fn encode(&self) -> Vec<u8> {
        let h = &self.header;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&h.icookie);
        out.extend_from_slice(&h.rcookie);
        out.push(0);
        out.push(h.version);
        out.push(h.exchange.0);
        out.push(h.flags);
        put_u32(&mut out, h.message_id);
        put_u32(&mut out, 0);
        let np = match &self.body {
            Body::Plain(p) => encode_payload_chain(p, &mut out),
            Body::Encrypted {
                first_payload,
                ciphertext,
            } => {
                out.extend_from_slice(ciphertext);
                *first_payload
            }
        };
        if let Some(b) = out.get_mut(16) {
            *b = np.0;
        }
        patch_u32_len(&mut out, 24, 0);
        out
    }

    /// Parse the decrypted body of an encrypted message (E flag): the
    /// payload chain starts with the header's next-payload type and cipher
    /// padding after the last payload is ignored. Decryption itself (IV
    /// chaining, SKEYID_e) belongs to the caller.
    pub fn decode_decrypted(&self, plaintext: &[u8]) -> Result<Vec<Payload>, DecodeError> {
        match &self.body {
            Body::Encrypted { first_payload, .. } => {
                decode_payload_chain(*first_payload, plaintext, true)
            }
            Body::Plain(_) => Err(DecodeError::Chain("message is not encrypted")),
        }
    }

    /// The cleartext payloads (empty when encrypted).
    pub fn payloads(&self) -> &[Payload] {
        match &self.body {
            Body::Plain(p) => p,
            Body::Encrypted { .. } => &[],
        }
    }
}
