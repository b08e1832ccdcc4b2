//! IPv4 / IPv6 / UDP-encapsulation header helpers for building the outer
//! header around an ESP/AH packet and checking inner packets. In place, no
//! allocation, never panics on input.

use super::error::{EspError, Result};

/// IP protocol number of ESP.
pub const PROTO_ESP: u8 = 50;
/// IP protocol number of AH.
pub const PROTO_AH: u8 = 51;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IPv4 header length without options.
pub const IPV4_HDR_LEN: usize = 20;
/// IPv6 fixed header length.
pub const IPV6_HDR_LEN: usize = 40;
/// UDP header length.
pub const UDP_HDR_LEN: usize = 8;
/// NAT-T port (RFC 3948).
pub const NAT_T_PORT: u16 = 4500;

/// Ones'-complement sum of `data` folded into 16 bits, starting at `init`
/// (not inverted).
pub fn ones_sum(data: &[u8], init: u32) -> u16 {
    let mut sum = u64::from(init);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let [a, b] = c {
            sum += u64::from(u16::from_be_bytes([*a, *b]));
        }
    }
    if let [a] = chunks.remainder() {
        sum += u64::from(*a) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    !ones_sum(data, 0)
}

/// IP version nibble of a packet.
pub fn version(pkt: &[u8]) -> Option<u8> {
    pkt.first().map(|b| b >> 4)
}

/// Total length an IP packet claims (IPv4 total length, IPv6 40 + payload
/// length), checked against the header minimum. `None` if not IPv4/IPv6 or
/// too short.
pub fn packet_len(pkt: &[u8]) -> Option<usize> {
    match version(pkt)? {
        4 => {
            let ihl = usize::from(pkt.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*pkt.get(2)?, *pkt.get(3)?]));
            (ihl >= IPV4_HDR_LEN && total >= ihl && pkt.len() >= ihl).then_some(total)
        }
        6 => {
            let pl = usize::from(u16::from_be_bytes([*pkt.get(4)?, *pkt.get(5)?]));
            (pkt.len() >= IPV6_HDR_LEN).then_some(IPV6_HDR_LEN + pl)
        }
        _ => None,
    }
}

/// Fields of an IPv4 header without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// DSCP/ECN.
    pub tos: u8,
    /// Total length.
    pub total_len: u16,
    /// Identification.
    pub id: u16,
    /// Flags (3 bits) and fragment offset.
    pub flags_frag: u16,
    /// Time to live.
    pub ttl: u8,
    /// Protocol.
    pub protocol: u8,
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
}

impl Ipv4Header {
    /// Write the 20-byte header with its checksum into `out[..20]`.
    pub fn write(&self, out: &mut [u8]) -> Result<()> {
        let h = out.get_mut(..IPV4_HDR_LEN).ok_or(EspError::NoRoom)?;
        let id = self.id.to_be_bytes();
        let len = self.total_len.to_be_bytes();
        let ff = self.flags_frag.to_be_bytes();
        let [s0, s1, s2, s3] = self.src;
        let [d0, d1, d2, d3] = self.dst;
        let bytes = [
            0x45,
            self.tos,
            len[0],
            len[1],
            id[0],
            id[1],
            ff[0],
            ff[1],
            self.ttl,
            self.protocol,
            0,
            0,
            s0,
            s1,
            s2,
            s3,
            d0,
            d1,
            d2,
            d3,
        ];
        h.copy_from_slice(&bytes);
        let c = checksum(h).to_be_bytes();
        if let Some(cs) = h.get_mut(10..12) {
            cs.copy_from_slice(&c);
        }
        Ok(())
    }

    /// Parse an IPv4 header; returns it and the header length (with options).
    /// Checks version, IHL and the header checksum.
    pub fn parse(pkt: &[u8]) -> Result<(Self, usize)> {
        let first = *pkt.first().ok_or(EspError::Truncated)?;
        if first >> 4 != 4 {
            return Err(EspError::BadInner);
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < IPV4_HDR_LEN {
            return Err(EspError::BadInner);
        }
        let h = pkt.get(..ihl).ok_or(EspError::Truncated)?;
        if checksum(h) != 0 {
            return Err(EspError::BadInner);
        }
        let b: &[u8; 20] = h
            .get(..20)
            .and_then(|s| s.try_into().ok())
            .ok_or(EspError::Truncated)?;
        let [_, tos, l0, l1, i0, i1, f0, f1, ttl, protocol, _, _, s0, s1, s2, s3, d0, d1, d2, d3] =
            *b;
        Ok((
            Self {
                tos,
                total_len: u16::from_be_bytes([l0, l1]),
                id: u16::from_be_bytes([i0, i1]),
                flags_frag: u16::from_be_bytes([f0, f1]),
                ttl,
                protocol,
                src: [s0, s1, s2, s3],
                dst: [d0, d1, d2, d3],
            },
            ihl,
        ))
    }
}

/// Fields of an IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Header {
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Payload length.
    pub payload_len: u16,
    /// Next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
}

