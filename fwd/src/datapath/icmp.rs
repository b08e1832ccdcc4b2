//! ICMP errors for the inner sender, built in place in front of the offending packet (which
//! becomes the quoted part), to be written back into the TUN device: "administratively
//! prohibited" for reject policies, "fragmentation needed" / "packet too big" for PMTU.
//!
//! Never about an ICMP error, a non-first fragment, or a packet from an unspecified, multicast or
//! broadcast source or to a multicast/broadcast destination (RFC 1812 §4.3.2.7, RFC 4443 §2.4).
//! The error's source address is the original destination, so the kernel's reverse-path check on
//! the TUN device (which routes that destination) accepts it.

use crate::esp::ip::{self, Ipv4Header, Ipv6Header, IPV4_HDR_LEN, IPV6_HDR_LEN};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// ICMP header length.
pub const ICMP_HDR_LEN: usize = 8;
/// Largest ICMPv4 error (RFC 1812 §4.3.2.3: no more than 576 bytes).
pub const MAX_ICMP4: usize = 576;
/// Largest ICMPv6 error (RFC 4443 §2.4(c): no more than the minimum MTU).
pub const MAX_ICMP6: usize = 1280;
/// IPv6 minimum MTU.
pub const IPV6_MIN_MTU: usize = 1280;
/// IPv4 minimum MTU.
pub const IPV4_MIN_MTU: usize = 68;
/// ICMP protocol numbers.
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_ICMPV6: u8 = 58;

/// Which error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// v4 type 3 code 13; v6 type 1 code 1.
    AdminProhibited,
    /// v4 type 3 code 4 with the next-hop MTU; v6 type 2 (packet too big) with the MTU.
    TooBig { mtu: u32 },
}

