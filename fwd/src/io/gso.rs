//! TUN offload, sans-IO: the `virtio_net_hdr` the kernel puts in front of every packet read from a
//! TUN device opened with `IFF_VNET_HDR`, and the splitting of a GSO super-packet (one TCP or UDP
//! "packet" of up to 64 KiB that the kernel did not segment) into IP packets of at most the MTU,
//! each a packet the kernel's own segmentation would have produced:
//!
//! - every segment gets the super-packet's IP and L4 headers; IPv4: total length, identification
//!   (the first segment keeps it, each next one adds 1, as Linux's TSO does) and header checksum;
//!   IPv6: payload length;
//! - TCP: sequence number advanced by the payload before the segment; FIN and PSH only on the
//!   last segment, CWR only on the first; UDP (`GSO_UDP_L4`): length;
//! - the TCP/UDP checksum computed over the pseudo-header and the segment from scratch (the value
//!   the kernel left in the field, the partial pseudo-header sum, is not trusted).
//!
//! A packet that is not GSO but has `NEEDS_CSUM` (checksum offload: the kernel left the checksum
//! to the device) gets it completed: the ones'-complement sum from `csum_start` to the end, which
//! includes the partial sum the kernel stored in the field, is stored at `csum_start +
//! csum_offset` (0 becomes 0xffff, as the kernel's `skb_checksum_help` does).
//!
//! Every field comes from the kernel, but is treated as untrusted all the same: a header that
//! does not describe the packet it came with (GSO size 0, `hdr_len` or the checksum position
//! past the end, an IP header that disagrees with the GSO type, a TCP data offset below 20) is a
//! [`GsoError`], never a panic or an out-of-bounds access.
//!
//! The header's integers are in the host's byte order (a TUN device uses the "legacy" virtio
//! byte order, which is native, unless `TUNSETVNETLE`/`TUNSETVNETBE` changed it; fwd does not).
//! The pseudo-header of an IPv6 packet with a routing header uses the header's destination, not
//! the final one (the kernel does not hand fwd such GSO packets from its own stack).

use std::fmt;

/// Size of `struct virtio_net_hdr` (no mergeable-buffer count): what fwd sets with
/// `TUNSETVNETHDRSZ`.
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the L4 checksum is left to the reader.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was already verified (nothing to do).
pub const F_DATA_VALID: u8 = 2;

/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP` (UFO, IP fragmentation: never negotiated by fwd, refused).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4` (USO: UDP datagrams of `gso_size` bytes each).
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN` (or'ed into a TCP type: the super-packet has CWR set).
pub const GSO_ECN: u8 = 0x80;

const IPV4_MIN: usize = 20;
const IPV6_LEN: usize = 40;
const TCP_MIN: usize = 20;
const UDP_LEN: usize = 8;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// `struct virtio_net_hdr`, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Length of the headers (a hint: the kernel puts the length of its linear buffer here,
    /// which may include payload; fwd computes the real header length itself).
    pub hdr_len: u16,
    /// Payload bytes per segment (the MSS for TCP).
    pub gso_size: u16,
    /// Where the checksummed part (the L4 header) starts.
    pub csum_start: u16,
    /// Where in it the checksum field is (16 for TCP, 6 for UDP).
    pub csum_offset: u16,
}

impl VnetHdr {
    /// No offload: the packet is complete, its checksums valid.
    pub const NONE: VnetHdr = VnetHdr {
        flags: 0,
        gso_type: GSO_NONE,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// Decode the header the kernel wrote (host byte order).
    pub fn decode(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let [flags, gso_type, h0, h1, g0, g1, s0, s1, o0, o1] = *b;
        VnetHdr {
            flags,
            gso_type,
            hdr_len: u16::from_ne_bytes([h0, h1]),
            gso_size: u16::from_ne_bytes([g0, g1]),
            csum_start: u16::from_ne_bytes([s0, s1]),
            csum_offset: u16::from_ne_bytes([o0, o1]),
        }
    }

    /// Encode for a write into the device (host byte order).
    pub fn encode(&self) -> [u8; VNET_HDR_LEN] {
        let [h0, h1] = self.hdr_len.to_ne_bytes();
        let [g0, g1] = self.gso_size.to_ne_bytes();
        let [s0, s1] = self.csum_start.to_ne_bytes();
        let [o0, o1] = self.csum_offset.to_ne_bytes();
        [self.flags, self.gso_type, h0, h1, g0, g1, s0, s1, o0, o1]
    }

    /// A GSO super-packet (to be split).
    pub fn is_gso(&self) -> bool {
        self.gso_type != GSO_NONE
    }
}

/// Why a packet and its header cannot be turned into IP packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoError {
    /// A GSO type fwd does not split (UFO, or an unknown value).
    UnsupportedType(u8),
    /// GSO with a segment size of 0.
    ZeroGsoSize,
    /// GSO without `NEEDS_CSUM` (the kernel always sets it; without it the L4 header's position
    /// is not given).
    GsoWithoutCsum,
    /// `hdr_len` lies past the end of the packet.
    HdrLenPastEnd,
    /// `csum_start`, or the checksum field, lies past the end of the packet.
    CsumPastEnd,
    /// The IP header is too short, of the wrong version for the GSO type, carries another
    /// protocol, or does not end where the L4 header starts.
    BadIpHeader,
    /// The TCP/UDP header is truncated, its data offset out of range, or the checksum offset is
    /// not the protocol's.
    BadL4Header,
    /// A segment would exceed 65535 bytes.
    SegmentTooLong,
    /// The output buffer is shorter than the segment.
    OutputTooSmall { need: usize, have: usize },
    /// The packet is not the one the plan was made for, or the segment number is out of range.
    WrongPacket,
}

impl fmt::Display for GsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GsoError::UnsupportedType(t) => write!(f, "unsupported GSO type {t:#04x}"),
            GsoError::ZeroGsoSize => f.write_str("GSO packet with gso_size 0"),
            GsoError::GsoWithoutCsum => f.write_str("GSO packet without NEEDS_CSUM"),
            GsoError::HdrLenPastEnd => f.write_str("hdr_len past the end of the packet"),
            GsoError::CsumPastEnd => f.write_str("checksum start or field past the end"),
            GsoError::BadIpHeader => f.write_str("IP header does not match the offload header"),
            GsoError::BadL4Header => f.write_str("bad TCP/UDP header"),
            GsoError::SegmentTooLong => f.write_str("segment longer than 65535 bytes"),
            GsoError::OutputTooSmall { need, have } => {
                write!(f, "segment of {need} bytes, buffer of {have}")
            }
            GsoError::WrongPacket => f.write_str("packet or segment does not match the plan"),
        }
    }
}

impl std::error::Error for GsoError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L4 {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Complete as it is.
    Copy,
    /// Complete the checksum at `start + offset`.
    Csum { start: usize, offset: usize },
    /// Split.
    Seg {
        l4: L4,
        v6: bool,
        /// Start of the L4 header (the IP header, with IPv6 extension headers, is before it).
        l4_start: usize,
        /// IP + L4 headers: copied in front of every segment's payload.
        hdr_len: usize,
        /// Payload bytes per segment.
        mss: usize,
    },
}

/// How one packet read from the device becomes IP packets: built once by [`Plan::new`] (which
/// checks the header against the packet), then [`Plan::write_segment`] for each segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    kind: Kind,
    len: usize,
    segments: usize,
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *p.get(at)?,
        *p.get(at.checked_add(1)?)?,
    ]))
}

fn put16(p: &mut [u8], at: usize, v: u16) -> Option<()> {
    p.get_mut(at..at.checked_add(2)?)?
        .copy_from_slice(&v.to_be_bytes());
    Some(())
}

fn be32(p: &[u8], at: usize) -> Option<u32> {
    let b = p.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn put32(p: &mut [u8], at: usize, v: u32) -> Option<()> {
    p.get_mut(at..at.checked_add(4)?)?
        .copy_from_slice(&v.to_be_bytes());
    Some(())
}

/// Ones'-complement sum of `data` read as big-endian 16-bit words (an odd last byte padded with
/// zero), folded to 16 bits, not inverted. Summed 32 bits at a time in host order (the sum is
/// byte-order independent, RFC 1071 §2(B)), which the compiler vectorises.
pub fn ones_sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        if let Ok(w) = <[u8; 4]>::try_from(w) {
            acc += u64::from(u32::from_ne_bytes(w));
        }
    }
    let mut last = [0u8; 4];
    for (d, s) in last.iter_mut().zip(words.remainder()) {
        *d = *s;
    }
    acc += u64::from(u32::from_ne_bytes(last));
    u16::from_be(fold(acc))
}

/// Fold a sum of 16-bit words to 16 bits (end-around carry).
fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Add two ones'-complement sums.
fn add(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// The pseudo-header sum (RFC 793 / RFC 8200 §8.1) of the IP packet at `ip` whose L4 part is
/// `l4_len` bytes of protocol `proto`.
fn pseudo_sum(ip: &[u8], v6: bool, proto: u8, l4_len: usize) -> Option<u16> {
    let addrs = if v6 { ip.get(8..40)? } else { ip.get(12..20)? };
    let len = u32::try_from(l4_len).ok()?;
    let s = u64::from(ones_sum(addrs))
        + u64::from(proto)
        + u64::from(len >> 16)
        + u64::from(len & 0xffff);
    Some(fold(s))
}

/// Complete a `NEEDS_CSUM` packet: store the checksum of `pkt[start..]` (whose field at `start +
/// offset` holds the partial pseudo-header sum) at `start + offset`.
pub fn complete_checksum(pkt: &mut [u8], start: usize, offset: usize) -> Result<(), GsoError> {
    let at = start.checked_add(offset).ok_or(GsoError::CsumPastEnd)?;
    if start >= pkt.len() || at.saturating_add(2) > pkt.len() {
        return Err(GsoError::CsumPastEnd);
    }
    let body = pkt.get(start..).ok_or(GsoError::CsumPastEnd)?;
    let c = !ones_sum(body);
    put16(pkt, at, if c == 0 { 0xffff } else { c }).ok_or(GsoError::CsumPastEnd)
}