impl Ipv6Header {
    /// Write the 40-byte header into `out[..40]`.
    pub fn write(&self, out: &mut [u8]) -> Result<()> {
        let h = out.get_mut(..IPV6_HDR_LEN).ok_or(EspError::NoRoom)?;
        let w0 =
            (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff);
        let (a, rest) = h.split_at_mut(4);
        a.copy_from_slice(&w0.to_be_bytes());
        let (b, rest) = rest.split_at_mut(4);
        let pl = self.payload_len.to_be_bytes();
        b.copy_from_slice(&[pl[0], pl[1], self.next_header, self.hop_limit]);
        let (s, d) = rest.split_at_mut(16);
        s.copy_from_slice(&self.src);
        d.copy_from_slice(&self.dst);
        Ok(())
    }

    /// Parse the fixed header.
    pub fn parse(pkt: &[u8]) -> Result<Self> {
        let h: &[u8; 40] = pkt
            .get(..IPV6_HDR_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(EspError::Truncated)?;
        let (w0, rest) = h.split_first_chunk::<4>().ok_or(EspError::Truncated)?;
        let w0 = u32::from_be_bytes(*w0);
        if w0 >> 28 != 6 {
            return Err(EspError::BadInner);
        }
        let (b, rest) = rest.split_first_chunk::<4>().ok_or(EspError::Truncated)?;
        let (src, rest) = rest.split_first_chunk::<16>().ok_or(EspError::Truncated)?;
        let dst: [u8; 16] = rest.try_into().map_err(|_| EspError::Truncated)?;
        Ok(Self {
            traffic_class: (w0 >> 20) as u8,
            flow_label: w0 & 0x000f_ffff,
            payload_len: u16::from_be_bytes([b[0], b[1]]),
            next_header: b[2],
            hop_limit: b[3],
            src: *src,
            dst,
        })
    }
}

/// Write a UDP header for ESP-in-UDP (RFC 3948 §2.1: checksum 0 over IPv4).
pub fn write_udp_encap(out: &mut [u8], src_port: u16, dst_port: u16, udp_len: u16) -> Result<()> {
    let h = out.get_mut(..UDP_HDR_LEN).ok_or(EspError::NoRoom)?;
    let s = src_port.to_be_bytes();
    let d = dst_port.to_be_bytes();
    let l = udp_len.to_be_bytes();
    h.copy_from_slice(&[s[0], s[1], d[0], d[1], l[0], l[1], 0, 0]);
    Ok(())
}

/// Outer header to put in front of a sealed ESP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outer {
    /// IPv4, protocol 50 (or 17 with `udp`).
    V4 {
        /// Source address.
        src: [u8; 4],
        /// Destination address.
        dst: [u8; 4],
        /// TTL.
        ttl: u8,
        /// Identification.
        id: u16,
        /// NAT-T ports (RFC 3948): ESP in UDP when set.
        udp: Option<(u16, u16)>,
    },
    /// IPv6, next header 50 (or 17 with `udp`; the UDP checksum is then left
    /// 0, which RFC 6935/6936 allow only for tunnels that opt in — prefer
    /// plain ESP over IPv6).
    V6 {
        /// Source address.
        src: [u8; 16],
        /// Destination address.
        dst: [u8; 16],
        /// Hop limit.
        hop_limit: u8,
        /// NAT-T ports.
        udp: Option<(u16, u16)>,
    },
}

impl Outer {
    /// Header bytes this outer header takes.
    pub fn len(&self) -> usize {
        match self {
            Outer::V4 { udp, .. } => IPV4_HDR_LEN + if udp.is_some() { UDP_HDR_LEN } else { 0 },
            Outer::V6 { udp, .. } => IPV6_HDR_LEN + if udp.is_some() { UDP_HDR_LEN } else { 0 },
        }
    }

