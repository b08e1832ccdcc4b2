#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::parser::{parse_conf, parse_psk, Identifier, RemotePeer, SaId};
use super::*;
use crate::conf::model::{AuthBy, Auto, ConnType, IkePolicy, Phase2Proto};
use crate::conf::values::{HostAddr, Id, Subnet};
use crate::conf::{Config, Conn};
use crate::setkey::model::{IpsecRequest, Level, Located, PolicyAction, PolicyDir, SpdEntry};
use ipc::ike::{DhGroup, EspProposal, IkeEncr, IkeProposal, PrfAlg};
use ipc::policy::Net;
use ipc::sa::{EncrAlg, IntegAlg, IpsecProto, SaMode};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------------- fixtures

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

fn policy(
    line: usize,
    src: &str,
    dst: &str,
    dir: PolicyDir,
    proto: IpsecProto,
    mode: SaMode,
    ends: Option<(&str, &str)>,
) -> Located<SpdEntry> {
    Located {
        line,
        item: SpdEntry {
            src: net(src),
            src_port: None,
            dst: net(dst),
            dst_port: None,
            upper: 0,
            dir,
            action: PolicyAction::Ipsec(vec![IpsecRequest {
                proto,
                mode,
                endpoints: ends.map(|(a, b)| (ip(a), ip(b))),
                level: Level::Require,
            }]),
        },
    }
}

/// `spdadd MY PEER any -P out ipsec esp/tunnel/ME-PEER/require;` and its `-P in` mirror.
fn tunnel_pair(me: &str, my_net: &str, peer: &str, peer_net: &str) -> Vec<Located<SpdEntry>> {
    vec![
        policy(
            2,
            my_net,
            peer_net,
            PolicyDir::Out,
            IpsecProto::Esp,
            SaMode::Tunnel,
            Some((me, peer)),
        ),
        policy(
            3,
            peer_net,
            my_net,
            PolicyDir::In,
            IpsecProto::Esp,
            SaMode::Tunnel,
            Some((peer, me)),
        ),
    ]
}

/// The classic ipsec-tools net-to-net example: 3DES/MD5/modp1024, PFS modp1024.
const CLASSIC: &str = r#"# racoon.conf for west (192.0.2.1), LAN 10.1.0.0/24
path pre_shared_key "/etc/racoon/psk.txt";

listen {
	isakmp 192.0.2.1 [500];
}

remote 192.0.2.2 {
	exchange_mode main;
	proposal {
		encryption_algorithm 3des;
		hash_algorithm md5;
		authentication_method pre_shared_key;
		dh_group modp1024;
	}
}

sainfo anonymous {
	pfs_group modp1024;
	encryption_algorithm 3des;
	authentication_algorithm hmac_md5;
	compression_algorithm deflate;
}
"#;

const CLASSIC_PSK: &str = "# peer\tkey\n192.0.2.2\tracoon's pre-shared key\n";

/// AES/SHA1/modp2048 with lifetimes, IDs, DPD, and a hex key.
const AES: &str = r#"
path pre_shared_key "/usr/local/etc/racoon/keys.txt";
log notify;
padding { maximum_length 20; randomize off; strict_check off; exclusive_tail off; }
timer { counter 5; interval 20 sec; persend 1; phase1 30 sec; phase2 15 sec; }

remote 198.51.100.7 [500]
{
	exchange_mode main, aggressive;
	my_identifier fqdn "west.example.org";
	peers_identifier user_fqdn "admin@east.example.org";
	verify_identifier on;
	lifetime time 8 hour;
	dpd_delay 30;
	nat_traversal on;
	proposal {
		encryption_algorithm aes 128;
		hash_algorithm sha1;
		authentication_method pre_shared_key;
		dh_group modp2048;
	}
}

sainfo address 10.1.0.0/24 any address 10.2.0.0/24 any
{
	pfs_group 14;
	lifetime time 1 hour;
	encryption_algorithm aes 128;
	authentication_algorithm hmac_sha1;
	compression_algorithm deflate;
}
"#;

const AES_PSK: &str =
    "# hex key\n198.51.100.7 0x00112233445566778899aabbccddeeff\nunused.example.org other key\n";

// ---------------------------------------------------------------------------------- helpers

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Write `text` to a fresh temp file and load it as ferroswan does (daemon::load_config).
fn load(text: &str) -> Config {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ferroswan-racoon-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ipsec.conf");
    std::fs::write(&path, text).unwrap();
    let loaded = crate::daemon::load_config(&path);
    let _ = std::fs::remove_dir_all(&dir);
    match loaded {
        Ok((c, _warnings)) => c,
        Err(e) => panic!("the imported ipsec.conf does not load: {e:?}\n{text}"),
    }
}

fn import(conf: &str, psk: &str, policies: &[Located<SpdEntry>]) -> Imported {
    import_racoon(conf, "racoon.conf", psk, "psk.txt", policies, "setkey.conf")
        .unwrap_or_else(|e| panic!("import failed: {e:#?}"))
}

fn import_err(conf: &str, psk: &str, policies: &[Located<SpdEntry>]) -> Vec<String> {
    match import_racoon(conf, "racoon.conf", psk, "psk.txt", policies, "setkey.conf") {
        Ok(i) => panic!("accepted: {}\nnotes: {:#?}", i.ipsec_conf, i.notes),
        Err(e) => e,
    }
}

fn only_conn(c: &Config) -> &Conn {
    assert_eq!(c.conns.len(), 1, "{c:#?}");
    &c.conns[0]
}

