//! Test helpers: corpus location, a tiny pcap/pcapng reader, link-layer
//! stripping, ESP location in an outer packet, IP well-formedness checks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use fwd::esp::ip::{self, Ipv4Header};
use fwd::esp::{EncAlg, EspSa, IntegAlg, Lifetime, Mode, SaConfig, SuiteSpec};
use zeroize::Zeroizing;

/// `FERROSWAN_CORPUS`, else `<repo>/../shared/corpus`. `None` (test skips,
/// saying so) when absent.
pub fn corpus() -> Option<PathBuf> {
    let p = std::env::var_os("FERROSWAN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("corpus not found at {} (set FERROSWAN_CORPUS): skipping", p.display());
        None
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// (link type, frame) of every packet in a pcap or pcapng file.
pub fn read_capture(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    if bytes.len() < 24 {
        return vec![];
    }
    let magic = &bytes[..4];
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        return read_pcapng(bytes);
    }
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a capture"),
    };
    let u32_at = |b: &[u8], o: usize| {
        let a: [u8; 4] = b[o..o + 4].try_into().unwrap();
        if le { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) }
    };
    let linktype = u32_at(bytes, 20);
    let mut off = 24;
    let mut out = vec![];
    while off + 16 <= bytes.len() {
        let incl = u32_at(bytes, off + 8) as usize;
        off += 16;
        let end = (off + incl).min(bytes.len());
        out.push((linktype, bytes[off..end].to_vec()));
        off = end;
    }
    out
}

fn read_pcapng(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = vec![];
    let mut links: Vec<u32> = vec![];
    let mut le = true;
    let mut off = 0;
    while off + 12 <= bytes.len() {
        let raw_type: [u8; 4] = bytes[off..off + 4].try_into().unwrap();
        if raw_type == [0x0a, 0x0d, 0x0d, 0x0a] {
            le = bytes[off + 8..off + 12] == [0x4d, 0x3c, 0x2b, 0x1a];
            links.clear();
        }
        let rd = |o: usize| {
            let a: [u8; 4] = bytes[o..o + 4].try_into().unwrap();
            if le { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) }
        };
        let btype = rd(off);
        let blen = rd(off + 4) as usize;
        if blen < 12 || off + blen > bytes.len() {
            break;
        }
        let body = &bytes[off + 8..off + blen - 4];
        match btype {
            1 => {
                let lt = if le { u16::from_le_bytes([body[0], body[1]]) } else { u16::from_be_bytes([body[0], body[1]]) };
                links.push(u32::from(lt));
            }
            6 => {
                let iface = rd(off + 8) as usize;
                let cap = rd(off + 8 + 12) as usize;
                out.push((links.get(iface).copied().unwrap_or(1), body[20..20 + cap].to_vec()));
            }
            3 => {
                let orig = rd(off + 8) as usize;
                let cap = orig.min(body.len() - 4);
                out.push((links.first().copied().unwrap_or(1), body[4..4 + cap].to_vec()));
            }
            _ => {}
        }
        off += blen;
    }
    out
}

/// The IP packet inside a link-layer frame.
pub fn strip_link(linktype: u32, frame: &[u8]) -> Option<&[u8]> {
    match linktype {
        1 => {
            let mut et = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
            let mut off = 14;
            while et == 0x8100 || et == 0x88a8 {
                et = u16::from_be_bytes([*frame.get(off + 2)?, *frame.get(off + 3)?]);
                off += 4;
            }
            matches!(et, 0x0800 | 0x86dd).then(|| frame.get(off..)).flatten()
        }
        0 => frame.get(4..),
        101 | 228 | 229 => Some(frame),
        113 => frame.get(16..),
        _ => None,
    }
}

/// Where the ESP packet starts in an outer IP packet (IPv4/IPv6 protocol 50,
/// or UDP 4500 without the non-ESP marker), and the UDP flag.
pub fn find_esp(pkt: &[u8]) -> Option<(usize, bool)> {
    match ip::version(pkt)? {
        4 => {
            let (h, hl) = Ipv4Header::parse(pkt).ok()?;
            match h.protocol {
                ip::PROTO_ESP => Some((hl, false)),
                ip::PROTO_UDP => {
                    let udp = pkt.get(hl..)?;
                    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
                    let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
                    let payload = udp.get(8..)?;
                    (dport == ip::NAT_T_PORT || sport == ip::NAT_T_PORT)
                        .then_some(())
                        .filter(|_| ip::classify_nat_t(payload) == ip::NatTKind::Esp)
                        .map(|_| (hl + 8, true))
                }
                _ => None,
            }
        }
        6 => (pkt.get(6) == Some(&ip::PROTO_ESP)).then_some((40, false)),
        _ => None,
    }
}

/// The ESP bytes of an outer packet, trimmed to the IP length.
pub fn esp_bytes(ip_pkt: &[u8]) -> Option<Vec<u8>> {
    let len = ip::packet_len(ip_pkt)?.min(ip_pkt.len());
    let (off, _) = find_esp(&ip_pkt[..len])?;
    Some(ip_pkt[off..len].to_vec())
}

fn l4_pseudo_sum(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
    let mut s = 0u32;
    for c in src.chunks(2).chain(dst.chunks(2)) {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    s + u32::from(proto) + len as u32
}

/// Asserts `pkt` is a well-formed IPv4/IPv6 packet: lengths, IPv4 header
/// checksum, and the ICMP/ICMPv6/UDP/TCP checksum. Returns (protocol, L4 range start).
pub fn assert_wellformed_ip(pkt: &[u8]) -> (u8, usize) {
    let len = ip::packet_len(pkt).expect("IP header");
    assert_eq!(len, pkt.len(), "IP length matches");
    match ip::version(pkt).unwrap() {
        4 => {
            let (h, hl) = Ipv4Header::parse(pkt).expect("IPv4 header checksum");
            let l4 = &pkt[hl..];
            match h.protocol {
                1 => assert_eq!(ip::checksum(l4), 0, "ICMP checksum"),
                6 | 17 => {
                    let ck_off = if h.protocol == 6 { 16 } else { 6 };
                    if !(h.protocol == 17 && l4[ck_off..ck_off + 2] == [0, 0]) {
                        let init = l4_pseudo_sum(&h.src, &h.dst, h.protocol, l4.len());
                        assert_eq!(!ip::ones_sum(l4, init), 0, "L4 checksum");
                    }
                }
                _ => {}
            }
            (h.protocol, hl)
        }
        6 => {
            let h = ip::Ipv6Header::parse(pkt).unwrap();
            let l4 = &pkt[40..];
            if matches!(h.next_header, 6 | 17 | 58) {
                let init = l4_pseudo_sum(&h.src, &h.dst, h.next_header, l4.len());
                assert_eq!(!ip::ones_sum(l4, init), 0, "L4 checksum");
            }
            (h.next_header, 40)
        }
        v => panic!("IP version {v}"),
    }
}

pub fn sa(spi: u32, enc: EncAlg, integ: IntegAlg, enc_key: &[u8], auth_key: &[u8], esn: bool, mode: Mode) -> EspSa {
    EspSa::new(&SaConfig {
        spi,
        spec: SuiteSpec::new(enc, integ).unwrap(),
        enc_key: Zeroizing::new(enc_key.to_vec()),
        auth_key: Zeroizing::new(auth_key.to_vec()),
        esn,
        mode,
        lifetime: Lifetime::default(),
    })
    .unwrap()
}
