//! Tunnel benchmark (not a test): TCP throughput (iperf3, 3 runs, median) and 64-byte UDP packet rate
//! from LAN host to LAN host, through plain forwarding and through ferroswan tunnels, in the shared
//! gateway-pair topology, printed as a table. Run it with `scripts/bench-tunnel.sh` (release build, as
//! root). The AES-GCM row is keyed manually through the benchmark-only switch
//! FERROSWAN_INSECURE_MANUAL_AEAD=1 (until IKE exists): never do that on a real gateway.

use ferroswan_tests::topology::*;
use ferroswan_tests::{run, run_ok, Result};
use std::process::Stdio;
use std::time::Duration;

struct Case {
    name: &'static str,
    /// `esp=` and keys for a manual conn; None: plain forwarding, no tunnel.
    esp: Option<(&'static str, usize, usize)>,
}

const CASES: &[Case] = &[
    Case {
        name: "plain veth forwarding (no tunnel)",
        esp: None,
    },
    Case {
        name: "ESP AES-128-GCM-16 (manual, insecure switch)",
        esp: Some(("aes128gcm16", 20, 0)),
    },
    Case {
        name: "ESP AES-128-CBC + HMAC-SHA1-96",
        esp: Some(("aes128-sha1", 16, 20)),
    },
    Case {
        name: "ESP AES-256-CBC + HMAC-SHA2-256-128",
        esp: Some(("aes256-sha2_256", 32, 32)),
    },
    Case {
        name: "ESP 3DES-CBC + HMAC-MD5-96",
        esp: Some(("3des-md5", 24, 16)),
    },
];

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
    match case.esp {
        None => {
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
        Some((esp, enc, auth)) => {
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
    for case in CASES {
        match measure(case) {
            Ok((mbit, pps)) => println!("| {} | {mbit:.0} | {:.0} k |", case.name, pps / 1000.0),
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
    if failed {
        std::process::exit(1);
    }
}
