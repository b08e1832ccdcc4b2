//! Issue: fwd datapath, manual keying end to end. Two gateways in namespaces with a LAN namespace
//! behind each (tests/src/topology.rs), keyed by hand from one shared ipsec.conf:
//! - every suite carries ping and a checksummed TCP transfer LAN to LAN, and the WAN capture holds
//!   only ESP/AH; transport mode between the gateways likewise;
//! - tcpdump given `ipsecctl sa --tcpdump-secrets` decrypts the capture to the inner packets;
//! - with the SAs taken down and the route kept, traffic is dropped (nothing in the clear) and
//!   ikerd hears an acquire;
//! - forged packets on the WAN are dropped and counted, the tunnel carries on;
//! - fwd SIGKILLed under traffic: nothing in the clear, the supervisor restarts it, confd re-installs
//!   the SAs and traffic resumes by itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ferroswan_tests::topology::*;
use ferroswan_tests::*;
use std::time::{Duration, Instant};

fn pair_with(tag: &str, m: &ManualConn) -> GatewayPair {
    let p = GatewayPair::new(tag).expect("topology");
    p.write_conf_both(&m.conf());
    p.start().expect("gateways start");
    p
}

fn look(inst: &Instance) -> serde_json::Value {
    let out = run_ok(inst.ctl().args(["look", "--json"])).expect("look --json");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("look --json: {e}: {out}"))
}

fn drops(look: &serde_json::Value, reason: &str) -> u64 {
    look["drops"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["reason"] == reason))
        .and_then(|d| d["packets"].as_u64())
        .unwrap_or(0)
}

/// Ping and a TCP transfer across, with the WAN captured: nothing in the clear, IPsec present.
fn carries_traffic_only_as_ipsec(tag: &str, m: &ManualConn, bytes: u64, expect: &str) {
    let p = pair_with(tag, m);
    let cap_file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &cap_file).expect("capture");
    let (from, to, to_addr) = if m.transport {
        (&p.west.ns, &p.east.ns, EAST_WAN)
    } else {
        (&p.west_lan, &p.east_lan, EAST_HOST)
    };
    wait_ping(from, to_addr, Duration::from_secs(15)).unwrap_or_else(|e| {
        panic!(
            "{e}\nwest fwd log:\n{}\nlook west: {:#}",
            p.west.log("fwd"),
            look(&p.west)
        )
    });
    ping(from, to_addr, 5).expect("5 pings");
    let (n, secs) =
        tcp_transfer(from, to, to_addr, bytes, Duration::from_secs(120)).expect("transfer");
    eprintln!(
        "{tag}: {n} bytes in {secs:.1} s ({:.1} MB/s)",
        n as f64 / secs / 1e6
    );
    cap.finish();
    let clear = cap.cleartext().expect("read capture");
    assert!(
        clear.is_empty(),
        "cleartext on the WAN: {:?}",
        &clear[..clear.len().min(5)]
    );
    let ipsec = cap.read(expect).expect("read capture");
    assert!(
        ipsec.len() > 100,
        "expected `{expect}` packets on the WAN, saw {}",
        ipsec.len()
    );
    // Both ends counted the packets on their SAs.
    let l = look(&p.east);
    assert!(
        l["sas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["packets"].as_u64().unwrap() > 0),
        "{l:#}"
    );
}

#[test]
fn tunnel_3des_md5() {
    let m = ManualConn {
        esp: Some(("3des-md5-96", 24, 16)),
        ah: None,
        transport: false,
        replay_window: None,
    };
    // 3DES runs near 10 MB/s in pure Rust (README): a smaller transfer keeps the suite quick.
    carries_traffic_only_as_ipsec("3des", &m, 16 << 20, "esp");
}

#[test]
fn tunnel_aes128_sha1() {
    let m = ManualConn {
        esp: Some(("aes128-sha1", 16, 20)),
        ah: None,
        transport: false,
        replay_window: None,
    };
    carries_traffic_only_as_ipsec("aes128", &m, 100 << 20, "esp");
}

