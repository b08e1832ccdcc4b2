//! RSA public keys in the RFC 3110 wire form, as FreeS/WAN and Libreswan
//! write them in ipsec.conf (`leftrsasigkey=0sAQ…` or `0x…`).
//!
//! Layout (RFC 3110 §2): one octet exponent length, or a zero octet followed
//! by a two-octet big-endian length when the exponent is longer than 255
//! octets; then the exponent; then the modulus, all big-endian.

use crate::encoding::{self, bit_length, strip_leading_zeros};
use crate::error::KeyFmtError;

/// Shortest modulus accepted when parsing a public key (old FreeS/WAN keys
/// were 1024 bits and longer; generation enforces its own, higher floor).
pub const MIN_MODULUS_BITS: usize = 1024;
/// Longest modulus accepted.
pub const MAX_MODULUS_BITS: usize = 16384;
/// Longest public exponent accepted (real keys use 3 or 65537).
pub const MAX_EXPONENT_BITS: usize = 64;
/// Number of base64 digits in a FreeS/WAN key id.
pub const KEYID_DIGITS: usize = 9;

/// An RSA public key. Both numbers are big-endian without leading zero octets.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RsaPublicKey {
    exponent: Vec<u8>,
    modulus: Vec<u8>,
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("bits", &self.modulus_bits())
            .field("exponent", &encoding::encode_hex_prefixed(&self.exponent))
            .field("keyid", &self.keyid())
            .finish()
    }
}

/// Parse the value of `leftrsasigkey=`/`rightrsasigkey=` (or the `#pubkey=`
/// comment of an RSA block): `0s<base64>` or `0x<hex>` RFC 3110 blob.
pub fn parse_rsasigkey(text: &str) -> Result<RsaPublicKey, KeyFmtError> {
    let blob = encoding::decode_prefixed(text.trim())?;
    RsaPublicKey::from_rfc3110_bytes(&blob)
}

impl RsaPublicKey {
    /// Build from big-endian exponent and modulus, checking them.
    pub fn from_components(exponent: &[u8], modulus: &[u8]) -> Result<Self, KeyFmtError> {
        let exponent = strip_leading_zeros(exponent);
        let modulus = strip_leading_zeros(modulus);
        let exponent_bits = bit_length(exponent);
        if exponent_bits == 0 {
            return Err(KeyFmtError::ZeroExponent);
        }
        if exponent_bits > MAX_EXPONENT_BITS {
            return Err(KeyFmtError::ExponentTooLong {
                bits: exponent_bits,
                max_bits: MAX_EXPONENT_BITS,
            });
        }
        if exponent.last().is_some_and(|low| low & 1 == 0) {
            return Err(KeyFmtError::EvenExponent);
        }
        let modulus_bits = bit_length(modulus);
        if modulus_bits == 0 {
            return Err(KeyFmtError::NoModulus);
        }
        if modulus_bits < MIN_MODULUS_BITS {
            return Err(KeyFmtError::ModulusTooShort {
                bits: modulus_bits,
                min_bits: MIN_MODULUS_BITS,
            });
        }
        if modulus_bits > MAX_MODULUS_BITS {
            return Err(KeyFmtError::ModulusTooLong {
                bits: modulus_bits,
                max_bits: MAX_MODULUS_BITS,
            });
        }
        if modulus.last().is_some_and(|low| low & 1 == 0) {
            return Err(KeyFmtError::EvenModulus);
        }
        Ok(RsaPublicKey {
            exponent: exponent.to_vec(),
            modulus: modulus.to_vec(),
        })
    }

    /// Parse a raw RFC 3110 blob.
    pub fn from_rfc3110_bytes(blob: &[u8]) -> Result<Self, KeyFmtError> {
        let (exponent_len, rest) = match blob.split_first() {
            None => return Err(KeyFmtError::Empty),
            Some((0, after_zero)) => match after_zero {
                [high, low, rest @ ..] => (usize::from(*high) << 8 | usize::from(*low), rest),
                _ => {
                    return Err(KeyFmtError::Truncated {
                        detail: "missing the two-octet exponent length",
                    })
                }
            },
            Some((&short_len, rest)) => (usize::from(short_len), rest),
        };
        if exponent_len > rest.len() {
            return Err(KeyFmtError::ExponentLengthExceedsKey {
                exponent_len,
                available: rest.len(),
            });
        }
        let (exponent, modulus) = rest.split_at(exponent_len);
        Self::from_components(exponent, modulus)
    }