fn subnet(s: &str) -> Subnet {
    let n = net(s);
    Subnet {
        addr: n.addr,
        prefix_len: n.prefix,
    }
}

/// One ipsec.secrets PSK line, read by hand as keyd's grammar has it: `ID ID : PSK VALUE`, the
/// value in double or single quotes (no escapes) or `0x` hex. Returns (ids, key bytes).
fn secret_lines(text: &str) -> Vec<(Vec<String>, Vec<u8>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        assert!(
            !line.starts_with([' ', '\t']),
            "an entry starts in column 1: {line:?}"
        );
        let (ids, value) = line
            .split_once(" : PSK ")
            .unwrap_or_else(|| panic!("not `IDS : PSK VALUE`: {line:?}"));
        let ids: Vec<String> = ids
            .split(' ')
            .map(|s| s.trim_matches('"').to_string())
            .collect();
        for id in &ids {
            let ok = id.parse::<IpAddr>().is_ok()
                || id == "%any"
                || (id.starts_with('@') && id.len() > 1 && !id.contains(char::is_whitespace))
                || (id.contains('@') && !id.starts_with('@'))
                || id.contains('=');
            assert!(ok, "keyd would not read the ID {id:?}");
        }
        let key = if let Some(h) = value.strip_prefix("0x") {
            assert!(
                h.len() % 2 == 0 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                "bad hex"
            );
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        } else {
            let q = value.chars().next().unwrap();
            assert!(
                q == '"' || q == '\'',
                "PSK value neither quoted nor hex: {value:?}"
            );
            let inner = &value[1..];
            let end = inner.find(q).expect("closing quote");
            assert_eq!(inner[end + 1..].trim(), "", "text after the closing quote");
            inner.as_bytes()[..end].to_vec()
        };
        assert!(!key.is_empty());
        out.push((ids, key));
    }
    out
}

fn has_note(i: &Imported, file_line: &str, words: &str) -> bool {
    i.notes
        .iter()
        .any(|n| n.starts_with(file_line) && n.contains(words))
}

// ---------------------------------------------------------------------------- conversions

#[test]
fn classic_3des_md5_net_to_net_loads_with_the_same_proposals() {
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let i = import(CLASSIC, CLASSIC_PSK, &pol);
    let cfg = load(&i.ipsec_conf);
    let c = only_conn(&cfg);
    assert_eq!(c.ike_policy, IkePolicy::V1_ONLY);
    assert_eq!(c.authby, AuthBy::Secret);
    assert_eq!(c.auto, Auto::Start);
    assert_eq!(c.conn_type, ConnType::Tunnel);
    assert_eq!(c.left.host, HostAddr::Ip(ip("192.0.2.1")));
    assert_eq!(c.right.host, HostAddr::Ip(ip("192.0.2.2")));
    assert_eq!(c.left.subnets, vec![subnet("10.1.0.0/24")]);
    assert_eq!(c.right.subnets, vec![subnet("10.2.0.0/24")]);
    assert!(c.pfs);
    let p = crate::ike_conn::proposals(c).unwrap();
    assert_eq!(
        p.ike,
        vec![IkeProposal {
            encr: IkeEncr::TripleDesCbc,
            prf: PrfAlg::HmacMd5,
            integ: Some(IntegAlg::HmacMd5_96),
            dh: DhGroup::Modp1024
        }]
    );
    assert_eq!(
        p.esp,
        vec![EspProposal {
            encr: EncrAlg::TripleDesCbc,
            integ: IntegAlg::HmacMd5_96,
            pfs_group: Some(DhGroup::Modp1024)
        }]
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert!(
        i.ipsec_conf.contains("ike=3des-md5-modp1024\n"),
        "{}",
        i.ipsec_conf
    );
    assert!(
        i.ipsec_conf.contains("esp=3des-md5-modp1024\n"),
        "{}",
        i.ipsec_conf
    );
    // the secret, by address as racoon's main mode looked it up
    let s = secret_lines(&i.ipsec_secrets);
    assert_eq!(
        s,
        vec![(
            vec!["192.0.2.1".to_string(), "192.0.2.2".to_string()],
            b"racoon's pre-shared key".to_vec()
        )]
    );
    // IPComp is named, not dropped silently
    assert!(
        has_note(&i, "racoon.conf:22:", "compression_algorithm"),
        "{:#?}",
        i.notes
    );
    // same file name as racoon.conf's `path pre_shared_key`: nothing to say
    assert!(!has_note(&i, "racoon.conf:2:", "path"), "{:#?}", i.notes);
    // the mirrored -P in policy is implied: no note about it
    assert!(
        !i.notes.iter().any(|n| n.starts_with("setkey.conf:3:")),
        "{:#?}",
        i.notes
    );
}

#[test]
fn aes_sha1_modp2048_with_ids_lifetimes_dpd_and_a_hex_key() {
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "198.51.100.7", "10.2.0.0/24");
    let i = import(AES, AES_PSK, &pol);
    let cfg = load(&i.ipsec_conf);
    let c = only_conn(&cfg);
    let p = crate::ike_conn::proposals(c).unwrap();
    assert_eq!(
        p.ike,
        vec![IkeProposal {
            encr: IkeEncr::AesCbc { key_bits: 128 },
            prf: PrfAlg::HmacSha1,
            integ: Some(IntegAlg::HmacSha1_96),
            dh: DhGroup::Modp2048
        }]
    );
    assert_eq!(
        p.esp,
        vec![EspProposal {
            encr: EncrAlg::AesCbc { key_bits: 128 },
            integ: IntegAlg::HmacSha1_96,
            pfs_group: Some(DhGroup::Modp2048)
        }]
    );
    assert!(
        i.ipsec_conf.contains("ike=aes128-sha1-modp2048\n"),
        "{}",
        i.ipsec_conf
    );
    assert_eq!(c.ike_lifetime_secs, 8 * 3600);
    assert_eq!(c.sa_lifetime_secs, 3600);
    let dpd = c.dpd.unwrap();
    assert_eq!(dpd.delay_secs, 30);
    assert_eq!(dpd.timeout_secs, 30 + 5 * 5);
    assert_eq!(c.left.id, Some(Id::Fqdn("west.example.org".into())));
    assert_eq!(
        c.right.id,
        Some(Id::UserFqdn("admin@east.example.org".into()))
    );
    // the key stays hex, under the IDs the conn uses
    let s = secret_lines(&i.ipsec_secrets);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(
        s[0].0,
        vec![
            "@west.example.org".to_string(),
            "admin@east.example.org".to_string()
        ]
    );
    assert_eq!(s[0].1, (0u8..16).map(|i| i * 0x11).collect::<Vec<u8>>());
    assert!(i
        .ipsec_secrets
        .contains(" : PSK 0x00112233445566778899aabbccddeeff\n"));
    // what was approximated or ignored is named with its line
    assert!(
        has_note(&i, "racoon.conf:9:", "main mode is used"),
        "{:#?}",
        i.notes
    );
    assert!(has_note(&i, "racoon.conf:4:", "padding"), "{:#?}", i.notes);
    assert!(has_note(&i, "racoon.conf:5:", "timer"), "{:#?}", i.notes);
    assert!(
        has_note(&i, "racoon.conf:3:", "log notify"),
        "{:#?}",
        i.notes
    );
    assert!(
        has_note(&i, "psk.txt:3:", "aggressive mode"),
        "{:#?}",
        i.notes
    );
    assert!(
        has_note(&i, "racoon.conf:2:", "path pre_shared_key"),
        "psk path differs from psk.txt: {:#?}",
        i.notes
    );
}

