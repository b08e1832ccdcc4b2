//! Issue: ikerd IKEv1, ferroswan against ferroswan (acceptance 1 and 4). Two gateways in namespaces
//! with a LAN behind each (tests/src/topology.rs), configured from one tunnel description
//! (tests/src/ike_conf.rs), every conn saying `keyexchange=ikev1`:
//! - subnet to subnet with a PSK, `auto=start`: ping and a checksummed TCP transfer LAN to LAN, and
//!   the WAN carries only ESP;
//! - host to host with RSA signatures, `auto=route`: the first packet brings the tunnel up;
//! - a road warrior (`right=%any` on the gateway) with a PSK;
//! - an extruded subnet (`rightsubnet=0.0.0.0/0`): all of west's LAN goes through east, while the
//!   gateways' own IKE and ESP keep flowing;
//! - IPv6 outside and inside;
//! - a wrong PSK and an unknown RSA key are refused with a log line that says so;
//! - a bounded flood of replayed, corrupted and random IKE datagrams leaves the tunnel up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ferroswan_tests::ike::*;
use ferroswan_tests::ike_conf::*;
use ferroswan_tests::topology::*;
use ferroswan_tests::*;
use std::time::Duration;

const PSK: &str = "ferroswan IKEv1 test secret";
const UP: Duration = Duration::from_secs(20);

fn pair(tag: &str, t: &IkeTunnel) -> GatewayPair {
    let p = GatewayPair::new(tag).expect("topology");
    configure(&p, t);
    p.start().expect("gateways start");
    p
}

fn v1(mut t: IkeTunnel, auto: Auto) -> IkeTunnel {
    t.auto = auto;
    t
}

#[test]
fn subnet_to_subnet_psk_comes_up_by_auto_start_and_carries_only_esp() {
    let mut t = v1(
        IkeTunnel::lan_to_lan("net", 1, Auth::Psk(PSK.into())),
        Auto::Start,
    );
    t.ike = "aes128-sha1-modp2048".into();
    t.esp = "aes128-sha1".into();
    // West starts it; east only answers (`auto=add`), so the roles in the log are known. (Both
    // ends starting at once is the extruded-subnet test's case.)
    let mut east = t.clone();
    east.auto = Auto::Add;
    let p = GatewayPair::new("v1net").expect("topology");
    configure_one(&p.west, &t, true);
    configure_one(&p.east, &east, false);
    p.start().expect("gateways start");
    let cap_file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &cap_file).expect("capture");
    wait_established(&p, "net", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    // pluto's state lines, one per state, with the conn name and serial
    for (gw, states) in [
        (
            &p.west,
            [
                "STATE_MAIN_I1",
                "STATE_MAIN_I4: ISAKMP SA established",
                "STATE_QUICK_I2",
            ],
        ),
        (
            &p.east,
            ["STATE_MAIN_R1", "STATE_MAIN_R3", "STATE_QUICK_R2"],
        ),
    ] {
        for s in states {
            wait_log(gw, "ikerd", &["\"net\" #", s], Duration::from_secs(1))
                .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
        }
    }
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    ping(&p.west_lan, EAST_HOST, 5).expect("5 pings LAN to LAN");
    ping(&p.east_lan, WEST_HOST, 5).expect("5 pings back");
    let (n, _) = tcp_transfer(
        &p.west_lan,
        &p.east_lan,
        EAST_HOST,
        10_000_000,
        Duration::from_secs(60),
    )
    .expect("TCP transfer LAN to LAN");
    assert_eq!(n, 10_000_000);
    cap.finish();
    let esp = assert_only_ipsec(&cap, "PSK subnet-to-subnet");
    assert!(esp > 1000, "only {esp} ESP packets for 10 MB");
    // The negotiated SAs are ikerd's, listed by fwd.
    let look = ctl(&p.west, &["look", "--json"]).unwrap();
    let look: serde_json::Value = serde_json::from_str(&look).unwrap();
    let sas = look["sas"].as_array().unwrap();
    assert_eq!(sas.len(), 2, "one SA each way: {look:#}");
    assert!(sas.iter().all(|s| s["conn"] == "net"));
}

