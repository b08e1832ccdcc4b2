//! IKEv1 Main Mode computations that need a long-term secret (RFC 2409 §5), and the checks on the
//! values ikerd sends for them. Pure functions: no I/O, no logging.
//!
//! * pre-shared keys: `SKEYID = prf(pre-shared-key, Ni_b | Nr_b)`
//! * signatures: `HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)`,
//!   `HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)`, then signed.

use super::prf;
use crate::secrets::IdSelector;
use ipc::ike::{IkeId, PrfAlg};
use ipc::keyd::{MAX_DH_PUBLIC, MAX_NONCE, MAX_PAYLOAD_BODY};
use std::net::IpAddr;
use zeroize::Zeroizing;

/// RFC 2409 §5: nonces are 8 to 256 bytes.
pub const MIN_NONCE: usize = 8;
/// SKEYID is a prf output: 16 (HMAC-MD5) to 64 (HMAC-SHA2-512) bytes.
pub const MIN_SKEYID: usize = 16;
pub const MAX_SKEYID: usize = 64;
/// An SA payload body holds at least the DOI and the situation (RFC 2408 §3.4).
pub const MIN_SA_BODY: usize = 8;
/// An ID payload body holds at least the ID type, protocol and port (RFC 2407 §4.6.2).
pub const MIN_ID_BODY: usize = 4;
/// Longest connection name keyd accepts (names are logged).
pub const MAX_CONN_NAME: usize = 256;
/// Longest ID (text or key-id bytes) keyd accepts.
pub const MAX_ID_LEN: usize = 1024;
/// Longest `local_pubkey` text (`0s…` of a 16384-bit key is about 2.8 kB).
pub const MAX_PUBKEY_TEXT: usize = 8192;

/// ID types of RFC 2407 §4.6.2.1.
const ID_IPV4_ADDR: u8 = 1;
const ID_FQDN: u8 = 2;
const ID_USER_FQDN: u8 = 3;
const ID_IPV6_ADDR: u8 = 5;
const ID_DER_ASN1_DN: u8 = 9;
const ID_KEY_ID: u8 = 11;

/// `SKEYID = prf(psk, Ni_b | Nr_b)`.
pub fn skeyid_psk(alg: PrfAlg, psk: &[u8], ni: &[u8], nr: &[u8]) -> Zeroizing<Vec<u8>> {
    prf::prf(alg, psk, &[ni, nr])
}

/// The exchange values HASH_I and HASH_R are built from.
#[derive(Clone, Copy)]
pub struct HashInputs<'a> {
    pub g_xi: &'a [u8],
    pub g_xr: &'a [u8],
    pub cky_i: &'a [u8; 8],
    pub cky_r: &'a [u8; 8],
    /// The initiator's SA payload body.
    pub sai_b: &'a [u8],
    /// The signer's ID payload body (IDii_b for HASH_I, IDir_b for HASH_R).
    pub id_b: &'a [u8],
}

/// `HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)`.
pub fn hash_i(alg: PrfAlg, skeyid: &[u8], v: &HashInputs<'_>) -> Zeroizing<Vec<u8>> {
    prf::prf(
        alg,
        skeyid,
        &[v.g_xi, v.g_xr, v.cky_i, v.cky_r, v.sai_b, v.id_b],
    )
}

/// `HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)`.
pub fn hash_r(alg: PrfAlg, skeyid: &[u8], v: &HashInputs<'_>) -> Zeroizing<Vec<u8>> {
    prf::prf(
        alg,
        skeyid,
        &[v.g_xr, v.g_xi, v.cky_r, v.cky_i, v.sai_b, v.id_b],
    )
}

/// `what` must be `min..=max` bytes long.
pub fn check_len(what: &str, len: usize, min: usize, max: usize) -> Result<(), String> {
    if (min..=max).contains(&len) {
        Ok(())
    } else {
        Err(format!("{what} is {len} bytes; must be {min} to {max}"))
    }
}

