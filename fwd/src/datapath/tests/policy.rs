//! Outbound policy actions: pass, drop, reject (ICMP), trap (acquire, rate-limited), no policy,
//! a conn taken down with its routes kept, and PMTU (ICMP fragmentation needed / packet too big).
use super::*;
use crate::datapath::icmp::icmpv6_checksum;
use ipc::fwd::FwdEvent;
use ipc::policy::{FlowInfo, RemoveMode};
use std::time::Duration;

fn simple(action: PolicyAction, dst: &str, route: bool) -> PolicySpec {
    let any = if dst.contains(':') {
        net("::/0")
    } else {
        net("0.0.0.0/0")
    };
    policy(Direction::Out, any, net(dst), action, route)
}

fn actions_engine() -> Engine {
    let e = Engine::new(EngineConfig::default());
    let st = ConnState {
        conn: CONN.into(),
        sas: vec![],
        policies: vec![
            simple(PolicyAction::Pass, "10.5.0.0/16", true),
            simple(PolicyAction::Drop, "10.6.0.0/16", true),
            simple(PolicyAction::Reject, "10.7.0.0/16", true),
            simple(PolicyAction::Trap, "10.8.0.0/16", true),
            simple(PolicyAction::Reject, "fd07::/48", false),
            simple(PolicyAction::Pass, "fd05::/48", false),
        ],
    };
    assert_eq!(
        e.install_conn(Origin::Confd, &st, Instant::now()).unwrap(),
        (0, 6)
    );
    e
}

/// Parse an ICMPv4 error back: (type, code, the 4 bytes after the checksum, quoted bytes).
fn icmp4(pkt: &[u8]) -> (Ipv4Header, u8, u8, [u8; 4], Vec<u8>) {
    let (h, hl) = Ipv4Header::parse(pkt).expect("valid IPv4 header and checksum");
    assert_eq!(h.total_len as usize, pkt.len());
    assert_eq!(h.protocol, 1);
    let m = &pkt[hl..];
    assert_eq!(iph::checksum(m), 0, "ICMP checksum");
    (h, m[0], m[1], m[4..8].try_into().unwrap(), m[8..].to_vec())
}

fn icmp6(pkt: &[u8]) -> (Ipv6Header, u8, u8, [u8; 4], Vec<u8>) {
    let h = Ipv6Header::parse(pkt).unwrap();
    assert_eq!(h.payload_len as usize + 40, pkt.len());
    assert_eq!(h.next_header, 58);
    let m = &pkt[40..];
    assert_eq!(icmpv6_checksum(&h.src, &h.dst, m), 0, "ICMPv6 checksum");
    (h, m[0], m[1], m[4..8].try_into().unwrap(), m[8..].to_vec())
}

