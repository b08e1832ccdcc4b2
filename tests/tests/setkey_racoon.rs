//! Coming from KAME and ipsec-tools (the setkey/racoon issue), end to end in namespaces:
//! 1. setkey scripts applied with `ipsecctl setkey -f` on two gateways: transport-mode ESP+AH between
//!    the hosts, tunnel-mode ESP between the subnets; ping and TCP cross, only ESP/AH on the wire,
//!    `ipsecctl setkey -c <<< 'spddump;'` lists the policies;
//! 2. the same scripts converted by `ipsecctl import setkey` and started as manual conns: the same;
//! 3. a racoon.conf + psk.txt + spdadd set converted by `ipsecctl import racoon` brings the tunnel up by
//!    IKEv1 against ferroswan and against strongSwan configured the same way (3DES/MD5/modp1024 and
//!    AES/SHA1/modp2048);
//! 4. a malformed script gives one `file:line:` error and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ferroswan_tests::ike::*;
use ferroswan_tests::ike_conf::*;
use ferroswan_tests::strongswan::*;
use ferroswan_tests::topology::*;
use ferroswan_tests::*;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

const UP: Duration = Duration::from_secs(20);

/// Keys shared by both gateways' scripts.
fn keys() -> (String, String, String) {
    (test_key(24, 3), test_key(16, 5), test_key(20, 7))
}

/// The transport-mode ESP+AH script of `me` (whose peer is `peer`): both hosts' scripts hold the
/// same SAs; their policies are mirrored.
fn transport_script(me: &str, peer: &str) -> String {
    let (enc, md5, sha1) = keys();
    format!(
        "#!/usr/sbin/setkey -f\n# ESP inside AH, transport mode, between the two hosts\nflush;\nspdflush;\n\n\
         add {WEST_WAN} {EAST_WAN} esp 0x1001 -m transport -E 3des-cbc {enc} -A hmac-md5 {md5};\n\
         add {EAST_WAN} {WEST_WAN} esp 0x1002 -m transport\n\t-E 3des-cbc {enc}\n\t-A hmac-md5 {md5};\n\
         add {WEST_WAN} {EAST_WAN} ah 0x1003 -m transport -A hmac-sha1 {sha1};\n\
         add {EAST_WAN} {WEST_WAN} ah 0x1004 -m transport -A hmac-sha1 {sha1};\n\n\
         spdadd {me} {peer} any -P out ipsec esp/transport//require ah/transport//require;\n\
         spdadd {peer} {me} any -P in ipsec esp/transport//require ah/transport//require;\n"
    )
}

