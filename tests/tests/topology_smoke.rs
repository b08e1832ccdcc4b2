//! The shared topology itself: links, addresses and routes as documented, with no tunnel (the LAN
//! hosts reach their own gateway; gateways reach each other over the WAN; a bulk transfer's checksum
//! matches end to end; a capture sees the traffic in the clear, which is what `cleartext()` must flag).

use ferroswan_tests::topology::*;
use std::time::Duration;

#[test]
fn gateway_pair_topology_without_tunnel() {
    let p = GatewayPair::new("topo").expect("topology");
    ping(&p.west_lan, WEST_GW_LAN, 1).expect("lan host reaches its gateway");
    ping(&p.west.ns, EAST_WAN, 1).expect("gateways reach each other");
    ping(&p.west.ns, EAST_WAN6, 1).expect("gateways reach each other over IPv6");
    let file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &file).expect("capture");
    tcp_transfer(&p.west.ns, &p.east.ns, EAST_WAN, 1 << 20, Duration::from_secs(20)).expect("transfer");
    cap.finish();
    let clear = cap.cleartext().expect("read capture");
    assert!(clear.iter().any(|l| l.contains("192.0.2.2.5201")), "the capture shows the clear TCP: {clear:?}");
}
