//! Validation of SA requests arriving over fwd.sock. They come from confd (the administrator's
//! config) or ikerd (which parses packets from the Internet and so is treated as possibly
//! compromised): every field is checked before anything is built, and a refusal says which field.

use crate::esp::{self, EncAlg, GcmIcv, IntegAlg, Lifetime, Mode, SaConfig, SuiteSpec};
use ipc::sa::{self as wire, SaMode, SaSpec};
use zeroize::Zeroizing;

/// Longest connection name fwd stores.
pub const MAX_CONN_NAME: usize = 128;
/// Largest anti-replay window fwd keeps (the ESP codec's bitmap).
pub const MAX_REPLAY_WINDOW: u32 = 4032;

fn encr(e: wire::EncrAlg) -> Result<EncAlg, String> {
    let icv = |b: u8| match b {
        8 => Ok(GcmIcv::B8),
        12 => Ok(GcmIcv::B12),
        16 => Ok(GcmIcv::B16),
        other => Err(format!("AES-GCM ICV of {other} bytes (RFC 4106 allows 8, 12 or 16)")),
    };
    Ok(match e {
        wire::EncrAlg::Null => EncAlg::Null,
        wire::EncrAlg::TripleDesCbc => EncAlg::TripleDesCbc,
        wire::EncrAlg::AesCbc { key_bits: 128 } => EncAlg::AesCbc128,
        wire::EncrAlg::AesCbc { key_bits: 192 } => EncAlg::AesCbc192,
        wire::EncrAlg::AesCbc { key_bits: 256 } => EncAlg::AesCbc256,
        wire::EncrAlg::AesCtr { key_bits: 128 } => EncAlg::AesCtr128,
        wire::EncrAlg::AesCtr { key_bits: 192 } => EncAlg::AesCtr192,
        wire::EncrAlg::AesCtr { key_bits: 256 } => EncAlg::AesCtr256,
        wire::EncrAlg::AesGcm { key_bits: 128, icv_bytes } => EncAlg::AesGcm128(icv(icv_bytes)?),
        wire::EncrAlg::AesGcm { key_bits: 256, icv_bytes } => EncAlg::AesGcm256(icv(icv_bytes)?),
        wire::EncrAlg::AesCbc { key_bits } | wire::EncrAlg::AesCtr { key_bits } | wire::EncrAlg::AesGcm { key_bits, .. } => {
            return Err(format!("AES key of {key_bits} bits"))
        }
    })
}

fn integ(i: wire::IntegAlg) -> IntegAlg {
    match i {
        wire::IntegAlg::None => IntegAlg::None,
        wire::IntegAlg::HmacMd5_96 => IntegAlg::HmacMd5_96,
        wire::IntegAlg::HmacSha1_96 => IntegAlg::HmacSha1_96,
        wire::IntegAlg::HmacSha256_128 => IntegAlg::HmacSha256_128,
        wire::IntegAlg::HmacSha384_192 => IntegAlg::HmacSha384_192,
        wire::IntegAlg::HmacSha512_256 => IntegAlg::HmacSha512_256,
    }
}

fn limit(v: u64) -> u64 {
    if v == 0 {
        u64::MAX
    } else {
        v
    }
}

/// Checks shared by ESP and AH requests: name, SPI, addresses, replay window, lifetimes.
fn check_common(spec: &SaSpec) -> Result<(), String> {
    if spec.conn.is_empty() || spec.conn.len() > MAX_CONN_NAME || spec.conn.chars().any(char::is_control) {
        return Err(format!("connection name must be 1 to {MAX_CONN_NAME} printable characters"));
    }
    if spec.spi < 256 {
        return Err(format!("SPI {:#x} is reserved (RFC 4303: 1-255 reserved, 0 never sent)", spec.spi));
    }
    if spec.src.is_ipv4() != spec.dst.is_ipv4() {
        return Err("source and destination are of different address families".into());
    }
    if spec.src.is_unspecified() || spec.dst.is_unspecified() || spec.dst.is_multicast() {
        return Err("SA endpoints must be unicast addresses".into());
    }
    if spec.replay_window > MAX_REPLAY_WINDOW {
        return Err(format!("replay window {} exceeds {MAX_REPLAY_WINDOW}", spec.replay_window));
    }
    let lt = &spec.lifetime;
    for (what, soft, hard) in [("bytes", lt.soft_bytes, lt.hard_bytes), ("packets", lt.soft_packets, lt.hard_packets), ("seconds", lt.soft_secs, lt.hard_secs)] {
        if soft != 0 && hard != 0 && soft > hard {
            return Err(format!("soft lifetime in {what} ({soft}) exceeds the hard one ({hard})"));
        }
    }
    Ok(())
}

