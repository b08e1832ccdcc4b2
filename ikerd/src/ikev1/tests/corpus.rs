//! Every UDP 500/4500 datagram of the shared corpus's captures (tcpdump's, libreswan's, scapy's,
//! packetgen's: real IKE from other implementations, and malformed packets that crashed other
//! parsers) fed to a responder engine and to an established pair: no panic, no disturbance.

use super::harness::*;
use ipc::ike::*;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    std::env::var("FERROSWAN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
}

fn u32_at(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(x)
    } else {
        u32::from_be_bytes(x)
    })
}

/// Frames of a pcap or pcapng file (link layer left in place).
fn frames(b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    match b.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1])
        | Some([0x4d, 0x3c, 0xb2, 0xa1])
        | Some([0xa1, 0xb2, 0xc3, 0xd4])
        | Some([0xa1, 0xb2, 0x3c, 0x4d]) => {
            let le = b[0] != 0xa1;
            let mut at = 24;
            while let Some(n) = u32_at(b, at + 8, le) {
                let Some(f) = b.get(at + 16..at + 16 + n as usize) else {
                    break;
                };
                out.push(f.to_vec());
                at += 16 + n as usize;
            }
        }
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => {
            let le = b.get(8..12) == Some(&[0x4d, 0x3c, 0x2b, 0x1a]);
            let mut at = 0;
            while let (Some(ty), Some(len)) = (u32_at(b, at, le), u32_at(b, at + 4, le)) {
                if len < 12 {
                    break;
                }
                if ty == 6 {
                    if let Some(n) = u32_at(b, at + 20, le) {
                        if let Some(f) = b.get(at + 28..at + 28 + n as usize) {
                            out.push(f.to_vec());
                        }
                    }
                }
                at += len as usize;
            }
        }
        _ => {}
    }
    out
}

/// UDP payloads to or from 500/4500 in a frame, whatever the link layer (tries the usual
/// offsets of raw IP, Ethernet, Linux cooked and BSD loopback).
fn udp_payloads(f: &[u8]) -> Option<(u16, Vec<u8>)> {
    for off in [0usize, 14, 16, 4, 18] {
        let Some(ip) = f.get(off..) else { continue };
        let (proto, l4) = match ip.first().map(|v| v >> 4) {
            Some(4) => {
                let ihl = usize::from(ip[0] & 15) * 4;
                (*ip.get(9)?, ip.get(ihl..)?)
            }
            Some(6) => (*ip.get(6)?, ip.get(40..)?),
            _ => continue,
        };
        if proto != 17 || l4.len() < 8 {
            continue;
        }
        let (s, d) = (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        );
        if [500, 4500].contains(&s) || [500, 4500].contains(&d) {
            let port = if [500, 4500].contains(&d) { d } else { s };
            let mut p = l4[8..].to_vec();
            if port == 4500 {
                match crate::msgs::strip_non_esp_marker(&p) {
                    Some(m) => p = m.to_vec(),
                    None => continue,
                }
            }
            return Some((port, p));
        }
    }
    None
}

#[test]
fn every_captured_ike_datagram_is_handled_without_panic() {
    let mut files = Vec::new();
    for d in ["tcpdump-captures", "other-captures"] {
        if let Ok(rd) = std::fs::read_dir(corpus().join(d)) {
            files.extend(rd.flatten().map(|e| e.path()).filter(|p| {
                let n = p.to_string_lossy();
                n.ends_with(".pcap") || n.ends_with(".pcapng")
            }));
        }
    }
    if files.is_empty() {
        eprintln!("corpus captures not present; skipping");
        return;
    }
    files.sort();
    // A permissive responder: any peer, every suite IKEv1 has.
    let mut any = conn(
        "any",
        end(
            Some("192.0.2.2"),
            IkeId::Fqdn("east".into()),
            &["10.0.2.0/24"],
        ),
        end(None, IkeId::Any, &[]),
    );
    any.auth = AuthMethod::PskOrRsaSig;
    any.remote.rsasigkeys = vec![pubkey_string(rsa_key(0))];
    any.ike = vec![];
    for encr in [
        IkeEncr::TripleDesCbc,
        IkeEncr::AesCbc { key_bits: 128 },
        IkeEncr::AesCbc { key_bits: 256 },
    ] {
        for prf in [PrfAlg::HmacMd5, PrfAlg::HmacSha1, PrfAlg::HmacSha2_256] {
            for dh in [
                DhGroup::Modp768,
                DhGroup::Modp1024,
                DhGroup::Modp1536,
                DhGroup::Modp2048,
            ] {
                any.ike.push(ike_p(encr, prf, dh));
            }
        }
    }
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let (w, e) = west_east();
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e, any], now);
    p.up("west-east");
    let before = p.b.last_install("west-east").unwrap().clone();
    let mut fed = 0;
    let mut answered = 0;
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        for frame in frames(&bytes) {
            let Some((port, d)) = udp_payloads(&frame) else {
                continue;
            };
            for (i, peer) in ["192.0.2.1", "198.51.100.7"].iter().enumerate() {
                let before_n = p.b.eng.status(p.now).ike_sas.len();
                p.b.eng.receive(
                    Endpoint::new(ip("192.0.2.2"), port),
                    Endpoint::new(ip(peer), 500 + i as u16),
                    &d,
                    now,
                );
                if p.b.eng.status(p.now).ike_sas.len() > before_n {
                    answered += 1;
                }
                fed += 1;
            }
            while let Some(a) = p.b.eng.poll_action() {
                if let crate::actions::Action::Install(st) = a {
                    panic!("a captured datagram changed fwd state: {st:?}");
                }
            }
        }
    }
    assert!(fed > 100, "only {fed} datagrams found");
    assert!(answered > 0, "no captured Main Mode I1 was answered");
    let st = p.b.eng.status(p.now);
    assert!(st
        .ike_sas
        .iter()
        .any(|s| s.established && s.conn == "west-east"));
    assert!(st.child_sas.iter().any(|c| c.established));
    p.run();
    assert_eq!(p.b.last_install("west-east").unwrap(), &before);
    eprintln!("{fed} datagrams fed, {answered} Main Mode I1 answered");
}
