//! ESP codec throughput: ns/packet and MB/s at 64/512/1400-byte payloads for
//! each suite, seal (EspSa::seal: framing + IV + crypto + sequence number) and
//! open (codec::open_in_place: ICV check + decrypt + padding; the packet is
//! restored from a template outside the timed part, the replay window — a few
//! ns — is left out so the same packet can be opened repeatedly).
//!
//! Quick run: `cargo bench -p fwd --bench esp_codec -- --measurement-time 1 --warm-up-time 0.5 'gcm128-16/seal/1400'`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use fwd::esp::codec::open_in_place;
use fwd::esp::{EncAlg, EspSa, GcmIcv, IntegAlg, Lifetime, Mode, SaConfig, SuiteSpec};
use zeroize::Zeroizing;

fn suites() -> Vec<(&'static str, EncAlg, IntegAlg)> {
    vec![
        ("gcm128-16", EncAlg::AesGcm128(GcmIcv::B16), IntegAlg::None),
        ("gcm256-16", EncAlg::AesGcm256(GcmIcv::B16), IntegAlg::None),
        ("gcm128-12", EncAlg::AesGcm128(GcmIcv::B12), IntegAlg::None),
        ("gcm128-8", EncAlg::AesGcm128(GcmIcv::B8), IntegAlg::None),
        ("cbc128-sha1", EncAlg::AesCbc128, IntegAlg::HmacSha1_96),
        ("cbc256-sha256", EncAlg::AesCbc256, IntegAlg::HmacSha256_128),
        ("cbc192-sha384", EncAlg::AesCbc192, IntegAlg::HmacSha384_192),
        ("cbc128-sha512", EncAlg::AesCbc128, IntegAlg::HmacSha512_256),
        ("ctr128-sha256", EncAlg::AesCtr128, IntegAlg::HmacSha256_128),
        ("3des-md5", EncAlg::TripleDesCbc, IntegAlg::HmacMd5_96),
        ("3des-sha1", EncAlg::TripleDesCbc, IntegAlg::HmacSha1_96),
        ("null-sha256", EncAlg::Null, IntegAlg::HmacSha256_128),
    ]
}

fn make(enc: EncAlg, integ: IntegAlg) -> EspSa {
    EspSa::new(&SaConfig {
        spi: 0x1234,
        spec: SuiteSpec::new(enc, integ).unwrap(),
        enc_key: Zeroizing::new(vec![0x11; enc.key_len()]),
        auth_key: Zeroizing::new(vec![0x22; integ.key_len()]),
        esn: true,
        mode: Mode::Transport,
        lifetime: Lifetime::default(),
    })
    .unwrap()
}

fn bench(c: &mut Criterion) {
    for (name, enc, integ) in suites() {
        let mut g = c.benchmark_group(name);
        for size in [64usize, 512, 1400] {
            g.throughput(Throughput::Bytes(size as u64));
            let mut tx = make(enc, integ);
            let head = tx.headroom();
            let mut buf = vec![0x5au8; head + size + tx.max_tailroom()];
            g.bench_function(BenchmarkId::new("seal", size), |b| {
                b.iter(|| tx.seal(&mut buf, head..head + size, 17).unwrap())
            });
            let r = tx.seal(&mut buf, head..head + size, 17).unwrap();
            let template = buf[r].to_vec();
            let rx = make(enc, integ);
            let hi = Some((tx.tx_seq() >> 32) as u32);
            g.bench_function(BenchmarkId::new("open", size), |b| {
                b.iter_batched_ref(
                    || template.clone(),
                    |p| open_in_place(rx.suite(), p, hi).unwrap(),
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
}

/// Baseline under the same machine load: ring's AES-128-GCM alone on the same
/// sizes, so the ESP framing overhead is the difference to gcm128-16/seal.
fn ring_baseline(c: &mut Criterion) {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[0x11; 16]).unwrap());
    let mut g = c.benchmark_group("ring-aes128gcm-raw");
    for size in [64usize, 512, 1400] {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5au8; size];
        let mut n = 0u64;
        g.bench_function(BenchmarkId::new("seal", size), |b| {
            b.iter(|| {
                n += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&n.to_be_bytes());
                key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from([0u8; 8]), &mut buf)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, ring_baseline, bench);
criterion_main!(benches);