/// Check an ESP SA request and build the codec's configuration from it.
pub fn esp_config(spec: &SaSpec) -> Result<SaConfig, String> {
    if spec.proto != wire::IpsecProto::Esp {
        return Err("not an ESP SA".into());
    }
    check_common(spec)?;
    if let Some(e) = spec.encap {
        if e.src_port == 0 || e.dst_port == 0 {
            return Err("UDP encapsulation with port 0".into());
        }
    }
    let enc = encr(spec.encr)?;
    let int = integ(spec.integ);
    // RFC 4303 permits confidentiality-only ESP; it is open to cut-and-paste attacks, so fwd never
    // installs it.
    if !enc.is_aead() && int == IntegAlg::None {
        return Err("encryption without integrity is refused".into());
    }
    let suite = SuiteSpec::new(enc, int).map_err(|_| {
        if enc.is_aead() {
            "AES-GCM carries its own integrity: no separate integrity algorithm".to_string()
        } else {
            "encryption without integrity is refused".to_string()
        }
    })?;
    if spec.enc_key.len() != enc.key_len() {
        return Err(format!(
            "{:?} needs {} bytes of key material{}, got {}",
            spec.encr,
            enc.key_len(),
            if matches!(enc, EncAlg::AesCtr128 | EncAlg::AesCtr192 | EncAlg::AesCtr256) || enc.is_aead() {
                " (key followed by the 4-byte nonce)"
            } else {
                ""
            },
            spec.enc_key.len()
        ));
    }
    if spec.auth_key.len() != int.key_len() {
        return Err(format!("{:?} needs a {}-byte key, got {}", spec.integ, int.key_len(), spec.auth_key.len()));
    }
    let lt = &spec.lifetime;
    Ok(SaConfig {
        spi: spec.spi,
        spec: suite,
        enc_key: Zeroizing::new(spec.enc_key.expose().to_vec()),
        auth_key: Zeroizing::new(spec.auth_key.expose().to_vec()),
        esn: spec.esn,
        mode: match spec.mode {
            SaMode::Tunnel => Mode::Tunnel,
            SaMode::Transport => Mode::Transport,
        },
        lifetime: Lifetime {
            soft_bytes: limit(lt.soft_bytes),
            hard_bytes: limit(lt.hard_bytes),
            soft_packets: limit(lt.soft_packets),
            hard_packets: limit(lt.hard_packets),
        },
    })
}

/// Validate and build an ESP SA ready for the datapath (replay window as requested; 0 = off).
pub fn build_esp(spec: &SaSpec) -> Result<esp::EspSa, String> {
    let cfg = esp_config(spec)?;
    let mut sa = esp::EspSa::new(&cfg).map_err(|e| format!("the ESP codec refused the SA: {e:?}"))?;
    sa.set_replay_window(spec.replay_window);
    Ok(sa)
}

/// Check an AH SA request (RFC 4302): an HMAC integrity algorithm and its key, no encryption, no
/// UDP encapsulation (AH protects the outer addresses, which NAT rewrites).
pub fn ah_check(spec: &SaSpec) -> Result<IntegAlg, String> {
    if spec.proto != wire::IpsecProto::Ah {
        return Err("not an AH SA".into());
    }
    check_common(spec)?;
    if spec.encap.is_some() {
        return Err("AH cannot be UDP-encapsulated (NAT rewrites the addresses it protects)".into());
    }
    if spec.encr != wire::EncrAlg::Null || !spec.enc_key.is_empty() {
        return Err("AH has no encryption: encryption algorithm must be null with no key".into());
    }
    let int = integ(spec.integ);
    if int == IntegAlg::None {
        return Err("AH needs an integrity algorithm".into());
    }
    if spec.auth_key.len() != int.key_len() {
        return Err(format!("{:?} needs a {}-byte key, got {}", spec.integ, int.key_len(), spec.auth_key.len()));
    }
    Ok(int)
}

