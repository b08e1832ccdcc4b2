//! Acceptance 1: every IKE datagram in the corpus captures decodes or
//! fails with an error — never a panic, never a hang.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

mod common;

use ikerd::msgs::{decode_any, AnyMessage};
use std::time::{Duration, Instant};

#[test]
fn corpus_never_panics_and_table() {
    let files = common::capture_files();
    if files.is_empty() {
        eprintln!("corpus not present; skipping");
        return;
    }
    println!("{:<62} {:>5} {:>5} {:>5}  first error", "file", "msgs", "ok", "err");
    let mut total = 0;
    let mut roundtrip_mismatch = Vec::new();
    for f in &files {
        let dgrams = match common::ike_datagrams(f) {
            Ok(d) => d,
            Err(e) => {
                println!("{:<62} capture read error: {e}", f.file_name().unwrap().to_string_lossy());
                continue;
            }
        };
        if dgrams.is_empty() {
            continue;
        }
        let (mut ok, mut err, mut first_err) = (0, 0, String::new());
        for d in &dgrams {
            let data = d.data.clone();
            let start = Instant::now();
            let res = std::panic::catch_unwind(move || decode_any(&data));
            let el = start.elapsed();
            assert!(el < Duration::from_secs(1), "{f:?} frame {} took {el:?}", d.frame);
            match res {
                Err(_) => panic!("decoder panicked on {f:?} frame {}", d.frame),
                Ok(Ok(m)) => {
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
    }
    println!("total IKE datagrams: {total}");
    println!("round-trip mismatches: {roundtrip_mismatch:?}");
    assert!(total > 50, "too few IKE datagrams found: {total}");
    assert!(roundtrip_mismatch.is_empty(), "encode(decode(x)) != x for {roundtrip_mismatch:?}");
}
