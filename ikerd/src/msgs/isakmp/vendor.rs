//! Vendor ID payload (RFC 2408 §3.16) and well-known vendor IDs.

crate::opaque_payload! {
    /// Vendor ID payload: opaque bytes, usually an MD5 hash.
    VendorPayload
}

/// RFC 3947 NAT-T support: MD5("RFC 3947").
pub const VID_NAT_T_RFC3947: [u8; 16] = [
    0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f,
];
/// draft-ietf-ipsec-nat-t-ike-02\n (widely sent alongside RFC 3947).
pub const VID_NAT_T_DRAFT_02N: [u8; 16] = [
    0x90, 0xcb, 0x80, 0x91, 0x3e, 0xbb, 0x69, 0x6e, 0x08, 0x63, 0x81, 0xb5, 0xec, 0x42, 0x7b, 0x1f,
];
/// RFC 3706 Dead Peer Detection, version 1.0.
pub const VID_DPD: [u8; 16] = [
    0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00,
];

/// Well-known vendor IDs this codec can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownVendor {
    /// RFC 3947 NAT traversal.
    NatTRfc3947,
    /// draft-ietf-ipsec-nat-t-ike-02 with trailing newline.
    NatTDraft02N,
    /// RFC 3706 DPD.
    Dpd,
}

impl VendorPayload {
    /// Recognise a few well-known vendor IDs.
    pub fn known(&self) -> Option<KnownVendor> {
        match self.data.as_slice() {
            d if d == VID_NAT_T_RFC3947 => Some(KnownVendor::NatTRfc3947),
            d if d == VID_NAT_T_DRAFT_02N => Some(KnownVendor::NatTDraft02N),
            d if d == VID_DPD => Some(KnownVendor::Dpd),
            _ => None,
        }
    }
}
