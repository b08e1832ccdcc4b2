//! The keys and IVs the engine used, recomputed in the test with an independent formulation
//! (the hmac/sha1 crates and OpenSSL's AES directly, RFC 2409 written out by hand), from what
//! crossed the wire plus the PSK and g^xy. And the corpus's ACVP vectors.

use super::harness::*;
use ipc::sa::Direction;

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

fn aes128_cbc_decrypt(key: &[u8], iv: &[u8], ct: &[u8]) -> Vec<u8> {
    let mut c = openssl::symm::Crypter::new(
        openssl::symm::Cipher::aes_128_cbc(),
        openssl::symm::Mode::Decrypt,
        key,
        Some(iv),
    )
    .unwrap();
    c.pad(false);
    let mut out = vec![0u8; ct.len() + 16];
    let n = c.update(ct, &mut out).unwrap();
    let m = c.finalize(&mut out[n..]).unwrap();
    out.truncate(n + m);
    out
}

/// Walk an ISAKMP payload chain by hand: (type, whole payload bytes).
fn chain(first: u8, mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = first;
    while next != 0 {
        let len = u16::from_be_bytes([b[2], b[3]]) as usize;
        out.push((next, b[..len].to_vec()));
        next = b[0];
        b = &b[len..];
    }
    out
}

fn body(p: &[u8]) -> &[u8] {
    &p[4..]
}

fn find(ps: &[(u8, Vec<u8>)], t: u8) -> Vec<u8> {
    ps.iter().find(|(x, _)| *x == t).unwrap().1.clone()
}

#[test]
fn psk_main_and_quick_mode_recomputed_independently() {
    let (w, e) = west_east();
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p.up("west-east");
    let wire: Vec<Vec<u8>> = p.wire.iter().map(|x| x.bytes.clone()).collect();
    assert_eq!(wire.len(), 9, "MM 6 + QM 3");
    let cky_i = &wire[0][0..8];
    let cky_r = &wire[1][8..16];
    let plain = |m: &[u8]| chain(m[16], &m[28..]);
    let sai_b = body(&find(&plain(&wire[0]), 1)).to_vec();
    let (g_xi, ni) = (
        body(&find(&plain(&wire[2]), 4)).to_vec(),
        body(&find(&plain(&wire[2]), 10)).to_vec(),
    );
    let (g_xr, nr) = (
        body(&find(&plain(&wire[3]), 4)).to_vec(),
        body(&find(&plain(&wire[3]), 10)).to_vec(),
    );
    let gxy = p.a.eng.ikes.get(&1).unwrap().gxy.to_vec();
    assert_eq!(gxy, p.b.eng.ikes.get(&1).unwrap().gxy.to_vec());
    assert_eq!(gxy.len(), 256);

    // RFC 2409 §5 / Appendix B by hand.
    let skeyid = hmac_sha1(b"secret", &[&ni, &nr]);
    let d = hmac_sha1(&skeyid, &[&gxy, cky_i, cky_r, &[0]]);
    let a = hmac_sha1(&skeyid, &[&d, &gxy, cky_i, cky_r, &[1]]);
    let e = hmac_sha1(&skeyid, &[&a, &gxy, cky_i, cky_r, &[2]]);
    let key = &e[..16];
    let iv0 = &sha1(&[&g_xi, &g_xr])[..16];

    // MI3: ID @west and HASH_I.
    let mi3 = &wire[4];
    assert_eq!(mi3[19] & 1, 1, "E flag");
    let pt = aes128_cbc_decrypt(key, iv0, &mi3[28..]);
    let ps = chain(mi3[16], &pt);
    let idii = find(&ps, 5);
    assert_eq!(body(&idii), &[2, 0, 0, 0, b'w', b'e', b's', b't']);
    let hash_i = hmac_sha1(&skeyid, &[&g_xi, &g_xr, cky_i, cky_r, &sai_b, body(&idii)]);
    assert_eq!(body(&find(&ps, 8)), hash_i.as_slice());
    // MR3 with IV = last block of MI3.
    let mr3 = &wire[5];
    let iv1 = &mi3[mi3.len() - 16..];
    let ps = chain(mr3[16], &aes128_cbc_decrypt(key, iv1, &mr3[28..]));
    let idir = find(&ps, 5);
    let hash_r = hmac_sha1(&skeyid, &[&g_xr, &g_xi, cky_r, cky_i, &sai_b, body(&idir)]);
    assert_eq!(body(&find(&ps, 8)), hash_r.as_slice());

    // QI1: IV = hash(last phase-1 block | M-ID); HASH(1) over the rest.
    let qi1 = &wire[6];
    let msgid = &qi1[20..24];
    let p1_last = &mr3[mr3.len() - 16..];
    let iv_q = &sha1(&[p1_last, msgid])[..16];
    let pt = aes128_cbc_decrypt(key, iv_q, &qi1[28..]);
    let ps = chain(qi1[16], &pt);
    assert_eq!(ps[0].0, 8);
    let rest: Vec<u8> = ps[1..].iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(body(&ps[0].1), hmac_sha1(&a, &[msgid, &rest]).as_slice());
    let ni2 = body(&find(&ps, 10)).to_vec();
    let ke_i = body(&find(&ps, 4)).to_vec();
    // QR1 chained from QI1's last block.
    let qr1 = &wire[7];
    let pt = aes128_cbc_decrypt(key, &qi1[qi1.len() - 16..], &qr1[28..]);
    let ps = chain(qr1[16], &pt);
    let rest: Vec<u8> = ps[1..].iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(
        body(&ps[0].1),
        hmac_sha1(&a, &[msgid, &ni2, &rest]).as_slice()
    );
    let nr2 = body(&find(&ps, 10)).to_vec();
    let sa_r = find(&ps, 1);
    // The responder's SPI sits in its proposal: SA body = DOI(4) situation(4), proposal header(4),
    // number, protocol, SPI size, count, then the SPI.
    let spi_r = u32::from_be_bytes(body(&sa_r)[8 + 8..8 + 12].try_into().unwrap());
    // QI2's HASH(3).
    let qi2 = &wire[8];
    let pt = aes128_cbc_decrypt(key, &qr1[qr1.len() - 16..], &qi2[28..]);
    let ps = chain(qi2[16], &pt);
    assert_eq!(
        body(&ps[0].1),
        hmac_sha1(&a, &[&[0], msgid, &ni2, &nr2]).as_slice()
    );

    // KEYMAT for A's outbound SA (the responder's SPI), PFS: g(qm)^xy from the engine.
    let out = newest_sa(p.a.last_install("west-east").unwrap(), Direction::Out);
    assert_eq!(out.spi, spi_r);
    let child = p.a.eng.children.values().next().unwrap();
    let dh = child.dh.as_ref().unwrap();
    let ke_r_peer = {
        let ps = chain(
            qr1[16],
            &aes128_cbc_decrypt(key, &qi1[qi1.len() - 16..], &qr1[28..]),
        );
        body(&find(&ps, 4)).to_vec()
    };
    assert_eq!(dh.public(), ke_i.as_slice());
    let gqm = dh.shared(&ke_r_peer).unwrap();
    let seed = |prev: &[u8]| [prev, &gqm[..], &[3u8], &spi_r.to_be_bytes(), &ni2, &nr2].concat();
    let k1 = hmac_sha1(&d, &[&seed(&[])]);
    let k2 = hmac_sha1(&d, &[&seed(&k1)]);
    let km = [k1, k2].concat();
    assert_eq!(out.enc_key.expose(), &km[..16]);
    assert_eq!(out.auth_key.expose(), &km[16..36]);
}

