//! fwd's packet I/O (`fwd::io`) for real, inside network namespaces this file creates and always
//! deletes (a Drop guard, so also when a test fails). Needs root: the tests fail, never skip,
//! without it. Nothing touches the root namespace's addresses, routes or rules.
//!
//! Each test runs its namespace work on a short-lived thread that has `setns`'d into the
//! namespace: sockets, TUN devices, `/proc/sys/net` and netlink all follow the thread's namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fwd::esp::ip::{checksum, NatTKind};
use fwd::io::batch::SockFamily;
use fwd::io::gso::{Coalescer, VnetHdr};
use fwd::io::sockets::mtu_discover;
use fwd::io::sysctl::{self, Family};
use fwd::io::tun::{TunReader, TunRxStats};
use fwd::io::{
    bypass_mark, set_bypass_mark, EspSockets, NattSocket, RawRx, Reconciled, RecvBatch, RouteKind,
    Routes, SendBatch, Tun, BATCH, BYPASS_MARK, HEADROOM,
};
use ipc::policy::Net;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};

// ---------------------------------------------------------------------------------------------
// Shared namespace helpers
// ---------------------------------------------------------------------------------------------

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "fwd/tests/io_netns.rs needs root (network namespaces, raw sockets, TUN devices); \
         run it as root (CI does)"
    );
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace named `fsio-<pid>-<n>-<tag>`, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("fsio-{}-{n}-{tag}", std::process::id());
        run_ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> args…`, which must succeed; its stdout.
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run_ip(&all)
    }

    /// `ip -n <ns> args…` whatever its outcome: (success, stdout).
    fn ip_try(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Run `f` on a thread inside the namespace.
    fn run<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).unwrap();
                setns(file.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run_ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip(8) missing");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const A4: &str = "10.77.0.1";
const B4: &str = "10.77.0.2";
const A6: &str = "fd77::1";
const B6: &str = "fd77::2";

/// Two namespaces joined by a veth pair `va` (in A: 10.77.0.1/24, fd77::1/64) — `vb` (in B:
/// 10.77.0.2/24, fd77::2/64), up, IPv6 without DAD.
fn pair(tag: &str) -> (Netns, Netns) {
    let a = Netns::new(&format!("{tag}a"));
    let b = Netns::new(&format!("{tag}b"));
    run_ip(&[
        "link", "add", "va", "netns", &a.name, "type", "veth", "peer", "name", "vb", "netns",
        &b.name,
    ]);
    for (ns, dev, v4, v6) in [(&a, "va", A4, A6), (&b, "vb", B4, B6)] {
        ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", dev]);
        ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    (a, b)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> Net {
    s.parse().unwrap()
}

fn readable(fd: BorrowedFd<'_>, ms: u16) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// Call `recv` (a batch receive) until `want` packets are in or `secs` pass; each packet's bytes
/// and info, and the size of every non-empty batch.
fn collect(
    batch: &mut RecvBatch,
    fd: BorrowedFd<'_>,
    want: usize,
    secs: u64,
    mut recv: impl FnMut(&mut RecvBatch) -> io::Result<usize>,
) -> (Vec<(Vec<u8>, fwd::io::batch::RxInfo)>, Vec<usize>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        if !readable(fd, 100) {
            continue;
        }
        match recv(batch) {
            Ok(n) => {
                if n > 0 {
                    sizes.push(n);
                }
                for i in 0..n {
                    got.push((batch.payload(i).unwrap().to_vec(), batch.info(i).unwrap()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("receive: {e}"),
        }
    }
    (got, sizes)
}

/// Nothing arrives on `sock` for `ms` milliseconds.
fn silent(sock: &UdpSocket, ms: u16) -> bool {
    if !readable(sock.as_fd(), ms) {
        return true;
    }
    let mut buf = [0u8; 2048];
    match sock.recv_from(&mut buf) {
        Ok((n, from)) => {
            eprintln!(
                "unexpected datagram from {from}: {:?}",
                String::from_utf8_lossy(&buf[..n])
            );
            false
        }
        Err(_) => true,
    }
}

// ---------------------------------------------------------------------------------------------
// Packet builders
// ---------------------------------------------------------------------------------------------

fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn ipv6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    tc_flow: u32,
    hop: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0..4].copy_from_slice(&((6u32 << 28) | tc_flow).to_be_bytes());
    p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    p[6] = next;
    p[7] = hop;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16) -> Vec<u8> {
    let mut icmp = vec![8u8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"ferroswan-tun-ok");
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4_packet(src, dst, 1, &icmp)
}

/// An ESP-looking payload: SPI, sequence number, `len - 8` patterned bytes.
fn esp_bytes(spi: u32, seq: u32, len: usize) -> Vec<u8> {
    let mut v = spi.to_be_bytes().to_vec();
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend((0..len.saturating_sub(8)).map(|i| (i * 7 + seq as usize) as u8));
    v
}

// ---------------------------------------------------------------------------------------------
// TUN
// ---------------------------------------------------------------------------------------------

#[test]
fn tun_persists_reattaches_and_answers_ping() {
    let ns = Netns::new("tun");
    const DEV: &str = "fsio0";
    ns.run(|| {
        let tun = Tun::open_or_create(DEV, 1400).unwrap();
        assert_eq!(tun.name(), DEV);
        assert_eq!(tun.mtu().unwrap(), 1400);
        assert!(tun.ifindex() > 1);
        assert_eq!(
            sysctl::get_iface(Family::V4, DEV, "rp_filter").unwrap(),
            "2"
        );
        assert_eq!(
            sysctl::get_iface(Family::V6, DEV, "addr_gen_mode").unwrap(),
            "1"
        );
        assert_eq!(
            sysctl::get_iface(Family::V6, DEV, "accept_ra").unwrap(),
            "0"
        );
        // One owner at a time: a second fwd cannot attach.
        assert_eq!(
            Tun::open_or_create(DEV, 1400).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        // Not attached yet to an address: nothing to read.
        let mut b = [0u8; 2048];
        assert_eq!(
            tun.read(&mut b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    });
    // The handle is gone (as when fwd dies): the device stays, up, with its MTU.
    let link = ns.ip(&["link", "show", DEV]);
    assert!(
        link.contains(DEV) && link.contains("mtu 1400") && link.contains(",UP"),
        "{link}"
    );
    // No IPv6 link-local address was generated.
    assert!(!ns.ip(&["addr", "show", DEV]).contains("inet6"));
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", DEV]);

    ns.run(|| {
        // Re-attach after a "restart", with a new MTU.
        let tun = Tun::open_or_create(DEV, 1380).unwrap();
        assert_eq!(tun.mtu().unwrap(), 1380);
        let (me, peer) = (Ipv4Addr::new(10, 9, 0, 2), Ipv4Addr::new(10, 9, 0, 1));
        for seq in 1..=5u16 {
            tun.write(&icmp_echo(me, peer, 0x4242, seq)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut batch = RecvBatch::new();
        let mut reader = TunReader::new();
        let (got, sizes) = collect(&mut batch, tun.as_fd(), 5, 3, |b| {
            reader.read_batch(&tun, b)
        });
        assert_eq!(got.len(), 5, "echo replies read back: {}", got.len());
        assert!(
            sizes.iter().any(|&n| n > 1),
            "one read_batch returned several packets: {sizes:?}"
        );
        for (i, (pkt, info)) in got.iter().enumerate() {
            assert_eq!(info.start, HEADROOM);
            assert_eq!(pkt[0] >> 4, 4);
            assert_eq!(pkt[9], 1, "ICMP");
            assert_eq!(&pkt[12..16], &peer.octets(), "reply source");
            assert_eq!(&pkt[16..20], &me.octets(), "reply destination");
            let icmp = &pkt[20..];
            assert_eq!(icmp[0], 0, "echo reply");
            assert_eq!(u16::from_be_bytes([icmp[4], icmp[5]]), 0x4242);
            assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), i as u16 + 1);
            assert_eq!(&icmp[8..], b"ferroswan-tun-ok");
            assert_eq!(checksum(icmp), 0);
        }
        // Garbage is refused by the kernel, not turned into a packet.
        assert!(tun.write(&[0x10, 0, 0, 0]).is_err());
    });

    // While detached, packets routed into the device are dropped, not queued for later.
    let out = ns.ip_try(&["route", "add", "10.9.9.0/24", "dev", DEV]);
    assert!(out.0);
    let sent = ns.run(|| {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.send_to(b"while-dead", "10.9.9.9:9").is_ok()
    });
    ns.run(|| {
        let tun = Tun::open_or_create(DEV, 1380).unwrap();
        let mut b = [0u8; 2048];
        assert!(
            !readable(tun.as_fd(), 200),
            "a packet sent while detached (sent={sent}) was queued"
        );
        assert_eq!(
            tun.read(&mut b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        // Destroying while attached is refused; after the handle is gone it works.
        assert_eq!(
            Tun::destroy(DEV).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(tun);
        assert!(Tun::destroy(DEV).unwrap());
        assert!(!Tun::destroy(DEV).unwrap());
    });
    assert!(
        !ns.ip_try(&["link", "show", DEV]).0,
        "device still there after destroy"
    );
}

// ---------------------------------------------------------------------------------------------
// Raw ESP / AH
// ---------------------------------------------------------------------------------------------

#[test]
fn raw_esp_and_ah_between_namespaces() {
    let (a, b) = pair("raw");
    a.ip(&["addr", "add", "10.77.0.11/24", "dev", "va"]);
    let sa = a.run(|| EspSockets::open().unwrap());
    let sb = b.run(|| EspSockets::open().unwrap());
    assert!(sa.has_v6() && sb.has_v6());
    for fd in sa.all_fds().into_iter().chain(sb.all_fds()) {
        assert_eq!(bypass_mark(fd).unwrap(), BYPASS_MARK);
    }
    assert_eq!(
        mtu_discover(sa.rx_fd(RawRx::Esp4).unwrap(), false).unwrap(),
        libc::IP_PMTUDISC_DONT
    );
    assert_eq!(
        mtu_discover(sa.rx_fd(RawRx::Esp6).unwrap(), true).unwrap(),
        libc::IPV6_PMTUDISC_DONT
    );

    let mut batch = RecvBatch::new();
    let mut recv = |which: RawRx, want: usize| {
        let fd = sb.rx_fd(which).unwrap();
        collect(&mut batch, fd, want, 3, |bt| sb.recv(which, bt)).0
    };

    // ESP over IPv4, kernel-built header, source picked per packet; 3000 bytes gets fragmented
    // (path-MTU discovery off) and arrives reassembled.
    let small = esp_bytes(0x1122_3344, 1, 120);
    let big = esp_bytes(0x1122_3344, 2, 3000);
    sa.send_esp(&small, ip(A4), ip(B4)).unwrap();
    sa.send_esp(&big, ip("10.77.0.11"), ip(B4)).unwrap();
    let got = recv(RawRx::Esp4, 2);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, small);
    assert_eq!(got[0].1.src, Some(SocketAddr::new(ip(A4), 0)));
    assert_eq!(got[0].1.dst, Some(ip(B4)));
    assert_eq!(got[0].1.start, HEADROOM + 20, "IPv4 header stripped");
    assert_eq!(got[1].0, big);
    assert_eq!(got[1].1.src, Some(SocketAddr::new(ip("10.77.0.11"), 0)));

    // ESP over IPv6.
    let big6 = esp_bytes(0x5566_7788, 3, 3000);
    sa.send_esp(&small, ip(A6), ip(B6)).unwrap();
    sa.send_esp(&big6, ip(A6), ip(B6)).unwrap();
    let got = recv(RawRx::Esp6, 2);
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].0.as_slice(), got[1].0.as_slice()),
        (small.as_slice(), big6.as_slice())
    );
    assert_eq!(got[0].1.src, Some(SocketAddr::new(ip(A6), 0)));
    assert_eq!(got[0].1.dst, Some(ip(B6)));

    // A batch of ESP packets, both families, through one flush.
    let mut tx = SendBatch::new();
    for i in 0..6u32 {
        let (src, dst) = if i % 2 == 0 { (A4, B4) } else { (A6, B6) };
        tx.push(
            &esp_bytes(0x99, i, 64),
            SocketAddr::new(ip(dst), 0),
            Some(ip(src)),
        )
        .unwrap();
    }
    let st = sa.flush_esp(&mut tx);
    assert_eq!((st.sent, st.dropped), (6, 0), "{st:?}");
    assert_eq!(recv(RawRx::Esp4, 3).len(), 3);
    assert_eq!(recv(RawRx::Esp6, 3).len(), 3);

    // Header-included: an ESP packet in a full IPv4 header.
    let esp = esp_bytes(0xabcd_0001, 7, 200);
    sa.send_ip(&ipv4_packet(
        A4.parse().unwrap(),
        B4.parse().unwrap(),
        50,
        &esp,
    ))
    .unwrap();
    let got = recv(RawRx::Esp4, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, esp);
    assert_eq!(got[0].1.src, Some(SocketAddr::new(ip(A4), 0)));

    // AH over IPv4 keeps its header.
    let ah = esp_bytes(0x0104_0000, 8, 64); // stands in for an AH header + payload
    let pkt = ipv4_packet(A4.parse().unwrap(), B4.parse().unwrap(), 51, &ah);
    sa.send_ip(&pkt).unwrap();
    let got = recv(RawRx::Ah4, 1);
    assert_eq!(got.len(), 1);
    let rx = &got[0].0;
    assert_eq!(rx.len(), pkt.len());
    assert_eq!(rx[9], 51);
    assert_eq!(&rx[12..], &pkt[12..], "addresses and AH bytes as sent");
    assert_eq!(got[0].1.dst, Some(ip(B4)));

    // AH over IPv6: the fixed header is rebuilt (mutable fields zero) in the headroom.
    let pkt6 = ipv6_packet(
        A6.parse().unwrap(),
        B6.parse().unwrap(),
        51,
        0x0012_3456,
        64,
        &ah,
    );
    sa.send_ip(&pkt6).unwrap();
    let got = recv(RawRx::Ah6, 1);
    assert_eq!(got.len(), 1);
    let expect = ipv6_packet(A6.parse().unwrap(), B6.parse().unwrap(), 51, 0, 0, &ah);
    assert_eq!(got[0].0, expect);
    assert_eq!(got[0].1.start, HEADROOM - 40);
    assert_eq!(got[0].1.dst, Some(ip(B6)));

    // ESP in a full IPv6 header.
    let pkt6 = ipv6_packet(A6.parse().unwrap(), B6.parse().unwrap(), 50, 0, 64, &esp);
    sa.send_ip(&pkt6).unwrap();
    let got = recv(RawRx::Esp6, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, esp);

    // Nothing left over on any socket.
    for which in RawRx::ALL {
        assert!(
            !readable(sb.rx_fd(which).unwrap(), 50),
            "{which:?} has extra packets"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// UDP 4500
// ---------------------------------------------------------------------------------------------

/// fwd's UDP socket as daemon.rs binds it: IPv6, dual-stack, on every address.
fn bind_dual_stack(port: u16) -> UdpSocket {
    use nix::sys::socket::{
        bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn6,
    };
    let s = socket(
        AddressFamily::Inet6,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    setsockopt(&s, sockopt::Ipv6V6Only, &false).unwrap();
    let udp = UdpSocket::from(s);
    let addr: std::net::SocketAddrV6 = format!("[::]:{port}").parse().unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&udp),
        &SockaddrIn6::from(addr),
    )
    .unwrap();
    udp
}

#[test]
fn natt_socket_reports_destination_classifies_and_picks_source() {
    let (a, b) = pair("natt");
    b.ip(&["addr", "add", "10.77.0.3/24", "dev", "vb"]);
    b.ip(&["addr", "add", "fd77::3/64", "dev", "vb", "nodad"]);
    let natt = b.run(|| NattSocket::new(bind_dual_stack(4500)).unwrap());
    assert_eq!(natt.port(), 4500);
    assert_eq!(bypass_mark(natt.as_fd()).unwrap(), BYPASS_MARK);
    let (peer4, peer6) = a.run(|| {
        (
            UdpSocket::bind("0.0.0.0:0").unwrap(),
            UdpSocket::bind("[::]:0").unwrap(),
        )
    });
    let p4 = SocketAddr::new(ip(A4), peer4.local_addr().unwrap().port());
    let p6 = SocketAddr::new(ip(A6), peer6.local_addr().unwrap().port());

    let esp = esp_bytes(0x0000_1001, 1, 40);
    let mut ike = vec![0u8; 4];
    ike.extend_from_slice(b"IKE header follows..........");
    let cases: [(&[u8], NatTKind); 4] = [
        (&[0xff], NatTKind::Keepalive),
        (&ike, NatTKind::Ike),
        (&esp, NatTKind::Esp),
        (&[1, 2, 3], NatTKind::Invalid),
    ];
    let mut expected = Vec::new();
    for dst in ["10.77.0.2", "10.77.0.3", "fd77::2", "fd77::3"] {
        let (sock, src) = if dst.contains(':') {
            (&peer6, p6)
        } else {
            (&peer4, p4)
        };
        for (payload, kind) in &cases {
            sock.send_to(payload, SocketAddr::new(ip(dst), 4500))
                .unwrap();
            expected.push((payload.to_vec(), *kind, src, ip(dst)));
        }
    }
    let mut batch = RecvBatch::new();
    let (got, _) = collect(&mut batch, natt.as_fd(), expected.len(), 3, |bt| {
        natt.recv(bt)
    });
    assert_eq!(got.len(), expected.len());
    for ((pkt, info), (payload, kind, src, dst)) in got.iter().zip(&expected) {
        assert_eq!(pkt, payload);
        assert_eq!(info.natt, Some(*kind), "{payload:?}");
        assert_eq!(info.src, Some(*src), "sender, IPv4 unmapped");
        assert_eq!(
            info.dst,
            Some(*dst),
            "local address the datagram was sent to"
        );
        assert_eq!(info.start, HEADROOM);
    }

    // Sending with a chosen source: single sends and a mixed-family batch.
    natt.send_esp(&esp, p4, ip("10.77.0.3")).unwrap();
    natt.send_ike(b"ike-message", p4, ip("10.77.0.2")).unwrap();
    natt.send_keepalive(p6, ip("fd77::3")).unwrap();
    let mut tx = SendBatch::new();
    tx.push(b"batched-v4", p4, Some(ip("10.77.0.3"))).unwrap();
    tx.push(b"batched-v6", p6, Some(ip("fd77::2"))).unwrap();
    let st = natt.flush(&mut tx);
    assert_eq!((st.sent, st.dropped), (2, 0), "{st:?}");

    let recv_one = |s: &UdpSocket| {
        assert!(readable(s.as_fd(), 3000), "nothing arrived");
        let mut buf = [0u8; 2048];
        let (n, from) = s.recv_from(&mut buf).unwrap();
        (buf[..n].to_vec(), fwd::io::unmap_sa(from))
    };
    assert_eq!(
        recv_one(&peer4),
        (esp.clone(), SocketAddr::new(ip("10.77.0.3"), 4500))
    );
    let mut marked_ike = vec![0u8; 4];
    marked_ike.extend_from_slice(b"ike-message");
    assert_eq!(
        recv_one(&peer4),
        (marked_ike, SocketAddr::new(ip(B4), 4500))
    );
    assert_eq!(
        recv_one(&peer4),
        (
            b"batched-v4".to_vec(),
            SocketAddr::new(ip("10.77.0.3"), 4500)
        )
    );
    assert_eq!(
        recv_one(&peer6),
        (vec![0xff], SocketAddr::new(ip("fd77::3"), 4500))
    );
    assert_eq!(
        recv_one(&peer6),
        (b"batched-v6".to_vec(), SocketAddr::new(ip(B6), 4500))
    );
}

// ---------------------------------------------------------------------------------------------
// Batching
// ---------------------------------------------------------------------------------------------

#[test]
fn sendmmsg_recvmmsg_100_datagrams() {
    let (a, b) = pair("batch");
    a.ip(&["addr", "add", "10.77.0.11/24", "dev", "va"]);
    let rx = b.run(|| {
        let s = UdpSocket::bind(format!("{B4}:9000")).unwrap();
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4PacketInfo, &true).unwrap();
        s
    });
    let tx = a.run(|| UdpSocket::bind("0.0.0.0:0").unwrap());
    let port = tx.local_addr().unwrap().port();
    let to: SocketAddr = format!("{B4}:9000").parse().unwrap();

    let mut out = SendBatch::new();
    let mut flushes = Vec::new();
    for i in 0..100u32 {
        if out.is_full() {
            flushes.push(out.flush(tx.as_fd(), SockFamily::V4));
        }
        let src = if i % 2 == 0 { A4 } else { "10.77.0.11" };
        out.push(&esp_bytes(i, i, 64 + i as usize), to, Some(ip(src)))
            .unwrap();
    }
    flushes.push(out.flush(tx.as_fd(), SockFamily::V4));
    assert_eq!(
        flushes.iter().map(|f| f.sent).collect::<Vec<_>>(),
        vec![BATCH, BATCH, BATCH, 100 - 3 * BATCH]
    );
    assert!(flushes.iter().all(|f| f.dropped == 0));

    let mut batch = RecvBatch::new();
    let (got, sizes) = collect(&mut batch, rx.as_fd(), 100, 5, |bt| bt.recv(rx.as_fd()));
    assert_eq!(got.len(), 100);
    assert!(
        sizes.len() < 100 && sizes.contains(&BATCH),
        "batch sizes {sizes:?}"
    );
    for (i, (pkt, info)) in got.iter().enumerate() {
        assert_eq!(pkt, &esp_bytes(i as u32, i as u32, 64 + i));
        let src = if i % 2 == 0 { A4 } else { "10.77.0.11" };
        assert_eq!(info.src, Some(SocketAddr::new(ip(src), port)));
        assert_eq!(info.dst, Some(ip(B4)));
        assert_eq!(info.start, HEADROOM);
        assert!(info.ifindex > 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Netlink: rules, routes, reconcile, and the mark bypass
// ---------------------------------------------------------------------------------------------

fn rule_lines(ns: &Netns, v6: bool) -> Vec<String> {
    let args: &[&str] = if v6 {
        &["-6", "rule", "show"]
    } else {
        &["rule", "show"]
    };
    ns.ip(args)
        .lines()
        .filter(|l| l.starts_with("220:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn table_lines(ns: &Netns) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for fam in ["-4", "-6"] {
        let (ok, out) = ns.ip_try(&[fam, "route", "show", "table", "220"]);
        if ok {
            v.extend(
                out.lines()
                    .map(|l| l.trim_end().to_owned())
                    .filter(|l| !l.is_empty()),
            );
        }
    }
    v
}

#[test]
fn netlink_rules_routes_and_reconcile() {
    let ns = Netns::new("nl");
    const DEV: &str = "fsio1";
    ns.run(|| {
        // The device persists after this handle is dropped.
        Tun::open_or_create(DEV, 1400).unwrap();
        let mut r = Routes::new().unwrap();
        r.ensure_rules().unwrap();
        r.ensure_rules().unwrap();
    });
    let rule = "220: not from all fwmark 0x5e5e lookup 220".to_owned();
    assert_eq!(rule_lines(&ns, false), vec![rule.clone()]);
    assert_eq!(rule_lines(&ns, true), vec![rule.clone()]);
    // The kernel refuses an identical second rule (what ensure_rules relies on).
    assert!(
        !ns.ip_try(&["rule", "add", "not", "fwmark", "0x5e5e", "lookup", "220", "priority", "220"])
            .0
    );
    ns.ip(&[
        "route",
        "add",
        "10.99.0.0/16",
        "dev",
        "lo",
        "table",
        "220",
        "proto",
        "static",
    ]);

    ns.run(|| {
        let ix = nix::net::if_::if_nametoindex(DEV).unwrap();
        let mut r = Routes::new().unwrap();
        r.ensure_rules().unwrap();
        r.add_tunnel_route(net("10.60.0.0/16"), ix).unwrap();
        r.add_tunnel_route(net("10.60.0.0/16"), ix).unwrap(); // idempotent
        r.add_tunnel_route(net("fd60::/64"), ix).unwrap();
        r.add_throw_route(net("10.60.1.0/24")).unwrap();
        r.add_tunnel_route(net("10.62.3.4/16"), ix).unwrap(); // host bits cleared
        r.add_throw_route(net("fd60:0:0:1::/64")).unwrap();
        let routes = r.routes().unwrap();
        let ours: Vec<_> = routes
            .iter()
            .filter(|x| x.is_ours())
            .map(|x| (x.net, x.kind))
            .collect();
        assert_eq!(
            ours,
            vec![
                (net("10.60.0.0/16"), Some(RouteKind::Tunnel)),
                (net("10.60.1.0/24"), Some(RouteKind::Throw)),
                (net("10.62.0.0/16"), Some(RouteKind::Tunnel)),
                (net("fd60::/64"), Some(RouteKind::Tunnel)),
                (net("fd60:0:0:1::/64"), Some(RouteKind::Throw)),
            ]
        );
        assert!(routes
            .iter()
            .any(|x| x.net == net("10.99.0.0/16") && !x.is_ours()));
        r.list().unwrap()
    });
    assert_eq!(rule_lines(&ns, false), vec![rule.clone()]);
    // list() prints the table as ip(8) does (compared on the same kernel, after the thread set
    // the routes; `ip` without a name for proto 94 prints the number).
    let listed = ns.run(|| Routes::new().unwrap().list().unwrap());
    assert_eq!(listed, table_lines(&ns));
    assert!(
        listed.contains(&"10.60.0.0/16 dev fsio1 proto 94 scope link linkdown".to_owned()),
        "{listed:#?}"
    );
    assert!(
        listed.contains(&"throw 10.60.1.0/24 proto 94".to_owned()),
        "{listed:#?}"
    );

    ns.run(|| {
        let ix = nix::net::if_::if_nametoindex(DEV).unwrap();
        let mut r = Routes::new().unwrap();
        let wanted = [
            (net("10.60.0.0/16"), RouteKind::Tunnel),
            (net("10.61.0.0/16"), RouteKind::Tunnel),
            (net("fd60::/64"), RouteKind::Tunnel),
            (net("10.60.2.0/24"), RouteKind::Throw),
            (net("10.62.0.0/16"), RouteKind::Throw), // kind changes
        ];
        let done = r.reconcile(&wanted, ix).unwrap();
        assert_eq!(
            done,
            Reconciled {
                added: vec![
                    (net("10.61.0.0/16"), RouteKind::Tunnel),
                    (net("10.60.2.0/24"), RouteKind::Throw),
                    (net("10.62.0.0/16"), RouteKind::Throw),
                ],
                removed: vec![net("10.60.1.0/24"), net("fd60:0:0:1::/64")],
            }
        );
        // Again: nothing to do. A "restarted" manager (new socket) agrees.
        assert_eq!(r.reconcile(&wanted, ix).unwrap(), Reconciled::default());
        let mut r2 = Routes::new().unwrap();
        assert_eq!(r2.reconcile(&wanted, ix).unwrap(), Reconciled::default());
        // Deleting: ours yes (once), the operator's never.
        assert!(r.del_route(net("10.61.0.0/16")).unwrap());
        assert!(!r.del_route(net("10.61.0.0/16")).unwrap());
        assert!(!r.del_route(net("10.99.0.0/16")).unwrap());
        // Reconciling to nothing removes only ours.
        let done = r.reconcile(&[], ix).unwrap();
        assert_eq!(done.removed.len(), 4, "{done:?}");
        let left: Vec<_> = r.routes().unwrap().into_iter().map(|x| x.net).collect();
        assert_eq!(left, vec![net("10.99.0.0/16")]);
        r.remove_rules().unwrap();
        r.remove_rules().unwrap();
    });
    assert!(rule_lines(&ns, false).is_empty() && rule_lines(&ns, true).is_empty());
    assert_eq!(
        table_lines(&ns),
        vec!["10.99.0.0/16 dev lo proto static scope link".to_owned()]
    );
    ns.run(|| assert!(Tun::destroy(DEV).unwrap()));
}

/// Read from the TUN device until a UDP packet to `port` shows up (or `ms` pass).
fn tun_sees_udp_to(tun: &Tun, port: u16, ms: u64) -> Option<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_millis(ms);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if !readable(tun.as_fd(), 50) {
            continue;
        }
        let Ok(n) = tun.read(&mut buf) else { continue };
        let p = &buf[..n];
        let (proto, l4) = match p[0] >> 4 {
            4 => (p[9], &p[usize::from(p[0] & 0x0f) * 4..]),
            6 => (p[6], &p[40..]),
            _ => continue,
        };
        if proto == 17 && u16::from_be_bytes([l4[2], l4[3]]) == port {
            return Some(p.to_vec());
        }
    }
    None
}

#[test]
fn mark_bypasses_the_tunnel_table_and_a_dead_fwd_leaks_nothing() {
    let (a, b) = pair("mark");
    const DEV: &str = "fsio2";
    let (rx4, rx6) = b.run(|| {
        (
            UdpSocket::bind(format!("{B4}:7000")).unwrap(),
            UdpSocket::bind(format!("[{B6}]:7000")).unwrap(),
        )
    });
    let dst4: SocketAddr = format!("{B4}:7000").parse().unwrap();
    let dst6: SocketAddr = format!("[{B6}]:7000").parse().unwrap();
    let (tun, plain4, plain6, marked4, marked6) = a.run(|| {
        let tun = Tun::open_or_create(DEV, 1400).unwrap();
        let mut r = Routes::new().unwrap();
        r.ensure_rules().unwrap();
        r.add_tunnel_route(net(&format!("{B4}/32")), tun.ifindex())
            .unwrap();
        r.add_tunnel_route(net(&format!("{B6}/128")), tun.ifindex())
            .unwrap();
        let p4 = UdpSocket::bind("0.0.0.0:0").unwrap();
        let p6 = UdpSocket::bind("[::]:0").unwrap();
        let m4 = UdpSocket::bind("0.0.0.0:0").unwrap();
        let m6 = UdpSocket::bind("[::]:0").unwrap();
        set_bypass_mark(m4.as_fd()).unwrap();
        set_bypass_mark(m6.as_fd()).unwrap();
        (tun, p4, p6, m4, m6)
    });

    for (plain, marked, dst, rx) in [
        (&plain4, &marked4, dst4, &rx4),
        (&plain6, &marked6, dst6, &rx6),
    ] {
        // Unmarked: routed by table 220 into the TUN device, not onto the wire.
        plain.send_to(b"cleartext", dst).unwrap();
        let seen = tun_sees_udp_to(&tun, 7000, 2000);
        assert!(
            seen.is_some(),
            "unmarked packet to {dst} did not reach the TUN device"
        );
        let seen = seen.unwrap();
        assert!(seen.ends_with(b"cleartext"));
        // The source is the host's own address, not the device's placeholder.
        let src: IpAddr = if dst.is_ipv4() {
            Ipv4Addr::from(<[u8; 4]>::try_from(&seen[12..16]).unwrap()).into()
        } else {
            Ipv6Addr::from(<[u8; 16]>::try_from(&seen[8..24]).unwrap()).into()
        };
        assert_eq!(src, if dst.is_ipv4() { ip(A4) } else { ip(A6) });
        assert!(
            silent(rx, 300),
            "unmarked packet to {dst} leaked onto the wire"
        );
        // Marked: skips table 220, leaves by the veth.
        marked.send_to(b"marked", dst).unwrap();
        assert!(
            readable(rx.as_fd(), 2000),
            "marked packet to {dst} did not arrive"
        );
        let mut buf = [0u8; 64];
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"marked");
        assert!(
            tun_sees_udp_to(&tun, 7000, 200).is_none(),
            "marked packet went into the TUN device"
        );
    }

    // Decrypted packets written into the device are accepted even when their source is routed
    // out of another interface and the namespace filters reverse paths, strictly (1) or loosely
    // (2, systemd's default).
    a.ip(&["route", "add", "10.88.0.0/16", "via", B4, "dev", "va"]);
    let inner_rx = a.run(|| UdpSocket::bind(format!("{A4}:7100")).unwrap());
    for all in ["1", "2"] {
        a.run(|| std::fs::write("/proc/sys/net/ipv4/conf/all/rp_filter", all).unwrap());
        let mut udp = 5555u16.to_be_bytes().to_vec();
        udp.extend_from_slice(&7100u16.to_be_bytes());
        udp.extend_from_slice(&(8u16 + 9).to_be_bytes());
        udp.extend_from_slice(&[0, 0]); // no UDP checksum (IPv4)
        udp.extend_from_slice(b"decrypted");
        tun.write(&ipv4_packet(
            Ipv4Addr::new(10, 88, 0, 5),
            A4.parse().unwrap(),
            17,
            &udp,
        ))
        .unwrap();
        assert!(
            readable(inner_rx.as_fd(), 2000),
            "decrypted packet dropped by reverse-path filtering (all.rp_filter = {all})"
        );
        let mut buf = [0u8; 64];
        let (n, from) = inner_rx.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"decrypted"[..], "10.88.0.5:5555".parse().unwrap())
        );
    }

    // fwd dies: the device and routes stay, cleartext to the protected destination is dropped.
    drop(tun);
    for (plain, dst, rx) in [(&plain4, dst4, &rx4), (&plain6, dst6, &rx6)] {
        let _ = plain.send_to(b"while-fwd-is-dead", dst);
        assert!(
            silent(rx, 500),
            "cleartext to {dst} leaked while fwd was down"
        );
    }
    assert!(a.ip(&["link", "show", DEV]).contains(DEV));
    assert!(a.ip(&["route", "show", "table", "220"]).contains(B4));

    // Control: without the rule the same unmarked socket does reach B (so the checks above can fail).
    a.run(|| Routes::new().unwrap().remove_rules().unwrap());
    plain4.send_to(b"no-rule", dst4).unwrap();
    assert!(
        readable(rx4.as_fd(), 2000),
        "without the rule the packet should go out"
    );
    a.run(|| assert!(Tun::destroy(DEV).unwrap()));
}

// ---------------------------------------------------------------------------------------------
// TUN offload: GSO super-packets from the kernel's TCP, split by the reader
// ---------------------------------------------------------------------------------------------

/// TCP checksum check (pseudo-header included), written independently of `fwd::io::gso`.
fn tcp_checksum_ok(pkt: &[u8], l4: usize) -> bool {
    let addrs = if pkt[0] >> 4 == 4 {
        &pkt[12..20]
    } else {
        &pkt[8..40]
    };
    let len = (pkt.len() - l4) as u32;
    let mut pseudo = addrs.to_vec();
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&pkt[l4..]);
    checksum(&pseudo) == 0
}

/// A TCP packet `src:sport → dst:dport` with valid IP and TCP checksums.
#[allow(clippy::too_many_arguments)]
fn tcp_packet(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    opts: &[u8],
) -> Vec<u8> {
    tcp_data_packet(src, dst, (sport, dport), seq, ack, flags, opts, &[])
}

/// [`tcp_packet`] with a payload.
#[allow(clippy::too_many_arguments)]
fn tcp_data_packet(
    src: IpAddr,
    dst: IpAddr,
    (sport, dport): (u16, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    opts: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push((((20 + opts.len()) / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(opts);
    t.extend_from_slice(data);
    let (mut p, l4) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (ipv4_packet(s, d, 6, &t), 20),
        (IpAddr::V6(s), IpAddr::V6(d)) => (ipv6_packet(s, d, 6, 0, 64, &t), 40),
        _ => panic!("mixed families"),
    };
    let addrs = if l4 == 20 { &p[12..20] } else { &p[8..40] };
    let mut pseudo = addrs.to_vec();
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(t.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&t);
    let c = checksum(&pseudo);
    p[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    p
}

/// What [`tcp_sink`] received.
struct Sunk {
    data: Vec<u8>,
    fin: bool,
    /// IP packets the reader handed out, and the longest.
    packets: usize,
    longest: usize,
    stats: TunRxStats,
}

/// Play the far end of one TCP connection to `me:port` through the TUN device: answer the SYN
/// (writing through `Tun::write`, so with offload behind an all-zero virtio header), take the data
/// in order, acknowledge it, stop at the FIN or after `secs`. Every packet the reader hands out is
/// checked: one IP packet, valid IPv4 header checksum, lengths, TCP checksum, at most `mtu` bytes.
fn tcp_sink(tun: &Tun, me: IpAddr, port: u16, mss: u16, mtu: usize, secs: u64) -> Sunk {
    let mut reader = TunReader::new();
    let mut buf = vec![0u8; 9000];
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut out = Sunk {
        data: Vec::new(),
        fin: false,
        packets: 0,
        longest: 0,
        stats: TunRxStats::default(),
    };
    let our_isn = 0x1000_0000u32;
    let mut expected: Option<u32> = None;
    let mut peer: Option<(IpAddr, u16)> = None;
    while !out.fin && Instant::now() < deadline {
        if reader.pending() == 0 && !readable(tun.as_fd(), 100) {
            continue;
        }
        let n = match reader.read_packet(tun, &mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("TUN read: {e}"),
        };
        let p = &buf[..n];
        let (l4, src, dst) = match p[0] >> 4 {
            4 => {
                assert_eq!(checksum(&p[..20]), 0, "IPv4 header checksum");
                assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), n);
                if p[9] != 6 {
                    continue;
                }
                let a =
                    |r: std::ops::Range<usize>| IpAddr::from(<[u8; 4]>::try_from(&p[r]).unwrap());
                (usize::from(p[0] & 15) * 4, a(12..16), a(16..20))
            }
            6 => {
                assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])) + 40, n);
                if p[6] != 6 {
                    continue; // e.g. MLD
                }
                let a =
                    |r: std::ops::Range<usize>| IpAddr::from(<[u8; 16]>::try_from(&p[r]).unwrap());
                (40, a(8..24), a(24..40))
            }
            v => panic!("IP version {v} from the TUN device"),
        };
        let t = &p[l4..];
        let (sport, dport) = (
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]]),
        );
        if dst != me || dport != port {
            continue;
        }
        out.packets += 1;
        out.longest = out.longest.max(n);
        assert!(n <= mtu, "a {n}-byte packet from a device with MTU {mtu}");
        assert!(tcp_checksum_ok(p, l4), "TCP checksum of a {n}-byte packet");
        let seq = u32::from_be_bytes(t[4..8].try_into().unwrap());
        let flags = t[13];
        let payload = &t[usize::from(t[12] >> 4) * 4..];
        if flags & 0x02 != 0 {
            // SYN: answer with SYN-ACK and our MSS.
            peer = Some((src, sport));
            expected = Some(seq.wrapping_add(1));
            let mss_opt = [2, 4, (mss >> 8) as u8, mss as u8];
            let synack = tcp_packet(
                me,
                src,
                port,
                sport,
                our_isn,
                seq.wrapping_add(1),
                0x12,
                &mss_opt,
            );
            tun.write(&synack).unwrap();
            continue;
        }
        let Some(exp) = expected else { continue };
        let mut next = exp;
        if seq == exp {
            out.data.extend_from_slice(payload);
            next = exp.wrapping_add(payload.len() as u32);
            if flags & 0x01 != 0 {
                next = next.wrapping_add(1);
                out.fin = true;
            }
        }
        expected = Some(next);
        // Acknowledge at the end of what the last read brought (and on every out-of-order packet).
        if reader.pending() == 0 || seq != exp || out.fin {
            let (psrc, pport) = peer.unwrap();
            let ack = tcp_packet(
                me,
                psrc,
                port,
                pport,
                our_isn.wrapping_add(1),
                next,
                0x10,
                &[],
            );
            tun.write(&ack).unwrap();
        }
    }
    out.stats = reader.stats();
    out
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Inside `ns`: a TCP client sends `len` patterned bytes to `to` and closes, while `tcp_sink`
/// plays the far end on `tun`.
fn transfer(ns: &Netns, tun: &Tun, to: SocketAddr, mss: u16, len: usize) -> Sunk {
    let data = pattern(len);
    std::thread::scope(|s| {
        let client = s.spawn(|| {
            ns.run(|| {
                use std::io::Write;
                let mut c = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5))
                    .expect("connect through the TUN device (SYN-ACK written with a vnet header)");
                c.write_all(&data).unwrap();
                c.shutdown(std::net::Shutdown::Write).unwrap();
                // Keep the socket until the sink has everything.
                std::thread::sleep(Duration::from_millis(500));
            })
        });
        let sunk = ns.run(|| tcp_sink(tun, to.ip(), to.port(), mss, 1400, 30));
        client.join().unwrap();
        assert!(sunk.fin, "no FIN from the client to {to}");
        assert_eq!(sunk.data.len(), data.len(), "bytes to {to}");
        assert!(sunk.data == data, "data to {to} differs");
        sunk
    })
}

fn tun_with_routes(ns: &Netns, dev: &str) {
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", dev]);
    ns.ip(&["addr", "add", "fd09::1/64", "dev", dev, "nodad"]);
}

#[test]
fn tun_offload_tcp_super_packets_split_into_valid_packets() {
    let ns = Netns::new("gso");
    const DEV: &str = "fsio4";
    let tun = ns.run(|| Tun::open_or_create(DEV, 1400).unwrap());
    let off = tun.offloads();
    assert!(off.vnet_hdr, "IFF_VNET_HDR refused: {off}");
    // DESIGN-NOTES §3: these kernels take CSUM|TSO4|TSO6 (and USO).
    assert!(off.csum() && off.tso() == (true, true), "offloads: {off}");
    tun_with_routes(&ns, DEV);
    for to in ["10.9.0.2:5001", "[fd09::2]:5002"] {
        let to: SocketAddr = to.parse().unwrap();
        let mss = if to.is_ipv4() { 1360 } else { 1340 };
        let sunk = transfer(&ns, &tun, to, mss, 600_000);
        eprintln!(
            "{to}: {} packets, longest {}, reader {:?}",
            sunk.packets, sunk.longest, sunk.stats
        );
        assert!(
            sunk.stats.super_packets > 0,
            "no GSO super-packet arrived ({:?})",
            sunk.stats
        );
        assert!(
            sunk.stats.reads * 4 < sunk.stats.packets,
            "super-packets should carry several segments per read: {:?}",
            sunk.stats
        );
        assert_eq!(sunk.stats.malformed, 0);
        assert_eq!(sunk.longest, 1400, "full-sized segments");
    }
    drop(tun);
    ns.run(|| assert!(Tun::destroy(DEV).unwrap()));
}

#[test]
fn tun_vnet_hdr_is_per_attachment_and_plain_mode_clears_offload() {
    let ns = Netns::new("vnet");
    const DEV: &str = "fsio5";
    let to: SocketAddr = "10.9.0.2:5003".parse().unwrap();
    // Created without offload.
    let tun = ns.run(|| Tun::open_or_create_with(DEV, 1400, false).unwrap());
    assert!(!tun.offloads().vnet_hdr);
    tun_with_routes(&ns, DEV);
    let sunk = transfer(&ns, &tun, to, 1360, 200_000);
    assert_eq!(sunk.stats.super_packets, 0);
    drop(tun);

    // Re-attached with IFF_VNET_HDR: the flag belongs to the attachment, so this works, and the
    // kernel now hands over super-packets behind a header.
    let tun = ns.run(|| Tun::open_or_create(DEV, 1400).unwrap());
    assert!(tun.offloads().vnet_hdr && tun.offloads().tso().0);
    let sunk = transfer(&ns, &tun, "10.9.0.2:5004".parse().unwrap(), 1360, 300_000);
    assert!(sunk.stats.super_packets > 0, "{:?}", sunk.stats);
    // Pings through the offload attachment: a zero-header write and a header-consuming read.
    let (me, peer) = (Ipv4Addr::new(10, 9, 0, 2), Ipv4Addr::new(10, 9, 0, 1));
    ns.run(|| {
        tun.write(&icmp_echo(me, peer, 7, 1)).unwrap();
        assert!(readable(tun.as_fd(), 2000), "no echo reply");
        let mut b = [0u8; 2048];
        let n = loop {
            match tun.read(&mut b) {
                Ok(n) if b[0] >> 4 == 4 && b[9] == 1 => break n,
                Ok(_) => continue,
                // a late segment of the transfer before (a super-packet `read` refuses)
                Err(e) if e.kind() == io::ErrorKind::InvalidData => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(readable(tun.as_fd(), 2000), "no echo reply");
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&b[12..16], &peer.octets());
        assert_eq!(checksum(&b[20..n]), 0);
    });
    drop(tun);

    // Back to plain: the header is gone and the offload features were cleared, so the kernel
    // segments again (a plain reader would otherwise get 64 KiB packets without a header).
    let tun = ns.run(|| Tun::open_or_create_with(DEV, 1400, false).unwrap());
    assert_eq!(tun.offloads(), fwd::io::tun::Offloads::default());
    let sunk = transfer(&ns, &tun, "10.9.0.2:5005".parse().unwrap(), 1360, 300_000);
    assert_eq!(sunk.stats.super_packets, 0);
    assert!(sunk.longest <= 1400);
    ns.run(|| {
        tun.write(&icmp_echo(me, peer, 7, 2)).unwrap();
        assert!(readable(tun.as_fd(), 2000), "no echo reply");
        let mut b = [0u8; 2048];
        let n = tun.read(&mut b).unwrap();
        assert_eq!(
            b[0], 0x45,
            "a plain read starts with the IP header, no vnet header"
        );
        assert_eq!(&b[12..16], &peer.octets());
        assert_eq!(checksum(&b[20..n]), 0);
    });
    drop(tun);
    ns.run(|| assert!(Tun::destroy(DEV).unwrap()));
}

/// Decrypted TCP segments coalesced into GSO super-packets and written into an offload device are
/// taken by the kernel, forwarded, and segmented back in software on the way out of a device
/// without offload (a second TUN device read in plain mode): the segments that come out are the
/// ones that went in (TTL/hop limit one less), with checksums computed from the pseudo-header sum
/// the super-packet carried.
#[test]
fn tun_offload_coalesced_writes_are_segmented_back_by_the_kernel() {
    let ns = Netns::new("gro");
    const IN: &str = "fsio6";
    const OUT: &str = "fsio7";
    let (tin, tout) = ns.run(|| {
        (
            Tun::open_or_create(IN, 1400).unwrap(),
            Tun::open_or_create_with(OUT, 1400, false).unwrap(),
        )
    });
    assert!(tin.offloads().vnet_hdr);
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", IN]);
    ns.ip(&["addr", "add", "fd09::1/64", "dev", IN, "nodad"]);
    ns.ip(&["addr", "add", "10.8.0.1/24", "dev", OUT]);
    ns.ip(&["addr", "add", "fd08::1/64", "dev", OUT, "nodad"]);
    ns.run(|| {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1").unwrap();
    });
    for (src, dst, mss) in [
        ("10.9.0.2", "10.8.0.2", 1360usize),
        ("fd09::2", "fd08::2", 1340),
    ] {
        let (src, dst) = (ip(src), ip(dst));
        let data = pattern(30 * mss - 100);
        let mut segs = Vec::new();
        for (i, chunk) in data.chunks(mss).enumerate() {
            let last = (i + 1) * mss >= data.len();
            let flags = if last { 0x18 } else { 0x10 }; // PSH on the last
            let mut p = tcp_data_packet(
                src,
                dst,
                (40000, 5201),
                1_000_000 + (i * mss) as u32,
                77,
                flags,
                &[],
                chunk,
            );
            if src.is_ipv4() {
                // consecutive IDs, as a sender's would be
                p[4..6].copy_from_slice(&(0x1234 + i as u16).to_be_bytes());
                p[10..12].fill(0);
                let c = checksum(&p[..20]);
                p[10..12].copy_from_slice(&c.to_be_bytes());
            }
            segs.push(p);
        }
        let mut gro = Coalescer::new();
        let mut writes = Vec::new();
        {
            let mut write = |h: &VnetHdr, p: &[u8]| {
                writes.push((h.gso_type, p.len()));
                tin.write_vnet(h, p)
            };
            for p in &segs {
                gro.offer(p, &mut write).unwrap();
            }
            gro.flush(&mut write).unwrap();
        }
        assert!(
            writes.len() <= 2 && writes.iter().all(|w| w.0 != 0),
            "{dst}: writes {writes:?}"
        );
        // Read back what the kernel forwarded out of the plain device.
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 2048];
        while got.len() < segs.len() && Instant::now() < deadline {
            if !readable(tout.as_fd(), 100) {
                continue;
            }
            let Ok(n) = tout.read(&mut buf) else { continue };
            let p = &buf[..n];
            let (proto, l4) = if p[0] >> 4 == 4 {
                (p[9], 20)
            } else {
                (p[6], 40)
            };
            if proto == 6 && u16::from_be_bytes([p[l4 + 2], p[l4 + 3]]) == 5201 {
                got.push(p.to_vec());
            }
        }
        assert_eq!(got.len(), segs.len(), "{dst}: segments out of {OUT}");
        for (i, (g, want)) in got.iter().zip(&segs).enumerate() {
            let l4 = if g[0] >> 4 == 4 { 20 } else { 40 };
            assert!(tcp_checksum_ok(g, l4), "{dst}: checksum of segment {i}");
            let mut w = want.clone();
            if l4 == 20 {
                assert_eq!(checksum(&g[..20]), 0);
                w[8] -= 1; // TTL
                w[10..12].copy_from_slice(&g[10..12]);
            } else {
                w[7] -= 1; // hop limit
            }
            assert!(g == &w, "{dst}: segment {i} differs from what went in");
        }
        assert_eq!(gro.stats, (writes.len() as u64, segs.len() as u64));
        // The fallback for a kernel that refuses GSO writes: the same super-packet written as
        // separate packets comes out the same.
        let mut sup = None;
        gro.offer(&segs[0], |_, _| Ok::<(), ()>(())).unwrap();
        for p in &segs[1..4] {
            gro.offer(p, |_, _| Ok::<(), ()>(())).unwrap();
        }
        gro.flush(|h, p| {
            sup = Some((*h, p.to_vec()));
            Ok::<(), ()>(())
        })
        .unwrap();
        let (h, p) = sup.unwrap();
        assert!(h.is_gso());
        let mut scratch = vec![0u8; 2048];
        tin.write_segmented(&h, &p, &mut scratch).unwrap();
        let mut got = Vec::new();
        while got.len() < 4 && readable(tout.as_fd(), 2000) {
            let n = tout.read(&mut buf).unwrap();
            let p = &buf[..n];
            let (proto, l4) = if p[0] >> 4 == 4 {
                (p[9], 20)
            } else {
                (p[6], 40)
            };
            if proto == 6 && u16::from_be_bytes([p[l4 + 2], p[l4 + 3]]) == 5201 {
                got.push(p.to_vec());
            }
        }
        assert_eq!(got.len(), 4, "{dst}: segments written one by one");
        for (g, want) in got.iter().zip(&segs) {
            let l4 = if g[0] >> 4 == 4 { 20 } else { 40 };
            assert!(tcp_checksum_ok(g, l4));
            assert_eq!(
                &g[l4..],
                &want[l4..],
                "{dst}: TCP part of a fallback segment"
            );
        }
    }
    drop((tin, tout));
    ns.run(|| {
        assert!(Tun::destroy(IN).unwrap());
        assert!(Tun::destroy(OUT).unwrap());
    });
}
