//! Conns as FreeS/WAN, Libreswan and strongSwan users write them, turned into what ikerd gets
//! (`ipc::ike::IkeConn`): both orientations, road warriors, defaults, every proposal form the
//! brief lists, and refusals that name the conn and the token. Then the corpus: every loadable
//! IKE conn of the shared test configs either converts or is refused with a message (never a
//! panic), with a tally of what is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use confd::conf::model::Phase2Proto;
use confd::conf::{self, Orientation};
use confd::ike_conn::{
    self, check_config, ike_conn, parse_esp_list, parse_esp_proposal, parse_ike_list,
    parse_ike_proposal, HostInfo,
};
use ipc::ike::{
    AuthMethod, DhGroup, DpdAction, EspProposal, IkeAuto, IkeEncr, IkeId, IkeProposal, PrfAlg,
};
use ipc::policy::Net;
use ipc::sa::{EncrAlg, IntegAlg, IpsecProto, SaMode};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

fn load(text: &str) -> conf::Config {
    match conf::load_str("ipsec.conf", text) {
        Ok((c, _)) => c,
        Err(e) => panic!("{e:?}"),
    }
}

const NO_HOST: HostInfo = HostInfo {
    default_route: None,
};

/// The FreeS/WAN documentation's net-to-net conn, RSA keys, IKEv1 by default.
const WEST_EAST: &str = "version 2\n\nconfig setup\n\tuniqueids=no\n\n\
conn %default\n\tkeyingtries=%forever\n\tauthby=rsasig\n\n\
conn west-east\n\tleft=192.0.2.1\n\tleftsubnet=10.1.0.0/16\n\tleftid=@west\n\tleftnexthop=192.0.2.254\n\
\tleftrsasigkey=0sAQOikdjNwxBBHn7Cc3imYck1GHwH5NVjbpvDxACyckS4zTqX8RrmUQcFBqaKAvDhYa83+Gy5B4c4w3Dwfo07WDutOMJ180rtBWrW6o7spBkvof653EsevlXluPm2gO/3bIHU6aswTUiW+eF/2PCBZJbaCHo+vsxnaqosXYzhs8asvF8WcKmCG8cphddkXn27B3gLTrTZ+52XlGSlKyuAOvsDxTOK69yMO2eDWPPYk1p16ESojJv1ugFiyNvS9OLwvYPPIYTHjzRt8w573l2RjTPwgWl80FtqWACJip/JnFR1mQfNOqItjJUu3BfMjczZ0e5BCNfxrBIV3gRzA8HBRz9F\n\
\tright=192.0.2.2\n\trightsubnet=10.2.0.0/16\n\trightid=@east\n\
\trightrsasigkey=0sAQP03PLZDhcVXNUrvM+r2k5AmzabCZSuKP9uo2TNudz+gvNfi+9xgETmCd4HXXfuUehhbOTihiqPLTw7Bi1TLCKCglz/g6yPLv7kcstqvIbo6MNdypdaXPvb9nIp9MFmt712p4c/fUfsf4CD1MtaqeJ05ud2WZG56465dHyoOPBT0LPVKuDonUTF6XpPTfXMtNSBj4SBpp2WaE+7NX2DXe+vn+ETyNJXuQLo0DD/vhsPk6cMRZc6ruDqG8GFItpEPtM18eEPbOW3wggOXFwsP6wGFR30EQYKuusFX0Eg0O8ovC+FsQBilgvL/T8m+AkBWPCdoL6/HElWfQdOco3Emr0L\n\
\tauto=start\n";

