//! fwd's datapath engine, sans-IO: KLIPS redone in userspace, between the TUN device (plaintext)
//! and the wire (raw ESP/AH sockets, UDP 4500). The I/O code reads a packet into its own buffer,
//! leaving [`HEADROOM`] free bytes before it and [`TAILROOM`] after it, calls
//! [`Engine::outbound`] or [`Engine::inbound`], and writes the range it gets back where the answer
//! says. Nothing here does I/O or allocates per packet (events, which are rare and rate-limited,
//! are the exception).
//!
//! - [`engine`] — the [`Engine`]: tables behind a lock, control plane, listings, events
//! - [`control`] — validation of SA and policy requests (untrusted) into internal form
//! - [`tables`] — the SAD/SPD with per-SA state and per-policy counters
//! - [`outbound`] — TUN → policy → seal (ESP, AH, AH+ESP; tunnel and transport) or ICMP
//! - [`inbound`] — wire → SA → open → inner packet → inbound policy check
//! - [`icmp`] — ICMP errors for the inner sender (administratively prohibited, PMTU)
//! - [`lifetimes`] — soft/hard lifetimes by bytes, packets and time
//! - [`drops`] — drop reasons and their counters
//!
//! Threads: the outbound and inbound paths each run on their own OS thread and the control
//! plane on a third. The tables sit behind one `RwLock` that the datapath only reads; each SA's
//! mutable state (sequence numbers, replay window, counters) has its own `Mutex`, and outbound and
//! inbound SAs are distinct, so the two datapath threads never wait for each other.

pub mod control;
pub mod drops;
pub mod engine;
pub mod icmp;
pub mod inbound;
pub mod lifetimes;
pub mod outbound;
pub mod tables;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

pub use drops::DropReason;
pub use engine::Engine;

/// Free bytes the caller leaves before a packet (room for the ESP/AH headers and outer IP header
/// the engine writes in front of it, or the IP/ICMP header of an error it answers with).
pub const HEADROOM: usize = 128;
/// Free bytes the caller leaves after a packet (ESP padding, trailer and ICV).
pub const TAILROOM: usize = 128;
/// Largest IP packet.
pub const MAX_PACKET: usize = 65535;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// MTU of the TUN device (default 1400). Informational for the engine: the daemon sets the
    /// device's MTU from it.
    pub tun_mtu: u32,
    /// MTU of the path to the peers (default 1500): sealed packets of DF/IPv6 inner packets that
    /// would exceed it are answered with ICMP "fragmentation needed" / "packet too big".
    pub outer_mtu: u32,
    /// At most one acquire per policy per interval (default 1 s).
    pub acquire_interval: Duration,
    /// Bound on the SAs held (default 65536).
    pub max_sas: usize,
    /// Bound on the policies held, both directions (default 65536).
    pub max_policies: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            tun_mtu: 1400,
            outer_mtu: 1500,
            acquire_interval: Duration::from_secs(1),
            max_sas: crate::sad::DEFAULT_MAX_SAS,
            max_policies: crate::spd::DEFAULT_MAX_POLICIES,
        }
    }
}

/// Who asked (for flush, and for the rules about a compromised ikerd later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Confd,
    Ikerd,
}

/// Where a packet from the wire came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rx {
    /// Outer source address (IPv4-mapped IPv6 addresses are treated as IPv4).
    pub src: IpAddr,
    /// Outer destination address: the SA is looked up by (SPI, protocol, this).
    pub dst: IpAddr,
    /// 50 (ESP), 17 (ESP in UDP 4500) or 51 (AH: the whole IP packet).
    pub proto: u8,
    /// UDP (source, destination) ports when `proto` is 17.
    pub udp: Option<(u16, u16)>,
}

/// A route the policies want in the routing table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    /// Into the tunnel device.
    Tunnel,
    /// A "throw" route: leave by the main table, in the clear.
    Throw,
}

/// What to do with a packet read from the TUN device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// ESP bytes (from the SPI to the ICV) at `buf[range]`: send with a raw IPPROTO_ESP socket
    /// from `src` to `dst` (the kernel builds the outer IP header and fragments if needed), or,
    /// with `encap`, as the payload of a UDP datagram `src:encap.src_port → dst:encap.dst_port`.
    Esp {
        src: IpAddr,
        dst: IpAddr,
        encap: Option<ipc::sa::UdpEncap>,
        range: Range<usize>,
    },
    /// A full IP packet (AH or AH+ESP bundles) at `buf[range]`, for a header-included raw socket.
    Ip { range: Range<usize> },
    /// Write `buf[range]` (an ICMP error for the inner sender) back into the TUN device.
    ToTun { range: Range<usize> },
    /// Policy says pass: write `buf[range]` (the packet unchanged) with a header-included raw
    /// socket.
    Clear { range: Range<usize> },
    /// Dropped (and counted).
    Drop(DropReason),
}

/// What to do with a packet from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Write `buf[range]` (the inner IP packet) into the TUN device.
    ToTun { range: Range<usize> },
    /// Dropped (and counted).
    Drop(DropReason),
}
