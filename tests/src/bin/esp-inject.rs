//! Test helper: take a real ESP packet out of a capture and send forged copies of it from a raw
//! socket, as an attacker on the WAN would. Run inside the sender's namespace.
//!
//! `esp-inject --pcap FILE --src A --dst B --variant replay|truncate|flip|spi --count N`
//! picks the last IPv4 ESP packet from A to B in FILE (Ethernet link type) and sends N copies of the
//! variant: `replay` (unchanged), `truncate` (cut in half), `flip` (one bit flipped in the middle),
//! `spi` (SPI changed to one nobody installed). `truncate` and `flip` copies carry fresh sequence
//! numbers (above anything sent), so the receiver's replay check passes and its length and ICV
//! checks are what must catch them. Prints how many it sent.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use ferroswan_tests::arg;

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The ESP payload (outer IPv4 header removed) of the last ESP packet src -> dst.
fn last_esp(pcap: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Option<Vec<u8>> {
    if u32_le(pcap, 0)? != 0xa1b2_c3d4 || u32_le(pcap, 20)? != 1 {
        return None; // only little-endian microsecond pcap with Ethernet frames
    }
    let mut at = 24;
    let mut found = None;
    while let Some(len) = u32_le(pcap, at + 8) {
        let frame = pcap.get(at + 16..at + 16 + len as usize)?;
        at += 16 + len as usize;
        let ip = frame.get(14..)?;
        if frame.get(12..14)? != [0x08, 0x00] || ip.first()? >> 4 != 4 || *ip.get(9)? != 50 {
            continue;
        }
        let ihl = usize::from(ip.first()? & 0x0f) * 4;
        let s = Ipv4Addr::new(*ip.get(12)?, *ip.get(13)?, *ip.get(14)?, *ip.get(15)?);
        let d = Ipv4Addr::new(*ip.get(16)?, *ip.get(17)?, *ip.get(18)?, *ip.get(19)?);
        let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
        if s == src && d == dst {
            found = Some(ip.get(ihl..total)?.to_vec());
        }
    }
    found
}

fn run() -> Result<String, String> {
    let args: Vec<String> = std::env::args().collect();
    let pcap = std::fs::read(arg(&args, "--pcap")?).map_err(|e| format!("pcap: {e}"))?;
    let src: Ipv4Addr = arg(&args, "--src")?
        .parse()
        .map_err(|e| format!("--src: {e}"))?;
    let dst: Ipv4Addr = arg(&args, "--dst")?
        .parse()
        .map_err(|e| format!("--dst: {e}"))?;
    let count: u32 = arg(&args, "--count")?
        .parse()
        .map_err(|e| format!("--count: {e}"))?;
    let mut esp =
        last_esp(&pcap, src, dst).ok_or("no ESP packet from src to dst in the capture")?;
    match arg(&args, "--variant")?.as_str() {
        "replay" => {}
        "truncate" => esp.truncate(esp.len() / 2),
        "flip" => {
            let mid = esp.len() / 2;
            if let Some(b) = esp.get_mut(mid) {
                *b ^= 0x10;
            }
        }
        "spi" => {
            if let Some(b) = esp.get_mut(0..4) {
                b.copy_from_slice(&0x0bad_0bad_u32.to_be_bytes());
            }
        }
        other => return Err(format!("unknown variant {other}")),
    }
    // SAFETY: plain socket(2) call; the fd is owned by the OwnedFd below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ESP) };
    if fd < 0 {
        return Err(format!("raw socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let bind = nix::sys::socket::SockaddrIn::from(SocketAddrV4::new(src, 0));
    nix::sys::socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &bind)
        .map_err(|e| format!("bind: {e}"))?;
    let to = nix::sys::socket::SockaddrIn::from(match SocketAddr::from((dst, 0)) {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => return Err("IPv4 only".into()),
    });
    let fresh = matches!(arg(&args, "--variant")?.as_str(), "truncate" | "flip");
    let mut sent = 0;
    for i in 0..count {
        if fresh {
            if let Some(b) = esp.get_mut(4..8) {
                b.copy_from_slice(&(0x4000_0000_u32 + i).to_be_bytes());
            }
        }
        nix::sys::socket::sendto(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &esp,
            &to,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(|e| format!("sendto: {e}"))?;
        sent += 1;
    }
    Ok(format!("{sent}"))
}

fn main() {
    match run() {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("esp-inject: {e}");
            std::process::exit(1);
        }
    }
}