impl Plan {
    /// Check `hdr` against the packet `pkt` (the bytes after the virtio header) and plan its
    /// segments.
    pub fn new(hdr: &VnetHdr, pkt: &[u8]) -> Result<Plan, GsoError> {
        let len = pkt.len();
        if usize::from(hdr.hdr_len) > len {
            return Err(GsoError::HdrLenPastEnd);
        }
        let needs_csum = hdr.flags & F_NEEDS_CSUM != 0;
        let start = usize::from(hdr.csum_start);
        let offset = usize::from(hdr.csum_offset);
        if needs_csum && (start >= len || start + offset + 2 > len) {
            return Err(GsoError::CsumPastEnd);
        }
        let l4 = match hdr.gso_type & !GSO_ECN {
            GSO_NONE => {
                let kind = if needs_csum {
                    Kind::Csum { start, offset }
                } else {
                    Kind::Copy
                };
                return Ok(Plan {
                    kind,
                    len,
                    segments: 1,
                });
            }
            GSO_TCPV4 | GSO_TCPV6 => L4::Tcp,
            GSO_UDP_L4 => L4::Udp,
            t => return Err(GsoError::UnsupportedType(t)),
        };
        if hdr.gso_size == 0 {
            return Err(GsoError::ZeroGsoSize);
        }
        if !needs_csum {
            return Err(GsoError::GsoWithoutCsum);
        }
        let version = pkt.first().map(|b| b >> 4);
        let v6 = match (hdr.gso_type & !GSO_ECN, version) {
            (GSO_TCPV4, Some(4)) | (GSO_UDP_L4, Some(4)) => false,
            (GSO_TCPV6, Some(6)) | (GSO_UDP_L4, Some(6)) => true,
            _ => return Err(GsoError::BadIpHeader),
        };
        let proto = if l4 == L4::Tcp { 6 } else { 17 };
        if v6 {
            // Extension headers may sit between the fixed header and `csum_start`.
            let next = pkt.get(6).copied();
            if start < IPV6_LEN || (start == IPV6_LEN && next != Some(proto)) {
                return Err(GsoError::BadIpHeader);
            }
        } else {
            let ihl = usize::from(pkt.first().map_or(0, |b| b & 0x0f)) * 4;
            if ihl < IPV4_MIN || ihl != start || pkt.get(9).copied() != Some(proto) {
                return Err(GsoError::BadIpHeader);
            }
            // A fragment cannot be segmented.
            let frag = be16(pkt, 6).ok_or(GsoError::BadIpHeader)?;
            if frag & 0x3fff != 0 {
                return Err(GsoError::BadIpHeader);
            }
        }
        let l4_len = match l4 {
            L4::Tcp => {
                let doff = pkt
                    .get(start + 12)
                    .map(|b| usize::from(b >> 4) * 4)
                    .ok_or(GsoError::BadL4Header)?;
                if doff < TCP_MIN || offset != 16 {
                    return Err(GsoError::BadL4Header);
                }
                doff
            }
            L4::Udp => {
                if offset != 6 {
                    return Err(GsoError::BadL4Header);
                }
                UDP_LEN
            }
        };
        let hdr_len = start + l4_len;
        if hdr_len > len {
            return Err(GsoError::BadL4Header);
        }
        let mss = usize::from(hdr.gso_size);
        if hdr_len + mss > 65535 {
            return Err(GsoError::SegmentTooLong);
        }
        let payload = len - hdr_len;
        let segments = payload.div_ceil(mss).max(1);
        Ok(Plan {
            kind: Kind::Seg {
                l4,
                v6,
                l4_start: start,
                hdr_len,
                mss,
            },
            len,
            segments,
        })
    }

    /// How many IP packets the packet becomes.
    pub fn segments(&self) -> usize {
        self.segments
    }

    /// Whether it is a super-packet to split (rather than one packet, perhaps with its checksum
    /// to complete).
    pub fn is_gso(&self) -> bool {
        matches!(self.kind, Kind::Seg { .. })
    }

    /// Length of segment `i` (0 if out of range).
    pub fn segment_len(&self, i: usize) -> usize {
        if i >= self.segments {
            return 0;
        }
        match self.kind {
            Kind::Seg { hdr_len, mss, .. } => {
                let payload = self.len - hdr_len;
                hdr_len + payload.saturating_sub(i * mss).min(mss)
            }
            _ => self.len,
        }
    }

    /// The longest segment (the first).
    pub fn max_segment_len(&self) -> usize {
        self.segment_len(0)
    }

