//! What must not get through: replays, truncations, bit flips, wrong SPI or destination, inner
//! addresses outside the SA's policy, AH stripped from an AH+ESP bundle, dummy and malformed
//! inner packets. Each failure leaves the SA usable and counts.
use super::*;
use crate::sa_request;

fn sample(setup: &Setup) -> (Engine, Engine, Vec<u8>, Wire, Instant) {
    let now = Instant::now();
    let (a, b) = pair_at(setup, now);
    let (ha, hb) = hosts(setup);
    let p = match setup.mode {
        SaMode::Tunnel => udp_total(ha, hb, 120, false),
        // transport mode rebuilds the header: TTL 64, id 0
        SaMode::Transport => udp_plain(ha, hb, 92),
    };
    let w = seal(&a, &p, now);
    (a, b, p, w, now)
}

#[test]
fn replay_is_refused_and_counted() {
    for ah in [false, true] {
        let setup = Setup {
            ah,
            ..Setup::default()
        };
        let (_, b, p, w, now) = sample(&setup);
        assert_eq!(deliver(&b, &w, now).unwrap(), p);
        assert_eq!(deliver(&b, &w, now), Err(DropReason::Replay));
        let spi = if ah { SPI_AH_AB } else { SPI_ESP_AB };
        let info = sa_info(&b, spi).unwrap();
        assert_eq!((info.packets, info.errors), (1, 1));
        assert_eq!(drops(&b, DropReason::Replay), 1);
    }
}

#[test]
fn replay_window_zero_turns_the_check_off() {
    let setup = Setup {
        replay_window: 0,
        ..Setup::default()
    };
    let (_, b, p, w, now) = sample(&setup);
    for _ in 0..3 {
        assert_eq!(deliver(&b, &w, now).unwrap(), p);
    }
}

#[test]
fn old_packets_outside_a_small_window() {
    let setup = Setup {
        replay_window: 32,
        ..Setup::default()
    };
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let wires: Vec<Wire> = (0..40)
        .map(|_| seal(&a, &udp_total(ha, hb, 50, false), now))
        .collect();
    assert!(deliver(&b, &wires[39], now).is_ok()); // seq 40
    assert_eq!(deliver(&b, &wires[7], now), Err(DropReason::Replay)); // seq 8: 32 behind
    assert!(deliver(&b, &wires[8], now).is_ok()); // seq 9: 31 behind
}

#[test]
fn truncation_at_every_cut_point() {
    for setup in [
        Setup::default(),
        Setup {
            suite: SUITES[3],
            ..Setup::default()
        },
        Setup {
            ah: true,
            ..Setup::default()
        },
        Setup {
            mode: SaMode::Transport,
            ..Setup::default()
        },
    ] {
        let (_, b, p, w, now) = sample(&setup);
        for cut in 0..w.bytes.len() {
            let short = Wire {
                rx: w.rx,
                bytes: w.bytes[..cut].to_vec(),
            };
            let r = deliver(&b, &short, now);
            assert!(r.is_err(), "{setup:?} cut {cut} got through");
        }
        // nothing of that touched the SA's window
        assert_eq!(deliver(&b, &w, now).unwrap(), p);
    }
}

#[test]
fn bit_flips_anywhere_are_refused() {
    for setup in [
        Setup::default(),
        Setup {
            suite: SUITES[0],
            ..Setup::default()
        },
        Setup {
            suite: SUITES[3],
            ..Setup::default()
        },
        Setup {
            suite: SUITES[4],
            ..Setup::default()
        },
        Setup {
            ah: true,
            ..Setup::default()
        },
        Setup {
            esp: false,
            ah: true,
            ..Setup::default()
        },
    ] {
        let (_, b, p, w, now) = sample(&setup);
        // AH: the mutable fields of the outer IPv4 header (TOS, flags/offset, TTL, checksum) are
        // outside the ICV by design (RFC 4302 §3.3.3.1): checked once below, not here.
        let mutable: &[usize] = if setup.ah { &[1, 6, 7, 8, 10, 11] } else { &[] };
        for i in (0..w.bytes.len()).filter(|i| !mutable.contains(i)) {
            let mut bad = w.clone();
            bad.bytes[i] ^= 1 << (i % 8);
            assert!(deliver(&b, &bad, now).is_err(), "{setup:?} byte {i}");
        }
        let mut ttl = w.clone();
        if setup.ah {
            ttl.bytes[8] ^= 0x10;
        }
        assert_eq!(deliver(&b, &ttl, now).unwrap(), p, "{setup:?}");
    }
}