#[test]
fn net_to_net_with_rsa_keys_both_orientations() {
    let c = load(WEST_EAST);
    let conn = c.conn("west-east").unwrap();
    assert!(ike_conn::is_ike(conn));
    assert!(!ike_conn::settings(&c).uniqueids);
    assert_eq!(
        ike_conn::wanted(&c).into_iter().collect::<Vec<_>>(),
        [("west-east".to_string(), IkeAuto::Start)]
    );

    let west = ike_conn(conn, Orientation::LeftIsLocal, IkeAuto::Start, &NO_HOST).unwrap();
    assert_eq!(west.name, "west-east");
    assert_eq!(west.auth, AuthMethod::RsaSig);
    assert_eq!(
        (
            west.versions.initiate,
            west.versions.accept_v1,
            west.versions.accept_v2
        ),
        (1, true, false),
        "no keyexchange=: IKEv1 as in FreeS/WAN"
    );
    assert_eq!(west.local.host, Some(ip("192.0.2.1")));
    assert_eq!(west.local.id, IkeId::Fqdn("west".into()));
    assert_eq!(west.local.subnets, [net("10.1.0.0/16")]);
    assert_eq!(west.local.nexthop, Some(ip("192.0.2.254")));
    assert_eq!(west.remote.host, Some(ip("192.0.2.2")));
    assert_eq!(west.remote.id, IkeId::Fqdn("east".into()));
    assert_eq!(west.remote.subnets, [net("10.2.0.0/16")]);
    // keys are passed on as written (RFC 3110, `0s`)
    let written = |k: &str| {
        let at = WEST_EAST.find(k).unwrap() + k.len();
        WEST_EAST[at..].split('\n').next().unwrap().to_string()
    };
    assert_eq!(west.local.rsasigkeys, [written("leftrsasigkey=")]);
    assert_eq!(west.remote.rsasigkeys, [written("rightrsasigkey=")]);
    assert_eq!(west.remote.rsasigkeys.len(), 1);
    assert_eq!(west.keying_tries, 0, "%forever");
    assert_eq!(west.mode, SaMode::Tunnel);
    assert_eq!(west.proto, IpsecProto::Esp);
    assert_eq!(west.auto, IkeAuto::Start);
    assert!(west.pfs && west.rekey);
    assert_eq!(
        (
            west.ike_lifetime_secs,
            west.sa_lifetime_secs,
            west.rekey_margin_secs,
            west.rekey_fuzz_percent
        ),
        (3600, 8 * 3600, 540, 100)
    );
    assert_eq!(west.dpd, None);

    // the same conn on east: the ends swap, keys and IDs with them
    let east = ike_conn(conn, Orientation::RightIsLocal, IkeAuto::Start, &NO_HOST).unwrap();
    assert_eq!(east.local.host, Some(ip("192.0.2.2")));
    assert_eq!(east.local.id, IkeId::Fqdn("east".into()));
    assert_eq!(east.remote.id, IkeId::Fqdn("west".into()));
    assert_eq!(east.remote.subnets, [net("10.1.0.0/16")]);
    assert_eq!(east.local.rsasigkeys, west.remote.rsasigkeys);
    assert_eq!(east.local.nexthop, None);
    assert_eq!(east.ike, west.ike);

    let e = ike_conn(conn, Orientation::Unoriented, IkeAuto::Start, &NO_HOST).unwrap_err();
    assert!(
        e.starts_with("\"west-east\": neither left=192.0.2.1 nor right=192.0.2.2"),
        "{e}"
    );
}

