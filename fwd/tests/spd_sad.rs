//! SPD / SAD behaviour through the public API, plus proptests: the indexed
//! SPD lookup equals a naive first-match scan in priority order, and
//! `Flow::from_ip_packet` never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use fwd::sad::{IpsecProto, Sad, SadError, SaKey};
use fwd::spd::{
    Action, Direction, Entry, Flow, FlowError, IpNet, PolicyTarget, PortRange, Selector, Spd,
    SpdError,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn flow(src: &str, dst: &str, proto: u8, sp: u16, dp: u16) -> Flow {
    Flow { src: src.parse().unwrap(), dst: dst.parse().unwrap(), proto, src_port: sp, dst_port: dp }
}

fn naive<'a>(spd: &'a Spd, dir: Direction, f: &Flow) -> Option<(fwd::spd::PolicyId, &'a Entry)> {
    spd.iter(dir).find(|(_, e)| e.selector.matches(f))
}

// ------------------------------------------------------------------ SPD

#[test]
fn selector_fields() {
    let sel = Selector {
        src: net("10.0.1.0/24"),
        dst: net("10.0.2.0/24"),
        proto: Some(6),
        src_port: PortRange::ANY,
        dst_port: PortRange::new(443, 444).unwrap(),
    };
    assert!(sel.matches(&flow("10.0.1.9", "10.0.2.9", 6, 5555, 443)));
    assert!(sel.matches(&flow("10.0.1.9", "10.0.2.9", 6, 5555, 444)));
    assert!(!sel.matches(&flow("10.0.1.9", "10.0.2.9", 6, 5555, 445)));
    assert!(!sel.matches(&flow("10.0.1.9", "10.0.2.9", 17, 5555, 443)));
    assert!(!sel.matches(&flow("10.0.3.9", "10.0.2.9", 6, 5555, 443)));
    assert!(!sel.matches(&flow("10.0.1.9", "10.0.3.9", 6, 5555, 443)));
    assert!(PortRange::new(5, 4).is_none());
    assert_eq!(sel.to_string(), "10.0.1.0/24:any -> 10.0.2.0/24:443-444 proto 6");
}

#[test]
fn priority_order_and_ties() {
    let mut spd = Spd::new();
    let wide = Selector::subnets(net("0.0.0.0/0"), net("10.0.0.0/8"));
    let narrow = Selector::subnets(net("0.0.0.0/0"), net("10.1.0.0/16"));
    let a = spd.insert(Direction::Out, Entry::new("wide", 10, wide, Action::Drop)).unwrap();
    let b = spd.insert(Direction::Out, Entry::new("narrow", 20, narrow, Action::Pass)).unwrap();
    let f = flow("1.1.1.1", "10.1.2.3", 1, 0, 0);
    // Priority, not prefix length, decides.
    assert_eq!(spd.lookup(Direction::Out, &f).unwrap().0, a);
    spd.remove(a).unwrap();
    assert_eq!(spd.lookup(Direction::Out, &f).unwrap().0, b);
    // Equal priority: the older policy wins.
    let c = spd.insert(Direction::Out, Entry::new("wide2", 20, wide, Action::Reject)).unwrap();
    assert_eq!(spd.lookup(Direction::Out, &f).unwrap().0, b);
    let order: Vec<_> = spd.iter(Direction::Out).map(|(id, _)| id).collect();
    assert_eq!(order, vec![b, c]);
    // Directions are separate tables.
    assert!(spd.lookup(Direction::In, &f).is_none());
    assert_eq!(spd.len_dir(Direction::In), 0);
}

