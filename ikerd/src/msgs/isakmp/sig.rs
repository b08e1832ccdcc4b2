//! Signature data (RFC 2408 §3.12).

crate::opaque_payload! {
    /// Signature data (RFC 2408 §3.12).
    SigPayload
}