#[test]
fn road_warrior_psk_with_defaults() {
    let c = load(
        "config setup\n\nconn rw\n\tleft=192.0.2.1\n\tleftsubnet=10.1.0.0/16\n\tright=%any\n\
         \tauthby=secret\n\tkeyexchange=ikev1\n\tdpddelay=30\n\tdpdtimeout=90\n\tdpdaction=restart\n\
         \tleftprotoport=17/1701\n\trightprotoport=17/%any\n\tauto=add\n",
    );
    let conn = c.conn("rw").unwrap();
    let rw = ike_conn(conn, Orientation::LeftIsLocal, IkeAuto::Add, &NO_HOST).unwrap();
    assert_eq!(rw.auth, AuthMethod::Psk);
    assert_eq!(
        rw.local.id,
        IkeId::Ip(ip("192.0.2.1")),
        "ID defaults to the address"
    );
    assert_eq!((rw.remote.host, &rw.remote.id), (None, &IkeId::Any));
    assert!(
        rw.remote.subnets.is_empty(),
        "empty = the peer's host, found at negotiation"
    );
    assert_eq!((rw.local.proto, rw.local.port), (17, 1701));
    assert_eq!((rw.remote.proto, rw.remote.port), (17, 0));
    let dpd = rw.dpd.unwrap();
    assert_eq!(
        (dpd.delay_secs, dpd.timeout_secs, dpd.action),
        (30, 90, DpdAction::Restart)
    );
    assert_eq!(rw.keying_tries, 3);
    // defaults, in the documented order
    let names: Vec<String> = rw.ike.iter().map(ike_conn::ike_proposal_name).collect();
    assert_eq!(
        names,
        [
            "AES_CBC_128/SHA2_256/MODP2048",
            "AES_CBC_128/SHA1/MODP2048",
            "3DES_CBC/SHA1/MODP2048",
            "AES_CBC_128/SHA1/MODP1536",
            "3DES_CBC/MD5/MODP1024"
        ]
    );
    let names: Vec<String> = rw.esp.iter().map(ike_conn::esp_proposal_name).collect();
    assert_eq!(
        names,
        [
            "AES-CBC-128/HMAC-SHA1-96",
            "AES-CBC-128/HMAC-SHA2-256-128",
            "3DES-CBC/HMAC-SHA1-96",
            "3DES-CBC/HMAC-MD5-96"
        ]
    );
    assert!(
        rw.esp.iter().all(|p| p.pfs_group.is_none()),
        "PFS uses the IKE group"
    );
    // the IKEv1 hash is the PRF and the IKEv2 integrity alike
    assert_eq!(rw.ike[0].prf, PrfAlg::HmacSha2_256);
    assert_eq!(rw.ike[0].integ, Some(IntegAlg::HmacSha256_128));
}

#[test]
fn ids_versions_transport_ah_and_defaultroute() {
    let c = load(
        "config setup\n\n\
         conn t\n\tleft=%defaultroute\n\tright=2001:db8::2\n\tleftid=user@example.org\n\
         \trightid=\"@#0a0b0c0d\"\n\tauthby=secret|rsasig\n\ttype=transport\n\tphase2=ah\n\tkeyexchange=ike\n\
         \tpfs=no\n\tikelifetime=1h\n\tkeylife=20m\n\trekey=no\n\trekeymargin=3m\n\trekeyfuzz=50%\n\
         \tkeyingtries=5\n\tauto=route\n\n\
         conn v2\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tleftid=\"C=CA, O=Example, CN=west\"\n\
         \tauthby=secret\n\tikev2=insist\n\tike=aes128gcm16-prfsha256-ecp256\n\tesp=aes128gcm16-modp2048\n\tauto=add\n",
    );
    let host = HostInfo {
        default_route: Some(ip("2001:db8::1")),
    };
    let t = ike_conn(
        c.conn("t").unwrap(),
        Orientation::LeftIsLocal,
        IkeAuto::Route,
        &host,
    )
    .unwrap();
    assert_eq!(
        t.local.host,
        Some(ip("2001:db8::1")),
        "%defaultroute resolved"
    );
    assert_eq!(t.local.id, IkeId::UserFqdn("user@example.org".into()));
    assert_eq!(t.remote.id, IkeId::KeyId(vec![0x0a, 0x0b, 0x0c, 0x0d]));
    assert_eq!(t.auth, AuthMethod::PskOrRsaSig);
    assert_eq!((t.mode, t.proto), (SaMode::Transport, IpsecProto::Ah));
    assert_eq!(
        (
            t.versions.initiate,
            t.versions.accept_v1,
            t.versions.accept_v2
        ),
        (2, true, true)
    );
    assert!(!t.pfs && !t.rekey);
    assert_eq!(
        (
            t.ike_lifetime_secs,
            t.sa_lifetime_secs,
            t.rekey_margin_secs,
            t.rekey_fuzz_percent,
            t.keying_tries
        ),
        (3600, 1200, 180, 50, 5)
    );
    // phase2=ah: integrity only, carried with a NULL cipher
    assert_eq!(
        t.esp.iter().map(|p| (p.encr, p.integ)).collect::<Vec<_>>(),
        [
            (EncrAlg::Null, IntegAlg::HmacSha1_96),
            (EncrAlg::Null, IntegAlg::HmacSha256_128),
            (EncrAlg::Null, IntegAlg::HmacMd5_96)
        ]
    );
    let e = ike_conn(
        c.conn("t").unwrap(),
        Orientation::LeftIsLocal,
        IkeAuto::Route,
        &NO_HOST,
    )
    .unwrap_err();
    assert!(e.contains("%defaultroute") && e.starts_with("\"t\""), "{e}");

    let v2 = ike_conn(
        c.conn("v2").unwrap(),
        Orientation::LeftIsLocal,
        IkeAuto::Add,
        &NO_HOST,
    )
    .unwrap();
    assert_eq!(v2.local.id, IkeId::Dn("C=CA, O=Example, CN=west".into()));
    assert_eq!(
        (
            v2.versions.initiate,
            v2.versions.accept_v1,
            v2.versions.accept_v2
        ),
        (2, false, true)
    );
    assert_eq!(
        v2.ike,
        [IkeProposal {
            encr: IkeEncr::AesGcm {
                key_bits: 128,
                icv_bytes: 16
            },
            prf: PrfAlg::HmacSha2_256,
            integ: None,
            dh: DhGroup::Ecp256
        }]
    );
    assert_eq!(
        v2.esp,
        [EspProposal {
            encr: EncrAlg::AesGcm {
                key_bits: 128,
                icv_bytes: 16
            },
            integ: IntegAlg::None,
            pfs_group: Some(DhGroup::Modp2048)
        }]
    );
}

