//! Fuzz the setkey(8) language end to end: parse, apply to an empty state (with dumps), convert to
//! fwd's state from one host's view, and import as manual conns. Nothing may panic.
#![no_main]

use confd::setkey::{apply, import, parser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(stmts) = parser::parse(text, "fuzz.setkey") else {
        return;
    };
    if let Ok((state, _out)) = apply::apply_with(&apply::SetkeyState::new(), &stmts, "fuzz.setkey", true) {
        let local = [std::net::IpAddr::from([192, 0, 2, 1])];
        let _ = apply::convert(&state, &local, true);
    }
    let _ = import::import_setkey(&stmts, "fuzz.setkey");
});
