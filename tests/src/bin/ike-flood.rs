#![allow(clippy::indexing_slicing)]
//! Test helper: a bounded flood of hostile IKE datagrams at a gateway, as an attacker on the WAN
//! would send them. Run inside the sender's namespace.
//!
//! `ike-flood --pcap FILE --dst ADDR --count N --seconds S`
//! takes every IKE message (UDP port 500, or 4500 with the non-ESP marker) in FILE (little-endian
//! microsecond pcap, Ethernet, IPv4) and sends, round-robin, until N datagrams or S seconds: each
//! message replayed unchanged, with one bit flipped, cut short, with random cookies, and random
//! junk — to ADDR port 500, and the 4500 ones with the marker to port 4500. Prints how many it sent.

use ferroswan_tests::arg;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// (destination port, UDP payload) of every IKE datagram in the capture.
fn ike_messages(pcap: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    if u32_le(pcap, 0) != Some(0xa1b2_c3d4) || u32_le(pcap, 20) != Some(1) {
        return out;
    }
    let mut at = 24;
    while let Some(len) = u32_le(pcap, at + 8) {
        let Some(frame) = pcap.get(at + 16..at + 16 + len as usize) else {
            break;
        };
        at += 16 + len as usize;
        let Some(ip) = frame.get(14..) else { continue };
        if frame.get(12..14) != Some(&[0x08, 0x00][..]) || ip.get(9) != Some(&17) {
            continue;
        }
        let ihl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f) * 4;
        let Some(udp) = ip.get(ihl..) else { continue };
        let (Some(dport), Some(ulen)) = (
            udp.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]])),
            udp.get(4..6)
                .map(|p| usize::from(u16::from_be_bytes([p[0], p[1]]))),
        ) else {
            continue;
        };
        let Some(payload) = udp.get(8..ulen) else {
            continue;
        };
        match dport {
            500 if payload.len() >= 28 => out.push((500, payload.to_vec())),
            4500 if payload.len() >= 32 && payload.starts_with(&[0, 0, 0, 0]) => {
                out.push((4500, payload.to_vec()))
            }
            _ => {}
        }
    }
    out
}

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    type Parsed = (Vec<(u16, Vec<u8>)>, Ipv4Addr, u64, u64);
    let parse = || -> Result<Parsed, String> {
        let pcap = std::fs::read(arg(&args, "--pcap")?).map_err(|e| e.to_string())?;
        let dst: Ipv4Addr = arg(&args, "--dst")?
            .parse()
            .map_err(|e| format!("--dst: {e}"))?;
        let count: u64 = arg(&args, "--count")?
            .parse()
            .map_err(|e| format!("--count: {e}"))?;
        let secs: u64 = arg(&args, "--seconds")?
            .parse()
            .map_err(|e| format!("--seconds: {e}"))?;
        Ok((ike_messages(&pcap), dst, count, secs))
    };
    let (msgs, dst, count, secs) = match parse() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ike-flood: {e}");
            std::process::exit(2);
        }
    };
    if msgs.is_empty() {
        eprintln!("ike-flood: no IKE messages in the capture");
        std::process::exit(1);
    }
    let sock = match UdpSocket::bind("0.0.0.0:0") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ike-flood: {e}");
            std::process::exit(1);
        }
    };
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut sent = 0u64;
    let mut i = 0usize;
    while sent < count && Instant::now() < deadline {
        let (port, orig) = &msgs[i % msgs.len()];
        let mut m = orig.clone();
        // skip the marker when mutating a 4500 message
        let base = if *port == 4500 { 4 } else { 0 };
        match (i / msgs.len()) % 5 {
            0 => {}
            1 => {
                let at = base + noise.below(m.len() - base);
                m[at] ^= 1 << noise.below(8);
            }
            2 => m.truncate(base + noise.below(m.len() - base)),
            3 => {
                for b in &mut m[base..base + 16] {
                    *b = noise.next() as u8;
                }
            }
            _ => {
                for b in &mut m[base..] {
                    *b = noise.next() as u8;
                }
            }
        }
        if sock.send_to(&m, SocketAddrV4::new(dst, *port)).is_ok() {
            sent += 1;
        }
        i += 1;
        if sent.is_multiple_of(64) {
            // paced a little: the point is hostile content, not a bandwidth test
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    println!("{sent}");
}
