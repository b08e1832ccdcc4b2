//! RSA key formats of FreeS/WAN and Libreswan.
//!
//! * [`rfc3110`]: public keys as written after `leftrsasigkey=` (`0s…`/`0x…`).
//! * [`block`]: the `: RSA { … }` private-key block of ipsec.secrets.
//! * [`generate`]: `ipsec rsasigkey` key generation and `ipsec ranbits`.
//! * [`encoding`]: the `0x`/`0s` value encodings shared by both files.
//!
//! No private-key operation (signing, decryption) is implemented here.

pub mod block;
pub mod encoding;
pub mod error;
pub mod generate;
pub mod rfc3110;

pub use block::{parse_rsa_block, render_rsa_block, RsaPrivateKey, SecretNumber};
pub use error::{BlockError, KeyFmtError};
pub use generate::{generate, ranbits, DEFAULT_BITS, MIN_SECURE_BITS};
pub use rfc3110::{parse_rsasigkey, RsaPublicKey};

/// The line `ipsec showhostkey --left` prints for a key:
/// `\tleftrsasigkey=0sAQ…` (`side` is `"left"` or `"right"`).
pub fn showhostkey_line(side: &str, key: &RsaPublicKey) -> String {
    format!("\t{side}rsasigkey={}", key.to_rfc3110_base64())
}