    /// Write segment `i` of `pkt` (the packet the plan was made for) into `out`; its length.
    pub fn write_segment(&self, pkt: &[u8], i: usize, out: &mut [u8]) -> Result<usize, GsoError> {
        if pkt.len() != self.len || i >= self.segments {
            return Err(GsoError::WrongPacket);
        }
        let n = self.segment_len(i);
        let have = out.len();
        let out = out
            .get_mut(..n)
            .ok_or(GsoError::OutputTooSmall { need: n, have })?;
        match self.kind {
            Kind::Copy => {
                out.copy_from_slice(pkt);
                Ok(n)
            }
            Kind::Csum { start, offset } => {
                out.copy_from_slice(pkt);
                complete_checksum(out, start, offset)?;
                Ok(n)
            }
            Kind::Seg {
                l4,
                v6,
                l4_start,
                hdr_len,
                mss,
            } => {
                let from = hdr_len + i * mss;
                let payload = pkt.get(from..from + (n - hdr_len));
                let (Some(h), Some(payload)) = (pkt.get(..hdr_len), payload) else {
                    return Err(GsoError::WrongPacket);
                };
                let (oh, op) = out.split_at_mut(hdr_len);
                oh.copy_from_slice(h);
                op.copy_from_slice(payload);
                fix_segment(out, i, self.segments, l4, v6, l4_start, mss)
                    .ok_or(GsoError::WrongPacket)?;
                Ok(n)
            }
        }
    }

    /// Every segment of `pkt` in turn, written into `scratch` and handed to `emit`.
    pub fn for_each_segment(
        &self,
        pkt: &[u8],
        scratch: &mut [u8],
        mut emit: impl FnMut(&[u8]),
    ) -> Result<usize, GsoError> {
        for i in 0..self.segments {
            let n = self.write_segment(pkt, i, scratch)?;
            emit(scratch.get(..n).ok_or(GsoError::WrongPacket)?);
        }
        Ok(self.segments)
    }
}

/// Make the copied headers of segment `i` (of `count`) right for `seg`, the whole segment.
fn fix_segment(
    seg: &mut [u8],
    i: usize,
    count: usize,
    l4: L4,
    v6: bool,
    l4_start: usize,
    mss: usize,
) -> Option<()> {
    let total = seg.len();
    let l4_len = total - l4_start;
    if v6 {
        put16(seg, 4, u16::try_from(total - IPV6_LEN).ok()?)?;
    } else {
        put16(seg, 2, u16::try_from(total).ok()?)?;
        let id = be16(seg, 4)?.wrapping_add(i as u16);
        put16(seg, 4, id)?;
        put16(seg, 10, 0)?;
        let c = !ones_sum(seg.get(..l4_start)?);
        put16(seg, 10, c)?;
    }
    let proto = match l4 {
        L4::Tcp => {
            let seq = be32(seg, l4_start + 4)?.wrapping_add((i as u32).wrapping_mul(mss as u32));
            put32(seg, l4_start + 4, seq)?;
            let flags = seg.get_mut(l4_start + 13)?;
            if i + 1 < count {
                *flags &= !(TCP_FIN | TCP_PSH);
            }
            if i > 0 {
                *flags &= !TCP_CWR;
            }
            put16(seg, l4_start + 16, 0)?;
            6
        }
        L4::Udp => {
            put16(seg, l4_start + 4, u16::try_from(l4_len).ok()?)?;
            put16(seg, l4_start + 6, 0)?;
            17
        }
    };
    let pseudo = pseudo_sum(seg, v6, proto, l4_len)?;
    let c = !add(pseudo, ones_sum(seg.get(l4_start..)?));
    let at = if l4 == L4::Tcp { 16 } else { 6 };
    put16(
        seg,
        l4_start + at,
        if c == 0 && l4 == L4::Udp { 0xffff } else { c },
    )
}

// ------------------------------------------------------------------------------------------
// The other direction: coalescing (GRO)
// ------------------------------------------------------------------------------------------

/// Largest super-packet a [`Coalescer`] builds (the IPv4 total length field's limit).
pub const MAX_COALESCED: usize = 65535;

const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;
const TCP_URG: u8 = 0x20;

/// What [`tcp_view`] found in a packet that may be coalesced.
#[derive(Debug, Clone, Copy)]
struct TcpView {
    v6: bool,
    /// IP header length (20 or 40: no IPv4 options, no IPv6 extension headers).
    l3: usize,
    /// IP + TCP header length.
    hdr_len: usize,
    seq: u32,
    flags: u8,
}

/// A packet that can take part in coalescing: IPv4 without options and not a fragment, or IPv6
/// with TCP as the next header; TCP with ACK and without SYN/RST/URG; lengths that agree with the
/// packet; some payload; valid checksums (a packet with a bad one is passed on as it is, for the
/// receiver to drop: coalescing would make the kernel take the new super-packet's checksum as
/// verified).
fn tcp_view(p: &[u8]) -> Option<TcpView> {
    let (v6, l3) = match p.first()? >> 4 {
        4 => {
            if *p.first()? != 0x45
                || p.get(9) != Some(&6)
                || usize::from(be16(p, 2)?) != p.len()
                || be16(p, 6)? & 0x3fff != 0
                || ones_sum(p.get(..IPV4_MIN)?) != 0xffff
            {
                return None;
            }
            (false, IPV4_MIN)
        }
        6 => {
            if p.get(6) != Some(&6) || usize::from(be16(p, 4)?) + IPV6_LEN != p.len() {
                return None;
            }
            (true, IPV6_LEN)
        }
        _ => return None,
    };
    let doff = usize::from(p.get(l3 + 12)? >> 4) * 4;
    let flags = *p.get(l3 + 13)?;
    let hdr_len = l3 + doff;
    if doff < TCP_MIN
        || hdr_len >= p.len()
        || flags & TCP_ACK == 0
        || flags & (TCP_SYN | TCP_RST | TCP_URG) != 0
    {
        return None;
    }
    let pseudo = pseudo_sum(p, v6, 6, p.len() - l3)?;
    if add(pseudo, ones_sum(p.get(l3..)?)) != 0xffff {
        return None;
    }
    Some(TcpView {
        v6,
        l3,
        hdr_len,
        seq: be32(p, l3 + 4)?,
        flags,
    })
}

/// Coalesces consecutive in-order TCP segments of one flow (written into the TUN device one
/// after the other) into one GSO super-packet, so that one `write` carries them all and the
/// kernel forwards, and the receiving TCP takes, one large packet instead of dozens: the inverse
/// of [`Plan`], with the rules of Linux's own TCP GRO (same addresses, TOS/traffic class, TTL,
/// ports, ACK number, window and options; contiguous sequence numbers; IPv4 IDs incrementing
/// unless DF; no segment longer than the first; a short segment, PSH or FIN ends the
/// super-packet, CWR starts a new one).
///
/// One flow is held at a time: a packet of another flow, or anything that cannot be coalesced,
/// first sends what is held, so the order of packets is kept. A held packet that stays alone is
/// written unchanged with an all-zero header.
pub struct Coalescer {
    buf: Box<[u8]>,
    len: usize,
    segs: usize,
    view: Option<TcpView>,
    mss: usize,
    next_seq: u32,
    next_id: u16,
    closed: bool,
    /// Super-packets written (of at least two segments) and the segments they carried.
    pub stats: (u64, u64),
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("held", &self.segs)
            .field("len", &self.len)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer::new()
    }
}

impl Coalescer {
    pub fn new() -> Coalescer {
        Coalescer {
            buf: vec![0u8; MAX_COALESCED].into_boxed_slice(),
            len: 0,
            segs: 0,
            view: None,
            mss: 0,
            next_seq: 0,
            next_id: 0,
            closed: false,
            stats: (0, 0),
        }
    }

