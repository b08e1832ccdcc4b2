//! Property tests: the loader never panics, and every error is `file:line: message`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use confd::conf;
use proptest::prelude::*;

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("conn a".to_string()),
        Just("conn b".to_string()),
        Just("conn %default".to_string()),
        Just("config setup".to_string()),
        Just("include x.conf".to_string()),
        Just("\talso=a".to_string()),
        Just("\talso=b".to_string()),
        Just("\tleft=192.0.2.1".to_string()),
        Just("\tright=%any".to_string()),
        Just("\tauto=add".to_string()),
        "\t[a-z]{1,12}=[ -~]{0,20}",
        "[ -~]{0,30}",
    ]
}

proptest! {
    #[test]
    fn loader_never_panics(lines in proptest::collection::vec(line(), 0..30)) {
        let text = lines.join("\n");
        match conf::load_str("/etc/ipsec.conf", &text) {
            Ok((cfg, _)) => {
                let _ = conf::render_checkconfig(&cfg);
            }
            Err(errs) => {
                prop_assert!(!errs.is_empty());
                for e in errs {
                    let s = e.to_string();
                    prop_assert!(s.starts_with(&format!("{}:{}: ", e.file, e.line)), "{}", s);
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let fs = conf::MemFs::new().with("/etc/ipsec.conf", bytes);
        let _ = conf::load_with(&fs, std::path::Path::new("/etc/ipsec.conf"));
    }
}
