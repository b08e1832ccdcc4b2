//! fwd's wire sockets: raw ESP and AH (IPv4 and IPv6), header-included raw sockets, and the UDP
//! 4500 socket for ESP-in-UDP (RFC 3948).
//!
//! Receiving (what the engine's `inbound` wants):
//! - ESP over IPv4: the kernel hands a raw socket the whole IP packet; the header is stripped and
//!   its destination address reported. ESP over IPv6: a raw socket gets the payload only; the
//!   destination comes from `IPV6_RECVPKTINFO`.
//! - AH over IPv4: the IP header is kept (the ICV covers it). AH over IPv6: the kernel strips the
//!   IPv6 header, so the 40-byte fixed header is rebuilt in the slot's headroom from the source,
//!   the destination, the payload length and next header 51, with traffic class, flow label and
//!   hop limit zero (all three are mutable fields, zeroed for the ICV by RFC 4302 §3.3.3.1 anyway).
//!   **IPv6 extension headers in front of AH are not supported**: they are gone by the time the
//!   raw socket sees the packet, so such a packet fails its ICV check and is dropped.
//! - IPv4 raw sockets get packets after reassembly, so an outer packet fragmented on the way
//!   arrives whole.
//!
//! Sending: an ESP payload goes out of the raw ESP socket of its family, the kernel building the
//! IP header, with the source picked per packet by `IP_PKTINFO`/`IPV6_PKTINFO`; path-MTU discovery
//! is off (`IP_PMTUDISC_DONT`, `IPV6_PMTUDISC_DONT`) so the kernel fragments an outer packet
//! larger than the path rather than refusing it. Whole IP packets (AH, cleartext bypass) go out of
//! header-included sockets (`IPPROTO_RAW`; `IPV6_HDRINCL` for IPv6); the kernel does not fragment
//! those: a packet above the MTU is refused with `EMSGSIZE`.
//!
//! Every socket created here, and the UDP socket given to [`NattSocket::new`], carries
//! `SO_MARK` = [`BYPASS_MARK`] (see [`super::netlink`]).
//!
//! On a kernel without IPv6 the IPv6 sockets are simply absent ([`EspSockets::has_v6`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::socket::{getsockopt, setsockopt, sockopt};

use super::batch::{send_one, FlushStats, RecvBatch, SendBatch, SockFamily};
use super::{BYPASS_MARK, HEADROOM};
use crate::esp::ip::{classify_nat_t, PROTO_AH, PROTO_ESP};

/// Receive buffer asked for on the receiving sockets (`SO_RCVBUFFORCE`, falling back to
/// `SO_RCVBUF`, which the kernel caps at `net.core.rmem_max`): bursts of 1400-byte packets
/// overflow the default ~200 KiB long before fwd is scheduled (DESIGN-NOTES §4).
pub const RECV_BUFFER: usize = 4 << 20;

/// Non-ESP marker in front of IKE messages on port 4500 (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// Put `SO_MARK` = [`BYPASS_MARK`] on `fd` so its packets skip the tunnel routing table
/// (needs `CAP_NET_ADMIN`). For the IKE sockets, which the lead binds.
pub fn set_bypass_mark(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt(&fd, sockopt::Mark, &BYPASS_MARK)
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("SO_MARK: {e}")))
}

/// The `SO_MARK` of `fd`.
pub fn bypass_mark(fd: BorrowedFd<'_>) -> io::Result<u32> {
    Ok(getsockopt(&fd, sockopt::Mark)?)
}

fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and its size is passed; the fd is borrowed, so open.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and `len` is its size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Path-MTU discovery setting of `fd` (`IP_MTU_DISCOVER` or `IPV6_MTU_DISCOVER` by `v6`), for tests.
pub fn mtu_discover(fd: BorrowedFd<'_>, v6: bool) -> io::Result<libc::c_int> {
    if v6 {
        getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)
    } else {
        getsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)
    }
}

fn set_pmtudisc_dont(fd: BorrowedFd<'_>, v6: bool) -> io::Result<()> {
    if v6 {
        setsockopt_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_DONT,
        )
    } else {
        setsockopt_int(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DONT,
        )
    }
}

