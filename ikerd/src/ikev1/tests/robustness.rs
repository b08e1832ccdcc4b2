//! Replayed, garbled, truncated and forged messages: dropped with a log line, never a panic, and
//! an established tunnel is never disturbed.

use super::harness::*;
use crate::ikev1::engine::{MAX_HALF_OPEN, MAX_HALF_OPEN_PER_PEER};
use ipc::ike::*;
use ipc::sa::Direction;
use proptest::prelude::*;
use std::time::Duration;

fn established() -> Pair {
    let (w, e) = west_east();
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p.up("west-east");
    assert_matching_installs(&p, "west-east", "west-east");
    p
}

/// fwd actions on each side, established SAs on each side, IPsec SA counts.
type Snapshot = (
    usize,
    usize,
    Vec<(u64, bool)>,
    Vec<(u64, bool)>,
    usize,
    usize,
);

/// What must not change: established SAs and what fwd holds.
fn snapshot(p: &Pair) -> Snapshot {
    let sa = p.a.eng.status(p.now);
    let sb = p.b.eng.status(p.now);
    let est = |s: &IkeStatusReport| {
        let mut v: Vec<(u64, bool)> = s
            .ike_sas
            .iter()
            .filter(|x| x.established)
            .map(|x| (x.serial, true))
            .collect();
        v.extend(
            s.child_sas
                .iter()
                .filter(|x| x.established)
                .map(|x| (x.serial, false)),
        );
        v
    };
    (
        p.a.fwd.len(),
        p.b.fwd.len(),
        est(&sa),
        est(&sb),
        sa.child_sas.len(),
        sb.child_sas.len(),
    )
}

/// The ISAKMP SA still works: a rekey of the IPsec SA goes through.
fn still_works(p: &mut Pair) {
    let out = newest_sa(p.a.last_install("west-east").unwrap(), Direction::Out);
    let now = p.now;
    p.a.eng.expire("west-east", out.id(), false, now);
    p.run();
    let (a, _) = assert_matching_installs(p, "west-east", "west-east");
    assert_ne!(
        newest_sa(&a, Direction::Out).spi,
        out.spi,
        "{}",
        p.a.log_dump()
    );
}

#[test]
fn replaying_a_whole_exchange_changes_nothing() {
    let mut p = established();
    let before = snapshot(&p);
    let wire = p.wire.clone();
    for pk in &wire {
        p.deliver(pk);
        p.run();
    }
    // Twice, and in reverse order.
    for pk in wire.iter().rev() {
        p.deliver(pk);
        p.run();
    }
    assert_eq!(snapshot(&p), before);
    assert!(p
        .b
        .log_has("Main Mode I1 with the initiator cookie of an existing state"));
    assert!(
        p.b.log_has("unexpected Main Mode message in STATE_MAIN_R3"),
        "{}",
        p.b.log_dump()
    );
    still_works(&mut p);
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Truncate { len: usize },
    Overwrite { at: usize, bytes: Vec<u8> },
    Append { bytes: Vec<u8> },
    SetLength { len: u32 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..32)
        )
            .prop_map(|(at, bytes)| Mutation::Overwrite { at, bytes }),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(|bytes| Mutation::Append { bytes }),
        any::<u32>().prop_map(|len| Mutation::SetLength { len }),
    ]
}

