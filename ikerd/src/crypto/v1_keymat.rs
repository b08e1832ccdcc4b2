//! IKEv1 key derivation (RFC 2409 §5, §5.5 and Appendix B).

use super::prf::Prf;
use zeroize::Zeroizing;

type Secret = Zeroizing<Vec<u8>>;

/// SKEYID for signature authentication: prf(Ni_b | Nr_b, g^xy).
pub fn skeyid_sig(prf: Prf, ni: &[u8], nr: &[u8], gxy: &[u8]) -> Secret {
    let mut key = Zeroizing::new(Vec::with_capacity(ni.len() + nr.len()));
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    prf.mac(&key, &[gxy])
}

/// SKEYID for pre-shared keys: prf(pre-shared-key, Ni_b | Nr_b). keyd computes this; ikerd has it
/// for tests and the test keyd only.
pub fn skeyid_psk(prf: Prf, psk: &[u8], ni: &[u8], nr: &[u8]) -> Secret {
    prf.mac(psk, &[ni, nr])
}

/// The keys of an ISAKMP SA.
pub struct Phase1Keys {
    pub skeyid: Secret,
    pub skeyid_d: Secret,
    pub skeyid_a: Secret,
    pub skeyid_e: Secret,
    /// The encryption key (SKEYID_e expanded or cut to the cipher's key length).
    pub enc_key: Secret,
}

impl std::fmt::Debug for Phase1Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Phase1Keys(<redacted>)")
    }
}

/// SKEYID_d, SKEYID_a, SKEYID_e (RFC 2409 §5) and the encryption key (Appendix B).
pub fn derive_phase1(
    prf: Prf,
    skeyid: &[u8],
    gxy: &[u8],
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
    enc_key_len: usize,
) -> Phase1Keys {
    let d = prf.mac(skeyid, &[gxy, cky_i, cky_r, &[0]]);
    let a = prf.mac(skeyid, &[&d, gxy, cky_i, cky_r, &[1]]);
    let e = prf.mac(skeyid, &[&a, gxy, cky_i, cky_r, &[2]]);
    let enc_key = expand_enc_key(prf, &e, enc_key_len);
    Phase1Keys {
        skeyid: Zeroizing::new(skeyid.to_vec()),
        skeyid_d: d,
        skeyid_a: a,
        skeyid_e: e,
        enc_key,
    }
}

/// Appendix B: when SKEYID_e is shorter than the key, Ka = K1 | K2 | … with K1 = prf(SKEYID_e, 0)
/// (a single zero octet) and Kn = prf(SKEYID_e, Kn-1); the key is the first `len` bytes.
pub fn expand_enc_key(prf: Prf, skeyid_e: &[u8], len: usize) -> Secret {
    if skeyid_e.len() >= len {
        return Zeroizing::new(skeyid_e.get(..len).unwrap_or(skeyid_e).to_vec());
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len + prf.len()));
    let mut k = prf.mac(skeyid_e, &[&[0]]);
    loop {
        out.extend_from_slice(&k);
        if out.len() >= len || k.is_empty() {
            break;
        }
        k = prf.mac(skeyid_e, &[&k]);
    }
    out.truncate(len);
    out
}

/// The phase-1 IV: hash(g^xi | g^xr), cut to the cipher's block size.
pub fn phase1_iv(prf: Prf, g_xi: &[u8], g_xr: &[u8], block: usize) -> Vec<u8> {
    let mut h = prf.hash(&[g_xi, g_xr]);
    h.truncate(block);
    h
}

/// A phase-2 / informational exchange's first IV: hash(last phase-1 CBC block | M-ID).
pub fn phase2_iv(prf: Prf, p1_last_block: &[u8], msgid: u32, block: usize) -> Vec<u8> {
    let mut h = prf.hash(&[p1_last_block, &msgid.to_be_bytes()]);
    h.truncate(block);
    h
}