fn set_recv_buffer(fd: BorrowedFd<'_>) {
    if setsockopt(&fd, sockopt::RcvBufForce, &RECV_BUFFER).is_err() {
        // Best effort: without CAP_NET_ADMIN the plain option still raises it up to rmem_max.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &RECV_BUFFER);
    }
}

/// A raw socket of `domain` for IP protocol `proto`, close-on-exec, marked.
fn raw_socket(domain: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        let fam = if domain == libc::AF_INET6 {
            "IPv6"
        } else {
            "IPv4"
        };
        return Err(io::Error::new(
            e.kind(),
            format!("raw {fam} socket for protocol {proto}: {e}"),
        ));
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_bypass_mark(fd.as_fd())?;
    Ok(fd)
}

/// Which receiving raw socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawRx {
    /// ESP over IPv4: the engine gets the ESP bytes.
    Esp4,
    /// ESP over IPv6: the engine gets the ESP bytes.
    Esp6,
    /// AH over IPv4: the engine gets the whole IPv4 packet.
    Ah4,
    /// AH over IPv6: the engine gets a rebuilt IPv6 header followed by the AH bytes.
    Ah6,
}

impl RawRx {
    /// All four.
    pub const ALL: [RawRx; 4] = [RawRx::Esp4, RawRx::Esp6, RawRx::Ah4, RawRx::Ah6];

    /// IP protocol number (50 or 51).
    pub fn proto(self) -> u8 {
        match self {
            RawRx::Esp4 | RawRx::Esp6 => PROTO_ESP,
            RawRx::Ah4 | RawRx::Ah6 => PROTO_AH,
        }
    }
}

#[derive(Debug)]
struct V6Sockets {
    esp: OwnedFd,
    ah: OwnedFd,
    raw: OwnedFd,
}

/// The raw sockets of fwd's ESP/AH datapath.
#[derive(Debug)]
pub struct EspSockets {
    esp4: OwnedFd,
    ah4: OwnedFd,
    raw4: OwnedFd,
    v6: Option<V6Sockets>,
}

impl EspSockets {
    /// Open the raw sockets (needs `CAP_NET_RAW` and, for `SO_MARK`, `CAP_NET_ADMIN`), in the
    /// calling thread's network namespace. The IPv6 ones are skipped if the kernel has no IPv6.
    pub fn open() -> io::Result<EspSockets> {
        let esp4 = raw_socket(libc::AF_INET, libc::IPPROTO_ESP)?;
        set_pmtudisc_dont(esp4.as_fd(), false)?;
        set_recv_buffer(esp4.as_fd());
        let ah4 = raw_socket(libc::AF_INET, libc::IPPROTO_AH)?;
        set_recv_buffer(ah4.as_fd());
        // IPPROTO_RAW implies IP_HDRINCL on IPv4 and is send-only.
        let raw4 = raw_socket(libc::AF_INET, libc::IPPROTO_RAW)?;
        let v6 = match raw_socket(libc::AF_INET6, libc::IPPROTO_ESP) {
            Ok(esp) => {
                setsockopt(&esp, sockopt::Ipv6RecvPacketInfo, &true)?;
                set_pmtudisc_dont(esp.as_fd(), true)?;
                set_recv_buffer(esp.as_fd());
                let ah = raw_socket(libc::AF_INET6, libc::IPPROTO_AH)?;
                setsockopt(&ah, sockopt::Ipv6RecvPacketInfo, &true)?;
                set_recv_buffer(ah.as_fd());
                let raw = raw_socket(libc::AF_INET6, libc::IPPROTO_RAW)?;
                setsockopt_int(raw.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_HDRINCL, 1)?;
                Some(V6Sockets { esp, ah, raw })
            }
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => None,
            Err(e) => return Err(e),
        };
        Ok(EspSockets {
            esp4,
            ah4,
            raw4,
            v6,
        })
    }

    /// Are the IPv6 sockets open?
    pub fn has_v6(&self) -> bool {
        self.v6.is_some()
    }