#[test]
fn which_conns_are_ike() {
    let c = load(
        "config setup\n\n\
         conn man\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tspi=0x1000\n\tesp=3des-md5-96\n\
         \tespenckey=0x0123456789abcdef0123456789abcdef0123456789abcdef\n\tespauthkey=0x00112233445566778899aabbccddeeff\n\tauto=manual\n\n\
         conn pass\n\tleft=192.0.2.1\n\tright=192.0.2.3\n\ttype=passthrough\n\tauto=route\n\n\
         conn never\n\tleft=192.0.2.1\n\tright=192.0.2.4\n\tauthby=never\n\tauto=route\n\n\
         conn ign\n\tleft=192.0.2.1\n\tright=192.0.2.5\n\tauthby=secret\n\tauto=ignore\n\n\
         conn null\n\tleft=192.0.2.1\n\tright=192.0.2.6\n\tauthby=null\n\tauto=add\n\n\
         conn name\n\tleft=192.0.2.1\n\tright=gw.example.org\n\tauthby=secret\n\tauto=add\n",
    );
    let ike: Vec<&str> = c
        .conns
        .iter()
        .filter(|c| ike_conn::is_ike(c))
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(ike, ["ign", "null", "name"]);
    assert_eq!(
        ike_conn::wanted(&c)
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["name", "null"],
        "auto=ignore is not added"
    );
    for (name, want) in [
        ("man", "not an IKE conn"),
        ("null", "authby=null"),
        ("name", "right=gw.example.org: DNS names"),
    ] {
        let e = ike_conn(
            c.conn(name).unwrap(),
            Orientation::LeftIsLocal,
            IkeAuto::Add,
            &NO_HOST,
        )
        .unwrap_err();
        assert!(
            e.starts_with(&format!("\"{name}\": ")) && e.contains(want),
            "{e}"
        );
    }
}

// ------------------------------------------------------------------------------ the parser

