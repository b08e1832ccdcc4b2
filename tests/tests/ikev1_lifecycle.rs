//! Issue: ikerd IKEv1, the life of a tunnel (acceptance 3, and fwd restarts):
//! - rekeying with 20 s lifetimes under a continuous ping for 90 s loses at most one packet per
//!   rekey, against ferroswan and against strongSwan (the two soaks run side by side);
//! - DPD with `dpdaction=restart`: the peer's gateway is killed and started again, and the tunnel
//!   comes back by itself;
//! - fwd killed under traffic: ikerd installs its SAs and policies again, nothing leaks, and the
//!   tunnel carries on without a new negotiation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ferroswan_tests::ike::*;
use ferroswan_tests::ike_conf::*;
use ferroswan_tests::strongswan::*;
use ferroswan_tests::topology::*;
use ferroswan_tests::*;
use std::time::Duration;

const PSK: &str = "ferroswan lifecycle test secret";
const UP: Duration = Duration::from_secs(20);

fn psk(name: &str) -> IkeTunnel {
    IkeTunnel::lan_to_lan(name, 1, Auth::Psk(PSK.into()))
}

/// (sent, received) from ping's summary.
fn ping_counts(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary in {out}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1])
}

/// Ping LAN to LAN every 100 ms for `secs`; (sent, received).
fn soak_ping(p: &GatewayPair, secs: u32) -> (u64, u64) {
    let out = run(p.west_lan.cmd("ping").args([
        "-n",
        "-q",
        "-i",
        "0.1",
        "-W",
        "1",
        "-w",
        &secs.to_string(),
        EAST_HOST,
    ]))
    .expect("ping runs");
    ping_counts(&String::from_utf8_lossy(&out.stdout))
}

fn short_lives(t: &mut IkeTunnel) {
    t.lifetimes = Some(Lifetimes {
        ike_secs: 20,
        child_secs: 20,
        margin_secs: 6,
    });
}

#[test]
fn rekeying_every_20_s_against_ferroswan_loses_at_most_one_packet_per_rekey() {
    let mut t = psk("soak");
    t.auto = Auto::Start;
    short_lives(&mut t);
    let mut east = t.clone();
    east.auto = Auto::Add;
    let p = GatewayPair::new("v1soak").expect("topology");
    configure_one(&p.west, &t, true);
    configure_one(&p.east, &east, false);
    p.start().expect("gateways start");
    wait_established(&p, "soak", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10)).unwrap();
    let before = count_log(&p.west, "ikerd", &["\"soak\"", "IPsec SA established"]);
    let (sent, received) = soak_ping(&p, 90);
    let rekeys = count_log(&p.west, "ikerd", &["\"soak\"", "IPsec SA established"]) - before;
    let lost = sent - received;
    eprintln!("ferroswan soak: {sent} sent, {lost} lost, {rekeys} IPsec rekeys");
    // 90 s with 20 s lifetimes: at least three rekeys of the IPsec SA
    assert!(rekeys >= 3, "only {rekeys} rekeys in 90 s{}", logs(&p));
    assert!(
        lost <= rekeys as u64,
        "{lost} packets lost over {rekeys} rekeys{}",
        logs(&p)
    );
    // and the ISAKMP SA was renewed as well
    assert!(
        count_log(&p.west, "ikerd", &["\"soak\"", "ISAKMP SA established"]) >= 2,
        "{}",
        logs(&p)
    );
}