/// Bounds of a PSK request's values.
pub fn check_nonces(ni: &[u8], nr: &[u8]) -> Result<(), String> {
    check_len("Ni_b", ni.len(), MIN_NONCE, MAX_NONCE)?;
    check_len("Nr_b", nr.len(), MIN_NONCE, MAX_NONCE)
}

/// Bounds of a signature request's values. SKEYID must be exactly as long as the prf's output.
pub fn check_hash_inputs(alg: PrfAlg, skeyid_len: usize, v: &HashInputs<'_>) -> Result<(), String> {
    check_len("SKEYID", skeyid_len, MIN_SKEYID, MAX_SKEYID)?;
    let want = prf::output_len(alg);
    if skeyid_len != want {
        return Err(format!(
            "SKEYID is {skeyid_len} bytes; {} gives {want}",
            prf::name(alg)
        ));
    }
    check_len("g^xi", v.g_xi.len(), 1, MAX_DH_PUBLIC)?;
    check_len("g^xr", v.g_xr.len(), 1, MAX_DH_PUBLIC)?;
    check_len("SAi_b", v.sai_b.len(), MIN_SA_BODY, MAX_PAYLOAD_BODY)?;
    check_len("ID_b", v.id_b.len(), MIN_ID_BODY, MAX_PAYLOAD_BODY)
}

/// Bounds of the request's context and IDs (they are logged).
pub fn check_conn_name(conn: &str) -> Result<(), String> {
    check_len("the connection name", conn.len(), 1, MAX_CONN_NAME)
}

pub fn check_id(what: &str, id: &IkeId) -> Result<(), String> {
    let len = match id {
        IkeId::Ip(_) | IkeId::Any => return Ok(()),
        IkeId::Fqdn(s) | IkeId::UserFqdn(s) | IkeId::Dn(s) => s.len(),
        IkeId::KeyId(b) => b.len(),
    };
    check_len(what, len, 1, MAX_ID_LEN)
}

/// The ipsec.secrets selector that stands for a connection's ID. `%any` (a road warrior's peer
/// whose ID is not known yet) becomes the wildcard of the peer's address family, as pluto looks up
/// `%any` (it then matches entries that name `%any`, or `0.0.0.0`, literally).
pub fn id_selector(id: &IkeId, peer_ip: IpAddr) -> IdSelector {
    let any = || match peer_ip.to_canonical() {
        IpAddr::V4(_) => IdSelector::AnyV4,
        IpAddr::V6(_) => IdSelector::AnyV6,
    };
    match id {
        IkeId::Ip(ip) if ip.is_unspecified() => match ip {
            IpAddr::V4(_) => IdSelector::AnyV4,
            IpAddr::V6(_) => IdSelector::AnyV6,
        },
        IkeId::Ip(ip) => IdSelector::Ip(ip.to_canonical()),
        IkeId::Fqdn(name) => IdSelector::Fqdn(name.to_ascii_lowercase()),
        IkeId::UserFqdn(name) => IdSelector::UserFqdn(name.clone()),
        IkeId::Dn(dn) => IdSelector::Dn(dn.trim().to_string()),
        IkeId::KeyId(bytes) => IdSelector::KeyId(bytes.clone()),
        IkeId::Any => any(),
    }
}

