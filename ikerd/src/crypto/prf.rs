//! IKEv1's negotiated hash and its HMAC form, the PRF (RFC 2409 §5: "prf" is the HMAC version of
//! the negotiated hash unless a PRF is negotiated, which no peer of ours does).

use ipc::ike::PrfAlg;
use zeroize::Zeroizing;

/// The negotiated hash algorithm, used as plain hash (IVs, NAT-D) and as HMAC (the PRF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prf(pub PrfAlg);

macro_rules! with_digest {
    ($alg:expr, $d:ident => $body:expr) => {
        match $alg {
            PrfAlg::HmacMd5 => {
                type $d = md5::Md5;
                $body
            }
            PrfAlg::HmacSha1 => {
                type $d = sha1::Sha1;
                $body
            }
            PrfAlg::HmacSha2_256 => {
                type $d = sha2::Sha256;
                $body
            }
            PrfAlg::HmacSha2_384 => {
                type $d = sha2::Sha384;
                $body
            }
            PrfAlg::HmacSha2_512 => {
                type $d = sha2::Sha512;
                $body
            }
        }
    };
}

impl Prf {
    /// Output length in bytes.
    pub fn len(self) -> usize {
        match self.0 {
            PrfAlg::HmacMd5 => 16,
            PrfAlg::HmacSha1 => 20,
            PrfAlg::HmacSha2_256 => 32,
            PrfAlg::HmacSha2_384 => 48,
            PrfAlg::HmacSha2_512 => 64,
        }
    }

    /// Never empty; here for clippy's len-without-is-empty.
    pub fn is_empty(self) -> bool {
        false
    }

    /// prf(key, parts[0] | parts[1] | …).
    pub fn mac(self, key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        use hmac::{Mac, SimpleHmac};
        with_digest!(self.0, D => {
            match <SimpleHmac<D> as Mac>::new_from_slice(key) {
                Ok(mut m) => {
                    for p in parts {
                        m.update(p);
                    }
                    Zeroizing::new(m.finalize().into_bytes().to_vec())
                }
                // HMAC takes keys of any length; an empty output never verifies anything.
                Err(_) => Zeroizing::new(Vec::new()),
            }
        })
    }

    /// hash(parts[0] | parts[1] | …).
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        use sha2::Digest;
        with_digest!(self.0, D => {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        })
    }

    /// The IKEv1 hash name as pluto prints it (`sha`, `md5`, `sha2_256` …).
    pub fn pluto_name(self) -> &'static str {
        match self.0 {
            PrfAlg::HmacMd5 => "md5",
            PrfAlg::HmacSha1 => "sha",
            PrfAlg::HmacSha2_256 => "sha2_256",
            PrfAlg::HmacSha2_384 => "sha2_384",
            PrfAlg::HmacSha2_512 => "sha2_512",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 2202 (HMAC-MD5/SHA1) and RFC 4231 (SHA-2) test case 2: key "Jefe".
    #[test]
    fn hmac_known_answers() {
        let data: &[&[u8]] = &[b"what do ya want ", b"for nothing?"];
        assert_eq!(
            *Prf(PrfAlg::HmacMd5).mac(b"Jefe", data),
            hex("750c783e6ab0b503eaa86e310a5db738")
        );
        assert_eq!(
            *Prf(PrfAlg::HmacSha1).mac(b"Jefe", data),
            hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
        assert_eq!(
            *Prf(PrfAlg::HmacSha2_256).mac(b"Jefe", data),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(Prf(PrfAlg::HmacSha2_384).mac(b"Jefe", data).len(), 48);
        assert_eq!(
            Prf(PrfAlg::HmacSha2_512).mac(b"Jefe", data)[..8],
            hex("164b7a7bfcf819e2")[..]
        );
    }

    #[test]
    fn hash_known_answers() {
        assert_eq!(
            Prf(PrfAlg::HmacMd5).hash(&[b"RFC ", b"3947"]),
            hex("4a131c81070358455c5728f20e95452f")
        );
        assert_eq!(
            Prf(PrfAlg::HmacSha1).hash(&[b"abc"]),
            hex("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        for a in [
            PrfAlg::HmacMd5,
            PrfAlg::HmacSha1,
            PrfAlg::HmacSha2_256,
            PrfAlg::HmacSha2_384,
            PrfAlg::HmacSha2_512,
        ] {
            assert_eq!(Prf(a).hash(&[b"x"]).len(), Prf(a).len());
            assert_eq!(Prf(a).mac(b"k", &[b"x"]).len(), Prf(a).len());
        }
    }
}
