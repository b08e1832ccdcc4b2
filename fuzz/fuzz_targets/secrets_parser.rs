//! Feeds bytes to the ipsec.secrets loader (in memory, no permission
//! checks). A NUL byte splits the input into the main file and a second
//! file `/fuzz/b.secrets` that the main one may include. Also feeds the
//! text to the RFC 3110 key parser. Nothing may panic.
#![no_main]

use std::path::Path;

use keyd::secrets::{load_secrets, IdSelector, MemorySource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (main, other) = match data.iter().position(|&b| b == 0) {
        Some(split) => (&data[..split], &data[split + 1..]),
        None => (data, &[][..]),
    };
    let source = MemorySource::new()
        .with("/fuzz/ipsec.secrets", main)
        .with("/fuzz/b.secrets", other);
    if let Ok(secrets) = load_secrets(&source, Path::new("/fuzz/ipsec.secrets")) {
        let _ = secrets.psk_count() + secrets.rsa_count();
        for entry in secrets.psk_entries() {
            for local in &entry.ids {
                for remote in &entry.ids {
                    let _ = secrets.lookup_psk(local, remote);
                }
            }
        }
        let _ = secrets.lookup_psk(&IdSelector::AnyV4, &IdSelector::AnyV6);
        for entry in secrets.rsa_entries() {
            let _ = entry.key.public_key().to_rfc3110_base64();
        }
    }
    if let Ok(text) = std::str::from_utf8(main) {
        let _ = keyfmt::parse_rsasigkey(text);
        let _ = keyfmt::parse_rsa_block(text);
    }
});
