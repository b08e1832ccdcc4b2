//! Issue: ikerd IKEv1 against strongSwan 5.9 (acceptance 2). West runs ferroswan, east runs
//! Debian's charon with the kernel-libipsec userspace datapath, started and configured by the test
//! itself (tests/src/strongswan.rs) from the same tunnel description as ferroswan's ipsec.conf
//! (tests/src/ike_conf.rs):
//! - Main Mode PSK with 3DES/MD5/MODP-1024 and with AES/SHA-1/MODP-2048, and RSA signatures, each
//!   way round (ferroswan initiating, then strongSwan initiating): ping and TCP across;
//! - through a NAT router (iptables MASQUERADE) between them: NAT-T on port 4500.
//!
//! kernel-libipsec always encapsulates ESP in UDP 4500 (it fakes NAT detection), so NAT-T is on the
//! path of every one of these tunnels.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ferroswan_tests::ike::*;
use ferroswan_tests::ike_conf::*;
use ferroswan_tests::strongswan::*;
use ferroswan_tests::topology::*;
use ferroswan_tests::*;
use std::time::Duration;

const PSK: &str = "ferroswan and strongSwan test secret";
const UP: Duration = Duration::from_secs(20);

/// Who starts the negotiation.
#[derive(Clone, Copy, Debug)]
enum Initiator {
    Ferroswan,
    StrongSwan,
}

fn swan_logs(p: &GatewayPair, sw: &StrongSwan) -> String {
    format!(
        "{}\n----- strongSwan (east) -----\n{}\n{}",
        logs(p),
        tail(&sw.log(), 80),
        sw.list_sas()
    )
}

/// West (ferroswan, left) and east (strongSwan, right) from `t`; the tunnel negotiated by
/// `who`; ping and 4 MB of TCP both ways LAN to LAN, with only ESP in UDP on the WAN.
fn interop(p: &GatewayPair, t: &IkeTunnel, who: Initiator) {
    configure_one(&p.west, t, true);
    p.west.start().expect("ferroswan starts");
    p.west
        .wait_status(Duration::from_secs(30), "ready", |s| {
            all_ready(s) && all_links_up(s)
        })
        .expect("ferroswan ready");
    let sw = StrongSwan::start(&p.east.ns, &format!("{}-sw", p.east.ns.name)).expect("charon");
    sw.load(&t.swanctl_conf(false)).expect("swanctl --load-all");
    let cap_file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &cap_file).expect("capture");
    match who {
        Initiator::Ferroswan => {
            ctl(&p.west, &["up", &t.name]).unwrap_or_else(|e| panic!("{e}{}", swan_logs(p, &sw)));
        }
        Initiator::StrongSwan => {
            sw.initiate(&t.name, UP)
                .unwrap_or_else(|e| panic!("{e}{}", swan_logs(p, &sw)));
        }
    }
    wait_log(
        &p.west,
        "ikerd",
        &[&format!("\"{}", t.name), "IPsec SA established"],
        UP,
    )
    .unwrap_or_else(|e| panic!("{e}{}", swan_logs(p, &sw)));
    sw.wait_established(&t.name, UP)
        .unwrap_or_else(|e| panic!("{e}{}", swan_logs(p, &sw)));
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", swan_logs(p, &sw)));
    ping(&p.west_lan, EAST_HOST, 5).expect("west LAN to east LAN");
    ping(&p.east_lan, WEST_HOST, 5).expect("east LAN to west LAN");
    let (n, _) = tcp_transfer(
        &p.west_lan,
        &p.east_lan,
        EAST_HOST,
        4_000_000,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}{}", swan_logs(p, &sw)));
    assert_eq!(n, 4_000_000);
    let (n, _) = tcp_transfer(
        &p.east_lan,
        &p.west_lan,
        WEST_HOST,
        4_000_000,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}{}", swan_logs(p, &sw)));
    assert_eq!(n, 4_000_000);
    cap.finish();
    assert_only_ipsec(&cap, &format!("{} {who:?}", t.name));
    let udp_esp = cap.read("udp port 4500 and udp[8:4] != 0").unwrap();
    assert!(
        !udp_esp.is_empty(),
        "kernel-libipsec's ESP is always in UDP 4500"
    );
}

