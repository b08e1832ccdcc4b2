//! keyd's typed IKEv1 operations without sockets: SKEYID from a PSK chosen by the ID pair, RSA
//! signatures of HASH_I/HASH_R (e=65537 keys made by keyfmt, e=3 FreeS/WAN keys from the corpus)
//! verified with the public half, and every refusal a compromised ikerd could run into.
//!
//! Independent computations use OpenSSL's HMAC and public-key operation; keyd uses RustCrypto's
//! HMAC and OpenSSL's private-key operation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipc::ike::{Endpoint, IkeId, PrfAlg};
use ipc::keyd::{KeydContext, KeydResponse, V1PskSkeyid, V1RsaSign, MAX_DH_PUBLIC};
use ipc::peer::PeerCred;
use ipc::sa::SecretBytes;
use ipc::server::Peer;
use ipc::Role;
use keyd::ops::Ops;
use keyd::secrets::parse_secrets_bytes;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Signer;

const ALL_PRFS: [PrfAlg; 5] = [
    PrfAlg::HmacMd5,
    PrfAlg::HmacSha1,
    PrfAlg::HmacSha2_256,
    PrfAlg::HmacSha2_384,
    PrfAlg::HmacSha2_512,
];

fn peer(role: Role) -> Peer {
    Peer {
        role,
        cred: PeerCred {
            pid: 4242,
            uid: 0,
            gid: 0,
        },
    }
}

fn ctx(conn: &str, peer_ip: &str) -> KeydContext {
    KeydContext {
        conn: conn.into(),
        serial: 1,
        peer: Endpoint::new(peer_ip.parse().unwrap(), 500),
    }
}

fn fqdn(name: &str) -> IkeId {
    IkeId::Fqdn(name.into())
}

fn ip(text: &str) -> IkeId {
    IkeId::Ip(text.parse::<IpAddr>().unwrap())
}

fn ops_from(text: &str) -> Ops {
    Ops::new(parse_secrets_bytes(Path::new("/test/ipsec.secrets"), text.as_bytes()).unwrap())
}

fn md(alg: PrfAlg) -> MessageDigest {
    match alg {
        PrfAlg::HmacMd5 => MessageDigest::md5(),
        PrfAlg::HmacSha1 => MessageDigest::sha1(),
        PrfAlg::HmacSha2_256 => MessageDigest::sha256(),
        PrfAlg::HmacSha2_384 => MessageDigest::sha384(),
        PrfAlg::HmacSha2_512 => MessageDigest::sha512(),
    }
}

fn hmac(alg: PrfAlg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let pkey = PKey::hmac(key).unwrap();
    let mut signer = Signer::new(md(alg), &pkey).unwrap();
    signer.update(&parts.concat()).unwrap();
    signer.sign_to_vec().unwrap()
}

fn psk_request(local: IkeId, remote: IkeId, prf: PrfAlg) -> V1PskSkeyid {
    V1PskSkeyid {
        ctx: ctx("west-east", "192.0.2.2"),
        local_id: local,
        remote_id: remote,
        prf,
        ni: (0..16).collect(),
        nr: (100..132).collect(),
    }
}

const PSK_SECRETS: &str = r#"
@west @east : PSK "west-east secret"
@east %any : PSK "road warrior secret"
192.0.2.1 192.0.2.2 : PSK "address pair secret"
2001:db8::1 %any6 : PSK "v6 secret"
"#;

fn skeyid_of(resp: KeydResponse) -> Vec<u8> {
    match resp {
        KeydResponse::Skeyid(s) => s.expose().to_vec(),
        other => panic!("expected Skeyid, got {other:?}"),
    }
}

#[test]
fn psk_skeyid_for_each_prf_matches_an_independent_hmac() {
    let ops = ops_from(PSK_SECRETS);
    for prf in ALL_PRFS {
        let req = psk_request(fqdn("west"), fqdn("east"), prf);
        let got = skeyid_of(ops.v1_psk_skeyid(&peer(Role::Ikerd), &req));
        assert_eq!(got, hmac(prf, b"west-east secret", &[&req.ni, &req.nr]));
        // The same pair from the other end's point of view: same PSK.
        let req = psk_request(fqdn("east"), fqdn("west"), prf);
        let got = skeyid_of(ops.v1_psk_skeyid(&peer(Role::Ikerd), &req));
        assert_eq!(got, hmac(prf, b"west-east secret", &[&req.ni, &req.nr]));
    }
}