fn apply(m: &Mutation, mut b: Vec<u8>) -> Vec<u8> {
    match m {
        Mutation::Flip { at, bit } => {
            let n = b.len();
            b[at % n] ^= 1 << bit;
        }
        Mutation::Truncate { len } => b.truncate(len % b.len()),
        Mutation::Overwrite { at, bytes } => {
            let n = b.len();
            for (i, x) in bytes.iter().enumerate() {
                b[(at + i) % n] = *x;
            }
        }
        Mutation::Append { bytes } => b.extend_from_slice(bytes),
        Mutation::SetLength { len } => b[24..28].copy_from_slice(&len.to_be_bytes()),
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Mutated copies of every message of a real exchange, fed into the established engines.
    #[test]
    fn mutated_messages_never_disturb_an_established_tunnel(
        muts in proptest::collection::vec((0usize..9, mutation()), 1..40)
    ) {
        let mut p = established();
        let before = snapshot(&p);
        let wire = p.wire.clone();
        for (i, m) in &muts {
            let mut pk = wire[*i % wire.len()].clone();
            pk.bytes = apply(m, pk.bytes);
            p.deliver(&pk);
            p.run();
        }
        // Half-open states a mutated MI1 may have made are not established ones.
        prop_assert_eq!(snapshot(&p), before);
        still_works(&mut p);
    }

    /// Arbitrary bytes: nothing panics, with or without state.
    #[test]
    fn arbitrary_datagrams(data in proptest::collection::vec(any::<u8>(), 0..600), port in prop_oneof![Just(500u16), Just(4500u16)]) {
        let mut p = established();
        let now = p.now;
        let b = Endpoint::new(ip("192.0.2.2"), port);
        let a = Endpoint::new(ip("192.0.2.1"), 500);
        p.b.eng.receive(b, a, &data, now);
        // The same bytes behind a real header with the live cookies.
        let mut framed = p.wire[5].bytes[..28].to_vec();
        framed.extend_from_slice(&data);
        let len = framed.len() as u32;
        framed[24..28].copy_from_slice(&len.to_be_bytes());
        for exch in [2u8, 5, 32] {
            framed[18] = exch;
            for flags in [0u8, 1] {
                framed[19] = flags;
                p.b.eng.receive(b, a, &framed, now);
                p.a.eng.receive(a, b, &framed, now);
            }
        }
        p.run();
        prop_assert_eq!(p.a.fwd.len() + p.b.fwd.len(), 3);
    }
}

#[test]
fn truncated_and_garbled_copies_during_negotiation_are_dropped() {
    let (w, e) = west_east();
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p.a.eng.initiate("west-east", now).unwrap();
    // Shuttle by hand: before each real message, its receiver gets broken copies.
    let mut real = 0;
    for _ in 0..50 {
        let mut pending = Vec::new();
        for s in [Side::A, Side::B] {
            while let Some(a) = p.node(s).eng.poll_action() {
                match a {
                    crate::actions::Action::Send {
                        local,
                        remote,
                        bytes,
                    } => {
                        let to = if s == Side::A { Side::B } else { Side::A };
                        pending.push(Packet {
                            to,
                            local: remote,
                            remote: local,
                            bytes,
                        });
                    }
                    crate::actions::Action::Keyd { ticket, req } => {
                        let psk = p.node(s).psk.clone();
                        let ipc::keyd::KeydRequest::V1PskSkeyid(r) = req else {
                            panic!()
                        };
                        let sk = crate::crypto::v1_keymat::skeyid_psk(
                            crate::crypto::prf::Prf(r.prf),
                            &psk,
                            &r.ni,
                            &r.nr,
                        );
                        p.node(s).eng.keyd_answer(
                            ticket,
                            Ok(ipc::keyd::KeydResponse::Skeyid(ipc::sa::SecretBytes::new(
                                sk.to_vec(),
                            ))),
                            now,
                        );
                    }
                    crate::actions::Action::Install(st) => p.node(s).installs.push(st),
                    crate::actions::Action::Remove { .. }
                    | crate::actions::Action::Updown { .. } => {}
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        for pk in pending {
            for cut in (0..pk.bytes.len()).step_by(7) {
                let mut t = pk.clone();
                t.bytes.truncate(cut);
                p.deliver(&t);
            }
            // Garbage of the right length after the header (ciphertext or payloads).
            let mut g = pk.clone();
            for (i, b) in g.bytes[28..].iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(37) ^ 0x5a;
            }
            p.deliver(&g);
            p.deliver(&pk);
            // Then the same message for other cookies (for MI1: a new half-open state). After
            // the real one: MR1, which teaches the initiator the responder's cookie, is
            // unauthenticated in IKEv1, and the first one wins.
            let mut o = pk.clone();
            let at = if o.bytes[8..16] == [0; 8] { 0 } else { 8 };
            o.bytes[at] = o.bytes[at].wrapping_add(1);
            p.deliver(&o);
            real += 1;
        }
    }
    // 9 messages of the exchange, MR1 of the half-open state the altered MI1 made, and the
    // AUTHENTICATION_FAILED the garbled MI3 drew.
    assert_eq!(real, 11, "A:\n{}\nB:\n{}", p.a.log_dump(), p.b.log_dump());
    let a =
        p.a.last_install("west-east")
            .expect("A established despite the garbage");
    let b =
        p.b.last_install("west-east")
            .expect("B established despite the garbage");
    assert_eq!(
        newest_sa(a, Direction::Out).enc_key,
        newest_sa(b, Direction::In).enc_key
    );
    assert!(p.b.log_has("does not decode"));
}

#[test]
fn half_open_states_are_bounded() {
    let (_, e) = west_east();
    let mut any = e.clone();
    any.name = "any".into();
    any.remote.host = None;
    any.remote.id = IkeId::Any;
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.b.load(vec![e, any], now);
    // A real MI1, sent again and again with fresh cookies, from one address then from many.
    let (w, _) = west_east();
    p.a.load(vec![w], now);
    p.a.eng.initiate("west-east", now).unwrap();
    let mi1 = match p.a.eng.poll_action().unwrap() {
        crate::actions::Action::Send { bytes, .. } => bytes,
        other => panic!("{other:?}"),
    };
    let to = Endpoint::new(ip("192.0.2.2"), 500);
    for i in 0u32..100 {
        let mut m = mi1.clone();
        m[..4].copy_from_slice(&i.to_be_bytes());
        p.b.eng
            .receive(to, Endpoint::new(ip("192.0.2.1"), 500), &m, now);
    }
    assert_eq!(p.b.eng.status(now).ike_sas.len(), MAX_HALF_OPEN_PER_PEER);
    for i in 0u32..3000 {
        let mut m = mi1.clone();
        m[..4].copy_from_slice(&(i + 1000).to_be_bytes());
        let from = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        p.b.eng
            .receive(to, Endpoint::new(from.into(), 500), &m, now);
    }
    assert_eq!(p.b.eng.status(now).ike_sas.len(), MAX_HALF_OPEN);
    while p.b.eng.poll_action().is_some() {}
    // They are discarded in time.
    p.b.eng.tick(now + Duration::from_secs(61));
    assert!(p.b.eng.status(now).ike_sas.is_empty());
}
