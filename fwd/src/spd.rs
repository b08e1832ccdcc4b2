//! Security policy database (SPD; KLIPS "eroutes"): sans-IO.
//!
//! Ordered selectors → [`Action`], one table per [`Direction`]. The first
//! matching entry in (priority, insertion) order wins — lower priority value
//! first, ties broken by the older [`PolicyId`]. [`Spd::iter`] yields exactly
//! that order, and a linear `iter(dir).find(|e| e.selector.matches(flow))` is
//! the reference semantics of [`Spd::lookup`].
//!
//! # Index
//!
//! A linear scan per packet does not scale to 10,000 tunnels, so each
//! (direction, address family) table is indexed by prefix lengths: one group
//! per distinct `(dst prefix length, src prefix length)` pair present, each a
//! hash map from the masked `(dst, src)` addresses to the entries with those
//! exact prefixes, kept sorted by (priority, id). A lookup masks the flow's
//! addresses once per group, probes each group's map, walks the (usually
//! single-entry) candidate list checking protocol and ports, and stops a list
//! as soon as its entries cannot beat the best match found so far.
//!
//! Cost: O(number of distinct prefix-length pairs + candidates sharing the
//! flow's exact src/dst prefixes). Subnet-to-subnet tunnels typically use a
//! handful of prefix-length pairs whatever the tunnel count, so the cost does
//! not grow with the number of tunnels (see `benches/spd_lookup.rs` and
//! [`Spd::lookup_with_stats`]). Not indexed: many policies with the *same*
//! src and dst prefixes differing only in protocol/ports are scanned linearly
//! (within that one list); the number of groups is bounded by 33² (IPv4) /
//! 129² (IPv6) but in adversarial configurations can reach the entry count.
//!
//! Bounded: at most [`Spd::max`] entries over both directions, names of at
//! most [`MAX_NAME_LEN`] bytes.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Default bound on the number of policies in one [`Spd`].
pub const DEFAULT_MAX_POLICIES: usize = 65_536;
/// Longest accepted policy (connection) name, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// How many IPv6 extension headers [`Flow::from_ip_packet`] walks at most.
pub const MAX_EXT_HEADERS: usize = 8;

/// IP protocol numbers used here.
pub const PROTO_ICMP: u8 = 1;
/// TCP.
pub const PROTO_TCP: u8 = 6;
/// UDP.
pub const PROTO_UDP: u8 = 17;
/// SCTP.
pub const PROTO_SCTP: u8 = 132;

// ---------------------------------------------------------------- IpNet

/// An IPv4 or IPv6 prefix. Always canonical: host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Errors building or parsing an [`IpNet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    /// Prefix longer than 32 (IPv4) / 128 (IPv6).
    #[error("prefix length {0} too long")]
    PrefixTooLong(u8),
    /// Not `addr` or `addr/len`.
    #[error("bad prefix syntax")]
    Syntax,
}

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn family_bits(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Mask of `prefix` leading ones within a `width`-bit address held in the low
/// bits of a u128 (`prefix <= width`).
fn mask(width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let ones = u128::MAX << (128 - u32::from(prefix.min(width)));
    // Shift the leading ones down into the low `width` bits.
    ones >> (128 - u32::from(width))
}

fn bits_to_addr(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((bits & u128::from(u32::MAX)) as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

impl IpNet {
    /// `addr/prefix`, host bits cleared.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, IpNetError> {
        let width = family_bits(addr);
        if prefix > width {
            return Err(IpNetError::PrefixTooLong(prefix));
        }
        let bits = addr_bits(addr) & mask(width, prefix);
        Ok(IpNet { addr: bits_to_addr(addr, bits), prefix })
    }

    /// A single host (/32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        IpNet { addr, prefix: family_bits(addr) }
    }

    /// 0.0.0.0/0.
    pub fn any_v4() -> Self {
        IpNet { addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED), prefix: 0 }
    }

    /// ::/0.
    pub fn any_v6() -> Self {
        IpNet { addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED), prefix: 0 }
    }

    /// Network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True for IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// True when `a` is inside this prefix (same family only).
    pub fn contains(&self, a: IpAddr) -> bool {
        if a.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        addr_bits(a) & mask(family_bits(a), self.prefix) == addr_bits(self.addr)
    }

    /// True when `other` is entirely inside this prefix.
    pub fn contains_net(&self, other: &IpNet) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    fn masked_bits(&self) -> u128 {
        addr_bits(self.addr)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;
    /// `192.0.2.0/24`, `2001:db8::/32`, or a bare address (host prefix).
    fn from_str(s: &str) -> Result<Self, IpNetError> {
        let s = s.trim();
        match s.split_once('/') {
            Some((a, p)) => {
                let addr: IpAddr = a.parse().map_err(|_| IpNetError::Syntax)?;
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(IpNetError::Syntax);
                }
                let prefix: u8 = p.parse().map_err(|_| IpNetError::Syntax)?;
                IpNet::new(addr, prefix)
            }
            None => Ok(IpNet::host(s.parse().map_err(|_| IpNetError::Syntax)?)),
        }
    }
}

