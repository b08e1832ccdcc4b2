//! TUN offload costs (sans-IO, `fwd::io::gso`): splitting a 64 KB TCP super-packet read from the
//! TUN device into MTU-sized packets, coalescing decrypted segments back into one for a write,
//! and the checksum routine both use. The syscalls saved are measured by the tunnel benchmark
//! (`scripts/bench-tunnel.sh`), not here.
//!
//! Quick run: `cargo bench -p fwd --bench tun_offload -- --measurement-time 1 --warm-up-time 0.3`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fwd::io::gso::{self, Coalescer, Plan, VnetHdr, F_NEEDS_CSUM, GSO_TCPV4};
use std::hint::black_box;

const MSS: usize = 1360;

/// An IPv4/TCP super-packet of `payload` bytes, as the kernel hands it over with TSO on.
fn super_packet(payload: usize) -> (VnetHdr, Vec<u8>) {
    let total = 40 + payload;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&[10, 1, 0, 2]);
    p[16..20].copy_from_slice(&[10, 2, 0, 2]);
    let c = !gso::ones_sum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5201u16.to_be_bytes());
    p[24..28].copy_from_slice(&1u32.to_be_bytes());
    p[28..32].copy_from_slice(&1u32.to_be_bytes());
    p[32] = 5 << 4;
    p[33] = 0x18;
    p[34..36].copy_from_slice(&512u16.to_be_bytes());
    for (i, b) in p[40..].iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 40,
        gso_size: MSS as u16,
        csum_start: 20,
        csum_offset: 16,
    };
    (hdr, p)
}

fn bench(c: &mut Criterion) {
    let payload = 47 * MSS; // 63920 bytes: what one TSO read brings at MTU 1400
    let (hdr, pkt) = super_packet(payload);
    let plan = Plan::new(&hdr, &pkt).unwrap();
    let mut slot = vec![0u8; 2048];
    let mut segs = Vec::new();
    plan.for_each_segment(&pkt, &mut slot, |s| segs.push(s.to_vec()))
        .unwrap();

    let mut g = c.benchmark_group("tun_offload");
    g.throughput(Throughput::Bytes(payload as u64));
    g.bench_function("split 64 KB TCPv4 super-packet into 47 segments", |b| {
        b.iter(|| {
            let plan = Plan::new(black_box(&hdr), black_box(&pkt)).unwrap();
            for i in 0..plan.segments() {
                black_box(plan.write_segment(&pkt, i, &mut slot).unwrap());
            }
        })
    });
    let mut co = Coalescer::new();
    g.bench_function("coalesce 47 segments into one write", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for s in &segs {
                co.offer(black_box(s), |_, p| {
                    n += p.len();
                    Ok::<(), ()>(())
                })
                .unwrap();
            }
            co.flush(|_, p| {
                n += p.len();
                Ok::<(), ()>(())
            })
            .unwrap();
            black_box(n)
        })
    });
    g.finish();

    let data = &pkt[..1400];
    let mut g = c.benchmark_group("checksum 1400 B");
    g.throughput(Throughput::Bytes(1400));
    g.bench_function("gso::ones_sum (32-bit words)", |b| {
        b.iter(|| gso::ones_sum(black_box(data)))
    });
    g.bench_function("esp::ip::ones_sum (16-bit words)", |b| {
        b.iter(|| fwd::esp::ip::ones_sum(black_box(data), 0))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