#[test]
fn rekeying_every_20_s_against_strongswan_loses_at_most_one_packet_per_rekey() {
    let mut t = psk("swsoak");
    short_lives(&mut t);
    let p = GatewayPair::new("v1swsk").expect("topology");
    configure_one(&p.west, &t, true);
    p.west.start().expect("ferroswan starts");
    p.west
        .wait_status(Duration::from_secs(30), "ready", |s| all_ready(s) && all_links_up(s))
        .expect("ready");
    let sw = StrongSwan::start(&p.east.ns, "v1swsk-sw").expect("charon");
    sw.load(&t.swanctl_conf(false)).expect("swanctl");
    ctl(&p.west, &["up", "swsoak"]).unwrap();
    wait_log(&p.west, "ikerd", &["\"swsoak\"", "IPsec SA established"], UP)
        .unwrap_or_else(|e| panic!("{e}{}\n{}", logs(&p), sw.log()));
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10)).unwrap();
    let before = count_log(&p.west, "ikerd", &["\"swsoak\"", "IPsec SA established"]);
    let (sent, received) = soak_ping(&p, 90);
    let rekeys = count_log(&p.west, "ikerd", &["\"swsoak\"", "IPsec SA established"]) - before;
    let lost = sent - received;
    eprintln!("strongSwan soak: {sent} sent, {lost} lost, {rekeys} IPsec rekeys");
    assert!(
        rekeys >= 3,
        "only {rekeys} rekeys in 90 s{}\n{}",
        logs(&p),
        tail(&sw.log(), 80)
    );
    assert!(
        lost <= rekeys as u64,
        "{lost} packets lost over {rekeys} rekeys{}\n{}",
        logs(&p),
        tail(&sw.log(), 80)
    );
}

#[test]
fn dpd_restart_brings_the_tunnel_back_after_the_peer_gateway_restarts() {
    let mut t = psk("dpd");
    t.auto = Auto::Start;
    t.dpd = Some(Dpd {
        delay_secs: 1,
        timeout_secs: 4,
        action: DpdAction::Restart,
    });
    let mut east = t.clone();
    east.auto = Auto::Add;
    let p = GatewayPair::new("v1dpd").expect("topology");
    configure_one(&p.west, &t, true);
    configure_one(&p.east, &east, false);
    p.start().expect("gateways start");
    wait_established(&p, "dpd", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10)).unwrap();
    // east's whole gateway goes away (all its daemons, its SAs with them) and comes back empty
    p.east.stop().expect("east stops");
    wait_log(&p.west, "ikerd", &["\"dpd\"", "DPD", "dead"], Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    p.east.start().expect("east starts again");
    p.east
        .wait_status(Duration::from_secs(30), "ready", |s| all_ready(s) && all_links_up(s))
        .expect("east ready");
    wait_log(&p.east, "ikerd", &["\"dpd\"", "IPsec SA established"], Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    ping(&p.west_lan, EAST_HOST, 3).expect("the tunnel is back");
}

#[test]
fn fwd_killed_under_traffic_gets_ikerds_sas_back_and_nothing_leaks() {
    let mut t = psk("fwdkill");
    t.auto = Auto::Start;
    let mut east = t.clone();
    east.auto = Auto::Add;
    let p = GatewayPair::new("v1kill").expect("topology");
    configure_one(&p.west, &t, true);
    configure_one(&p.east, &east, false);
    p.start().expect("gateways start");
    wait_established(&p, "fwdkill", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10)).unwrap();
    let negotiated = count_log(&p.west, "ikerd", &["IPsec SA established"]);
    let file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &file).expect("capture");
    let pinger = p
        .west_lan
        .cmd("ping")
        .args(["-n", "-q", "-i", "0.05", "-w", "8", EAST_HOST])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let old = p.west.pid("fwd").expect("fwd pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    p.west
        .wait_status(Duration::from_secs(20), "fwd restarted", |s| {
            daemon(s, "fwd").is_some_and(|d| {
                d["state"] == "ready" && d["pid"].as_i64() != Some(i64::from(old))
            })
        })
        .expect("fwd back");
    wait_log(&p.west, "ikerd", &["re-installing"], Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    let out = pinger.wait_with_output().unwrap();
    let (sent, received) = ping_counts(&String::from_utf8_lossy(&out.stdout));
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    cap.finish();
    let clear = cap.cleartext().unwrap();
    assert!(clear.is_empty(), "cleartext while fwd was down: {:?}", &clear[..clear.len().min(5)]);
    assert!(received > 0 && received < sent, "{received}/{sent}");
    // same SAs, no new negotiation; the outbound SA skipped ahead rather than reuse numbers
    assert_eq!(count_log(&p.west, "ikerd", &["IPsec SA established"]), negotiated);
    assert!(p.west.log("fwd").contains("resumes its sequence numbers"), "{}", logs(&p));
}
