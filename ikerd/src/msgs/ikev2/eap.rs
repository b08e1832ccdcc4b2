//! EAP payload (RFC 7296 §3.16), the EAP message kept raw.

crate::opaque_payload! {
    /// EAP payload (RFC 7296 §3.16), the EAP message kept raw.
    EapPayload
}
