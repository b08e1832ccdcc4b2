//! Fuzz the ipsec.conf language: bytes become an in-memory configuration. The input is split on
//! a 0xff byte into a main file, an included file and a policy group file, so `include`,
//! `also=` and group parsing are reached too. Nothing may panic.
#![no_main]

use confd::conf::{self, MemFs};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let main = parts.next().unwrap_or(&[]);
    let included = parts.next().unwrap_or(&[]);
    let group = parts.next().unwrap_or(&[]);
    let fs = MemFs::new()
        .with("/etc/ipsec.conf", main.to_vec())
        .with("/etc/ipsec.d/a.conf", included.to_vec())
        .with("/etc/ipsec.d/policies/private", group.to_vec());
    if let Ok((cfg, _warnings)) = conf::load_with(&fs, Path::new("/etc/ipsec.conf")) {
        let _ = conf::render_checkconfig(&cfg);
        let _ = conf::diff(&cfg, &cfg);
        for c in &cfg.conns {
            let _ = conf::orient(c, &["192.0.2.1".parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))]);
        }
    }
});