#[test]
fn host_to_host_rsa_comes_up_on_the_first_packet_with_auto_route() {
    let keys = RsaPair::generate(2048).expect("RSA keys");
    let mut t = v1(
        IkeTunnel::new("hosts", 1, Auth::rsa(keys), WEST_WAN, EAST_WAN),
        Auto::Route,
    );
    t.left_id = Some("@west".into());
    t.right_id = Some("@east".into());
    let p = pair("v1rsa", &t);
    // nothing negotiated before traffic
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count_log(&p.west, "ikerd", &["STATE_MAIN_I1"]), 0);
    let cap_file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &cap_file).expect("capture");
    // the first ping is dropped (no SA yet, never sent in the clear) and triggers the negotiation
    wait_ping(&p.west.ns, EAST_WAN, UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_established(&p, "hosts", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_log(
        &p.west,
        "ikerd",
        &["\"hosts\"", "acquire"],
        Duration::from_secs(1),
    )
    .unwrap();
    wait_log(
        &p.west,
        "ikerd",
        &["\"hosts\" #", "auth=RSA_SIG"],
        Duration::from_secs(1),
    )
    .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    ping(&p.west.ns, EAST_WAN, 5).expect("5 pings host to host");
    let (n, _) = tcp_transfer(
        &p.west.ns,
        &p.east.ns,
        EAST_WAN,
        4_000_000,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    assert_eq!(n, 4_000_000);
    cap.finish();
    // Host to host between the gateways' own addresses: IKE itself stays in the clear on port
    // 500/4500 (it carries fwd's bypass mark); the pings are ESP only.
    assert!(cap.read("icmp").unwrap().is_empty(), "ICMP in the clear");
    assert_only_ipsec(&cap, "RSA host-to-host");
    // keyd signed: both keyds logged the typed request, and neither holds the other's key
    wait_log(&p.west, "keyd", &["hosts", "@west"], Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
}

#[test]
fn road_warrior_with_any_peer_address() {
    // West is the road warrior (its own address only); east answers anyone (`left=%any`).
    let mut west = v1(
        IkeTunnel::new("rw", 1, Auth::Psk(PSK.into()), WEST_WAN, EAST_WAN),
        Auto::Start,
    );
    west.right_subnets = vec![EAST_LAN_NET.into()];
    let mut east = west.clone();
    east.left = "%any".into();
    east.auto = Auto::Add;
    let p = GatewayPair::new("v1rw").expect("topology");
    configure_one(&p.west, &west, true);
    configure_one(&p.east, &east, false);
    p.start().expect("gateways start");
    wait_established(&p, "rw", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    // east made an instance of the template for this peer, as pluto does
    wait_log(
        &p.east,
        "ikerd",
        &["\"rw[", "IPsec SA established"],
        Duration::from_secs(1),
    )
    .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_ping(&p.west.ns, EAST_HOST, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    ping(&p.west.ns, EAST_HOST, 5).expect("road warrior to east's LAN");
    let (n, _) = tcp_transfer(
        &p.west.ns,
        &p.east_lan,
        EAST_HOST,
        4_000_000,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    assert_eq!(n, 4_000_000);
}

#[test]
fn extruded_subnet_sends_all_of_wests_lan_through_east_and_ike_keeps_flowing() {
    let mut t = v1(
        IkeTunnel::lan_to_lan("extruded", 1, Auth::Psk(PSK.into())),
        Auto::Start,
    );
    t.right_subnets = vec!["0.0.0.0/0".into()];
    t.dpd = Some(Dpd {
        delay_secs: 1,
        timeout_secs: 5,
        action: DpdAction::Restart,
    });
    let p = pair("v1ext", &t);
    wait_established(&p, "extruded", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    let cap_file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &cap_file).expect("capture");
    // west's LAN reaches east's LAN and east's own WAN address through the tunnel
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    ping(&p.west_lan, EAST_WAN, 3).expect("west LAN to east's WAN address, tunnelled");
    // DPD keeps exchanging over IKE for a few seconds: the gateways' own IKE is not swallowed by
    // the default route into the tunnel.
    std::thread::sleep(Duration::from_secs(4));
    cap.finish();
    assert_only_ipsec(&cap, "extruded subnet");
    let ike = cap
        .read("udp port 500 or (udp port 4500 and udp[8:4] = 0)")
        .unwrap();
    assert!(
        !ike.is_empty(),
        "no IKE (DPD) on the WAN while the default route points into the tunnel"
    );
    assert_eq!(
        count_log(&p.west, "ikerd", &["extruded", "DPD", "dead"]),
        0,
        "{}",
        logs(&p)
    );
}

#[test]
fn ipv6_outside_and_inside() {
    let mut t = v1(
        IkeTunnel::new("six", 1, Auth::Psk(PSK.into()), WEST_WAN6, EAST_WAN6),
        Auto::Start,
    );
    t.left_subnets = vec!["fd01::/64".into()];
    t.right_subnets = vec!["fd02::/64".into()];
    let p = pair("v1six", &t);
    wait_established(&p, "six", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    let cap_file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &cap_file).expect("capture");
    wait_ping(&p.west_lan, EAST_HOST6, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    ping(&p.west_lan, EAST_HOST6, 5).expect("IPv6 LAN to LAN");
    let (n, _) = tcp_transfer(
        &p.west_lan,
        &p.east_lan,
        EAST_HOST6,
        4_000_000,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    assert_eq!(n, 4_000_000);
    cap.finish();
    assert!(cap
        .read("icmp6 and (icmp6[0] = 128 or icmp6[0] = 129)")
        .unwrap()
        .is_empty());
    assert_only_ipsec(&cap, "IPv6");
}

#[test]
fn a_wrong_psk_is_refused_with_a_log_line_that_says_so() {
    let t = v1(
        IkeTunnel::lan_to_lan("badpsk", 1, Auth::Psk(PSK.into())),
        Auto::Add,
    );
    let mut other = t.clone();
    other.auth = Auth::Psk("not the same secret".into());
    let p = GatewayPair::new("v1bad").expect("topology");
    configure_one(&p.west, &t, true);
    configure_one(&p.east, &other, false);
    p.start().expect("gateways start");
    let _ = ctl(&p.west, &["up", "badpsk"]);
    // Main Mode with a PSK: the responder cannot decrypt MI3 with the wrong key (or its hash fails)
    let refused = wait_log(&p.east, "ikerd", &["\"badpsk\"", "PSK"], UP)
        .or_else(|_| wait_log(&p.west, "ikerd", &["\"badpsk\"", "PSK"], UP))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    assert!(
        refused.contains("authentication failed") || refused.contains("wrong"),
        "{refused}"
    );
    assert_eq!(count_log(&p.west, "ikerd", &["IPsec SA established"]), 0);
    assert_eq!(count_log(&p.east, "ikerd", &["IPsec SA established"]), 0);
    let look: serde_json::Value =
        serde_json::from_str(&ctl(&p.east, &["look", "--json"]).unwrap()).unwrap();
    assert!(look["sas"].as_array().unwrap().is_empty(), "{look:#}");
}

#[test]
fn an_unknown_rsa_key_is_refused() {
    let keys = RsaPair::generate(2048).expect("RSA keys");
    let impostor = RsaPair::generate(2048).expect("RSA keys");
    let mut t = v1(
        IkeTunnel::new("badrsa", 1, Auth::rsa(keys), WEST_WAN, EAST_WAN),
        Auto::Add,
    );
    t.left_id = Some("@west".into());
    t.right_id = Some("@east".into());
    // east expects west's real key; west signs with another one (its secrets hold the impostor's
    // private key, its ipsec.conf the impostor's public key)
    let mut w = t.clone();
    if let (Auth::Rsa(real), Auth::Rsa(_)) = (&t.auth, &w.auth) {
        let mut swapped = (**real).clone();
        swapped.left = impostor.left.clone();
        w.auth = Auth::Rsa(Box::new(swapped));
    }
    let p = GatewayPair::new("v1unk").expect("topology");
    configure_one(&p.west, &w, true);
    configure_one(&p.east, &t, false);
    p.start().expect("gateways start");
    let _ = ctl(&p.west, &["up", "badrsa"]);
    let line = wait_log(&p.east, "ikerd", &["\"badrsa\"", "signature"], UP)
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    assert!(
        line.contains("did not verify") || line.contains("failed"),
        "{line}"
    );
    assert_eq!(count_log(&p.east, "ikerd", &["IPsec SA established"]), 0);
}

#[test]
fn a_flood_of_hostile_ike_datagrams_does_not_disturb_the_tunnel() {
    let t = v1(
        IkeTunnel::lan_to_lan("flood", 1, Auth::Psk(PSK.into())),
        Auto::Add,
    );
    let p = GatewayPair::new("v1fld").expect("topology");
    configure(&p, &t);
    p.start().expect("gateways start");
    let cap_file = p.west.dir.0.join("ike.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &cap_file).expect("capture");
    ctl(&p.west, &["up", "flood"]).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_established(&p, "flood", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10)).unwrap();
    cap.finish();
    let before = count_log(&p.east, "ikerd", &["established"]);
    let spis_before = spis(&p.east);
    assert_eq!(spis_before.len(), 2, "one SA each way before the flood");
    // 20 000 datagrams at most, 10 s at most: replays of this very exchange, bit flips,
    // truncations, random cookies, junk
    let out = run_ok(p.west.ns.cmd(bin("ike-flood")).args([
        "--pcap",
        cap_file.to_str().unwrap(),
        "--dst",
        EAST_WAN,
        "--count",
        "20000",
        "--seconds",
        "10",
    ]))
    .expect("ike-flood");
    let sent: u64 = out.trim().parse().unwrap();
    assert!(sent > 1000, "only {sent} sent");
    // the tunnel still carries traffic, nothing new was negotiated or torn down, daemons alive
    ping(&p.west_lan, EAST_HOST, 5).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    assert_eq!(
        count_log(&p.east, "ikerd", &["established"]),
        before,
        "{}",
        logs(&p)
    );
    assert_eq!(
        spis(&p.east),
        spis_before,
        "the flood changed the installed SAs"
    );
    assert!(
        count_log(&p.east, "ikerd", &["dropped"]) > 100,
        "the hostile datagrams are logged as dropped"
    );
    let st = p.east.status_json().unwrap();
    assert!(all_ready(&st), "{st:#}");
}

/// The SPIs fwd holds on `gw`, sorted.
fn spis(gw: &Instance) -> Vec<u64> {
    let look: serde_json::Value =
        serde_json::from_str(&ctl(gw, &["look", "--json"]).unwrap()).unwrap();
    let mut v: Vec<u64> = look["sas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"]["spi"].as_u64().unwrap())
        .collect();
    v.sort();
    v
}
