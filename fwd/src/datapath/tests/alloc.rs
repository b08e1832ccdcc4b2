//! The packet paths do not allocate: a counting global allocator (per thread, so other tests
//! running in parallel do not disturb the count) around outbound() and inbound() once the engine
//! is warm.
use super::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-initialised thread-local
// `Cell` (no allocation, no destructor), touched with `try_with` so it is safe during thread
// teardown.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

#[test]
fn outbound_and_inbound_do_not_allocate() {
    // the counter sees allocations at all
    let c0 = allocs();
    let v = std::hint::black_box(Vec::<u8>::with_capacity(16));
    assert_eq!(allocs() - c0, 1);
    drop(v);
    for setup in [
        Setup::default(),
        Setup {
            suite: SUITES[0],
            ..Setup::default()
        },
        Setup {
            suite: SUITES[3],
            inner_v6: true,
            outer_v6: true,
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
            mode: SaMode::Transport,
            ..Setup::default()
        },
        Setup {
            encap: Some(UdpEncap {
                src_port: 4500,
                dst_port: 4500,
            }),
            ..Setup::default()
        },
    ] {
        let now = Instant::now();
        let (a, b) = pair_at(&setup, now);
        let (ha, hb) = hosts(&setup);
        let p = udp_total(ha, hb, if ha.is_ipv6() { 1000 } else { 980 }, false);
        // buffers, the reference wire packet and the engine's lazily built state come first
        let (mut obuf, orange) = in_buf(&p);
        let mut ibuf = vec![0u8; obuf.len() + 64];
        let w = seal(&a, &p, now);
        assert!(deliver(&b, &w, now).is_ok());
        let before = allocs();
        for _ in 0..50 {
            obuf[orange.clone()].copy_from_slice(&p);
            let o = a.outbound(&mut obuf, orange.clone(), now);
            let (rx, range) = match o {
                Outbound::Esp {
                    src,
                    dst,
                    encap,
                    range,
                } => (
                    Rx {
                        src,
                        dst,
                        proto: if encap.is_some() { 17 } else { 50 },
                        udp: encap.map(|e| (e.src_port, e.dst_port)),
                    },
                    range,
                ),
                Outbound::Ip { range } => (w.rx, range),
                other => panic!("{other:?}"),
            };
            let n = range.len();
            ibuf[HEADROOM..HEADROOM + n].copy_from_slice(&obuf[range]);
            let r = b.inbound(rx, &mut ibuf, HEADROOM..HEADROOM + n, now);
            assert!(matches!(r, Inbound::ToTun { .. }), "{setup:?}: {r:?}");
        }
        // drops (truncated, bad ICV) do not allocate either
        let r = b.inbound(w.rx, &mut ibuf, HEADROOM..HEADROOM, now);
        assert!(matches!(r, Inbound::Drop(_)));
        let r = b.inbound(w.rx, &mut ibuf, HEADROOM..HEADROOM + 40, now);
        assert!(matches!(r, Inbound::Drop(_)));
        let n = allocs() - before;
        assert_eq!(n, 0, "{setup:?}: {n} allocations");
    }
}