#[test]
fn proposals_keep_racoons_order_and_unsupported_ones_are_dropped_with_a_note() {
    let conf = r#"
remote 192.0.2.2 {
	exchange_mode main;
	lifetime time 2 hour;
	proposal { encryption_algorithm aes 256; hash_algorithm sha256; authentication_method pre_shared_key; dh_group 14; }
	proposal { encryption_algorithm des; hash_algorithm md5; authentication_method pre_shared_key; dh_group 1; }
	proposal { encryption_algorithm 3des; hash_algorithm sha1; authentication_method pre_shared_key; dh_group modp1536; }
	proposal { encryption_algorithm blowfish; hash_algorithm sha1; authentication_method pre_shared_key; dh_group 2; }
}
sainfo anonymous {
	encryption_algorithm aes 256, 3des, des;
	authentication_algorithm hmac_sha256, hmac_sha1;
	compression_algorithm deflate;
}
"#;
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let i = import(conf, CLASSIC_PSK, &pol);
    let cfg = load(&i.ipsec_conf);
    let c = only_conn(&cfg);
    let p = crate::ike_conn::proposals(c).unwrap();
    let ike: Vec<String> = p
        .ike
        .iter()
        .map(crate::ike_conn::ike_proposal_name)
        .collect();
    assert_eq!(
        ike,
        vec!["AES_CBC_256/SHA2_256/MODP2048", "3DES_CBC/SHA1/MODP1536"]
    );
    let esp: Vec<String> = p
        .esp
        .iter()
        .map(crate::ike_conn::esp_proposal_name)
        .collect();
    assert_eq!(
        esp,
        vec![
            "AES-CBC-256/HMAC-SHA2-256-128",
            "AES-CBC-256/HMAC-SHA1-96",
            "3DES-CBC/HMAC-SHA2-256-128",
            "3DES-CBC/HMAC-SHA1-96"
        ]
    );
    assert!(!c.pfs, "no pfs_group: pfs=no");
    assert_eq!(c.ike_lifetime_secs, 7200);
    assert!(
        has_note(&i, "racoon.conf:6:", "single DES"),
        "{:#?}",
        i.notes
    );
    assert!(has_note(&i, "racoon.conf:8:", "blowfish"), "{:#?}", i.notes);
    assert!(has_note(&i, "racoon.conf:11:", "des"), "{:#?}", i.notes);
    assert!(
        has_note(&i, "racoon.conf:12:", "HMAC-SHA2-256-128"),
        "{:#?}",
        i.notes
    );
}

#[test]
fn transport_mode_is_host_to_host() {
    let pol = vec![
        policy(
            1,
            "192.0.2.1",
            "192.0.2.2",
            PolicyDir::Out,
            IpsecProto::Esp,
            SaMode::Transport,
            None,
        ),
        policy(
            2,
            "192.0.2.2",
            "192.0.2.1",
            PolicyDir::In,
            IpsecProto::Esp,
            SaMode::Transport,
            None,
        ),
    ];
    let i = import(CLASSIC, CLASSIC_PSK, &pol);
    let cfg = load(&i.ipsec_conf);
    let c = only_conn(&cfg);
    assert_eq!(c.conn_type, ConnType::Transport);
    assert_eq!(c.left.host, HostAddr::Ip(ip("192.0.2.1")));
    assert_eq!(c.right.host, HostAddr::Ip(ip("192.0.2.2")));
    assert!(c.left.subnets.is_empty() && c.right.subnets.is_empty());
    assert!(
        i.notes.iter().all(|n| !n.starts_with("setkey.conf")),
        "{:#?}",
        i.notes
    );
}

