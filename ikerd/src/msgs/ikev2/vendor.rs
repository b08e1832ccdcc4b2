//! Vendor ID payload (RFC 7296 §3.12).

crate::opaque_payload! {
    /// Vendor ID payload (RFC 7296 §3.12).
    VendorPayload
}
