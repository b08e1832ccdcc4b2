//! Arbitrary bytes into both packet paths: never a panic, never a forged packet through.
use super::*;
use proptest::prelude::*;
use std::sync::OnceLock;

struct Gws {
    a: Engine,
    b: Engine,
    bundle_b: Engine,
}

fn gws() -> &'static Gws {
    static G: OnceLock<Gws> = OnceLock::new();
    G.get_or_init(|| {
        let now = Instant::now();
        let (a, b) = pair_at(
            &Setup {
                replay_window: 0,
                ..Setup::default()
            },
            now,
        );
        let (_, bundle_b) = pair_at(
            &Setup {
                ah: true,
                replay_window: 0,
                ..Setup::default()
            },
            now,
        );
        Gws { a, b, bundle_b }
    })
}

fn rx(proto: u8, v6: bool) -> Rx {
    let (src, dst) = if v6 {
        (ip("2001:db8::1"), ip("2001:db8::2"))
    } else {
        (ip("192.0.2.1"), ip("192.0.2.2"))
    };
    Rx {
        src,
        dst,
        proto,
        udp: (proto == 17).then_some((4500, 4500)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn inbound_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        proto in prop_oneof![Just(50u8), Just(17u8), Just(51u8), any::<u8>()],
        known_spi in any::<bool>(),
        v6 in any::<bool>(),
        head in 0usize..HEADROOM + 1,
        tail in 0usize..TAILROOM + 1,
        bundle in any::<bool>(),
    ) {
        let g = gws();
        let mut p = bytes.clone();
        if known_spi && p.len() >= 4 && proto != 51 {
            p[..4].copy_from_slice(&SPI_ESP_AB.to_be_bytes());
        }
        if known_spi && proto == 51 && p.len() >= 28 {
            // an outer IPv4 header claiming AH with the right SPI
            p[0] = 0x45;
            let n = p.len() as u16;
            p[2..4].copy_from_slice(&n.to_be_bytes());
            p[9] = 51;
            p[24..28].copy_from_slice(&SPI_AH_AB.to_be_bytes());
        }
        let mut buf = vec![0u8; head + p.len() + tail];
        buf[head..head + p.len()].copy_from_slice(&p);
        let e = if bundle { &g.bundle_b } else { &g.b };
        let r = e.inbound(rx(proto, v6), &mut buf, head..head + p.len(), Instant::now());
        prop_assert!(matches!(r, Inbound::Drop(_)), "forged packet accepted: {r:?}");
    }

    #[test]
    fn outbound_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        v in prop_oneof![Just(0x45u8), Just(0x60u8), any::<u8>()],
        head in 0usize..HEADROOM + 1,
        tail in 0usize..TAILROOM + 1,
        start in 0usize..8,
        end_cut in 0usize..8,
    ) {
        let g = gws();
        let mut p = bytes.clone();
        if let Some(b) = p.first_mut() {
            *b = v;
        }
        // aim most packets at the protected subnets
        if v == 0x45 && p.len() >= 20 {
            let n = p.len() as u16;
            p[2..4].copy_from_slice(&n.to_be_bytes());
            p[12..16].copy_from_slice(&[10, 1, 0, 1]);
            p[16..20].copy_from_slice(&[10, 2, 0, 1]);
        }
        let mut buf = vec![0u8; head + p.len() + tail];
        buf[head..head + p.len()].copy_from_slice(&p);
        let s = head + start.min(p.len());
        let e = (head + p.len()).saturating_sub(end_cut).max(s);
        let _ = g.a.outbound(&mut buf, s..e, Instant::now());
        let _ = g.a.outbound(&mut buf, e..s, Instant::now());
    }
}

#[test]
fn forged_headers_with_valid_spis_never_get_through() {
    // Deterministic sweep next to the proptest: every length up to 300 with the right SPI and
    // patterned bytes, for ESP, ESP in UDP and AH.
    let g = gws();
    for len in 0..300usize {
        for proto in [50u8, 17, 51] {
            let mut p: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
            if proto == 51 && len >= 28 {
                p[0] = 0x45;
                p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                p[9] = 51;
                p[20] = 50;
                p[21] = 5;
                p[24..28].copy_from_slice(&SPI_AH_AB.to_be_bytes());
            } else if len >= 4 {
                p[..4].copy_from_slice(&SPI_ESP_AB.to_be_bytes());
            }
            let (mut buf, r) = in_buf(&p);
            assert!(matches!(
                g.bundle_b
                    .inbound(rx(proto, false), &mut buf, r.clone(), Instant::now()),
                Inbound::Drop(_)
            ));
            let (mut buf, r) = in_buf(&p);
            assert!(matches!(
                g.b.inbound(rx(proto, false), &mut buf, r, Instant::now()),
                Inbound::Drop(_)
            ));
        }
    }
}
