//! Acceptance 1: every IKE datagram in the corpus captures decodes or
//! fails with an error — never a panic, never a hang.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

mod common;

use ikerd::msgs::{decode_any, AnyMessage};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn corpus_never_panics_and_table() {
    let files = common::capture_files();
    if files.is_empty() {
        eprintln!("corpus not present; skipping");
        return;
    }
    println!(
        "{:<62} {:>5} {:>5} {:>5}  first error",
        "file", "msgs", "ok", "err"
    );
    let mut total = 0;
    let mut roundtrip_mismatch = Vec::new();
    for f in &files {
        let dgrams = match common::ike_datagrams(f) {
            Ok(d) => d,
            Err(e) => {
                println!(
                    "{:<62} capture read error: {e}",
                    f.file_name().unwrap().to_string_lossy()
                );
                continue;
            }
        };
        if dgrams.is_empty() {
            continue;
        }
        let (mut ok, mut err, mut first_err) = (0, 0, String::new());
        let mut fixed_err = String::new();
        for d in &dgrams {
            // Most malformed captures already fail the header length check;
            // decode again with the length field set to the datagram size so
            // the payload parsers behind it see the hostile bytes too.
            if d.data.len() >= 28 {
                let mut fixed = d.data.clone();
                let n = u32::try_from(fixed.len()).unwrap();
                fixed[24..28].copy_from_slice(&n.to_be_bytes());
                let r = std::panic::catch_unwind(|| decode_any(&fixed));
                match r {
                    Err(_) => panic!("decoder panicked on length-fixed {f:?} frame {}", d.frame),
                    Ok(Err(e)) if fixed_err.is_empty() && fixed != d.data => {
                        fixed_err = e.to_string()
                    }
                    _ => {}
                }
            }
            // Decode on a worker thread under a time bound: a panic or a
            // hang fails the test instead of crashing or stalling it.
            let data = d.data.clone();
            let (tx, rx) = mpsc::channel();
            let start = Instant::now();
            std::thread::spawn(move || {
                let _ = tx.send(decode_any(&data));
            });
            let res = rx.recv_timeout(Duration::from_secs(5));
            let el = start.elapsed();
            match res {
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("decoder hung on {f:?} frame {}", d.frame)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("decoder panicked on {f:?} frame {}", d.frame)
                }
                Ok(Ok(m)) => {
                    assert!(
                        el < Duration::from_secs(1),
                        "{f:?} frame {} took {el:?}",
                        d.frame
                    );
                    ok += 1;
                    if m.encode() != d.data {
                        roundtrip_mismatch.push(format!("{} frame {}", f.display(), d.frame));
                    }
                    let _ = matches!(m, AnyMessage::V1(_));
                }
                Ok(Err(e)) => {
                    err += 1;
                    if first_err.is_empty() {
                        first_err = format!("frame {}: {e}", d.frame);
                    }
                }
            }
        }
        total += dgrams.len();
        println!(
            "{:<62} {:>5} {:>5} {:>5}  {}",
            f.file_name().unwrap().to_string_lossy(),
            dgrams.len(),
            ok,
            err,
            first_err
        );
        if !fixed_err.is_empty() {
            println!(
                "{:<62} {:>5} {:>5} {:>5}  (length field fixed) {}",
                "", "", "", "", fixed_err
            );
        }
    }
    println!("total IKE datagrams: {total}");
    // Everything else on 500/4500 (ESP-in-UDP, keepalives, raw 4500
    // payloads with their marker) must not panic either.
    let mut others = 0;
    for f in &files {
        for p in common::udp_500_4500_payloads(f) {
            let _ = decode_any(&p);
            others += 1;
        }
    }
    println!("all UDP 500/4500 payloads fed raw: {others}");
    println!("round-trip mismatches: {roundtrip_mismatch:?}");
    assert!(total > 50, "too few IKE datagrams found: {total}");
    assert!(
        roundtrip_mismatch.is_empty(),
        "encode(decode(x)) != x for {roundtrip_mismatch:?}"
    );
}
