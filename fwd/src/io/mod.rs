//! fwd's packet I/O: the thin, privileged layer between the sans-IO engine (`crate::datapath`) and
//! the kernel. Nothing here decides anything about a packet; it moves bytes and addresses.
//!
//! | module | what |
//! |---|---|
//! | [`tun`] | the persistent TUN device (`IFF_TUN | IFF_NO_PI`, offload with `IFF_VNET_HDR`), its MTU, link state and sysctls; [`tun::TunReader`] |
//! | [`gso`] | sans-IO: the `virtio_net_hdr`, GSO super-packets split into IP packets, checksum completion |
//! | [`sockets`] | raw ESP/AH sockets (v4/v6, receive and send), header-included raw sockets, the UDP 4500 socket, `SO_MARK` |
//! | [`batch`] | `recvmmsg`/`sendmmsg` into preallocated slots with [`HEADROOM`] in front of every packet |
//! | [`netlink`] | the policy-routing table that steers protected traffic into the TUN device |
//! | [`sysctl`] | per-interface `/proc/sys/net` settings, with the interface name checked |
//!
//! Every socket fwd uses on the wire carries `SO_MARK` = [`BYPASS_MARK`]; the ip rule installed by
//! [`netlink::Routes::ensure_rules`] sends every *unmarked* packet through the tunnel table first,
//! so fwd's own encrypted packets (and IKE's) leave by the normal routes while cleartext to a
//! protected destination goes into the TUN device.
//!
//! How the thread loops use it (each loop owns its batches; nothing is allocated per packet):
//! ```text
//! inbound (per wire socket, after poll):
//!     esp.recv(RawRx::Esp4, &mut rx)?            // or natt.recv(&mut rx)? — info.natt says ESP/IKE/keepalive
//!     for i in 0..rx.len() { let p = rx.packet(i)?;  // p.buf = whole slot, p.info.range() = ESP bytes
//!         engine.inbound(Rx { src, dst, proto, udp }, p.buf, p.info.range()) -> ToTun{range} => tun.write(&p.buf[range]) }
//! outbound (TUN, after poll):
//!     reader.read_batch(&tun, &mut rx)?           // up to BATCH IP packets (super-packets split), each at HEADROOM of its slot
//!     for each: engine.outbound(p.buf, range) -> Esp{src,dst,encap:None,range} => tx_esp.push(&p.buf[range], (dst,0), Some(src))
//!                                             -> Esp{.., encap: Some(ports)}   => tx_natt.push(.., (dst,dport), Some(src))
//!                                             -> Ip{range} | Clear{range}      => tx_ip.push(.., (ip_destination,0), None)
//!     esp.flush_esp(&mut tx_esp); natt.flush(&mut tx_natt); esp.flush_ip(&mut tx_ip);
//! ```
//!
//! Tests needing root and network namespaces are in `fwd/tests/io_netns.rs`.

pub mod batch;
pub mod gso;
pub mod netlink;
pub mod sockets;
pub mod sysctl;
pub mod tun;

pub use batch::{
    FlushStats, PushError, RecvBatch, RecvStats, RxInfo, RxPacket, SendBatch, SockFamily,
    DEFAULT_PACKET_CAP,
};
pub use netlink::{Reconciled, Route, RouteKind, Routes};
pub use sockets::{
    bypass_mark, ip_destination, set_bypass_mark, EspSockets, NattSocket, RawRx, NON_ESP_MARKER,
};
pub use tun::Tun;

/// Free bytes in front of every packet slot (outer IP header, UDP encapsulation, ESP header, IV;
/// or the rebuilt IPv6 header of an inbound AH packet).
pub const HEADROOM: usize = 128;
/// Free bytes behind the packet capacity of every slot (ESP padding, trailer and ICV: at most
/// 15 + 2 + 32 bytes with the suites fwd implements).
pub const TAILROOM: usize = 128;
/// Packets per `recvmmsg`/`sendmmsg` call, and per TUN batch read.
pub const BATCH: usize = 32;
/// `SO_MARK` on every socket fwd sends on the wire: its packets skip the tunnel routing table.
pub const BYPASS_MARK: u32 = 0x5e5e;

use std::net::{IpAddr, SocketAddr};

/// `::ffff:a.b.c.d` → `a.b.c.d`; any other address unchanged. Dual-stack sockets report IPv4 peers
/// in the mapped form; everything above this layer sees plain IPv4.
pub fn unmap(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(a),
        },
        v4 => v4,
    }
}

/// [`unmap`] for a socket address (port kept).
pub fn unmap_sa(sa: SocketAddr) -> SocketAddr {
    SocketAddr::new(unmap(sa.ip()), sa.port())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn unmap_only_touches_mapped() {
        assert_eq!(
            unmap("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            unmap("fd00::1".parse().unwrap()),
            "fd00::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            unmap("::1".parse().unwrap()),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            unmap_sa("[::ffff:192.0.2.1]:4500".parse().unwrap()),
            "192.0.2.1:4500".parse::<SocketAddr>().unwrap()
        );
    }
}