#[test]
fn pass_drop_reject_and_no_policy() {
    let e = actions_engine();
    let now = Instant::now();
    let src = ip("10.1.0.1");
    let p = udp_total(src, ip("10.5.0.1"), 100, false);
    let (mut buf, r) = in_buf(&p);
    assert_eq!(
        e.outbound(&mut buf, r.clone(), now),
        Outbound::Clear { range: r }
    );
    assert_eq!(
        out(&e, &udp_total(src, ip("10.6.0.1"), 100, false), now).0,
        Outbound::Drop(DropReason::PolicyDrop)
    );
    assert_eq!(
        out(&e, &udp_total(src, ip("10.99.0.1"), 100, false), now).0,
        Outbound::Drop(DropReason::NoPolicy)
    );
    let v6 = udp_total(ip("fd01::1"), ip("fd05::1"), 100, false);
    assert!(matches!(out(&e, &v6, now).0, Outbound::Clear { .. }));
    // a packet trailing junk behind its IP length: the range returned is the IP packet
    let mut padded = p.clone();
    padded.extend_from_slice(&[0xee; 6]);
    let (mut buf, r) = in_buf(&padded);
    assert_eq!(
        e.outbound(&mut buf, r.clone(), now),
        Outbound::Clear {
            range: r.start..r.start + p.len()
        }
    );
    // not IP at all
    assert_eq!(
        out(&e, &[0x00, 1, 2, 3], now).0,
        Outbound::Drop(DropReason::Malformed)
    );
    assert_eq!(out(&e, &[], now).0, Outbound::Drop(DropReason::Malformed));
    // claims more than it has
    assert_eq!(
        out(&e, &p[..50], now).0,
        Outbound::Drop(DropReason::Malformed)
    );

    let rej = udp_total(src, ip("10.7.0.9"), 700, true);
    let (o, buf) = out(&e, &rej, now);
    let Outbound::ToTun { range } = o else {
        panic!("{o:?}")
    };
    let (h, t, c, rest, quote) = icmp4(&buf[range]);
    assert_eq!((t, c, rest), (3, 13, [0; 4]));
    assert_eq!(
        (IpAddr::from(h.src), IpAddr::from(h.dst)),
        (ip("10.7.0.9"), src)
    );
    assert_eq!(quote.len(), 576 - 28);
    assert_eq!(&quote[..], &rej[..576 - 28]);

    let rej6 = udp_total(ip("fd01::1"), ip("fd07::2"), 1400, false);
    let (o, buf) = out(&e, &rej6, now);
    let Outbound::ToTun { range } = o else {
        panic!("{o:?}")
    };
    let (h, t, c, _, quote) = icmp6(&buf[range]);
    assert_eq!((t, c), (1, 1));
    assert_eq!(
        (IpAddr::from(h.src), IpAddr::from(h.dst)),
        (ip("fd07::2"), ip("fd01::1"))
    );
    assert_eq!(quote.len(), 1280 - 48);
    assert_eq!(&quote[..], &rej6[..1280 - 48]);

    assert_eq!(drops(&e, DropReason::PolicyReject), 2);
    assert_eq!(drops(&e, DropReason::PolicyDrop), 1);
    assert_eq!(drops(&e, DropReason::NoPolicy), 1);
    assert_eq!(drops(&e, DropReason::Malformed), 3);
    let look = e.look(now);
    let pass = look
        .policies
        .iter()
        .find(|p| p.action == PolicyAction::Pass && p.selector.dst == net("10.5.0.0/16"))
        .unwrap();
    assert_eq!((pass.packets, pass.bytes), (2, 200));
    assert_eq!(look.drops.len(), 4);
}

#[test]
fn no_icmp_error_about_an_icmp_error_or_a_fragment() {
    let e = actions_engine();
    let now = Instant::now();
    let src = ip("10.1.0.1");
    let dst = ip("10.7.0.1");
    // echo request: answered
    let echo = ip_packet(src, dst, 1, &[8, 0, 0, 0, 0, 1, 0, 1], 1, 0, 64);
    assert!(matches!(out(&e, &echo, now).0, Outbound::ToTun { .. }));
    // destination unreachable, time exceeded: not answered
    for t in [3u8, 11, 12] {
        let err = ip_packet(src, dst, 1, &[t, 0, 0, 0, 0, 0, 0, 0], 1, 0, 64);
        assert_eq!(
            out(&e, &err, now).0,
            Outbound::Drop(DropReason::PolicyReject)
        );
    }
    // a non-first fragment
    let frag = ip_packet(src, dst, 17, &[0u8; 16], 1, 0x0010, 64);
    assert_eq!(
        out(&e, &frag, now).0,
        Outbound::Drop(DropReason::PolicyReject)
    );
    // from a multicast / broadcast source
    let mc = ip_packet(ip("224.0.0.1"), dst, 17, &udp_payload(1, 2, 4), 1, 0, 64);
    assert_eq!(
        out(&e, &mc, now).0,
        Outbound::Drop(DropReason::PolicyReject)
    );
    // ICMPv6: an echo request is answered, a destination unreachable is not
    let s6 = ip("fd01::1");
    let d6 = ip("fd07::1");
    let echo6 = ip_packet(s6, d6, 58, &[128, 0, 0, 0, 0, 1, 0, 1], 0, 0, 64);
    assert!(matches!(out(&e, &echo6, now).0, Outbound::ToTun { .. }));
    let err6 = ip_packet(s6, d6, 58, &[1, 4, 0, 0, 0, 0, 0, 0], 0, 0, 64);
    assert_eq!(
        out(&e, &err6, now).0,
        Outbound::Drop(DropReason::PolicyReject)
    );
    // no room in front of the packet for the headers: dropped, not answered
    let p = udp_total(src, dst, 100, false);
    let mut buf = p.clone();
    buf.extend_from_slice(&[0; TAILROOM]);
    assert_eq!(
        e.outbound(&mut buf, 0..p.len(), now),
        Outbound::Drop(DropReason::PolicyReject)
    );
}