#[test]
fn tunnel_aes256_sha2_256() {
    let m = ManualConn {
        esp: Some(("aes256-sha2_256", 32, 32)),
        ah: None,
        transport: false,
        replay_window: None,
    };
    carries_traffic_only_as_ipsec("aes256", &m, 100 << 20, "esp");
}

#[test]
fn tunnel_ah_and_esp() {
    let m = ManualConn {
        esp: Some(("aes128-sha1", 16, 20)),
        ah: Some(("hmac-sha1-96", 20)),
        transport: false,
        replay_window: None,
    };
    carries_traffic_only_as_ipsec("ah-esp", &m, 100 << 20, "ah");
}

#[test]
fn transport_mode_between_gateways() {
    let m = ManualConn {
        esp: Some(("aes128-sha1", 16, 20)),
        ah: None,
        transport: true,
        replay_window: None,
    };
    carries_traffic_only_as_ipsec("transport", &m, 100 << 20, "esp");
}

fn aes_sha1(replay_window: Option<u32>) -> ManualConn {
    ManualConn {
        esp: Some(("aes128-sha1", 16, 20)),
        ah: None,
        transport: false,
        replay_window,
    }
}

fn tunnel_up(tag: &str, m: &ManualConn) -> GatewayPair {
    let p = pair_with(tag, m);
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\nwest fwd log:\n{}", p.west.log("fwd")));
    p
}

