//! Soft and hard lifetimes by packets, bytes and time.
use super::*;
use ipc::fwd::FwdEvent;
use std::time::Duration;

fn expires(ev: &[FwdEvent]) -> Vec<(u32, bool)> {
    let mut v: Vec<(u32, bool)> = ev
        .iter()
        .filter_map(|e| match e {
            FwdEvent::Expire { id, hard, conn } => {
                assert_eq!(conn, CONN);
                Some((id.spi, *hard))
            }
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn by_packets_soft_once_then_hard_removes() {
    let lifetime = SaLifetime {
        soft_packets: 2,
        hard_packets: 4,
        ..Default::default()
    };
    let setup = Setup {
        lifetime,
        ..Setup::default()
    };
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 100, false);
    assert!(transfer(&a, &b, &p, now).is_ok());
    assert!(a.take_events().is_empty() && b.take_events().is_empty());
    assert_eq!(sa_info(&a, SPI_ESP_AB).unwrap().state, "mature");
    assert!(transfer(&a, &b, &p, now).is_ok());
    assert_eq!(expires(&a.take_events()), vec![(SPI_ESP_AB, false)]);
    assert_eq!(expires(&b.take_events()), vec![(SPI_ESP_AB, false)]);
    assert_eq!(sa_info(&a, SPI_ESP_AB).unwrap().state, "soft-expired");
    assert!(transfer(&a, &b, &p, now).is_ok());
    assert!(a.take_events().is_empty(), "soft only once");
    // the 4th packet is the last one
    assert_eq!(transfer(&a, &b, &p, now).unwrap(), p);
    assert_eq!(expires(&a.take_events()), vec![(SPI_ESP_AB, true)]);
    assert_eq!(expires(&b.take_events()), vec![(SPI_ESP_AB, true)]);
    assert!(sa_info(&a, SPI_ESP_AB).is_none(), "removed");
    assert!(sa_info(&b, SPI_ESP_AB).is_none(), "removed");
    // the policy now traps
    assert_eq!(out(&a, &p, now).0, Outbound::Drop(DropReason::Trap));
    assert!(matches!(&a.take_events()[..], [FwdEvent::Acquire { .. }]));
    // the other direction is untouched
    assert!(sa_info(&a, SPI_ESP_BA).is_some());
}

#[test]
fn by_bytes() {
    let lifetime = SaLifetime {
        soft_bytes: 1000,
        hard_bytes: 3000,
        ..Default::default()
    };
    let setup = Setup {
        lifetime,
        ..Setup::default()
    };
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 600, false);
    let mut seen = vec![];
    for i in 1..=5 {
        assert!(transfer(&a, &b, &p, now).is_ok(), "packet {i}");
        for e in expires(&a.take_events()) {
            seen.push((i, e.1));
        }
    }
    assert_eq!(seen, vec![(2, false), (5, true)]);
    assert!(sa_info(&a, SPI_ESP_AB).is_none());
    assert_eq!(out(&a, &p, now).0, Outbound::Drop(DropReason::Trap));
}

#[test]
fn inbound_hard_limit_refuses_afterwards() {
    let setup = Setup::default();
    let now = Instant::now();
    let (a, _) = pair_at(&setup, now);
    let b = engine(&setup);
    let mut st = conn_state(&setup, false);
    for s in &mut st.sas {
        s.lifetime.hard_packets = 1;
    }
    b.install_conn(Origin::Ikerd, &st, now).unwrap();
    let (ha, hb) = hosts(&setup);
    let w1 = seal(&a, &udp_total(ha, hb, 80, false), now);
    let w2 = seal(&a, &udp_total(ha, hb, 80, false), now);
    assert!(deliver(&b, &w1, now).is_ok());
    assert_eq!(deliver(&b, &w2, now), Err(DropReason::NoSa));
    assert_eq!(expires(&b.take_events()), vec![(SPI_ESP_AB, true)]);
}

#[test]
fn by_time_with_tick() {
    let lifetime = SaLifetime {
        soft_secs: 10,
        hard_secs: 20,
        ..Default::default()
    };
    let setup = Setup {
        lifetime,
        ..Setup::default()
    };
    let t0 = Instant::now();
    let (a, b) = pair_at(&setup, t0);
    let (ha, hb) = hosts(&setup);
    let p = udp_total(ha, hb, 100, false);
    let at = |s: u64| t0 + Duration::from_secs(s);
    a.tick(at(9));
    assert!(a.take_events().is_empty());
    a.tick(at(10));
    assert_eq!(
        expires(&a.take_events()),
        vec![(SPI_ESP_AB, false), (SPI_ESP_BA, false)]
    );
    a.tick(at(11));
    assert!(a.take_events().is_empty(), "soft once");
    let look = a.look(at(12));
    assert!(
        look.sas
            .iter()
            .all(|s| s.state == "soft-expired" && s.age_secs == 12),
        "{:?}",
        look.sas
    );
    // still usable between soft and hard
    assert_eq!(transfer(&a, &b, &p, at(15)).unwrap(), p);
    // past the hard time the SA is unusable at once, before any tick
    assert_eq!(out(&a, &p, at(20)).0, Outbound::Drop(DropReason::Trap));
    let w = seal(&b, &udp_total(hb, ha, 100, false), at(19));
    assert_eq!(deliver(&a, &w, at(20)), Err(DropReason::HardExpired));
    assert_eq!(
        a.look(at(20))
            .sas
            .iter()
            .filter(|s| s.state == "hard-expired")
            .count(),
        2
    );
    a.take_events();
    a.tick(at(20));
    assert_eq!(
        expires(&a.take_events()),
        vec![(SPI_ESP_AB, true), (SPI_ESP_BA, true)]
    );
    assert!(a.look(at(20)).sas.is_empty());
    a.tick(at(30));
    assert!(a.take_events().is_empty());
}

#[test]
fn soft_by_packets_and_time_report_once() {
    let lifetime = SaLifetime {
        soft_packets: 1,
        soft_secs: 5,
        ..Default::default()
    };
    let setup = Setup {
        lifetime,
        ..Setup::default()
    };
    let t0 = Instant::now();
    let (a, b) = pair_at(&setup, t0);
    let (ha, hb) = hosts(&setup);
    assert!(transfer(&a, &b, &udp_total(ha, hb, 100, false), t0).is_ok());
    assert_eq!(expires(&a.take_events()), vec![(SPI_ESP_AB, false)]);
    a.tick(t0 + Duration::from_secs(6));
    assert_eq!(expires(&a.take_events()), vec![(SPI_ESP_BA, false)]);
}

#[test]
fn sequence_number_overflow_expires_the_sa() {
    let setup = Setup::default();
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (ha, hb) = hosts(&setup);
    let id = id_of(&setup, IpsecProto::Esp, true);
    a.resume_tx_seq(&id, u64::from(u32::MAX) - 1);
    let p = udp_total(ha, hb, 100, false);
    assert_eq!(transfer(&a, &b, &p, now).unwrap(), p); // seq 2^32 - 1, the last
    assert_eq!(out(&a, &p, now).0, Outbound::Drop(DropReason::SeqOverflow));
    assert_eq!(expires(&a.take_events()), vec![(SPI_ESP_AB, true)]);
    assert!(sa_info(&a, SPI_ESP_AB).is_none());
    assert_eq!(out(&a, &p, now).0, Outbound::Drop(DropReason::Trap));
}