#[test]
fn trap_raises_one_acquire_per_interval() {
    let e = actions_engine();
    let t0 = Instant::now();
    let p = ip_packet(
        ip("10.1.0.1"),
        ip("10.8.0.1"),
        6,
        &[
            0, 80, 1, 187, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0,
        ],
        0,
        0,
        64,
    );
    for dt in [0, 100, 999] {
        assert_eq!(
            out(&e, &p, t0 + Duration::from_millis(dt)).0,
            Outbound::Drop(DropReason::Trap)
        );
    }
    let ev = e.take_events();
    assert_eq!(
        ev,
        vec![FwdEvent::Acquire {
            conn: CONN.into(),
            flow: FlowInfo {
                src: ip("10.1.0.1"),
                dst: ip("10.8.0.1"),
                proto: 6,
                src_port: 80,
                dst_port: 443
            }
        }]
    );
    assert!(e.take_events().is_empty());
    out(&e, &p, t0 + Duration::from_millis(1000));
    out(&e, &p, t0 + Duration::from_millis(1500));
    assert_eq!(e.take_events().len(), 1);
    // a clock that goes back does not raise more
    out(&e, &p, t0);
    assert!(e.take_events().is_empty());
    assert_eq!(drops(&e, DropReason::Trap), 6);
}

#[test]
fn conn_down_with_routes_kept_traps_then_unroute_removes() {
    let setup = Setup::default();
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 100, false);
    assert!(transfer(&a, &b, &p, now).is_ok());
    assert_eq!(
        a.wanted_routes(),
        vec![
            (net("10.1.0.0/16"), RouteKind::Throw),
            (net("10.2.0.0/16"), RouteKind::Tunnel)
        ]
    );
    assert_eq!(a.remove_conn(CONN, RemoveMode::KeepRoute), (2, 1));
    let look = a.look(now);
    assert!(look.sas.is_empty());
    assert_eq!(look.policies.len(), 1);
    assert_eq!(look.policies[0].action, PolicyAction::Trap);
    assert_eq!(
        a.wanted_routes(),
        vec![
            (net("10.1.0.0/16"), RouteKind::Throw),
            (net("10.2.0.0/16"), RouteKind::Tunnel)
        ]
    );
    assert_eq!(out(&a, &p, now).0, Outbound::Drop(DropReason::Trap));
    assert!(matches!(&a.take_events()[..], [FwdEvent::Acquire { conn, .. }] if conn == CONN));
    // the conn comes back: traffic flows again
    a.install_conn(Origin::Ikerd, &conn_state(&setup, true), now)
        .unwrap();
    let b2 = engine(&setup);
    b2.install_conn(Origin::Ikerd, &conn_state(&setup, false), now)
        .unwrap();
    assert_eq!(transfer(&a, &b2, &p, now).unwrap(), p);
    // unroute: nothing left
    assert_eq!(a.remove_conn(CONN, RemoveMode::Everything), (2, 2));
    assert!(a.wanted_routes().is_empty());
    assert_eq!(out(&a, &p, now).0, Outbound::Drop(DropReason::NoPolicy));
    assert_eq!(a.remove_conn(CONN, RemoveMode::Everything), (0, 0));
}