/// Libreswan's ACVP IKEv1 KDF vectors from the shared corpus, when present.
#[test]
fn corpus_acvp_ikev1_vectors() {
    use crate::crypto::prf::Prf;
    use crate::crypto::v1_keymat::{derive_phase1, skeyid_psk, skeyid_sig};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/vectors/libreswan-acvp-ike-kdf.json");
    let path = std::env::var("FERROSWAN_CORPUS")
        .map(|c| std::path::Path::new(&c).join("vectors/libreswan-acvp-ike-kdf.json"))
        .unwrap_or(path);
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("{} not present; skipping", path.display());
        return;
    };
    // The file is small and regular: pick fields by name inside each test object.
    let field = |obj: &str, name: &str| -> Vec<u8> {
        let key = format!("\"{name}\": \"");
        let at = obj.find(&key).unwrap() + key.len();
        let end = obj[at..].find('"').unwrap();
        let h = &obj[at..at + end];
        (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    };
    let mut checked = 0;
    for obj in text.split("\"kind\": ").skip(1) {
        let psk = obj.starts_with("\"ikev1_psk\"");
        if !psk && !obj.starts_with("\"ikev1_dsa\"") {
            continue;
        }
        assert!(obj.contains("\"hashAlg\": \"SHA-1\""));
        let prf = Prf(ipc::ike::PrfAlg::HmacSha1);
        let (gxy, ni, nr) = (field(obj, "gxy"), field(obj, "nInit"), field(obj, "nResp"));
        let ci: [u8; 8] = field(obj, "ckyInit").try_into().unwrap();
        let cr: [u8; 8] = field(obj, "ckyResp").try_into().unwrap();
        let skeyid = if psk {
            skeyid_psk(prf, &field(obj, "preSharedKey"), &ni, &nr)
        } else {
            skeyid_sig(prf, &ni, &nr, &gxy)
        };
        let k = derive_phase1(prf, &skeyid, &gxy, &ci, &cr, 16);
        assert_eq!(*skeyid, field(obj, "sKeyId"));
        assert_eq!(*k.skeyid_d, field(obj, "sKeyIdD"));
        assert_eq!(*k.skeyid_a, field(obj, "sKeyIdA"));
        assert_eq!(*k.skeyid_e, field(obj, "sKeyIdE"));
        checked += 1;
    }
    assert_eq!(checked, 2);
}
