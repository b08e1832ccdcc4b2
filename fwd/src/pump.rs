//! The datapath's two OS threads, joining the I/O layer ([`crate::io`]) to the sans-IO engine
//! ([`crate::datapath`]). No decisions are made here: each thread moves a batch of packets from
//! where they arrive, asks the engine what to do with each, and sends the answers in batches.
//!
//! - outbound: TUN → [`Engine::outbound`] → raw ESP (`sendmmsg`), UDP 4500, header-included raw
//!   socket, or back into the TUN (ICMP errors for the inner sender). With TUN offload one read
//!   may bring a 64 KiB GSO super-packet; [`TunReader`] splits it into MTU-sized packets, which
//!   go to the engine one by one like any other (so the send batches fill in a few reads);
//! - inbound: raw ESP/AH sockets and UDP 4500 (`recvmmsg`) → [`Engine::inbound`] → TUN. With TUN
//!   offload, consecutive decrypted TCP segments of one flow are coalesced ([`Coalescer`]) into one
//!   GSO super-packet per write, up to the end of each received batch: the kernel then forwards,
//!   and the receiving TCP takes, one large packet instead of dozens.
//!
//! Both threads poll with a short timeout so they notice [`Pump::stop`].

use crate::datapath::{Engine, Inbound, Outbound, Rx};
use crate::esp::ip::NatTKind;
use crate::io::{
    gso::{Coalescer, VnetHdr},
    sockets::ip_destination,
    tun::TunReader,
    EspSockets, NattSocket, RawRx, RecvBatch, SendBatch, Tun,
};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// What the threads share with the control plane.
pub struct Wire {
    pub tun: Tun,
    pub raw: EspSockets,
    pub natt: NattSocket,
}

/// Counters of what the threads saw beyond the engine's own (shown in status).
#[derive(Default)]
pub struct PumpStats {
    /// IP packets from the TUN device (segments of super-packets counted one by one).
    pub tun_in: AtomicU64,
    /// GSO super-packets read from the TUN device (offload on).
    pub tun_super_packets: AtomicU64,
    /// Reads from the TUN device dropped as malformed (an offload header that does not describe
    /// its packet).
    pub tun_malformed: AtomicU64,
    pub wire_in: AtomicU64,
    /// IKE messages that arrived on UDP 4500 (relayed to ikerd).
    pub natt_ike: AtomicU64,
    /// ...of which dropped because the relay queue was full or the message too long.
    pub natt_ike_dropped: AtomicU64,
    pub natt_keepalives: AtomicU64,
    pub send_errors: AtomicU64,
    pub tun_write_errors: AtomicU64,
    /// GSO super-packets written into the TUN device (coalesced decrypted TCP segments), and the
    /// segments they carried.
    pub tun_coalesced: AtomicU64,
    pub tun_coalesced_segments: AtomicU64,
}

/// An IKE message that arrived on the NAT-T socket: (local, remote, bytes after the non-ESP marker).
pub type IkeRelayed = (SocketAddr, SocketAddr, Vec<u8>);

/// How many relayed IKE messages may wait for the daemon before more are dropped (and counted).
pub const IKE_RELAY_QUEUE: usize = 256;

pub struct Pump {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub stats: Arc<PumpStats>,
}

const POLL_MS: u16 = 200;