#[test]
fn a_deleted_sa_makes_its_policy_a_trap() {
    let setup = Setup::default();
    let now = Instant::now();
    let (a, _) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let id = id_of(&setup, IpsecProto::Esp, true);
    assert_eq!(a.delete_sa(&id).unwrap(), CONN);
    assert!(a
        .delete_sa(&id)
        .unwrap_err()
        .contains("no SA esp.1000@192.0.2.2"));
    assert_eq!(
        out(&a, &udp_total(ha, hb, 64, false), now).0,
        Outbound::Drop(DropReason::Trap)
    );
    assert_eq!(a.take_events().len(), 1);
}

#[test]
fn wanted_routes_are_deduplicated_and_sorted() {
    let e = actions_engine();
    let extra = ConnState {
        conn: "c2".into(),
        sas: vec![],
        policies: vec![
            PolicySpec {
                conn: "c2".into(),
                ..policy(
                    Direction::Out,
                    net("10.1.0.0/16"),
                    net("10.6.0.0/16"),
                    PolicyAction::Trap,
                    true,
                )
            },
            PolicySpec {
                conn: "c2".into(),
                ..policy(
                    Direction::Out,
                    net("10.1.0.0/16"),
                    net("10.0.0.0/8"),
                    PolicyAction::Pass,
                    true,
                )
            },
            PolicySpec {
                conn: "c2".into(),
                ..policy(
                    Direction::Out,
                    net("10.1.0.0/16"),
                    net("10.9.0.0/16"),
                    PolicyAction::Drop,
                    false,
                )
            },
        ],
    };
    e.install_conn(Origin::Confd, &extra, Instant::now())
        .unwrap();
    assert_eq!(
        e.wanted_routes(),
        vec![
            (net("0.0.0.0/0"), RouteKind::Throw),
            (net("10.0.0.0/8"), RouteKind::Throw),
            (net("10.1.0.0/16"), RouteKind::Throw),
            (net("10.5.0.0/16"), RouteKind::Throw),
            (net("10.6.0.0/16"), RouteKind::Tunnel),
            (net("10.7.0.0/16"), RouteKind::Tunnel),
            (net("10.8.0.0/16"), RouteKind::Tunnel),
        ]
    );
}

/// Sealed size of a tunnel-mode packet with AES-CBC-128 + HMAC-SHA1-96 over IPv4:
/// 20 + 8 + 16 + roundup16(len + 2) + 12, so the largest inner packet in 1500 is 1438.
const CBC_SHA1_MTU: u32 = 1438;

#[test]
fn df_and_too_big_gets_fragmentation_needed_with_the_right_mtu() {
    let setup = Setup::default();
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let fits = udp_total(ha, hb, CBC_SHA1_MTU as usize, true);
    let w = seal(&a, &fits, now);
    assert!(w.bytes.len() + 20 <= 1500);
    assert_eq!(deliver(&b, &w, now).unwrap(), fits);

    let big = udp_total(ha, hb, CBC_SHA1_MTU as usize + 1, true);
    let (o, buf) = out(&a, &big, now);
    let Outbound::ToTun { range } = o else {
        panic!("{o:?}")
    };
    let (h, t, c, rest, quote) = icmp4(&buf[range]);
    assert_eq!((t, c), (3, 4));
    assert_eq!(u16::from_be_bytes([rest[2], rest[3]]) as u32, CBC_SHA1_MTU);
    assert_eq!((IpAddr::from(h.src), IpAddr::from(h.dst)), (hb, ha));
    assert_eq!(&quote[..], &big[..quote.len()]);
    assert_eq!(drops(&a, DropReason::TooBig), 1);
    assert_eq!(sa_info(&a, SPI_ESP_AB).unwrap().packets, 1, "not sent");

    // without DF it is sealed; the kernel fragments the outer packet
    let nodf = udp_total(ha, hb, CBC_SHA1_MTU as usize + 1, false);
    let w = seal(&a, &nodf, now);
    assert!(w.bytes.len() + 20 > 1500);
    assert_eq!(deliver(&b, &w, now).unwrap(), nodf);
}

