//! Key generation (`ipsec rsasigkey`) and random bits (`ipsec ranbits`).
//!
//! The `rsa` crate is used here only to generate primes; no signing or
//! decryption is ever done with it (RUSTSEC-2023-0071). Signing is done
//! with OpenSSL by keyd.

use rand::rngs::OsRng;
use rand::RngCore;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::BigUint;
use zeroize::Zeroizing;

use crate::block::{RsaPrivateKey, SecretNumber};
use crate::encoding;
use crate::error::KeyFmtError;
use crate::rfc3110::RsaPublicKey;

/// Default modulus size for new keys.
pub const DEFAULT_BITS: usize = 3072;
/// Smallest size a caller should accept without an explicit `--insecure`.
pub const MIN_SECURE_BITS: usize = 2048;
/// Smallest size [`generate`] will make at all (test keys, `--insecure`).
pub const MIN_GENERATE_BITS: usize = 1024;
/// Largest size [`generate`] will make.
pub const MAX_GENERATE_BITS: usize = 8192;
/// Public exponent of generated keys (F4, as Libreswan uses; FreeS/WAN used 3).
pub const PUBLIC_EXPONENT: u32 = 65537;

/// Generate an RSA key of `bits` bits (a multiple of 16 in
/// `MIN_GENERATE_BITS..=MAX_GENERATE_BITS`) with exponent 65537 from the
/// operating system's random source. The caller enforces its own policy
/// (refusing less than [`MIN_SECURE_BITS`] without `--insecure`).
pub fn generate(bits: usize) -> Result<RsaPrivateKey, KeyFmtError> {
    if !(MIN_GENERATE_BITS..=MAX_GENERATE_BITS).contains(&bits) || bits & 15 != 0 {
        return Err(KeyFmtError::UnsupportedKeySize {
            bits,
            min_bits: MIN_GENERATE_BITS,
            max_bits: MAX_GENERATE_BITS,
        });
    }
    let generated =
        rsa::RsaPrivateKey::new_with_exp(&mut OsRng, bits, &BigUint::from(PUBLIC_EXPONENT))
            .map_err(|e| KeyFmtError::Generation {
                detail: e.to_string(),
            })?;
    let [p, q] = generated.primes() else {
        return Err(KeyFmtError::Generation {
            detail: "expected exactly two primes".into(),
        });
    };
    let d = generated.d();
    fn precomputed<'k>(value: Option<&'k BigUint>, what: &str) -> Result<&'k BigUint, KeyFmtError> {
        value.ok_or_else(|| KeyFmtError::Generation {
            detail: format!("{what} was not precomputed"),
        })
    }
    let secret = |n: &BigUint| {
        let bytes = Zeroizing::new(n.to_bytes_be());
        SecretNumber::new(&bytes)
    };
    let exponent1 = secret(precomputed(generated.dp(), "Exponent1")?);
    let exponent2 = secret(precomputed(generated.dq(), "Exponent2")?);
    let coefficient = generated
        .crt_coefficient()
        .map(Zeroizing::new)
        .ok_or_else(|| KeyFmtError::Generation {
            detail: "Prime2 has no inverse mod Prime1".into(),
        })?;
    let public =
        RsaPublicKey::from_components(&generated.e().to_bytes_be(), &generated.n().to_bytes_be())?;
    let key = RsaPrivateKey::from_parts(
        public,
        secret(d),
        secret(p),
        secret(q),
        exponent1,
        exponent2,
        secret(&coefficient),
    );
    key.check_consistency()
        .map_err(|e| KeyFmtError::Generation { detail: e.message })?;
    Ok(key)
}

/// `ipsec ranbits`: `bits` random bits (rounded up to whole octets) from
/// the operating system's random source, as `0x` hex.
pub fn ranbits(bits: usize) -> Zeroizing<String> {
    let mut bytes = Zeroizing::new(vec![0u8; bits.div_ceil(8)]);
    OsRng.fill_bytes(&mut bytes);
    Zeroizing::new(encoding::encode_hex_prefixed(&bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn ranbits_lengths() {
        assert_eq!(ranbits(256).len(), 2 + 64);
        assert_eq!(ranbits(9).len(), 2 + 4);
        assert_ne!(*ranbits(128), *ranbits(128));
    }

    #[test]
    fn refuses_odd_sizes() {
        assert!(matches!(
            generate(512),
            Err(KeyFmtError::UnsupportedKeySize { .. })
        ));
        assert!(matches!(
            generate(2050),
            Err(KeyFmtError::UnsupportedKeySize { .. })
        ));
    }

    #[test]
    fn generated_1024_round_trips() {
        let key = generate(1024).unwrap();
        assert_eq!(key.public_key().modulus_bits(), 1024);
        assert_eq!(key.public_key().exponent(), &[1, 0, 1]);
        let text = crate::block::render_rsa_block(&key, "test", "now");
        assert_eq!(crate::block::parse_rsa_block(&text).unwrap(), key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod round_trip_2048 {
    use super::*;
    use crate::block::{parse_rsa_block, render_rsa_block};
    use crate::rfc3110::parse_rsasigkey;

    /// Acceptance (c): generate, render the block, parse it back; the
    /// `0s` public key parses back to the same key.
    #[test]
    fn generate_render_parse_2048() {
        let started = std::time::Instant::now();
        let key = generate(MIN_SECURE_BITS).unwrap();
        println!("2048-bit generation took {:?}", started.elapsed());
        assert_eq!(key.public_key().modulus_bits(), 2048);

        let block = render_rsa_block(&key, "gateway", "Mon Nov 23 10:56:42 2026");
        assert!(
            block.starts_with(": RSA\t{\n\t# RSA 2048 bits   gateway   Mon Nov 23 10:56:42 2026\n")
        );
        let pubkey_line = format!("\t#pubkey={}\n", key.public_key().to_rfc3110_base64());
        assert!(block.contains(&pubkey_line));
        let parsed = parse_rsa_block(&block).unwrap();
        assert_eq!(parsed.public_key(), key.public_key());
        assert_eq!(parsed, key);

        let text = key.public_key().to_rfc3110_base64();
        assert!(text.starts_with("0sAwEAA"), "{text}");
        assert_eq!(&parse_rsasigkey(&text).unwrap(), key.public_key());
        assert_eq!(
            &parse_rsasigkey(&key.public_key().to_rfc3110_hex()).unwrap(),
            key.public_key()
        );
        assert_eq!(
            crate::showhostkey_line("left", key.public_key()),
            format!("\tleftrsasigkey={text}")
        );
    }
}