/// Quick Mode KEYMAT (RFC 2409 §5.5) for one SA, expanded to `len` bytes:
/// K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b),
/// Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b).
#[allow(clippy::too_many_arguments)]
pub fn qm_keymat(
    prf: Prf,
    skeyid_d: &[u8],
    g_qm: Option<&[u8]>,
    protocol: u8,
    spi: u32,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Secret {
    let spi = spi.to_be_bytes();
    let g: &[u8] = g_qm.unwrap_or(&[]);
    let mut out = Zeroizing::new(Vec::with_capacity(len + prf.len()));
    let mut k = prf.mac(skeyid_d, &[g, &[protocol], &spi, ni, nr]);
    loop {
        out.extend_from_slice(&k);
        if out.len() >= len || k.is_empty() {
            break;
        }
        k = prf.mac(skeyid_d, &[&k, g, &[protocol], &spi, ni, nr]);
    }
    out.truncate(len);
    out
}

/// HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b).
#[allow(clippy::too_many_arguments)]
pub fn hash_i(
    prf: Prf,
    skeyid: &[u8],
    g_xi: &[u8],
    g_xr: &[u8],
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
    sai_b: &[u8],
    idii_b: &[u8],
) -> Secret {
    prf.mac(skeyid, &[g_xi, g_xr, cky_i, cky_r, sai_b, idii_b])
}

/// HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b).
#[allow(clippy::too_many_arguments)]
pub fn hash_r(
    prf: Prf,
    skeyid: &[u8],
    g_xi: &[u8],
    g_xr: &[u8],
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
    sai_b: &[u8],
    idir_b: &[u8],
) -> Secret {
    prf.mac(skeyid, &[g_xr, g_xi, cky_r, cky_i, sai_b, idir_b])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use ipc::ike::PrfAlg;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn c8(s: &str) -> [u8; 8] {
        hex(s).try_into().unwrap()
    }

    /// Libreswan's ACVP IKEv1 PSK vector tcId 100 (shared corpus, vectors/libreswan-acvp-ike-kdf.json).
    #[test]
    fn acvp_psk_vector_100() {
        let prf = Prf(PrfAlg::HmacSha1);
        let gxy = hex("739003ba2c11c982946c65e26acf661fbf8ebb78011a9fead79efa12fe3e71cc");
        let skeyid = skeyid_psk(
            prf,
            &hex("75"),
            &hex("b9a2d0e922dc66dd"),
            &hex("2130166863b5ddef"),
        );
        assert_eq!(*skeyid, hex("62b04d112877e442fc3282fc37c076997718a0b9"));
        let k = derive_phase1(
            prf,
            &skeyid,
            &gxy,
            &c8("83d374c30b3b5082"),
            &c8("5afc0da06c728029"),
            16,
        );
        assert_eq!(*k.skeyid_d, hex("369e5aad1bdb5faf6a3d929d500cdc236710a9ab"));
        assert_eq!(*k.skeyid_a, hex("588e957d8d790d093b3a39f121473473af78e9bb"));
        assert_eq!(*k.skeyid_e, hex("cd74b0c048219db81384d3fda8f6cda51e398a2b"));
        assert_eq!(*k.enc_key, hex("cd74b0c048219db81384d3fda8f6cda5"));
    }

    /// Libreswan's ACVP IKEv1 signature ("dsa") vector tcId 100.
    #[test]
    fn acvp_sig_vector_100() {
        let prf = Prf(PrfAlg::HmacSha1);
        let gxy = hex("8ba4cbc73c0187301dc19a975823854dbd641c597f637f8d053a83b9514673eb");
        let skeyid = skeyid_sig(
            prf,
            &hex("69a62284195f1680"),
            &hex("80c94ba25c8abda5"),
            &gxy,
        );
        assert_eq!(*skeyid, hex("707197817fb2d90cf54d1842606bdea59b9f4823"));
        let k = derive_phase1(
            prf,
            &skeyid,
            &gxy,
            &c8("8c3bcd3a69831d7f"),
            &c8("d2d9a7ff4fbe95a7"),
            24,
        );
        assert_eq!(*k.skeyid_d, hex("384be709a8a5e63c3ed160cfe3921c4b37d5b32d"));
        assert_eq!(*k.skeyid_a, hex("48b327575abe3adba0f279849e289022a13e2b47"));
        assert_eq!(*k.skeyid_e, hex("a4a415c8e0c38c0da847c356cc61c24df8025560"));
    }

    /// Appendix B expansion and §5.5 KEYMAT against a formulation written out by hand with the
    /// hmac crate directly.
    #[test]
    fn expansion_matches_independent_formulation() {
        use hmac::{Hmac, Mac};
        let mac = |k: &[u8], d: &[u8]| -> Vec<u8> {
            let mut m = Hmac::<md5::Md5>::new_from_slice(k).unwrap();
            m.update(d);
            m.finalize().into_bytes().to_vec()
        };
        let prf = Prf(PrfAlg::HmacMd5);
        let e = hex("00112233445566778899aabbccddeeff");
        let k1 = mac(&e, &[0]);
        let k2 = mac(&e, &k1);
        let want: Vec<u8> = [k1.clone(), k2].concat()[..24].to_vec();
        assert_eq!(*expand_enc_key(prf, &e, 24), want);
        assert_eq!(*expand_enc_key(prf, &e, 16), e);

        let d = hex("0f0e0d0c0b0a09080706050403020100");
        let (ni, nr, g) = (hex("aaaa"), hex("bbbb"), hex("cccc"));
        let seed = |prev: &[u8]| [prev, &g, &[3], &0x1234_5678u32.to_be_bytes(), &ni, &nr].concat();
        let a1 = mac(&d, &seed(&[]));
        let a2 = mac(&d, &seed(&a1));
        let a3 = mac(&d, &seed(&a2));
        let want: Vec<u8> = [a1, a2, a3].concat()[..36].to_vec();
        assert_eq!(
            *qm_keymat(prf, &d, Some(&g), 3, 0x1234_5678, &ni, &nr, 36),
            want
        );
    }

    #[test]
    fn ivs() {
        let prf = Prf(PrfAlg::HmacSha1);
        let iv = phase1_iv(prf, b"gxi", b"gxr", 16);
        assert_eq!(iv, prf.hash(&[b"gxigxr"])[..16]);
        let iv2 = phase2_iv(prf, &iv, 0x0102_0304, 8);
        assert_eq!(iv2, prf.hash(&[&iv, &[1, 2, 3, 4]])[..8]);
    }
}
