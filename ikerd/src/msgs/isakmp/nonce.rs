//! Nonce data (RFC 2408 §3.13).

crate::opaque_payload! {
    /// Nonce data (RFC 2408 §3.13).
    NoncePayload
}
