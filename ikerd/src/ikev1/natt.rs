//! NAT traversal (RFC 3947, and draft-ietf-ipsec-nat-t-ike-02 as strongSwan also speaks it) and
//! the vendor IDs of Main Mode's first two messages (NAT-T, DPD).

use crate::crypto::prf::Prf;
use crate::msgs::isakmp::vendor::{VID_DPD, VID_NAT_T_DRAFT_02N, VID_NAT_T_RFC3947};
use crate::msgs::isakmp::{EncapsulationMode, NatDPayload, Payload, VendorPayload};
use ipc::ike::Endpoint;
use ipc::sa::SaMode;
use std::net::IpAddr;

/// MD5("draft-ietf-ipsec-nat-t-ike-02"), without the newline.
pub const VID_NAT_T_DRAFT_02: [u8; 16] = [
    0xcd, 0x60, 0x46, 0x43, 0x35, 0xdf, 0x21, 0xf8, 0x7c, 0xfd, 0xb2, 0xfc, 0x68, 0xb6, 0xa4, 0x48,
];

/// Which NAT-T dialect the peers agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NattVersion {
    /// RFC 3947: NAT-D is payload 20, NAT-OA 21, UDP encapsulation modes 3 and 4.
    Rfc3947,
    /// draft-02: payloads 130/131, modes 61443/61444.
    Draft02,
}

/// What the peer's vendor IDs told us.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerVids {
    pub natt: Option<NattVersion>,
    pub dpd: bool,
}

/// The vendor IDs we send in MI1 (all we speak).
pub fn initiator_vids() -> Vec<Payload> {
    [
        &VID_NAT_T_RFC3947[..],
        &VID_NAT_T_DRAFT_02N[..],
        &VID_NAT_T_DRAFT_02[..],
        &VID_DPD[..],
    ]
    .iter()
    .map(|v| Payload::Vendor(VendorPayload { data: v.to_vec() }))
    .collect()
}

/// The vendor IDs a responder sends in MR1: the NAT-T dialect it picked, and DPD.
pub fn responder_vids(natt: Option<NattVersion>) -> Vec<Payload> {
    let mut v = Vec::new();
    match natt {
        Some(NattVersion::Rfc3947) => v.push(VID_NAT_T_RFC3947.to_vec()),
        Some(NattVersion::Draft02) => v.push(VID_NAT_T_DRAFT_02N.to_vec()),
        None => {}
    }
    v.push(VID_DPD.to_vec());
    v.into_iter()
        .map(|data| Payload::Vendor(VendorPayload { data }))
        .collect()
}