/// The signer's ID payload body must carry `local_id`: keyd signs a statement that this end is
/// `local_id`, never one naming someone else. ID type and data are compared (FQDN and user@FQDN
/// without regard to ASCII case); the protocol and port octets are not. A DN is compared by type
/// only (the body holds its DER encoding, which keyd does not build).
pub fn check_id_body(local_id: &IkeId, id_b: &[u8]) -> Result<(), String> {
    let (Some(&id_type), Some(data)) = (id_b.first(), id_b.get(MIN_ID_BODY..)) else {
        return Err(format!(
            "ID_b is {} bytes; must be at least {MIN_ID_BODY}",
            id_b.len()
        ));
    };
    let ok = match local_id {
        IkeId::Ip(IpAddr::V4(a)) => id_type == ID_IPV4_ADDR && data == a.octets(),
        // An IPv4-mapped address may go out in either form.
        IkeId::Ip(IpAddr::V6(a)) => {
            (id_type == ID_IPV6_ADDR && data == a.octets())
                || a.to_ipv4_mapped()
                    .is_some_and(|v4| id_type == ID_IPV4_ADDR && data == v4.octets())
        }
        IkeId::Fqdn(name) => id_type == ID_FQDN && data.eq_ignore_ascii_case(name.as_bytes()),
        IkeId::UserFqdn(name) => {
            id_type == ID_USER_FQDN && data.eq_ignore_ascii_case(name.as_bytes())
        }
        IkeId::Dn(_) => id_type == ID_DER_ASN1_DN && !data.is_empty(),
        IkeId::KeyId(bytes) => id_type == ID_KEY_ID && data == bytes.as_slice(),
        IkeId::Any => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the ID payload (type {id_type}, {} bytes of data) does not carry the local ID {}",
            data.len(),
            printable(&local_id.to_string())
        ))
    }
}

