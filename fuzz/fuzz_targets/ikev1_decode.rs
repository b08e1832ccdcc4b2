//! ISAKMP/IKEv1 decoder on arbitrary bytes: must never panic or hang, and
//! whatever decodes must re-encode to something that decodes to the same
//! message. Also feeds the bytes as a decrypted (padded) payload chain.
#![no_main]

use ikerd::msgs::isakmp::{decode_payload_chain, Message, PayloadType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let again = Message::decode(&m.encode());
        assert_eq!(again.as_ref().ok(), Some(&m));
    }
    if let Some((first, rest)) = data.split_first() {
        let _ = decode_payload_chain(PayloadType(*first), rest, true);
    }
    let _ = ikerd::msgs::decode_any(data);
});
