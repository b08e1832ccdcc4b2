//! Shared codec trait, limits and the decode error.

use super::reader::Reader;

/// Most payloads accepted in one message (or one decrypted chain).
pub const MAX_PAYLOADS: usize = 128;
/// Most proposals accepted in one SA payload.
pub const MAX_PROPOSALS: usize = 64;
/// Most transforms accepted in one proposal (the count field is a u8).
pub const MAX_TRANSFORMS: usize = 255;
/// Most attributes accepted in one transform / attribute payload.
pub const MAX_ATTRIBUTES: usize = 256;
/// Most SPIs accepted in one delete payload.
pub const MAX_SPIS: usize = 1024;
/// Most traffic selectors in one TS payload (the count field is a u8).
pub const MAX_SELECTORS: usize = 255;

/// Why a message did not decode. Never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A read ran past the end of the enclosing structure.
    #[error("truncated {what}: need {need} bytes, {have} left")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A structure did not consume all of its bytes.
    #[error("{count} trailing bytes after {what}")]
    TrailingBytes {
        /// The structure.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// A length field is impossible (too small, or past what remains).
    #[error("bad length {len} in {what}")]
    BadLength {
        /// The structure.
        what: &'static str,
        /// The length value found.
        len: usize,
    },
    /// A bounded count was exceeded.
    #[error("too many {what} (limit {limit})")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A count field disagrees with what was found.
    #[error("{what} count says {declared}, found {found}")]
    CountMismatch {
        /// What was counted.
        what: &'static str,
        /// The declared count.
        declared: usize,
        /// The actual count.
        found: usize,
    },
    /// Major version other than 1 or 2.
    #[error("unsupported IKE major version {0}")]
    UnsupportedVersion(u8),
    /// A field holds a value the codec cannot accept.
    #[error("invalid {what}: {value}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// The payload chain is inconsistent (ends early, runs on, loops).
    #[error("payload chain: {0}")]
    Chain(&'static str),
    /// Decryption / integrity failure (SK payload helpers).
    #[error("crypto: {0}")]
    Crypto(&'static str),
}

/// A wire structure that can be read from a [`Reader`] and appended to a
/// buffer. `read` must consume exactly the structure's bytes.
pub trait Codec: Sized {
    /// Append the wire form to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Read one value.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encode into a fresh vector.
    fn get_encoding(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decode from a whole slice, rejecting trailing bytes.
    fn read_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.expect_empty(std::any::type_name::<Self>())?;
        Ok(v)
    }
}

/// Append a big-endian u16.
/// One payload's generic header (next payload, flags, length; the same in ISAKMP and IKEv2) and body.
pub struct ChainStep<'a> {
    /// The next payload's type byte.
    pub next: u8,
    /// IKEv2's critical bit lives here; ISAKMP's byte is reserved.
    pub flags: u8,
    /// The payload body after the 4-byte header.
    pub body: &'a [u8],
}

/// Read the next payload of a chain of which `count` payloads were already read. The walk is bounded
/// by [`MAX_PAYLOADS`], refuses a chain that announces a payload past the end of the message, and
/// every step consumes at least the 4 header bytes, so a chain can neither loop nor run over.
pub fn read_chain_step<'a>(r: &mut Reader<'a>, count: usize) -> Result<ChainStep<'a>, DecodeError> {
    if count >= MAX_PAYLOADS {
        return Err(DecodeError::TooMany {
            what: "payloads",
            limit: MAX_PAYLOADS,
        });
    }
    if r.is_empty() {
        return Err(DecodeError::Chain("next payload set but message ends"));
    }
    let next = r.u8("payload next")?;
    let flags = r.u8("payload flags")?;
    let len = usize::from(r.u16("payload length")?);
    if len < 4 {
        return Err(DecodeError::BadLength {
            what: "generic payload header",
            len,
        });
    }
    let body = r.take(len - 4, "payload body")?;
    Ok(ChainStep { next, flags, body })
}

pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Append a big-endian u32.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Reserve a u16 length field at the current end of `out`; returns its
/// position for [`patch_u16_len`].
pub fn placeholder_u16(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    at
}

/// Write `out.len() - start` into the u16 at `at` (saturating at u16::MAX;
/// callers keep structures within the limit).
pub fn patch_u16_len(out: &mut [u8], at: usize, start: usize) {
    let len = u16::try_from(out.len().saturating_sub(start)).unwrap_or(u16::MAX);
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

/// Write `out.len() - start` into the u32 at `at`.
pub fn patch_u32_len(out: &mut [u8], at: usize, start: usize) {
    let len = u32::try_from(out.len().saturating_sub(start)).unwrap_or(u32::MAX);
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

/// Lowercase hex, for Debug output and tests.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Define a payload whose body is opaque bytes (KE data in IKEv1, nonce,
/// hash, signature, vendor ID, NAT-D …).
#[macro_export]
macro_rules! opaque_payload {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Default)]
        pub struct $name {
            /// Payload body.
            pub data: Vec<u8>,
        }
        impl $crate::msgs::codec::Codec for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.data);
            }
            fn read(r: &mut $crate::msgs::reader::Reader<'_>) -> Result<Self, $crate::msgs::codec::DecodeError> {
                Ok($name { data: r.rest().to_vec() })
            }
        }
        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({})", stringify!($name), $crate::msgs::codec::hex(&self.data))
            }
        }
    };
}