// ---------------------------------------------------------------- ports, selector, flow

/// Inclusive port range. `PortRange::ANY` is 0–65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    lo: u16,
    hi: u16,
}

impl PortRange {
    /// Every port (and "no port": flows without ports carry port 0).
    pub const ANY: PortRange = PortRange { lo: 0, hi: u16::MAX };

    /// `lo..=hi`; `None` when `lo > hi`.
    pub fn new(lo: u16, hi: u16) -> Option<Self> {
        (lo <= hi).then_some(PortRange { lo, hi })
    }

    /// One port.
    pub fn single(p: u16) -> Self {
        PortRange { lo: p, hi: p }
    }

    /// Low end.
    pub fn lo(&self) -> u16 {
        self.lo
    }

    /// High end.
    pub fn hi(&self) -> u16 {
        self.hi
    }

    /// True for 0–65535.
    pub fn is_any(&self) -> bool {
        *self == Self::ANY
    }

    /// `lo <= p <= hi`.
    pub fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

impl Default for PortRange {
    fn default() -> Self {
        Self::ANY
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() {
            f.write_str("any")
        } else if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// Traffic selector. `src` and `dst` must be the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Source prefix.
    pub src: IpNet,
    /// Destination prefix.
    pub dst: IpNet,
    /// IP protocol (`None`: any).
    pub proto: Option<u8>,
    /// Source ports (0 stands for "no port": ICMP, non-first fragments...).
    pub src_port: PortRange,
    /// Destination ports.
    pub dst_port: PortRange,
}

impl Selector {
    /// Subnet-to-subnet, any protocol and port.
    pub fn subnets(src: IpNet, dst: IpNet) -> Self {
        Selector { src, dst, proto: None, src_port: PortRange::ANY, dst_port: PortRange::ANY }
    }

    /// The selector matches the flow.
    pub fn matches(&self, f: &Flow) -> bool {
        self.dst.contains(f.dst) && self.src.contains(f.src) && self.matches_l4(f)
    }

    fn matches_l4(&self, f: &Flow) -> bool {
        !matches!(self.proto, Some(p) if p != f.proto)
            && self.src_port.contains(f.src_port)
            && self.dst_port.contains(f.dst_port)
    }
}

impl fmt::Display for Selector {
    /// `10.0.1.0/24:any -> 10.0.2.0/24:443 proto 6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} -> {}:{}", self.src, self.src_port, self.dst, self.dst_port)?;
        match self.proto {
            Some(p) => write!(f, " proto {p}"),
            None => f.write_str(" proto any"),
        }
    }
}

/// A packet's selector fields. Ports are 0 when the protocol is not
/// TCP/UDP/SCTP or the packet is a non-first fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (IPv6: after the extension headers walked).
    pub proto: u8,
    /// Source port or 0.
    pub src_port: u16,
    /// Destination port or 0.
    pub dst_port: u16,
}

/// [`Flow::from_ip_packet`] errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// Zero-length packet.
    #[error("empty packet")]
    Empty,
    /// Version nibble neither 4 nor 6.
    #[error("bad IP version {0}")]
    BadVersion(u8),
    /// Headers or ports extend past the packet (or its length field).
    #[error("truncated packet")]
    Truncated,
    /// IPv4 IHL < 5 or total length < header length.
    #[error("bad header length")]
    BadHeaderLength,
    /// More than [`MAX_EXT_HEADERS`] IPv6 extension headers.
    #[error("too many IPv6 extension headers")]
    TooManyExtensionHeaders,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP)
}

