//! What A seals, B opens byte-identical: every suite, tunnel v4/v6 (inner and outer), AH+ESP,
//! AH alone, transport mode, ESP in UDP, ESN across 2^32.
use super::*;

const SIZES: [usize; 9] = [28, 29, 43, 44, 45, 100, 576, 1000, 1400];

fn both_ways(setup: &Setup, a: &Engine, b: &Engine, now: Instant) -> usize {
    let (ha, hb) = hosts(setup);
    let mut n = 0;
    for total in SIZES {
        // IPv6 packets above the minimum MTU are never fragmented: keep them within the path
        let total = if ha.is_ipv6() {
            (total + 20).min(1300)
        } else {
            total
        };
        // AH bundles are never fragmented by the kernel either
        let total = if setup.ah { total.min(1300) } else { total };
        // DF on what fits the outer MTU, not on the largest (the kernel fragments those)
        let p = udp_total(ha, hb, total, total <= 1300);
        assert_eq!(
            transfer(a, b, &p, now).unwrap(),
            p,
            "{setup:?} A->B {total}"
        );
        let q = udp_total(hb, ha, total, false);
        assert_eq!(
            transfer(b, a, &q, now).unwrap(),
            q,
            "{setup:?} B->A {total}"
        );
        n += 1;
    }
    n
}

#[test]
fn tunnel_mode_every_suite_v4_and_v6() {
    for suite in SUITES {
        for (inner_v6, outer_v6) in [(false, false), (true, false), (false, true), (true, true)] {
            let setup = Setup {
                suite,
                inner_v6,
                outer_v6,
                ..Setup::default()
            };
            let now = Instant::now();
            let (a, b) = pair_at(&setup, now);
            let n = both_ways(&setup, &a, &b, now) as u64;
            let out = sa_info(&a, SPI_ESP_AB).unwrap();
            assert_eq!(
                (out.packets, out.seq, out.errors),
                (n, n, 0),
                "{}",
                suite.name
            );
            let inn = sa_info(&b, SPI_ESP_AB).unwrap();
            assert_eq!(
                (inn.packets, inn.seq, inn.errors),
                (n, n, 0),
                "{}",
                suite.name
            );
            let look = a.look(now);
            assert!(
                look.policies.iter().all(|p| p.packets == n),
                "{:?}",
                look.policies
            );
            assert!(a.drop_counts().is_empty() && b.drop_counts().is_empty());
        }
    }
}

#[test]
fn esp_wire_format_is_what_the_raw_socket_sends() {
    let setup = Setup::default();
    let (a, _) = pair(&setup);
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 100, false);
    let (o, buf) = out(&a, &p, Instant::now());
    let Outbound::Esp {
        src,
        dst,
        encap,
        range,
    } = o
    else {
        panic!("{o:?}")
    };
    assert_eq!((src, dst, encap), (ip("192.0.2.1"), ip("192.0.2.2"), None));
    assert_eq!(crate::esp::peek_spi(&buf[range.clone()]), Some(SPI_ESP_AB));
    assert_eq!(crate::esp::peek_seq(&buf[range.clone()]), Some(1));
    // header 8 + IV 16 + roundup16(100 + 2) + ICV 12
    assert_eq!(range.len(), 8 + 16 + 112 + 12);
    assert!(range.start >= HEADROOM - 24 && range.end <= HEADROOM + 100 + TAILROOM);
}

#[test]
fn ah_esp_bundle_tunnel_v4_and_v6() {
    for (inner_v6, outer_v6) in [(false, false), (true, true), (false, true)] {
        let setup = Setup {
            ah: true,
            inner_v6,
            outer_v6,
            ..Setup::default()
        };
        let now = Instant::now();
        let (a, b) = pair_at(&setup, now);
        let (ha, hb) = hosts(&setup);
        let p = udp_total(ha, hb, 300, false);
        let w = seal(&a, &p, now);
        assert_eq!(w.rx.proto, 51);
        // outer header, then AH with next header 50
        let hl = if outer_v6 { 40 } else { 20 };
        assert_eq!(w.bytes[hl], 50, "AH next header");
        assert_eq!(
            u32::from_be_bytes(w.bytes[hl + 4..hl + 8].try_into().unwrap()),
            SPI_AH_AB
        );
        assert_eq!((w.rx.src, w.rx.dst), outer(&setup));
        assert_eq!(deliver(&b, &w, now).unwrap(), p);
        both_ways(&setup, &a, &b, now);
        assert_eq!(
            sa_info(&b, SPI_AH_AB).unwrap().packets,
            sa_info(&b, SPI_ESP_AB).unwrap().packets
        );
    }
}

