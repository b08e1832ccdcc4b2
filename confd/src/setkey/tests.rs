//! Unit tests of the setkey language: parsing every statement form and every error, applying,
//! rendering, converting to fwd's state from each gateway's side, and importing as manual conns
//! that load and give the same SAs and policies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::apply::{apply, apply_with, convert, to_conn_state, SetkeyState, CONN_NAME};
use super::import::{ah_name, esp_name, import_setkey};
use super::model::*;
use super::parser::{parse, MAX_SCRIPT_BYTES, MAX_STATEMENTS};
use super::render;
use crate::conf::{load_str, orient};
use crate::manual::{enc_key_len, integ_key_len, manual_state, oriented, parse_ah, parse_esp};
use ipc::policy::{self, ConnState, Net, PolicySpec, Ports};
use ipc::sa::{Direction, EncrAlg, IntegAlg, IpsecProto, SaId, SaMode, SaSpec};
use std::net::IpAddr;

const WEST: &str = "192.0.2.1";
const EAST: &str = "192.0.2.2";
const WEST_NET: &str = "10.1.0.0/24";
const EAST_NET: &str = "10.2.0.0/24";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

/// `len` bytes of key in hex, different for each `seed`.
fn key(len: usize, seed: u8) -> String {
    let mut s = String::from("0x");
    for i in 0..len {
        s.push_str(&format!(
            "{:02x}",
            (i as u8).wrapping_mul(29).wrapping_add(seed)
        ));
    }
    s
}

fn key_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed))
        .collect()
}

/// Acceptance 1, first script: ESP inside AH in transport mode between the two hosts, as the host
/// at `me` writes it (both hosts hold the same SAs; their policies are mirrored).
fn transport_script(me: &str, peer: &str) -> String {
    let (enc, md5, sha1) = (key(24, 3), key(16, 5), key(20, 7));
    format!(
        "#!/usr/sbin/setkey -f\n# ESP inside AH, transport mode, between the two hosts\nflush;\nspdflush;\n\n\
         add {WEST} {EAST} esp 0x1001 -m transport -E 3des-cbc {enc} -A hmac-md5 {md5};\n\
         add {EAST} {WEST} esp 0x1002 -m transport\n\t-E 3des-cbc {enc}\n\t-A hmac-md5 {md5};\n\
         add {WEST} {EAST} ah 0x1003 -m transport -A hmac-sha1 {sha1};\n\
         add {EAST} {WEST} ah 0x1004 -m transport -A hmac-sha1 {sha1};\n\n\
         spdadd {me} {peer} any -P out ipsec esp/transport//require ah/transport//require;\n\
         spdadd {peer} {me} any -P in ipsec esp/transport//require ah/transport//require;\n"
    )
}

/// Acceptance 1, second script: tunnel-mode ESP between the two subnets.
fn tunnel_script(me: &str, my_net: &str, peer: &str, peer_net: &str) -> String {
    let (aes, sha) = (key(16, 11), key(32, 13));
    format!(
        "flush;\nspdflush;\n\
         add {WEST} {EAST} esp 0x2001 -m tunnel -E rijndael-cbc {aes} -A hmac-sha2-256 {sha};\n\
         add {EAST} {WEST} esp 0x2002 -m tunnel -E rijndael-cbc {aes} -A hmac-sha2-256 {sha};\n\
         spdadd {my_net} {peer_net} any -P out ipsec esp/tunnel/{me}-{peer}/require;\n\
         spdadd {peer_net} {my_net} any -P in ipsec esp/tunnel/{peer}-{me}/require;\n"
    )
}

fn west_transport() -> String {
    transport_script(WEST, EAST)
}
fn east_transport() -> String {
    transport_script(EAST, WEST)
}
fn west_tunnel() -> String {
    tunnel_script(WEST, WEST_NET, EAST, EAST_NET)
}
fn east_tunnel() -> String {
    tunnel_script(EAST, EAST_NET, WEST, WEST_NET)
}