#[test]
fn psk_lookup_follows_the_secrets_rules() {
    let ops = ops_from(PSK_SECRETS);
    let cases: [(IkeId, IkeId, &str, &[u8]); 5] = [
        // A road warrior whose ID is not known yet (%any): the `@east %any` entry.
        (
            fqdn("east"),
            IkeId::Any,
            "198.51.100.7",
            b"road warrior secret",
        ),
        // A named peer that only `%any` covers.
        (
            fqdn("east"),
            fqdn("road"),
            "198.51.100.7",
            b"road warrior secret",
        ),
        // Address IDs (the default when no leftid=/rightid=).
        (
            ip("192.0.2.1"),
            ip("192.0.2.2"),
            "192.0.2.2",
            b"address pair secret",
        ),
        (
            ip("192.0.2.2"),
            ip("192.0.2.1"),
            "192.0.2.1",
            b"address pair secret",
        ),
        // IPv6: %any6 covers a v6 peer, and `%any` from a v6 peer is %any6.
        (ip("2001:db8::1"), IkeId::Any, "2001:db8::9", b"v6 secret"),
    ];
    for (local, remote, peer_ip, psk) in cases {
        let mut req = psk_request(local.clone(), remote.clone(), PrfAlg::HmacSha1);
        req.ctx = ctx("c", peer_ip);
        let got = skeyid_of(ops.v1_psk_skeyid(&peer(Role::Ikerd), &req));
        assert_eq!(
            got,
            hmac(PrfAlg::HmacSha1, psk, &[&req.ni, &req.nr]),
            "{local}/{remote}"
        );
    }
    // An entry with %any covers a pair it names neither of, below named matches (as Libreswan
    // ranks `match_any`): here `@east %any`, ahead of a default entry.
    let with_default = ops_from(&format!("{PSK_SECRETS}\n: PSK \"default secret\"\n"));
    let req = psk_request(fqdn("north"), fqdn("south"), PrfAlg::HmacSha1);
    let got = skeyid_of(with_default.v1_psk_skeyid(&peer(Role::Ikerd), &req));
    assert_eq!(
        got,
        hmac(
            PrfAlg::HmacSha1,
            b"road warrior secret",
            &[&req.ni, &req.nr]
        )
    );
    // Without wildcard entries, the default entry serves any pair.
    let only_default =
        ops_from("@west @east : PSK \"west-east secret\"\n: PSK \"default secret\"\n");
    let got = skeyid_of(only_default.v1_psk_skeyid(&peer(Role::Ikerd), &req));
    assert_eq!(
        got,
        hmac(PrfAlg::HmacSha1, b"default secret", &[&req.ni, &req.nr])
    );
}