/// Read the two ports at `at` of `pkt` (TCP/UDP/SCTP all start with them).
fn ports(pkt: &[u8], at: usize) -> Result<(u16, u16), FlowError> {
    let sp = be16(pkt, at).ok_or(FlowError::Truncated)?;
    let dp = be16(pkt, at.saturating_add(2)).ok_or(FlowError::Truncated)?;
    Ok((sp, dp))
}

impl Flow {
    /// Parse the selector fields of a plaintext IPv4 or IPv6 packet.
    ///
    /// IPv4 non-first fragments (offset ≠ 0) yield the header's protocol and
    /// ports 0. IPv6: hop-by-hop, routing and destination-options headers are
    /// walked (at most [`MAX_EXT_HEADERS`]); a fragment header with offset ≠ 0
    /// yields its next-header value and ports 0; ESP/AH and anything else end
    /// the walk as the upper-layer protocol. Missing port bytes in a packet
    /// that should carry them are [`FlowError::Truncated`].
    pub fn from_ip_packet(pkt: &[u8]) -> Result<Flow, FlowError> {
        let b0 = *pkt.first().ok_or(FlowError::Empty)?;
        match b0 >> 4 {
            4 => Self::from_ipv4(pkt, b0),
            6 => Self::from_ipv6(pkt),
            v => Err(FlowError::BadVersion(v)),
        }
    }

    fn from_ipv4(pkt: &[u8], b0: u8) -> Result<Flow, FlowError> {
        let hdr = pkt.get(..20).ok_or(FlowError::Truncated)?;
        let ihl = usize::from(b0 & 0x0f) * 4;
        if ihl < 20 {
            return Err(FlowError::BadHeaderLength);
        }
        let total = usize::from(be16(hdr, 2).ok_or(FlowError::Truncated)?);
        if total < ihl {
            return Err(FlowError::BadHeaderLength);
        }
        let pkt = pkt.get(..total).ok_or(FlowError::Truncated)?;
        let frag_off = be16(hdr, 6).ok_or(FlowError::Truncated)? & 0x1fff;
        let proto = *hdr.get(9).ok_or(FlowError::Truncated)?;
        let addr = |at: usize| -> Result<IpAddr, FlowError> {
            let s: [u8; 4] = hdr
                .get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or(FlowError::Truncated)?;
            Ok(IpAddr::V4(Ipv4Addr::from(s)))
        };
        let (src, dst) = (addr(12)?, addr(16)?);
        let (src_port, dst_port) =
            if frag_off == 0 && has_ports(proto) { ports(pkt, ihl)? } else { (0, 0) };
        Ok(Flow { src, dst, proto, src_port, dst_port })
    }

    fn from_ipv6(pkt: &[u8]) -> Result<Flow, FlowError> {
        let hdr = pkt.get(..40).ok_or(FlowError::Truncated)?;
        let plen = usize::from(be16(hdr, 4).ok_or(FlowError::Truncated)?);
        // Payload length 0: jumbogram (RFC 2675); trust the buffer length.
        let pkt = if plen == 0 { pkt } else { pkt.get(..40 + plen).ok_or(FlowError::Truncated)? };
        let addr = |at: usize| -> Result<IpAddr, FlowError> {
            let s: [u8; 16] = hdr
                .get(at..at + 16)
                .and_then(|s| s.try_into().ok())
                .ok_or(FlowError::Truncated)?;
            Ok(IpAddr::V6(Ipv6Addr::from(s)))
        };
        let (src, dst) = (addr(8)?, addr(24)?);
        let mut nh = *hdr.get(6).ok_or(FlowError::Truncated)?;
        let mut off = 40usize;
        let mut walked = 0usize;
        loop {
            match nh {
                // Hop-by-hop, routing, destination options: (len + 1) * 8 bytes.
                0 | 43 | 60 => {
                    let next = *pkt.get(off).ok_or(FlowError::Truncated)?;
                    let len = *pkt.get(off + 1).ok_or(FlowError::Truncated)?;
                    off += (usize::from(len) + 1) * 8;
                    nh = next;
                }
                // Fragment header: 8 bytes.
                44 => {
                    let next = *pkt.get(off).ok_or(FlowError::Truncated)?;
                    let frag_off = be16(pkt, off + 2).ok_or(FlowError::Truncated)? >> 3;
                    off += 8;
                    nh = next;
                    if frag_off != 0 {
                        return Ok(Flow { src, dst, proto: nh, src_port: 0, dst_port: 0 });
                    }
                }
                _ => break,
            }
            walked += 1;
            if walked > MAX_EXT_HEADERS {
                return Err(FlowError::TooManyExtensionHeaders);
            }
            if off > pkt.len() {
                return Err(FlowError::Truncated);
            }
        }
        let (src_port, dst_port) = if has_ports(nh) { ports(pkt, off)? } else { (0, 0) };
        Ok(Flow { src, dst, proto: nh, src_port, dst_port })
    }
}