    /// The RFC 3110 blob.
    pub fn to_rfc3110_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.exponent.len() + self.modulus.len());
        match u8::try_from(self.exponent.len()) {
            Ok(short_len) if short_len != 0 => out.push(short_len),
            _ => {
                // Cannot exceed MAX_EXPONENT_BITS, but encode the long form honestly anyway.
                let len = u16::try_from(self.exponent.len()).unwrap_or(u16::MAX);
                out.push(0);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        out.extend_from_slice(&self.exponent);
        out.extend_from_slice(&self.modulus);
        out
    }

    /// `0s<base64>` as written after `leftrsasigkey=` and in `#pubkey=`.
    pub fn to_rfc3110_base64(&self) -> String {
        encoding::encode_base64_prefixed(&self.to_rfc3110_bytes())
    }

    /// `0x<hex>` form of the same blob.
    pub fn to_rfc3110_hex(&self) -> String {
        encoding::encode_hex_prefixed(&self.to_rfc3110_bytes())
    }

    /// FreeS/WAN key id: the first nine base64 digits of the RFC 3110 blob
    /// (e.g. `AQN3cn11F`), as `ipsec showhostkey` and pluto's logs print it.
    pub fn keyid(&self) -> String {
        let b64 = self.to_rfc3110_base64();
        b64.chars().skip(2).take(KEYID_DIGITS).collect()
    }

    /// Size of the modulus in bits.
    pub fn modulus_bits(&self) -> usize {
        bit_length(&self.modulus)
    }

    /// Public exponent, big-endian, no leading zeros.
    pub fn exponent(&self) -> &[u8] {
        &self.exponent
    }

    /// Modulus, big-endian, no leading zeros.
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// 1024-bit odd modulus made of a fixed pattern (not a real key).
    fn fake_modulus() -> Vec<u8> {
        let mut m = vec![0xc5u8; 128];
        if let Some(last) = m.last_mut() {
            *last = 0x01;
        }
        m
    }

    #[test]
    fn short_form_round_trip() {
        let key = RsaPublicKey::from_components(&[3], &fake_modulus()).unwrap();
        let blob = key.to_rfc3110_bytes();
        assert_eq!(blob.first(), Some(&1));
        assert_eq!(blob.get(1), Some(&3));
        let text = key.to_rfc3110_base64();
        assert!(text.starts_with("0sAQPF"));
        assert_eq!(parse_rsasigkey(&text).unwrap(), key);
        assert_eq!(parse_rsasigkey(&key.to_rfc3110_hex()).unwrap(), key);
        assert_eq!(key.keyid(), text.get(2..11).unwrap());
        assert_eq!(key.modulus_bits(), 1024);
    }

    #[test]
    fn long_form_length() {
        let mut blob = vec![0, 0, 3, 1, 0, 1];
        blob.extend(fake_modulus());
        let key = RsaPublicKey::from_rfc3110_bytes(&blob).unwrap();
        assert_eq!(key.exponent(), &[1, 0, 1]);
    }

    #[test]
    fn errors_have_messages() {
        assert_eq!(
            parse_rsasigkey("0s!!!!")
                .unwrap_err()
                .to_string()
                .split(':')
                .next(),
            Some("not valid base64")
        );
        assert_eq!(
            RsaPublicKey::from_rfc3110_bytes(&[9, 3, 5])
                .unwrap_err()
                .to_string(),
            "exponent length 9 exceeds key (2 octets follow the length)"
        );
        assert_eq!(
            RsaPublicKey::from_rfc3110_bytes(&[1, 3, 0xff, 0x01])
                .unwrap_err()
                .to_string(),
            "modulus of 16 bits is too short (minimum 1024)"
        );
        assert_eq!(
            RsaPublicKey::from_rfc3110_bytes(&[1, 3]).unwrap_err(),
            KeyFmtError::NoModulus
        );
        assert_eq!(
            RsaPublicKey::from_rfc3110_bytes(&[0, 1]).unwrap_err(),
            KeyFmtError::Truncated {
                detail: "missing the two-octet exponent length"
            }
        );
        assert_eq!(
            RsaPublicKey::from_rfc3110_bytes(&[1, 0]).unwrap_err(),
            KeyFmtError::ZeroExponent
        );
        assert_eq!(
            RsaPublicKey::from_rfc3110_bytes(&[1, 4, 1]).unwrap_err(),
            KeyFmtError::EvenExponent
        );
        assert!(matches!(
            parse_rsasigkey("AQOg"),
            Err(KeyFmtError::UnknownEncoding { .. })
        ));
    }

    #[test]
    fn freeswan_man_page_key_id() {
        // The 2001 "cassidy" key from FreeS/WAN's test configs (public half).
        let text = "0sAQN3cn11FrBVbZhWGwRnFDAf8O9FHBmBIyIvmvt0kfkI2UGDDq8k+vYgRkwBZDviLd1p3SkL30LzuV0rqG3vBriqaAUUGoCQ0UMgsuX+k01bROLsqGB1QNXYvYiPLsnoDhKd2Gx9MUMHEjwwEZeyskMT5k91jvoAZvdEkg+9h7urbJ+kRQ4e+IHkMUrreDGwGVptV/hYQVCD54RZep6xp5ymaKRCDgMpzWvlzO80fP7JDjSZf9LI/MMu6c+qwXIKnWoNha75IhFyLWniVczxK2RdhmMhLsi0kC0CoOwWDSIEOb+5zbECDjjud+SF5tT8qRCWnSomX8jtbCdZ50WraQlL";
        let key = parse_rsasigkey(text).unwrap();
        assert_eq!(key.keyid(), "AQN3cn11F");
        assert_eq!(key.modulus_bits(), 2047);
        assert_eq!(key.exponent(), &[3]);
        assert_eq!(key.to_rfc3110_base64(), text);
    }

    #[test]
    fn debug_is_short() {
        let key = RsaPublicKey::from_components(&[1, 0, 1], &fake_modulus()).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("bits: 1024"), "{shown}");
    }
}