impl Pump {
    /// Start both threads. IKE messages on the NAT-T socket go to `ike_relay` (fwd's daemon passes
    /// them on to ikerd); without one they are only counted.
    pub fn start(
        engine: Arc<Engine>,
        wire: Arc<Wire>,
        ike_relay: Option<tokio::sync::mpsc::Sender<IkeRelayed>>,
    ) -> io::Result<Pump> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(PumpStats::default());
        let mut threads = Vec::new();
        {
            let (e, w, s, st) = (engine.clone(), wire.clone(), stop.clone(), stats.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("fwd-out".into())
                    .spawn(move || outbound_loop(&e, &w, &s, &st))?,
            );
        }
        {
            let (e, w, s, st) = (engine, wire, stop.clone(), stats.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("fwd-in".into())
                    .spawn(move || inbound_loop(&e, &w, &s, &st, ike_relay.as_ref()))?,
            );
        }
        Ok(Pump {
            stop,
            threads,
            stats,
        })
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Wait up to [`POLL_MS`] for any of `pfds` (built once per thread; poll rewrites the results)
/// to become readable. False on timeout or error.
fn wait(pfds: &mut [PollFd<'_>]) -> bool {
    matches!(poll(pfds, PollTimeout::from(POLL_MS)), Ok(n) if n > 0)
}

fn readable(p: &PollFd<'_>) -> bool {
    p.revents()
        .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
}

fn outbound_loop(engine: &Engine, wire: &Wire, stop: &AtomicBool, stats: &PumpStats) {
    let mut rx = RecvBatch::new();
    let mut reader = TunReader::new();
    tracing::info!(
        "fwd-out: reading {} with offload {}",
        wire.tun.name(),
        wire.tun.offloads()
    );
    let mut esp = SendBatch::new();
    let mut udp = SendBatch::new();
    let mut ip = SendBatch::new();
    let natt_port = wire.natt.port();
    let mut pfds = [PollFd::new(wire.tun.as_fd(), PollFlags::POLLIN)];
    while !stop.load(Ordering::Relaxed) {
        if !wait(&mut pfds) {
            continue;
        }
        loop {
            let got = reader.read_batch(&wire.tun, &mut rx);
            let rs = reader.stats();
            stats
                .tun_super_packets
                .store(rs.super_packets, Ordering::Relaxed);
            if rs.malformed != stats.tun_malformed.swap(rs.malformed, Ordering::Relaxed) {
                tracing::debug!(
                    "tunnel device: dropped a malformed offload read: {}",
                    reader
                        .last_error()
                        .map(|e| e.to_string())
                        .unwrap_or_default()
                );
            }
            match got {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!("reading the tunnel device: {e}");
                    break;
                }
            }
            let now = Instant::now();
            let n = rx.len();
            stats.tun_in.fetch_add(n as u64, Ordering::Relaxed);
            for i in 0..n {
                let Some(p) = rx.packet(i) else { continue };
                let range = p.info.range();
                let buf = p.buf;
                let verdict = engine.outbound(buf, range, now);
                let sent = match verdict {
                    Outbound::Esp {
                        src,
                        dst,
                        encap: None,
                        range,
                    } => push(
                        &mut esp,
                        buf,
                        range,
                        SocketAddr::new(dst, 0),
                        Some(src),
                        |b| wire.raw.flush_esp(b),
                    ),
                    Outbound::Esp {
                        src,
                        dst,
                        encap: Some(e),
                        range,
                    } => {
                        if e.src_port != natt_port {
                            tracing::debug!(
                                "UDP-encapsulated SA from port {} but NAT-T is on {natt_port}",
                                e.src_port
                            );
                        }
                        push(
                            &mut udp,
                            buf,
                            range,
                            SocketAddr::new(dst, e.dst_port),
                            Some(src),
                            |b| wire.natt.flush(b),
                        )
                    }
                    Outbound::Ip { range } | Outbound::Clear { range } => {
                        let pkt = buf.get(range.clone()).unwrap_or_default();
                        match ip_destination(pkt) {
                            Some(dst) => {
                                push(&mut ip, buf, range, SocketAddr::new(dst, 0), None, |b| {
                                    wire.raw.flush_ip(b)
                                })
                            }
                            None => false,
                        }
                    }
                    Outbound::ToTun { range } => {
                        let pkt = buf.get(range).unwrap_or_default();
                        if wire.tun.write(pkt).is_err() {
                            stats.tun_write_errors.fetch_add(1, Ordering::Relaxed);
                        }
                        true
                    }
                    Outbound::Drop(_) => true,
                };
                if !sent {
                    stats.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            if n < crate::io::BATCH {
                break;
            }
        }
        let errs = [
            wire.raw.flush_esp(&mut esp).dropped,
            wire.natt.flush(&mut udp).dropped,
            wire.raw.flush_ip(&mut ip).dropped,
        ];
        let errs: usize = errs.iter().sum();
        if errs > 0 {
            stats.send_errors.fetch_add(errs as u64, Ordering::Relaxed);
        }
    }
}

/// Queue one packet, flushing first if the batch is full. False if it could not be queued.
fn push(
    batch: &mut SendBatch,
    buf: &[u8],
    range: std::ops::Range<usize>,
    to: SocketAddr,
    from: Option<std::net::IpAddr>,
    flush: impl Fn(&mut SendBatch) -> crate::io::FlushStats,
) -> bool {
    let flushed_ok = !batch.is_full() || flush(batch).dropped == 0;
    let Some(pkt) = buf.get(range) else {
        return false;
    };
    batch.push(pkt, to, from).is_ok() && flushed_ok
}

/// Hand one IKE message from the NAT-T socket to the daemon (never blocks the datapath).
fn relay_ike(
    relay: Option<&tokio::sync::mpsc::Sender<IkeRelayed>>,
    stats: &PumpStats,
    local: SocketAddr,
    remote: SocketAddr,
    udp_payload: &[u8],
) {
    stats.natt_ike.fetch_add(1, Ordering::Relaxed);
    let (Some(relay), Some(ike)) = (relay, udp_payload.get(4..)) else {
        return;
    };
    if ike.len() > ipc::fwd::MAX_IKE_RELAY || relay.try_send((local, remote, ike.to_vec())).is_err()
    {
        stats.natt_ike_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

fn inbound_loop(
    engine: &Engine,
    wire: &Wire,
    stop: &AtomicBool,
    stats: &PumpStats,
    ike_relay: Option<&tokio::sync::mpsc::Sender<IkeRelayed>>,
) {
    let mut rx = RecvBatch::new();
    // Coalescing needs the virtio header on writes (offload on). Should the kernel refuse a
    // super-packet (EINVAL), its segments are written one by one and coalescing is turned off.
    let mut gro = wire.tun.offloads().vnet_hdr.then(Coalescer::new);
    let gro_refused = std::cell::Cell::new(false);
    let mut scratch = vec![0u8; crate::datapath::MAX_PACKET];
    let mut write_tun = |h: &VnetHdr, pkt: &[u8]| match wire.tun.write_vnet(h, pkt) {
        Err(e) if h.is_gso() && e.raw_os_error() == Some(libc::EINVAL) => {
            if !gro_refused.replace(true) {
                tracing::warn!(
                    "tunnel device refused a coalesced write ({e}): writing packets one by one"
                );
            }
            wire.tun.write_segmented(h, pkt, &mut scratch)
        }
        r => r,
    };
    let sources: Vec<RawRx> = RawRx::ALL
        .into_iter()
        .filter(|w| wire.raw.rx_fd(*w).is_some())
        .collect();
    let natt_port = wire.natt.port();
    // One poll entry per raw socket (in `sources` order), then the NAT-T socket; built once.
    let mut pfds: Vec<PollFd<'_>> = sources
        .iter()
        .filter_map(|w| wire.raw.rx_fd(*w))
        .chain(std::iter::once(wire.natt.as_fd()))
        .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
        .collect();
    while !stop.load(Ordering::Relaxed) {
        if !wait(&mut pfds) {
            continue;
        }
        for k in 0..pfds.len() {
            if !pfds.get(k).is_some_and(readable) {
                continue;
            }
            // Drain this socket batch by batch.
            loop {
                let got = match sources.get(k) {
                    Some(which) => wire.raw.recv(*which, &mut rx),
                    None => wire.natt.recv(&mut rx),
                };
                match got {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::debug!("receiving from the wire: {e}");
                        break;
                    }
                }
                let now = Instant::now();
                let n = rx.len();
                stats.wire_in.fetch_add(n as u64, Ordering::Relaxed);
                for i in 0..n {
                    let Some(p) = rx.packet(i) else { continue };
                    let info = p.info;
                    let (Some(src), Some(dst)) = (info.src, info.dst) else {
                        continue;
                    };
                    let (proto, udp) = match (sources.get(k), info.natt) {
                        (Some(which), _) => (which.proto(), None),
                        (None, Some(NatTKind::Esp)) => (17, Some((src.port(), natt_port))),
                        (None, Some(NatTKind::Ike)) => {
                            let local = SocketAddr::new(dst, natt_port);
                            relay_ike(ike_relay, stats, local, src, p.payload());
                            continue;
                        }
                        (None, _) => {
                            stats.natt_keepalives.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    };
                    let rxd = Rx {
                        src: src.ip(),
                        dst,
                        proto,
                        udp,
                    };
                    let buf = p.buf;
                    if let Inbound::ToTun { range } = engine.inbound(rxd, buf, info.range(), now) {
                        let pkt = buf.get(range).unwrap_or_default();
                        let r = match gro.as_mut() {
                            Some(g) => g.offer(pkt, &mut write_tun),
                            None => wire.tun.write(pkt),
                        };
                        if r.is_err() {
                            stats.tun_write_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                // Nothing is held across a wait.
                if let Some(g) = gro.as_mut() {
                    if g.flush(&mut write_tun).is_err() {
                        stats.tun_write_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    stats.tun_coalesced.store(g.stats.0, Ordering::Relaxed);
                    stats
                        .tun_coalesced_segments
                        .store(g.stats.1, Ordering::Relaxed);
                }
                if gro_refused.get() {
                    gro = None;
                }
                if n < crate::io::BATCH {
                    break;
                }
            }
        }
    }
}