// ---------------------------------------------------------------- entries

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Outbound (plaintext from the TUN device → which SA bundle, or pass/drop).
    Out,
    /// Inbound (policy check of decrypted or plaintext packets from the wire).
    In,
}

/// Opaque id the datapath maps to its SA bundle (tunnel / connection id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyTarget(pub u64);

/// What to do with a matching packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// IPsec-protect with the SA bundle of the target.
    Protect(PolicyTarget),
    /// Send/accept in the clear.
    Pass,
    /// Silently discard.
    Drop,
    /// Discard and send an ICMP error.
    Reject,
    /// No SA yet: hold/discard and ask the keying daemon (acquire) for the target.
    Trap(PolicyTarget),
}

/// Per-policy traffic counters (shown by `ipsecctl eroute`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyCounters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// One policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Owning connection name.
    pub name: String,
    /// Lower is tried first.
    pub priority: u32,
    /// What traffic.
    pub selector: Selector,
    /// What to do.
    pub action: Action,
    /// Counters ([`Spd::count`]).
    pub counters: PolicyCounters,
}

impl Entry {
    /// Entry with zero counters.
    pub fn new(name: impl Into<String>, priority: u32, selector: Selector, action: Action) -> Self {
        Entry { name: name.into(), priority, selector, action, counters: PolicyCounters::default() }
    }
}

/// Policy handle, never reused within one [`Spd`]; later ids lose priority ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(pub u64);

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// SPD errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpdError {
    /// Same direction and identical selector already present.
    #[error("policy with this selector already exists ({0})")]
    Duplicate(PolicyId),
    /// The SPD holds its maximum number of policies.
    #[error("policy database full")]
    Full,
    /// Source and destination prefixes of different address families.
    #[error("selector mixes IPv4 and IPv6")]
    FamilyMismatch,
    /// Name longer than [`MAX_NAME_LEN`].
    #[error("policy name too long")]
    NameTooLong,
}

/// Work done by one lookup (for tests and diagnostics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// Prefix-length groups probed (hash lookups).
    pub groups: usize,
    /// Candidate entries whose protocol/ports were checked.
    pub candidates: usize,
}

// ---------------------------------------------------------------- index

#[derive(Debug, Clone)]
struct Cand {
    priority: u32,
    id: PolicyId,
    sel: Selector,
}

impl Cand {
    fn rank(&self) -> (u32, PolicyId) {
        (self.priority, self.id)
    }
}

/// All policies of one (direction, family) with given (dst, src) prefix lengths.
#[derive(Debug, Clone)]
struct Group {
    dplen: u8,
    splen: u8,
    dmask: u128,
    smask: u128,
    /// (masked dst, masked src) → candidates sorted by (priority, id).
    map: HashMap<(u128, u128), Vec<Cand>>,
}

#[derive(Debug, Clone, Default)]
struct FamilyIndex {
    groups: Vec<Group>,
}

impl FamilyIndex {
    fn key(sel: &Selector) -> (u8, u8, (u128, u128)) {
        (sel.dst.prefix(), sel.src.prefix(), (sel.dst.masked_bits(), sel.src.masked_bits()))
    }

