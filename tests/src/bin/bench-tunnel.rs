//! Tunnel benchmark (not a test): TCP throughput (iperf3, 3 runs, median) and 64-byte UDP packet rate
//! from LAN host to LAN host, through plain forwarding, manually keyed ferroswan tunnels, and
//! IKEv1-keyed tunnels of ferroswan and of strongSwan 5.9 (kernel-libipsec) in the same topology;
//! then tunnel set-up times (IKEv1 PSK and RSA, median of 5) of both, and the ferroswan/strongSwan
//! ratios — all from one run, printed as tables. Run it with `scripts/bench-tunnel.sh` (release
//! build, as root). The manual AES-GCM row is keyed through the benchmark-only switch
//! FERROSWAN_INSECURE_MANUAL_AEAD=1: never do that on a real gateway.

use ferroswan_tests::ike::{configure, ctl, wait_log};
use ferroswan_tests::ike_conf::{Auth, IkeTunnel, RsaPair};
use ferroswan_tests::strongswan::StrongSwan;
use ferroswan_tests::topology::*;
use ferroswan_tests::{run, run_ok, Result};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How a case's tunnel is keyed.
#[derive(Clone, Copy)]
enum Keying {
    /// Plain forwarding, no tunnel.
    Plain,
    /// A manual conn: `esp=`, encryption and authentication key lengths.
    Manual(&'static str, usize, usize),
    /// ferroswan on both gateways, IKEv1 PSK with this `esp=`.
    Ferroswan(&'static str),
    /// strongSwan on both gateways, IKEv1 PSK with this `esp=`.
    StrongSwan(&'static str),
}

struct Case {
    name: &'static str,
    keying: Keying,
}

const CASES: &[Case] = &[
    Case {
        name: "plain veth forwarding (no tunnel)",
        keying: Keying::Plain,
    },
    Case {
        name: "ESP AES-128-GCM-16 (manual, insecure switch)",
        keying: Keying::Manual("aes128gcm16", 20, 0),
    },
    Case {
        name: "ESP AES-128-CBC + HMAC-SHA1-96 (manual)",
        keying: Keying::Manual("aes128-sha1", 16, 20),
    },
    Case {
        name: "ESP AES-256-CBC + HMAC-SHA2-256-128 (manual)",
        keying: Keying::Manual("aes256-sha2_256", 32, 32),
    },
    Case {
        name: "ESP 3DES-CBC + HMAC-MD5-96 (manual)",
        keying: Keying::Manual("3des-md5", 24, 16),
    },
    Case {
        name: "ferroswan, IKEv1 PSK, ESP AES-128-GCM-16",
        keying: Keying::Ferroswan("aes128gcm16"),
    },
    Case {
        name: "strongSwan, IKEv1 PSK, ESP AES-128-GCM-16",
        keying: Keying::StrongSwan("aes128gcm16"),
    },
    Case {
        name: "ferroswan, IKEv1 PSK, ESP AES-128-CBC + HMAC-SHA1-96",
        keying: Keying::Ferroswan("aes128-sha1"),
    },
    Case {
        name: "strongSwan, IKEv1 PSK, ESP AES-128-CBC + HMAC-SHA1-96",
        keying: Keying::StrongSwan("aes128-sha1"),
    },
];

const PSK: &str = "benchmark secret, never for a real gateway";

fn tunnel(esp: &str, auth: Auth) -> IkeTunnel {
    let mut t = IkeTunnel::lan_to_lan("bench", 1, auth);
    t.ike = "aes128-sha1-modp2048".into();
    t.esp = esp.into();
    t.pfs = false;
    t
}

/// Start both gateways' ferroswan for `t` (not negotiated yet).
fn ferroswan_pair(p: &GatewayPair, t: &IkeTunnel) -> Result<()> {
    configure(p, t);
    p.start()
}

/// strongSwan on both gateways, loaded with `t`, not negotiated yet. (west, east)
fn swan_pair(p: &GatewayPair, t: &IkeTunnel) -> Result<(StrongSwan, StrongSwan)> {
    let w = StrongSwan::start(&p.west.ns, "bench-sw-w")?;
    let e = StrongSwan::start(&p.east.ns, "bench-sw-e")?;
    w.load(&t.swanctl_conf(true))?;
    e.load(&t.swanctl_conf(false))?;
    Ok((w, e))
}

/// ferroswan: `ipsecctl up` until west's ikerd logs the IPsec SA established (the n-th time).
fn ferroswan_setup(p: &GatewayPair, n: usize) -> Result<Duration> {
    let t0 = Instant::now();
    ctl(&p.west, &["up", "bench"])?;
    let deadline = t0 + Duration::from_secs(20);
    loop {
        let done = p
            .west
            .log("ikerd")
            .lines()
            .filter(|l| l.contains("\"bench\"") && l.contains("IPsec SA established"))
            .count();
        if done >= n {
            return Ok(t0.elapsed());
        }
        if Instant::now() > deadline {
            return Err("ferroswan: no IPsec SA within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Median set-up time of 5 (ferroswan, strongSwan) for `auth`.
fn setup_times(auth: &Auth) -> Result<(Duration, Duration)> {
    let t = tunnel("aes128-sha1", auth.clone());
    let mut fs = Vec::new();
    {
        let p = GatewayPair::new("bset")?;
        ferroswan_pair(&p, &t)?;
        for i in 1..=5 {
            fs.push(ferroswan_setup(&p, i)?);
            ctl(&p.west, &["down", "bench"])?;
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let mut ss = Vec::new();
    {
        let p = GatewayPair::new("bset")?;
        let (w, _e) = swan_pair(&p, &t)?;
        for _ in 0..5 {
            let t0 = Instant::now();
            w.initiate("bench", Duration::from_secs(20))?;
            ss.push(t0.elapsed());
            w.terminate("bench", Duration::from_secs(10))?;
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    fs.sort();
    ss.sort();
    Ok((fs[fs.len() / 2], ss[ss.len() / 2]))
}

fn iperf_json(p: &GatewayPair, args: &[&str], secs: u32) -> Result<serde_json::Value> {
    let mut server = p
        .east_lan
        .cmd("iperf3")
        .args(["-s", "-1", "-p", "5301"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("iperf3 -s: {e}"))?;
    std::thread::sleep(Duration::from_millis(300));
    let out = run(p
        .west_lan
        .cmd("iperf3")
        .args(["-c", EAST_HOST, "-p", "5301", "-J", "-t", &secs.to_string()])
        .args(args));
    let _ = server.wait();
    let out = out?;
    serde_json::from_slice(&out.stdout).map_err(|e| format!("iperf3 output: {e}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn measure(case: &Case) -> Result<(f64, f64)> {
    let p = GatewayPair::new("bench")?;
    // strongSwan instances live until the measurement is over.
    let mut _swans = None;
    match case.keying {
        Keying::Ferroswan(esp) => {
            ferroswan_pair(&p, &tunnel(esp, Auth::Psk(PSK.into())))?;
            ctl(&p.west, &["up", "bench"])?;
            wait_log(
                &p.west,
                "ikerd",
                &["IPsec SA established"],
                Duration::from_secs(20),
            )?;
        }
        Keying::StrongSwan(esp) => {
            let (w, e) = swan_pair(&p, &tunnel(esp, Auth::Psk(PSK.into())))?;
            w.initiate("bench", Duration::from_secs(20))?;
            _swans = Some((w, e));
        }
        Keying::Plain => {
            // Plain forwarding: each gateway routes the far LAN via the other gateway's WAN address.
            run_ok(
                p.west
                    .ns
                    .cmd("ip")
                    .args(["route", "add", EAST_LAN_NET, "via", EAST_WAN]),
            )?;
            run_ok(
                p.east
                    .ns
                    .cmd("ip")
                    .args(["route", "add", WEST_LAN_NET, "via", WEST_WAN]),
            )?;
        }
        Keying::Manual(esp, enc, auth) => {
            let conn = ManualConn {
                esp: Some((esp, enc, auth)),
                ah: None,
                transport: false,
                replay_window: None,
            };
            p.write_conf_both(&conn.conf());
            for gw in [&p.west, &p.east] {
                run_ok(
                    gw.ctl()
                        .env("FERROSWAN_INSECURE_MANUAL_AEAD", "1")
                        .arg("start"),
                )?;
            }
            for gw in [&p.west, &p.east] {
                gw.wait_status(Duration::from_secs(30), "ready", |s| {
                    ferroswan_tests::all_ready(s) && ferroswan_tests::all_links_up(s)
                })?;
            }
        }
    }
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(15))?;
    let mut tcp = Vec::new();
    for _ in 0..3 {
        let j = iperf_json(&p, &[], 10)?;
        let bps = j["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0);
        tcp.push(bps / 1e6);
    }
    let j = iperf_json(&p, &["-u", "-l", "64", "-b", "0"], 5)?;
    let sum = &j["end"]["sum"];
    let packets = sum["packets"].as_f64().unwrap_or(0.0);
    let lost = sum["lost_packets"].as_f64().unwrap_or(0.0);
    let secs = sum["seconds"].as_f64().unwrap_or(1.0).max(0.001);
    Ok((median(tcp), (packets - lost) / secs))
}

fn main() {
    ferroswan_tests::require_root();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("machine: {cpu}, {cores} cores; LAN host -> gateway -> gateway -> LAN host, all in namespaces");
    println!("| case | TCP Mbit/s (median of 3 × 10 s) | 64-byte UDP received pps |");
    println!("|---|---|---|");
    let mut failed = false;
    let mut by_esp: std::collections::HashMap<(&str, bool), (f64, f64)> = Default::default();
    for case in CASES {
        match measure(case) {
            Ok((mbit, pps)) => {
                println!("| {} | {mbit:.0} | {:.0} k |", case.name, pps / 1000.0);
                match case.keying {
                    Keying::Ferroswan(esp) => {
                        by_esp.insert((esp, true), (mbit, pps));
                    }
                    Keying::StrongSwan(esp) => {
                        by_esp.insert((esp, false), (mbit, pps));
                    }
                    _ => {}
                }
            }
            Err(e) => {
                failed = true;
                println!(
                    "| {} | failed: {} | |",
                    case.name,
                    e.lines().next().unwrap_or("")
                );
            }
        }
    }
    println!();
    println!("| IKEv1-keyed ESP | TCP ferroswan/strongSwan | 64-byte pps ferroswan/strongSwan |");
    println!("|---|---|---|");
    for esp in ["aes128gcm16", "aes128-sha1"] {
        if let (Some(f), Some(s)) = (by_esp.get(&(esp, true)), by_esp.get(&(esp, false))) {
            println!(
                "| {esp} | {:.2} | {:.2} |",
                f.0 / s.0.max(1e-9),
                f.1 / s.1.max(1e-9)
            );
        }
    }
    println!();
    println!(
        "| tunnel set-up, IKEv1 Main + Quick Mode (median of 5) | ferroswan | strongSwan | ratio |"
    );
    println!("|---|---|---|---|");
    let rsa = RsaPair::generate(2048).map(Auth::rsa);
    for (name, auth) in [("PSK", Ok(Auth::Psk(PSK.into()))), ("RSA-2048", rsa)] {
        match auth.and_then(|a| setup_times(&a)) {
            Ok((f, s)) => {
                println!(
                    "| {name} | {:.1} ms | {:.1} ms | {:.2} |",
                    f.as_secs_f64() * 1e3,
                    s.as_secs_f64() * 1e3,
                    f.as_secs_f64() / s.as_secs_f64().max(1e-9)
                );
            }
            Err(e) => {
                failed = true;
                println!(
                    "| {name} | failed: {} | | |",
                    e.lines().next().unwrap_or("")
                );
            }
        }
    }
    println!();
    println!("ferroswan/strongSwan ratios above 1 mean ferroswan is faster for throughput and packet rate, slower for set-up time.");
    if failed {
        std::process::exit(1);
    }
}
