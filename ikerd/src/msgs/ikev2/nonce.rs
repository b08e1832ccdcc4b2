//! Nonce payload (RFC 7296 §3.9).

crate::opaque_payload! {
    /// Nonce payload (RFC 7296 §3.9).
    NoncePayload
}