/// Read the peer's vendor IDs: the best NAT-T dialect it offers, and DPD.
pub fn scan_vids<'a>(payloads: impl Iterator<Item = &'a Payload>) -> PeerVids {
    let mut out = PeerVids::default();
    for p in payloads {
        if let Payload::Vendor(v) = p {
            let d = v.data.as_slice();
            if d == VID_NAT_T_RFC3947 {
                out.natt = Some(NattVersion::Rfc3947);
            } else if (d == VID_NAT_T_DRAFT_02N || d == VID_NAT_T_DRAFT_02) && out.natt.is_none() {
                out.natt = Some(NattVersion::Draft02);
            } else if d == VID_DPD {
                out.dpd = true;
            }
        }
    }
    out
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// HASH(CKY-I | CKY-R | IP | Port) with the negotiated hash (RFC 3947 §3.2).
pub fn natd_hash(prf: Prf, icookie: &[u8; 8], rcookie: &[u8; 8], ep: Endpoint) -> Vec<u8> {
    prf.hash(&[icookie, rcookie, &ip_bytes(ep.ip), &ep.port.to_be_bytes()])
}

/// A NAT-D payload in the agreed dialect.
pub fn natd_payload(v: NattVersion, hash: Vec<u8>) -> Payload {
    Payload::NatD {
        draft: v == NattVersion::Draft02,
        payload: NatDPayload { data: hash },
    }
}

/// NAT detection from the NAT-D payloads a peer sent: the first is the hash of the destination
/// (us, as the peer addressed us), the others of the sender's source. Returns (we are behind a
/// NAT, the peer is behind a NAT).
pub fn detect(
    prf: Prf,
    icookie: &[u8; 8],
    rcookie: &[u8; 8],
    natds: &[&[u8]],
    local: Endpoint,
    remote: Endpoint,
) -> (bool, bool) {
    let ours = natd_hash(prf, icookie, rcookie, local);
    let theirs = natd_hash(prf, icookie, rcookie, remote);
    let local_nat = natds.first().is_none_or(|h| *h != ours.as_slice());
    let remote_nat = !natds.iter().skip(1).any(|h| *h == theirs.as_slice());
    (local_nat, remote_nat)
}

/// The encapsulation mode attribute value for `mode`.
pub fn encap_mode(natt: Option<NattVersion>, mode: SaMode) -> EncapsulationMode {
    match (natt, mode) {
        (None, SaMode::Tunnel) => EncapsulationMode::TUNNEL,
        (None, SaMode::Transport) => EncapsulationMode::TRANSPORT,
        (Some(NattVersion::Rfc3947), SaMode::Tunnel) => EncapsulationMode::UDP_TUNNEL,
        (Some(NattVersion::Rfc3947), SaMode::Transport) => EncapsulationMode::UDP_TRANSPORT,
        (Some(NattVersion::Draft02), SaMode::Tunnel) => EncapsulationMode::UDP_TUNNEL_DRAFT,
        (Some(NattVersion::Draft02), SaMode::Transport) => EncapsulationMode::UDP_TRANSPORT_DRAFT,
    }
}

/// The mode and whether UDP encapsulation is asked for, from an encapsulation mode value.
pub fn parse_encap_mode(v: u16) -> Option<(SaMode, bool)> {
    match EncapsulationMode(v) {
        EncapsulationMode::TUNNEL => Some((SaMode::Tunnel, false)),
        EncapsulationMode::TRANSPORT => Some((SaMode::Transport, false)),
        EncapsulationMode::UDP_TUNNEL | EncapsulationMode::UDP_TUNNEL_DRAFT => {
            Some((SaMode::Tunnel, true))
        }
        EncapsulationMode::UDP_TRANSPORT | EncapsulationMode::UDP_TRANSPORT_DRAFT => {
            Some((SaMode::Transport, true))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use ipc::ike::PrfAlg;

    #[test]
    fn vendor_ids_are_the_md5_of_their_names() {
        let md5 = Prf(PrfAlg::HmacMd5);
        assert_eq!(md5.hash(&[b"RFC 3947"]), VID_NAT_T_RFC3947);
        assert_eq!(
            md5.hash(&[b"draft-ietf-ipsec-nat-t-ike-02"]),
            VID_NAT_T_DRAFT_02
        );
        assert_eq!(
            md5.hash(&[b"draft-ietf-ipsec-nat-t-ike-02\n"]),
            VID_NAT_T_DRAFT_02N
        );
        let v = scan_vids(initiator_vids().iter());
        assert_eq!(
            v,
            PeerVids {
                natt: Some(NattVersion::Rfc3947),
                dpd: true
            }
        );
        let v = scan_vids(responder_vids(Some(NattVersion::Draft02)).iter());
        assert_eq!(
            v,
            PeerVids {
                natt: Some(NattVersion::Draft02),
                dpd: true
            }
        );
    }

    #[test]
    fn detection() {
        let prf = Prf(PrfAlg::HmacSha1);
        let (ic, rc) = ([1u8; 8], [2u8; 8]);
        let a = Endpoint::new("192.0.2.1".parse().unwrap(), 500);
        let b = Endpoint::new("192.0.2.2".parse().unwrap(), 500);
        // b sends: hash(dest = a), hash(src = b)
        let h = [natd_hash(prf, &ic, &rc, a), natd_hash(prf, &ic, &rc, b)];
        let hs: Vec<&[u8]> = h.iter().map(|x| x.as_slice()).collect();
        assert_eq!(detect(prf, &ic, &rc, &hs, a, b), (false, false));
        // b is behind a NAT: a sees it as 203.0.113.9:1024
        let seen = Endpoint::new("203.0.113.9".parse().unwrap(), 1024);
        assert_eq!(detect(prf, &ic, &rc, &hs, a, seen), (false, true));
        // a is behind a NAT: b addressed a's public side
        let a_private = Endpoint::new("10.0.0.1".parse().unwrap(), 500);
        assert_eq!(detect(prf, &ic, &rc, &hs, a_private, b), (true, false));
        assert_eq!(detect(prf, &ic, &rc, &[], a, b), (true, true));
    }
}