#[test]
fn ah_policies_give_phase2_ah_and_ports_give_protoport() {
    let mut out = policy(
        4,
        "10.1.0.0/24",
        "10.2.0.5/32",
        PolicyDir::Out,
        IpsecProto::Ah,
        SaMode::Tunnel,
        Some(("192.0.2.1", "192.0.2.2")),
    );
    out.item.upper = 6;
    out.item.dst_port = Some(443);
    let i = import(CLASSIC, CLASSIC_PSK, &[out]);
    let cfg = load(&i.ipsec_conf);
    let c = only_conn(&cfg);
    assert_eq!(c.phase2, Phase2Proto::Ah);
    let p = crate::ike_conn::proposals(c).unwrap();
    assert_eq!(
        p.esp,
        vec![EspProposal {
            encr: EncrAlg::Null,
            integ: IntegAlg::HmacMd5_96,
            pfs_group: Some(DhGroup::Modp1024)
        }]
    );
    assert_eq!(
        c.right.protoport.map(|p| (p.protocol, p.port)),
        Some((6, Some(443)))
    );
    assert_eq!(
        c.left.protoport.map(|p| (p.protocol, p.port)),
        Some((6, None))
    );
    assert_eq!(c.right.subnets, vec![subnet("10.2.0.5/32")]);
}

#[test]
fn specific_sainfo_wins_over_anonymous_and_passive_means_add() {
    let conf = r#"
remote 192.0.2.2 {
	passive on;
	proposal { encryption_algorithm 3des; hash_algorithm sha1; authentication_method pre_shared_key; dh_group 2; }
}
sainfo anonymous {
	encryption_algorithm 3des;
	authentication_algorithm hmac_md5;
}
sainfo address 10.1.0.0/24 any address 10.2.0.0/24 any {
	pfs_group modp1536;
	encryption_algorithm aes 256;
	authentication_algorithm hmac_sha1;
}
"#;
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let i = import(conf, CLASSIC_PSK, &pol);
    let cfg = load(&i.ipsec_conf);
    let c = only_conn(&cfg);
    assert_eq!(c.auto, Auto::Add);
    let p = crate::ike_conn::proposals(c).unwrap();
    assert_eq!(
        p.esp,
        vec![EspProposal {
            encr: EncrAlg::AesCbc { key_bits: 256 },
            integ: IntegAlg::HmacSha1_96,
            pfs_group: Some(DhGroup::Modp1536)
        }]
    );
}

#[test]
fn two_policies_to_one_peer_give_two_conns_and_one_secret() {
    let mut pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    pol.extend(tunnel_pair(
        "192.0.2.1",
        "10.1.0.0/24",
        "192.0.2.2",
        "10.3.0.0/16",
    ));
    let i = import(CLASSIC, CLASSIC_PSK, &pol);
    let cfg = load(&i.ipsec_conf);
    assert_eq!(cfg.conns.len(), 2);
    assert_ne!(cfg.conns[0].name, cfg.conns[1].name);
    assert_eq!(cfg.conns[1].right.subnets, vec![subnet("10.3.0.0/16")]);
    assert_eq!(secret_lines(&i.ipsec_secrets).len(), 1);
}

#[test]
fn remote_anonymous_with_generate_policy_is_a_road_warrior_responder() {
    let conf = r#"
listen { isakmp 203.0.113.1; }
remote anonymous {
	exchange_mode main;
	generate_policy on;
	passive on;
	my_identifier address;
	proposal { encryption_algorithm aes; hash_algorithm sha1; authentication_method pre_shared_key; dh_group modp2048; }
}
sainfo anonymous {
	encryption_algorithm aes;
	authentication_algorithm hmac_sha1;
}
"#;
    let psk = "198.51.100.10 first key\n198.51.100.11 second key\n";
    let i = import(conf, psk, &[]);
    let cfg = load(&i.ipsec_conf);
    let c = only_conn(&cfg);
    assert_eq!(c.right.host, HostAddr::Any);
    assert_eq!(c.left.host, HostAddr::Ip(ip("203.0.113.1")));
    assert_eq!(c.auto, Auto::Add);
    let s = secret_lines(&i.ipsec_secrets);
    assert_eq!(
        s.iter().map(|(ids, _)| ids.join(" ")).collect::<Vec<_>>(),
        vec!["203.0.113.1 198.51.100.10", "203.0.113.1 198.51.100.11"]
    );
    assert!(
        has_note(&i, "racoon.conf:3:", "generate_policy"),
        "{:#?}",
        i.notes
    );
}

#[test]
fn remote_anonymous_serves_a_policy_peer_without_a_remote_of_its_own() {
    let conf = CLASSIC.replace("remote 192.0.2.2 {", "remote anonymous {");
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let i = import(&conf, CLASSIC_PSK, &pol);
    let cfg = load(&i.ipsec_conf);
    let c = only_conn(&cfg);
    assert_eq!(c.right.host, HostAddr::Ip(ip("192.0.2.2")));
    assert!(
        has_note(&i, "setkey.conf:2:", "remote anonymous"),
        "{:#?}",
        i.notes
    );
    assert_eq!(secret_lines(&i.ipsec_secrets).len(), 1);
}