#[test]
fn ah_alone_tunnel() {
    let setup = Setup {
        esp: false,
        ah: true,
        ..Setup::default()
    };
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 200, true);
    let w = seal(&a, &p, now);
    assert_eq!(w.bytes[20], 4, "AH next header: IPv4");
    // the inner packet travels in the clear behind AH
    assert!(w.bytes.ends_with(&p));
    assert_eq!(deliver(&b, &w, now).unwrap(), p);
    both_ways(&setup, &a, &b, now);
}

#[test]
fn transport_mode_esp_and_ah_esp() {
    for (v6, ah) in [(false, false), (true, false), (false, true), (true, true)] {
        let setup = Setup {
            mode: SaMode::Transport,
            outer_v6: v6,
            inner_v6: v6,
            ah,
            ..Setup::default()
        };
        let now = Instant::now();
        let (a, b) = pair_at(&setup, now);
        let (ha, hb) = hosts(&setup);
        for len in [0, 1, 100, 1000] {
            let p = udp_plain(ha, hb, len);
            let (o, buf) = out(&a, &p, now);
            match (&o, ah) {
                (Outbound::Esp { src, dst, .. }, false) => assert_eq!((*src, *dst), (ha, hb)),
                (Outbound::Ip { .. }, true) => {}
                _ => panic!("{o:?}"),
            }
            let w = to_wire(&o, &buf).unwrap();
            assert_eq!(
                deliver(&b, &w, now).unwrap(),
                p,
                "v6={v6} ah={ah} len={len}"
            );
            let q = udp_plain(hb, ha, len);
            assert_eq!(transfer(&b, &a, &q, now).unwrap(), q);
        }
    }
}

#[test]
fn transport_mode_keeps_the_upper_layer_and_addresses() {
    // A TTL/id the far side cannot know: the rebuilt header differs only there.
    let setup = Setup {
        mode: SaMode::Transport,
        ..Setup::default()
    };
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let p = ip_packet(ha, hb, 6, &[9u8; 40], 0x4242, 0x4000, 17);
    let got = transfer(&a, &b, &p, now).unwrap();
    assert_eq!(got.len(), p.len());
    assert_eq!(&got[20..], &p[20..]);
    assert_eq!(&got[12..20], &p[12..20]);
    assert_eq!(got[9], 6);
    assert!(iph::ipv4_checksum_ok(&got));
}

#[test]
fn esp_in_udp() {
    let encap = Some(UdpEncap {
        src_port: 4500,
        dst_port: 4500,
    });
    for suite in [AES_SHA1, SUITES[3]] {
        let setup = Setup {
            encap,
            suite,
            ..Setup::default()
        };
        let now = Instant::now();
        let (a, b) = pair_at(&setup, now);
        let (ha, hb) = hosts(&setup);
        let p = udp_total(ha, hb, 500, true);
        let (o, buf) = out(&a, &p, now);
        let Outbound::Esp { encap: e, .. } = &o else {
            panic!("{o:?}")
        };
        assert_eq!(*e, encap);
        let w = to_wire(&o, &buf).unwrap();
        assert_eq!((w.rx.proto, w.rx.udp), (17, Some((4500, 4500))));
        assert_eq!(deliver(&b, &w, now).unwrap(), p);
        both_ways(&setup, &a, &b, now);
        // the same SA's packets as plain ESP are refused
        let mut plain = seal(&a, &p, now);
        plain.rx.proto = 50;
        plain.rx.udp = None;
        assert_eq!(deliver(&b, &plain, now), Err(DropReason::EncapMismatch));
    }
    // and ESP in UDP for an SA without encapsulation
    let setup = Setup::default();
    let (a, b) = pair(&setup);
    let (ha, hb) = hosts(&setup);
    let mut w = seal(&a, &udp_total(ha, hb, 100, false), Instant::now());
    w.rx.proto = 17;
    w.rx.udp = Some((4500, 4500));
    assert_eq!(
        deliver(&b, &w, Instant::now()),
        Err(DropReason::EncapMismatch)
    );
    assert_eq!(drops(&b, DropReason::EncapMismatch), 1);
}