fn ike1(s: &str) -> Vec<String> {
    parse_ike_proposal(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .iter()
        .map(ike_conn::ike_proposal_name)
        .collect()
}

fn esp1(s: &str) -> Vec<String> {
    parse_esp_proposal(s, Phase2Proto::Esp)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .iter()
        .map(ike_conn::esp_proposal_name)
        .collect()
}

#[test]
fn ike_proposals_in_every_listed_form() {
    for (text, want) in [
        ("3des-md5-modp1024", "3DES_CBC/MD5/MODP1024"),
        ("aes128-sha1-modp2048", "AES_CBC_128/SHA1/MODP2048"),
        ("aes256-sha2_256-modp2048", "AES_CBC_256/SHA2_256/MODP2048"),
        ("aes256-sha256-modp2048", "AES_CBC_256/SHA2_256/MODP2048"),
        ("aes256-sha2-modp4096", "AES_CBC_256/SHA2_256/MODP4096"),
        ("aes192-sha2_512-modp3072", "AES_CBC_192/SHA2_512/MODP3072"),
        ("aes-sha1", "AES_CBC_128/SHA1/MODP2048"),
        ("aes-sha1!", "AES_CBC_128/SHA1/MODP2048"),
        ("aes-128-sha1", "AES_CBC_128/SHA1/MODP2048"),
        ("aes_cbc256-sha384-ecp384", "AES_CBC_256/SHA2_384/ECP_384"),
        ("3des-sha1;modp1536", "3DES_CBC/SHA1/MODP1536"),
        ("AES128-SHA1-MODP2048", "AES_CBC_128/SHA1/MODP2048"),
        ("aes128-sha1-dh14", "AES_CBC_128/SHA1/MODP2048"),
        ("aes128-sha256-x25519", "AES_CBC_128/SHA2_256/CURVE25519"),
        (
            "aes128gcm16-prfsha256-ecp256",
            "AES_GCM_16_128/PRF_SHA2_256/ECP_256",
        ),
        (
            "aes256gcm16-prfsha384-modp2048",
            "AES_GCM_16_256/PRF_SHA2_384/MODP2048",
        ),
        ("aes_gcm_c-sha2", "AES_GCM_16_128/PRF_SHA2_256/MODP2048"),
        (
            "aes128gcm8-prfsha256-ecp256",
            "AES_GCM_8_128/PRF_SHA2_256/ECP_256",
        ),
        (
            "aes128-sha256-prfsha384-modp2048",
            "AES_CBC_128/HMAC-SHA2-256-128/PRF_SHA2_384/MODP2048",
        ),
        ("aes128gcm16-ecp256", "AES_GCM_16_128/PRF_SHA2_256/ECP_256"),
        (
            "aes_gcm_16_128-none-sha1-modp2048",
            "AES_GCM_16_128/PRF_SHA1/MODP2048",
        ),
        ("aes128-sha1-ecp_256", "AES_CBC_128/SHA1/ECP_256"),
    ] {
        assert_eq!(ike1(text), [want], "{text}");
    }
    // no hash: Libreswan's defaults (SHA2-256, then SHA1)
    assert_eq!(
        ike1("aes256"),
        ["AES_CBC_256/SHA2_256/MODP2048", "AES_CBC_256/SHA1/MODP2048"]
    );
    // strongSwan's several-of-a-kind: every combination, in order
    assert_eq!(
        ike1("aes128-aes256-sha1-modp2048-modp1024"),
        [
            "AES_CBC_128/SHA1/MODP2048",
            "AES_CBC_128/SHA1/MODP1024",
            "AES_CBC_256/SHA1/MODP2048",
            "AES_CBC_256/SHA1/MODP1024"
        ]
    );
    // lists (commas within one value or over several), duplicates dropped
    let l = parse_ike_list(&[
        "3des-md5-modp1024,aes128-sha1-modp2048",
        "3des-md5-modp1024",
    ])
    .unwrap()
    .proposals;
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].encr, IkeEncr::TripleDesCbc);
    assert_eq!(
        (l[0].prf, l[0].integ, l[0].dh),
        (
            PrfAlg::HmacMd5,
            Some(IntegAlg::HmacMd5_96),
            DhGroup::Modp1024
        )
    );
}

