//! NAT discovery hash (RFC 3947 §3.2).

crate::opaque_payload! {
    /// NAT discovery hash (RFC 3947 §3.2).
    NatDPayload
}
