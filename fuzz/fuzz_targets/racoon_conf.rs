//! Fuzz `ipsecctl import racoon`: the input is split on a 0xff byte into racoon.conf, psk.txt and a
//! setkey script (its policies); the parsers and the converter must never panic.
#![no_main]

use confd::racoon::convert;
use confd::setkey::parser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let conf = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
    let psk = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
    let spd = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
    let policies = match parser::parse(&spd, "fuzz.setkey") {
        Ok(stmts) => convert::policies_from_setkey(&stmts, "fuzz.setkey").0,
        Err(_) => Vec::new(),
    };
    let _ = convert::import_racoon(&conf, "racoon.conf", &psk, "psk.txt", &policies, "fuzz.setkey");
});