fn v4_error_type(t: u8) -> bool {
    // destination unreachable, source quench, redirect, time exceeded, parameter problem
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// Build the error answering `buf[pkt]` (an IPv4 or IPv6 packet) in place: the headers go into
/// the bytes before `pkt.start` (at most 48 are needed), the quoted original stays where it is.
/// `None` when no error may be sent about this packet (or the buffer lacks room).
pub fn build(buf: &mut [u8], pkt: Range<usize>, kind: IcmpError) -> Option<Range<usize>> {
    let data = buf.get(pkt.clone())?;
    match ip::version(data)? {
        4 => build_v4(buf, pkt, kind),
        6 => build_v6(buf, pkt, kind),
        _ => None,
    }
}

fn bad_v4_src(a: Ipv4Addr) -> bool {
    a.is_unspecified() || a.is_multicast() || a.is_broadcast()
}

fn build_v4(buf: &mut [u8], pkt: Range<usize>, kind: IcmpError) -> Option<Range<usize>> {
    let data = buf.get(pkt.clone())?;
    let (h, ihl) = Ipv4Header::parse(data).ok()?;
    let (src, dst) = (Ipv4Addr::from(h.src), Ipv4Addr::from(h.dst));
    if h.flags_frag & 0x1fff != 0 || bad_v4_src(src) || dst.is_multicast() || dst.is_broadcast() {
        return None;
    }
    if h.protocol == PROTO_ICMP && v4_error_type(*data.get(ihl)?) {
        return None;
    }
    let quote = data.len().min(MAX_ICMP4 - IPV4_HDR_LEN - ICMP_HDR_LEN);
    let start = pkt.start.checked_sub(IPV4_HDR_LEN + ICMP_HDR_LEN)?;
    let end = pkt.start + quote;
    let (typ, code, rest) = match kind {
        IcmpError::AdminProhibited => (3u8, 13u8, [0u8; 4]),
        IcmpError::TooBig { mtu } => {
            let m = u16::try_from(mtu).unwrap_or(u16::MAX).to_be_bytes();
            (3, 4, [0, 0, m[0], m[1]])
        }
    };
    let out = buf.get_mut(start..end)?;
    let (iph, icmp) = out.split_at_mut(IPV4_HDR_LEN);
    Ipv4Header {
        tos: 0xc0,
        total_len: u16::try_from(IPV4_HDR_LEN + ICMP_HDR_LEN + quote).ok()?,
        id: 0,
        flags_frag: 0,
        ttl: 64,
        protocol: PROTO_ICMP,
        src: h.dst,
        dst: h.src,
    }
    .write(iph)
    .ok()?;
    let hdr = icmp.get_mut(..ICMP_HDR_LEN)?;
    hdr.copy_from_slice(&[typ, code, 0, 0, rest[0], rest[1], rest[2], rest[3]]);
    let c = ip::checksum(icmp).to_be_bytes();
    icmp.get_mut(2..4)?.copy_from_slice(&c);
    Some(start..end)
}

fn build_v6(buf: &mut [u8], pkt: Range<usize>, kind: IcmpError) -> Option<Range<usize>> {
    let data = buf.get(pkt.clone())?;
    let h = Ipv6Header::parse(data).ok()?;
    let (src, dst) = (Ipv6Addr::from(h.src), Ipv6Addr::from(h.dst));
    if src.is_unspecified() || src.is_multicast() || dst.is_multicast() {
        return None;
    }
    let flow = crate::spd::Flow::from_ip_packet(data).ok()?;
    if flow.proto == PROTO_ICMPV6 {
        // Only when ICMPv6 follows the fixed header can its type be read here; an error
        // message (type < 128), or one behind extension headers, gets no answer.
        if h.next_header != PROTO_ICMPV6 || *data.get(IPV6_HDR_LEN)? < 128 {
            return None;
        }
    }
    let quote = data.len().min(MAX_ICMP6 - IPV6_HDR_LEN - ICMP_HDR_LEN);
    let start = pkt.start.checked_sub(IPV6_HDR_LEN + ICMP_HDR_LEN)?;
    let end = pkt.start + quote;
    let icmp_len = ICMP_HDR_LEN + quote;
    let (typ, code, rest) = match kind {
        IcmpError::AdminProhibited => (1u8, 1u8, [0u8; 4]),
        IcmpError::TooBig { mtu } => (2, 0, mtu.to_be_bytes()),
    };
    let out = buf.get_mut(start..end)?;
    let (iph, icmp) = out.split_at_mut(IPV6_HDR_LEN);
    Ipv6Header {
        traffic_class: 0,
        flow_label: 0,
        payload_len: u16::try_from(icmp_len).ok()?,
        next_header: PROTO_ICMPV6,
        hop_limit: 64,
        src: h.dst,
        dst: h.src,
    }
    .write(iph)
    .ok()?;
    let hdr = icmp.get_mut(..ICMP_HDR_LEN)?;
    hdr.copy_from_slice(&[typ, code, 0, 0, rest[0], rest[1], rest[2], rest[3]]);
    let c = icmpv6_checksum(&h.dst, &h.src, icmp).to_be_bytes();
    icmp.get_mut(2..4)?.copy_from_slice(&c);
    Some(start..end)
}

/// ICMPv6 checksum (RFC 4443 §2.3) of `msg` (checksum field zero) from `src` to `dst`.
pub fn icmpv6_checksum(src: &[u8; 16], dst: &[u8; 16], msg: &[u8]) -> u16 {
    let mut pseudo = [0u8; 40];
    let (s, rest) = pseudo.split_at_mut(16);
    s.copy_from_slice(src);
    let (d, rest) = rest.split_at_mut(16);
    d.copy_from_slice(dst);
    let len = (msg.len() as u32).to_be_bytes();
    rest.copy_from_slice(&[len[0], len[1], len[2], len[3], 0, 0, 0, PROTO_ICMPV6]);
    !ip::ones_sum(msg, u32::from(ip::ones_sum(&pseudo, 0)))
}