#[test]
fn bit_flips_count_as_sa_errors() {
    let setup = Setup::default();
    let (_, b, p, w, now) = sample(&setup);
    let mut bad = w.clone();
    let n = bad.bytes.len();
    bad.bytes[n - 1] ^= 0x80;
    assert_eq!(deliver(&b, &bad, now), Err(DropReason::BadIcv));
    bad.bytes[n - 1] ^= 0x80;
    bad.bytes[30] ^= 4;
    assert_eq!(deliver(&b, &bad, now), Err(DropReason::BadIcv));
    let info = sa_info(&b, SPI_ESP_AB).unwrap();
    assert_eq!((info.errors, info.packets, info.seq), (2, 0, 0));
    assert_eq!(drops(&b, DropReason::BadIcv), 2);
    assert_eq!(deliver(&b, &w, now).unwrap(), p);
}

#[test]
fn wrong_spi_destination_or_direction() {
    let setup = Setup::default();
    let (_, b, p, w, now) = sample(&setup);
    let mut bad = w.clone();
    bad.bytes[..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    assert_eq!(deliver(&b, &bad, now), Err(DropReason::NoSa));
    bad.bytes[..4].copy_from_slice(&7u32.to_be_bytes());
    assert_eq!(deliver(&b, &bad, now), Err(DropReason::NoSa));
    let mut elsewhere = w.clone();
    elsewhere.rx.dst = ip("192.0.2.99");
    assert_eq!(deliver(&b, &elsewhere, now), Err(DropReason::NoSa));
    // B's own outbound SA (B->A, dst A) must never open anything
    let mut own = w.clone();
    own.bytes[..4].copy_from_slice(&SPI_ESP_BA.to_be_bytes());
    own.rx.dst = ip("192.0.2.1");
    assert_eq!(deliver(&b, &own, now), Err(DropReason::NoSa));
    assert_eq!(drops(&b, DropReason::NoSa), 4);
    assert_eq!(deliver(&b, &w, now).unwrap(), p);
}

#[test]
fn bad_rx_fields_and_ranges() {
    let setup = Setup::default();
    let (_, b, _, w, now) = sample(&setup);
    let mut tcp = w.clone();
    tcp.rx.proto = 6;
    assert_eq!(deliver(&b, &tcp, now), Err(DropReason::Malformed));
    let mut udp = w.clone();
    udp.rx.proto = 17;
    assert_eq!(deliver(&b, &udp, now), Err(DropReason::Malformed));
    let (mut buf, r) = in_buf(&w.bytes);
    let end = buf.len() + 1;
    assert_eq!(
        b.inbound(w.rx, &mut buf, r.start..end, now),
        Inbound::Drop(DropReason::Malformed)
    );
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 10..5;
    assert_eq!(
        b.inbound(w.rx, &mut buf, backwards.clone(), now),
        Inbound::Drop(DropReason::Malformed)
    );
    let mut out_buf = vec![0u8; 10];
    assert_eq!(
        b.outbound(&mut out_buf, backwards, now),
        Outbound::Drop(DropReason::Malformed)
    );
}

#[test]
fn inner_addresses_outside_the_selectors() {
    let setup = Setup::default();
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    // A (misconfigured or malicious) also sends 10.9.0.0/16 through the same SA
    let mut extra = policy(
        Direction::Out,
        net("10.9.0.0/16"),
        net("10.2.0.0/16"),
        PolicyAction::Protect {
            sas: vec![id_of(&setup, IpsecProto::Esp, true)],
        },
        false,
    );
    extra.conn = "other".into();
    a.add_policy(Origin::Confd, &extra).unwrap();
    let p = udp_total(ip("10.9.0.1"), ip("10.2.0.20"), 100, false);
    assert_eq!(transfer(&a, &b, &p, now), Err(DropReason::PolicyMismatch));
    // and to an address behind B outside its subnet
    let mut extra2 = policy(
        Direction::Out,
        net("10.1.0.0/16"),
        net("10.3.0.0/16"),
        PolicyAction::Protect {
            sas: vec![id_of(&setup, IpsecProto::Esp, true)],
        },
        false,
    );
    extra2.conn = "other".into();
    a.add_policy(Origin::Confd, &extra2).unwrap();
    let q = udp_total(ip("10.1.0.1"), ip("10.3.0.20"), 100, false);
    assert_eq!(transfer(&a, &b, &q, now), Err(DropReason::PolicyMismatch));
    assert_eq!(drops(&b, DropReason::PolicyMismatch), 2);
    // the SA itself is fine
    let ok = udp_total(ip("10.1.0.1"), ip("10.2.0.20"), 100, false);
    assert_eq!(transfer(&a, &b, &ok, now).unwrap(), ok);
}

#[test]
fn a_packet_through_an_sa_of_another_policy() {
    // Two conns on B; a packet for conn 2's selectors arriving over conn 1's SA is refused.
    let setup = Setup::default();
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let mut st2 = conn_state(&setup, false);
    st2.conn = "c2".into();
    for s in &mut st2.sas {
        s.conn = "c2".into();
        s.spi += 0x100;
    }
    for p in &mut st2.policies {
        p.conn = "c2".into();
        if let PolicyAction::Protect { sas } = &mut p.action {
            for id in sas {
                id.spi += 0x100;
            }
        }
        // conn 2 joins 10.11/16 (A's side) and 10.12/16 (B's side)
        let f = |n: Net| {
            if n.addr == ip("10.1.0.0") {
                net("10.11.0.0/16")
            } else {
                net("10.12.0.0/16")
            }
        };
        p.selector.src = f(p.selector.src);
        p.selector.dst = f(p.selector.dst);
    }
    b.install_conn(Origin::Ikerd, &st2, now).unwrap();
    let mut leak = policy(
        Direction::Out,
        net("10.11.0.0/16"),
        net("10.12.0.0/16"),
        PolicyAction::Protect {
            sas: vec![id_of(&setup, IpsecProto::Esp, true)],
        },
        false,
    );
    leak.conn = "x".into();
    a.add_policy(Origin::Confd, &leak).unwrap();
    let p = udp_total(ip("10.11.0.1"), ip("10.12.0.1"), 64, false);
    assert_eq!(transfer(&a, &b, &p, now), Err(DropReason::PolicyMismatch));
}

#[test]
fn ah_stripped_from_an_ah_esp_bundle() {
    for v6 in [false, true] {
        let setup = Setup {
            ah: true,
            outer_v6: v6,
            inner_v6: v6,
            ..Setup::default()
        };
        let (_, b, p, w, now) = sample(&setup);
        let hl = if v6 { 40 } else { 20 };
        let ah_len = (usize::from(w.bytes[hl + 1]) + 2) * 4;
        let esp_only = Wire {
            rx: Rx { proto: 50, ..w.rx },
            bytes: w.bytes[hl + ah_len..].to_vec(),
        };
        assert_eq!(deliver(&b, &esp_only, now), Err(DropReason::PolicyMismatch));
        assert_eq!(drops(&b, DropReason::PolicyMismatch), 1);
        let _ = p;
    }
}

#[test]
fn esp_without_ah_where_only_esp_is_expected_passes_but_not_the_reverse() {
    // An ESP-only policy refuses a packet that came through AH+ESP SAs it does not list.
    let setup = Setup {
        ah: true,
        ..Setup::default()
    };
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let mut st = conn_state(&setup, false);
    // B's inbound policy lists only the ESP SA
    if let PolicyAction::Protect { sas } = &mut st.policies[1].action {
        sas.truncate(1);
    }
    b.install_conn(Origin::Ikerd, &st, now).unwrap();
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 100, false);
    assert_eq!(transfer(&a, &b, &p, now), Err(DropReason::PolicyMismatch));
}