#[test]
fn ipv4_mapped_addresses_from_a_dual_stack_socket() {
    let setup = Setup {
        encap: Some(UdpEncap {
            src_port: 4500,
            dst_port: 4500,
        }),
        ..Setup::default()
    };
    let (a, b) = pair(&setup);
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 100, false);
    let mut w = seal(&a, &p, Instant::now());
    w.rx.dst = ip("::ffff:192.0.2.2");
    w.rx.src = ip("::ffff:192.0.2.1");
    assert_eq!(deliver(&b, &w, Instant::now()).unwrap(), p);
}

#[test]
fn esn_across_the_32_bit_boundary_after_resume() {
    for suite in [AES_SHA1, SUITES[3]] {
        let setup = Setup {
            esn: true,
            suite,
            ..Setup::default()
        };
        let now = Instant::now();
        let (a, b) = pair_at(&setup, now);
        let (ha, hb) = hosts(&setup);
        let id = id_of(&setup, IpsecProto::Esp, true);
        // B must already be near the boundary too: one packet just below it first.
        a.resume_tx_seq(&id, u64::from(u32::MAX) - 3);
        for i in 0..8u64 {
            let p = udp_total(ha, hb, 60 + i as usize, false);
            assert_eq!(transfer(&a, &b, &p, now).unwrap(), p, "packet {i}");
        }
        assert_eq!(a.tx_seqs(), vec![(id, u64::from(u32::MAX) + 5)]);
        assert_eq!(
            sa_info(&b, SPI_ESP_AB).unwrap().seq,
            u64::from(u32::MAX) + 5
        );
    }
}

#[test]
fn manual_keying_with_add_sa_and_add_policy() {
    let setup = Setup::default();
    let now = Instant::now();
    let a = engine(&setup);
    let (_, b) = pair_at(&setup, now);
    let st = conn_state(&setup, true);
    for s in &st.sas {
        assert_eq!(a.add_sa(Origin::Confd, s, now).unwrap(), s.id());
    }
    let ids: Vec<u64> = st
        .policies
        .iter()
        .map(|p| a.add_policy(Origin::Confd, p).unwrap())
        .collect();
    assert!(ids[1] > ids[0]);
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 100, true);
    assert_eq!(transfer(&a, &b, &p, now).unwrap(), p);
    let q = udp_total(hb, ha, 100, true);
    assert_eq!(transfer(&b, &a, &q, now).unwrap(), q);
    assert!(a
        .add_sa(Origin::Confd, &st.sas[0], now)
        .unwrap_err()
        .contains("exists already"));
    assert!(a
        .add_policy(Origin::Confd, &st.policies[0])
        .unwrap_err()
        .contains("same selector"));
}

#[test]
fn resume_and_checkpoint_sequence_numbers() {
    let setup = Setup::default();
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let id = id_of(&setup, IpsecProto::Esp, true);
    for _ in 0..3 {
        seal(&a, &udp_total(ha, hb, 80, false), now);
    }
    assert_eq!(a.tx_seqs(), vec![(id, 3)]);
    a.resume_tx_seq(&id, 1000);
    a.resume_tx_seq(&id, 10); // never backwards
    let w = seal(&a, &udp_total(ha, hb, 80, false), now);
    assert_eq!(crate::esp::peek_seq(&w.bytes), Some(1001));
    assert!(deliver(&b, &w, now).is_ok());
    a.resume_tx_seq(&SaId { spi: 0x9999, ..id }, 5); // unknown: ignored
}

#[test]
fn engine_is_send_and_sync_and_threads_share_it() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Engine>();
    let setup = Setup::default();
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    // wire from B to A, prepared in advance
    let wires: Vec<Wire> = (0..200)
        .map(|i| seal(&b, &udp_total(hb, ha, 64 + i % 50, false), now))
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..200 {
                let p = udp_total(ha, hb, 64 + i % 50, false);
                assert!(matches!(out(&a, &p, now).0, Outbound::Esp { .. }));
            }
        });
        s.spawn(|| {
            for w in &wires {
                assert!(deliver(&a, w, now).is_ok());
            }
        });
        s.spawn(|| {
            for _ in 0..50 {
                let l = a.look(now);
                assert_eq!(l.sas.len(), 2);
                let _ = a.wanted_routes();
                a.tick(now);
            }
        });
    });
    assert_eq!(sa_info(&a, SPI_ESP_AB).unwrap().packets, 200);
    assert_eq!(sa_info(&a, SPI_ESP_BA).unwrap().packets, 200);
}