    fn find_dup(&self, sel: &Selector) -> Option<PolicyId> {
        let (dp, sp, k) = Self::key(sel);
        let g = self.groups.iter().find(|g| g.dplen == dp && g.splen == sp)?;
        g.map.get(&k)?.iter().find(|c| c.sel == *sel).map(|c| c.id)
    }

    fn insert(&mut self, width: u8, cand: Cand) {
        let (dp, sp, k) = Self::key(&cand.sel);
        let pos = match self.groups.iter().position(|g| g.dplen == dp && g.splen == sp) {
            Some(p) => p,
            None => {
                self.groups.push(Group {
                    dplen: dp,
                    splen: sp,
                    dmask: mask(width, dp),
                    smask: mask(width, sp),
                    map: HashMap::new(),
                });
                self.groups.len() - 1
            }
        };
        if let Some(g) = self.groups.get_mut(pos) {
            let list = g.map.entry(k).or_default();
            let at = list.partition_point(|c| c.rank() < cand.rank());
            list.insert(at, cand);
        }
    }

    fn remove(&mut self, sel: &Selector, id: PolicyId) {
        let (dp, sp, k) = Self::key(sel);
        let Some(gi) = self.groups.iter().position(|g| g.dplen == dp && g.splen == sp) else {
            return;
        };
        let Some(g) = self.groups.get_mut(gi) else { return };
        if let Some(list) = g.map.get_mut(&k) {
            list.retain(|c| c.id != id);
            if list.is_empty() {
                g.map.remove(&k);
            }
        }
        if g.map.is_empty() {
            self.groups.swap_remove(gi);
        }
    }

    fn lookup(&self, f: &Flow, stats: &mut LookupStats) -> Option<PolicyId> {
        let (d, s) = (addr_bits(f.dst), addr_bits(f.src));
        let mut best: Option<(u32, PolicyId)> = None;
        for g in &self.groups {
            stats.groups += 1;
            let Some(list) = g.map.get(&(d & g.dmask, s & g.smask)) else { continue };
            for c in list {
                if best.is_some_and(|b| c.rank() >= b) {
                    break;
                }
                stats.candidates += 1;
                if c.sel.matches_l4(f) {
                    best = Some(c.rank());
                    break;
                }
            }
        }
        best.map(|(_, id)| id)
    }
}

#[derive(Debug, Clone, Default)]
struct Table {
    v4: FamilyIndex,
    v6: FamilyIndex,
    /// (priority, id) of every entry in this direction: iteration order.
    order: BTreeSet<(u32, PolicyId)>,
}

impl Table {
    fn family(&self, v4: bool) -> &FamilyIndex {
        if v4 {
            &self.v4
        } else {
            &self.v6
        }
    }
    fn family_mut(&mut self, v4: bool) -> (&mut FamilyIndex, u8) {
        if v4 {
            (&mut self.v4, 32)
        } else {
            (&mut self.v6, 128)
        }
    }
}

#[derive(Debug, Clone)]
struct Stored {
    dir: Direction,
    entry: Entry,
}

/// The security policy database.
#[derive(Debug, Clone)]
pub struct Spd {
    out: Table,
    inb: Table,
    entries: HashMap<PolicyId, Stored>,
    by_name: HashMap<String, Vec<PolicyId>>,
    next_id: u64,
    max: usize,
}

impl Default for Spd {
    fn default() -> Self {
        Self::new()
    }
}

impl Spd {
    /// Empty SPD bounded at [`DEFAULT_MAX_POLICIES`].
    pub fn new() -> Self {
        Self::with_max(DEFAULT_MAX_POLICIES)
    }

    /// Empty SPD holding at most `max` policies (both directions together).
    pub fn with_max(max: usize) -> Self {
        Spd {
            out: Table::default(),
            inb: Table::default(),
            entries: HashMap::new(),
            by_name: HashMap::new(),
            next_id: 1,
            max,
        }
    }

    /// The configured bound.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Number of policies (both directions).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of policies in one direction.
    pub fn len_dir(&self, dir: Direction) -> usize {
        self.table(dir).order.len()
    }

    fn table(&self, dir: Direction) -> &Table {
        match dir {
            Direction::Out => &self.out,
            Direction::In => &self.inb,
        }
    }

    fn table_mut(&mut self, dir: Direction) -> &mut Table {
        match dir {
            Direction::Out => &mut self.out,
            Direction::In => &mut self.inb,
        }
    }