#[test]
fn pmtu_for_other_suites_encapsulation_and_bundles() {
    // (setup, largest inner packet that fits 1500)
    let gcm = Setup {
        suite: SUITES[3],
        ..Setup::default()
    };
    let nat = Setup {
        encap: Some(UdpEncap {
            src_port: 4500,
            dst_port: 4500,
        }),
        ..Setup::default()
    };
    let bundle = Setup {
        ah: true,
        ..Setup::default()
    };
    let v6out = Setup {
        outer_v6: true,
        ..Setup::default()
    };
    let small = Setup {
        cfg_outer_mtu: 1400,
        ..Setup::default()
    };
    for (setup, mtu) in [
        (gcm, 1446),         // 20 + 8 + 8 + roundup4(L + 2) + 16
        (nat, 1438 - 16),    // 8 more for UDP: one CBC block less
        (bundle, 1438 - 32), // AH with SHA-256-128: 12 + 16 = 28, rounded to blocks
        (v6out, 1438 - 16),  // 40-byte outer header: one block less
        (small, 1438 - 96),
    ] {
        let now = Instant::now();
        let (a, b) = pair_at(&setup, now);
        let (ha, hb) = hosts(&setup);
        let fits = udp_total(ha, hb, mtu, true);
        let w = seal(&a, &fits, now);
        let outer_hdr = if setup.ah {
            0
        } else if setup.outer_v6 {
            40
        } else {
            20
        };
        let udp = if setup.encap.is_some() { 8 } else { 0 };
        assert!(
            w.bytes.len() + outer_hdr + udp <= setup.cfg_outer_mtu as usize,
            "{setup:?}"
        );
        assert_eq!(deliver(&b, &w, now).unwrap(), fits);
        let (o, buf) = out(&a, &udp_total(ha, hb, mtu + 1, true), now);
        let Outbound::ToTun { range } = o else {
            panic!("{setup:?}: {o:?}")
        };
        let (_, t, c, rest, _) = icmp4(&buf[range]);
        assert_eq!(
            (t, c, u16::from_be_bytes([rest[2], rest[3]]) as usize),
            (3, 4, mtu),
            "{setup:?}"
        );
    }
}

#[test]
fn ah_bundles_answer_too_big_without_df_too() {
    let setup = Setup {
        ah: true,
        ..Setup::default()
    };
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let (o, buf) = out(&a, &udp_total(ha, hb, 1407, false), now);
    let Outbound::ToTun { range } = o else {
        panic!("{o:?}")
    };
    let (_, t, c, rest, _) = icmp4(&buf[range]);
    assert_eq!((t, c, u16::from_be_bytes([rest[2], rest[3]])), (3, 4, 1406));
    let fits = udp_total(ha, hb, 1406, false);
    let w = seal(&a, &fits, now);
    assert!(w.bytes.len() <= 1500);
    assert_eq!(deliver(&b, &w, now).unwrap(), fits);
}

#[test]
fn ipv6_packet_too_big() {
    let setup = Setup {
        inner_v6: true,
        ..Setup::default()
    };
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let big = udp_total(ha, hb, CBC_SHA1_MTU as usize + 1, false);
    let (o, buf) = out(&a, &big, now);
    let Outbound::ToTun { range } = o else {
        panic!("{o:?}")
    };
    let (h, t, c, rest, quote) = icmp6(&buf[range]);
    assert_eq!((t, c, u32::from_be_bytes(rest)), (2, 0, CBC_SHA1_MTU));
    assert_eq!((IpAddr::from(h.src), IpAddr::from(h.dst)), (hb, ha));
    assert_eq!(quote.len(), 1280 - 48);
    let fits = udp_total(ha, hb, CBC_SHA1_MTU as usize, false);
    assert_eq!(transfer(&a, &b, &fits, now).unwrap(), fits);

    // IPv6 packets up to the minimum MTU always go, even over a smaller path: the outer packet
    // is fragmented instead.
    let setup = Setup {
        inner_v6: true,
        cfg_outer_mtu: 1280,
        ..Setup::default()
    };
    let (a, b) = pair_at(&setup, now);
    let p = udp_total(ha, hb, 1280, false);
    assert_eq!(transfer(&a, &b, &p, now).unwrap(), p);
    let (o, buf) = out(&a, &udp_total(ha, hb, 1281, false), now);
    let Outbound::ToTun { range } = o else {
        panic!("{o:?}")
    };
    let (_, t, _, rest, _) = icmp6(&buf[range]);
    assert_eq!(
        (t, u32::from_be_bytes(rest)),
        (2, 1280),
        "never below the IPv6 minimum MTU"
    );
}