#[test]
fn psk_refusals() {
    let ikerd = peer(Role::Ikerd);
    // No PSK for the pair: Denied, naming the pair. (`@east` alone serves only local ID @east.)
    let named = ops_from("@west @east : PSK \"west-east secret\"\n@east : PSK \"east\"\n");
    let req = psk_request(fqdn("north"), fqdn("south"), PrfAlg::HmacSha1);
    assert_eq!(
        named.v1_psk_skeyid(&ikerd, &req),
        KeydResponse::Denied("no PSK for @north/@south".into())
    );
    let req = psk_request(fqdn("west"), fqdn("north"), PrfAlg::HmacSha1);
    assert_eq!(
        named.v1_psk_skeyid(&ikerd, &req),
        KeydResponse::Denied("no PSK for @west/@north".into())
    );
    // No secrets at all.
    assert_eq!(
        Ops::default().v1_psk_skeyid(&ikerd, &req),
        KeydResponse::Denied("no PSK for @west/@north".into())
    );
    let ops = ops_from(PSK_SECRETS);
    // %any from an IPv4 peer does not reach the %any6 entry.
    let mut req = psk_request(ip("2001:db8::1"), IkeId::Any, PrfAlg::HmacSha1);
    req.ctx = ctx("c", "192.0.2.9");
    assert_eq!(
        ops.v1_psk_skeyid(&ikerd, &req),
        KeydResponse::Denied("no PSK for 2001:db8::1/%any".into())
    );
    // confd (or any role but ikerd) may not ask, even for a pair keyd holds.
    let req = psk_request(fqdn("west"), fqdn("east"), PrfAlg::HmacSha1);
    for role in [Role::Confd, Role::Ctl, Role::Fwd, Role::Keyd] {
        match ops.v1_psk_skeyid(&peer(role), &req) {
            KeydResponse::Denied(why) => assert!(why.contains("only ikerd"), "{why}"),
            other => panic!("{role}: {other:?}"),
        }
    }
    // Out-of-bounds fields: Error naming the field, no panic.
    let bad = |f: &dyn Fn(&mut V1PskSkeyid), what: &str| {
        let mut req = psk_request(fqdn("west"), fqdn("east"), PrfAlg::HmacSha1);
        f(&mut req);
        match ops.v1_psk_skeyid(&ikerd, &req) {
            KeydResponse::Error(why) => assert!(why.contains(what), "{what}: {why}"),
            other => panic!("{what}: {other:?}"),
        }
    };
    bad(&|r| r.ni = vec![0; 7], "Ni_b is 7 bytes; must be 8 to 256");
    bad(
        &|r| r.nr = vec![0; 257],
        "Nr_b is 257 bytes; must be 8 to 256",
    );
    bad(&|r| r.ni = Vec::new(), "Ni_b is 0 bytes");
    bad(&|r| r.nr = vec![0; 60_000], "Nr_b is 60000 bytes");
    bad(&|r| r.ctx.conn = "x".repeat(10_000), "connection name");
    bad(&|r| r.ctx.conn = String::new(), "connection name");
    bad(&|r| r.local_id = IkeId::Any, "local ID may not be %any");
    bad(
        &|r| r.remote_id = IkeId::Fqdn("e".repeat(5000)),
        "remote ID",
    );
    bad(&|r| r.local_id = IkeId::Fqdn(String::new()), "local ID");
}

// ---------------------------------------------------------------- RSA

fn corpus_dir() -> PathBuf {
    match std::env::var_os("FERROSWAN_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    }
}

/// A FreeS/WAN-era RSA block with public exponent 3 (2192 bits), as `ipsec rsasigkey` wrote it.
fn corpus_e3_block() -> String {
    let path =
        corpus_dir().join("libreswan-secrets/hist-9426cddf__baseconfigs__road__etc__road.key");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set FERROSWAN_CORPUS)", path.display()))
}

struct RsaFixture {
    ops: Ops,
    /// (local ID, private key) in file order.
    keys: Vec<(IkeId, keyfmt::RsaPrivateKey)>,
}

/// `@west` with a fresh 2048-bit e=65537 key, `@road` with the corpus e=3 key.
fn rsa_fixture() -> RsaFixture {
    let west = keyfmt::generate(2048).unwrap();
    let west_block = keyfmt::render_rsa_block(&west, "west", "Mon Nov 23 10:56:42 2026");
    let road_block = corpus_e3_block();
    let text = format!(
        "@west @west.example : PSK \"not this one\"\n@west {}\n@road {}\n",
        west_block.as_str(),
        road_block
    );
    let ops = ops_from(&text);
    assert_eq!(ops.secrets().rsa_count(), 2);
    assert_eq!(ops.unusable_keys(), 0);
    let road = ops.secrets().rsa_entries()[1].key.clone();
    assert_eq!(road.public_key().exponent(), [3]);
    RsaFixture {
        ops,
        keys: vec![(fqdn("west"), west), (fqdn("road"), road)],
    }
}