#[test]
fn duplicate_full_family_name() {
    let mut spd = Spd::with_max(2);
    let s = Selector::subnets(net("10.0.1.0/24"), net("10.0.2.0/24"));
    let id = spd.insert(Direction::Out, Entry::new("a", 1, s, Action::Pass)).unwrap();
    assert_eq!(spd.insert(Direction::Out, Entry::new("b", 2, s, Action::Drop)), Err(SpdError::Duplicate(id)));
    // Same selector inbound is a different table.
    spd.insert(Direction::In, Entry::new("a", 1, s, Action::Pass)).unwrap();
    let s2 = Selector::subnets(net("10.0.1.0/24"), net("10.0.3.0/24"));
    assert_eq!(spd.insert(Direction::Out, Entry::new("c", 1, s2, Action::Pass)), Err(SpdError::Full));
    let mixed = Selector::subnets(net("10.0.1.0/24"), net("2001:db8::/32"));
    assert_eq!(spd.insert(Direction::Out, Entry::new("m", 1, mixed, Action::Pass)), Err(SpdError::FamilyMismatch));
    let long = "x".repeat(fwd::spd::MAX_NAME_LEN + 1);
    assert_eq!(spd.insert(Direction::Out, Entry::new(long, 1, s2, Action::Pass)), Err(SpdError::NameTooLong));
    assert_eq!(spd.remove_by_name("a").len(), 2);
    assert!(spd.is_empty());
    spd.insert(Direction::Out, Entry::new("c", 1, s2, Action::Pass)).unwrap();
}

#[test]
fn remove_and_counters() {
    let mut spd = Spd::new();
    let s = Selector::subnets(net("10.0.1.0/24"), net("10.0.2.0/24"));
    let id = spd.insert(Direction::Out, Entry::new("t", 1, s, Action::Protect(PolicyTarget(7)))).unwrap();
    let f = flow("10.0.1.1", "10.0.2.1", 17, 500, 500);
    let (hit, e) = spd.lookup(Direction::Out, &f).unwrap();
    assert_eq!((hit, e.action), (id, Action::Protect(PolicyTarget(7))));
    assert!(spd.count(id, 100));
    assert!(spd.count(id, 50));
    assert_eq!(spd.get(id).unwrap().1.counters.packets, 2);
    assert_eq!(spd.get(id).unwrap().1.counters.bytes, 150);
    let removed = spd.remove(id).unwrap();
    assert_eq!(removed.counters.bytes, 150);
    assert!(!spd.count(id, 1));
    assert!(spd.remove(id).is_none());
    assert!(spd.lookup(Direction::Out, &f).is_none());
    assert!(spd.remove_by_name("t").is_empty());
    assert!(spd.ids_by_name("t").is_empty());
}

#[test]
fn ipv6_policies() {
    let mut spd = Spd::new();
    let s = Selector {
        src: net("2001:db8:1::/48"),
        dst: net("2001:db8:2::/48"),
        proto: Some(58),
        src_port: PortRange::ANY,
        dst_port: PortRange::ANY,
    };
    let id = spd.insert(Direction::In, Entry::new("v6", 5, s, Action::Trap(PolicyTarget(9)))).unwrap();
    spd.insert(Direction::In, Entry::new("v4any", 1, Selector::subnets(IpNet::any_v4(), IpNet::any_v4()), Action::Pass))
        .unwrap();
    let f = flow("2001:db8:1::5", "2001:db8:2:ffff::1", 58, 0, 0);
    assert_eq!(spd.lookup(Direction::In, &f).unwrap().0, id);
    assert!(spd.lookup(Direction::In, &flow("2001:db8:1::5", "2001:db8:3::1", 58, 0, 0)).is_none());
    // A v4 catch-all does not match v6 and vice versa.
    assert_eq!(spd.lookup(Direction::In, &flow("1.2.3.4", "5.6.7.8", 6, 1, 2)).unwrap().1.name, "v4any");
}

// ------------------------------------------------------------------ Flow parsing

fn ipv4(proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn ipv6(nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[nh, 64]);
    p.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(payload);
    p
}

const PORTS: [u8; 8] = [0x04, 0xd2, 0x01, 0xbb, 0, 0, 0, 0]; // 1234 -> 443