#[test]
fn esp_proposals_in_every_listed_form() {
    for (text, want) in [
        ("3des-md5", "3DES-CBC/HMAC-MD5-96"),
        ("3des-md5-96", "3DES-CBC/HMAC-MD5-96"),
        ("aes128-sha1", "AES-CBC-128/HMAC-SHA1-96"),
        ("aes256-sha2_256", "AES-CBC-256/HMAC-SHA2-256-128"),
        ("aes256-sha2_512", "AES-CBC-256/HMAC-SHA2-512-256"),
        ("aes-sha1", "AES-CBC-128/HMAC-SHA1-96"),
        ("aes128gcm16", "AES-GCM-128/16"),
        ("aes256gcm16!", "AES-GCM-256/16"),
        ("aes_gcm_a-null", "AES-GCM-128/8"),
        ("aes128gcm16-modp2048", "AES-GCM-128/16/MODP2048"),
        ("aes128-sha1;modp2048", "AES-CBC-128/HMAC-SHA1-96/MODP2048"),
        ("aes128-sha1-modp1024", "AES-CBC-128/HMAC-SHA1-96/MODP1024"),
        ("null-sha1", "NULL/HMAC-SHA1-96"),
        ("aes128ctr-sha256", "AES-CTR-128/HMAC-SHA2-256-128"),
        ("aes128-sha256-noesn", "AES-CBC-128/HMAC-SHA2-256-128"),
        ("aes-sha1;none", "AES-CBC-128/HMAC-SHA1-96"),
        ("aes256-sha1;ecp_256", "AES-CBC-256/HMAC-SHA1-96/ECP_256"),
    ] {
        assert_eq!(esp1(text), [want], "{text}");
    }
    // no integrity: SHA1, then SHA2-256
    assert_eq!(
        esp1("aes"),
        ["AES-CBC-128/HMAC-SHA1-96", "AES-CBC-128/HMAC-SHA2-256-128"]
    );
    assert_eq!(esp1("aes;none"), esp1("aes"));
    assert_eq!(
        esp1("aes128-3des-sha1-md5"),
        [
            "AES-CBC-128/HMAC-SHA1-96",
            "AES-CBC-128/HMAC-MD5-96",
            "3DES-CBC/HMAC-SHA1-96",
            "3DES-CBC/HMAC-MD5-96"
        ]
    );
    let ah = parse_esp_list(&["sha1,sha2_256"], Phase2Proto::Ah)
        .unwrap()
        .proposals;
    assert_eq!(
        ah.iter().map(|p| p.integ).collect::<Vec<_>>(),
        [IntegAlg::HmacSha1_96, IntegAlg::HmacSha256_128]
    );
    // the defaults parse, and are what the README says
    assert_eq!(
        parse_ike_list(ike_conn::DEFAULT_IKE)
            .unwrap()
            .proposals
            .len(),
        5
    );
    assert_eq!(
        parse_esp_list(ike_conn::DEFAULT_ESP, Phase2Proto::Esp)
            .unwrap()
            .proposals
            .len(),
        4
    );
}