    /// The receiving socket `which` (to poll), `None` for an IPv6 one without IPv6.
    pub fn rx_fd(&self, which: RawRx) -> Option<BorrowedFd<'_>> {
        match which {
            RawRx::Esp4 => Some(self.esp4.as_fd()),
            RawRx::Ah4 => Some(self.ah4.as_fd()),
            RawRx::Esp6 => self.v6.as_ref().map(|s| s.esp.as_fd()),
            RawRx::Ah6 => self.v6.as_ref().map(|s| s.ah.as_fd()),
        }
    }

    /// Every socket, for `SO_MARK` checks and status.
    pub fn all_fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v = vec![self.esp4.as_fd(), self.ah4.as_fd(), self.raw4.as_fd()];
        if let Some(s) = &self.v6 {
            v.extend([s.esp.as_fd(), s.ah.as_fd(), s.raw.as_fd()]);
        }
        v
    }

    /// Receive a batch from socket `which` and put each packet in the form the engine wants (see
    /// the module documentation), with `src` (port 0) and `dst` set. Packets that cannot be put in
    /// that form (bad IPv4 header, no destination address) are dropped and counted as malformed.
    /// `Err(WouldBlock)` if nothing was queued.
    pub fn recv(&self, which: RawRx, batch: &mut RecvBatch) -> io::Result<usize> {
        let fd = self
            .rx_fd(which)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
        batch.recv(fd)?;
        batch.retain_map(|slot, info| match which {
            RawRx::Esp4 | RawRx::Ah4 => {
                let Some((hlen, proto, dst)) = slot.get(info.range()).and_then(ipv4_header) else {
                    return false;
                };
                if proto != which.proto() {
                    return false;
                }
                info.dst = Some(IpAddr::V4(dst));
                if which == RawRx::Esp4 {
                    info.start += hlen;
                }
                true
            }
            RawRx::Esp6 => matches!(info.dst, Some(IpAddr::V6(_))),
            RawRx::Ah6 => {
                let (Some(SocketAddr::V6(src)), Some(IpAddr::V6(dst))) = (info.src, info.dst)
                else {
                    return false;
                };
                match rebuild_ipv6_header(slot, info.start, info.end, *src.ip(), dst, PROTO_AH) {
                    Some(start) => {
                        info.start = start;
                        true
                    }
                    None => false,
                }
            }
        });
        Ok(batch.len())
    }

    /// Send one ESP packet (`esp` = SPI onwards) from `src` to `dst`; the kernel adds the IP header.
    pub fn send_esp(&self, esp: &[u8], src: IpAddr, dst: IpAddr) -> io::Result<()> {
        let (fd, family) = self.esp_fd(dst)?;
        send_one(fd, family, &[esp], SocketAddr::new(dst, 0), Some(src)).map(|_| ())
    }

    /// Send one whole IPv4 or IPv6 packet as it is (header included), to the destination in its
    /// header.
    pub fn send_ip(&self, pkt: &[u8]) -> io::Result<()> {
        let dst = ip_destination(pkt)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP packet"))?;
        let (fd, family) = match dst {
            IpAddr::V4(_) => (self.raw4.as_fd(), SockFamily::V4),
            IpAddr::V6(_) => (
                self.v6
                    .as_ref()
                    .map(|s| s.raw.as_fd())
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?,
                SockFamily::V6,
            ),
        };
        send_one(fd, family, &[pkt], SocketAddr::new(dst, 0), None).map(|_| ())
    }

    /// Send a batch of ESP packets (pushed with `to` = (destination, 0) and `from` = source).
    pub fn flush_esp(&self, batch: &mut SendBatch) -> FlushStats {
        batch.flush_split(
            Some(self.esp4.as_fd()),
            self.v6.as_ref().map(|s| s.esp.as_fd()),
        )
    }

    /// Send a batch of whole IP packets (pushed with `to` = ([`ip_destination`], 0), `from` = None).
    pub fn flush_ip(&self, batch: &mut SendBatch) -> FlushStats {
        batch.flush_split(
            Some(self.raw4.as_fd()),
            self.v6.as_ref().map(|s| s.raw.as_fd()),
        )
    }

    fn esp_fd(&self, dst: IpAddr) -> io::Result<(BorrowedFd<'_>, SockFamily)> {
        match dst {
            IpAddr::V4(_) => Ok((self.esp4.as_fd(), SockFamily::V4)),
            IpAddr::V6(_) => self
                .v6
                .as_ref()
                .map(|s| (s.esp.as_fd(), SockFamily::V6))
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
        }
    }
}