#[test]
fn dummy_and_malformed_inner_packets() {
    let setup = Setup::default();
    let now = Instant::now();
    let (_, b) = pair_at(&setup, now);
    // A stand-in for A's outbound SA, with the same keys.
    let mut tx = sa_request::build_esp(&sa_spec(&setup, IpsecProto::Esp, true, true)).unwrap();
    let send = |tx: &mut crate::esp::EspSa, payload: &[u8], nh: u8| -> Wire {
        let (mut buf, r) = in_buf(payload);
        let e = tx.seal(&mut buf, r, nh).unwrap();
        Wire {
            rx: Rx {
                src: ip("192.0.2.1"),
                dst: ip("192.0.2.2"),
                proto: 50,
                udp: None,
            },
            bytes: buf[e].to_vec(),
        }
    };
    assert_eq!(
        deliver(&b, &send(&mut tx, &[0u8; 20], 59), now),
        Err(DropReason::Dummy)
    );
    // garbage claiming to be IPv4
    assert_eq!(
        deliver(&b, &send(&mut tx, &[0x45, 0, 0, 10, 1, 2, 3], 4), now),
        Err(DropReason::BadInner)
    );
    // an IPv6 packet with next header 4
    let v6 = udp_total(ip("fd01::1"), ip("fd02::1"), 80, false);
    assert_eq!(
        deliver(&b, &send(&mut tx, &v6, 4), now),
        Err(DropReason::BadInner)
    );
    // a valid IPv4 packet with a broken header checksum
    let mut p = udp_total(ip("10.1.0.1"), ip("10.2.0.1"), 80, false);
    p[10] ^= 0xff;
    assert_eq!(
        deliver(&b, &send(&mut tx, &p, 4), now),
        Err(DropReason::BadInner)
    );
    // a UDP header cut short
    let short = ip_packet(ip("10.1.0.1"), ip("10.2.0.1"), 17, &[1, 2], 0, 0, 64);
    assert_eq!(
        deliver(&b, &send(&mut tx, &short, 4), now),
        Err(DropReason::BadInner)
    );
    // a well-formed one with next header 6 in tunnel mode
    let ok = udp_total(ip("10.1.0.1"), ip("10.2.0.1"), 80, false);
    assert_eq!(
        deliver(&b, &send(&mut tx, &ok, 6), now),
        Err(DropReason::BadInner)
    );
    assert_eq!(deliver(&b, &send(&mut tx, &ok, 4), now).unwrap(), ok);
}