#[test]
fn rsasig_is_converted_with_a_note_that_the_keys_must_be_supplied() {
    let conf = CLASSIC
        .replace("authentication_method pre_shared_key;", "authentication_method rsasig;")
        .replace("\texchange_mode main;\n", "\texchange_mode main;\n\tcertificate_type plain_rsa \"/etc/racoon/west.key\";\n\tpeers_certfile plain_rsa \"/etc/racoon/east.pub\";\n");
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let i = import(&conf, "", &pol);
    let cfg = load(&i.ipsec_conf);
    let c = only_conn(&cfg);
    assert_eq!(c.authby, AuthBy::RsaSig);
    assert!(
        has_note(&i, "racoon.conf:10:", "supply the keys"),
        "{:#?}",
        i.notes
    );
    assert!(
        has_note(&i, "racoon.conf:11:", "peers_certfile"),
        "{:#?}",
        i.notes
    );
    assert!(secret_lines(&i.ipsec_secrets).is_empty());
}

#[test]
fn lifetimes_beyond_ferroswans_limit_are_clamped_with_a_note() {
    let conf = CLASSIC.replace(
        "\texchange_mode main;\n",
        "\texchange_mode main;\n\tlifetime time 48 hour;\n",
    );
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let i = import(&conf, CLASSIC_PSK, &pol);
    let cfg = load(&i.ipsec_conf);
    assert_eq!(only_conn(&cfg).ike_lifetime_secs, 24 * 3600);
    assert!(
        has_note(&i, "racoon.conf:10:", "ikelifetime=24h"),
        "{:#?}",
        i.notes
    );
}

#[test]
fn policy_notes_name_the_setkey_line() {
    let mut pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    // an inbound policy nothing mirrors, a bypass, and a `use` level
    pol.push(policy(
        7,
        "10.9.0.0/16",
        "10.1.0.0/24",
        PolicyDir::In,
        IpsecProto::Esp,
        SaMode::Tunnel,
        Some(("192.0.2.9", "192.0.2.1")),
    ));
    pol.push(Located {
        line: 8,
        item: SpdEntry {
            src: net("10.1.0.0/24"),
            src_port: None,
            dst: net("10.1.0.0/24"),
            dst_port: None,
            upper: 0,
            dir: PolicyDir::Out,
            action: PolicyAction::None,
        },
    });
    if let PolicyAction::Ipsec(r) = &mut pol[0].item.action {
        r[0].level = Level::Use;
    }
    let i = import(CLASSIC, CLASSIC_PSK, &pol);
    load(&i.ipsec_conf);
    assert!(has_note(&i, "setkey.conf:7:", "-P in"), "{:#?}", i.notes);
    assert!(has_note(&i, "setkey.conf:8:", "out none"), "{:#?}", i.notes);
    assert!(
        has_note(&i, "setkey.conf:2:", "level use"),
        "{:#?}",
        i.notes
    );
}

#[test]
fn a_key_with_both_quote_characters_is_written_in_hex() {
    let psk = "192.0.2.2 it's \"quoted\"\n";
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let i = import(CLASSIC, psk, &pol);
    let s = secret_lines(&i.ipsec_secrets);
    assert_eq!(s[0].1, b"it's \"quoted\"".to_vec());
    assert!(has_note(&i, "psk.txt:1:", "hex"));
    // a key with a double quote only is single-quoted
    let i = import(CLASSIC, "192.0.2.2 say \"hi\"\n", &pol);
    assert!(
        i.ipsec_secrets.contains(": PSK 'say \"hi\"'\n"),
        "single-quoted"
    );
}

#[test]
fn secrets_never_show_in_debug_or_notes() {
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let i = import(
        CLASSIC,
        "192.0.2.2 sup3rs3cr3t\n192.0.2.99 0th3rs3cr3t\n",
        &pol,
    );
    assert!(i.ipsec_secrets.contains("sup3rs3cr3t"));
    let dbg = format!("{i:?}");
    assert!(
        !dbg.contains("sup3rs3cr3t") && !dbg.contains("0th3rs3cr3t"),
        "{dbg}"
    );
    assert!(
        i.notes.iter().all(|n| !n.contains("s3cr3t")),
        "{:#?}",
        i.notes
    );
    let (entries, _) = parse_psk("a.example key with spaces # and a hash\n", "psk.txt").unwrap();
    assert!(!format!("{entries:?}").contains("spaces"));
}

// ------------------------------------------------------------------------------ refusals

#[test]
fn aggressive_mode_only_is_an_error_at_its_line() {
    let conf = CLASSIC.replace("exchange_mode main;", "exchange_mode aggressive;");
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let e = import_err(&conf, CLASSIC_PSK, &pol);
    assert!(
        e.iter()
            .any(|m| m.starts_with("racoon.conf:9:") && m.contains("only main mode")),
        "{e:#?}"
    );
}