fn psk_tunnel(name: &str, ike: &str, esp: &str) -> IkeTunnel {
    let mut t = IkeTunnel::lan_to_lan(name, 1, Auth::Psk(PSK.into()));
    t.ike = ike.into();
    t.esp = esp.into();
    t
}

#[test]
fn psk_3des_md5_modp1024_each_way() {
    for (i, who) in [Initiator::Ferroswan, Initiator::StrongSwan]
        .into_iter()
        .enumerate()
    {
        let p = GatewayPair::new(&format!("sw3d{i}")).expect("topology");
        interop(
            &p,
            &psk_tunnel("classic", "3des-md5-modp1024", "3des-md5"),
            who,
        );
    }
}

#[test]
fn psk_aes_sha1_modp2048_each_way() {
    for (i, who) in [Initiator::Ferroswan, Initiator::StrongSwan]
        .into_iter()
        .enumerate()
    {
        let p = GatewayPair::new(&format!("swae{i}")).expect("topology");
        interop(
            &p,
            &psk_tunnel("modern", "aes128-sha1-modp2048", "aes128-sha1"),
            who,
        );
    }
}

#[test]
fn rsa_signatures_each_way() {
    let keys = RsaPair::generate(2048).expect("RSA keys");
    for (i, who) in [Initiator::Ferroswan, Initiator::StrongSwan]
        .into_iter()
        .enumerate()
    {
        let mut t = IkeTunnel::lan_to_lan("rsa", 1, Auth::rsa(keys.clone()));
        t.left_id = Some("@west".into());
        t.right_id = Some("@east".into());
        let p = GatewayPair::new(&format!("swrs{i}")).expect("topology");
        interop(&p, &t, who);
    }
}

#[test]
fn through_a_nat_router_nat_t_on_port_4500() {
    // ferroswan behind the NAT initiates to strongSwan outside it.
    let p = NatGatewayPair::new("swnat").expect("NAT topology");
    let mut t = psk_tunnel("natted", "aes128-sha1-modp2048", "aes128-sha1");
    t.right = NAT_EAST_WAN.into();
    t.left_id = Some("@west".into());
    t.right_id = Some("@east".into());
    // east sees west only as the NAT router's address: it accepts any peer address
    let mut east_side = t.clone();
    east_side.left = "%any".into();
    configure_one(&p.west, &t, true);
    p.west.start().expect("ferroswan starts");
    p.west
        .wait_status(Duration::from_secs(30), "ready", |s| {
            all_ready(s) && all_links_up(s)
        })
        .expect("ferroswan ready");
    let sw = StrongSwan::start(&p.east.ns, "swnat-sw").expect("charon");
    sw.load(&east_side.swanctl_conf(false))
        .expect("swanctl --load-all");
    ctl(&p.west, &["up", "natted"]).unwrap_or_else(|e| panic!("{e}{}", swan_logs(&p, &sw)));
    wait_log(
        &p.west,
        "ikerd",
        &["\"natted\"", "IPsec SA established"],
        UP,
    )
    .unwrap_or_else(|e| panic!("{e}{}", swan_logs(&p, &sw)));
    sw.wait_established("natted", UP)
        .unwrap_or_else(|e| panic!("{e}{}", swan_logs(&p, &sw)));
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", swan_logs(&p, &sw)));
    ping(&p.west_lan, EAST_HOST, 5).expect("through the NAT");
    ping(&p.east_lan, WEST_HOST, 5).expect("back through the NAT");
    // strongSwan saw the NAT too, and ferroswan said so in its log
    assert!(
        sw.log().contains("remote host is behind NAT"),
        "{}",
        swan_logs(&p, &sw)
    );
    wait_log(
        &p.west,
        "ikerd",
        &["\"natted\"", "NAT"],
        Duration::from_secs(1),
    )
    .unwrap_or_else(|e| panic!("{e}{}", swan_logs(&p, &sw)));
}
