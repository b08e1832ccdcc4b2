//! Errors of the key formats.

use thiserror::Error;

/// Why a key string, a key blob or an RSA block was refused.
///
/// The `Display` text is a human message without a location; callers that
/// know the file and line prefix it (`file:line: message`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyFmtError {
    #[error("empty key")]
    Empty,
    #[error("value must start with 0s (base64) or 0x (hex), found {found:?}")]
    UnknownEncoding { found: String },
    #[error("0t (text) values are not supported here")]
    TextEncodingUnsupported,
    #[error("not valid base64: {detail}")]
    NotBase64 { detail: String },
    #[error("not valid hex: {detail}")]
    NotHex { detail: String },
    #[error("key blob is truncated: {detail}")]
    Truncated { detail: &'static str },
    #[error("exponent length {exponent_len} exceeds key ({available} octets follow the length)")]
    ExponentLengthExceedsKey {
        exponent_len: usize,
        available: usize,
    },
    #[error("public exponent is zero")]
    ZeroExponent,
    #[error("public exponent is even; an RSA exponent must be odd")]
    EvenExponent,
    #[error("public exponent of {bits} bits is too long (maximum {max_bits})")]
    ExponentTooLong { bits: usize, max_bits: usize },
    #[error("key has no modulus")]
    NoModulus,
    #[error("modulus is even; an RSA modulus must be odd")]
    EvenModulus,
    #[error("modulus of {bits} bits is too short (minimum {min_bits})")]
    ModulusTooShort { bits: usize, min_bits: usize },
    #[error("modulus of {bits} bits is too long (maximum {max_bits})")]
    ModulusTooLong { bits: usize, max_bits: usize },
    #[error("key generation: {bits} bits is not supported (allowed {min_bits}..={max_bits}, a multiple of 16)")]
    UnsupportedKeySize {
        bits: usize,
        min_bits: usize,
        max_bits: usize,
    },
    #[error("key generation failed: {detail}")]
    Generation { detail: String },
}

/// An error inside an `ipsec.secrets` RSA block, naming the field (by index
/// in the order given to the parser) so a caller can map it to a line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct BlockError {
    /// Index of the offending field in the input, or `None` when the error is
    /// about the block as a whole (a missing field, an inconsistent key).
    pub field_index: Option<usize>,
    /// Human message, without location.
    pub message: String,
}

impl BlockError {
    pub(crate) fn at(field_index: usize, message: impl Into<String>) -> Self {
        BlockError {
            field_index: Some(field_index),
            message: message.into(),
        }
    }

    pub(crate) fn whole(message: impl Into<String>) -> Self {
        BlockError {
            field_index: None,
            message: message.into(),
        }
    }
}