#[test]
fn unconvertible_setups_are_errors_naming_the_line() {
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    // no sainfo at all
    let conf = CLASSIC.split("sainfo").next().unwrap();
    let e = import_err(conf, CLASSIC_PSK, &pol);
    assert!(
        e.iter()
            .any(|m| m.starts_with("setkey.conf:2:") && m.contains("no sainfo")),
        "{e:#?}"
    );
    // a policy to a peer no remote covers
    let other = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.3", "10.2.0.0/24");
    let e = import_err(CLASSIC, CLASSIC_PSK, &other);
    assert!(
        e.iter()
            .any(|m| m.starts_with("setkey.conf:2:") && m.contains("no `remote 192.0.2.3`")),
        "{e:#?}"
    );
    // an AH+ESP bundle
    let mut bundle = pol.clone();
    if let PolicyAction::Ipsec(r) = &mut bundle[0].item.action {
        let mut ah = r[0].clone();
        ah.proto = IpsecProto::Ah;
        r.push(ah);
    }
    let e = import_err(CLASSIC, CLASSIC_PSK, &bundle);
    assert!(
        e.iter()
            .any(|m| m.starts_with("setkey.conf:2:") && m.contains("bundle")),
        "{e:#?}"
    );
    // only unsupported proposals
    let conf = CLASSIC.replace(
        "encryption_algorithm 3des;\n\t\thash",
        "encryption_algorithm des;\n\t\thash",
    );
    let e = import_err(&conf, CLASSIC_PSK, &pol);
    assert!(
        e.iter()
            .any(|m| m.starts_with("racoon.conf:8:") && m.contains("no proposal")),
        "{e:#?}"
    );
    // XAUTH
    let conf = CLASSIC.replace(
        "authentication_method pre_shared_key;",
        "authentication_method xauth_psk_client;",
    );
    let e = import_err(&conf, CLASSIC_PSK, &pol);
    assert!(e.iter().any(|m| m.starts_with("racoon.conf:8:")), "{e:#?}");
    // a misspelt keyword
    let conf = CLASSIC.replace("exchange_mode main;", "exchange_mod main;");
    let e = import_err(&conf, CLASSIC_PSK, &pol);
    assert!(
        e.iter()
            .any(|m| m.starts_with("racoon.conf:9:") && m.contains("not a racoon.conf keyword")),
        "{e:#?}"
    );
    // keywords out of place
    let conf = CLASSIC.replace(
        "\tpfs_group modp1024;",
        "\tpfs_group modp1024;\n\tproposal { dh_group 2; }",
    );
    let e = import_err(&conf, CLASSIC_PSK, &pol);
    assert!(
        e.iter().any(|m| m.starts_with("racoon.conf:20:")
            && m.contains("in `sainfo anonymous`")
            && m.contains("keyword here")),
        "{e:#?}"
    );
    let e = import_err(
        &format!("exchange_mode main;\n{CLASSIC}"),
        CLASSIC_PSK,
        &pol,
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("racoon.conf:1:") && m.contains("top level")),
        "{e:#?}"
    );
    // an include, which the import does not follow
    let e = import_err(
        &format!("include \"/etc/racoon/remotes.conf\";\n{CLASSIC}"),
        CLASSIC_PSK,
        &pol,
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("racoon.conf:1:") && m.contains("include")),
        "{e:#?}"
    );
    // a keyid read from a file
    let conf = CLASSIC.replace(
        "exchange_mode main;",
        "exchange_mode main; my_identifier keyid file \"/etc/racoon/id\";",
    );
    let e = import_err(&conf, CLASSIC_PSK, &pol);
    assert!(
        e.iter()
            .any(|m| m.starts_with("racoon.conf:9:") && m.contains("keyid")),
        "{e:#?}"
    );
    // nothing to convert
    let e = import_err(CLASSIC, CLASSIC_PSK, &[]);
    assert!(e[0].contains("nothing to convert"), "{e:#?}");
    assert!(
        e.iter()
            .any(|m| m.starts_with("racoon.conf:8:") && m.contains("no conn written")),
        "{e:#?}"
    );
}

#[test]
fn syntax_errors_are_one_file_line_message() {
    let cases: &[(&str, &str)] = &[
        // unbalanced: a block never closed (reported at its opening line)
        (
            "remote 192.0.2.2 {\n\texchange_mode main;\n\tproposal {\n\t\tdh_group 2;\n}\n",
            "racoon.conf:1:",
        ),
        // a `}` too many
        ("log notify;\n}\n", "racoon.conf:2:"),
        // a missing `;` before `}`
        (
            "remote 192.0.2.2 {\n\texchange_mode main\n}\n",
            "racoon.conf:2:",
        ),
        // a missing `;` before the next statement
        (
            "remote 192.0.2.2 {\n\texchange_mode main\n\tlifetime time 1 hour;\n}\n",
            "racoon.conf:2:",
        ),
        // a missing `;` at the end
        ("log notify", "racoon.conf:1:"),
        // an unterminated string
        (
            "path pre_shared_key \"/etc/racoon/psk.txt;\n",
            "racoon.conf:1:",
        ),
        // garbage
        ("remote 192.0.2.2 {\n\t{ } }\n", "racoon.conf:2:"),
        ("\u{1}\n", "racoon.conf:1:"),
        ("remote 300.1.1.1 { }\n", "racoon.conf:1:"),
        (
            "remote 192.0.2.2 {\n\tlifetime time ten hours;\n}\n",
            "racoon.conf:2:",
        ),
        (
            "sainfo address 10.0.0.0/33 any anonymous { }\n",
            "racoon.conf:1:",
        ),
    ];
    for (text, want) in cases {
        let e = import_err(text, "", &[]);
        assert_eq!(e.len(), 1, "{text:?}: {e:#?}");
        assert!(e[0].starts_with(want), "{text:?}: {e:#?}");
    }
    let e = parse_conf(
        "remote 192.0.2.2 {\n\texchange_mode main\n}\n",
        "nosemi.conf",
    )
    .unwrap_err();
    assert_eq!(
        e,
        vec![
            "nosemi.conf:2: missing `;` after `exchange_mode main` (before the `}` on line 3)"
                .to_string()
        ]
    );
    let e = parse_conf(
        "remote 192.0.2.2 {\n\texchange_mode main;\n\tproposal {\n\t\tdh_group 2;\n}\n",
        "unbalanced.conf",
    )
    .unwrap_err();
    assert_eq!(
        e,
        vec![
            "unbalanced.conf:1: the `{` of `remote 192.0.2.2` is never closed (unbalanced braces)"
                .to_string()
        ]
    );
}

