//! SPD lookup cost vs. number of subnet-to-subnet tunnels (10 / 1,000 /
//! 10,000): indexed `Spd::lookup` for a hit and a miss, outbound (remote
//! subnet = dst) and inbound (remote subnet = src, all sharing the local dst),
//! plus the naive first-match scan over `Spd::iter` at the same sizes for
//! comparison. The indexed cost should be flat; the naive one linear.
//!
//! Quick run: `cargo bench -p fwd --bench spd_lookup -- --measurement-time 1 --warm-up-time 0.5`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use fwd::spd::{Action, Direction, Entry, Flow, IpNet, PolicyTarget, Selector, Spd};
use std::net::{IpAddr, Ipv4Addr};

fn remote(i: u32) -> IpNet {
    IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i << 8))), 24).unwrap()
}

fn build(n: u32) -> Spd {
    let local: IpNet = "192.168.0.0/16".parse().unwrap();
    let mut spd = Spd::new();
    for i in 0..n {
        let t = Action::Protect(PolicyTarget(u64::from(i)));
        spd.insert(Direction::Out, Entry::new(format!("c{i}"), 100, Selector::subnets(local, remote(i)), t)).unwrap();
        spd.insert(Direction::In, Entry::new(format!("c{i}"), 100, Selector::subnets(remote(i), local), t)).unwrap();
    }
    spd
}

fn flow(src: u32, dst: u32) -> Flow {
    Flow {
        src: IpAddr::V4(Ipv4Addr::from(src)),
        dst: IpAddr::V4(Ipv4Addr::from(dst)),
        proto: 6,
        src_port: 40000,
        dst_port: 443,
    }
}

fn bench(c: &mut Criterion) {
    let local_host = 0xc0a8_0304; // 192.168.3.4
    let mut g = c.benchmark_group("spd_lookup");
    for n in [10u32, 1_000, 10_000] {
        let spd = build(n);
        let tunnel_host = 0x0a00_0000 | ((n / 2) << 8) | 9; // inside the middle tunnel
        let miss_host = 0xac10_0001; // 172.16.0.1: no policy
        let out_hit = flow(local_host, tunnel_host);
        let out_miss = flow(local_host, miss_host);
        let in_hit = flow(tunnel_host, local_host);
        assert!(spd.lookup(Direction::Out, &out_hit).is_some());
        assert!(spd.lookup(Direction::Out, &out_miss).is_none());
        assert!(spd.lookup(Direction::In, &in_hit).is_some());
        g.bench_with_input(BenchmarkId::new("out_hit", n), &out_hit, |b, f| {
            b.iter(|| spd.lookup(Direction::Out, black_box(f)).map(|(id, _)| id))
        });
        g.bench_with_input(BenchmarkId::new("out_miss", n), &out_miss, |b, f| {
            b.iter(|| spd.lookup(Direction::Out, black_box(f)).map(|(id, _)| id))
        });
        g.bench_with_input(BenchmarkId::new("in_hit", n), &in_hit, |b, f| {
            b.iter(|| spd.lookup(Direction::In, black_box(f)).map(|(id, _)| id))
        });
        g.bench_with_input(BenchmarkId::new("naive_out_hit", n), &out_hit, |b, f| {
            b.iter(|| spd.iter(Direction::Out).find(|(_, e)| e.selector.matches(black_box(f))).map(|(id, _)| id))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
