//! Property test: the loader returns Ok or a located error on any input,
//! never panics; inputs are drawn from the grammar's own pieces so that
//! they get deep into the parser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use keyd::secrets::{parse_secrets_bytes, IdSelector};
use proptest::prelude::*;

const PIECES: &[&str] = &[
    "@east",
    "@west",
    "%any",
    "%any6",
    "0.0.0.0",
    "::",
    "192.0.2.1",
    "2001:db8::1",
    "u@x.org",
    "@#0a0b",
    "\"C=CA, CN=x\"",
    ":",
    "192.0.2.2:",
    "PSK",
    "psk",
    "RSA",
    "XAUTH",
    "PIN",
    "PPKS",
    "\"secret\"",
    "'s p'",
    "\"",
    "'",
    "0x0102",
    "0x1",
    "0sAQID",
    "0s!",
    "0t",
    "{",
    "}",
    "Modulus:",
    "PublicExponent:",
    "Prime1:",
    "0x03",
    "include",
    "*.secrets",
    "/etc/x",
    "#",
    "# c",
    "\n",
    "\n",
    "\n\t",
    "\n ",
    " ",
    "\t",
    "\r\n",
    "é",
    "\u{0}",
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|pieces| {
        let mut out = String::new();
        for piece in pieces {
            out.push_str(piece);
            out.push(' ');
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn grammar_pieces_never_panic(input in text()) {
        match parse_secrets_bytes(Path::new("/p"), input.as_bytes()) {
            Ok(secrets) => {
                let any = IdSelector::AnyV4;
                let _ = secrets.lookup_psk(&any, &any);
            }
            Err(error) => prop_assert!(error.to_string().starts_with("/p")),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_secrets_bytes(Path::new("/p"), &input);
        if let Ok(text) = std::str::from_utf8(&input) {
            let _ = keyfmt::parse_rsasigkey(text);
            let _ = keyfmt::parse_rsa_block(text);
        }
    }
}