/// Validate and build an AH SA ready for the datapath (replay window as requested; 0 = off).
pub fn build_ah(spec: &SaSpec) -> Result<esp::ah::AhSa, String> {
    let int = ah_check(spec)?;
    let mut sa = esp::ah::AhSa::new(spec.spi, int, spec.auth_key.expose(), spec.esn)
        .map_err(|e| format!("the AH codec refused the SA: {e:?}"))?;
    sa.set_replay_window(spec.replay_window);
    Ok(sa)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use ipc::sa::*;

    fn good() -> SaSpec {
        SaSpec {
            conn: "west-east".into(),
            direction: Direction::Out,
            proto: IpsecProto::Esp,
            spi: 0x1000,
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            mode: SaMode::Tunnel,
            encap: None,
            encr: ipc::sa::EncrAlg::AesCbc { key_bits: 128 },
            enc_key: SecretBytes::new(vec![1; 16]),
            integ: ipc::sa::IntegAlg::HmacSha1_96,
            auth_key: SecretBytes::new(vec![2; 20]),
            esn: false,
            replay_window: 64,
            lifetime: SaLifetime::default(),
        }
    }

    fn refused(f: impl FnOnce(&mut SaSpec)) -> String {
        let mut s = good();
        f(&mut s);
        esp_config(&s).expect_err("must be refused")
    }

    #[test]
    fn a_good_request_builds_an_sa_that_round_trips() {
        let spec = good();
        let mut out = build_esp(&spec).unwrap();
        let mut inn = build_esp(&spec).unwrap();
        let mut buf = vec![0u8; 256];
        let payload = out.headroom()..out.headroom() + 40;
        // A minimal IPv4 header so tunnel mode accepts it.
        buf[payload.start] = 0x45;
        buf[payload.start + 2..payload.start + 4].copy_from_slice(&40u16.to_be_bytes());
        let r = out.seal(&mut buf, payload.clone(), esp::NH_IPV4).unwrap();
        let opened = inn.open(&mut buf[r]).unwrap();
        assert_eq!(opened.payload.len(), 40);
    }

    #[test]
    fn every_bad_field_is_named() {
        assert!(refused(|s| s.spi = 7).contains("reserved"));
        assert!(refused(|s| s.enc_key = SecretBytes::new(vec![0; 15])).contains("needs 16 bytes"));
        assert!(refused(|s| s.auth_key = SecretBytes::new(vec![0; 5])).contains("20-byte key"));
        assert!(refused(|s| s.encr = ipc::sa::EncrAlg::AesCbc { key_bits: 100 }).contains("100 bits"));
        assert!(refused(|s| s.encr = ipc::sa::EncrAlg::AesGcm { key_bits: 128, icv_bytes: 4 }).contains("ICV of 4"));
        assert!(refused(|s| s.integ = ipc::sa::IntegAlg::None).contains("without integrity"));
        assert!(refused(|s| {
            s.encr = ipc::sa::EncrAlg::AesGcm { key_bits: 128, icv_bytes: 16 };
            s.enc_key = SecretBytes::new(vec![0; 20]);
        })
        .contains("own integrity"));
        assert!(refused(|s| s.dst = "2001:db8::1".parse().unwrap()).contains("address families"));
        assert!(refused(|s| s.dst = "224.0.0.1".parse().unwrap()).contains("unicast"));
        assert!(refused(|s| s.replay_window = 1 << 20).contains("replay window"));
        assert!(refused(|s| s.conn = "x".repeat(500)).contains("connection name"));
        assert!(refused(|s| s.conn = "a\nb".into()).contains("connection name"));
        assert!(refused(|s| s.proto = IpsecProto::Ah).contains("not an ESP"));
        assert!(refused(|s| s.encap = Some(UdpEncap { src_port: 0, dst_port: 4500 })).contains("port 0"));
        assert!(refused(|s| s.lifetime = SaLifetime { soft_bytes: 10, hard_bytes: 5, ..Default::default() }).contains("soft lifetime"));
    }

    #[test]
    fn ah_requests() {
        let mut s = good();
        s.proto = IpsecProto::Ah;
        s.encr = ipc::sa::EncrAlg::Null;
        s.enc_key = SecretBytes::new(vec![]);
        assert!(build_ah(&s).is_ok());
        assert!(esp_config(&s).unwrap_err().contains("not an ESP"));
        let bad = |f: &dyn Fn(&mut SaSpec)| {
            let mut t = s.clone();
            f(&mut t);
            build_ah(&t).expect_err("must be refused")
        };
        assert!(bad(&|t| t.integ = ipc::sa::IntegAlg::None).contains("integrity"));
        assert!(bad(&|t| t.enc_key = SecretBytes::new(vec![1; 16])).contains("no encryption"));
        assert!(bad(&|t| t.encap = Some(UdpEncap { src_port: 4500, dst_port: 4500 })).contains("UDP"));
        assert!(bad(&|t| t.auth_key = SecretBytes::new(vec![1; 3])).contains("20-byte key"));
        assert!(bad(&|t| t.spi = 1).contains("reserved"));
        assert!(bad(&|t| t.proto = IpsecProto::Esp).contains("not an AH"));
    }

    #[test]
    fn ctr_and_gcm_need_the_nonce_after_the_key() {
        let e = refused(|s| {
            s.encr = ipc::sa::EncrAlg::AesCtr { key_bits: 128 };
            s.enc_key = SecretBytes::new(vec![0; 16]);
        });
        assert!(e.contains("needs 20 bytes") && e.contains("4-byte nonce"), "{e}");
    }

    #[test]
    fn keys_never_show_in_debug() {
        let s = good();
        let d = format!("{s:?}");
        assert!(d.contains("<redacted 16 bytes>") && !d.contains("[1, 1,"), "{d}");
    }
}