#[test]
fn psk_txt_is_read_as_racoon_reads_it() {
    let text = "# comment\n192.0.2.2\tkey with spaces # not a comment\n\n@gw.example  0xABCDEF01\r\nno-key-here\n  indented key\n";
    let (e, notes) = parse_psk(text, "psk.txt").unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[0].line, e[0].id.as_str(), e[0].key.as_str()),
        (2, "192.0.2.2", "key with spaces # not a comment")
    );
    assert_eq!((e[1].line, e[1].id.as_str()), (4, "@gw.example"));
    assert_eq!(e[1].key_bytes().to_vec(), vec![0xab, 0xcd, 0xef, 0x01]);
    assert!(
        notes.iter().any(|n| n.starts_with("psk.txt:5:")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with("psk.txt:6:")),
        "{notes:?}"
    );
    let e = parse_psk("ok key\n192.0.2.2 0x123\n", "psk.txt").unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("psk.txt:2:") && !e[0].contains("0x123"),
        "{e:?}"
    );
}

#[test]
fn the_parser_reads_the_racoon_grammar() {
    let conf = parse_conf(
        r#"
listen { isakmp 192.0.2.1 [500]; isakmp_natt 192.0.2.1 [4500]; adminsock disabled; }
remote "east" {
	remote_address 192.0.2.2;
	exchange_mode main,aggressive;
	my_identifier address 192.0.2.1;
	peers_identifier asn1dn "C=JP, O=KAME, CN=east";
	peers_identifier keyid tag "east-key";
	proposal_check strict;
	dpd_delay 20; dpd_retry 3; dpd_maxfail 2;
	proposal { encryption_algorithm aes 256; hash_algorithm sha256; authentication_method rsasig; dh_group 16; lifetime time 30 min; }
}
sainfo address 10.1.0.0/24[80] tcp address 10.2.0.0/16 any from fqdn "east.example" {
	lifetime time 600 sec;
	encryption_algorithm aes 128, 3des;
	authentication_algorithm hmac_sha1, hmac_md5;
}
sainfo subnet 10.1.0.0/24 any anonymous { encryption_algorithm 3des; authentication_algorithm hmac_sha1; }
"#,
        "r.conf",
    )
    .unwrap();
    assert_eq!(conf.listen.len(), 2);
    assert_eq!(conf.listen[0].item.port, Some(500));
    assert!(conf.listen[1].item.natt);
    assert_eq!(conf.kept.len(), 1, "adminsock kept: {:?}", conf.kept);
    let r = &conf.remotes[0];
    assert_eq!(r.peer, RemotePeer::Named("east".into()));
    assert_eq!(
        r.remote_address.as_ref().map(|a| a.item),
        Some(ip("192.0.2.2"))
    );
    assert_eq!(
        r.exchange_mode.as_ref().unwrap().item,
        vec!["main", "aggressive"]
    );
    assert_eq!(
        r.my_identifier.as_ref().unwrap().item,
        Identifier::Address(Some(ip("192.0.2.1")))
    );
    assert_eq!(
        r.peers_identifier[0].item,
        Identifier::Asn1Dn(Some("C=JP, O=KAME, CN=east".into()))
    );
    assert_eq!(
        r.peers_identifier[1].item,
        Identifier::KeyIdTag("east-key".into())
    );
    assert_eq!(r.dpd_delay.as_ref().map(|d| d.item), Some(20));
    let p = &r.proposals[0];
    assert_eq!(p.encryption.as_ref().unwrap().item.key_bits, Some(256));
    assert_eq!(p.lifetime.as_ref().unwrap().item, 1800);
    let s = &conf.sainfos[0];
    assert_eq!(
        s.local,
        SaId::Net {
            net: net("10.1.0.0/24"),
            port: Some(80),
            upper: 6
        }
    );
    assert_eq!(
        s.remote,
        SaId::Net {
            net: net("10.2.0.0/16"),
            port: None,
            upper: 0
        }
    );
    assert_eq!(
        s.from.as_ref().unwrap().item,
        Identifier::Fqdn("east.example".into())
    );
    assert_eq!(s.encryption.as_ref().unwrap().item.len(), 2);
    assert_eq!(conf.sainfos[1].remote, SaId::Anonymous);
}

#[test]
fn a_named_remote_with_rsasig_and_dn_ids_converts() {
    let conf = r#"
remote "east" {
	remote_address 192.0.2.2;
	my_identifier asn1dn "C=JP, O=KAME, CN=west";
	peers_identifier asn1dn "C=JP, O=KAME, CN=east";
	verify_identifier on;
	proposal { encryption_algorithm aes 256; hash_algorithm sha256; authentication_method rsasig; dh_group 16; }
}
sainfo anonymous { encryption_algorithm aes 256; authentication_algorithm hmac_sha256; pfs_group 16; }
"#;
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let i = import(conf, "", &pol);
    let cfg = load(&i.ipsec_conf);
    let c = only_conn(&cfg);
    assert_eq!(c.left.id, Some(Id::Dn("C=JP, O=KAME, CN=west".into())));
    assert_eq!(c.right.id, Some(Id::Dn("C=JP, O=KAME, CN=east".into())));
    let p = crate::ike_conn::proposals(c).unwrap();
    assert_eq!(p.ike[0].dh, DhGroup::Modp4096);
}

// ------------------------------------------------------------------------------ robustness

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
}