    /// Segments held.
    pub fn held(&self) -> usize {
        self.segs
    }

    /// Hand over one IP packet for the device: it is held for coalescing, or written (with
    /// whatever was held before it) through `write(header, bytes)`.
    pub fn offer<E>(
        &mut self,
        pkt: &[u8],
        mut write: impl FnMut(&VnetHdr, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let view = tcp_view(pkt);
        if let Some(v) = view {
            if self.try_append(pkt, &v) {
                if self.closed {
                    return self.flush(write);
                }
                return Ok(());
            }
        }
        self.flush(&mut write)?;
        match view {
            Some(v) => {
                self.start(pkt, v);
                if self.closed {
                    return self.flush(write);
                }
                Ok(())
            }
            None => write(&VnetHdr::NONE, pkt),
        }
    }

    fn start(&mut self, pkt: &[u8], v: TcpView) {
        let Some(dst) = self.buf.get_mut(..pkt.len()) else {
            return;
        };
        dst.copy_from_slice(pkt);
        let payload = pkt.len() - v.hdr_len;
        self.len = pkt.len();
        self.segs = 1;
        self.mss = payload;
        self.next_seq = v.seq.wrapping_add(payload as u32);
        self.next_id = be16(pkt, 4).unwrap_or(0).wrapping_add(1);
        self.closed = v.flags & (TCP_PSH | TCP_FIN) != 0;
        self.view = Some(v);
    }

    /// Append `pkt` to the held super-packet if it continues it.
    fn try_append(&mut self, pkt: &[u8], v: &TcpView) -> bool {
        let Some(h) = self.view else {
            return false;
        };
        let payload = pkt.len() - v.hdr_len;
        if self.closed
            || v.v6 != h.v6
            || v.hdr_len != h.hdr_len
            || payload > self.mss
            || self.len + payload > MAX_COALESCED
            || v.seq != self.next_seq
            || v.flags & TCP_CWR != 0
            || (v.flags ^ h.flags) & !(TCP_CWR | TCP_FIN | TCP_PSH) != 0
        {
            return false;
        }
        let Some(held) = self.buf.get(..h.hdr_len) else {
            return false;
        };
        let Some(new) = pkt.get(..h.hdr_len) else {
            return false;
        };
        let same = |r: std::ops::Range<usize>| held.get(r.clone()) == new.get(r);
        let ip_same = if h.v6 {
            // version/traffic class/flow label, next header and hop limit, addresses
            same(0..4) && same(6..40)
        } else {
            let df = held.get(6).is_some_and(|b| b & 0x40 != 0);
            same(0..2) && same(6..10) && same(12..20) && (df || be16(pkt, 4) == Some(self.next_id))
        };
        // ports; ACK number; data offset, window (flags compared above); options
        let l4 = h.l3;
        let tcp_same = same(l4..l4 + 4)
            && same(l4 + 8..l4 + 12)
            && held.get(l4 + 12) == new.get(l4 + 12)
            && same(l4 + 14..l4 + 16)
            && same(l4 + TCP_MIN..h.hdr_len);
        if !(ip_same && tcp_same) {
            return false;
        }
        let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + payload),
            pkt.get(v.hdr_len..),
        ) else {
            return false;
        };
        dst.copy_from_slice(src);
        self.len += payload;
        self.segs += 1;
        self.next_seq = self.next_seq.wrapping_add(payload as u32);
        self.next_id = self.next_id.wrapping_add(1);
        if let Some(f) = self.buf.get_mut(l4 + 13) {
            *f |= v.flags & (TCP_PSH | TCP_FIN);
        }
        if payload < self.mss || v.flags & (TCP_PSH | TCP_FIN) != 0 {
            self.closed = true;
        }
        true
    }

    /// Write what is held (if anything): one packet as it came, or a super-packet with its IP
    /// lengths, IPv4 header checksum and TCP pseudo-header checksum set and a GSO header.
    pub fn flush<E>(
        &mut self,
        mut write: impl FnMut(&VnetHdr, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let (Some(h), segs, len) = (self.view.take(), self.segs, self.len) else {
            return Ok(());
        };
        self.segs = 0;
        self.len = 0;
        self.closed = false;
        if segs < 2 {
            return write(&VnetHdr::NONE, self.buf.get(..len).unwrap_or_default());
        }
        let hdr = match self.finish(&h, len) {
            Some(hdr) => hdr,
            None => return Ok(()), // cannot happen: lengths were checked on the way in
        };
        self.stats.0 += 1;
        self.stats.1 += segs as u64;
        write(&hdr, self.buf.get(..len).unwrap_or_default())
    }

    fn finish(&mut self, h: &TcpView, len: usize) -> Option<VnetHdr> {
        let p = self.buf.get_mut(..len)?;
        if h.v6 {
            put16(p, 4, u16::try_from(len - IPV6_LEN).ok()?)?;
        } else {
            put16(p, 2, u16::try_from(len).ok()?)?;
            put16(p, 10, 0)?;
            let c = !ones_sum(p.get(..IPV4_MIN)?);
            put16(p, 10, c)?;
        }
        let cwr = p.get(h.l3 + 13)? & TCP_CWR != 0;
        // CHECKSUM_PARTIAL: the field holds the pseudo-header sum (with the super-packet's TCP
        // length, as the kernel's own GSO packets do); the kernel completes each segment's.
        let pseudo = pseudo_sum(p, h.v6, 6, len - h.l3)?;
        put16(p, h.l3 + 16, pseudo)?;
        let t = if h.v6 { GSO_TCPV6 } else { GSO_TCPV4 };
        Some(VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if cwr { t | GSO_ECN } else { t },
            hdr_len: u16::try_from(h.hdr_len).ok()?,
            gso_size: u16::try_from(self.mss).ok()?,
            csum_start: u16::try_from(h.l3).ok()?,
            csum_offset: 16,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The reference checksum: RFC 1071, 16 bits at a time, nothing clever.
    fn ref_sum(chunks: &[&[u8]]) -> u16 {
        let mut s: u32 = 0;
        for data in chunks {
            let mut it = data.chunks(2);
            for c in &mut it {
                let w = if c.len() == 2 {
                    (u32::from(c[0]) << 8) | u32::from(c[1])
                } else {
                    u32::from(c[0]) << 8
                };
                s += w;
                s = (s & 0xffff) + (s >> 16);
            }
        }
        s as u16
    }

    /// Verify an IP packet's header checksum (IPv4) and its TCP/UDP checksum; returns
    /// (protocol, L4 offset).
    fn verify(pkt: &[u8]) -> (u8, usize) {
        let (proto, l4, src_dst): (u8, usize, &[u8]) = match pkt[0] >> 4 {
            4 => {
                let ihl = usize::from(pkt[0] & 15) * 4;
                assert_eq!(ref_sum(&[&pkt[..ihl]]), 0xffff, "IPv4 header checksum");
                assert_eq!(
                    usize::from(u16::from_be_bytes([pkt[2], pkt[3]])),
                    pkt.len(),
                    "total length"
                );
                (pkt[9], ihl, &pkt[12..20])
            }
            6 => {
                assert_eq!(
                    usize::from(u16::from_be_bytes([pkt[4], pkt[5]])) + 40,
                    pkt.len(),
                    "payload length"
                );
                (pkt[6], 40, &pkt[8..40])
            }
            v => panic!("version {v}"),
        };
        let l4_len = (pkt.len() - l4) as u32;
        let pseudo = [
            0,
            proto,
            (l4_len >> 24) as u8,
            (l4_len >> 16) as u8,
            (l4_len >> 8) as u8,
            l4_len as u8,
        ];
        assert_eq!(
            ref_sum(&[src_dst, &pseudo, &pkt[l4..]]),
            0xffff,
            "L4 checksum of a {}-byte packet",
            pkt.len()
        );
        if proto == 17 {
            assert_eq!(
                usize::from(u16::from_be_bytes([pkt[l4 + 4], pkt[l4 + 5]])),
                pkt.len() - l4,
                "UDP length"
            );
        }
        (proto, l4)
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    /// A super-packet as the kernel hands it over: headers, the whole payload, the partial
    /// pseudo-header sum in the checksum field (a value the splitter must not rely on: here it is
    /// garbage on purpose in some tests).
    fn tcp_super(v6: bool, flags: u8, data: &[u8], opts: usize) -> Vec<u8> {
        let ip_len = if v6 { 40 } else { 20 };
        let tcp_len = 20 + opts;
        let total = ip_len + tcp_len + data.len();
        let mut p = vec![0u8; total];
        if v6 {
            p[0] = 0x60;
            p[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
            p[6] = 6;
            p[7] = 64;
            p[8..24].copy_from_slice(&"fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
            p[24..40].copy_from_slice(&"fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
        } else {
            p[0] = 0x45;
            p[2..4].copy_from_slice(&(total.min(65535) as u16).to_be_bytes());
            p[4..6].copy_from_slice(&0xfffeu16.to_be_bytes()); // wraps at the third segment
            p[6] = 0x40; // DF
            p[8] = 64;
            p[9] = 6;
            p[12..16].copy_from_slice(&[10, 1, 0, 1]);
            p[16..20].copy_from_slice(&[10, 2, 0, 1]);
        }
        let t = ip_len;
        p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
        p[t + 2..t + 4].copy_from_slice(&5201u16.to_be_bytes());
        p[t + 4..t + 8].copy_from_slice(&0xffff_f000u32.to_be_bytes()); // wraps too
        p[t + 8..t + 12].copy_from_slice(&77u32.to_be_bytes());
        p[t + 12] = ((tcp_len / 4) as u8) << 4;
        p[t + 13] = flags;
        p[t + 14..t + 16].copy_from_slice(&512u16.to_be_bytes());
        p[t + 16..t + 18].copy_from_slice(&0xdeadu16.to_be_bytes());
        for k in 0..opts {
            p[t + 20 + k] = if k < opts - 2 { 1 } else { 0 }; // NOPs, then EOL
        }
        p[t + tcp_len..].copy_from_slice(data);
        ip_csum(&mut p);
        p
    }

    /// Set an IPv4 header's checksum (the kernel's super-packets carry a valid one).
    fn ip_csum(p: &mut [u8]) {
        if p[0] >> 4 == 4 {
            p[10..12].fill(0);
            let c = !ref_sum(&[&p[..20]]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
    }

    fn tcp_hdr(v6: bool, mss: u16, opts: usize) -> VnetHdr {
        let ip_len: u16 = if v6 { 40 } else { 20 };
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: ip_len + 20 + opts as u16,
            gso_size: mss,
            csum_start: ip_len,
            csum_offset: 16,
        }
    }

    fn split_all(hdr: &VnetHdr, pkt: &[u8]) -> Vec<Vec<u8>> {
        let plan = Plan::new(hdr, pkt).unwrap();
        let mut out = Vec::new();
        let mut scratch = vec![0u8; 70000];
        let n = plan
            .for_each_segment(pkt, &mut scratch, |s| out.push(s.to_vec()))
            .unwrap();
        assert_eq!(n, out.len());
        assert_eq!(n, plan.segments());
        out
    }

    fn check_tcp_split(v6: bool, mss: u16, data_len: usize, opts: usize) {
        let data = payload(data_len);
        let flags = 0x80 | 0x10 | 0x08 | 0x01; // CWR ACK PSH FIN
        let pkt = tcp_super(v6, flags, &data, opts);
        let mut hdr = tcp_hdr(v6, mss, opts);
        hdr.gso_type |= GSO_ECN;
        hdr.hdr_len = pkt.len() as u16 / 2; // the kernel's linear-length hint: ignored
        let segs = split_all(&hdr, &pkt);
        let mss = usize::from(mss);
        assert_eq!(segs.len(), data_len.div_ceil(mss));
        let ip_len = if v6 { 40 } else { 20 };
        let h = ip_len + 20 + opts;
        let mut rebuilt = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let (proto, l4) = verify(s);
            assert_eq!((proto, l4), (6, ip_len));
            let want_len = if last { data_len - i * mss } else { mss };
            assert_eq!(s.len(), h + want_len, "segment {i} length");
            // headers unchanged except the fields the split owns
            assert_eq!(&s[l4..l4 + 4], &pkt[l4..l4 + 4], "ports");
            assert_eq!(&s[l4 + 8..l4 + 12], &pkt[l4 + 8..l4 + 12], "ack");
            assert_eq!(&s[l4 + 12..l4 + 13], &pkt[l4 + 12..l4 + 13], "data offset");
            assert_eq!(&s[l4 + 20..h], &pkt[l4 + 20..h], "options");
            let seq = u32::from_be_bytes(s[l4 + 4..l4 + 8].try_into().unwrap());
            assert_eq!(
                seq,
                0xffff_f000u32.wrapping_add((i * mss) as u32),
                "seq {i}"
            );
            let f = s[l4 + 13];
            assert_eq!(f & 0x10, 0x10, "ACK everywhere");
            assert_eq!(f & 0x80 != 0, i == 0, "CWR only on the first (segment {i})");
            assert_eq!(f & 0x01 != 0, last, "FIN only on the last (segment {i})");
            assert_eq!(f & 0x08 != 0, last, "PSH only on the last (segment {i})");
            if v6 {
                assert_eq!(&s[..4], &pkt[..4]);
                assert_eq!(&s[6..40], &pkt[6..40]);
            } else {
                let id = u16::from_be_bytes([s[4], s[5]]);
                assert_eq!(id, 0xfffeu16.wrapping_add(i as u16), "IPv4 ID {i}");
                assert_eq!(&s[6..10], &pkt[6..10], "DF, TTL, protocol");
                assert_eq!(&s[12..20], &pkt[12..20]);
            }
            rebuilt.extend_from_slice(&s[h..]);
        }
        assert_eq!(rebuilt, data, "payload in order");
    }

    #[test]
    fn splits_ipv4_tcp() {
        check_tcp_split(false, 1348, 64000, 12); // 48 segments, last one short
        check_tcp_split(false, 1000, 3000, 0); // exact multiple
        check_tcp_split(false, 1, 5, 0); // one byte each
        check_tcp_split(false, 1360, 1361, 40); // long options
    }

    #[test]
    fn splits_ipv6_tcp() {
        check_tcp_split(true, 1328, 65000, 12);
        check_tcp_split(true, 1220, 1220 * 7 + 3, 0);
    }

    #[test]
    fn ipv6_with_extension_header() {
        // Hop-by-hop options (8 bytes, PadN) between the fixed header and TCP.
        let data = payload(3000);
        let base = tcp_super(true, 0x18, &data, 0);
        let mut pkt = base[..40].to_vec();
        pkt[6] = 0; // next: hop-by-hop
        pkt.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // next TCP, len 0, PadN(4)
        pkt.extend_from_slice(&base[40..]);
        let mut hdr = tcp_hdr(true, 1000, 0);
        hdr.csum_start = 48;
        let segs = split_all(&hdr, &pkt);
        assert_eq!(segs.len(), 3);
        for s in &segs {
            assert_eq!(usize::from(u16::from_be_bytes([s[4], s[5]])) + 40, s.len());
            // checksum: pseudo header with L4 length from offset 48
            let l4 = &s[48..];
            let len = (l4.len() as u32).to_be_bytes();
            assert_eq!(
                ref_sum(&[&s[8..40], &[0, 6], &len, l4]),
                0xffff,
                "TCP checksum after an extension header"
            );
        }
    }

    #[test]
    fn single_segment_super_packet_is_one_packet() {
        let data = payload(100);
        let pkt = tcp_super(false, 0x19, &data, 0);
        let segs = split_all(&tcp_hdr(false, 1400, 0), &pkt);
        assert_eq!(segs.len(), 1);
        verify(&segs[0]);
        assert_eq!(segs[0][20 + 13], 0x19, "flags kept on the only segment");
        assert_eq!(&segs[0][40..], &data[..]);
        // No payload at all (a bare ACK marked GSO): one packet too.
        let pkt = tcp_super(false, 0x10, &[], 0);
        let segs = split_all(&tcp_hdr(false, 1400, 0), &pkt);
        assert_eq!(segs.len(), 1);
        verify(&segs[0]);
    }

    fn udp_super(v6: bool, data: &[u8]) -> Vec<u8> {
        let ip_len = if v6 { 40 } else { 20 };
        let mut p = tcp_super(v6, 0, &[], 0)[..ip_len].to_vec();
        if v6 {
            p[6] = 17;
        } else {
            p[9] = 17;
        }
        p.extend_from_slice(&4433u16.to_be_bytes());
        p.extend_from_slice(&443u16.to_be_bytes());
        p.extend_from_slice(&((8 + data.len()).min(65535) as u16).to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34]);
        p.extend_from_slice(data);
        let total = p.len() as u16;
        if v6 {
            p[4..6].copy_from_slice(&(total - 40).to_be_bytes());
        } else {
            p[2..4].copy_from_slice(&total.to_be_bytes());
        }
        ip_csum(&mut p);
        p
    }

    #[test]
    fn splits_udp_l4() {
        for v6 in [false, true] {
            let ip_len: u16 = if v6 { 40 } else { 20 };
            let data = payload(1200 * 10 + 17);
            let pkt = udp_super(v6, &data);
            let hdr = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_UDP_L4,
                hdr_len: ip_len + 8,
                gso_size: 1200,
                csum_start: ip_len,
                csum_offset: 6,
            };
            let segs = split_all(&hdr, &pkt);
            assert_eq!(segs.len(), 11);
            let mut rebuilt = Vec::new();
            for (i, s) in segs.iter().enumerate() {
                assert_eq!(verify(s), (17, usize::from(ip_len)));
                let l4 = usize::from(ip_len);
                assert_eq!(&s[l4..l4 + 4], &pkt[l4..l4 + 4]);
                assert_eq!(s.len() - l4 - 8, if i == 10 { 17 } else { 1200 });
                rebuilt.extend_from_slice(&s[l4 + 8..]);
            }
            assert_eq!(rebuilt, data);
        }
    }

    #[test]
    fn completes_csum_partial() {
        // TCP over IPv4, not GSO: the kernel left the partial pseudo-header sum in the field.
        let data = payload(999);
        let mut pkt = tcp_super(false, 0x18, &data, 0);
        let l4_len = (pkt.len() - 20) as u32;
        let partial = ref_sum(&[&pkt[12..20], &[0, 6], &l4_len.to_be_bytes()]);
        pkt[36..38].copy_from_slice(&partial.to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_NONE,
            hdr_len: 0,
            gso_size: 0,
            csum_start: 20,
            csum_offset: 16,
        };
        let segs = split_all(&hdr, &pkt);
        assert_eq!(segs.len(), 1);
        verify(&segs[0]);
        assert_eq!(&segs[0][..36], &pkt[..36]);
        assert_eq!(&segs[0][38..], &pkt[38..]);
        // UDP over IPv6, odd length.
        let data = payload(333);
        let mut pkt = udp_super(true, &data);
        let l4_len = (pkt.len() - 40) as u32;
        let partial = ref_sum(&[&pkt[8..40], &[0, 17], &l4_len.to_be_bytes()]);
        pkt[46..48].copy_from_slice(&partial.to_be_bytes());
        let mut out = pkt.clone();
        complete_checksum(&mut out, 40, 6).unwrap();
        verify(&out);
        // No offload: copied unchanged (even with a wrong checksum: not ours to judge).
        let segs = split_all(&VnetHdr::NONE, &pkt);
        assert_eq!(segs, vec![pkt.clone()]);
        let mut dv = VnetHdr::NONE;
        dv.flags = F_DATA_VALID;
        assert_eq!(split_all(&dv, &pkt), vec![pkt]);
    }

    #[test]
    fn checksum_zero_becomes_ffff() {
        // A body whose sum is 0xffff: complemented 0 → stored as 0xffff.
        let mut pkt = vec![0x45, 0, 0, 0, 0xff, 0xff, 0, 0];
        complete_checksum(&mut pkt, 4, 2).unwrap();
        assert_eq!(&pkt[6..8], &[0xff, 0xff]);
    }

    #[test]
    fn fast_sum_matches_reference() {
        let mut seed = 0x9e37_79b9u32;
        for len in (0..300).chain([1399, 1400, 1401, 65535]) {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let r = ref_sum(&[&data]);
            // ref_sum folds as it goes: 0 and 0xffff are the same ones'-complement number.
            let f = ones_sum(&data);
            assert!(
                f == r || (f == 0 && r == 0xffff) || (f == 0xffff && r == 0),
                "len {len}: {f:#06x} vs {r:#06x}"
            );
        }
        assert_eq!(ones_sum(&[0xff; 65534]), 0xffff);
        assert_eq!(ones_sum(&[0xff; 65535]), 0xff00);
    }

    #[test]
    fn header_encoding_roundtrip() {
        let h = VnetHdr {
            flags: 1,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 0x1234,
            gso_size: 1448,
            csum_start: 40,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::decode(&h.encode()), h);
        assert_eq!(VnetHdr::NONE.encode(), [0u8; VNET_HDR_LEN]);
        assert!(h.is_gso() && !VnetHdr::NONE.is_gso());
        // host byte order, as the kernel's legacy virtio header
        assert_eq!(&h.encode()[4..6], &1448u16.to_ne_bytes());
    }

    #[test]
    fn malformed_headers_are_errors() {
        let data = payload(5000);
        let pkt = tcp_super(false, 0x18, &data, 0);
        let good = tcp_hdr(false, 1400, 0);
        assert!(Plan::new(&good, &pkt).is_ok());
        let with = |f: &dyn Fn(&mut VnetHdr)| {
            let mut h = good;
            f(&mut h);
            Plan::new(&h, &pkt)
        };
        assert_eq!(with(&|h| h.gso_size = 0), Err(GsoError::ZeroGsoSize));
        assert_eq!(
            with(&|h| h.hdr_len = pkt.len() as u16 + 1),
            Err(GsoError::HdrLenPastEnd)
        );
        assert_eq!(
            with(&|h| h.csum_start = pkt.len() as u16),
            Err(GsoError::CsumPastEnd)
        );
        assert_eq!(
            with(&|h| h.csum_offset = (pkt.len() - 21) as u16),
            Err(GsoError::CsumPastEnd)
        );
        assert_eq!(with(&|h| h.csum_start = 0xffff), Err(GsoError::CsumPastEnd));
        assert_eq!(with(&|h| h.csum_offset = 6), Err(GsoError::BadL4Header));
        assert_eq!(with(&|h| h.csum_start = 24), Err(GsoError::BadIpHeader));
        assert_eq!(
            with(&|h| h.gso_type = GSO_TCPV6),
            Err(GsoError::BadIpHeader)
        );
        assert_eq!(
            with(&|h| h.gso_type = GSO_UDP),
            Err(GsoError::UnsupportedType(3))
        );
        assert_eq!(
            with(&|h| h.gso_type = 0x42),
            Err(GsoError::UnsupportedType(0x42))
        );
        assert_eq!(with(&|h| h.flags = 0), Err(GsoError::GsoWithoutCsum));
        assert_eq!(with(&|h| h.gso_size = 65535), Err(GsoError::SegmentTooLong));
        // Non-GSO packets are checked too.
        let mut plain = VnetHdr::NONE;
        plain.flags = F_NEEDS_CSUM;
        plain.csum_start = pkt.len() as u16 - 1;
        plain.csum_offset = 0;
        assert_eq!(Plan::new(&plain, &pkt), Err(GsoError::CsumPastEnd));
        plain.csum_start = 20;
        plain.csum_offset = 16;
        assert!(Plan::new(&plain, &pkt).is_ok());

        // Bad packets behind a good header.
        let mut p = pkt.clone();
        p[9] = 17; // UDP in a TCP super-packet
        assert_eq!(Plan::new(&good, &p), Err(GsoError::BadIpHeader));
        let mut p = pkt.clone();
        p[20 + 12] = 0x40; // data offset 16
        assert_eq!(Plan::new(&good, &p), Err(GsoError::BadL4Header));
        let mut p = pkt.clone();
        p[20 + 12] = 0xf0; // data offset 60: past the end of a tiny packet
        assert_eq!(
            Plan::new(&good, &p[..70]).map(|_| ()),
            Err(GsoError::BadL4Header)
        );
        let mut p = pkt.clone();
        p[6] = 0x20; // more fragments
        assert_eq!(Plan::new(&good, &p), Err(GsoError::BadIpHeader));
        assert_eq!(Plan::new(&good, &[]), Err(GsoError::HdrLenPastEnd));
        assert_eq!(Plan::new(&good, &pkt[..39]), Err(GsoError::HdrLenPastEnd));
        let mut short = good;
        short.hdr_len = 0;
        assert_eq!(Plan::new(&short, &pkt[..30]), Err(GsoError::CsumPastEnd));

        // Output and segment bounds.
        let plan = Plan::new(&good, &pkt).unwrap();
        let mut small = [0u8; 100];
        assert_eq!(
            plan.write_segment(&pkt, 0, &mut small),
            Err(GsoError::OutputTooSmall {
                need: 1440,
                have: 100
            })
        );
        let mut big = vec![0u8; 2000];
        assert_eq!(
            plan.write_segment(&pkt, plan.segments(), &mut big),
            Err(GsoError::WrongPacket)
        );
        assert_eq!(
            plan.write_segment(&pkt[1..], 0, &mut big),
            Err(GsoError::WrongPacket)
        );
    }

    /// Random headers over random and real packets: errors, never a panic, and every segment a
    /// plan accepts fits its declared length.
    #[test]
    fn random_headers_never_panic() {
        let data = payload(4000);
        let real = [
            tcp_super(false, 0x18, &data, 8),
            tcp_super(true, 0x18, &data, 0),
            udp_super(false, &data),
        ];
        let mut seed = 0x1234_5678u32;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut out = vec![0u8; 70000];
        for k in 0..20000 {
            let mut b = [0u8; VNET_HDR_LEN];
            for x in b.iter_mut() {
                *x = rnd() as u8;
            }
            let mut h = VnetHdr::decode(&b);
            // Keep some fields plausible half of the time, so deeper checks run.
            if k % 2 == 0 {
                h.flags &= 3;
                h.gso_type = [GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4][k / 2 % 4];
                h.csum_start = [20, 40, (rnd() % 80) as u16][k % 3];
                h.csum_offset = [16, 6, (rnd() % 20) as u16][k / 3 % 3];
                h.gso_size = (rnd() % 3000) as u16;
                h.hdr_len = (rnd() % 100) as u16;
            }
            let mut pkt = real[k % 3].clone();
            let cut = (rnd() as usize) % (pkt.len() + 1);
            pkt.truncate(if k % 5 == 0 { cut } else { pkt.len() });
            if k % 7 == 0 {
                for _ in 0..4 {
                    let at = (rnd() as usize) % pkt.len().max(1);
                    if let Some(x) = pkt.get_mut(at) {
                        *x = rnd() as u8;
                    }
                }
            }
            if let Ok(plan) = Plan::new(&h, &pkt) {
                for i in 0..plan.segments().min(80) {
                    let n = plan.write_segment(&pkt, i, &mut out).unwrap();
                    assert_eq!(n, plan.segment_len(i));
                }
            }
        }
    }

    // -------------------------------------------------------------------------- coalescing

    /// Split `pkt` as the kernel would hand it over, for coalescing tests: valid segments.
    fn segments_of(v6: bool, flags: u8, data_len: usize, mss: u16, opts: usize) -> Vec<Vec<u8>> {
        let pkt = tcp_super(v6, flags, &payload(data_len), opts);
        split_all(&tcp_hdr(v6, mss, opts), &pkt)
    }

    /// Feed `pkts` to a coalescer (flushing at the end) and record the writes.
    fn coalesce(pkts: &[Vec<u8>]) -> Vec<(VnetHdr, Vec<u8>)> {
        let mut c = Coalescer::new();
        let mut w: Vec<(VnetHdr, Vec<u8>)> = Vec::new();
        for p in pkts {
            c.offer(p, |h, b| {
                w.push((*h, b.to_vec()));
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        c.flush(|h, b| {
            w.push((*h, b.to_vec()));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(c.held(), 0);
        w
    }

    /// What the kernel makes of the writes: super-packets segmented again, the rest as written.
    fn replay(writes: &[(VnetHdr, Vec<u8>)]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (h, b) in writes {
            if h.is_gso() {
                // The kernel's reading of the header: NEEDS_CSUM with the pseudo-header sum.
                let l3 = usize::from(h.csum_start);
                let v6 = b[0] >> 4 == 6;
                let addrs = if v6 { &b[8..40] } else { &b[12..20] };
                let len = ((b.len() - l3) as u32).to_be_bytes();
                assert_eq!(
                    ref_sum(&[addrs, &[0, 6], &len]).to_be_bytes(),
                    [b[l3 + 16], b[l3 + 17]],
                    "partial checksum = pseudo-header sum"
                );
                assert_eq!((h.flags, h.csum_offset), (F_NEEDS_CSUM, 16));
                assert_eq!(
                    usize::from(h.hdr_len),
                    l3 + usize::from(b[l3 + 12] >> 4) * 4
                );
                if v6 {
                    assert_eq!(usize::from(u16::from_be_bytes([b[4], b[5]])) + 40, b.len());
                } else {
                    assert_eq!(usize::from(u16::from_be_bytes([b[2], b[3]])), b.len());
                    assert_eq!(ref_sum(&[&b[..20]]), 0xffff, "super-packet IPv4 checksum");
                }
                out.extend(split_all(h, b));
            } else {
                assert_eq!(*h, VnetHdr::NONE);
                out.push(b.clone());
            }
        }
        out
    }

    #[test]
    fn coalesces_a_split_flow_back_into_one_super_packet() {
        for v6 in [false, true] {
            let flags = 0x80 | 0x10 | 0x08 | 0x01; // CWR on the first, PSH FIN on the last
            let segs = segments_of(v6, flags, 40 * 1000 + 7, 1000, 12);
            assert_eq!(segs.len(), 41);
            let w = coalesce(&segs);
            assert_eq!(w.len(), 1, "one write");
            let (h, b) = &w[0];
            let t = if v6 { GSO_TCPV6 } else { GSO_TCPV4 };
            assert_eq!(h.gso_type, t | GSO_ECN, "CWR on the first segment: ECN");
            assert_eq!(h.gso_size, 1000);
            assert_eq!(
                b[h.csum_start as usize + 13],
                flags,
                "flags of first + last"
            );
            assert_eq!(
                replay(&w),
                segs,
                "lossless: the kernel's segments are the originals"
            );
        }
    }

    #[test]
    fn coalescing_stops_where_linux_gro_would() {
        let base = segments_of(false, 0x10, 10 * 1000, 1000, 0);
        let refix = |p: &mut Vec<u8>| {
            // recompute IPv4 and TCP checksums after an edit
            p[10..12].fill(0);
            let c = !ref_sum(&[&p[..20]]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p[36..38].fill(0);
            let len = ((p.len() - 20) as u32).to_be_bytes();
            let c = !ref_sum(&[&p[12..20], &[0, 6], &len, &p[20..]]);
            p[36..38].copy_from_slice(&c.to_be_bytes());
        };
        type Edit = fn(&mut Vec<u8>);
        let cases: &[(&str, Edit, usize)] = &[
            // (what, edit of segment 4, writes expected)
            ("other port", |p| p[20] ^= 1, 3),
            ("sequence gap", |p| p[27] ^= 1, 3),
            ("other ACK number", |p| p[31] ^= 1, 3),
            ("other window", |p| p[35] ^= 1, 3),
            ("other TTL", |p| p[8] -= 1, 3),
            ("other TOS (ECN CE)", |p| p[1] |= 3, 3),
            ("CWR", |p| p[33] |= 0x80, 2),
            ("ECE", |p| p[33] |= 0x40, 3),
            ("SYN", |p| p[33] |= 0x02, 3),
            ("URG", |p| p[33] |= 0x20, 3),
            ("PSH", |p| p[33] |= 0x08, 2),
            (
                "pure ACK",
                |p| {
                    p.truncate(40);
                    p[2..4].copy_from_slice(&40u16.to_be_bytes());
                },
                3,
            ),
            (
                "short segment",
                |p| {
                    p.truncate(40 + 500);
                    p[2..4].copy_from_slice(&540u16.to_be_bytes());
                },
                2,
            ),
            ("not TCP", |p| p[9] = 17, 3),
        ];
        for (what, edit, writes) in cases {
            let mut pkts = base.clone();
            edit(&mut pkts[4]);
            refix(&mut pkts[4]);
            let w = coalesce(&pkts);
            assert_eq!(
                w.len(),
                *writes,
                "{what}: {:?}",
                w.iter().map(|x| x.1.len()).collect::<Vec<_>>()
            );
            // Whatever happened, what the kernel gets is what came in, in order.
            assert_eq!(replay(&w), pkts, "{what}");
        }
        // A bad TCP checksum: passed on unchanged (for the receiver to drop), never laundered.
        let mut pkts = base.clone();
        pkts[4][60] ^= 0xff;
        let w = coalesce(&pkts);
        assert_eq!(w.len(), 3);
        assert_eq!(w[1], (VnetHdr::NONE, pkts[4].clone()));
        assert_eq!(replay(&w), pkts);
        // A bad IPv4 header checksum likewise.
        let mut pkts = base.clone();
        pkts[4][10] ^= 0xff;
        let w = coalesce(&pkts);
        assert_eq!(w[1], (VnetHdr::NONE, pkts[4].clone()));
        // Options that differ (a new timestamp) start a new super-packet.
        let mut pkts = segments_of(false, 0x10, 6 * 1000, 1000, 12);
        for p in pkts.iter_mut().skip(3) {
            p[40 + 4] = 9; // inside the options (all NOPs/EOL here)
            p[10..12].fill(0);
            let c = !ref_sum(&[&p[..20]]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p[36..38].fill(0);
            let len = ((p.len() - 20) as u32).to_be_bytes();
            let c = !ref_sum(&[&p[12..20], &[0, 6], &len, &p[20..]]);
            p[36..38].copy_from_slice(&c.to_be_bytes());
        }
        let w = coalesce(&pkts);
        assert_eq!(w.len(), 2);
        assert_eq!(replay(&w), pkts);
    }

    #[test]
    fn coalescing_ipv4_ids_and_size_limit() {
        // Without DF the IDs must run on.
        let pkt = {
            let mut p = tcp_super(false, 0x10, &payload(8000), 0);
            p[6] = 0;
            ip_csum(&mut p);
            p
        };
        let segs = split_all(&tcp_hdr(false, 1000, 0), &pkt);
        assert_eq!(coalesce(&segs).len(), 1);
        let mut broken = segs.clone();
        broken[5][5] ^= 0x10;
        ip_csum(&mut broken[5]);
        let w = coalesce(&broken);
        assert_eq!(w.len(), 3, "segments 0-4, 5 alone, 6-7");
        assert_eq!(w[1], (VnetHdr::NONE, broken[5].clone()));
        assert_eq!(replay(&w), broken);
        // With DF the IDs do not matter (as in Linux GRO): the kernel renumbers them.
        let mut fixed = segments_of(false, 0x10, 8000, 1000, 0);
        for p in fixed.iter_mut() {
            p[4..6].copy_from_slice(&[0, 0]);
            ip_csum(p);
        }
        assert_eq!(coalesce(&fixed).len(), 1);
        // 65535 bytes at most per super-packet: 100 segments of 1400 make several, losslessly.
        let mut many = Vec::new();
        for k in 0..4u32 {
            let mut s = segments_of(true, 0x10, 25 * 1400, 1400, 0);
            let off = k * 25 * 1400;
            for p in s.iter_mut() {
                let seq = u32::from_be_bytes(p[44..48].try_into().unwrap()).wrapping_add(off);
                p[44..48].copy_from_slice(&seq.to_be_bytes());
                p[56..58].fill(0);
                let len = ((p.len() - 40) as u32).to_be_bytes();
                let c = !ref_sum(&[&p[8..40], &[0, 6], &len, &p[40..]]);
                p[56..58].copy_from_slice(&c.to_be_bytes());
            }
            many.extend(s);
        }
        let w = coalesce(&many);
        assert!(w.iter().all(|(_, b)| b.len() <= MAX_COALESCED));
        assert_eq!(
            w.len(),
            3,
            "{:?}",
            w.iter().map(|x| x.1.len()).collect::<Vec<_>>()
        );
        assert_eq!(replay(&w), many);
        // One packet alone goes out exactly as it came.
        let w = coalesce(&many[..1]);
        assert_eq!(w, vec![(VnetHdr::NONE, many[0].clone())]);
    }
}
