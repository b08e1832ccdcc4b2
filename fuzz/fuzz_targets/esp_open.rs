//! Open arbitrary bytes as ESP with fixed SAs of several suites (CBC+HMAC,
//! CTR+HMAC, 3DES encryption-only, GCM-16/12/8, NULL+HMAC), tunnel and
//! transport, ESN on and off: must never panic. The first byte picks the SA;
//! the SPI is forced to the SA's so the fuzzer reaches the crypto and framing.
#![no_main]

use fwd::esp::{EncAlg, EspSa, GcmIcv, IntegAlg, Lifetime, Mode, SaConfig, SuiteSpec};
use libfuzzer_sys::fuzz_target;

const SPI: u32 = 0x0bad_cafe;

fn make(enc: EncAlg, integ: IntegAlg, esn: bool, mode: Mode) -> Option<EspSa> {
    EspSa::new(&SaConfig {
        spi: SPI,
        spec: SuiteSpec::new(enc, integ).ok()?,
        enc_key: vec![0x42; enc.key_len()].into(),
        auth_key: vec![0x24; integ.key_len()].into(),
        esn,
        mode,
        lifetime: Lifetime::default(),
    })
    .ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let suites = [
        (EncAlg::AesCbc128, IntegAlg::HmacSha1_96),
        (EncAlg::AesCtr256, IntegAlg::HmacSha256_128),
        (EncAlg::TripleDesCbc, IntegAlg::None),
        (EncAlg::AesCbc256, IntegAlg::None),
        (EncAlg::AesGcm128(GcmIcv::B16), IntegAlg::None),
        (EncAlg::AesGcm256(GcmIcv::B12), IntegAlg::None),
        (EncAlg::AesGcm128(GcmIcv::B8), IntegAlg::None),
        (EncAlg::Null, IntegAlg::HmacMd5_96),
    ];
    let (enc, integ) = suites[usize::from(sel) % suites.len()];
    let esn = sel & 0x80 != 0;
    let mode = if sel & 0x40 != 0 { Mode::Tunnel } else { Mode::Transport };
    let Some(mut sa) = make(enc, integ, esn, mode) else { return };
    let mut pkt = rest.to_vec();
    if sel & 0x20 != 0 && pkt.len() >= 4 {
        pkt[..4].copy_from_slice(&SPI.to_be_bytes());
    }
    if let Ok(o) = sa.open(&mut pkt) {
        assert!(o.payload.end <= pkt.len());
    }
    let _ = fwd::esp::peek_spi(rest);
    let _ = fwd::esp::ip::packet_len(rest);
});
