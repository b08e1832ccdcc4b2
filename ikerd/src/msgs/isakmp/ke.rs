//! Key exchange data (RFC 2408 §3.7).

crate::opaque_payload! {
    /// Key exchange data (RFC 2408 §3.7).
    KePayload
}