#[test]
fn bad_proposals_are_refused_with_the_token() {
    for (text, want) in [
        ("aes128-sha1-modp2049", "`modp2049`"),
        ("aes128-shaa1-modp2048", "unknown token `shaa1`"),
        ("blowfish-sha1", "`blowfish`"),
        ("des-md5", "single DES"),
        ("aes128-sha1-ecp521", "`ecp521`"),
        ("sha1-modp2048", "no cipher"),
        ("null-sha1-modp2048", "unencrypted"),
        ("aes128ctr-sha1", "AES-CTR"),
        ("aes128-sha1;none", "needs a DH group"),
        ("aes128-sha1;sha1", "is not a DH group"),
        ("aes128gcm16-aes128-prfsha256", "cannot share"),
        ("aes192gcm16-prfsha256", "192-bit"),
        ("aes128-sha1-modp2048-", "empty token"),
        ("aes128-sha1-97", "unknown integrity"),
    ] {
        let e = parse_ike_proposal(text).unwrap_err();
        assert!(e.contains(want), "ike={text}: {e}");
    }
    for (text, want) in [
        ("aes128-null", "without integrity"),
        ("null-none", "without integrity"),
        ("aes128gcm16-sha1", "carries its own integrity"),
        ("aes128-sha1-prfsha1", "PRF has no place"),
        ("aes128-sha1-esn", "extended sequence numbers"),
        ("aes128-xyz", "unknown token `xyz`"),
        ("aes128-sha2_256_96", "truncated to 96 bits"),
    ] {
        let e = parse_esp_proposal(text, Phase2Proto::Esp).unwrap_err();
        assert!(e.contains(want), "esp={text}: {e}");
    }
    let e = parse_esp_proposal("aes128-sha1", Phase2Proto::Ah).unwrap_err();
    assert!(e.contains("integrity algorithms only"), "{e}");
    // known but not implemented: the item is dropped from a list with others, with a warning
    let l = parse_ike_list(&["aes128-sha2-ecp256,aes128-sha2-ecp521,camellia-sha1"]).unwrap();
    assert_eq!(l.proposals.len(), 1);
    assert_eq!(l.skipped.len(), 2);
    assert!(
        l.skipped[0].starts_with("`aes128-sha2-ecp521` skipped: `ecp521`"),
        "{:?}",
        l.skipped
    );
    let e = parse_ike_list(&["camellia-sha1,aes128-sha1-dh21"]).unwrap_err();
    assert!(
        e.starts_with("no proposal ferroswan supports (") && e.contains("dh21"),
        "{e}"
    );
    let l = parse_esp_list(
        &["chacha20_poly1305", "aes_ccm_a-128-null", "aes128gcm16"],
        Phase2Proto::Esp,
    )
    .unwrap();
    assert_eq!((l.proposals.len(), l.skipped.len()), (1, 2));
    // ...but an unknown token refuses the list, whatever else it holds
    assert!(
        parse_esp_list(&["aes128-sha1,aes128-shaa1"], Phase2Proto::Esp)
            .unwrap_err()
            .contains("unknown token `shaa1`")
    );
    // a combination bomb is bounded
    let many = "aes128-aes192-aes256-3des-md5-sha1-sha256-sha384-sha512-modp1024-modp1536-modp2048-modp3072-modp4096";
    assert!(parse_ike_proposal(many).unwrap_err().contains("at most 64"));
}

#[test]
fn bad_tokens_fail_the_load_naming_conn_file_and_line() {
    let text = "config setup\n\nconn good\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauthby=secret\n\
                \tike=aes128-sha1-modp2048\n\tauto=add\n\n\
                conn bad\n\tleft=192.0.2.1\n\tright=192.0.2.3\n\tauthby=secret\n\tike=aes128-sha1-modp2048,aes-whirlpool\n\tauto=ignore\n\n\
                conn v1gcm\n\tleft=192.0.2.1\n\tright=192.0.2.4\n\tauthby=secret\n\tike=aes128gcm16-prfsha256-modp2048\n\tauto=add\n\n\
                conn badesp\n\tleft=192.0.2.1\n\tright=192.0.2.5\n\tauthby=secret\n\tesp=3des-md6\n\tauto=add\n\n\
                conn man\n\tleft=192.0.2.1\n\tright=192.0.2.6\n\tspi=0x1000\n\tesp=3des-md5-96\n\
                \tespenckey=0x0123456789abcdef0123456789abcdef0123456789abcdef\n\tespauthkey=0x00112233445566778899aabbccddeeff\n\tauto=manual\n";
    let c = load(text);
    let (errors, warnings) = check_config(&c);
    let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(errors[0].starts_with("ipsec.conf:10: conn `bad`: ike=aes128-sha1-modp2048,aes-whirlpool: unknown token `whirlpool`"), "{}", errors[0]);
    assert!(
        errors[1].starts_with("ipsec.conf:17: conn `v1gcm`:")
            && errors[1].contains("IKEv2 only")
            && errors[1].contains("nothing else is left"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].starts_with("ipsec.conf:24: conn `badesp`: esp=3des-md6:")
            && errors[2].contains("`md6`"),
        "{}",
        errors[2]
    );
}