#[test]
fn flow_ipv4() {
    let f = Flow::from_ip_packet(&ipv4(6, 0, &PORTS)).unwrap();
    assert_eq!(f, flow("10.0.0.1", "10.0.0.2", 6, 1234, 443));
    let f = Flow::from_ip_packet(&ipv4(17, 0, &PORTS)).unwrap();
    assert_eq!((f.proto, f.src_port, f.dst_port), (17, 1234, 443));
    let f = Flow::from_ip_packet(&ipv4(1, 0, &[8, 0, 0, 0])).unwrap();
    assert_eq!((f.proto, f.src_port, f.dst_port), (1, 0, 0));
    // First fragment (MF set) has ports; a later fragment does not.
    let f = Flow::from_ip_packet(&ipv4(6, 0x2000, &PORTS)).unwrap();
    assert_eq!(f.dst_port, 443);
    let f = Flow::from_ip_packet(&ipv4(6, 0x0010, &PORTS)).unwrap();
    assert_eq!((f.proto, f.src_port, f.dst_port), (6, 0, 0));
    // Trailing bytes beyond total length are ignored.
    let mut p = ipv4(6, 0, &PORTS);
    p.extend_from_slice(&[0xff; 10]);
    assert_eq!(Flow::from_ip_packet(&p).unwrap().dst_port, 443);
    // Options (IHL 6).
    let mut p = ipv4(17, 0, &[1, 1, 1, 1, 0x00, 0x35, 0x00, 0x35]);
    p[0] = 0x46;
    assert_eq!(Flow::from_ip_packet(&p).unwrap().src_port, 53);
}

#[test]
fn flow_errors() {
    assert_eq!(Flow::from_ip_packet(&[]), Err(FlowError::Empty));
    assert_eq!(Flow::from_ip_packet(&[0x50; 40]), Err(FlowError::BadVersion(5)));
    let p = ipv4(6, 0, &PORTS);
    for n in 1..24 {
        assert!(Flow::from_ip_packet(&p[..n]).is_err(), "len {n}");
    }
    // Ports cut off.
    assert_eq!(Flow::from_ip_packet(&ipv4(6, 0, &[1, 2, 3])), Err(FlowError::Truncated));
    let mut p = ipv4(6, 0, &PORTS);
    p[0] = 0x44;
    assert_eq!(Flow::from_ip_packet(&p), Err(FlowError::BadHeaderLength));
    let mut p = ipv4(6, 0, &PORTS);
    p[3] = 10; // total length < IHL
    assert_eq!(Flow::from_ip_packet(&p), Err(FlowError::BadHeaderLength));
    let mut p = ipv4(6, 0, &PORTS);
    p[3] = 200; // total length > buffer
    assert_eq!(Flow::from_ip_packet(&p), Err(FlowError::Truncated));
    let p6 = ipv6(6, &PORTS);
    for n in 1..44 {
        assert!(Flow::from_ip_packet(&p6[..n]).is_err(), "v6 len {n}");
    }
}

