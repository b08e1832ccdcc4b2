//! The IKE socket ikerd receives from fwd (UDP 500, bound by fwd): datagrams in with the address
//! they were sent to (IP_PKTINFO / IPV6_PKTINFO: a responder answers from the address the peer
//! used, and NAT-D hashes need it), datagrams out from a chosen source address.

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn, SockaddrIn6, SockaddrStorage,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use tokio::io::Interest;

/// The largest IKE datagram ikerd reads; longer ones are truncated and then refused by the codec.
pub const MAX_DATAGRAM: usize = 64 * 1024;

pub struct IkeSocket {
    sock: tokio::net::UdpSocket,
    v6: bool,
    port: u16,
}

/// One datagram received.
pub struct Received {
    pub len: usize,
    pub remote: SocketAddr,
    /// The address it was sent to (None if the kernel did not say).
    pub local: Option<IpAddr>,
}

impl IkeSocket {
    pub fn new(sock: UdpSocket) -> io::Result<IkeSocket> {
        sock.set_nonblocking(true)?;
        let local = sock.local_addr()?;
        let v6 = local.is_ipv6();
        if v6 {
            setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
        }
        // On a dual-stack socket IPv4 datagrams carry IP_PKTINFO.
        setsockopt(&sock, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
        Ok(IkeSocket {
            sock: tokio::net::UdpSocket::from_std(sock)?,
            v6,
            port: local.port(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::READABLE, || recv_one(fd, buf))
            .await
    }

    /// Send one datagram to `to` from `from` (non-blocking; a full socket buffer is an error, as a
    /// lost datagram is for IKE: the retransmission timer covers it).
    pub fn send(&self, bytes: &[u8], to: SocketAddr, from: IpAddr) -> io::Result<()> {
        let iov = [IoSlice::new(bytes)];
        let fd = self.sock.as_raw_fd();
        if self.v6 {
            let to6 = match to {
                SocketAddr::V4(a) => SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
                SocketAddr::V6(a) => a,
            };
            let src = match from {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => a,
            };
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: src.octets(),
                },
                ipi6_ifindex: 0,
            };
            let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
            let addr = SockaddrIn6::from(to6);
            sendmsg(fd, &iov, &cmsg, MsgFlags::MSG_DONTWAIT, Some(&addr))
                .map(|_| ())
                .map_err(io::Error::from)
        } else {
            let (SocketAddr::V4(to4), IpAddr::V4(src)) = (to, from) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot send to {to} from {from} on an IPv4 socket"),
                ));
            };
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(src.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
            let addr = SockaddrIn::from(SocketAddrV4::new(*to4.ip(), to4.port()));
            sendmsg(fd, &iov, &cmsg, MsgFlags::MSG_DONTWAIT, Some(&addr))
                .map(|_| ())
                .map_err(io::Error::from)
        }
    }
}

fn recv_one(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::in_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)?;
    let remote = msg
        .address
        .as_ref()
        .and_then(|a| {
            a.as_sockaddr_in6()
                .map(|s| SocketAddr::V6(SocketAddrV6::from(*s)))
                .or_else(|| {
                    a.as_sockaddr_in()
                        .map(|s| SocketAddr::V4(SocketAddrV4::from(*s)))
                })
        })
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "datagram without a source"))?;
    let remote = SocketAddr::new(remote.ip().to_canonical(), remote.port());
    let mut local = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv6PacketInfo(i) => {
                    local = Some(IpAddr::from(i.ipi6_addr.s6_addr).to_canonical())
                }
                ControlMessageOwned::Ipv4PacketInfo(i) => {
                    local = Some(IpAddr::from(i.ipi_addr.s_addr.to_ne_bytes()))
                }
                _ => {}
            }
        }
    }
    Ok(Received {
        len: msg.bytes,
        remote,
        local,
    })
}
