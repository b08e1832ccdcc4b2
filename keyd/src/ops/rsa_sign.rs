//! RSA private keys as OpenSSL holds them, and IKEv1's raw PKCS#1 v1.5 signature.
//!
//! IKEv1 signature authentication (RFC 2409 §5.1) signs HASH_I/HASH_R as it is: PKCS#1 v1.5 block
//! type 1 padding (`00 01 FF… 00 || HASH`) with no DigestInfo, which is `RSA_private_encrypt` with
//! `RSA_PKCS1_PADDING`. Neither the `rsa` crate (RUSTSEC-2023-0071: its private-key path leaks
//! timing a network peer can measure) nor ring (no raw PKCS#1 without DigestInfo, no public
//! exponent 3 as FreeS/WAN keys have) will do; OpenSSL does (DESIGN-NOTES §3).
//!
//! Each key from ipsec.secrets is converted into an `openssl::pkey::PKey` once, when the secrets are
//! loaded ([`SigningKey::from_keyfmt`]), never per request.

use keyfmt::{RsaPrivateKey, RsaPublicKey};
use openssl::bn::BigNum;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};

/// PKCS#1 v1.5 padding takes at least 11 bytes of the modulus (RFC 8017 §9.2 note 1).
const PKCS1_OVERHEAD: usize = 11;

/// One private key, ready to sign. `Debug` shows only the public key's id and size.
pub struct SigningKey {
    pkey: PKey<Private>,
    public: RsaPublicKey,
    /// RFC 3110 `0s…` form of the public half (returned with each signature).
    pubkey_text: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("keyid", &self.public.keyid())
            .field("bits", &self.public.modulus_bits())
            .finish_non_exhaustive()
    }
}

/// A secret number as an OpenSSL BIGNUM allocated with `BN_secure_new`, so that OpenSSL wipes it
/// when it is freed (also on the error paths below, before the key owns it).
fn secret_bn(bytes: &[u8]) -> Result<BigNum, openssl::error::ErrorStack> {
    let mut n = BigNum::new_secure()?;
    n.copy_from_slice(bytes)?;
    Ok(n)
}

impl SigningKey {
    /// Convert a key read from ipsec.secrets (already checked by `check_consistency`) into an
    /// OpenSSL key, and let OpenSSL check it once more.
    pub fn from_keyfmt(key: &RsaPrivateKey) -> Result<SigningKey, String> {
        let public = key.public_key().clone();
        let failed = |e: openssl::error::ErrorStack| format!("OpenSSL refused the key: {e}");
        let rsa = Rsa::from_private_components(
            BigNum::from_slice(public.modulus()).map_err(failed)?,
            BigNum::from_slice(public.exponent()).map_err(failed)?,
            secret_bn(key.private_exponent().expose_bytes()).map_err(failed)?,
            secret_bn(key.prime1().expose_bytes()).map_err(failed)?,
            secret_bn(key.prime2().expose_bytes()).map_err(failed)?,
            secret_bn(key.exponent1().expose_bytes()).map_err(failed)?,
            secret_bn(key.exponent2().expose_bytes()).map_err(failed)?,
            // keyfmt's Coefficient is q⁻¹ mod p, which is OpenSSL's iqmp.
            secret_bn(key.coefficient().expose_bytes()).map_err(failed)?,
        )
        .map_err(failed)?;
        match rsa.check_key() {
            Ok(true) => {}
            Ok(false) => return Err("OpenSSL's key check failed".into()),
            Err(e) => return Err(format!("OpenSSL's key check failed: {e}")),
        }
        let pkey = PKey::from_rsa(rsa).map_err(failed)?;
        Ok(SigningKey {
            pkey,
            pubkey_text: public.to_rfc3110_base64(),
            public,
        })
    }

    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// `0s…` (RFC 3110) form of the public half.
    pub fn pubkey_text(&self) -> &str {
        &self.pubkey_text
    }

    /// The modulus size in bytes (the signature's length).
    pub fn size(&self) -> usize {
        self.public.modulus().len()
    }