#[test]
fn flow_ipv6_ext_headers() {
    let f = Flow::from_ip_packet(&ipv6(6, &PORTS)).unwrap();
    assert_eq!(f, flow("2001:db8::1", "2001:db8::2", 6, 1234, 443));
    // Hop-by-hop (8 bytes) then dest opts (16 bytes) then UDP.
    let mut pl = vec![60, 0, 0, 0, 0, 0, 0, 0];
    pl.extend_from_slice(&[17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    pl.extend_from_slice(&PORTS);
    let f = Flow::from_ip_packet(&ipv6(0, &pl)).unwrap();
    assert_eq!((f.proto, f.src_port, f.dst_port), (17, 1234, 443));
    // First fragment: ports; non-first: none.
    let mut first = vec![6, 0, 0x00, 0x01, 0, 0, 0, 1];
    first.extend_from_slice(&PORTS);
    let f = Flow::from_ip_packet(&ipv6(44, &first)).unwrap();
    assert_eq!((f.proto, f.dst_port), (6, 443));
    let mut later = vec![6, 0, 0x00, 0x08, 0, 0, 0, 1];
    later.extend_from_slice(&PORTS);
    let f = Flow::from_ip_packet(&ipv6(44, &later)).unwrap();
    assert_eq!((f.proto, f.src_port, f.dst_port), (6, 0, 0));
    // ICMPv6 and ESP end the walk without ports.
    assert_eq!(Flow::from_ip_packet(&ipv6(58, &[128, 0, 0, 0])).unwrap().proto, 58);
    assert_eq!(Flow::from_ip_packet(&ipv6(50, &[0; 8])).unwrap().proto, 50);
    // Too many extension headers.
    let mut chain = Vec::new();
    for _ in 0..10 {
        chain.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
    }
    chain.extend_from_slice(&[59, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(Flow::from_ip_packet(&ipv6(60, &chain)), Err(FlowError::TooManyExtensionHeaders));
    // Extension header length past the end.
    assert_eq!(Flow::from_ip_packet(&ipv6(0, &[6, 5, 0, 0, 0, 0, 0, 0])), Err(FlowError::Truncated));
    // Payload length larger than the buffer.
    let mut p = ipv6(6, &PORTS);
    p[5] = 200;
    assert_eq!(Flow::from_ip_packet(&p), Err(FlowError::Truncated));
}

// ------------------------------------------------------------------ SAD

#[test]
fn sad_api() {
    let dst = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
    let mut sad: Sad<String> = Sad::with_max(3);
    let k = SaKey::new(0x1001, IpsecProto::Esp, dst);
    sad.insert(k, "in".into()).unwrap();
    assert_eq!(sad.insert(k, "again".into()), Err(SadError::Duplicate));
    assert_eq!(sad.insert(SaKey::new(7, IpsecProto::Ah, dst), "x".into()), Err(SadError::ReservedSpi(7)));
    sad.get_mut(&k).unwrap().push('!');
    assert_eq!(sad.get(&k).map(String::as_str), Some("in!"));
    assert!(sad.get(&SaKey::new(0x1001, IpsecProto::Ah, dst)).is_none());
    for _ in 0..2 {
        let spi = sad.alloc_spi().unwrap();
        assert!(spi > 255 && !sad.spi_in_use(spi));
        sad.insert(SaKey::new(spi, IpsecProto::Esp, dst), "larval".into()).unwrap();
    }
    assert_eq!(sad.len(), 3);
    assert_eq!(sad.alloc_spi(), Err(SadError::Full));
    assert_eq!(sad.insert(SaKey::new(0x2000, IpsecProto::Esp, dst), "y".into()), Err(SadError::Full));
    assert_eq!(sad.iter().count(), 3);
    assert_eq!(sad.replace(&k, "new".into()), Ok("in!".into()));
    assert_eq!(sad.remove(&k), Some("new".into()));
    assert_eq!(sad.len(), 2);
}

#[test]
fn sad_alloc_never_reserved_or_used() {
    let dst = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let mut sad: Sad<()> = Sad::new();
    for spi in 256..1256u32 {
        sad.insert(SaKey::new(spi, IpsecProto::Esp, dst), ()).unwrap();
    }
    // A low-range RNG: most draws are reserved or used.
    let mut x: u32 = 12345;
    for _ in 0..200 {
        let spi = sad
            .alloc_spi_with(|| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                Some((x >> 8) % 1400)
            })
            .unwrap();
        assert!((1256..1400).contains(&spi), "{spi}");
    }
}

// ------------------------------------------------------------------ proptests

fn arb_net(v6: bool) -> impl Strategy<Value = IpNet> {
    // Small address space and prefix set so random flows actually hit.
    if v6 {
        (0u8..4, 0u8..4, prop::sample::select(vec![0u8, 8, 16, 30, 64, 126, 127, 128]))
            .prop_map(|(a, b, p)| {
                let addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, u16::from(a), u16::from(b));
                let addr = if p <= 64 { Ipv6Addr::from(u128::from(addr) | (u128::from(a) << 100)) } else { addr };
                IpNet::new(IpAddr::V6(addr), p).unwrap()
            })
            .boxed()
    } else {
        (0u8..4, 0u8..4, prop::sample::select(vec![0u8, 8, 16, 24, 29, 30, 31, 32]))
            .prop_map(|(a, b, p)| IpNet::new(IpAddr::V4(Ipv4Addr::new(10, a, 0, b)), p).unwrap())
            .boxed()
    }
}

fn arb_ports() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        3 => Just(PortRange::ANY),
        1 => (0u16..6).prop_map(PortRange::single),
        1 => (0u16..6, 0u16..6).prop_map(|(a, b)| PortRange::new(a.min(b), a.max(b)).unwrap()),
    ]
}