/// An ID payload body for an FQDN: type 2, protocol 17, port 500.
fn fqdn_body(name: &str) -> Vec<u8> {
    [&[2u8, 17, 1, 244][..], name.as_bytes()].concat()
}

fn sign_request(
    local: &IkeId,
    local_pubkey: Option<String>,
    prf: PrfAlg,
    initiator: bool,
) -> V1RsaSign {
    let name = match local {
        IkeId::Fqdn(n) => n.clone(),
        _ => unreachable!(),
    };
    V1RsaSign {
        ctx: ctx("west-east", "192.0.2.2"),
        local_id: local.clone(),
        local_pubkey,
        prf,
        skeyid: SecretBytes::new((0..prf_len(prf) as u8).map(|i| i ^ 0x5c).collect()),
        initiator,
        g_xi: (0..=255).collect(),
        g_xr: (0..=255).rev().collect(),
        cky_i: [1, 2, 3, 4, 5, 6, 7, 8],
        cky_r: [9, 10, 11, 12, 13, 14, 15, 16],
        sai_b: [&[0, 0, 0, 1, 0, 0, 0, 1][..], &[0xaa; 44]].concat(),
        id_b: fqdn_body(&name),
    }
}

fn prf_len(prf: PrfAlg) -> usize {
    keyd::ops::prf::output_len(prf)
}

/// HASH_I or HASH_R computed here, independently.
fn expected_hash(req: &V1RsaSign) -> Vec<u8> {
    let k = req.skeyid.expose();
    if req.initiator {
        hmac(
            req.prf,
            k,
            &[
                &req.g_xi, &req.g_xr, &req.cky_i, &req.cky_r, &req.sai_b, &req.id_b,
            ],
        )
    } else {
        hmac(
            req.prf,
            k,
            &[
                &req.g_xr, &req.g_xi, &req.cky_r, &req.cky_i, &req.sai_b, &req.id_b,
            ],
        )
    }
}

/// What the signature decrypts to with the public key (`0s…` text), PKCS#1 type 1 checked by OpenSSL.
fn recover(pubkey: &str, sig: &[u8]) -> Vec<u8> {
    let public = keyfmt::parse_rsasigkey(pubkey).unwrap();
    let rsa = Rsa::from_public_components(
        BigNum::from_slice(public.modulus()).unwrap(),
        BigNum::from_slice(public.exponent()).unwrap(),
    )
    .unwrap();
    assert_eq!(sig.len(), rsa.size() as usize);
    let mut out = vec![0u8; rsa.size() as usize];
    let n = rsa.public_decrypt(sig, &mut out, Padding::PKCS1).unwrap();
    out.truncate(n);
    out
}

#[test]
fn rsa_signatures_verify_with_the_public_half_e65537_and_e3() {
    let fx = rsa_fixture();
    let ikerd = peer(Role::Ikerd);
    for (local, key) in &fx.keys {
        let pubkey = key.public_key().to_rfc3110_base64();
        for by_pubkey in [true, false] {
            for prf in ALL_PRFS {
                for initiator in [true, false] {
                    let req =
                        sign_request(local, by_pubkey.then(|| pubkey.clone()), prf, initiator);
                    let (sig, got_pubkey) = match fx.ops.v1_rsa_sign(&ikerd, &req) {
                        KeydResponse::Signature { sig, pubkey } => (sig, pubkey),
                        other => panic!("{local} {prf:?}: {other:?}"),
                    };
                    assert_eq!(got_pubkey, pubkey, "{local}: signed with its own key");
                    assert_eq!(
                        recover(&got_pubkey, &sig),
                        expected_hash(&req),
                        "{local} {prf:?} initiator={initiator}"
                    );
                }
            }
        }
    }
}