fn stmts(text: &str) -> Vec<Located<Statement>> {
    parse(text, "t.setkey").unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

fn items(text: &str) -> Vec<Statement> {
    stmts(text).into_iter().map(|l| l.item).collect()
}

/// The errors of a script that must not parse, as `file:line: message` strings.
fn parse_errors(text: &str) -> Vec<String> {
    match parse(text, "t.setkey") {
        Ok(s) => panic!("accepted: {text}\n{s:?}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// One error, at `line`, mentioning every word of `wants`.
fn assert_one_error(text: &str, line: usize, wants: &[&str]) {
    let errs = parse_errors(text);
    assert_eq!(errs.len(), 1, "{errs:?}\n{text}");
    let prefix = format!("t.setkey:{line}: ");
    assert!(
        errs[0].starts_with(&prefix),
        "`{}` should start with `{prefix}`",
        errs[0]
    );
    for w in wants {
        assert!(errs[0].contains(w), "`{}` should mention `{w}`", errs[0]);
    }
}

fn state_of(text: &str) -> SetkeyState {
    apply(&SetkeyState::new(), &stmts(text), "t.setkey")
        .unwrap_or_else(|e| panic!("{e:?}"))
        .0
}

// ------------------------------------------------------------------ parsing

#[test]
fn every_statement_form_parses() {
    let k3 = key(24, 1);
    let k16 = key(16, 2);
    let text = format!(
        "# a comment line\n\
         flush;  # a trailing comment\n\
         flush esp;\nflush ah;\nspdflush;\n\
         add {WEST} {EAST} esp 4096 -m tunnel -r 32 -E 3des-cbc {k3} -A hmac-md5 {k16};\n\
         add -4 {EAST}\n  {WEST}\n  ah 0x1002\n  -A hmac-sha1 \"twenty-byte-secret!!\";\n\
         add 2001:db8::1 2001:db8::2 esp 0x3000 -E null -A hmac-sha2-512 {k64};\n\
         delete {WEST} {EAST} esp 0x1000;\n\
         deleteall {WEST} {EAST} ah;\n\
         get {WEST} {EAST} esp 0x1000;\n\
         spdadd 10.1.0.0/24[any] 10.2.0.0/24[80] tcp -P out ipsec esp/tunnel/{WEST}-{EAST}/require;\n\
         spdadd {WEST} {EAST} any -P in ipsec esp/transport//use ah/transport//unique:7;\n\
         spdadd 10.9.0.0/16 10.8.0.0/16 any -P out none;\n\
         spdadd 10.9.0.0/16 10.7.0.0/16 udp -P out discard;\n\
         spdadd 10.7.0.0/16 10.9.0.0/16 any -P fwd ipsec esp/tunnel/{EAST}-{WEST}/default;\n\
         spddelete 10.1.0.0/24[any] 10.2.0.0/24[80] tcp -P out;\n\
         dump;\ndump ah;\nspddump;;\n",
        k64 = key(64, 3)
    );
    let s = stmts(&text);
    let lines: Vec<usize> = s.iter().map(|l| l.line).collect();
    assert_eq!(
        lines,
        vec![2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]
    );
    let v: Vec<Statement> = s.into_iter().map(|l| l.item).collect();
    assert_eq!(v[0], Statement::Flush(None));
    assert_eq!(v[1], Statement::Flush(Some(IpsecProto::Esp)));
    assert_eq!(v[2], Statement::Flush(Some(IpsecProto::Ah)));
    assert_eq!(v[3], Statement::SpdFlush);
    let Statement::Add(a) = &v[4] else { panic!() };
    assert_eq!(
        (a.src, a.dst, a.proto, a.spi),
        (ip(WEST), ip(EAST), IpsecProto::Esp, 4096)
    );
    assert_eq!((a.mode, a.replay), (SadMode::Tunnel, Some(32)));
    let (e, ek) = a.enc.as_ref().unwrap();
    assert_eq!(
        (*e, ek.expose()),
        (EncrAlg::TripleDesCbc, key_bytes(24, 1).as_slice())
    );
    let (i, ik) = a.auth.as_ref().unwrap();
    assert_eq!(
        (*i, ik.expose()),
        (IntegAlg::HmacMd5_96, key_bytes(16, 2).as_slice())
    );
    let Statement::Add(b) = &v[5] else { panic!() };
    assert_eq!(
        (b.proto, b.spi, b.mode, b.replay),
        (IpsecProto::Ah, 0x1002, SadMode::Any, None)
    );
    assert!(b.enc.is_none());
    assert_eq!(b.auth.as_ref().unwrap().1.expose(), b"twenty-byte-secret!!");
    let Statement::Add(c) = &v[6] else { panic!() };
    assert_eq!(c.src, ip("2001:db8::1"));
    assert_eq!(c.enc.as_ref().unwrap().0, EncrAlg::Null);
    assert!(c.enc.as_ref().unwrap().1.is_empty());
    assert_eq!(c.auth.as_ref().unwrap().0, IntegAlg::HmacSha512_256);
    assert_eq!(
        v[7],
        Statement::Delete {
            src: ip(WEST),
            dst: ip(EAST),
            proto: IpsecProto::Esp,
            spi: 0x1000
        }
    );
    assert_eq!(
        v[8],
        Statement::DeleteAll {
            src: ip(WEST),
            dst: ip(EAST),
            proto: IpsecProto::Ah
        }
    );
    assert_eq!(
        v[9],
        Statement::Get {
            src: ip(WEST),
            dst: ip(EAST),
            proto: IpsecProto::Esp,
            spi: 0x1000
        }
    );
    assert_eq!(
        v[10],
        Statement::SpdAdd(SpdEntry {
            src: net("10.1.0.0/24"),
            src_port: None,
            dst: net("10.2.0.0/24"),
            dst_port: Some(80),
            upper: 6,
            dir: PolicyDir::Out,
            action: PolicyAction::Ipsec(vec![IpsecRequest {
                proto: IpsecProto::Esp,
                mode: SaMode::Tunnel,
                endpoints: Some((ip(WEST), ip(EAST))),
                level: Level::Require,
            }]),
        })
    );
    let Statement::SpdAdd(p) = &v[11] else {
        panic!()
    };
    assert_eq!(
        (p.src, p.dst, p.dir),
        (net("192.0.2.1/32"), net("192.0.2.2/32"), PolicyDir::In)
    );
    assert_eq!(
        p.action,
        PolicyAction::Ipsec(vec![
            IpsecRequest {
                proto: IpsecProto::Esp,
                mode: SaMode::Transport,
                endpoints: None,
                level: Level::Use
            },
            IpsecRequest {
                proto: IpsecProto::Ah,
                mode: SaMode::Transport,
                endpoints: None,
                level: Level::Unique(Some(7))
            },
        ])
    );
    let Statement::SpdAdd(p) = &v[12] else {
        panic!()
    };
    assert_eq!((&p.action, p.upper), (&PolicyAction::None, 0));
    let Statement::SpdAdd(p) = &v[13] else {
        panic!()
    };
    assert_eq!((&p.action, p.upper), (&PolicyAction::Discard, 17));
    let Statement::SpdAdd(p) = &v[14] else {
        panic!()
    };
    assert_eq!(p.dir, PolicyDir::Fwd);
    let PolicyAction::Ipsec(r) = &p.action else {
        panic!()
    };
    assert_eq!(r[0].level, Level::Default);
    assert_eq!(
        v[15],
        Statement::SpdDelete {
            src: net("10.1.0.0/24"),
            src_port: None,
            dst: net("10.2.0.0/24"),
            dst_port: Some(80),
            upper: 6,
            dir: PolicyDir::Out
        }
    );
    assert_eq!(v[16], Statement::Dump(None));
    assert_eq!(v[17], Statement::Dump(Some(IpsecProto::Ah)));
    assert_eq!(v[18], Statement::SpdDump);
}

#[test]
fn algorithms_map_to_what_fwd_takes_with_their_key_lengths() {
    let cases: &[(&str, usize, EncrAlg)] = &[
        ("3des-cbc", 24, EncrAlg::TripleDesCbc),
        ("rijndael-cbc", 16, EncrAlg::AesCbc { key_bits: 128 }),
        ("aes-cbc", 24, EncrAlg::AesCbc { key_bits: 192 }),
        ("aes-cbc", 32, EncrAlg::AesCbc { key_bits: 256 }),
        ("aes-ctr", 20, EncrAlg::AesCtr { key_bits: 128 }),
        ("aes-ctr", 36, EncrAlg::AesCtr { key_bits: 256 }),
    ];
    for (alg, len, want) in cases {
        let text = format!(
            "add {WEST} {EAST} esp 0x1000 -E {alg} {} -A hmac-sha1 {};",
            key(*len, 1),
            key(20, 2)
        );
        let Statement::Add(a) = &items(&text)[0] else {
            panic!()
        };
        let (e, k) = a.enc.as_ref().unwrap();
        assert_eq!(*e, *want, "{alg}");
        assert_eq!(
            k.len(),
            enc_key_len(*e),
            "{alg}: the key includes the nonce as manual.rs has it"
        );
    }
    for (len, bits) in [(20, 128u16), (36, 256)] {
        let text = format!(
            "add {WEST} {EAST} esp 0x1000 -E aes-gcm-16 {};",
            key(len, 1)
        );
        let Statement::Add(a) = &items(&text)[0] else {
            panic!()
        };
        let (e, k) = a.enc.as_ref().unwrap();
        assert_eq!(
            *e,
            EncrAlg::AesGcm {
                key_bits: bits,
                icv_bytes: 16
            }
        );
        assert_eq!(k.len(), enc_key_len(*e), "key followed by the 4-byte salt");
        assert!(a.auth.is_none());
    }
    let auths: &[(&str, usize, IntegAlg)] = &[
        ("hmac-md5", 16, IntegAlg::HmacMd5_96),
        ("hmac-sha1", 20, IntegAlg::HmacSha1_96),
        ("hmac-sha2-256", 32, IntegAlg::HmacSha256_128),
        ("hmac-sha256", 32, IntegAlg::HmacSha256_128),
        ("hmac-sha2-384", 48, IntegAlg::HmacSha384_192),
        ("hmac-sha2-512", 64, IntegAlg::HmacSha512_256),
    ];
    for (alg, len, want) in auths {
        let text = format!("add {WEST} {EAST} ah 0x1000 -A {alg} {};", key(*len, 1));
        let Statement::Add(a) = &items(&text)[0] else {
            panic!()
        };
        let (i, k) = a.auth.as_ref().unwrap();
        assert_eq!((*i, k.len()), (*want, integ_key_len(*want)), "{alg}");
    }
    // `-A null` with ESP encryption is "no integrity": refused; `-E null -A null` too.
    assert!(parse(
        &format!(
            "add {WEST} {EAST} esp 0x1000 -E 3des-cbc {} -A null;",
            key(24, 1)
        ),
        "t"
    )
    .is_err());
    assert!(parse(
        &format!("add {WEST} {EAST} esp 0x1000 -E null -A null;"),
        "t"
    )
    .is_err());
}

#[test]
fn a_missing_semicolon_is_a_file_line_error() {
    // The last statement never ends.
    assert_one_error("flush;\nspdflush", 2, &["missing `;`", "spdflush"]);
    // A statement runs into the next line's statement.
    assert_one_error(
        "spdflush\nflush;\n",
        1,
        &["missing `;`", "spdflush", "line 2"],
    );
    let text = format!(
        "add {WEST} {EAST} esp 0x1000 -E 3des-cbc {} -A hmac-md5 {}\n\nspdadd {WEST} {EAST} any -P out none;\n",
        key(24, 1),
        key(16, 2)
    );
    assert_one_error(&text, 1, &["missing `;`", "add", "spdadd"]);
}

#[test]
fn an_unbalanced_quote_is_a_file_line_error() {
    let text =
        format!("flush;\nadd {WEST} {EAST} ah 0x1000 -A hmac-md5 \"sixteen-bytes!!!;\nspdflush;\n");
    assert_one_error(&text, 2, &["unbalanced", "\""]);
    assert_one_error(
        "flush;\nadd 1.2.3.4 5.6.7.8 ah 0x1000 -A hmac-md5 ab\"c\";\n",
        2,
        &["\""],
    );
}

#[test]
fn unknown_and_unsupported_statements_are_named() {
    assert_one_error(
        "flush;\n\nfrobnicate 1 2;\n",
        3,
        &["unknown statement `frobnicate`"],
    );
    assert_one_error(
        "spdupdate 10.0.0.0/8 10.1.0.0/16 any -P out none;",
        1,
        &["`spdupdate` is not supported"],
    );
    assert_one_error(
        "update 1.2.3.4 5.6.7.8 esp 0x1000;",
        1,
        &["`update` is not supported"],
    );
    assert_one_error("\"flush\";", 1, &["unknown statement"]);
}

#[test]
fn des_cbc_is_refused_as_insecure() {
    let text = format!(
        "flush;\nadd {WEST} {EAST} esp 0x1000 -E des-cbc {} -A hmac-md5 {};\n",
        key(8, 1),
        key(16, 2)
    );
    assert_one_error(&text, 2, &["des-cbc", "insecure"]);
}

#[test]
fn a_key_of_the_wrong_length_names_the_algorithm_and_never_the_key() {
    let cases: &[(String, &[&str])] = &[
        (
            format!(
                "add {WEST} {EAST} esp 0x1000 -E 3des-cbc 0x0011 -A hmac-md5 {};",
                key(16, 2)
            ),
            &["3des-cbc", "24 bytes", "got 2"],
        ),
        (
            format!(
                "add {WEST} {EAST} esp 0x1000 -E aes-cbc {} -A hmac-sha1 {};",
                key(20, 1),
                key(20, 2)
            ),
            &["aes-cbc", "16, 24 or 32", "got 20"],
        ),
        (
            format!(
                "add {WEST} {EAST} esp 0x1000 -E 3des-cbc {} -A hmac-sha1 {};",
                key(24, 1),
                key(16, 2)
            ),
            &["hmac-sha1", "20 bytes", "got 16"],
        ),
        (
            format!(
                "add {WEST} {EAST} ah 0x1000 -A hmac-sha2-256 {};",
                key(20, 2)
            ),
            &["hmac-sha2-256", "32 bytes", "got 20"],
        ),
        (
            format!("add {WEST} {EAST} esp 0x1000 -E aes-gcm-16 {};", key(16, 2)),
            &["aes-gcm-16", "salt", "got 16"],
        ),
        (
            format!("add {WEST} {EAST} esp 0x1000 -E aes-gcm-16 {};", key(28, 2)),
            &["aes-gcm-16", "192-bit"],
        ),
        (
            format!(
                "add {WEST} {EAST} esp 0x1000 -E aes-ctr {} -A hmac-sha1 {};",
                key(16, 2),
                key(20, 3)
            ),
            &["aes-ctr", "nonce"],
        ),
        (
            format!("add {WEST} {EAST} ah 0x1000 -A hmac-md5 \"short\";"),
            &["hmac-md5", "16 bytes", "got 5"],
        ),
        (
            format!("add {WEST} {EAST} ah 0x1000 -A hmac-md5 0x123;"),
            &["hmac-md5", "odd number"],
        ),
        (
            format!("add {WEST} {EAST} ah 0x1000 -A hmac-md5 0xzz112233445566778899aabbccddeeff;"),
            &["hmac-md5", "hex digit"],
        ),
        (
            format!("add {WEST} {EAST} ah 0x1000 -A hmac-md5 deadbeef;"),
            &["hmac-md5", "0x"],
        ),
    ];
    for (text, wants) in cases {
        assert_one_error(text, 1, wants);
        let err = parse_errors(text).join("\n");
        for secret in [
            "0011",
            "ddeeff",
            "short",
            "deadbeef",
            &key(20, 1)[2..12],
            &key(16, 2)[2..12],
        ] {
            assert!(!err.contains(secret), "key material `{secret}` in `{err}`");
        }
    }
}

#[test]
fn every_other_error_is_named_with_its_line() {
    let k3 = key(24, 1);
    let k16 = key(16, 2);
    let cases: Vec<(String, &[&str])> = vec![
        (format!("add {WEST} {EAST} esp 255 -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["SPI 255", "reserved"]),
        (format!("add {WEST} {EAST} esp 0x0 -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["reserved"]),
        (format!("add {WEST} {EAST} esp 0x1ffffffff -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["not an SPI"]),
        (format!("add {WEST} {EAST} esp twelve;"), &["not an SPI"]),
        (format!("add {WEST} {EAST} esp 0x1000 -E 3des-cbc {k3} -A hmac-md5 {k16} -C deflate;"), &["IPComp", "-C"]),
        (format!("add {WEST} {EAST} esp 0x1000 -u 5 -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["-u", "not supported"]),
        (format!("add {WEST} {EAST} esp 0x1000 -lh 3600 -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["lifetimes", "-lh"]),
        (format!("add {WEST} {EAST} esp 0x1000 -ls 60 -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["-ls"]),
        (format!("add {WEST} {EAST} esp 0x1000 -f random-pad -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["-f random-pad", "not supported"]),
        (format!("add {WEST} {EAST} esp 0x1000 -m both -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["-m both"]),
        (format!("add {WEST} {EAST} esp 0x1000 -r 5000 -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["-r", "4032"]),
        (format!("add {WEST} {EAST} esp 0x1000 -m tunnel -m tunnel -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["`-m` given twice"]),
        (format!("add {WEST} {EAST} esp 0x1000 -A hmac-md5 {k16};"), &["ESP needs an encryption algorithm"]),
        (format!("add {WEST} {EAST} esp 0x1000 -E null;"), &["-E null", "needs `-A`"]),
        (format!("add {WEST} {EAST} esp 0x1000 -E 3des-cbc {k3};"), &["without integrity"]),
        (format!("add {WEST} {EAST} esp 0x1000 -E aes-gcm-16 {} -A hmac-sha1 {};", key(20, 1), key(20, 2)), &["own integrity"]),
        (format!("add {WEST} {EAST} ah 0x1000 -E 3des-cbc {k3} -A hmac-md5 {k16};"), &["AH has no encryption"]),
        (format!("add {WEST} {EAST} ah 0x1000;"), &["AH needs an authentication algorithm"]),
        (format!("add {WEST} {EAST} esp 0x1000 -E blowfish-cbc {k16} -A hmac-md5 {k16};"), &["blowfish-cbc", "not supported"]),
        (format!("add {WEST} {EAST} esp 0x1000 -E rot13 {k16} -A hmac-md5 {k16};"), &["unknown encryption algorithm `-E rot13`"]),
        (format!("add {WEST} {EAST} ah 0x1000 -A keyed-md5 {k16};"), &["keyed-md5", "not supported"]),
        (format!("add {WEST} {EAST} ah 0x1000 -A hmac-md5;"), &["`-A hmac-md5` needs a key"]),
        (format!("add {WEST} {EAST} ipcomp 0x1000 -C deflate;"), &["IPComp"]),
        (format!("add {WEST} {EAST} esp-old 0x1000;"), &["esp-old"]),
        (format!("add {WEST} 2001:db8::1 esp 0x1000;"), &["address families"]),
        (format!("add -6 {WEST} {EAST} ah 0x1000 -A hmac-md5 {k16};"), &["not IPv6", "-6"]),
        (format!("add gw.example {EAST} ah 0x1000 -A hmac-md5 {k16};"), &["gw.example", "not an IP address"]),
        (format!("add {WEST} 224.0.0.5 ah 0x1000 -A hmac-md5 {k16};"), &["unicast"]),
        (format!("add fe80::1%eth0 fe80::2 ah 0x1000 -A hmac-md5 {k16};"), &["scoped"]),
        (format!("add {WEST} {EAST} esp 0x1000 -E 3des-cbc {k3} -A hmac-md5 {k16} extra;"), &["unexpected `extra`"]),
        (format!("delete {WEST} {EAST} esp;"), &["an SPI expected"]),
        (format!("deleteall {WEST} {EAST} esp 0x1000;"), &["unexpected `0x1000`"]),
        (format!("get {WEST} {EAST};"), &["protocol"]),
        ("flush all;".into(), &["unknown protocol `all`"]),
        ("spdflush now;".into(), &["`spdflush`", "unexpected `now`"]),
        ("spdadd 10.0.0.0/33 10.1.0.0/16 any -P out none;".into(), &["prefix length"]),
        ("spdadd 10.0.0.1-10.0.0.9 10.1.0.0/16 any -P out none;".into(), &["ranges"]),
        ("spdadd 10.0.0.0/8[http] 10.1.0.0/16 tcp -P out none;".into(), &["port"]),
        ("spdadd 10.0.0.0/8 2001:db8::/32 any -P out none;".into(), &["address families"]),
        ("spdadd 10.0.0.0/8 10.1.0.0/16 carrier-pigeon -P out none;".into(), &["upper-layer protocol `carrier-pigeon`"]),
        ("spdadd ::/0 ::/0 icmp6 135,0 -P out none;".into(), &["ICMP type/code"]),
        ("spdadd 10.0.0.0/8 10.1.0.0/16 any -P sideways none;".into(), &["-P sideways"]),
        ("spdadd 10.0.0.0/8 10.1.0.0/16 any out none;".into(), &["-P DIRECTION"]),
        ("spdadd 10.0.0.0/8 10.1.0.0/16 any -P out prio 10 none;".into(), &["priorities"]),
        ("spdadd 10.0.0.0/8 10.1.0.0/16 any -P out entrust;".into(), &["entrust"]),
        ("spdadd 10.0.0.0/8 10.1.0.0/16 any -P out ipsec;".into(), &["at least one request"]),
        ("spdadd 10.0.0.0/8 10.1.0.0/16 any -P out ipsec esp/tunnel//require;".into(), &["tunnel mode needs the endpoints"]),
        (format!("spdadd {WEST} {EAST} any -P out ipsec esp/transport/{WEST}-{EAST}/require;"), &["transport mode takes no endpoints"]),
        (format!("spdadd {WEST} {EAST} any -P out ipsec esp/transport//always;"), &["level", "always"]),
        (format!("spdadd {WEST} {EAST} any -P out ipsec esp/beet//require;"), &["beet"]),
        (format!("spdadd {WEST} {EAST} any -P out ipsec ipcomp/transport//use;"), &["IPComp"]),
        (format!("spdadd {WEST} {EAST} any -P out ipsec esp/transport//require ah/transport//require esp/transport//require;"), &["at most 2 requests"]),
        (format!("spddelete {WEST} {EAST} any -P out none;"), &["unexpected `none`"]),
        ("dump esp ah;".into(), &["unexpected `ah`"]),
    ];
    for (text, wants) in &cases {
        assert_one_error(&format!("\n{text}\n"), 2, wants);
    }
}

#[test]
fn all_errors_are_collected_each_with_its_line() {
    let text = "flush;\nfoo;\nflush;\nadd 1.2.3.4 5.6.7.8 esp 7;\n\nbar\n";
    let errs = parse_errors(text);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("t.setkey:2: unknown statement `foo`"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("t.setkey:4: ") && errs[1].contains("reserved"),
        "{errs:?}"
    );
    assert!(
        errs[2].starts_with("t.setkey:6: ") && errs[2].contains("missing `;`"),
        "{errs:?}"
    );
}

#[test]
fn sizes_are_bounded() {
    let big = format!("{}\nflush;\n", "#".repeat(MAX_SCRIPT_BYTES));
    let errs = parse_errors(&big);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("1 MiB"), "{errs:?}");
    let many = "spdflush;\n".repeat(MAX_STATEMENTS + 1);
    let errs = parse_errors(&many);
    assert!(
        errs[0].starts_with(&format!("t.setkey:{}: ", MAX_STATEMENTS + 1)),
        "{errs:?}"
    );
    assert!(errs[0].contains("10000 statements"), "{errs:?}");
    assert_eq!(
        stmts(&"spdflush;\n".repeat(MAX_STATEMENTS)).len(),
        MAX_STATEMENTS
    );
    let long_key = format!(
        "add {WEST} {EAST} ah 0x1000 -A hmac-md5 0x{};",
        "ab".repeat(300)
    );
    assert_one_error(&long_key, 1, &["longer than"]);
    // Hundreds of errors are capped, with a count of the rest.
    let errs = parse_errors(&"nonsense;\n".repeat(500));
    assert_eq!(errs.len(), 101);
    assert!(errs[100].contains("400 more errors"), "{}", errs[100]);
}

#[test]
fn debug_output_of_a_parsed_script_shows_no_key() {
    let s = stmts(&west_transport());
    let dbg = format!("{s:?}");
    assert!(dbg.contains("redacted"), "{dbg}");
    assert!(!dbg.contains(&key(24, 3)[2..10]), "{dbg}");
    let bytes = key_bytes(24, 3);
    assert!(
        !dbg.contains(&format!("{}, {}, {}", bytes[0], bytes[1], bytes[2])),
        "{dbg}"
    );
}

fn no_panic(text: &str) {
    let _ = parse(text, "fuzz");
    if let Ok(s) = parse(text, "fuzz") {
        if let Ok((st, _)) = apply(&SetkeyState::new(), &s, "fuzz") {
            let _ = convert(&st, &[ip(WEST), ip("10.1.0.1")], true);
            let _ = render::dump(st.sas(), None, true);
        }
        let _ = import_setkey(&s, "fuzz");
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A deterministic generator (xorshift) over bytes biased towards setkey's own characters.
    let alphabet = b" \t\n;#\"/-[]:.0123456789abcdefx";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..3000 {
        let len = (next() % 200) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if round % 2 == 0 {
                    alphabet[(r % alphabet.len() as u64) as usize]
                } else {
                    r as u8
                }
            })
            .collect();
        no_panic(&String::from_utf8_lossy(&bytes));
    }
    // Valid scripts cut and mutated at every kind of position.
    for base in [west_transport(), west_tunnel()] {
        for _ in 0..2000 {
            let mut b = base.clone().into_bytes();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() % b.len() as u64) as usize;
                match next() % 3 {
                    0 => b[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                    1 => {
                        b.remove(at);
                    }
                    _ => b.truncate(at),
                }
                if b.is_empty() {
                    break;
                }
            }
            no_panic(&String::from_utf8_lossy(&b));
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
    #[test]
    fn parse_never_panics(s in "\\PC{0,300}") {
        no_panic(&s);
    }

    #[test]
    fn statement_shaped_input_never_panics(
        words in proptest::collection::vec(
            "(add|spdadd|delete|get|flush|dump|esp|ah|-m|-E|-A|-P|in|out|ipsec|any|tunnel|0x1000|192\\.0\\.2\\.[0-9]{1,3}|10\\.[0-9]\\.0\\.0/[0-9]{1,2}(\\[[0-9a-z]{1,6}\\])?|3des-cbc|hmac-md5|0x[0-9a-f]{0,50}|\"[a-z ;#]{0,20}\"?|esp/(transport|tunnel)/[0-9.-]{0,20}/(require|use|unique:[0-9]{1,3})|;|#)",
            0..40,
        )
    ) {
        no_panic(&words.join(" "));
    }
}

// ------------------------------------------------------------------ applying

#[test]
fn apply_runs_each_statement_against_the_state() {
    let (st, out) = apply(
        &SetkeyState::new(),
        &stmts(&format!("dump;\nspddump;\n{}", west_transport())),
        "t.setkey",
    )
    .unwrap();
    assert_eq!(
        out,
        vec!["No SAD entries.".to_string(), "No SPD entries.".to_string()]
    );
    assert_eq!(st.sas().len(), 4);
    assert_eq!(st.policies().len(), 2);
    assert_eq!(
        st.sas().iter().map(|s| s.spi).collect::<Vec<_>>(),
        vec![0x1001, 0x1002, 0x1003, 0x1004]
    );

    // flush esp leaves AH; deleteall removes every SA of that triple; delete one.
    let (s2, _) = apply(
        &st,
        &stmts(&format!("flush esp;\ndelete {WEST} {EAST} ah 0x1003;\n")),
        "t",
    )
    .unwrap();
    assert_eq!(
        s2.sas().iter().map(|s| s.spi).collect::<Vec<_>>(),
        vec![0x1004]
    );
    assert_eq!(s2.policies().len(), 2, "flush leaves policies");
    let (s3, _) = apply(
        &st,
        &stmts(&format!("deleteall {EAST} {WEST} esp;\nspdflush;\n")),
        "t",
    )
    .unwrap();
    assert_eq!(
        s3.sas().iter().map(|s| s.spi).collect::<Vec<_>>(),
        vec![0x1001, 0x1003, 0x1004]
    );
    assert!(s3.policies().is_empty());
    let (s4, _) = apply(
        &st,
        &stmts(&format!("spddelete {EAST} {WEST} any -P in;\nflush;\n")),
        "t",
    )
    .unwrap();
    assert_eq!(s4.policies().len(), 1);
    assert_eq!(s4.policies()[0].dir, PolicyDir::Out);
    assert!(s4.sas().is_empty());
    let (s5, _) = apply(&st, &stmts("flush;\nspdflush;\n"), "t").unwrap();
    assert!(s5.is_empty());

    // get prints the SA; dumps render the state at that point of the script.
    let (_, out) = apply(
        &st,
        &stmts(&format!(
            "get {WEST} {EAST} esp 0x1001;\nflush ah;\ndump;\n"
        )),
        "t",
    )
    .unwrap();
    assert_eq!(out[0], format!("{WEST} {EAST}"));
    assert!(
        out[1].contains("esp mode=transport spi=4097(0x00001001)"),
        "{out:?}"
    );
    let sa_headers: Vec<&String> = out
        .iter()
        .filter(|l| l.starts_with("\tesp") || l.starts_with("\tah"))
        .collect();
    assert_eq!(
        sa_headers.len(),
        1 + 2,
        "get's SA, then the two ESP SAs left after flush ah: {out:?}"
    );
}

#[test]
fn apply_refuses_conflicts_naming_both_lines_and_changes_nothing() {
    let st = state_of(&west_transport());
    let again = format!(
        "\nadd {WEST} {EAST} esp 0x1001 -E 3des-cbc {} -A hmac-md5 {};\n",
        key(24, 1),
        key(16, 1)
    );
    let errs = apply(&st, &stmts(&again), "b.setkey").unwrap_err();
    assert_eq!(errs.len(), 1);
    let e = errs[0].to_string();
    assert!(
        e.starts_with("b.setkey:2: ")
            && e.contains("0x1001")
            && e.contains("exists already")
            && e.contains("earlier script"),
        "{e}"
    );
    // Within one script, the earlier line is named.
    let twice = format!("{}{}", west_transport(), again);
    let e = apply(&SetkeyState::new(), &stmts(&twice), "t.setkey").unwrap_err()[0].to_string();
    assert!(e.contains("on line 6"), "{e}");
    for (text, wants) in [
        (
            format!("delete {WEST} {EAST} esp 0x9999;"),
            vec!["t:1: ", "`delete`", "no esp SA", "0x9999"],
        ),
        (
            format!("get {EAST} {WEST} ah 0x1003;"),
            vec!["`get`", "no ah SA"],
        ),
        (
            format!("spdadd {WEST} {EAST} any -P out none;"),
            vec!["`spdadd`", "exists already"],
        ),
        (
            "spddelete 10.0.0.0/8 10.1.0.0/16 any -P out;".into(),
            vec![
                "`spddelete`",
                "no policy for `10.0.0.0/8[any] 10.1.0.0/16[any] any -P out`",
            ],
        ),
    ] {
        let errs = apply(&st, &stmts(&text), "t").unwrap_err();
        let e = errs[0].to_string();
        for w in wants {
            assert!(e.contains(w), "`{e}` should mention `{w}`");
        }
    }
    // Every failing statement is reported; a good one before a bad one is not applied either.
    let text = format!(
        "flush;\ndelete {WEST} {EAST} esp 0x1001;\nspddelete 10.0.0.0/8 10.1.0.0/16 any -P out;\n"
    );
    let errs = apply(&st, &stmts(&text), "t").unwrap_err();
    assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(st.sas().len(), 4, "the caller's state is never touched");
}

// ------------------------------------------------------------------ rendering

#[test]
fn dump_is_in_setkeys_layout_with_keys_only_when_asked() {
    let st = state_of(&west_transport());
    let with = render::dump(st.sas(), Some(IpsecProto::Esp), true);
    let k = key_bytes(24, 3);
    let groups: Vec<String> = k
        .chunks(4)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    assert_eq!(with[0], "192.0.2.1 192.0.2.2");
    assert_eq!(
        with[1],
        "\tesp mode=transport spi=4097(0x00001001) reqid=0(0x00000000)"
    );
    assert_eq!(with[2], format!("\tE: 3des-cbc  {}", groups.join(" ")));
    assert!(with[3].starts_with("\tA: hmac-md5  "), "{}", with[3]);
    assert_eq!(
        with[4],
        "\tseq=0x00000000 replay=0 flags=0x00000000 state=mature"
    );
    assert!(with[5].starts_with("\tcreated: ") && with[5].contains("\tcurrent: "));
    assert_eq!(with[6], "\tdiff: 0(s)\thard: 0(s)\tsoft: 0(s)");
    assert_eq!(with[9], "\tallocated: 0\thard: 0\tsoft: 0");
    assert_eq!(with[10], "\tsadb_seq=1 pid=0 refcnt=0");
    assert_eq!(with[11], "192.0.2.2 192.0.2.1");
    assert_eq!(
        with.last().unwrap(),
        "\tsadb_seq=0 pid=0 refcnt=0",
        "setkey counts down to 0"
    );
    let without = render::dump(st.sas(), None, false);
    let text = without.join("\n");
    assert!(
        !text.contains(&groups[0]) && !text.contains(&groups[1]),
        "{text}"
    );
    assert!(
        text.contains("\tE: 3des-cbc  (24 bytes, shown to root only)"),
        "{text}"
    );
    assert!(
        text.contains("\tA: hmac-sha1  (20 bytes, shown to root only)"),
        "{text}"
    );
    assert!(
        text.contains("\tah mode=transport spi=4099(0x00001003)"),
        "{text}"
    );
    // `apply` never shows keys; `apply_with(…, true)` does (root).
    let (_, out) = apply(&st, &stmts("dump esp;"), "t").unwrap();
    assert!(!out.join("\n").contains(&groups[0]));
    let (_, out) = apply_with(&st, &stmts("dump esp;"), "t", true).unwrap();
    assert!(out.join("\n").contains(&groups[0]));
    assert_eq!(
        render::dump(st.sas(), None, true).len(),
        2 * 11 + 2 * 10,
        "AH SAs have no E: line"
    );
}

#[test]
fn spddump_is_in_setkeys_layout() {
    let st = state_of(&west_tunnel());
    let out = render::spddump(st.policies());
    assert_eq!(
        out[..7],
        [
            "10.1.0.0/24[any] 10.2.0.0/24[any] any".to_string(),
            "\tout prio def ipsec".into(),
            "\tesp/tunnel/192.0.2.1-192.0.2.2/require".into(),
            format!("\tcreated: {0}  lastused: {0}", " ".repeat(20)),
            "\tlifetime:0(s) validtime:0(s)".into(),
            "\tspid=9 seq=1 pid=0".into(),
            "\trefcnt=1".into(),
        ]
    );
    assert_eq!(out[7], "10.2.0.0/24[any] 10.1.0.0/24[any] any");
    assert_eq!(out[8], "\tin prio def ipsec");
    assert_eq!(out[9], "\tesp/tunnel/192.0.2.2-192.0.2.1/require");
    assert_eq!(out[12], "\tspid=16 seq=0 pid=0");
    let st = state_of(&format!(
        "{}spdadd 2001:db8::1 2001:db8::2[500] udp -P out none;\nspdadd ::/0 ::/0 icmp6 -P in discard;\n\
         spdadd 10.3.0.0/16[22] 10.4.0.0/16 tcp -P fwd ipsec esp/tunnel/{EAST}-{WEST}/unique:3;\n",
        west_transport()
    ));
    let out = render::spddump(st.policies()).join("\n");
    assert!(out.contains("192.0.2.1[any] 192.0.2.2[any] any\n\tout prio def ipsec\n\tesp/transport//require\n\tah/transport//require\n"), "{out}");
    assert!(
        out.contains("2001:db8::1[any] 2001:db8::2[500] udp\n\tout prio def none\n"),
        "{out}"
    );
    assert!(
        out.contains("::/0 ::/0 icmp6\n\tin prio def discard\n"),
        "{out}"
    );
    assert!(out.contains("10.3.0.0/16[22] 10.4.0.0/16[any] tcp\n\tfwd prio def ipsec\n\tesp/tunnel/192.0.2.2-192.0.2.1/unique#3\n"), "{out}");
    assert_eq!(render::spddump(&[]), vec!["No SPD entries.".to_string()]);
    // What spddump prints parses back to the same policies (setkey's own syntax).
    for p in st.policies() {
        let reqs = match &p.action {
            PolicyAction::Ipsec(r) => format!(
                "ipsec {}",
                r.iter()
                    .map(render::request_text)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            PolicyAction::None => "none".into(),
            PolicyAction::Discard => "discard".into(),
        };
        let text = format!(
            "spdadd {} -P {} {};",
            render::selector_text(p),
            render::dir_name(p.dir),
            reqs.replace("unique#", "unique:")
        );
        assert_eq!(items(&text), vec![Statement::SpdAdd(p.clone())], "{text}");
    }
}

// ------------------------------------------------------------------ fwd's view

/// The checks fwd makes on an InstallConn (`fwd::sa_request`, `fwd::datapath::control`), as far as
/// they concern what confd emits.
fn fwd_would_accept(st: &ConnState) {
    assert!(st.sas.len() <= 64 && st.policies.len() <= 256);
    for s in &st.sas {
        assert_eq!(s.conn, st.conn);
        assert!(s.spi >= 256);
        assert_eq!(s.src.is_ipv4(), s.dst.is_ipv4());
        assert!(s.encap.is_none() && !s.esn && s.replay_window <= 4032);
        match s.proto {
            IpsecProto::Esp => {
                assert_eq!(s.enc_key.len(), enc_key_len(s.encr), "{s:?}");
                assert_eq!(s.auth_key.len(), integ_key_len(s.integ), "{s:?}");
                assert!(
                    matches!(s.encr, EncrAlg::AesGcm { .. }) != (s.integ != IntegAlg::None),
                    "{s:?}"
                );
            }
            IpsecProto::Ah => {
                assert_eq!(s.encr, EncrAlg::Null);
                assert!(s.enc_key.is_empty());
                assert_ne!(s.integ, IntegAlg::None);
                assert_eq!(s.auth_key.len(), integ_key_len(s.integ));
            }
        }
        assert_eq!(st.sas.iter().filter(|o| o.id() == s.id()).count(), 1);
    }
    for p in &st.policies {
        assert_eq!(p.conn, st.conn);
        assert!(!p.route || p.direction == Direction::Out);
        match &p.action {
            policy::PolicyAction::Protect { sas } => {
                assert!((1..=2).contains(&sas.len()));
                let found: Vec<&SaSpec> = sas
                    .iter()
                    .map(|id| st.sas.iter().find(|s| s.id() == *id).expect("SA exists"))
                    .collect();
                for f in &found {
                    assert_eq!(f.direction, p.direction);
                    if f.mode == SaMode::Transport {
                        assert_eq!(
                            (p.selector.src, p.selector.dst),
                            (Net::host(f.src), Net::host(f.dst))
                        );
                    }
                }
                if let [a, b] = found[..] {
                    assert_eq!((a.proto, b.proto), (IpsecProto::Esp, IpsecProto::Ah));
                    assert_eq!((a.src, a.dst, a.mode), (b.src, b.dst, b.mode));
                }
            }
            policy::PolicyAction::Trap | policy::PolicyAction::Reject => {
                assert_eq!(p.direction, Direction::Out)
            }
            policy::PolicyAction::Pass | policy::PolicyAction::Drop => {}
        }
    }
}

fn id(spi: u32, proto: IpsecProto, dst: &str) -> SaId {
    SaId {
        spi,
        proto,
        dst: ip(dst),
    }
}

fn find_sa(st: &ConnState, spi: u32) -> &SaSpec {
    st.sas.iter().find(|s| s.spi == spi).unwrap()
}

/// West's outbound SA is east's inbound one, byte for byte, and the policies mirror.
fn assert_mirrored(w: &ConnState, e: &ConnState) {
    assert_eq!(w.sas.len(), e.sas.len());
    for a in &w.sas {
        let b = e.sas.iter().find(|b| b.id() == a.id()).unwrap();
        assert_ne!(a.direction, b.direction);
        assert_eq!(
            (
                a.src,
                a.dst,
                a.mode,
                a.encr,
                a.integ,
                &a.enc_key,
                &a.auth_key
            ),
            (
                b.src,
                b.dst,
                b.mode,
                b.encr,
                b.integ,
                &b.enc_key,
                &b.auth_key
            )
        );
    }
    for p in &w.policies {
        assert!(
            e.policies.iter().any(|q| q.direction != p.direction
                && q.selector == p.selector
                && q.action == p.action),
            "{p:?}"
        );
    }
}

#[test]
fn transport_esp_inside_ah_from_each_host() {
    let w = convert(
        &state_of(&west_transport()),
        &[ip(WEST), ip("10.1.0.1")],
        false,
    )
    .unwrap();
    assert!(w.notes.is_empty(), "{:?}", w.notes);
    let w = w.state;
    assert_eq!(w.conn, CONN_NAME);
    fwd_would_accept(&w);
    let dirs: Vec<(u32, Direction)> = w.sas.iter().map(|s| (s.spi, s.direction)).collect();
    assert_eq!(
        dirs,
        vec![
            (0x1001, Direction::Out),
            (0x1002, Direction::In),
            (0x1003, Direction::Out),
            (0x1004, Direction::In)
        ]
    );
    let esp = find_sa(&w, 0x1001);
    assert_eq!(
        (esp.mode, esp.encr, esp.integ, esp.replay_window),
        (
            SaMode::Transport,
            EncrAlg::TripleDesCbc,
            IntegAlg::HmacMd5_96,
            0
        )
    );
    assert_eq!(esp.enc_key.expose(), key_bytes(24, 3).as_slice());
    assert_eq!(esp.lifetime, ipc::sa::SaLifetime::default());
    let ah = find_sa(&w, 0x1003);
    assert_eq!(
        (ah.encr, ah.integ, ah.enc_key.len(), ah.auth_key.len()),
        (EncrAlg::Null, IntegAlg::HmacSha1_96, 0, 20)
    );
    assert_eq!(w.policies.len(), 2);
    let out = &w.policies[0];
    assert_eq!(
        (out.direction, out.route, out.priority),
        (Direction::Out, true, 1000 - 64)
    );
    assert_eq!(
        (out.selector.src, out.selector.dst, out.selector.proto),
        (Net::host(ip(WEST)), Net::host(ip(EAST)), 0)
    );
    assert_eq!(
        (out.selector.src_ports, out.selector.dst_ports),
        (Ports::ANY, Ports::ANY)
    );
    assert_eq!(
        out.action,
        policy::PolicyAction::Protect {
            sas: vec![
                id(0x1001, IpsecProto::Esp, EAST),
                id(0x1003, IpsecProto::Ah, EAST)
            ]
        },
        "ESP inside AH"
    );
    let inb = &w.policies[1];
    assert_eq!((inb.direction, inb.route), (Direction::In, false));
    assert_eq!(
        inb.action,
        policy::PolicyAction::Protect {
            sas: vec![
                id(0x1002, IpsecProto::Esp, WEST),
                id(0x1004, IpsecProto::Ah, WEST)
            ]
        }
    );
    let e = to_conn_state(&state_of(&east_transport()), &[ip(EAST)]).unwrap();
    fwd_would_accept(&e);
    assert_mirrored(&w, &e);
}

#[test]
fn tunnel_esp_between_subnets_from_each_host() {
    let w = to_conn_state(&state_of(&west_tunnel()), &[ip(WEST)]).unwrap();
    fwd_would_accept(&w);
    assert!(w.sas.iter().all(|s| s.mode == SaMode::Tunnel
        && s.encr == EncrAlg::AesCbc { key_bits: 128 }
        && s.integ == IntegAlg::HmacSha256_128));
    let out = &w.policies[0];
    assert_eq!(
        (out.selector.src, out.selector.dst),
        (net(WEST_NET), net(EAST_NET))
    );
    assert_eq!(out.priority, 1000 - 48);
    assert_eq!(
        out.action,
        policy::PolicyAction::Protect {
            sas: vec![id(0x2001, IpsecProto::Esp, EAST)]
        }
    );
    assert_eq!(
        w.policies[1].action,
        policy::PolicyAction::Protect {
            sas: vec![id(0x2002, IpsecProto::Esp, WEST)]
        }
    );
    let e = to_conn_state(&state_of(&east_tunnel()), &[ip(EAST), ip("10.2.0.1")]).unwrap();
    fwd_would_accept(&e);
    assert_mirrored(&w, &e);
    assert_eq!(e.policies[0].selector.src, net(EAST_NET));
}

#[test]
fn the_other_gateways_script_or_a_third_host_is_refused() {
    let err = to_conn_state(&state_of(&west_transport()), &[ip("198.51.100.7")]).unwrap_err();
    assert!(
        err.contains("neither 192.0.2.1 nor 192.0.2.2 is an address of this host"),
        "{err}"
    );
    let err = to_conn_state(&state_of(&west_tunnel()), &[ip(EAST)]).unwrap_err();
    assert!(
        err.contains("-P out")
            && err.contains("inbound on this host")
            && err.contains("other gateway"),
        "{err}"
    );
}

#[test]
fn missing_sas_make_traps_and_notes_say_what_was_done() {
    let text = format!(
        "spdadd {WEST_NET} {EAST_NET} any -P out ipsec esp/tunnel/{WEST}-{EAST}/require;\n\
         spdadd {EAST_NET} {WEST_NET} any -P in ipsec esp/tunnel/{EAST}-{WEST}/require;\n\
         spdadd {EAST_NET} {WEST_NET} any -P fwd ipsec esp/tunnel/{EAST}-{WEST}/require;\n\
         spdadd 10.1.0.0/24 10.9.0.0/16 any -P out none;\n\
         spdadd 10.1.0.0/24 10.8.0.0/16 any -P out discard;\n\
         spdadd 10.1.0.0/24 10.7.0.0/16 any -P out ipsec esp/tunnel/{WEST}-{EAST}/use;\n"
    );
    let c = convert(&state_of(&text), &[ip(WEST)], false).unwrap();
    fwd_would_accept(&c.state);
    let acts: Vec<(Direction, policy::PolicyAction)> = c
        .state
        .policies
        .iter()
        .map(|p| (p.direction, p.action.clone()))
        .collect();
    assert_eq!(
        acts,
        vec![
            (Direction::Out, policy::PolicyAction::Trap),
            (Direction::In, policy::PolicyAction::Drop),
            (Direction::Out, policy::PolicyAction::Pass),
            (Direction::Out, policy::PolicyAction::Drop),
            (Direction::Out, policy::PolicyAction::Trap),
        ],
        "the fwd policy is left out"
    );
    let notes = c.notes.join("\n");
    assert!(
        notes.contains("-P out`: no esp from 192.0.2.1 to 192.0.2.2 yet: installed as a trap"),
        "{notes}"
    );
    assert!(
        notes.contains("-P in`: no esp from 192.0.2.2 to 192.0.2.1 yet: installed as a drop"),
        "{notes}"
    );
    assert!(notes.contains("-P fwd` ignored"), "{notes}");
    assert!(
        notes.contains("level `use` is enforced as `require`"),
        "{notes}"
    );
    // Adding the SAs turns the traps into protection.
    let sas = format!(
        "add {WEST} {EAST} esp 0x2001 -m tunnel -E aes-cbc {k} -A hmac-sha1 {a};\nadd {EAST} {WEST} esp 0x2002 -E aes-cbc {k} -A hmac-sha1 {a};\n",
        k = key(16, 1),
        a = key(20, 2)
    );
    let c = convert(&state_of(&format!("{text}{sas}")), &[ip(WEST)], false).unwrap();
    fwd_would_accept(&c.state);
    assert_eq!(
        c.state.policies[0].action,
        policy::PolicyAction::Protect {
            sas: vec![id(0x2001, IpsecProto::Esp, EAST)]
        }
    );
    assert_eq!(
        find_sa(&c.state, 0x2002).mode,
        SaMode::Tunnel,
        "`-m any` takes the mode of the policy using it"
    );
}

#[test]
fn conversion_errors_name_the_policy_or_sa() {
    let k = key(16, 1);
    let a = key(20, 2);
    let cases: Vec<(String, &str)> = vec![
        (format!("add {WEST} {EAST} esp 0x2001 -m transport -E aes-cbc {k} -A hmac-sha1 {a};\nspdadd {WEST_NET} {EAST_NET} any -P out ipsec esp/tunnel/{WEST}-{EAST}/require;\n"), "is `-m transport`"),
        (format!("spdadd {WEST_NET} {EAST_NET} any -P out ipsec esp/transport//require;\n"), "two host addresses"),
        (format!("spdadd {WEST} {EAST} any -P out ipsec ah/transport//require esp/transport//require;\n"), "esp then ah"),
        (format!("spdadd {WEST} {EAST} any -P out ipsec esp/tunnel/{WEST}-{EAST}/require ah/transport//require;\n"), "same mode and endpoints"),
        (format!("add {WEST} {EAST} esp 0x2001 -E aes-cbc {k} -A hmac-sha1 {a};\nspdadd {WEST} {EAST} any -P out ipsec esp/transport//require;\nspdadd {WEST_NET} {EAST_NET} any -P out ipsec esp/tunnel/{WEST}-{EAST}/require;\n"), "both transport- and tunnel-mode"),
        (format!("add {WEST} {EAST} esp 0x2001 -E aes-gcm-16 {};\n", key(20, 3)), "RFC 4106"),
    ];
    for (text, want) in cases {
        let err = to_conn_state(&state_of(&text), &[ip(WEST)]).unwrap_err();
        assert!(
            err.contains(want),
            "`{err}` should mention `{want}`\n{text}"
        );
    }
    // Counter modes pass with the insecure switch, key + salt as manual.rs has them.
    let c = convert(
        &state_of(&format!(
            "add {WEST} {EAST} esp 0x2001 -E aes-gcm-16 {};\n",
            key(36, 3)
        )),
        &[ip(WEST)],
        true,
    )
    .unwrap();
    fwd_would_accept(&c.state);
    assert_eq!(
        c.state.sas[0].encr,
        EncrAlg::AesGcm {
            key_bits: 256,
            icv_bytes: 16
        }
    );
    // fwd's per-conn limit.
    let many: String = (0..65)
        .map(|i| format!("add {WEST} {EAST} ah {} -A hmac-md5 {k};\n", 0x1000 + i))
        .collect();
    let err = to_conn_state(&state_of(&many), &[ip(WEST)]).unwrap_err();
    assert!(err.contains("65 SAs") && err.contains("64"), "{err}");
    // Several SAs for one template: the last added is used, with a note.
    let two = format!(
        "add {WEST} {EAST} esp 0x2001 -E aes-cbc {k} -A hmac-sha1 {a};\nadd {WEST} {EAST} esp 0x2003 -E aes-cbc {k} -A hmac-sha1 {a};\n\
         spdadd {WEST} {EAST} any -P out ipsec esp/transport//require;\n"
    );
    let c = convert(&state_of(&two), &[ip(WEST)], false).unwrap();
    assert_eq!(
        c.state.policies[0].action,
        policy::PolicyAction::Protect {
            sas: vec![id(0x2003, IpsecProto::Esp, EAST)]
        }
    );
    assert!(c.notes[0].contains("2 SAs match"), "{:?}", c.notes);
}

#[test]
fn ports_and_protocols_become_selectors() {
    let text = format!(
        "add {WEST} {EAST} esp 0x2001 -m transport -E aes-cbc {k} -A hmac-sha1 {a};\n\
         spdadd {WEST}[1701] {EAST}[any] udp -P out ipsec esp/transport//require;\n",
        k = key(16, 1),
        a = key(20, 2)
    );
    let st = to_conn_state(&state_of(&text), &[ip(WEST)]).unwrap();
    fwd_would_accept(&st);
    let s = &st.policies[0].selector;
    assert_eq!(
        (s.proto, s.src_ports, s.dst_ports),
        (17, Ports { lo: 1701, hi: 1701 }, Ports::ANY)
    );
}

// ------------------------------------------------------------------ import as manual conns

/// Normalise a ConnState for comparison: no conn name, SAs and policies in a fixed order.
fn normal(st: &ConnState) -> (Vec<SaSpec>, Vec<PolicySpec>) {
    let mut sas: Vec<SaSpec> = st
        .sas
        .iter()
        .cloned()
        .map(|mut s| {
            s.conn.clear();
            s
        })
        .collect();
    sas.sort_by_key(SaSpec::id);
    let mut pols: Vec<PolicySpec> = st
        .policies
        .iter()
        .cloned()
        .map(|mut p| {
            p.conn.clear();
            p
        })
        .collect();
    pols.sort_by_key(|p| {
        (
            p.direction == Direction::Out,
            p.selector.src,
            p.selector.dst,
        )
    });
    (sas, pols)
}

/// Import `script`, load the result as ipsec.conf, and compare each conn's manual state at
/// `host` with what `ipsecctl setkey` would install from `host_script` there.
fn imported_matches(script: &str, at: &[(&str, &str)]) -> String {
    let conf = import_setkey(&stmts(script), "west.setkey").unwrap_or_else(|e| panic!("{e:?}"));
    let (cfg, warnings) = load_str("ipsec.conf", &conf).unwrap_or_else(|e| panic!("{e:?}\n{conf}"));
    assert!(warnings.is_empty(), "{warnings:?}\n{conf}");
    assert!(!cfg.conns.is_empty());
    for (host, host_script) in at {
        let mut merged = ConnState {
            conn: String::new(),
            sas: Vec::new(),
            policies: Vec::new(),
        };
        for c in &cfg.conns {
            assert_eq!(c.auto, crate::conf::model::Auto::Manual);
            let o = orient(c, &[ip(host)]).unwrap();
            let st = manual_state(&oriented(c, o).unwrap(), false)
                .unwrap_or_else(|e| panic!("{e}\n{conf}"));
            fwd_would_accept(&st);
            merged.sas.extend(st.sas);
            merged.policies.extend(st.policies);
        }
        let want = to_conn_state(&state_of(host_script), &[ip(host)]).unwrap();
        assert_eq!(normal(&merged), normal(&want), "at {host}:\n{conf}");
    }
    conf
}

#[test]
fn the_transport_script_imports_as_a_manual_conn_that_loads_on_both_hosts() {
    let conf = imported_matches(
        &west_transport(),
        &[(WEST, &west_transport()), (EAST, &east_transport())],
    );
    assert!(
        conf.starts_with("# ipsec.conf written by `ipsecctl import setkey` from west.setkey"),
        "{conf}"
    );
    for want in [
        "conn 192.0.2.1-192.0.2.2\n",
        "\tauto=manual\n",
        "\ttype=transport\n",
        "\tleft=192.0.2.1\n\tright=192.0.2.2\n",
        "\tesp=3des-md5-96\n",
        "\trightespspi=0x1001\n",
        "\tleftespspi=0x1002\n",
        "\tah=hmac-sha1-96\n",
        "\trightahspi=0x1003\n\trightahkey=0x",
        "\tleftahspi=0x1004\n",
    ] {
        assert!(conf.contains(want), "missing `{want}` in\n{conf}");
    }
    assert!(
        conf.contains(&format!("\trightespenckey={}\n", key(24, 3))),
        "{conf}"
    );
    assert!(!conf.contains("subnet"), "{conf}");
    // East's own script gives east's view the same way.
    imported_matches(
        &east_transport(),
        &[(EAST, &east_transport()), (WEST, &west_transport())],
    );
}

#[test]
fn the_tunnel_script_imports_as_a_manual_conn_that_loads_on_both_hosts() {
    let conf = imported_matches(
        &west_tunnel(),
        &[(WEST, &west_tunnel()), (EAST, &east_tunnel())],
    );
    for want in [
        "conn 10.1.0.0_24-10.2.0.0_24\n",
        "\ttype=tunnel\n",
        "\tleftsubnet=10.1.0.0/24\n\trightsubnet=10.2.0.0/24\n",
        "\tesp=aes128-sha2_256\n",
        "\trightespspi=0x2001\n",
        "\tleftespspi=0x2002\n",
    ] {
        assert!(conf.contains(want), "missing `{want}` in\n{conf}");
    }
    assert!(!conf.contains("ah="), "{conf}");
    imported_matches(
        &east_tunnel(),
        &[(EAST, &east_tunnel()), (WEST, &west_tunnel())],
    );
}

#[test]
fn import_keeps_replay_windows_ports_and_several_subnet_pairs() {
    let (k, a) = (key(32, 1), key(64, 2));
    let sas = format!(
        "add {WEST} {EAST} esp 0x3001 -m tunnel -r 64 -E aes-cbc {k} -A hmac-sha2-512 {a};\n\
         add {EAST} {WEST} esp 0x3002 -m tunnel -r 64 -E aes-cbc {k} -A hmac-sha2-512 {a};\n"
    );
    let pols = |me: &str, peer: &str, mine: [&str; 2], theirs: [&str; 2]| -> String {
        let mut s = String::new();
        for m in mine {
            for t in theirs {
                s.push_str(&format!(
                    "spdadd {m} {t} any -P out ipsec esp/tunnel/{me}-{peer}/require;\n"
                ));
                s.push_str(&format!(
                    "spdadd {t} {m} any -P in ipsec esp/tunnel/{peer}-{me}/require;\n"
                ));
            }
        }
        s
    };
    let w = format!(
        "{sas}{}",
        pols(
            WEST,
            EAST,
            ["10.1.0.0/24", "10.1.5.0/24"],
            ["10.2.0.0/16", "10.3.0.0/16"]
        )
    );
    let e = format!(
        "{sas}{}",
        pols(
            EAST,
            WEST,
            ["10.2.0.0/16", "10.3.0.0/16"],
            ["10.1.0.0/24", "10.1.5.0/24"]
        )
    );
    let conf = imported_matches(&w, &[(WEST, &w), (EAST, &e)]);
    assert!(
        conf.contains(
            "\tleftsubnets={10.1.0.0/24 10.1.5.0/24}\n\trightsubnets={10.2.0.0/16 10.3.0.0/16}\n"
        ),
        "{conf}"
    );
    assert!(
        conf.contains("\tespreplay_window=64\n") && conf.contains("\tesp=aes256-sha2_512\n"),
        "{conf}"
    );
    assert_eq!(
        conf.matches("\nconn ").count(),
        1,
        "one conn for the shared SAs\n{conf}"
    );

    let t = format!(
        "add {WEST} {EAST} ah 0x3003 -A hmac-md5 {m};\nadd {EAST} {WEST} ah 0x3004 -A hmac-md5 {m};\n\
         spdadd {WEST}[1701] {EAST} udp -P out ipsec ah/transport//require;\n\
         spdadd {EAST} {WEST}[1701] udp -P in ipsec ah/transport//unique;\n",
        m = key(16, 9)
    );
    let te = format!(
        "add {WEST} {EAST} ah 0x3003 -A hmac-md5 {m};\nadd {EAST} {WEST} ah 0x3004 -A hmac-md5 {m};\n\
         spdadd {EAST} {WEST}[1701] udp -P out ipsec ah/transport//require;\n\
         spdadd {WEST}[1701] {EAST} udp -P in ipsec ah/transport//require;\n",
        m = key(16, 9)
    );
    let conf = imported_matches(&t, &[(WEST, &t), (EAST, &te)]);
    assert!(
        conf.contains("\tleftprotoport=17/1701\n\trightprotoport=17/%any\n\tah=hmac-md5-96\n"),
        "{conf}"
    );
    assert!(!conf.contains("esp="), "{conf}");
}

#[test]
fn import_names_what_a_manual_conn_cannot_express() {
    let (k, a) = (key(16, 1), key(20, 2));
    let sa_pair = format!(
        "add {WEST} {EAST} esp 0x2001 -m tunnel -E aes-cbc {k} -A hmac-sha1 {a};\n\
         add {EAST} {WEST} esp 0x2002 -m tunnel -E aes-cbc {k} -A hmac-sha1 {a};\n"
    );
    let out = format!(
        "spdadd {WEST_NET} {EAST_NET} any -P out ipsec esp/tunnel/{WEST}-{EAST}/require;\n"
    );
    let inb =
        format!("spdadd {EAST_NET} {WEST_NET} any -P in ipsec esp/tunnel/{EAST}-{WEST}/require;\n");
    let cases: Vec<(String, usize, &str)> = vec![
        (format!("{sa_pair}{out}{inb}spdadd {EAST_NET} {WEST_NET} any -P fwd ipsec esp/tunnel/{EAST}-{WEST}/require;\n"), 5, "-P fwd"),
        (format!("{sa_pair}{out}"), 3, "no inbound mirror"),
        (format!("{sa_pair}{inb}"), 3, "no outbound mirror"),
        (format!("{sa_pair}spdadd {WEST_NET} {EAST_NET} any -P out ipsec esp/tunnel/{WEST}-{EAST}/use;\n{inb}"), 3, "`use`/`default`"),
        (format!("{sa_pair}{out}{inb}spdadd 10.1.0.0/24 10.9.0.0/16 any -P out none;\n"), 5, "type=passthrough"),
        (format!("add {WEST} {EAST} esp 0x2001 -m tunnel -E aes-cbc {k} -A hmac-sha1 {a};\n{out}{inb}"), 3, "no esp SA from 192.0.2.2 to 192.0.2.1"),
        (format!("{sa_pair}add {WEST} {EAST} ah 0x2005 -A hmac-sha1 {a};\n{out}{inb}"), 3, "used by no pair"),
        (format!("add {WEST} {EAST} esp 0x2001 -m tunnel -E aes-cbc {k} -A hmac-sha1 {a};\nadd {EAST} {WEST} esp 0x2002 -m tunnel -E 3des-cbc {} -A hmac-sha1 {a};\n{out}{inb}", key(24, 4)), 2, "different algorithms"),
        (format!("add {WEST} {EAST} esp 0x2001 -r 32 -E aes-cbc {k} -A hmac-sha1 {a};\nadd {EAST} {WEST} esp 0x2002 -E aes-cbc {k} -A hmac-sha1 {a};\n{out}{inb}"), 2, "replay windows"),
        (format!("{sa_pair}{out}spdadd {EAST_NET} {WEST_NET} any -P in ipsec esp/tunnel/{WEST}-{EAST}/require;\n"), 4, "does not mirror"),
        ("flush;\n".into(), 1, "nothing to convert"),
    ];
    for (text, line, want) in cases {
        let errs = import_setkey(&stmts(&text), "s.setkey").expect_err(&text);
        let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            all.iter()
                .any(|e| e.starts_with(&format!("s.setkey:{line}: ")) && e.contains(want)),
            "no `s.setkey:{line}: …{want}…` in {all:?}\n{text}"
        );
        for e in &all {
            assert!(
                !e.contains(&k[2..12]) && !e.contains(&a[2..12]),
                "key material in {e}"
            );
        }
    }
    // Script errors come through with their lines too.
    let errs = import_setkey(
        &stmts(&format!("delete {WEST} {EAST} esp 0x1000;")),
        "s.setkey",
    )
    .unwrap_err();
    assert!(
        errs[0].to_string().starts_with("s.setkey:1: `delete`"),
        "{errs:?}"
    );
}

#[test]
fn import_writes_counter_mode_with_the_warning_and_it_loads_only_when_insecure() {
    let g = key(20, 5);
    let text = format!(
        "add {WEST} {EAST} esp 0x2001 -m transport -E aes-gcm-16 {g};\nadd {EAST} {WEST} esp 0x2002 -m transport -E aes-gcm-16 {g};\n\
         spdadd {WEST} {EAST} any -P out ipsec esp/transport//require;\nspdadd {EAST} {WEST} any -P in ipsec esp/transport//require;\n"
    );
    let conf = import_setkey(&stmts(&text), "g.setkey").unwrap();
    assert!(
        conf.contains("\t# WARNING: AES-GCM (RFC 4106)") && conf.contains("\tesp=aes128gcm16\n"),
        "{conf}"
    );
    assert!(!conf.contains("espauthkey"), "{conf}");
    let (cfg, _) = load_str("ipsec.conf", &conf).unwrap();
    let c = oriented(&cfg.conns[0], orient(&cfg.conns[0], &[ip(WEST)]).unwrap()).unwrap();
    assert!(manual_state(&c, false).unwrap_err().contains("RFC 4106"));
    let st = manual_state(&c, true).unwrap();
    let want = convert(&state_of(&text), &[ip(WEST)], true).unwrap().state;
    assert_eq!(normal(&st), normal(&want));
}

#[test]
fn algorithm_names_round_trip_through_manual_rs() {
    let encs = [
        EncrAlg::Null,
        EncrAlg::TripleDesCbc,
        EncrAlg::AesCbc { key_bits: 128 },
        EncrAlg::AesCbc { key_bits: 192 },
        EncrAlg::AesCbc { key_bits: 256 },
        EncrAlg::AesCtr { key_bits: 128 },
        EncrAlg::AesCtr { key_bits: 256 },
    ];
    let integs = [
        IntegAlg::HmacMd5_96,
        IntegAlg::HmacSha1_96,
        IntegAlg::HmacSha256_128,
        IntegAlg::HmacSha384_192,
        IntegAlg::HmacSha512_256,
    ];
    for e in encs {
        for i in integs {
            assert_eq!(parse_esp(&esp_name(e, i)), Ok((e, i)), "{}", esp_name(e, i));
        }
    }
    for bits in [128, 256] {
        let g = EncrAlg::AesGcm {
            key_bits: bits,
            icv_bytes: 16,
        };
        assert_eq!(
            parse_esp(&esp_name(g, IntegAlg::None)),
            Ok((g, IntegAlg::None))
        );
    }
    for i in integs {
        assert_eq!(parse_ah(ah_name(i)), Ok(i));
    }
}