#[test]
fn sealed_packets_larger_than_ip_allows() {
    let setup = Setup::default();
    let now = Instant::now();
    let (a, _) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 65535 - 10, false);
    assert_eq!(out(&a, &p, now).0, Outbound::Drop(DropReason::TooBig));
    let mut buf = vec![0u8; HEADROOM + MAX_PACKET + 1 + TAILROOM];
    assert_eq!(
        a.outbound(&mut buf, HEADROOM..HEADROOM + MAX_PACKET + 1, now),
        Outbound::Drop(DropReason::TooBig)
    );
}

#[test]
fn no_headroom_is_a_drop_not_a_panic() {
    let setup = Setup {
        ah: true,
        ..Setup::default()
    };
    let now = Instant::now();
    let (a, _) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 100, false);
    for room in [0, 10, 30, 60] {
        let mut buf = vec![0u8; room + p.len() + TAILROOM];
        buf[room..room + p.len()].copy_from_slice(&p);
        assert_eq!(
            a.outbound(&mut buf, room..room + p.len(), now),
            Outbound::Drop(DropReason::NoRoom),
            "{room}"
        );
        assert_eq!(
            a.tx_seqs().iter().map(|s| s.1).sum::<u64>(),
            0,
            "no sequence number spent"
        );
        let mut tight = vec![0u8; HEADROOM + p.len() + 3];
        tight[HEADROOM..HEADROOM + p.len()].copy_from_slice(&p);
        assert_eq!(
            a.outbound(&mut tight, HEADROOM..HEADROOM + p.len(), now),
            Outbound::Drop(DropReason::NoRoom)
        );
    }
}

#[test]
fn an_extruded_subnet_throws_its_own_lan_back_to_the_main_table() {
    // west: 10.1.0.0/24 -> everything (rightsubnet=0.0.0.0/0)
    let e = engine(&Setup::default());
    let st = ConnState {
        conn: "ext".into(),
        sas: vec![],
        policies: vec![PolicySpec {
            conn: "ext".into(),
            ..policy(
                Direction::Out,
                net("10.1.0.0/24"),
                net("0.0.0.0/0"),
                PolicyAction::Trap,
                true,
            )
        }],
    };
    e.install_conn(Origin::Ikerd, &st, Instant::now()).unwrap();
    assert_eq!(
        e.wanted_routes(),
        vec![
            (net("0.0.0.0/0"), RouteKind::Tunnel),
            (net("10.1.0.0/24"), RouteKind::Throw),
        ]
    );
    // another conn tunnelling exactly that prefix wins over the throw
    let other = ConnState {
        conn: "o".into(),
        sas: vec![],
        policies: vec![PolicySpec {
            conn: "o".into(),
            ..policy(
                Direction::Out,
                net("10.9.0.0/24"),
                net("10.1.0.0/24"),
                PolicyAction::Trap,
                true,
            )
        }],
    };
    e.install_conn(Origin::Ikerd, &other, Instant::now())
        .unwrap();
    assert_eq!(
        e.wanted_routes(),
        vec![
            (net("0.0.0.0/0"), RouteKind::Tunnel),
            (net("10.1.0.0/24"), RouteKind::Tunnel),
            (net("10.9.0.0/24"), RouteKind::Throw),
        ]
    );
}