#[test]
fn rsa_key_choice() {
    let fx = rsa_fixture();
    let ikerd = peer(Role::Ikerd);
    let (west, road) = (&fx.keys[0].1, &fx.keys[1].1);
    // By local_pubkey the key is the one whose public half it is, whatever the ID lists: @road's
    // key, for a conn whose local ID is @west (pluto signs with leftrsasigkey's private half).
    let req = sign_request(
        &fqdn("west"),
        Some(road.public_key().to_rfc3110_base64()),
        PrfAlg::HmacSha1,
        true,
    );
    match fx.ops.v1_rsa_sign(&ikerd, &req) {
        KeydResponse::Signature { pubkey, .. } => {
            assert_eq!(pubkey, road.public_key().to_rfc3110_base64())
        }
        other => panic!("{other:?}"),
    }
    // The same key in 0x form names the same key.
    let req = sign_request(
        &fqdn("west"),
        Some(west.public_key().to_rfc3110_hex()),
        PrfAlg::HmacSha1,
        true,
    );
    assert!(matches!(
        fx.ops.v1_rsa_sign(&ikerd, &req),
        KeydResponse::Signature { .. }
    ));
    // FQDN IDs match without regard to case.
    let mut req = sign_request(&fqdn("West"), None, PrfAlg::HmacSha1, true);
    req.id_b = fqdn_body("West");
    match fx.ops.v1_rsa_sign(&ikerd, &req) {
        KeydResponse::Signature { pubkey, .. } => {
            assert_eq!(pubkey, west.public_key().to_rfc3110_base64())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rsa_refusals() {
    let fx = rsa_fixture();
    let ikerd = peer(Role::Ikerd);
    let west = fqdn("west");
    // A public key keyd holds no private half for: Denied, naming conn and ID.
    let stranger = keyfmt::generate(1024).unwrap();
    let req = sign_request(
        &west,
        Some(stranger.public_key().to_rfc3110_base64()),
        PrfAlg::HmacSha1,
        true,
    );
    match fx.ops.v1_rsa_sign(&ikerd, &req) {
        KeydResponse::Denied(why) => {
            assert!(
                why.starts_with("no private key for \"west-east\" local ID @west"),
                "{why}"
            );
            assert!(why.contains(&stranger.public_key().keyid()), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // A local ID with no key (and no key without IDs to fall back on): Denied.
    let mut req = sign_request(&fqdn("north"), None, PrfAlg::HmacSha1, true);
    req.id_b = fqdn_body("north");
    assert_eq!(
        fx.ops.v1_rsa_sign(&ikerd, &req),
        KeydResponse::Denied("no private key for \"west-east\" local ID @north".into())
    );
    // An ID payload that names someone else than the local ID: keyd does not sign it.
    let mut req = sign_request(&west, None, PrfAlg::HmacSha1, true);
    req.id_b = fqdn_body("bank.example");
    match fx.ops.v1_rsa_sign(&ikerd, &req) {
        KeydResponse::Denied(why) => {
            assert!(why.contains("does not carry the local ID @west"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // Not ikerd.
    let req = sign_request(&west, None, PrfAlg::HmacSha1, true);
    for role in [Role::Confd, Role::Ctl, Role::Fwd] {
        match fx.ops.v1_rsa_sign(&peer(role), &req) {
            KeydResponse::Denied(why) => assert!(why.contains("only ikerd"), "{why}"),
            other => panic!("{role}: {other:?}"),
        }
    }
    // Out-of-bounds and malformed fields: Error naming the field.
    let bad = |f: &dyn Fn(&mut V1RsaSign), what: &str| {
        let mut req = sign_request(&west, None, PrfAlg::HmacSha1, true);
        f(&mut req);
        match fx.ops.v1_rsa_sign(&ikerd, &req) {
            KeydResponse::Error(why) => assert!(why.contains(what), "{what}: {why}"),
            other => panic!("{what}: {other:?}"),
        }
    };
    bad(
        &|r| r.g_xi = vec![1; MAX_DH_PUBLIC + 1],
        "g^xi is 1025 bytes",
    );
    bad(&|r| r.g_xr = Vec::new(), "g^xr is 0 bytes");
    bad(
        &|r| r.sai_b = vec![0; 16 * 1024 + 1],
        "SAi_b is 16385 bytes",
    );
    bad(&|r| r.sai_b = vec![0; 3], "SAi_b is 3 bytes");
    bad(
        &|r| r.id_b = [fqdn_body("west"), vec![0; 20_000]].concat(),
        "ID_b is",
    );
    bad(
        &|r| r.skeyid = SecretBytes::new(vec![0; 8]),
        "SKEYID is 8 bytes; must be 16 to 64",
    );
    bad(
        &|r| r.skeyid = SecretBytes::new(vec![0; 65]),
        "SKEYID is 65 bytes",
    );
    bad(
        &|r| r.skeyid = SecretBytes::new(vec![0; 32]),
        "SKEYID is 32 bytes; HMAC-SHA1 gives 20",
    );
    bad(&|r| r.local_pubkey = Some("0sAQ==".into()), "local_pubkey");
    bad(
        &|r| r.local_pubkey = Some("not a key".into()),
        "local_pubkey",
    );
    bad(
        &|r| r.local_pubkey = Some("0s".to_string() + &"A".repeat(9000)),
        "local_pubkey is 9002 bytes",
    );
    bad(&|r| r.local_id = IkeId::Any, "local ID may not be %any");
    bad(&|r| r.ctx.conn = "c".repeat(257), "connection name");
}

// ---------------------------------------------------------------- nothing leaks

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every answer keyd gives, successful or not, serialized as it goes on the wire: the PSK, the
/// private exponent and the primes appear in none of them, nor in `Debug` of what keyd holds.
#[test]
fn no_response_carries_the_psk_or_the_private_key() {
    let fx = rsa_fixture();
    let psk = b"west-east secret";
    let psk_ops = ops_from(PSK_SECRETS);
    let mut responses = Vec::new();
    for role in [Role::Ikerd, Role::Confd] {
        for prf in ALL_PRFS {
            for (l, r) in [("west", "east"), ("east", "west"), ("north", "south")] {
                let req = psk_request(fqdn(l), fqdn(r), prf);
                responses.push(psk_ops.v1_psk_skeyid(&peer(role), &req));
            }
            for (local, key) in &fx.keys {
                for initiator in [true, false] {
                    let pk = Some(key.public_key().to_rfc3110_base64());
                    responses.push(
                        fx.ops
                            .v1_rsa_sign(&peer(role), &sign_request(local, pk, prf, initiator)),
                    );
                    responses.push(
                        fx.ops
                            .v1_rsa_sign(&peer(role), &sign_request(local, None, prf, initiator)),
                    );
                }
            }
        }
    }
    assert!(responses
        .iter()
        .any(|r| matches!(r, KeydResponse::Skeyid(_))));
    assert!(responses
        .iter()
        .any(|r| matches!(r, KeydResponse::Signature { .. })));
    assert!(responses
        .iter()
        .any(|r| matches!(r, KeydResponse::Denied(_))));
    let mut secrets: Vec<Vec<u8>> = vec![psk.to_vec()];
    for (_, key) in &fx.keys {
        for n in [
            key.private_exponent(),
            key.prime1(),
            key.prime2(),
            key.exponent1(),
            key.exponent2(),
            key.coefficient(),
        ] {
            let bytes = n.expose_bytes();
            secrets.push(bytes.to_vec());
            // Any 16-byte stretch of it would already be too much.
            secrets.push(bytes[bytes.len() / 2..bytes.len() / 2 + 16].to_vec());
            // And its text forms.
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            secrets.push(hex.as_bytes()[..32].to_vec());
        }
    }
    for resp in &responses {
        let wire = ipc::frame::encode(resp, 1 << 20).unwrap();
        let debug = format!("{resp:?}");
        for s in &secrets {
            assert!(!contains(&wire, s), "a secret in the serialized {debug}");
            assert!(!contains(debug.as_bytes(), s), "a secret in {debug}");
        }
        assert!(!contains(debug.as_bytes(), b"west-east secret"));
    }
    // Debug of the whole store shows no secret either.
    for text in [format!("{:?}", fx.ops), format!("{psk_ops:?}")] {
        for s in &secrets {
            assert!(!contains(text.as_bytes(), s), "a secret in Debug of Ops");
        }
    }
}