/// `text` for a log line or a message: control characters escaped, at most 300 characters.
pub fn printable(text: &str) -> String {
    const MAX: usize = 300;
    let mut out = String::with_capacity(text.len().min(MAX + 8));
    for (n, c) in text.chars().enumerate() {
        if n == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;

    /// An independent HMAC: OpenSSL's, fed one concatenated buffer.
    fn openssl_hmac(alg: PrfAlg, key: &[u8], data: &[u8]) -> Vec<u8> {
        let md = match alg {
            PrfAlg::HmacMd5 => MessageDigest::md5(),
            PrfAlg::HmacSha1 => MessageDigest::sha1(),
            PrfAlg::HmacSha2_256 => MessageDigest::sha256(),
            PrfAlg::HmacSha2_384 => MessageDigest::sha384(),
            PrfAlg::HmacSha2_512 => MessageDigest::sha512(),
        };
        let pkey = PKey::hmac(key).unwrap();
        let mut signer = Signer::new(md, &pkey).unwrap();
        signer.update(data).unwrap();
        signer.sign_to_vec().unwrap()
    }

    const ALL: [PrfAlg; 5] = [
        PrfAlg::HmacMd5,
        PrfAlg::HmacSha1,
        PrfAlg::HmacSha2_256,
        PrfAlg::HmacSha2_384,
        PrfAlg::HmacSha2_512,
    ];

    fn bytes(seed: u8, n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
            .collect()
    }

    #[test]
    fn skeyid_matches_an_independent_hmac() {
        let (psk, ni, nr) = (b"a pre-shared key".to_vec(), bytes(1, 16), bytes(2, 32));
        for alg in ALL {
            let mut data = ni.clone();
            data.extend_from_slice(&nr);
            assert_eq!(
                *skeyid_psk(alg, &psk, &ni, &nr),
                openssl_hmac(alg, &psk, &data)
            );
        }
        // Order matters: swapping the nonces changes SKEYID.
        assert_ne!(
            skeyid_psk(PrfAlg::HmacSha1, &psk, &ni, &nr),
            skeyid_psk(PrfAlg::HmacSha1, &psk, &nr, &ni)
        );
    }

    /// Libreswan's ACVP IKEv1 PSK case 100 (SHA-1): PSK 0x75, Ni, Nr → SKEYID.
    #[test]
    fn acvp_ikev1_psk_skeyid() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let skeyid = skeyid_psk(
            PrfAlg::HmacSha1,
            &hex("75"),
            &hex("b9a2d0e922dc66dd"),
            &hex("2130166863b5ddef"),
        );
        assert_eq!(*skeyid, hex("62b04d112877e442fc3282fc37c076997718a0b9"));
    }

    #[test]
    fn hash_i_and_hash_r_match_an_independent_hmac() {
        let (g_xi, g_xr) = (bytes(3, 256), bytes(4, 256));
        let (cky_i, cky_r) = ([0x11u8; 8], [0x22u8; 8]);
        let (sai_b, id_b) = (bytes(5, 52), bytes(6, 12));
        let v = HashInputs {
            g_xi: &g_xi,
            g_xr: &g_xr,
            cky_i: &cky_i,
            cky_r: &cky_r,
            sai_b: &sai_b,
            id_b: &id_b,
        };
        for alg in ALL {
            let skeyid = bytes(7, prf::output_len(alg));
            let cat = |parts: &[&[u8]]| parts.concat();
            let want_i = openssl_hmac(
                alg,
                &skeyid,
                &cat(&[&g_xi, &g_xr, &cky_i, &cky_r, &sai_b, &id_b]),
            );
            let want_r = openssl_hmac(
                alg,
                &skeyid,
                &cat(&[&g_xr, &g_xi, &cky_r, &cky_i, &sai_b, &id_b]),
            );
            assert_eq!(*hash_i(alg, &skeyid, &v), want_i);
            assert_eq!(*hash_r(alg, &skeyid, &v), want_r);
            assert_ne!(want_i, want_r);
        }
    }

    #[test]
    fn bounds() {
        assert!(check_nonces(&[0; 8], &[0; 256]).is_ok());
        assert_eq!(
            check_nonces(&[0; 7], &[0; 8]).unwrap_err(),
            "Ni_b is 7 bytes; must be 8 to 256"
        );
        assert!(check_nonces(&[0; 8], &[0; 257]).is_err());
        let (g, cky, sa, id) = (
            vec![1u8; 256],
            [0u8; 8],
            vec![0u8; 40],
            vec![2u8, 0, 0, 0, b'a'],
        );
        let v = HashInputs {
            g_xi: &g,
            g_xr: &g,
            cky_i: &cky,
            cky_r: &cky,
            sai_b: &sa,
            id_b: &id,
        };
        assert!(check_hash_inputs(PrfAlg::HmacSha1, 20, &v).is_ok());
        assert_eq!(
            check_hash_inputs(PrfAlg::HmacSha1, 32, &v).unwrap_err(),
            "SKEYID is 32 bytes; HMAC-SHA1 gives 20"
        );
        assert!(check_hash_inputs(PrfAlg::HmacSha1, 8, &v).is_err());
        assert!(check_hash_inputs(PrfAlg::HmacSha2_512, 65, &v).is_err());
        let big = vec![0u8; MAX_DH_PUBLIC + 1];
        assert!(check_hash_inputs(PrfAlg::HmacSha1, 20, &HashInputs { g_xr: &big, ..v }).is_err());
        assert!(check_hash_inputs(PrfAlg::HmacSha1, 20, &HashInputs { g_xi: &[], ..v }).is_err());
        let huge = vec![0u8; MAX_PAYLOAD_BODY + 1];
        assert!(
            check_hash_inputs(PrfAlg::HmacSha1, 20, &HashInputs { sai_b: &huge, ..v }).is_err()
        );
        assert!(check_hash_inputs(PrfAlg::HmacSha1, 20, &HashInputs { id_b: &huge, ..v }).is_err());
        assert!(check_hash_inputs(
            PrfAlg::HmacSha1,
            20,
            &HashInputs {
                id_b: &[2, 0, 0],
                ..v
            }
        )
        .is_err());
        assert!(check_conn_name("").is_err());
        assert!(check_conn_name(&"x".repeat(MAX_CONN_NAME + 1)).is_err());
        assert!(check_id("local ID", &IkeId::Fqdn(String::new())).is_err());
        assert!(check_id("local ID", &IkeId::KeyId(vec![0; MAX_ID_LEN + 1])).is_err());
        assert!(check_id("local ID", &IkeId::Fqdn("west".into())).is_ok());
    }

    #[test]
    fn selectors() {
        let v4: IpAddr = "192.0.2.2".parse().unwrap();
        let v6: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(
            id_selector(&IkeId::Fqdn("West.Example".into()), v4),
            IdSelector::Fqdn("west.example".into())
        );
        assert_eq!(id_selector(&IkeId::Any, v4), IdSelector::AnyV4);
        assert_eq!(id_selector(&IkeId::Any, v6), IdSelector::AnyV6);
        assert_eq!(
            id_selector(&IkeId::Ip("0.0.0.0".parse().unwrap()), v6),
            IdSelector::AnyV4
        );
        assert_eq!(
            id_selector(&IkeId::Ip("::ffff:192.0.2.1".parse().unwrap()), v4),
            IdSelector::Ip("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            id_selector(&IkeId::KeyId(vec![1, 2]), v4),
            IdSelector::KeyId(vec![1, 2])
        );
        // The selector a conn's ID maps to is the one ipsec.secrets' text parses to.
        for (id, text) in [
            (IkeId::Fqdn("east".into()), "@east"),
            (IkeId::UserFqdn("u@x.org".into()), "u@x.org"),
            (IkeId::Ip(v6), "2001:db8::2"),
            (IkeId::KeyId(vec![0xab, 0xcd]), "@#abcd"),
        ] {
            assert_eq!(id_selector(&id, v4), IdSelector::parse(text).unwrap());
        }
    }

    #[test]
    fn id_bodies() {
        let body = |t: u8, data: &[u8]| [&[t, 17, 1, 244][..], data].concat();
        let west = IkeId::Fqdn("west".into());
        assert!(check_id_body(&west, &body(2, b"west")).is_ok());
        assert!(check_id_body(&west, &body(2, b"WEST")).is_ok());
        assert!(check_id_body(&west, &body(2, b"east")).is_err());
        assert!(check_id_body(&west, &body(3, b"west")).is_err());
        assert!(check_id_body(&west, &[2, 0, 0]).is_err());
        let ip = IkeId::Ip("192.0.2.1".parse().unwrap());
        assert!(check_id_body(&ip, &body(1, &[192, 0, 2, 1])).is_ok());
        assert!(check_id_body(&ip, &body(1, &[192, 0, 2, 2])).is_err());
        let ip6 = IkeId::Ip("2001:db8::1".parse().unwrap());
        let mut a6 = [0u8; 16];
        a6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a6[15] = 1;
        assert!(check_id_body(&ip6, &body(5, &a6)).is_ok());
        assert!(check_id_body(&ip6, &body(1, &a6)).is_err());
        let mapped = IkeId::Ip("::ffff:192.0.2.1".parse().unwrap());
        assert!(check_id_body(&mapped, &body(1, &[192, 0, 2, 1])).is_ok());
        let mapped6: std::net::Ipv6Addr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(check_id_body(&mapped, &body(5, &mapped6.octets())).is_ok());
        assert!(check_id_body(&mapped, &body(1, &[192, 0, 2, 2])).is_err());
        assert!(check_id_body(&IkeId::KeyId(vec![1, 2]), &body(11, &[1, 2])).is_ok());
        assert!(check_id_body(&IkeId::Dn("CN=west".into()), &body(9, &[0x30, 0])).is_ok());
        assert!(check_id_body(&IkeId::Dn("CN=west".into()), &body(2, b"west")).is_err());
        assert!(check_id_body(&IkeId::Any, &body(2, b"west")).is_err());
        let e = check_id_body(&west, &body(2, b"east")).unwrap_err();
        assert_eq!(
            e,
            "the ID payload (type 2, 4 bytes of data) does not carry the local ID @west"
        );
    }

    #[test]
    fn printable_escapes_and_truncates() {
        assert_eq!(printable("a\nb"), "a\\nb");
        assert_eq!(printable(&"x".repeat(400)).chars().count(), 301);
    }
}