/// (header length, protocol, destination) of an IPv4 packet whose header fits in `pkt`.
fn ipv4_header(pkt: &[u8]) -> Option<(usize, u8, Ipv4Addr)> {
    let b0 = *pkt.first()?;
    let hlen = usize::from(b0 & 0x0f) * 4;
    if b0 >> 4 != 4 || hlen < 20 || pkt.len() < hlen {
        return None;
    }
    let proto = *pkt.get(9)?;
    let d = pkt.get(16..20)?;
    Some((
        hlen,
        proto,
        Ipv4Addr::new(*d.first()?, *d.get(1)?, *d.get(2)?, *d.get(3)?),
    ))
}

/// Write a 40-byte IPv6 fixed header (traffic class, flow label and hop limit 0) in front of
/// `slot[start..end]`; the new start, or `None` if there is no room or the payload is too long.
fn rebuild_ipv6_header(
    slot: &mut [u8],
    start: usize,
    end: usize,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
) -> Option<usize> {
    let plen = u16::try_from(end.checked_sub(start)?).ok()?;
    let hstart = start.checked_sub(crate::esp::ip::IPV6_HDR_LEN)?;
    let h = slot.get_mut(hstart..start)?;
    h.fill(0);
    *h.first_mut()? = 0x60;
    h.get_mut(4..6)?.copy_from_slice(&plen.to_be_bytes());
    *h.get_mut(6)? = next;
    h.get_mut(8..24)?.copy_from_slice(&src.octets());
    h.get_mut(24..40)?.copy_from_slice(&dst.octets());
    Some(hstart)
}

/// The destination address in the header of an IPv4 or IPv6 packet.
pub fn ip_destination(pkt: &[u8]) -> Option<IpAddr> {
    match *pkt.first()? >> 4 {
        4 => ipv4_header(pkt).map(|(_, _, d)| IpAddr::V4(d)),
        6 => {
            let d: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(d)))
        }
        _ => None,
    }
}

/// fwd's UDP 4500 socket: ESP-in-UDP, IKE behind the non-ESP marker, NAT keepalives.
#[derive(Debug)]
pub struct NattSocket {
    sock: UdpSocket,
    family: SockFamily,
    port: u16,
}

impl NattSocket {
    /// Take over the bound socket (IPv4, or IPv6 — dual-stack or not): mark it, turn on
    /// destination-address reporting and turn off path-MTU discovery (outer packets get
    /// fragmented, as on the raw sockets).
    pub fn new(sock: UdpSocket) -> io::Result<NattSocket> {
        let local = sock.local_addr()?;
        set_bypass_mark(sock.as_fd())?;
        let family = if local.is_ipv6() {
            // On a dual-stack socket IPV6_PKTINFO also reports IPv4 destinations (mapped).
            setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true)?;
            set_pmtudisc_dont(sock.as_fd(), true)?;
            // IPv4 packets sent from an IPv6 socket follow the IPv4 option.
            let _ = set_pmtudisc_dont(sock.as_fd(), false);
            SockFamily::V6
        } else {
            setsockopt(&sock, sockopt::Ipv4PacketInfo, &true)?;
            set_pmtudisc_dont(sock.as_fd(), false)?;
            SockFamily::V4
        };
        set_recv_buffer(sock.as_fd());
        Ok(NattSocket {
            sock,
            family,
            port: local.port(),
        })
    }

    /// The local port (the destination port of what [`NattSocket::recv`] returns).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The wrapped socket.
    pub fn socket(&self) -> &UdpSocket {
        &self.sock
    }

    /// Receive a batch; each packet's `natt` says what it is
    /// ([`crate::esp::ip::classify_nat_t`]; IKE still starts with the marker), `src` is the
    /// sender's address and port, `dst` the local address it was sent to.
    pub fn recv(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.recv(self.sock.as_fd())?;
        batch.retain_map(|slot, info| {
            info.natt = Some(classify_nat_t(slot.get(info.range()).unwrap_or(&[])));
            true
        });
        Ok(batch.len())
    }

    /// Send one ESP packet (`esp` = SPI onwards) in UDP to `to` from `from`.
    pub fn send_esp(&self, esp: &[u8], to: SocketAddr, from: IpAddr) -> io::Result<()> {
        send_one(self.sock.as_fd(), self.family, &[esp], to, Some(from)).map(|_| ())
    }

    /// Send one IKE message with the non-ESP marker in front (gathered, not copied).
    pub fn send_ike(&self, ike: &[u8], to: SocketAddr, from: IpAddr) -> io::Result<()> {
        send_one(
            self.sock.as_fd(),
            self.family,
            &[&NON_ESP_MARKER, ike],
            to,
            Some(from),
        )
        .map(|_| ())
    }

    /// Send a NAT keepalive (one 0xff byte, RFC 3948 §2.3).
    pub fn send_keepalive(&self, to: SocketAddr, from: IpAddr) -> io::Result<()> {
        send_one(self.sock.as_fd(), self.family, &[&[0xff]], to, Some(from)).map(|_| ())
    }

    /// Send a batch of ESP packets (pushed with the peer's address and port and our source).
    pub fn flush(&self, batch: &mut SendBatch) -> FlushStats {
        batch.flush(self.sock.as_fd(), self.family)
    }
}

