//! IKEv1's pseudo-random function: the negotiated hash as HMAC (RFC 2409 §5 and Appendix B;
//! RFC 4868 for the SHA-2 sizes). RustCrypto's HMACs (DESIGN-NOTES §3: the fastest here).
//!
//! Every output is returned in a [`Zeroizing`] buffer: it is either key material (SKEYID) or the
//! value keyd signs, and neither should linger in freed memory.

use hmac::{Hmac, Mac};
use ipc::ike::PrfAlg;
use zeroize::Zeroizing;

/// Output length in bytes of `prf` (also the length of an SKEYID computed with it).
pub fn output_len(alg: PrfAlg) -> usize {
    match alg {
        PrfAlg::HmacMd5 => 16,
        PrfAlg::HmacSha1 => 20,
        PrfAlg::HmacSha2_256 => 32,
        PrfAlg::HmacSha2_384 => 48,
        PrfAlg::HmacSha2_512 => 64,
    }
}

/// The name pluto prints for the hash (`OAKLEY_SHA1` style, shortened).
pub fn name(alg: PrfAlg) -> &'static str {
    match alg {
        PrfAlg::HmacMd5 => "HMAC-MD5",
        PrfAlg::HmacSha1 => "HMAC-SHA1",
        PrfAlg::HmacSha2_256 => "HMAC-SHA2-256",
        PrfAlg::HmacSha2_384 => "HMAC-SHA2-384",
        PrfAlg::HmacSha2_512 => "HMAC-SHA2-512",
    }
}

/// `prf(key, parts[0] | parts[1] | …)`: the concatenation is fed piecewise, never copied.
pub fn prf(alg: PrfAlg, key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    match alg {
        PrfAlg::HmacMd5 => run::<Hmac<md5::Md5>>(key, parts),
        PrfAlg::HmacSha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        PrfAlg::HmacSha2_256 => run::<Hmac<sha2::Sha256>>(key, parts),
        PrfAlg::HmacSha2_384 => run::<Hmac<sha2::Sha384>>(key, parts),
        PrfAlg::HmacSha2_512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    // HMAC takes keys of any length (longer ones are hashed first, RFC 2104 §2), so `new_from_slice`
    // cannot fail for it; `KeyInit`'s signature still returns a Result, hence the match.
    let mut mac = match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return hmac_unreachable(),
    };
    for part in parts {
        mac.update(part);
    }
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

#[cold]
fn hmac_unreachable() -> Zeroizing<Vec<u8>> {
    // Never reached for HMAC (see above). An empty output is refused by every caller's length check
    // rather than used as a key.
    Zeroizing::new(Vec::new())
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

    const ALL: [PrfAlg; 5] = [
        PrfAlg::HmacMd5,
        PrfAlg::HmacSha1,
        PrfAlg::HmacSha2_256,
        PrfAlg::HmacSha2_384,
        PrfAlg::HmacSha2_512,
    ];

    /// RFC 2202 test case 2 (MD5, SHA-1) and RFC 4231 test case 2 (SHA-2): key "Jefe".
    #[test]
    fn rfc2202_rfc4231_case_2() {
        let expected = [
            "750c783e6ab0b503eaa86e310a5db738",
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
             8e2240ca5e69e2c78b3239ecfab21649",
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ];
        for (alg, want) in ALL.iter().zip(expected) {
            let out = prf(*alg, b"Jefe", &[b"what do ya want ", b"for nothing?"]);
            assert_eq!(out.as_slice(), hex(want).as_slice(), "{}", name(*alg));
            assert_eq!(out.len(), output_len(*alg));
        }
    }

    /// RFC 2202 test cases 1 and 6 (MD5 and SHA-1; case 6 has a key longer than the block),
    /// RFC 4231 test case 1 and 6 (SHA-2; case 6 has a 131-byte key).
    #[test]
    fn rfc2202_rfc4231_short_and_long_keys() {
        let md5_1 = prf(PrfAlg::HmacMd5, &[0x0b; 16], &[b"Hi There"]);
        assert_eq!(*md5_1, hex("9294727a3638bb1c13f48ef8158bfc9d"));
        let sha1_1 = prf(PrfAlg::HmacSha1, &[0x0b; 20], &[b"Hi There"]);
        assert_eq!(*sha1_1, hex("b617318655057264e28bc0b6fb378c8ef146be00"));
        let long = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let md5_6 = prf(PrfAlg::HmacMd5, &[0xaa; 80], &[long]);
        assert_eq!(*md5_6, hex("6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"));
        let sha1_6 = prf(PrfAlg::HmacSha1, &[0xaa; 80], &[long]);
        assert_eq!(*sha1_6, hex("aa4ae5e15272d00e95705637ce8a3b55ed402112"));
        let sha256_1 = prf(PrfAlg::HmacSha2_256, &[0x0b; 20], &[b"Hi There"]);
        assert_eq!(
            *sha256_1,
            hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        let sha256_6 = prf(PrfAlg::HmacSha2_256, &[0xaa; 131], &[long]);
        assert_eq!(
            *sha256_6,
            hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
    }

    #[test]
    fn parts_are_concatenated() {
        for alg in ALL {
            assert_eq!(
                prf(alg, b"k", &[b"ab", b"", b"cd"]),
                prf(alg, b"k", &[b"abcd"])
            );
            assert_ne!(prf(alg, b"k", &[b"abcd"]), prf(alg, b"K", &[b"abcd"]));
        }
    }
}
