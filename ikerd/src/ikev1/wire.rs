//! Raw views of ISAKMP messages for the state machine: every payload with its exact bytes (the
//! hashes of RFC 2409 cover payload bodies and chains as they were sent, so nothing is re-encoded
//! for verification), and the builders for the messages the engine sends.

use crate::msgs::codec::{read_chain_step, DecodeError};
use crate::msgs::isakmp::{
    encode_payload_chain, Body, ExchangeType, Header, Message, Payload, PayloadType, HEADER_LEN,
};
use crate::msgs::reader::Reader;

/// The largest datagram the engine looks at (an IKEv1 message fits in one UDP datagram).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// One payload: its type, its bytes as sent (generic header included) and its decoding.
#[derive(Debug, Clone)]
pub struct RawPayload {
    pub ptype: PayloadType,
    pub raw: Vec<u8>,
    pub payload: Payload,
}

impl RawPayload {
    /// The body, without the 4-byte generic header.
    pub fn body(&self) -> &[u8] {
        self.raw.get(4..).unwrap_or(&[])
    }
}

/// Walk a payload chain starting with `first`, keeping each payload's bytes. With
/// `allow_trailing` (a decrypted body), bytes after the last payload are cipher padding.
pub fn parse_chain(
    first: PayloadType,
    bytes: &[u8],
    allow_trailing: bool,
) -> Result<Vec<RawPayload>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut next = first;
    let mut out = Vec::new();
    while next != PayloadType::NONE {
        let start = r.used();
        let step = read_chain_step(&mut r, out.len())?;
        let end = r.used();
        let payload = Payload::decode_body(next, step.body)?;
        let raw = bytes
            .get(start..end)
            .ok_or(DecodeError::Chain("payload outside the message"))?
            .to_vec();
        out.push(RawPayload {
            ptype: next,
            raw,
            payload,
        });
        next = PayloadType(step.next);
    }
    if !allow_trailing {
        r.expect_empty("payload chain")?;
    }
    Ok(out)
}

/// A datagram whose header decoded: the header, the first payload type and the bytes after the
/// header (payloads, or ciphertext when the E flag is set).
#[derive(Debug, Clone)]
pub struct Datagram {
    pub header: Header,
    pub first: PayloadType,
    pub body: Vec<u8>,
    /// The cleartext payloads (empty when encrypted).
    pub payloads: Vec<RawPayload>,
}

impl Datagram {
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(DecodeError::BadLength {
                what: "IKE datagram",
                len: bytes.len(),
            });
        }
        let m = Message::decode(bytes)?;
        let first = PayloadType(bytes.get(16).copied().unwrap_or(0));
        let body = bytes.get(HEADER_LEN..).unwrap_or(&[]).to_vec();
        let payloads = match &m.body {
            Body::Plain(_) => parse_chain(first, &body, false)?,
            Body::Encrypted { .. } => Vec::new(),
        };
        Ok(Datagram {
            header: m.header,
            first,
            body,
            payloads,
        })
    }

    pub fn encrypted(&self) -> bool {
        self.header.encrypted()
    }
}

/// A header for a message we send.
pub fn header(
    icookie: [u8; 8],
    rcookie: [u8; 8],
    exchange: ExchangeType,
    flags: u8,
    message_id: u32,
) -> Header {
    Header {
        icookie,
        rcookie,
        version: 0x10,
        exchange,
        flags,
        message_id,
    }
}

/// A cleartext message.
pub fn plain_message(h: Header, payloads: Vec<Payload>) -> Vec<u8> {
    Message {
        header: h,
        body: Body::Plain(payloads),
    }
    .encode()
}

/// Encode a payload chain: its first payload type and its bytes.
pub fn encode_chain(payloads: &[Payload]) -> (PayloadType, Vec<u8>) {
    let mut out = Vec::new();
    let first = encode_payload_chain(payloads, &mut out);
    (first, out)
}

/// A HASH payload followed by an already encoded chain (whose first payload is `rest_first`).
pub fn hash_then(hash: &[u8], rest_first: PayloadType, rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + hash.len() + rest.len());
    out.push(rest_first.0);
    out.push(0);
    let len = u16::try_from(4 + hash.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(rest);
    out
}

/// An encrypted message (E flag set by the caller in `h.flags`).
pub fn encrypted_message(h: Header, first: PayloadType, ciphertext: Vec<u8>) -> Vec<u8> {
    Message {
        header: h,
        body: Body::Encrypted {
            first_payload: first,
            ciphertext,
        },
    }
    .encode()
}

/// The bytes of every payload after the first, as sent (the part of a Quick Mode or
/// informational message that its HASH covers).
pub fn after_first(payloads: &[RawPayload]) -> Vec<u8> {
    payloads
        .iter()
        .skip(1)
        .flat_map(|p| p.raw.iter().copied())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::msgs::isakmp::{NoncePayload, VendorPayload};

    #[test]
    fn raw_chain_keeps_bytes_and_allows_padding() {
        let payloads = vec![
            Payload::Nonce(NoncePayload {
                data: vec![1, 2, 3],
            }),
            Payload::Vendor(VendorPayload { data: vec![9; 16] }),
        ];
        let (first, mut bytes) = encode_chain(&payloads);
        assert_eq!(first, PayloadType::NONCE);
        let parsed = parse_chain(first, &bytes, false).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].body(), &[1, 2, 3]);
        assert_eq!(
            [parsed[0].raw.clone(), parsed[1].raw.clone()].concat(),
            bytes
        );
        assert_eq!(after_first(&parsed), parsed[1].raw);
        bytes.extend_from_slice(&[0, 0, 0]);
        assert!(parse_chain(first, &bytes, false).is_err());
        assert_eq!(parse_chain(first, &bytes, true).unwrap().len(), 2);
        let with_hash = hash_then(&[7; 20], first, &bytes);
        let p = parse_chain(PayloadType::HASH, &with_hash, true).unwrap();
        assert_eq!(p[0].body(), &[7; 20]);
    }
}