fn arb_selector() -> impl Strategy<Value = Selector> {
    any::<bool>().prop_flat_map(|v6| {
        (arb_net(v6), arb_net(v6), prop::option::of(prop::sample::select(vec![1u8, 6, 17])), arb_ports(), arb_ports())
            .prop_map(|(src, dst, proto, src_port, dst_port)| Selector { src, dst, proto, src_port, dst_port })
    })
}

fn arb_flow() -> impl Strategy<Value = Flow> {
    (any::<bool>(), 0u8..4, 0u8..4, 0u8..4, 0u8..4, prop::sample::select(vec![1u8, 6, 17, 50]), 0u16..6, 0u16..6)
        .prop_map(|(v6, a, b, c, d, proto, sp, dp)| {
            let (src, dst) = if v6 {
                let mk = |x: u8, y: u8| {
                    let base = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, u16::from(x), u16::from(y));
                    IpAddr::V6(Ipv6Addr::from(u128::from(base) | (u128::from(x) << 100)))
                };
                (mk(a, b), mk(c, d))
            } else {
                (IpAddr::V4(Ipv4Addr::new(10, a, 0, b)), IpAddr::V4(Ipv4Addr::new(10, c, 0, d)))
            };
            Flow { src, dst, proto, src_port: sp, dst_port: dp }
        })
}

#[derive(Debug, Clone)]
enum Op {
    Insert(bool, u32, Selector),
    Remove(usize),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0u32..8, arb_selector()).prop_map(|(d, p, s)| Op::Insert(d, p, s)),
        1 => any::<usize>().prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn indexed_lookup_equals_naive(ops in prop::collection::vec(arb_op(), 0..80),
                                   flows in prop::collection::vec(arb_flow(), 1..40)) {
        let mut spd = Spd::new();
        let mut ids = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert(d, prio, sel) => {
                    let dir = if d { Direction::In } else { Direction::Out };
                    match spd.insert(dir, Entry::new(format!("p{}", i % 5), prio, sel, Action::Pass)) {
                        Ok(id) => ids.push(id),
                        Err(SpdError::Duplicate(other)) => {
                            prop_assert_eq!(spd.get(other).unwrap().1.selector, sel);
                        }
                        Err(e) => prop_assert!(false, "unexpected {e:?}"),
                    }
                }
                Op::Remove(k) if !ids.is_empty() => {
                    let id = ids.swap_remove(k % ids.len());
                    prop_assert!(spd.remove(id).is_some());
                }
                Op::Remove(_) => {}
            }
        }
        prop_assert_eq!(spd.len(), ids.len());
        for f in &flows {
            for dir in [Direction::Out, Direction::In] {
                let got = spd.lookup(dir, f).map(|(id, _)| id);
                let want = naive(&spd, dir, f).map(|(id, _)| id);
                prop_assert_eq!(got, want, "dir {:?} flow {:?}", dir, f);
            }
        }
        // remove_by_name empties the index too.
        for n in 0..5 {
            spd.remove_by_name(&format!("p{n}"));
        }
        prop_assert!(spd.is_empty());
        for f in &flows {
            prop_assert!(spd.lookup(Direction::Out, f).is_none());
        }
    }

    #[test]
    fn flow_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        let _ = Flow::from_ip_packet(&bytes);
    }

    #[test]
    fn flow_parse_never_panics_v4_v6_shaped(v6 in any::<bool>(), mut bytes in prop::collection::vec(any::<u8>(), 1..128)) {
        bytes[0] = if v6 { 0x60 | (bytes[0] & 0x0f) } else { 0x40 | (bytes[0] & 0x0f) };
        if let Ok(f) = Flow::from_ip_packet(&bytes) {
            prop_assert_eq!(f.src.is_ipv4(), !v6);
        }
    }

    #[test]
    fn ipnet_display_roundtrip(s in arb_selector()) {
        prop_assert_eq!(s.src.to_string().parse::<IpNet>().unwrap(), s.src);
        prop_assert!(s.dst.contains(s.dst.addr()));
    }
}