    /// Always false: an outer header is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Write the header(s) into the bytes just in front of `buf[esp]` and
    /// return the range of the whole outer packet. In place, no copy of the
    /// ESP packet.
    pub fn prepend(&self, buf: &mut [u8], esp: core::ops::Range<usize>) -> Result<core::ops::Range<usize>> {
        let start = esp.start.checked_sub(self.len()).ok_or(EspError::NoRoom)?;
        let total = esp.end.checked_sub(start).ok_or(EspError::NoRoom)?;
        if esp.end > buf.len() {
            return Err(EspError::NoRoom);
        }
        let hdr = buf.get_mut(start..esp.start).ok_or(EspError::NoRoom)?;
        let (udp, ip_len) = match self {
            Outer::V4 { udp, .. } => (udp, IPV4_HDR_LEN),
            Outer::V6 { udp, .. } => (udp, IPV6_HDR_LEN),
        };
        let (ip_hdr, udp_hdr) = hdr.split_at_mut(ip_len);
        let proto = if let Some((sp, dp)) = udp {
            let ulen = u16::try_from(total - ip_len).map_err(|_| EspError::NoRoom)?;
            write_udp_encap(udp_hdr, *sp, *dp, ulen)?;
            PROTO_UDP
        } else {
            PROTO_ESP
        };
        match *self {
            Outer::V4 { src, dst, ttl, id, .. } => Ipv4Header {
                tos: 0,
                total_len: u16::try_from(total).map_err(|_| EspError::NoRoom)?,
                id,
                flags_frag: 0,
                ttl,
                protocol: proto,
                src,
                dst,
            }
            .write(ip_hdr)?,
            Outer::V6 { src, dst, hop_limit, .. } => Ipv6Header {
                traffic_class: 0,
                flow_label: 0,
                payload_len: u16::try_from(total - IPV6_HDR_LEN).map_err(|_| EspError::NoRoom)?,
                next_header: proto,
                hop_limit,
                src,
                dst,
            }
            .write(ip_hdr)?,
        }
        Ok(start..esp.end)
    }
}

/// What a UDP/4500 payload is (RFC 3948 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatTKind {
    /// One 0xFF byte: NAT keepalive.
    Keepalive,
    /// Non-ESP marker (4 zero bytes): IKE follows at offset 4.
    Ike,
    /// ESP packet (non-zero SPI).
    Esp,
    /// Too short to be anything.
    Invalid,
}

/// Classify a UDP/4500 payload.
pub fn classify_nat_t(udp_payload: &[u8]) -> NatTKind {
    match udp_payload {
        [0xff] => NatTKind::Keepalive,
        [0, 0, 0, 0, ..] => NatTKind::Ike,
        [_, _, _, _, _, _, _, _, ..] => NatTKind::Esp,
        _ => NatTKind::Invalid,
    }
}

/// Does an IPv4 header carry a valid checksum? (false if not IPv4 or short)
pub fn ipv4_checksum_ok(pkt: &[u8]) -> bool {
    Ipv4Header::parse(pkt).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn v4_roundtrip() {
        let h = Ipv4Header {
            tos: 0,
            total_len: 84,
            id: 0x08f2,
            flags_frag: 0,
            ttl: 64,
            protocol: 1,
            src: [192, 168, 123, 3],
            dst: [192, 168, 123, 100],
        };
        let mut b = [0u8; 20];
        h.write(&mut b).unwrap();
        // RFC 3602 case 5 inner header: 45000054 08f20000 4001f9fe c0a87b03 c0a87b64
        assert_eq!(&b[10..12], &[0xf9, 0xfe]);
        assert_eq!(Ipv4Header::parse(&b).unwrap(), (h, 20));
        b[3] ^= 1;
        assert!(Ipv4Header::parse(&b).is_err());
    }

    #[test]
    fn v6_roundtrip() {
        let h = Ipv6Header {
            traffic_class: 0x12,
            flow_label: 0xabcde,
            payload_len: 100,
            next_header: 50,
            hop_limit: 64,
            src: [1; 16],
            dst: [2; 16],
        };
        let mut b = [0u8; 40];
        h.write(&mut b).unwrap();
        assert_eq!(Ipv6Header::parse(&b).unwrap(), h);
        assert_eq!(packet_len(&b), Some(140));
    }

    #[test]
    fn prepend_outer() {
        let mut buf = [0u8; 100];
        let esp = 40..90;
        let o = Outer::V4 { src: [1, 2, 3, 4], dst: [5, 6, 7, 8], ttl: 64, id: 9, udp: Some((4500, 4500)) };
        let r = o.prepend(&mut buf, esp.clone()).unwrap();
        assert_eq!(r, 12..90);
        let (h, hl) = Ipv4Header::parse(&buf[r.clone()]).unwrap();
        assert_eq!((h.protocol, h.total_len, hl), (PROTO_UDP, 78, 20));
        assert_eq!(&buf[32..40], &[0x11, 0x94, 0x11, 0x94, 0, 58, 0, 0]);
        let o6 = Outer::V6 { src: [1; 16], dst: [2; 16], hop_limit: 9, udp: None };
        assert_eq!(o6.prepend(&mut buf, esp.clone()), Ok(0..90));
        assert_eq!(Ipv6Header::parse(&buf).unwrap().payload_len, 50);
        assert_eq!(o6.prepend(&mut buf, 39..90), Err(EspError::NoRoom));
    }

    #[test]
    fn nat_t() {
        assert_eq!(classify_nat_t(&[0xff]), NatTKind::Keepalive);
        assert_eq!(classify_nat_t(&[0, 0, 0, 0, 1]), NatTKind::Ike);
        assert_eq!(classify_nat_t(&[0, 0, 1, 0, 0, 0, 0, 1]), NatTKind::Esp);
        assert_eq!(classify_nat_t(&[1, 2]), NatTKind::Invalid);
    }
}
