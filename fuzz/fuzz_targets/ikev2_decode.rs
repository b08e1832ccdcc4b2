//! IKEv2 decoder on arbitrary bytes, plus SK opening with fixed keys
//! (AES-CBC + HMAC-SHA2-256-128 and AES-GCM-16): must never panic.
#![no_main]

use ikerd::msgs::ikev2::sk::{Encr, Integ, SkKeys};
use ikerd::msgs::ikev2::{decode_payload_chain, Message, PayloadType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let again = Message::decode(&m.encode());
        assert_eq!(again.as_ref().ok(), Some(&m));
        if m.encrypted().is_some() {
            if let Ok(k) = SkKeys::new(Encr::AesCbc, Integ::HmacSha256_128, &[7; 16], &[9; 32]) {
                let _ = k.open(data);
                let _ = k.open_unverified(data);
            }
            if let Ok(k) = SkKeys::new(Encr::AesGcm16, Integ::None, &[7; 36], &[]) {
                let _ = k.open(data);
            }
        }
    }
    if let Some((first, rest)) = data.split_first() {
        let _ = decode_payload_chain(PayloadType(*first), rest, true);
    }
});