#[test]
fn tcpdump_decrypts_the_wire_with_the_tcpdump_secrets() {
    let p = tunnel_up("secrets", &aes_sha1(None));
    let file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &file).expect("capture");
    ping(&p.west_lan, EAST_HOST, 3).expect("ping");
    cap.finish();
    let secrets = run_ok(p.west.ctl().args(["sa", "--tcpdump-secrets"])).expect("secrets as root");
    let sfile = p.west.dir.0.join("esp.secrets");
    std::fs::write(&sfile, &secrets).unwrap();
    let decode = |extra: &[&str]| {
        let out = run(std::process::Command::new("tcpdump")
            .args(["-n", "-r"])
            .arg(&file)
            .args(extra))
        .expect("tcpdump -r");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let plain = decode(&[]);
    assert!(
        !plain.contains("ICMP echo"),
        "without keys the capture shows no ICMP:\n{plain}"
    );
    let dec = decode(&["-E", &format!("file {}", sfile.display())]);
    assert!(
        dec.contains(&format!("{WEST_HOST} > {EAST_HOST}: ICMP echo request"))
            && dec.contains(&format!("{EAST_HOST} > {WEST_HOST}: ICMP echo reply")),
        "tcpdump with the secrets shows the inner ICMP:\n{dec}\nsecrets lines: {}",
        secrets
            .lines()
            .filter(|l| l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

#[test]
fn down_keeps_the_route_drops_traffic_and_raises_an_acquire() {
    let p = tunnel_up("trap", &aes_sha1(None));
    run_ok(p.west.ctl().args(["manual", "down", "net"])).expect("manual down");
    let file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &file).expect("capture");
    let r = run(p
        .west_lan
        .cmd("ping")
        .args(["-n", "-c", "3", "-i", "0.2", "-W", "1", EAST_HOST]))
    .unwrap();
    assert!(!r.status.success(), "no reply with the SAs down");
    cap.finish();
    let clear = cap.cleartext().expect("read");
    assert!(
        clear.is_empty(),
        "nothing in the clear with the route kept: {clear:?}"
    );
    assert!(
        cap.read("esp").unwrap().is_empty(),
        "no SA, so no ESP either"
    );
    let l = look(&p.west);
    assert!(drops(&l, "trap") >= 3, "trapped packets counted: {l:#}");
    assert!(
        l["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["action"] == "Trap" && x["routed"] == true),
        "the routed policy became a trap: {l:#}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !p
        .west
        .log("ikerd")
        .contains(&format!("acquire from fwd for {WEST_HOST}"))
    {
        assert!(
            Instant::now() < deadline,
            "ikerd log:\n{}",
            p.west.log("ikerd")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // `unroute` removes the policies and routes; `manual up` brings the tunnel back.
    run_ok(p.west.ctl().args(["unroute", "net"])).expect("unroute");
    let l = look(&p.west);
    assert!(
        l["policies"].as_array().unwrap().is_empty() && l["routes"].as_array().unwrap().is_empty(),
        "{l:#}"
    );
    run_ok(p.west.ctl().args(["manual", "up", "net"])).expect("manual up");
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10)).expect("tunnel back");
}

#[test]
fn forged_packets_on_the_wan_are_dropped_and_counted() {
    let p = tunnel_up("forge", &aes_sha1(Some(64)));
    let file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &file).expect("capture");
    ping(&p.west_lan, EAST_HOST, 3).expect("ping");
    cap.finish();
    let before = look(&p.east);
    for variant in ["replay", "truncate", "flip", "spi"] {
        let out = run_ok(
            p.west
                .ns
                .cmd(bin("esp-inject"))
                .args(["--pcap"])
                .arg(&file)
                .args([
                    "--src",
                    WEST_WAN,
                    "--dst",
                    EAST_WAN,
                    "--variant",
                    variant,
                    "--count",
                    "20",
                ]),
        )
        .expect("inject");
        assert_eq!(out.trim(), "20");
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = look(&p.east);
    for reason in ["replay", "bad-icv", "no-sa"] {
        assert!(
            drops(&after, reason) >= drops(&before, reason) + 20,
            "{reason}: 20 more drops expected: {after:#}"
        );
    }
    let short = ["truncated", "bad-length", "bad-icv"]
        .iter()
        .map(|r| drops(&after, r))
        .sum::<u64>();
    assert!(
        short >= 40,
        "truncated copies counted under some length/ICV reason: {after:#}"
    );
    // The live tunnel is unaffected.
    ping(&p.west_lan, EAST_HOST, 5).expect("tunnel still carries traffic");
}

#[test]
fn fwd_killed_under_traffic_leaks_nothing_and_comes_back() {
    let p = tunnel_up("kill", &aes_sha1(Some(64)));
    let file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &file).expect("capture");
    // A continuous ping and a TCP transfer run while fwd dies.
    let pinger = p
        .west_lan
        .cmd("ping")
        .args(["-n", "-i", "0.05", "-w", "12", EAST_HOST])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let xfer = {
        let (w, e) = (p.west_lan.name.clone(), p.east_lan.name.clone());
        std::thread::spawn(move || {
            let (w, e) = (Netns { name: w }, Netns { name: e });
            let r = tcp_transfer(&w, &e, EAST_HOST, 30 << 20, Duration::from_secs(60));
            // These handles do not own the namespaces.
            std::mem::forget(w);
            std::mem::forget(e);
            r
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let old = p.west.pid("fwd").expect("fwd pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    p.west
        .wait_status(Duration::from_secs(20), "fwd restarted with its SAs", |s| {
            daemon(s, "fwd")
                .is_some_and(|d| d["state"] == "ready" && d["pid"].as_i64() != Some(i64::from(old)))
        })
        .expect("fwd back");
    let out = pinger.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    xfer.join()
        .unwrap()
        .expect("the TCP transfer survives the restart");
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10)).expect("traffic resumes");
    cap.finish();
    let clear = cap.cleartext().expect("read");
    assert!(
        clear.is_empty(),
        "cleartext while fwd was down: {:?}",
        &clear[..clear.len().min(5)]
    );
    // The ping saw replies after the restart too (its summary counts them).
    assert!(text.contains(" received"), "{text}");
    let l = look(&p.west);
    assert_eq!(
        l["sas"].as_array().unwrap().len(),
        2,
        "both manual SAs back: {l:#}"
    );
    assert!(
        p.west.log("fwd").contains("resumes its sequence numbers"),
        "{}",
        p.west.log("fwd")
    );
}
