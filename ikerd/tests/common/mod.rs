//! Tiny pcap / pcapng reader and UDP extraction for the corpus tests.
#![allow(
    dead_code,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::{Path, PathBuf};

pub const CORPUS: &str = "/work/shared/corpus";

/// One UDP datagram carrying IKE.
#[derive(Debug, Clone)]
pub struct IkeDatagram {
    /// Frame index in the capture (0-based).
    pub frame: usize,
    pub sport: u16,
    pub dport: u16,
    /// The IKE message (non-ESP marker stripped for port 4500).
    pub data: Vec<u8>,
}

fn rd16(b: &[u8], le: bool) -> u16 {
    let a = [b[0], b[1]];
    if le {
        u16::from_le_bytes(a)
    } else {
        u16::from_be_bytes(a)
    }
}
fn rd32(b: &[u8], le: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    }
}

/// (linktype, frame bytes) for every packet of a pcap or pcapng file.
pub fn read_capture(bytes: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, String> {
    if bytes.len() < 24 {
        return Err("short file".into());
    }
    let magic = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    match magic {
        0xa1b2c3d4 | 0xa1b23c4d => read_pcap(bytes, true),
        0xd4c3b2a1 | 0x4d3cb2a1 => read_pcap(bytes, false),
        0x0a0d0d0a => read_pcapng(bytes),
        m => Err(format!("unknown magic {m:08x}")),
    }
}

fn read_pcap(b: &[u8], le: bool) -> Result<Vec<(u32, Vec<u8>)>, String> {
    let linktype = rd32(&b[20..], le);
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= b.len() {
        let incl = rd32(&b[off + 8..], le) as usize;
        off += 16;
        if off + incl > b.len() {
            break; // truncated capture
        }
        out.push((linktype, b[off..off + incl].to_vec()));
        off += incl;
    }
    Ok(out)
}

fn read_pcapng(b: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut links: Vec<u32> = Vec::new();
    let mut le = true;
    let mut off = 0;
    while off + 12 <= b.len() {
        let mut btype = rd32(&b[off..], le);
        if btype == 0x0a0d0d0a {
            let bom = &b[off + 8..off + 12];
            le = bom == [0x4d, 0x3c, 0x2b, 0x1a];
            btype = 0x0a0d0d0a;
            links.clear();
        }
        let blen = rd32(&b[off + 4..], le) as usize;
        if blen < 12 || off + blen > b.len() {
            break;
        }
        let body = &b[off + 8..off + blen - 4];
        match btype {
            1 => links.push(u32::from(rd16(body, le))),
            6 if body.len() >= 20 => {
                let ifid = rd32(body, le) as usize;
                let cap = rd32(&body[12..], le) as usize;
                if 20 + cap <= body.len() {
                    out.push((
                        links.get(ifid).copied().unwrap_or(1),
                        body[20..20 + cap].to_vec(),
                    ));
                }
            }
            3 if body.len() >= 4 => {
                out.push((links.first().copied().unwrap_or(1), body[4..].to_vec()));
            }
            _ => {}
        }
        off += blen;
    }
    Ok(out)
}

/// Extract the IP packet from a link-layer frame.
fn ip_of(linktype: u32, f: &[u8]) -> Option<&[u8]> {
    match linktype {
        1 => {
            let mut et = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
            let mut off = 14;
            while et == 0x8100 || et == 0x88a8 {
                et = u16::from_be_bytes([*f.get(off + 2)?, *f.get(off + 3)?]);
                off += 4;
            }
            if et == 0x0800 || et == 0x86dd {
                f.get(off..)
            } else {
                None
            }
        }
        113 => f.get(16..),
        276 => f.get(20..),
        101 | 12 | 14 | 228 | 229 => Some(f),
        0 | 108 => f.get(4..),
        _ => None,
    }
}

/// UDP (sport, dport, payload) of an IPv4/IPv6 packet. Non-first fragments
/// are skipped; a first fragment yields its (truncated) payload.
fn udp_of(ip: &[u8]) -> Option<(u16, u16, &[u8])> {
    let v = ip.first()? >> 4;
    let (proto, l4) = match v {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            if frag & 0x1fff != 0 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let end = if total >= ihl && total <= ip.len() {
                total
            } else {
                ip.len()
            };
            (*ip.get(9)?, ip.get(ihl..end)?)
        }
        6 => {
            let plen = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            let end = (40 + plen).min(ip.len());
            (*ip.get(6)?, ip.get(40..end)?)
        }
        _ => return None,
    };
    if proto != 17 || l4.len() < 8 {
        return None;
    }
    let sport = u16::from_be_bytes([l4[0], l4[1]]);
    let dport = u16::from_be_bytes([l4[2], l4[3]]);
    let ulen = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
    let end = if ulen >= 8 && ulen <= l4.len() {
        ulen
    } else {
        l4.len()
    };
    Some((sport, dport, &l4[8..end]))
}

/// Every IKE datagram of a capture file.
pub fn ike_datagrams(path: &Path) -> Result<Vec<IkeDatagram>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (i, (lt, frame)) in read_capture(&bytes)?.into_iter().enumerate() {
        let Some(ip) = ip_of(lt, &frame) else {
            continue;
        };
        let Some((sport, dport, p)) = udp_of(ip) else {
            continue;
        };
        if sport == 500 || dport == 500 {
            out.push(IkeDatagram {
                frame: i,
                sport,
                dport,
                data: p.to_vec(),
            });
        } else if sport == 4500 || dport == 4500 {
            if let Some(m) = ikerd::msgs::strip_non_esp_marker(p) {
                out.push(IkeDatagram {
                    frame: i,
                    sport,
                    dport,
                    data: m.to_vec(),
                });
            }
        }
    }
    Ok(out)
}

/// Every UDP payload to or from port 500 or 4500, unfiltered (ESP-in-UDP,
/// keepalives, truncated fragments): for never-panic checks.
pub fn udp_500_4500_payloads(path: &Path) -> Vec<Vec<u8>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let Ok(frames) = read_capture(&bytes) else {
        return Vec::new();
    };
    frames
        .iter()
        .filter_map(|(lt, f)| {
            let (s, d, p) = udp_of(ip_of(*lt, f)?)?;
            [500, 4500]
                .iter()
                .any(|x| *x == s || *x == d)
                .then(|| p.to_vec())
        })
        .collect()
}

/// Capture files of both corpus capture folders.
pub fn capture_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for d in ["tcpdump-captures", "other-captures"] {
        let Ok(rd) = std::fs::read_dir(Path::new(CORPUS).join(d)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let n = p.to_string_lossy().to_string();
            if n.ends_with(".pcap") || n.ends_with(".pcapng") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

pub fn corpus_file(rel: &str) -> PathBuf {
    Path::new(CORPUS).join(rel)
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim().trim_start_matches("0x");
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}
