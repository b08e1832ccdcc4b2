//! Manual keying through the operator's verbs, end to end: one instance with a manually keyed conn
//! (`auto=manual`) is brought up at start-up; `ipsecctl look --json` lists its SAs without a byte of
//! key; `ipsecctl sa --tcpdump-secrets` gives root the keys and refuses `nobody`; a restarted fwd
//! gets the conn back from confd; `manual down` leaves trap policies and `unroute` removes them;
//! AES-GCM with manual keys is refused citing RFC 4106; a reload re-installs a modified conn.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ferroswan_tests::*;
use std::time::{Duration, Instant};

const WEST: &str = "192.0.2.1";
const EAST: &str = "192.0.2.2";
/// 24 bytes (3DES) and 16 bytes (HMAC-MD5), written FreeS/WAN style with `_` separators.
const ENC_KEY: &str = "0x0123456789abcdef_fedcba9876543210_0011223344556677";
const AUTH_KEY: &str = "0x8899aabbccddeeff_7766554433221100";

fn hex(key: &str) -> String {
    key.trim_start_matches("0x").replace('_', "")
}

fn bytes(key: &str) -> Vec<u8> {
    let h = hex(key);
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn conf(spi: &str) -> String {
    format!(
        "version 2\n\nconfig setup\n\n\
         conn west-east\n\tleft={WEST}\n\tleftsubnet=10.1.0.0/16\n\tright={EAST}\n\trightsubnet=10.2.0.0/16\n\
         \tspi={spi}\n\tesp=3des-md5-96\n\tespenckey={ENC_KEY}\n\tespauthkey={AUTH_KEY}\n\tauto=manual\n\n\
         conn gcm\n\tleft={WEST}\n\tright=192.0.2.3\n\tspi=0x2000\n\tesp=aes128gcm16\n\
         \tespenckey=0x{}\n\tauto=ignore\n",
        "5a".repeat(20)
    )
}

/// An address of this gateway inside its namespace (on its loopback: no other device is needed
/// while fwd only has to accept the SAs).
fn add_wan_address(inst: &Instance, addr: &str) {
    run_ok(
        inst.ns
            .cmd("ip")
            .args(["addr", "add", &format!("{addr}/32"), "dev", "lo"]),
    )
    .expect("address");
}

fn ready(inst: &Instance) {
    inst.start().expect("start");
    inst.wait_status(Duration::from_secs(30), "ready", |s| {
        all_ready(s) && all_links_up(s)
    })
    .expect("ready");
}

fn look_json(inst: &Instance) -> (String, serde_json::Value) {
    let out = run_ok(inst.ctl().args(["look", "--json"])).expect("look --json");
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("look --json: {e}: {out}"));
    (out, v)
}

/// The conn's SAs in a `look --json` document.
fn sas_of<'a>(look: &'a serde_json::Value, conn: &str) -> Vec<&'a serde_json::Value> {
    look["sas"]
        .as_array()
        .map(|a| a.iter().filter(|s| s["conn"] == conn).collect())
        .unwrap_or_default()
}

