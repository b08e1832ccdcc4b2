//! Test helper: move a deterministic byte stream over TCP and print `<bytes> <sha256>` on each end,
//! so a test can compare what left with what arrived. Both ends stop by themselves after
//! `--timeout-secs`.
//!
//! `tcp-xfer serve --bind ADDR --port P --timeout-secs T`: accept one connection, read to EOF.
//! `tcp-xfer send --to ADDR --port P --bytes N --timeout-secs T`: connect, write N bytes, close.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ferroswan_tests::arg;

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn serve(args: &[String]) -> Result<String, String> {
    let bind: IpAddr = arg(args, "--bind")?
        .parse()
        .map_err(|e| format!("--bind: {e}"))?;
    let port: u16 = arg(args, "--port")?
        .parse()
        .map_err(|e| format!("--port: {e}"))?;
    let timeout = Duration::from_secs(
        arg(args, "--timeout-secs")?
            .parse()
            .map_err(|e| format!("{e}"))?,
    );
    let l = TcpListener::bind(SocketAddr::new(bind, port)).map_err(|e| format!("bind: {e}"))?;
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err("no connection before the timeout".into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    s.set_nonblocking(false).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut h = Sha256::new();
    let mut n: u64 = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if Instant::now() > deadline {
            return Err(format!("timed out after {n} bytes"));
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(buf.get(..k).unwrap_or_default());
                n += k as u64;
            }
            Err(e) => return Err(format!("read after {n} bytes: {e}")),
        }
    }
    Ok(format!("{n} {}", hex(&h.finalize())))
}

fn send(args: &[String]) -> Result<String, String> {
    let to: IpAddr = arg(args, "--to")?
        .parse()
        .map_err(|e| format!("--to: {e}"))?;
    let port: u16 = arg(args, "--port")?
        .parse()
        .map_err(|e| format!("--port: {e}"))?;
    let total: u64 = arg(args, "--bytes")?
        .parse()
        .map_err(|e| format!("--bytes: {e}"))?;
    let timeout = Duration::from_secs(
        arg(args, "--timeout-secs")?
            .parse()
            .map_err(|e| format!("{e}"))?,
    );
    let mut s = TcpStream::connect_timeout(&SocketAddr::new(to, port), Duration::from_secs(10))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut h = Sha256::new();
    // Deterministic, non-repeating-per-block content (xorshift), so reordering or corruption shows.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 16];
    let mut left = total;
    while left > 0 {
        if Instant::now() > deadline {
            return Err(format!("timed out with {left} bytes left"));
        }
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            let k = chunk.len();
            chunk.copy_from_slice(b.get(..k).unwrap_or_default());
        }
        let k = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let part = buf.get(..k).unwrap_or_default();
        s.write_all(part)
            .map_err(|e| format!("write with {left} bytes left: {e}"))?;
        h.update(part);
        left -= k as u64;
    }
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    // Wait for the receiver to close, so the caller's timing covers delivery.
    let mut sink = [0u8; 16];
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.read(&mut sink);
    Ok(format!("{total} {}", hex(&h.finalize())))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let r = match args.get(1).map(String::as_str) {
        Some("serve") => serve(&args),
        Some("send") => send(&args),
        _ => Err("usage: tcp-xfer serve|send ...".into()),
    };
    match r {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("tcp-xfer: {e}");
            std::process::exit(1);
        }
    }
}