    /// Sign `data` with PKCS#1 v1.5 type-1 padding and no DigestInfo (IKEv1's RSA signature over
    /// HASH_I/HASH_R). The result is exactly [`SigningKey::size`] bytes.
    ///
    /// Why this is constant time with respect to the private key: OpenSSL's RSA private operation
    /// (`rsa_ossl_private_encrypt`) blinds the input with a fresh random factor by default (this code
    /// never sets `RSA_FLAG_NO_BLINDING`), so the exponentiation works on a value the caller neither
    /// chose nor knows, and it runs the CRT exponentiations with `BN_FLG_CONSTTIME` set on the
    /// secret exponents and primes (`BN_mod_exp_mont_consttime`: fixed-window, no secret-dependent
    /// branches or table indices). The type-1 padding is built from the public `data` only. The
    /// `rsa` crate's timing leak (RUSTSEC-2023-0071) is in exactly the part OpenSSL does this way.
    pub fn sign_pkcs1_raw(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        let size = self.size();
        if data.is_empty() || data.len() + PKCS1_OVERHEAD > size {
            return Err(format!(
                "cannot sign {} bytes with a {}-bit key",
                data.len(),
                self.public.modulus_bits()
            ));
        }
        // A reference-count increment, not a conversion: the key was built from an RSA object.
        let rsa = self
            .pkey
            .rsa()
            .map_err(|e| format!("OpenSSL: not an RSA key: {e}"))?;
        let rsa_size = usize::try_from(rsa.size()).unwrap_or(0);
        if rsa_size != size {
            return Err(format!(
                "OpenSSL's key is {rsa_size} bytes, expected {size}"
            ));
        }
        let mut sig = vec![0u8; size];
        let written = rsa
            .private_encrypt(data, &mut sig, Padding::PKCS1)
            .map_err(|e| format!("OpenSSL RSA signing failed: {e}"))?;
        if written != size {
            return Err(format!(
                "OpenSSL wrote a {written}-byte signature, expected {size}"
            ));
        }
        Ok(sig)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Recover what was signed with the public half alone (an independent OpenSSL object built from
    /// the public numbers only).
    fn recover(public: &RsaPublicKey, sig: &[u8]) -> Vec<u8> {
        let rsa = Rsa::from_public_components(
            BigNum::from_slice(public.modulus()).unwrap(),
            BigNum::from_slice(public.exponent()).unwrap(),
        )
        .unwrap();
        let mut out = vec![0u8; rsa.size() as usize];
        let n = rsa.public_decrypt(sig, &mut out, Padding::PKCS1).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn signs_raw_pkcs1_without_digestinfo() {
        let key = keyfmt::generate(1024).unwrap();
        let signer = SigningKey::from_keyfmt(&key).unwrap();
        assert_eq!(signer.size(), 128);
        assert_eq!(signer.pubkey_text(), key.public_key().to_rfc3110_base64());
        let hash = [0x5au8; 20];
        let sig = signer.sign_pkcs1_raw(&hash).unwrap();
        assert_eq!(sig.len(), 128);
        assert_eq!(recover(key.public_key(), &sig), hash);
        // Deterministic padding: the same input signs to the same bytes (blinding changes nothing
        // in the result).
        assert_eq!(signer.sign_pkcs1_raw(&hash).unwrap(), sig);
        // The block is 00 01 FF.. 00 || hash, with no DigestInfo: check it with raw RSA.
        let rsa = Rsa::from_public_components(
            BigNum::from_slice(key.public_key().modulus()).unwrap(),
            BigNum::from_slice(key.public_key().exponent()).unwrap(),
        )
        .unwrap();
        let mut block = vec![0u8; 128];
        rsa.public_decrypt(&sig, &mut block, Padding::NONE).unwrap();
        assert_eq!(&block[..2], &[0, 1]);
        assert!(block[2..128 - 21].iter().all(|&b| b == 0xff));
        assert_eq!(block[128 - 21], 0);
        assert_eq!(&block[128 - 20..], &hash);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let key = keyfmt::generate(1024).unwrap();
        let signer = SigningKey::from_keyfmt(&key).unwrap();
        assert!(signer.sign_pkcs1_raw(&[]).is_err());
        assert!(signer.sign_pkcs1_raw(&[1u8; 118]).is_err());
        assert!(signer.sign_pkcs1_raw(&[1u8; 117]).is_ok());
    }

    #[test]
    fn inconsistent_keys_are_refused() {
        let a = keyfmt::generate(1024).unwrap();
        let b = keyfmt::generate(1024).unwrap();
        // a's public half with b's private numbers.
        let mixed = RsaPrivateKey::from_parts(
            a.public_key().clone(),
            b.private_exponent().clone(),
            b.prime1().clone(),
            b.prime2().clone(),
            b.exponent1().clone(),
            b.exponent2().clone(),
            b.coefficient().clone(),
        );
        let err = SigningKey::from_keyfmt(&mixed).unwrap_err();
        assert!(err.contains("key check failed"), "{err}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let key = keyfmt::generate(1024).unwrap();
        let signer = SigningKey::from_keyfmt(&key).unwrap();
        let text = format!("{signer:?}");
        assert!(text.contains(&key.public_key().keyid()), "{text}");
        assert!(!text.contains(&signer.pubkey_text()[2..30]), "{text}");
    }
}