fn wait_look(
    inst: &Instance,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = look_json(inst);
        if pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last look:\n{v:#}\nconfd log:\n{}\nfwd log:\n{}",
            inst.log("confd"),
            inst.log("fwd")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// No key byte in any form: hex (either case), and postcard/JSON byte arrays.
fn assert_no_key_material(what: &str, text: &str) {
    let lower = text.to_ascii_lowercase();
    for key in [ENC_KEY, AUTH_KEY] {
        let h = hex(key);
        assert!(!lower.contains(&h[..16]), "{what} shows key hex:\n{text}");
        let b = bytes(key);
        let dec: Vec<String> = b[..4].iter().map(u8::to_string).collect();
        assert!(
            !text.contains(&dec.join(",")) && !text.contains(&dec.join(", ")),
            "{what} shows key bytes:\n{text}"
        );
    }
}

#[test]
fn manual_conn_up_look_secrets_down_unroute_and_gcm_refused() {
    require_root();
    let inst = Instance::new("manual").expect("instance");
    add_wan_address(&inst, WEST);
    inst.write_conf(&conf("0x1000"));
    ready(&inst);

    // auto=manual: confd installs the conn as soon as its link to fwd is up.
    let look = wait_look(&inst, "the manual SAs", |v| {
        sas_of(v, "west-east").len() == 2
    });
    let sas = sas_of(&look, "west-east");
    let out = sas
        .iter()
        .find(|s| s["direction"] == "Out")
        .expect("an outbound SA");
    assert_eq!(out["id"]["spi"], 0x1000);
    assert_eq!(
        (out["src"].as_str(), out["dst"].as_str()),
        (Some(WEST), Some(EAST))
    );
    assert_eq!(out["encr"], "TripleDesCbc");
    assert_eq!(out["integ"], "HmacMd5_96");
    assert_eq!(out["replay_window"], 0);
    assert_eq!(out["encap"], serde_json::Value::Null, "plain ESP");
    let inb = sas
        .iter()
        .find(|s| s["direction"] == "In")
        .expect("an inbound SA");
    assert_eq!(
        (inb["src"].as_str(), inb["dst"].as_str()),
        (Some(EAST), Some(WEST))
    );
    let (raw, _) = look_json(&inst);
    assert_no_key_material("look --json", &raw);
    let text = run_ok(inst.ctl().arg("look")).expect("look");
    assert_no_key_material("look", &text);
    assert!(
        inst.log("confd")
            .contains("\"west-east\": manual SAs installed (2 SAs, 2 policies)"),
        "{}",
        inst.log("confd")
    );
    let eroute = run_ok(inst.ctl().arg("eroute")).expect("eroute");
    assert!(
        eroute.lines().any(|l| l.contains("10.1.0.0/16")
            && l.contains("-> 10.2.0.0/16")
            && l.contains(&format!("=> esp0x1000@{EAST}"))),
        "{eroute}"
    );

    // The keys: root gets tcpdump's lines; nobody is refused and sees nothing.
    let secrets =
        run_ok(inst.ctl().args(["sa", "--tcpdump-secrets"])).expect("sa --tcpdump-secrets");
    for dst in [EAST, WEST] {
        let line = format!("0x00001000@{dst} 3des-cbc-hmac96:0x{}", hex(ENC_KEY));
        assert!(
            secrets.lines().any(|l| l == line),
            "no `{line}` in:\n{secrets}"
        );
    }
    let ws =
        run_ok(inst.ctl().args(["sa", "--tcpdump-secrets", "--wireshark"])).expect("--wireshark");
    assert!(
        ws.contains(&format!(
            "\"IPv4\",\"{WEST}\",\"{EAST}\",\"0x00001000\",\"TripleDES-CBC [RFC2451]\",\"0x{}\",\"HMAC-MD5-96 [RFC2403]\",\"0x{}\"",
            hex(ENC_KEY),
            hex(AUTH_KEY)
        )),
        "{ws}"
    );
    let denied = run(inst.ctl_as_nobody().args(["sa", "--tcpdump-secrets"])).expect("runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&denied.stdout),
        String::from_utf8_lossy(&denied.stderr),
    );
    assert!(!denied.status.success(), "nobody got the keys: {stdout}");
    assert!(
        stderr.to_ascii_lowercase().contains("permission denied"),
        "{stderr}"
    );
    assert_no_key_material("sa as nobody", &format!("{stdout}{stderr}"));
    // nobody may look (no keys there) but not change anything
    run_ok(inst.ctl_as_nobody().arg("look")).expect("nobody may look");
    let down = run(inst.ctl_as_nobody().args(["manual", "down", "west-east"])).expect("runs");
    assert!(!down.status.success());

    // A restarted fwd starts empty; confd installs the conn again when the link comes back.
    let fwd_pid = inst.pid("fwd").expect("fwd pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(fwd_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill fwd");
    inst.wait_status(Duration::from_secs(30), "fwd restarted", |s| {
        all_ready(s) && all_links_up(s) && inst.pid("fwd").is_some_and(|p| p != fwd_pid)
    })
    .expect("fwd back");
    wait_look(&inst, "the SAs after fwd's restart", |v| {
        sas_of(v, "west-east").len() == 2
    });

    // manual down: SAs gone, the outbound policy stays as a trap (traffic dropped, not leaked).
    let (ok, out, err) = inst.ctl_out(&["manual", "down", "west-east"]);
    assert!(ok, "manual down: {out}{err}");
    let (_, v) = look_json(&inst);
    assert!(sas_of(&v, "west-east").is_empty(), "{v:#}");
    let eroute = run_ok(inst.ctl().arg("eroute")).expect("eroute");
    assert!(
        eroute
            .lines()
            .any(|l| l.contains("-> 10.2.0.0/16") && l.contains("=> %trap")),
        "{eroute}"
    );
    // unroute: nothing of the conn is left.
    let (ok, out, err) = inst.ctl_out(&["unroute", "west-east"]);
    assert!(ok, "unroute: {out}{err}");
    let eroute = run_ok(inst.ctl().args(["eroute", "--json"])).expect("eroute --json");
    let e: serde_json::Value = serde_json::from_str(&eroute).expect("json");
    assert!(
        e["policies"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["conn"] != "west-east")),
        "{eroute}"
    );

    // FreeS/WAN's spelling brings it back.
    let (ok, out, err) = inst.ctl_out(&["manual", "--up", "west-east"]);
    assert!(
        ok && out.contains("manual SAs installed (2 SAs, 2 policies)"),
        "{out}{err}"
    );

    // AES-GCM with manual keys: refused, citing RFC 4106; nothing installed.
    let (ok, out, err) = inst.ctl_out(&["manual", "up", "gcm"]);
    assert!(!ok, "GCM conn came up: {out}");
    assert!(err.contains("RFC 4106") && err.contains("\"gcm\""), "{err}");
    let (_, v) = look_json(&inst);
    assert!(sas_of(&v, "gcm").is_empty());
    // Errors say what failed.
    let (ok, _, err) = inst.ctl_out(&["manual", "up", "no-such-conn"]);
    assert!(
        !ok && err.contains("no connection named \"no-such-conn\""),
        "{err}"
    );

    // A reload with a new SPI installs the modified conn again.
    inst.write_conf(&conf("0x1100"));
    let (ok, out, err) = inst.ctl_out(&["reload"]);
    assert!(ok && out.contains("modified: west-east"), "{out}{err}");
    let v = wait_look(&inst, "the new SPI", |v| {
        sas_of(v, "west-east")
            .iter()
            .all(|s| s["id"]["spi"] == 0x1100)
            && sas_of(v, "west-east").len() == 2
    });
    assert_no_key_material("look after reload", &v.to_string());
}
