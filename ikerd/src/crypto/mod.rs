//! IKE cryptography done inside ikerd: Diffie-Hellman (OpenSSL, constant-time modexp), the IKEv1
//! PRFs and hashes, IKEv1 key derivation (RFC 2409 §5, Appendix B) and the CBC encryption of
//! IKEv1 messages. Every operation that needs a pre-shared key or a private key is keyd's.
//! Key material lives in [`zeroize::Zeroizing`] buffers and never appears in `Debug` output.

pub mod dh;
pub mod prf;
pub mod v1_cipher;
pub mod v1_keymat;

/// Why a cryptographic operation failed (never key material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("Diffie-Hellman group {0} is not supported")]
    UnsupportedGroup(u16),
    #[error("the peer's Diffie-Hellman public value is invalid: {0}")]
    BadPublicValue(&'static str),
    #[error("ciphertext length {0} is not a positive multiple of the block size {1}")]
    BadCiphertextLength(usize, usize),
    #[error("key or IV of the wrong length")]
    BadKeyLength,
    #[error("OpenSSL: {0}")]
    OpenSsl(String),
}

impl From<openssl::error::ErrorStack> for CryptoError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        CryptoError::OpenSsl(e.to_string())
    }
}

/// Constant-time comparison of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