#[test]
fn unsupported_algorithms_are_dropped_with_a_warning() {
    let c = load(
        "config setup\n\nconn mixed\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauthby=secret\n\
         \tike=aes128gcm16-prfsha256-modp2048,aes128-sha1-modp2048\n\tesp=camellia-sha1,aes128-sha1\n\tauto=add\n",
    );
    let (errors, warnings) = check_config(&c);
    assert!(errors.is_empty(), "{errors:?}");
    let w: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[0].starts_with("ipsec.conf:3: conn `mixed`: ike=")
            && w[0].contains("1 AES-GCM proposals skipped"),
        "{}",
        w[0]
    );
    assert!(
        w[1].contains("esp=camellia-sha1,aes128-sha1: `camellia-sha1` skipped"),
        "{}",
        w[1]
    );
    let p = ike_conn::proposals(c.conn("mixed").unwrap()).unwrap();
    assert_eq!(p.ike.len(), 1);
    assert_eq!(p.esp.len(), 1);
}

// ------------------------------------------------------------------------------ the corpus

/// Every corpus file that loads: each IKE conn converts (left local) or is refused with a
/// message that names it; the proposal check never panics. Prints what is refused, by reason.
#[test]
fn corpus_conns_convert_or_are_refused_by_name() {
    let root = match std::env::var_os("FERROSWAN_CORPUS") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    };
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".conf"))
            {
                files.push(p);
            }
        }
    }
    assert!(
        !files.is_empty(),
        "no corpus at {} (set FERROSWAN_CORPUS)",
        root.display()
    );
    let (mut loaded, mut conns, mut converted, mut prop_refused, mut prop_warned) = (0, 0, 0, 0, 0);
    let mut files_refused = 0usize;
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for f in &files {
        let Ok((config, _)) = conf::load(f) else {
            continue;
        };
        loaded += 1;
        let (bad, warned) = check_config(&config);
        prop_refused += bad.len();
        files_refused += usize::from(!bad.is_empty());
        prop_warned += warned.len();
        for e in &bad {
            let tok = e.message.split('`').nth(3).unwrap_or("?").to_string();
            *reasons.entry(format!("proposal: {tok}")).or_default() += 1;
        }
        for c in config.conns.iter().filter(|c| ike_conn::is_ike(c)) {
            conns += 1;
            let host = HostInfo {
                default_route: Some(ip("192.0.2.1")),
            };
            let o = match c.left.host {
                confd::conf::values::HostAddr::Ip(_)
                | confd::conf::values::HostAddr::DefaultRoute => Orientation::LeftIsLocal,
                _ => Orientation::RightIsLocal,
            };
            match ike_conn(c, o, IkeAuto::Add, &host) {
                Ok(ic) => {
                    converted += 1;
                    assert!(!ic.ike.is_empty() && !ic.esp.is_empty());
                }
                Err(e) => {
                    assert!(e.starts_with(&format!("\"{}\": ", c.name)), "{e}");
                    let what = e.split(": ").nth(1).unwrap_or("?");
                    let what: String = what
                        .split_whitespace()
                        .take(4)
                        .collect::<Vec<_>>()
                        .join(" ");
                    *reasons.entry(what).or_default() += 1;
                }
            }
        }
    }
    println!(
        "corpus: {} files, {loaded} load; {conns} IKE conns, {converted} convert; \
         {prop_refused} conns' proposal lists refused ({files_refused} files), {prop_warned} with items skipped",
        files.len()
    );
    for (r, n) in &reasons {
        println!("  {n:5}  {r}");
    }
    assert!(loaded > 0 && converted > 0);
}
