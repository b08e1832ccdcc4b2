//! Known-answer tests on the suites' primitives, through the same internal
//! entry points the ESP framing uses. Data: Wycheproof and RFC 4231 JSON from
//! the shared corpus (skipped with a note if the corpus is absent), and
//! draft-mcgrew-gcm-test-01 ESP cases hard-coded below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use super::suite::{EncAlg, GcmIcv, IntegAlg, Suite, SuiteSpec};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn corpus() -> Option<PathBuf> {
    let p = std::env::var_os("FERROSWAN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    if p.join("vectors").is_dir() {
        Some(p)
    } else {
        eprintln!("corpus not found at {} (set FERROSWAN_CORPUS): skipping", p.display());
        None
    }
}

fn json(name: &str) -> Option<serde_json::Value> {
    let p = corpus()?.join("vectors").join(name);
    Some(serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
}

fn gcm_suite(key: &[u8], salt: &[u8], icv: GcmIcv) -> Option<Suite> {
    let enc = match key.len() {
        16 => EncAlg::AesGcm128(icv),
        32 => EncAlg::AesGcm256(icv),
        _ => return None,
    };
    let mut k = key.to_vec();
    k.extend_from_slice(salt);
    Some(Suite::new(SuiteSpec::new(enc, IntegAlg::None).unwrap(), &k, &[]).unwrap())
}

/// draft-mcgrew-gcm-test-01 §5 ESP cases (AES-128 with ESN AAD, AES-256 with
/// 8-byte AAD). Case with a 192-bit key skipped: AES-192-GCM is not a suite
/// here. The 12- and 8-byte ICVs are the tag's leftmost bytes (RFC 4106 §6),
/// so the same vectors check all three GCM implementations.
#[test]
fn gcm_esp_draft_mcgrew_vectors() {
    let cases = [
        (
            "4c80cdefbb5d10da906ac73c3613a634",
            "2e443b68",
            "4956ed7e3b244cfe",
            "000043218765432100000000",
            "45000048699a000080114db7c0a80102c0a801010a9bf15638d301000001000000000000045f736970045f756470037369700963796265726369747902646b000021000101020201",
            "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce61bc17d768fd9732",
            "459018148f6cbe722fd04796562dfdb4",
        ),
        (
            "abbccddef00112233445566778899aababbccddef00112233445566778899aab",
            "11223344",
            "0102030405060708",
            "4a2cbfe300000002",
            "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee0000000007002400020bf0000020405b40101040201020201",
            "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c49",
            "15956c96",
        ),
    ];
    for (key, salt, iv, aad, pt, ct, tag) in cases {
        let (key, salt, iv, aad, pt, ct) = (hex(key), hex(salt), hex(iv), hex(aad), hex(pt), hex(ct));
        // the second case's ciphertext string holds ct || first tag bytes
        let (ct, tag) = if tag.len() == 8 {
            let n = pt.len();
            let mut t = ct[n..].to_vec();
            t.extend_from_slice(&hex(tag));
            (ct[..n].to_vec(), t)
        } else {
            (ct, hex(tag))
        };
        for icv in [GcmIcv::B16, GcmIcv::B12, GcmIcv::B8] {
            let s = gcm_suite(&key, &salt, icv).unwrap();
            let mut body = pt.clone();
            let mut out = vec![0u8; icv.octets()];
            s.aead_seal_raw(&iv, &aad, &mut body, &mut out).unwrap();
            assert_eq!(body, ct, "{icv:?}");
            assert_eq!(out, tag[..icv.octets()], "{icv:?}");
            s.aead_open_raw(&iv, &aad, &mut body, &out).unwrap();
            assert_eq!(body, pt);
            let mut bad = ct.clone();
            bad[3] ^= 1;
            assert!(s.aead_open_raw(&iv, &aad, &mut bad, &out).is_err());
        }
    }
}

/// Wycheproof AES-GCM: groups with a 96-bit IV and a 128/256-bit key (ESP's
/// nonce is salt(4)||IV(8) = 12 bytes; other IV sizes and AES-192 are not
/// used by ESP and are skipped). Each vector runs through ring (16-byte ICV),
/// aes-gcm (12) and the composed GCM-8, comparing tag prefixes.
#[test]
fn wycheproof_aes_gcm() {
    let Some(v) = json("wycheproof/aes_gcm_test.json") else { return };
    let mut ran = 0;
    for g in v["testGroups"].as_array().unwrap() {
        if g["ivSize"] != 96 || g["tagSize"] != 128 {
            continue;
        }
        for t in g["tests"].as_array().unwrap() {
            let key = hex(t["key"].as_str().unwrap());
            let iv = hex(t["iv"].as_str().unwrap());
            let aad = hex(t["aad"].as_str().unwrap());
            let msg = hex(t["msg"].as_str().unwrap());
            let ct = hex(t["ct"].as_str().unwrap());
            let tag = hex(t["tag"].as_str().unwrap());
            let valid = t["result"] == "valid";
            for icv in [GcmIcv::B16, GcmIcv::B12, GcmIcv::B8] {
                let Some(s) = gcm_suite(&key, &iv[..4], icv) else { continue };
                let n = icv.octets();
                let mut body = msg.clone();
                let mut out = vec![0u8; n];
                s.aead_seal_raw(&iv[4..], &aad, &mut body, &mut out).unwrap();
                let matches = body == ct && out == tag[..n];
                if valid {
                    assert!(matches, "tcId {} {icv:?}", t["tcId"]);
                }
                let mut c = ct.clone();
                let opened = s.aead_open_raw(&iv[4..], &aad, &mut c, &tag[..n]).is_ok();
                // a modified tag must be caught whenever the modification lies
                // in the part of the tag the ICV carries
                assert_eq!(opened, out == tag[..n] && body == ct, "tcId {} {icv:?}", t["tcId"]);
                if opened {
                    assert_eq!(c, msg);
                }
                ran += 1;
            }
        }
    }
    assert!(ran > 100, "ran {ran}");
}

/// Wycheproof AES-CBC-PKCS5: valid vectors only, with the PKCS#7 padding
/// added/removed by the test (ESP pads on its own, RFC 4303 §2.4, so the
/// invalid-padding vectors say nothing about the ESP path and are skipped).
#[test]
fn wycheproof_aes_cbc() {
    let Some(v) = json("wycheproof/aes_cbc_pkcs5_test.json") else { return };
    let mut ran = 0;
    for g in v["testGroups"].as_array().unwrap() {
        let enc = match g["keySize"].as_u64().unwrap() {
            128 => EncAlg::AesCbc128,
            192 => EncAlg::AesCbc192,
            256 => EncAlg::AesCbc256,
            _ => continue,
        };
        let spec = SuiteSpec::new(enc, IntegAlg::None).unwrap();
        for t in g["tests"].as_array().unwrap() {
            if t["result"] != "valid" {
                continue;
            }
            let s = Suite::new(spec, &hex(t["key"].as_str().unwrap()), &[]).unwrap();
            let iv = hex(t["iv"].as_str().unwrap());
            let mut m = hex(t["msg"].as_str().unwrap());
            let ct = hex(t["ct"].as_str().unwrap());
            let pad = 16 - m.len() % 16;
            m.extend(std::iter::repeat_n(pad as u8, pad));
            let plain = m.clone();
            s.cipher_encrypt_raw(&iv, &mut m).unwrap();
            assert_eq!(m, ct, "tcId {}", t["tcId"]);
            s.cipher_decrypt_raw(&iv, &mut m).unwrap();
            assert_eq!(m, plain);
            ran += 1;
        }
    }
    assert!(ran > 50, "ran {ran}");
}

fn hmac_check(integ: IntegAlg, key: &[u8], data: &[u8], want: &[u8]) -> bool {
    let s = Suite::mac_only_any_key(integ, key).unwrap();
    let full = s.mac_compute(data, None).unwrap();
    full[..want.len()] == *want
}

/// RFC 4231 HMAC-SHA-256/512 (JSON in the corpus; case 5's outputs are
/// truncated to 128 bits there, compared as prefixes).
#[test]
fn rfc4231_hmac_sha2() {
    let Some(v) = json("aldenml-ecc__rfc4231_hmac_sha2.json") else { return };
    for t in v["vectors"].as_array().unwrap() {
        let key = hex(t["key"].as_str().unwrap());
        let data = hex(t["data"].as_str().unwrap());
        assert!(hmac_check(IntegAlg::HmacSha256_128, &key, &data, &hex(t["sha256"].as_str().unwrap())));
        assert!(hmac_check(IntegAlg::HmacSha512_256, &key, &data, &hex(t["sha512"].as_str().unwrap())));
    }
}

/// Wycheproof HMAC-SHA1/256/384/512 (all key sizes; tags compared as prefixes,
/// which is what truncation to 96..256 bits does).
#[test]
fn wycheproof_hmac() {
    for (file, integ) in [
        ("hmac_sha1_test.json", IntegAlg::HmacSha1_96),
        ("hmac_sha256_test.json", IntegAlg::HmacSha256_128),
        ("hmac_sha384_test.json", IntegAlg::HmacSha384_192),
        ("hmac_sha512_test.json", IntegAlg::HmacSha512_256),
    ] {
        let Some(v) = json(&format!("wycheproof/{file}")) else { return };
        let mut ran = 0;
        for g in v["testGroups"].as_array().unwrap() {
            for t in g["tests"].as_array().unwrap() {
                let ok = hmac_check(
                    integ,
                    &hex(t["key"].as_str().unwrap()),
                    &hex(t["msg"].as_str().unwrap()),
                    &hex(t["tag"].as_str().unwrap()),
                );
                assert_eq!(ok, t["result"] == "valid", "{file} tcId {}", t["tcId"]);
                ran += 1;
            }
        }
        assert!(ran > 50, "{file}: ran {ran}");
    }
}

/// GCM-8 (composed) and GCM-12 (aes-gcm) agree with ring's GCM-16 on random
/// inputs of many lengths, ESN and not.
#[test]
fn gcm_implementations_agree() {
    for klen in [16usize, 32] {
        let key: Vec<u8> = (0..klen as u8).collect();
        let salt = [9u8, 8, 7, 6];
        let s16 = gcm_suite(&key, &salt, GcmIcv::B16).unwrap();
        let s12 = gcm_suite(&key, &salt, GcmIcv::B12).unwrap();
        let s8 = gcm_suite(&key, &salt, GcmIcv::B8).unwrap();
        for len in [0usize, 1, 15, 16, 17, 63, 64, 100, 1400] {
            for aad_len in [8usize, 12] {
                let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let aad: Vec<u8> = (0..aad_len as u8).collect();
                let iv = (len as u64).to_be_bytes();
                let (mut a, mut b, mut c) = (pt.clone(), pt.clone(), pt.clone());
                let (mut ta, mut tb, mut tc) = ([0u8; 16], [0u8; 12], [0u8; 8]);
                s16.aead_seal_raw(&iv, &aad, &mut a, &mut ta).unwrap();
                s12.aead_seal_raw(&iv, &aad, &mut b, &mut tb).unwrap();
                s8.aead_seal_raw(&iv, &aad, &mut c, &mut tc).unwrap();
                assert_eq!(a, b);
                assert_eq!(a, c);
                assert_eq!(ta[..12], tb);
                assert_eq!(ta[..8], tc);
            }
        }
    }
}