    /// Add a policy. Its counters are kept as given (normally zero).
    pub fn insert(&mut self, dir: Direction, entry: Entry) -> Result<PolicyId, SpdError> {
        let sel = entry.selector;
        if sel.src.is_ipv4() != sel.dst.is_ipv4() {
            return Err(SpdError::FamilyMismatch);
        }
        if entry.name.len() > MAX_NAME_LEN {
            return Err(SpdError::NameTooLong);
        }
        let v4 = sel.dst.is_ipv4();
        if let Some(dup) = self.table(dir).family(v4).find_dup(&sel) {
            return Err(SpdError::Duplicate(dup));
        }
        if self.entries.len() >= self.max {
            return Err(SpdError::Full);
        }
        let id = PolicyId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        let priority = entry.priority;
        let t = self.table_mut(dir);
        t.order.insert((priority, id));
        let (fam, width) = t.family_mut(v4);
        fam.insert(width, Cand { priority, id, sel });
        self.by_name.entry(entry.name.clone()).or_default().push(id);
        self.entries.insert(id, Stored { dir, entry });
        Ok(id)
    }

    /// Delete a policy, returning it.
    pub fn remove(&mut self, id: PolicyId) -> Option<Entry> {
        let Stored { dir, entry } = self.entries.remove(&id)?;
        let t = self.table_mut(dir);
        t.order.remove(&(entry.priority, id));
        let (fam, _) = t.family_mut(entry.selector.dst.is_ipv4());
        fam.remove(&entry.selector, id);
        if let Some(ids) = self.by_name.get_mut(&entry.name) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_name.remove(&entry.name);
            }
        }
        Some(entry)
    }

    /// Delete every policy of a connection (both directions), returning them.
    pub fn remove_by_name(&mut self, name: &str) -> Vec<(PolicyId, Entry)> {
        let ids = self.by_name.get(name).cloned().unwrap_or_default();
        ids.into_iter().filter_map(|id| self.remove(id).map(|e| (id, e))).collect()
    }

    /// One policy and its direction.
    pub fn get(&self, id: PolicyId) -> Option<(Direction, &Entry)> {
        self.entries.get(&id).map(|s| (s.dir, &s.entry))
    }

    /// The policy of `dir` with exactly this selector, if any ([`Spd::insert`] would refuse a
    /// second one): lets a caller check a whole batch before changing anything.
    pub fn find_duplicate(&self, dir: Direction, sel: &Selector) -> Option<PolicyId> {
        self.table(dir).family(sel.dst.is_ipv4()).find_dup(sel)
    }

    /// Ids of a connection's policies.
    pub fn ids_by_name(&self, name: &str) -> &[PolicyId] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// First matching policy in (priority, id) order.
    pub fn lookup(&self, dir: Direction, flow: &Flow) -> Option<(PolicyId, &Entry)> {
        self.lookup_with_stats(dir, flow).0
    }

    /// [`Spd::lookup`], also reporting how much work it did.
    pub fn lookup_with_stats(
        &self,
        dir: Direction,
        flow: &Flow,
    ) -> (Option<(PolicyId, &Entry)>, LookupStats) {
        let mut stats = LookupStats::default();
        if flow.src.is_ipv4() != flow.dst.is_ipv4() {
            return (None, stats);
        }
        let found = self
            .table(dir)
            .family(flow.dst.is_ipv4())
            .lookup(flow, &mut stats)
            .and_then(|id| self.entries.get(&id).map(|s| (id, &s.entry)));
        (found, stats)
    }

    /// Account one packet of `bytes` to a policy. False when `id` is unknown.
    pub fn count(&mut self, id: PolicyId, bytes: u64) -> bool {
        match self.entries.get_mut(&id) {
            Some(s) => {
                let c = &mut s.entry.counters;
                c.packets = c.packets.saturating_add(1);
                c.bytes = c.bytes.saturating_add(bytes);
                true
            }
            None => false,
        }
    }

    /// Policies of one direction in lookup order (priority, then id).
    pub fn iter(&self, dir: Direction) -> impl Iterator<Item = (PolicyId, &Entry)> + '_ {
        self.table(dir)
            .order
            .iter()
            .filter_map(move |(_, id)| self.entries.get(id).map(|s| (*id, &s.entry)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn flow(src: &str, dst: &str) -> Flow {
        Flow { src: src.parse().unwrap(), dst: dst.parse().unwrap(), proto: 6, src_port: 1, dst_port: 2 }
    }

    #[test]
    fn ipnet_basics() {
        assert_eq!(net("10.1.2.3/16").to_string(), "10.1.0.0/16");
        assert_eq!(net("10.1.2.3").to_string(), "10.1.2.3/32");
        assert_eq!(net("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(net("0.0.0.0/0"), IpNet::any_v4());
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("::/129".parse::<IpNet>().is_err());
        assert!("10.0.0.0/".parse::<IpNet>().is_err());
        assert!("10.0.0.0/+1".parse::<IpNet>().is_err());
        assert!(net("10.0.0.0/8").contains("10.255.0.1".parse().unwrap()));
        assert!(!net("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(!net("0.0.0.0/0").contains("::1".parse().unwrap()));
        assert!(net("::/0").contains("::1".parse().unwrap()));
        assert!(net("10.0.0.0/8").contains_net(&net("10.1.0.0/16")));
        assert!(!net("10.1.0.0/16").contains_net(&net("10.0.0.0/8")));
    }

    /// 10,000 subnet-to-subnet tunnels plus catch-alls: a lookup probes a few
    /// groups and checks a few candidates, not thousands.
    #[test]
    fn lookup_work_is_bounded_with_10k_tunnels() {
        let mut spd = Spd::new();
        for i in 0u32..10_000 {
            let remote = IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i << 8))), 24).unwrap();
            let local = net("192.168.0.0/16");
            let t = PolicyTarget(u64::from(i));
            spd.insert(Direction::Out, Entry::new(format!("c{i}"), 100, Selector::subnets(local, remote), Action::Protect(t)))
                .unwrap();
            spd.insert(Direction::In, Entry::new(format!("c{i}"), 100, Selector::subnets(remote, local), Action::Protect(t)))
                .unwrap();
        }
        let any = Selector::subnets(IpNet::any_v4(), IpNet::any_v4());
        spd.insert(Direction::Out, Entry::new("clear", 1000, any, Action::Pass)).unwrap();
        spd.insert(Direction::In, Entry::new("clear", 1000, any, Action::Pass)).unwrap();
        assert_eq!(spd.len(), 20_002);

        let (hit, st) = spd.lookup_with_stats(Direction::Out, &flow("192.168.3.4", "10.39.15.9"));
        let (_, e) = hit.unwrap();
        assert_eq!(e.action, Action::Protect(PolicyTarget(39 << 8 | 15)));
        assert!(st.groups <= 2 && st.candidates <= 2, "{st:?}");

        let (hit, st) = spd.lookup_with_stats(Direction::In, &flow("10.39.15.9", "192.168.3.4"));
        assert_eq!(hit.unwrap().1.name, format!("c{}", 39 << 8 | 15));
        assert!(st.groups <= 2 && st.candidates <= 2, "{st:?}");

        let (miss, st) = spd.lookup_with_stats(Direction::Out, &flow("172.16.0.1", "10.39.15.9"));
        assert_eq!(miss.unwrap().1.action, Action::Pass);
        assert!(st.groups <= 2 && st.candidates <= 2, "{st:?}");

        // Removing everything leaves no empty groups behind.
        for i in 0..10_000 {
            assert_eq!(spd.remove_by_name(&format!("c{i}")).len(), 2);
        }
        assert_eq!(spd.out.v4.groups.len(), 1);
        assert_eq!(spd.inb.v4.groups.len(), 1);
        assert_eq!(spd.remove_by_name("clear").len(), 2);
        assert!(spd.out.v4.groups.is_empty() && spd.is_empty() && spd.by_name.is_empty());
    }

    #[test]
    fn mask_edges() {
        assert_eq!(mask(32, 0), 0);
        assert_eq!(mask(32, 32), u128::from(u32::MAX));
        assert_eq!(mask(32, 8), 0xff00_0000);
        assert_eq!(mask(128, 128), u128::MAX);
        assert_eq!(mask(128, 1), 1u128 << 127);
    }
}