#[test]
fn garbled_inputs_never_panic() {
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let seeds = [CLASSIC, AES];
    // every prefix of the valid files
    for s in seeds {
        for cut in 0..s.len() {
            if let Some(prefix) = s.get(..cut) {
                let _ = import_racoon(prefix, "r", CLASSIC_PSK, "p", &pol, "s");
                let _ = import_racoon(CLASSIC, "r", prefix, "p", &pol, "s");
            }
        }
    }
    // random mutations: racoon's special characters and keywords spliced in, bytes dropped
    let pieces = [
        "{",
        "}",
        ";",
        ",",
        "\"",
        "#",
        "\n",
        " ",
        "[",
        "]",
        "/",
        "remote",
        "sainfo",
        "anonymous",
        "proposal",
        "address",
        "0x",
        "lifetime time",
        "9999999999999",
        "::",
        "10.0.0.0/0",
        "é",
        "\u{0}",
        "\t",
        "aes 999",
        "dh_group",
        "exchange_mode",
        "from",
        "group",
        "inherit",
        "[65536]",
        "any",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let base = seeds[round % seeds.len()];
        let mut text: String = base.to_string();
        for _ in 0..1 + rng.below(6) {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            if rng.below(2) == 0 {
                text.insert_str(at, pieces[rng.below(pieces.len())]);
            } else {
                let mut end = (at + 1 + rng.below(8)).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(at..end, "");
            }
        }
        let r = import_racoon(&text, "r", &text, "p", &pol, "s");
        if let Err(e) = r {
            assert!(!e.is_empty());
            for m in &e {
                assert!(
                    m.starts_with("r:") || m.starts_with("p:") || m.starts_with("s:"),
                    "{m}"
                );
            }
        }
    }
    // random bytes
    for _ in 0..2000 {
        let len = rng.below(300);
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0x7f) as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = import_racoon(&text, "r", &text, "p", &pol, "s");
    }
    // deep nesting and long inputs are refused, not recursed into
    let deep = "a {".repeat(10_000);
    assert!(import_racoon(&deep, "r", "", "p", &[], "s").unwrap_err()[0].contains("nested deeper"));
    let long = format!("log {};", "x".repeat(100_000));
    assert!(import_racoon(&long, "r", "", "p", &[], "s").is_err());
    let huge = "#".repeat(super::parser::MAX_CONF_BYTES + 1);
    assert!(import_racoon(&huge, "r", "", "p", &[], "s").unwrap_err()[0].contains("larger"));
}

#[test]
fn every_successful_import_loads() {
    // mutations that still convert must still give a file ferroswan loads
    let pol = tunnel_pair("192.0.2.1", "10.1.0.0/24", "192.0.2.2", "10.2.0.0/24");
    let variants = [
        ("3des", "md5", "modp1024"),
        ("aes", "sha1", "modp2048"),
        ("aes 192", "sha384", "modp3072"),
        ("rijndael 256", "sha512", "18"),
        ("3des", "sha256", "5"),
    ];
    for (enc, hash, dh) in variants {
        let conf = CLASSIC
            .replace(
                "encryption_algorithm 3des;\n\t\thash_algorithm md5;",
                &format!("encryption_algorithm {enc};\n\t\thash_algorithm {hash};"),
            )
            .replace("dh_group modp1024;", &format!("dh_group {dh};"))
            .replace("pfs_group modp1024;", &format!("pfs_group {dh};"));
        let i = import(&conf, CLASSIC_PSK, &pol);
        let cfg = load(&i.ipsec_conf);
        let p = crate::ike_conn::proposals(only_conn(&cfg)).unwrap();
        assert_eq!(p.ike.len(), 1, "{enc} {hash} {dh}");
        assert_eq!(p.esp[0].pfs_group, Some(p.ike[0].dh), "{enc} {hash} {dh}");
    }
}

#[test]
fn a_setkey_script_read_by_the_setkey_parser_gives_the_policies() {
    let script = "flush;\nspdflush;\n# an old policy, flushed below\n\
        spdadd 10.9.0.0/24 10.8.0.0/24 any -P out ipsec esp/tunnel/192.0.2.1-192.0.2.2/require;\n\
        spdflush;\n\
        spdadd 10.1.0.0/24 10.2.0.0/24 any -P out ipsec\n\tesp/tunnel/192.0.2.1-192.0.2.2/require;\n\
        spdadd 10.2.0.0/24 10.1.0.0/24 any -P in ipsec\n\tesp/tunnel/192.0.2.2-192.0.2.1/require;\n\
        spdadd 10.1.0.0/24 10.7.0.0/24 any -P out ipsec esp/tunnel/192.0.2.1-192.0.2.2/require;\n\
        spddelete 10.1.0.0/24 10.7.0.0/24 any -P out;\n\
        add 192.0.2.1 192.0.2.2 esp 0x1000 -E rijndael-cbc 0x00112233445566778899aabbccddeeff\n\t-A hmac-sha1 0x00112233445566778899aabbccddeeff00112233;\n";
    let stmts = crate::setkey::parser::parse(script, "setkey.conf").unwrap();
    let (pol, notes) = policies_from_setkey(&stmts, "setkey.conf");
    assert_eq!(pol.len(), 2, "{pol:#?}");
    assert_eq!(pol[0].line, 6);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("setkey.conf:12:") && notes[0].contains("import setkey"),
        "{notes:?}"
    );
    let i = import(CLASSIC, CLASSIC_PSK, &pol);
    let cfg = load(&i.ipsec_conf);
    assert_eq!(only_conn(&cfg).right.subnets, vec![subnet("10.2.0.0/24")]);
    assert!(i.ipsec_conf.contains("# setkey.conf:6: spdadd 10.1.0.0/24 10.2.0.0/24 any -P out ipsec esp/tunnel/192.0.2.1-192.0.2.2/require\n"), "{}", i.ipsec_conf);
}