/// The tunnel-mode ESP script of the gateway at `me` protecting `my_net`, towards `peer`/`peer_net`.
fn tunnel_script(me: &str, my_net: &str, peer: &str, peer_net: &str) -> String {
    let aes = test_key(16, 11);
    let sha = test_key(32, 13);
    format!(
        "flush;\nspdflush;\n\
         add {WEST_WAN} {EAST_WAN} esp 0x2001 -m tunnel -E rijndael-cbc {aes} -A hmac-sha2-256 {sha};\n\
         add {EAST_WAN} {WEST_WAN} esp 0x2002 -m tunnel -E rijndael-cbc {aes} -A hmac-sha2-256 {sha};\n\
         spdadd {my_net} {peer_net} any -P out ipsec esp/tunnel/{me}-{peer}/require;\n\
         spdadd {peer_net} {my_net} any -P in ipsec esp/tunnel/{peer}-{me}/require;\n"
    )
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn setkey_stdin(gw: &Instance, script: &str) -> Result<String> {
    let mut child = gw
        .ctl()
        .args(["setkey", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Ping and TCP between `from` and `to_addr` (in `to`), with only ESP/AH on west's WAN.
fn traffic(p: &GatewayPair, from: &Netns, to: &Netns, to_addr: &str, what: &str) -> Capture {
    let file = p.west.dir.0.join(format!("{what}.pcap"));
    let mut cap = Capture::start(&p.west.ns, "wan0", &file).expect("capture");
    wait_ping(from, to_addr, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{what}: {e}{}", logs(p)));
    ping(from, to_addr, 3).unwrap_or_else(|e| panic!("{what}: {e}{}", logs(p)));
    let (n, _) = tcp_transfer(from, to, to_addr, 2_000_000, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{what}: {e}{}", logs(p)));
    assert_eq!(n, 2_000_000);
    cap.finish();
    let clear = cap.cleartext().unwrap();
    assert!(clear.is_empty(), "{what}: cleartext on the WAN: {:?}", &clear[..clear.len().min(5)]);
    cap
}

#[test]
fn setkey_scripts_and_their_manual_conns_carry_traffic() {
    let p = GatewayPair::new("skey").expect("topology");
    p.start().expect("gateways");

    // Transport mode ESP+AH, gateway to gateway.
    let w = write(&p.west.dir.0, "transport.setkey", &transport_script(WEST_WAN, EAST_WAN));
    let e = write(&p.east.dir.0, "transport.setkey", &transport_script(EAST_WAN, WEST_WAN));
    run_ok(p.west.ctl().arg("setkey").arg("-f").arg(&w)).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    run_ok(p.east.ctl().arg("setkey").arg("-f").arg(&e)).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    let cap = traffic(&p, &p.west.ns, &p.east.ns, EAST_WAN, "transport");
    assert!(!cap.read("ip proto 51").unwrap().is_empty(), "no AH on the WAN");
    let dump = setkey_stdin(&p.west, "spddump;").expect("spddump");
    assert!(dump.contains(WEST_WAN) && dump.contains(EAST_WAN), "{dump}");
    assert!(dump.contains("esp/transport//require") && dump.contains("ah/transport//require"), "{dump}");

    // A malformed script: one file:line: error, and the running policies are unchanged.
    let bad = write(&p.west.dir.0, "bad.setkey", "spdflush;\nadd 192.0.2.1 192.0.2.2 esp 0x3001 -m tunnel -E 3des-cbc 0x0011 -A hmac-md5 0x00112233445566778899aabbccddeeff;\n");
    let err = run_ok(p.west.ctl().arg("setkey").arg("-f").arg(&bad)).expect_err("bad key length accepted");
    assert!(err.contains("bad.setkey:2:") && err.contains("3des-cbc"), "{err}");
    let missing = write(&p.west.dir.0, "nosemi.setkey", "spdflush\nflush;\n");
    let err = run_ok(p.west.ctl().arg("setkey").arg("-f").arg(&missing)).expect_err("missing ; accepted");
    assert!(err.contains("nosemi.setkey:"), "{err}");
    assert_eq!(setkey_stdin(&p.west, "spddump;").expect("spddump"), dump, "a refused script changed the policies");
    ping(&p.west.ns, EAST_WAN, 2).expect("transport tunnel still up after the refused scripts");

    // Tunnel mode ESP, subnet to subnet (the script flushes what was there).
    let w = write(&p.west.dir.0, "tunnel.setkey", &tunnel_script(WEST_WAN, WEST_LAN_NET, EAST_WAN, EAST_LAN_NET));
    let e = write(&p.east.dir.0, "tunnel.setkey", &tunnel_script(EAST_WAN, EAST_LAN_NET, WEST_WAN, WEST_LAN_NET));
    run_ok(p.west.ctl().arg("setkey").arg("-f").arg(&w)).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    run_ok(p.east.ctl().arg("setkey").arg("-f").arg(&e)).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    let cap = traffic(&p, &p.west_lan, &p.east_lan, EAST_HOST, "tunnel");
    assert!(!cap.read("ip proto 50").unwrap().is_empty(), "no ESP on the WAN");
    let dump = setkey_stdin(&p.west, "spddump;").expect("spddump");
    assert!(dump.contains(&format!("esp/tunnel/{WEST_WAN}-{EAST_WAN}/require")), "{dump}");
    assert!(!dump.contains("transport"), "spdflush left the old policies: {dump}");

    // Empty the setkey state, then the same scripts as manual conns in ipsec.conf.
    for gw in [&p.west, &p.east] {
        setkey_stdin(gw, "flush;\nspdflush;\n").expect("flush");
    }
    for (script, what, from, to, addr) in [
        ("transport.setkey", "transport", &p.west.ns, &p.east.ns, EAST_WAN),
        ("tunnel.setkey", "tunnel", &p.west_lan, &p.east_lan, EAST_HOST),
    ] {
        for gw in [&p.west, &p.east] {
            let conf = run_ok(gw.ctl().args(["import", "setkey"]).arg(gw.dir.0.join(script)))
                .unwrap_or_else(|e| panic!("import {script}: {e}"));
            assert!(conf.contains("auto=manual"), "{conf}");
            gw.write_conf(&conf);
            run_ok(gw.ctl().arg("reload")).unwrap_or_else(|e| panic!("reload {script}: {e}\n{conf}{}", logs(&p)));
        }
        traffic(&p, from, to, addr, &format!("imported {what}"));
    }
}

/// racoon.conf of the gateway at `me` for a net-to-net tunnel to `peer`.
fn racoon_conf(peer: &str, enc: &str, hash: &str, dh: &str, esp_enc: &str, esp_auth: &str) -> String {
    format!(
        "# racoon.conf, as ipsec-tools' examples have it\n\
         path pre_shared_key \"/etc/racoon/psk.txt\";\n\n\
         remote {peer} {{\n\texchange_mode main;\n\tmy_identifier address;\n\tlifetime time 8 hour;\n\
         \tproposal {{\n\t\tencryption_algorithm {enc};\n\t\thash_algorithm {hash};\n\
         \t\tauthentication_method pre_shared_key;\n\t\tdh_group {dh};\n\t}}\n}}\n\n\
         sainfo anonymous {{\n\tpfs_group {dh};\n\tlifetime time 1 hour;\n\tencryption_algorithm {esp_enc};\n\
         \tauthentication_algorithm {esp_auth};\n\tcompression_algorithm deflate;\n}}\n"
    )
}

fn racoon_policies(me: &str, my_net: &str, peer: &str, peer_net: &str) -> String {
    format!(
        "spdflush;\n\
         spdadd {my_net} {peer_net} any -P out ipsec esp/tunnel/{me}-{peer}/require;\n\
         spdadd {peer_net} {my_net} any -P in ipsec esp/tunnel/{peer}-{me}/require;\n"
    )
}

const PSK: &str = "racoon's pre-shared key";

/// Convert west's (or east's) racoon setup into `gw`'s ipsec.conf/ipsec.secrets; returns the conn name.
fn import_racoon(gw: &Instance, me: &str, my_net: &str, peer: &str, peer_net: &str, suite: (&str, &str, &str, &str, &str)) -> String {
    let (enc, hash, dh, esp_enc, esp_auth) = suite;
    let dir = gw.dir.0.join("racoon");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = write(&dir, "racoon.conf", &racoon_conf(peer, enc, hash, dh, esp_enc, esp_auth));
    let psk = write(&dir, "psk.txt", &format!("# peer    key\n{peer}\t{PSK}\n"));
    let spd = write(&dir, "setkey.conf", &racoon_policies(me, my_net, peer, peer_net));
    let out = gw.dir.0.join("imported");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    run_ok(
        gw.ctl()
            .args(["import", "racoon", "--racoon-conf"])
            .arg(&conf)
            .arg("--psk")
            .arg(&psk)
            .arg("--setkey")
            .arg(&spd)
            .arg("-o")
            .arg(&out),
    )
    .unwrap_or_else(|e| panic!("import racoon: {e}"));
    let text = std::fs::read_to_string(out.join("ipsec.conf")).unwrap();
    let secrets = std::fs::read_to_string(out.join("ipsec.secrets")).unwrap();
    assert!(secrets.contains(PSK), "{secrets}");
    gw.write_conf(&text);
    gw.write_secrets(&secrets, 0o600);
    text.lines()
        .find_map(|l| l.strip_prefix("conn ").map(|n| n.trim().to_string()))
        .filter(|n| n != "%default")
        .unwrap_or_else(|| panic!("no conn in the imported ipsec.conf:\n{text}"))
}

const SUITES: [(&str, &str, &str, &str, &str); 2] = [
    ("3des", "md5", "modp1024", "3des", "hmac_md5"),
    ("aes 128", "sha1", "modp2048", "aes 128", "hmac_sha1"),
];

#[test]
fn racoon_configurations_imported_bring_the_tunnel_up_between_ferroswan_gateways() {
    for (i, suite) in SUITES.into_iter().enumerate() {
        let p = GatewayPair::new(&format!("rcn{i}")).expect("topology");
        let name = import_racoon(&p.west, WEST_WAN, WEST_LAN_NET, EAST_WAN, EAST_LAN_NET, suite);
        import_racoon(&p.east, EAST_WAN, EAST_LAN_NET, WEST_WAN, WEST_LAN_NET, suite);
        p.start().expect("gateways");
        wait_log(&p.west, "ikerd", &[&format!("\"{name}"), "IPsec SA established"], UP)
            .unwrap_or_else(|e| panic!("{suite:?}: {e}{}", logs(&p)));
        traffic(&p, &p.west_lan, &p.east_lan, EAST_HOST, &format!("racoon {suite:?}"));
    }
}

#[test]
fn racoon_configuration_imported_interoperates_with_strongswan() {
    for (i, (suite, ike, esp)) in [
        (SUITES[0], "3des-md5-modp1024", "3des-md5-modp1024"),
        (SUITES[1], "aes128-sha1-modp2048", "aes128-sha1-modp2048"),
    ]
    .into_iter()
    .enumerate()
    {
        let p = GatewayPair::new(&format!("rcs{i}")).expect("topology");
        let name = import_racoon(&p.west, WEST_WAN, WEST_LAN_NET, EAST_WAN, EAST_LAN_NET, suite);
        p.west.start().expect("ferroswan starts");
        p.west
            .wait_status(Duration::from_secs(30), "ready", |s| all_ready(s) && all_links_up(s))
            .expect("ready");
        // strongSwan on east, configured the same way (swanctl.conf names cannot hold dots).
        let mut t = IkeTunnel::lan_to_lan("racoon", 1, Auth::Psk(PSK.into()));
        t.ike = ike.into();
        t.esp = esp.into();
        t.pfs = true;
        let sw = StrongSwan::start(&p.east.ns, &format!("{}-sw", p.east.ns.name)).expect("charon");
        sw.load(&t.swanctl_conf(false)).expect("swanctl --load-all");
        sw.initiate("racoon", UP).unwrap_or_else(|e| panic!("{e}{}\n{}", logs(&p), tail(&sw.log(), 60)));
        wait_log(&p.west, "ikerd", &[&format!("\"{name}"), "IPsec SA established"], UP)
            .unwrap_or_else(|e| panic!("{e}{}\n{}", logs(&p), tail(&sw.log(), 60)));
        wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}{}\n{}", logs(&p), tail(&sw.log(), 60)));
        ping(&p.east_lan, WEST_HOST, 3).expect("east LAN to west LAN");
        let (n, _) = tcp_transfer(&p.west_lan, &p.east_lan, EAST_HOST, 2_000_000, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
        assert_eq!(n, 2_000_000);
    }
}

#[test]
fn malformed_racoon_configurations_give_a_file_line_error() {
    let dir = TempDir::new("rcnbad").expect("dir");
    let psk = write(&dir.0, "psk.txt", "192.0.2.2 key\n");
    for (name, text, line) in [
        ("unbalanced.conf", "remote 192.0.2.2 {\n\texchange_mode main;\n\tproposal {\n\t\tdh_group 2;\n}\n", "unbalanced.conf:"),
        ("nosemi.conf", "remote 192.0.2.2 {\n\texchange_mode main\n}\n", "nosemi.conf:"),
    ] {
        let conf = write(&dir.0, name, text);
        let out = run(std::process::Command::new(bin("ipsecctl"))
            .args(["import", "racoon", "--racoon-conf"])
            .arg(&conf)
            .arg("--psk")
            .arg(&psk))
        .expect("ipsecctl runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} accepted");
        assert!(err.contains(line), "{name}: {err}");
    }
}
