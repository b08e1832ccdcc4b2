//! Hash data (RFC 2408 §3.11).

crate::opaque_payload! {
    /// Hash data (RFC 2408 §3.11).
    HashPayload
}