impl AsFd for NattSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

// Compile-time check: the rebuilt IPv6 header fits in the headroom.
const _: () = assert!(crate::esp::ip::IPV6_HDR_LEN <= HEADROOM);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checks() {
        let mut p = [0u8; 28];
        p[0] = 0x45;
        p[9] = 50;
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        assert_eq!(ipv4_header(&p), Some((20, 50, Ipv4Addr::new(10, 0, 0, 2))));
        p[0] = 0x46; // 24-byte header
        assert_eq!(ipv4_header(&p).unwrap().0, 24);
        p[0] = 0x4f; // 60 > 28
        assert_eq!(ipv4_header(&p), None);
        p[0] = 0x44; // < 20
        assert_eq!(ipv4_header(&p), None);
        p[0] = 0x65;
        assert_eq!(ipv4_header(&p), None);
        for cut in 0..20 {
            assert_eq!(ipv4_header(&p[..cut]), None);
        }
        assert_eq!(ipv4_header(&[]), None);
    }

    #[test]
    fn ipv6_header_rebuilt_in_headroom() {
        let mut slot = vec![0xeeu8; HEADROOM + 64];
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let start = rebuild_ipv6_header(&mut slot, HEADROOM, HEADROOM + 24, src, dst, 51).unwrap();
        assert_eq!(start, HEADROOM - 40);
        let h = &slot[start..HEADROOM];
        assert_eq!(&h[..8], &[0x60, 0, 0, 0, 0, 24, 51, 0]);
        assert_eq!(&h[8..24], &src.octets());
        assert_eq!(&h[24..40], &dst.octets());
        assert_eq!(
            ip_destination(&slot[start..HEADROOM + 24]),
            Some(IpAddr::V6(dst))
        );
        // no headroom, or a payload that does not fit a u16
        assert_eq!(rebuild_ipv6_header(&mut slot, 39, 50, src, dst, 51), None);
        let mut big = vec![0u8; 40 + 70000];
        assert_eq!(
            rebuild_ipv6_header(&mut big, 40, 40 + 70000, src, dst, 51),
            None
        );
        #[allow(clippy::reversed_empty_ranges)]
        let r = rebuild_ipv6_header(&mut slot, 60, 50, src, dst, 51);
        assert_eq!(r, None);
    }

    #[test]
    fn ip_destination_of_garbage() {
        assert_eq!(ip_destination(&[]), None);
        assert_eq!(ip_destination(&[0x60; 39]), None);
        assert_eq!(ip_destination(&[0x10; 60]), None);
    }

    #[test]
    fn natt_socket_unprivileged_parts() {
        // SO_MARK needs CAP_NET_ADMIN: as root this succeeds, otherwise it must fail cleanly.
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        match NattSocket::new(s) {
            Ok(n) => {
                assert_eq!(bypass_mark(n.as_fd()).unwrap(), BYPASS_MARK);
                assert_eq!(
                    mtu_discover(n.as_fd(), false).unwrap(),
                    libc::IP_PMTUDISC_DONT
                );
            }
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
        }
    }
}
