//! Many datagrams per system call: `recvmmsg` into, and `sendmmsg` from, slots allocated once.
//!
//! Each batch owns [`BATCH`] slots of `HEADROOM + capacity + TAILROOM` bytes. A received packet
//! lands at offset [`HEADROOM`] of its slot, so the engine can prepend (outer header, UDP
//! encapsulation, a rebuilt IPv6 header) and append (ESP trailer and ICV) in place. Nothing is
//! allocated per packet or per call: the `mmsghdr`/`iovec` arrays live on the stack of each call
//! and point into the batch's own buffers, socket addresses and control-message buffers.
//!
//! The system calls are made through `libc` rather than `nix::sys::socket::{recvmmsg, sendmmsg}`:
//! nix's `sendmmsg` applies one list of control messages to every message of the call, and fwd
//! picks the source address of each packet with its own `IP_PKTINFO`/`IPV6_PKTINFO`; nix's
//! `MultiHeaders` also holds raw pointers, which would make a batch impossible to move to the
//! thread that uses it. The unsafe code is confined to this file: building the headers, the two
//! calls, and reading/writing `sockaddr`/`cmsghdr` structures whose bounds are checked first.
//! Socket set-up elsewhere uses nix.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use super::{unmap, unmap_sa, BATCH, HEADROOM, TAILROOM};
use crate::esp::ip::NatTKind;

/// Default packet capacity of a slot: jumbo frames. A received datagram longer than the capacity
/// is dropped (counted in [`RecvStats::truncated`]); a reassembled outer packet above it cannot be
/// a tunnel packet fwd would accept anyway (the TUN MTU is far below).
pub const DEFAULT_PACKET_CAP: usize = 9216;

const CMSG_BUF: usize = 128;

/// A control-message buffer with `cmsghdr` alignment.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BUF]);

const fn cmsg_align(len: usize) -> usize {
    (len + size_of::<usize>() - 1) & !(size_of::<usize>() - 1)
}
const CMSG_HDR: usize = cmsg_align(size_of::<libc::cmsghdr>());
const fn cmsg_space(data: usize) -> usize {
    CMSG_HDR + cmsg_align(data)
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is integers only; all-zero is valid (family AF_UNSPEC).
    unsafe { std::mem::zeroed() }
}

/// Which family the sending socket is. An `AF_INET6` socket reaches IPv4 destinations as
/// `::ffff:a.b.c.d` when it is dual-stack (fwd's UDP sockets are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockFamily {
    /// `AF_INET`
    V4,
    /// `AF_INET6`
    V6,
}

/// What [`RecvBatch::recv`] learnt about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxInfo {
    /// Start of the packet in its slot (at least [`HEADROOM`] minus what the socket layer
    /// prepended, e.g. a rebuilt IPv6 header).
    pub start: usize,
    /// End of the packet in its slot.
    pub end: usize,
    /// Sender (port 0 on raw sockets); `None` for TUN reads. IPv4-mapped addresses are unmapped.
    pub src: Option<SocketAddr>,
    /// Local destination address (from the IP header or `IP_PKTINFO`/`IPV6_PKTINFO`), unmapped.
    pub dst: Option<IpAddr>,
    /// Receiving interface index, 0 when unknown.
    pub ifindex: u32,
    /// Set by [`super::NattSocket::recv`]: what the UDP payload is.
    pub natt: Option<NatTKind>,
}

impl RxInfo {
    const EMPTY: RxInfo = RxInfo {
        start: 0,
        end: 0,
        src: None,
        dst: None,
        ifindex: 0,
        natt: None,
    };

    /// Where the packet lies in its slot.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// One received packet: its whole slot (headroom and tailroom included) and where it lies in it.
#[derive(Debug)]
pub struct RxPacket<'a> {
    /// The slot: `buf[info.range()]` is the packet.
    pub buf: &'a mut [u8],
    /// Addresses and position.
    pub info: RxInfo,
}

impl RxPacket<'_> {
    /// The packet bytes.
    pub fn payload(&self) -> &[u8] {
        self.buf.get(self.info.range()).unwrap_or(&[])
    }
}

/// Packets a receive path dropped before handing them on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecvStats {
    /// Longer than the slot capacity.
    pub truncated: u64,
    /// Refused by the socket's post-processing (bad IP header, no destination address…).
    pub malformed: u64,
}

/// [`BATCH`] receive slots and what the last receive put in them.
pub struct RecvBatch {
    buf: Box<[u8]>,
    cap: usize,
    addrs: Box<[libc::sockaddr_storage]>,
    ctrl: Box<[CmsgBuf]>,
    info: [RxInfo; BATCH],
    /// Slot numbers of the packets handed on, in arrival order.
    live: [usize; BATCH],
    n: usize,
    stats: RecvStats,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("cap", &self.cap)
            .field("len", &self.n)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch::new()
    }
}

impl RecvBatch {
    /// Slots of [`DEFAULT_PACKET_CAP`] bytes.
    pub fn new() -> RecvBatch {
        RecvBatch::with_capacity(DEFAULT_PACKET_CAP)
    }

    /// Slots that take packets of up to `cap` bytes (at least 1, at most 65535).
    pub fn with_capacity(cap: usize) -> RecvBatch {
        let cap = cap.clamp(1, 65535);
        RecvBatch {
            buf: vec![0u8; BATCH * (HEADROOM + cap + TAILROOM)].into_boxed_slice(),
            cap,
            addrs: vec![zeroed_storage(); BATCH].into_boxed_slice(),
            ctrl: vec![CmsgBuf([0; CMSG_BUF]); BATCH].into_boxed_slice(),
            info: [RxInfo::EMPTY; BATCH],
            live: [0; BATCH],
            n: 0,
            stats: RecvStats::default(),
        }
    }

    /// Packet capacity of each slot.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    fn slot_len(&self) -> usize {
        HEADROOM + self.cap + TAILROOM
    }

    /// Packets from the last receive.
    pub fn len(&self) -> usize {
        self.n
    }

    /// No packet from the last receive.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Drops counted so far.
    pub fn stats(&self) -> RecvStats {
        self.stats
    }

    /// Forget the packets of the last receive.
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// Packet `i` (0 ≤ i < `len()`), with its slot writable for in-place processing.
    pub fn packet(&mut self, i: usize) -> Option<RxPacket<'_>> {
        let slot_no = *self.live.get(..self.n)?.get(i)?;
        let slot_len = self.slot_len();
        let info = *self.info.get(slot_no)?;
        let buf = self.buf.chunks_exact_mut(slot_len).nth(slot_no)?;
        Some(RxPacket { buf, info })
    }

    /// Addresses and position of packet `i`.
    pub fn info(&self, i: usize) -> Option<RxInfo> {
        let slot_no = *self.live.get(..self.n)?.get(i)?;
        self.info.get(slot_no).copied()
    }

    /// The bytes of packet `i`.
    pub fn payload(&self, i: usize) -> Option<&[u8]> {
        let slot_no = *self.live.get(..self.n)?.get(i)?;
        let info = self.info.get(slot_no)?;
        self.buf
            .chunks_exact(self.slot_len())
            .nth(slot_no)?
            .get(info.range())
    }

    /// One `recvmmsg(MSG_DONTWAIT)` on `fd`: up to [`BATCH`] datagrams, each at [`HEADROOM`] of its
    /// slot, with the sender and (when the socket has `IP_PKTINFO`/`IPV6_RECVPKTINFO` on) the local
    /// destination address. Returns how many packets were kept (truncated ones are dropped and
    /// counted; the result can then be 0); `Err(WouldBlock)` if nothing was queued.
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.n = 0;
        let slot_len = self.slot_len();
        let cap = self.cap;
        // SAFETY: iovec and mmsghdr are pointers and integers; all-zero (null, 0) is valid.
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut prepared = 0usize;
        for ((((slot, iov), hdr), addr), ctrl) in self
            .buf
            .chunks_exact_mut(slot_len)
            .zip(iovs.iter_mut())
            .zip(hdrs.iter_mut())
            .zip(self.addrs.iter_mut())
            .zip(self.ctrl.iter_mut())
        {
            let Some(data) = slot.get_mut(HEADROOM..HEADROOM + cap) else {
                break;
            };
            iov.iov_base = data.as_mut_ptr().cast();
            iov.iov_len = data.len();
            let m = &mut hdr.msg_hdr;
            m.msg_iov = iov;
            m.msg_iovlen = 1;
            m.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            m.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_control = ctrl.0.as_mut_ptr().cast();
            m.msg_controllen = CMSG_BUF as _;
            prepared += 1;
        }
        let got = loop {
            // SAFETY: the first `prepared` headers point at one iovec each (on this stack frame,
            // not moved since), which points at `cap` writable bytes of a slot; at a
            // sockaddr_storage and a CMSG_BUF-byte buffer of this batch, all of the stated sizes
            // and alive for the whole call. `self` is exclusively borrowed, so nothing else
            // touches them.
            let r = unsafe {
                libc::recvmmsg(
                    fd.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    prepared as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        for (slot_no, hdr) in hdrs.iter().enumerate().take(got.min(prepared)) {
            let m = &hdr.msg_hdr;
            if m.msg_flags & libc::MSG_TRUNC != 0 {
                self.stats.truncated += 1;
                continue;
            }
            let len = (hdr.msg_len as usize).min(cap);
            let src = self
                .addrs
                .get(slot_no)
                .and_then(|a| sockaddr_to_std(a, m.msg_namelen as usize));
            #[allow(clippy::unnecessary_cast)] // socklen_t on musl
            let ctrl_len = (m.msg_controllen as usize).min(CMSG_BUF);
            let (dst, ifindex) = self
                .ctrl
                .get(slot_no)
                .and_then(|c| c.0.get(..ctrl_len))
                .map(parse_pktinfo)
                .unwrap_or((None, 0));
            if let (Some(info), Some(live)) =
                (self.info.get_mut(slot_no), self.live.get_mut(self.n))
            {
                *info = RxInfo {
                    start: HEADROOM,
                    end: HEADROOM + len,
                    src,
                    dst,
                    ifindex,
                    natt: None,
                };
                *live = slot_no;
                self.n += 1;
            }
        }
        Ok(self.n)
    }

    /// Fill slots by calling `read` on each slot's packet area until it returns `WouldBlock` or
    /// [`BATCH`] packets are in (the TUN device gives one packet per `read`). An error after at
    /// least one packet ends the batch early and is reported by the next call. `Err(WouldBlock)` if
    /// the first read found nothing. Addresses are left empty.
    pub fn fill_with(
        &mut self,
        mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.n = 0;
        let slot_len = self.slot_len();
        let cap = self.cap;
        for (slot_no, slot) in self.buf.chunks_exact_mut(slot_len).enumerate() {
            let Some(data) = slot.get_mut(HEADROOM..HEADROOM + cap) else {
                break;
            };
            match read(data) {
                Ok(0) => continue,
                Ok(len) => {
                    if let (Some(info), Some(live)) =
                        (self.info.get_mut(slot_no), self.live.get_mut(self.n))
                    {
                        *info = RxInfo {
                            start: HEADROOM,
                            end: HEADROOM + len.min(cap),
                            ..RxInfo::EMPTY
                        };
                        *live = slot_no;
                        self.n += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if self.n == 0 => return Err(e),
                Err(_) => break,
            }
        }
        if self.n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(self.n)
    }

    /// Let `f` adjust each kept packet (move its range, set addresses) or drop it (`false`,
    /// counted as malformed). Used by the socket wrappers' post-processing.
    pub(crate) fn retain_map(&mut self, mut f: impl FnMut(&mut [u8], &mut RxInfo) -> bool) {
        let slot_len = self.slot_len();
        let mut kept = 0;
        for r in 0..self.n {
            let Some(&slot_no) = self.live.get(r) else {
                break;
            };
            let (Some(slot), Some(info)) = (
                self.buf.chunks_exact_mut(slot_len).nth(slot_no),
                self.info.get_mut(slot_no),
            ) else {
                continue;
            };
            if f(slot, info) {
                if let Some(l) = self.live.get_mut(kept) {
                    *l = slot_no;
                }
                kept += 1;
            } else {
                self.stats.malformed += 1;
            }
        }
        self.n = kept;
    }
}

/// Why [`SendBatch::push`] refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// [`BATCH`] packets are waiting: flush first.
    Full,
    /// Longer than the slot capacity (or the range lies outside the slot).
    TooLarge,
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PushError::Full => "send batch full",
            PushError::TooLarge => "packet larger than the send slot",
        })
    }
}

impl std::error::Error for PushError {}

/// What a flush did. Every queued packet is either sent or dropped: a datapath drops rather than
/// waits, and one bad destination must not hold the others back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    /// Handed to the kernel.
    pub sent: usize,
    /// Refused by the kernel (per-packet errors such as `EHOSTUNREACH`, `EMSGSIZE`; or the socket
    /// buffer full: `EAGAIN`/`ENOBUFS` drop the rest of the batch), or not encodable (an address
    /// family the socket cannot reach).
    pub dropped: usize,
    /// The last error seen.
    pub last_error: Option<Errno>,
}

impl FlushStats {
    fn add(&mut self, other: FlushStats) {
        self.sent += other.sent;
        self.dropped += other.dropped;
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct TxMeta {
    start: usize,
    end: usize,
    to: SocketAddr,
    from: Option<IpAddr>,
}

const TX_EMPTY: TxMeta = TxMeta {
    start: 0,
    end: 0,
    to: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
    from: None,
};

/// Up to [`BATCH`] outgoing datagrams, each with its destination and, optionally, the source
/// address to send from (as `IP_PKTINFO`/`IPV6_PKTINFO`, so per packet).
pub struct SendBatch {
    buf: Box<[u8]>,
    cap: usize,
    meta: [TxMeta; BATCH],
    n: usize,
    addrs: Box<[libc::sockaddr_storage]>,
    ctrl: Box<[CmsgBuf]>,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("cap", &self.cap)
            .field("len", &self.n)
            .finish()
    }
}

impl Default for SendBatch {
    fn default() -> Self {
        SendBatch::new()
    }
}

impl SendBatch {
    /// Slots of [`DEFAULT_PACKET_CAP`] bytes.
    pub fn new() -> SendBatch {
        SendBatch::with_capacity(DEFAULT_PACKET_CAP)
    }

    /// Slots that take packets of up to `cap` bytes (at least 1, at most 65535).
    pub fn with_capacity(cap: usize) -> SendBatch {
        let cap = cap.clamp(1, 65535);
        SendBatch {
            buf: vec![0u8; BATCH * (HEADROOM + cap + TAILROOM)].into_boxed_slice(),
            cap,
            meta: [TX_EMPTY; BATCH],
            n: 0,
            addrs: vec![zeroed_storage(); BATCH].into_boxed_slice(),
            ctrl: vec![CmsgBuf([0; CMSG_BUF]); BATCH].into_boxed_slice(),
        }
    }

    fn slot_len(&self) -> usize {
        HEADROOM + self.cap + TAILROOM
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// No room for another packet.
    pub fn is_full(&self) -> bool {
        self.n >= BATCH
    }

    /// Copy `pkt` into the next slot, to be sent to `to` (port 0 for raw sockets) from `from`
    /// (`None`: the kernel picks the source, or it is in the header of a header-included packet).
    pub fn push(
        &mut self,
        pkt: &[u8],
        to: SocketAddr,
        from: Option<IpAddr>,
    ) -> Result<(), PushError> {
        if pkt.len() > self.cap {
            return Err(PushError::TooLarge);
        }
        let slot = self.next_slot().ok_or(PushError::Full)?;
        let dst = slot
            .get_mut(HEADROOM..HEADROOM + pkt.len())
            .ok_or(PushError::TooLarge)?;
        dst.copy_from_slice(pkt);
        self.commit(HEADROOM..HEADROOM + pkt.len(), to, from)
    }

    /// The next free slot, whole (`HEADROOM + capacity + TAILROOM` bytes), to build a packet in
    /// place; then [`SendBatch::commit`] it. `None` when full.
    pub fn next_slot(&mut self) -> Option<&mut [u8]> {
        let slot_len = self.slot_len();
        let n = self.n;
        self.buf.chunks_exact_mut(slot_len).nth(n)
    }

    /// Queue the packet at `range` of the slot last returned by [`SendBatch::next_slot`].
    pub fn commit(
        &mut self,
        range: Range<usize>,
        to: SocketAddr,
        from: Option<IpAddr>,
    ) -> Result<(), PushError> {
        if range.start > range.end || range.end > self.slot_len() {
            return Err(PushError::TooLarge);
        }
        let meta = self.meta.get_mut(self.n).ok_or(PushError::Full)?;
        *meta = TxMeta {
            start: range.start,
            end: range.end,
            to,
            from,
        };
        self.n += 1;
        Ok(())
    }

    /// Drop everything queued without sending.
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// Send everything queued on `fd` (a socket of `family`), as few `sendmmsg` calls as the
    /// kernel allows. The batch is empty afterwards.
    pub fn flush(&mut self, fd: BorrowedFd<'_>, family: SockFamily) -> FlushStats {
        let stats = self.send_where(fd, family, |_| true);
        self.n = 0;
        stats
    }

    /// Send IPv4 destinations on `v4` and IPv6 ones on `v6` (both `None`-able: packets with no
    /// socket for their family are dropped). The batch is empty afterwards.
    pub fn flush_split(
        &mut self,
        v4: Option<BorrowedFd<'_>>,
        v6: Option<BorrowedFd<'_>>,
    ) -> FlushStats {
        let mut stats = FlushStats::default();
        for (fd, family, want_v6) in [(v4, SockFamily::V4, false), (v6, SockFamily::V6, true)] {
            match fd {
                Some(fd) => stats.add(self.send_where(fd, family, |m| m.to.is_ipv6() == want_v6)),
                None => {
                    let missing = self
                        .meta
                        .iter()
                        .take(self.n)
                        .filter(|m| m.to.is_ipv6() == want_v6)
                        .count();
                    if missing > 0 {
                        stats.add(FlushStats {
                            sent: 0,
                            dropped: missing,
                            last_error: Some(Errno::EAFNOSUPPORT),
                        });
                    }
                }
            }
        }
        self.n = 0;
        stats
    }

    fn send_where(
        &mut self,
        fd: BorrowedFd<'_>,
        family: SockFamily,
        want: impl Fn(&TxMeta) -> bool,
    ) -> FlushStats {
        let mut stats = FlushStats::default();
        let slot_len = self.slot_len();
        // SAFETY: iovec and mmsghdr are pointers and integers; all-zero (null, 0) is valid.
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut count = 0usize;
        for (((meta, slot), addr), ctrl) in self
            .meta
            .iter()
            .take(self.n)
            .zip(self.buf.chunks_exact(slot_len))
            .zip(self.addrs.iter_mut())
            .zip(self.ctrl.iter_mut())
        {
            if !want(meta) {
                continue;
            }
            let (Some(data), Some(namelen), Some(ctrl_len)) = (
                slot.get(meta.start..meta.end),
                encode_sockaddr(addr, meta.to, family),
                encode_pktinfo(&mut ctrl.0, meta.from, family),
            ) else {
                stats.dropped += 1;
                stats.last_error = Some(Errno::EAFNOSUPPORT);
                continue;
            };
            let (Some(iov), Some(hdr)) = (iovs.get_mut(count), hdrs.get_mut(count)) else {
                break;
            };
            iov.iov_base = data.as_ptr().cast_mut().cast();
            iov.iov_len = data.len();
            let m = &mut hdr.msg_hdr;
            m.msg_iov = iov;
            m.msg_iovlen = 1;
            m.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            m.msg_namelen = namelen;
            if ctrl_len > 0 {
                m.msg_control = ctrl.0.as_mut_ptr().cast();
                m.msg_controllen = ctrl_len as _;
            }
            count += 1;
        }
        let mut off = 0usize;
        while off < count {
            let Some(rest) = hdrs.get_mut(off..count) else {
                break;
            };
            // SAFETY: each header in `rest` points at one iovec on this stack frame (not moved
            // since), which points at bytes of a slot of this batch; at a sockaddr_storage holding
            // `msg_namelen` initialised bytes; and at a control buffer of `msg_controllen` bytes
            // (or none). The kernel only reads them; `self` is exclusively borrowed.
            let r = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    rest.as_mut_ptr(),
                    rest.len() as libc::c_uint,
                    0,
                )
            };
            if r > 0 {
                let r = r as usize;
                stats.sent += r;
                off += r;
                continue;
            }
            let e = Errno::last();
            match e {
                Errno::EINTR => continue,
                Errno::EAGAIN | Errno::ENOBUFS => {
                    stats.dropped += count - off;
                    stats.last_error = Some(e);
                    break;
                }
                _ => {
                    // The first message of `rest` failed: drop it, go on with the others.
                    stats.dropped += 1;
                    stats.last_error = Some(e);
                    off += 1;
                }
            }
        }
        stats
    }
}

/// Send one datagram made of `parts` (gathered, not copied) to `to` from `from`, on a socket of
/// `family`. Returns the bytes sent.
pub fn send_one(
    fd: BorrowedFd<'_>,
    family: SockFamily,
    parts: &[&[u8]],
    to: SocketAddr,
    from: Option<IpAddr>,
) -> io::Result<usize> {
    const MAX_PARTS: usize = 4;
    if parts.len() > MAX_PARTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many parts",
        ));
    }
    let mut addr = zeroed_storage();
    let mut ctrl = CmsgBuf([0; CMSG_BUF]);
    let namelen = encode_sockaddr(&mut addr, to, family).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot reach {to} from this socket"),
        )
    })?;
    let ctrl_len = encode_pktinfo(&mut ctrl.0, from, family).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot send from {from:?} on this socket"),
        )
    })?;
    // SAFETY: all-zero iovec is valid.
    let mut iovs: [libc::iovec; MAX_PARTS] = unsafe { std::mem::zeroed() };
    for (iov, part) in iovs.iter_mut().zip(parts) {
        iov.iov_base = part.as_ptr().cast_mut().cast();
        iov.iov_len = part.len();
    }
    // SAFETY: all-zero msghdr is valid.
    let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = iovs.as_mut_ptr();
    m.msg_iovlen = parts.len() as _;
    m.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    m.msg_namelen = namelen;
    if ctrl_len > 0 {
        m.msg_control = ctrl.0.as_mut_ptr().cast();
        m.msg_controllen = ctrl_len as _;
    }
    loop {
        // SAFETY: `m` points at `parts.len()` iovecs over live borrowed slices, an initialised
        // sockaddr of `namelen` bytes and a control buffer of `ctrl_len` bytes, all on this frame.
        let r = unsafe { libc::sendmsg(fd.as_raw_fd(), &m, 0) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Write `to` into `ss` as a socket of `family` needs it; the address length, or `None` if the
/// socket cannot reach that family.
fn encode_sockaddr(
    ss: &mut libc::sockaddr_storage,
    to: SocketAddr,
    family: SockFamily,
) -> Option<libc::socklen_t> {
    match (family, to) {
        (SockFamily::V4, SocketAddr::V4(a)) => {
            // SAFETY: all-zero sockaddr_in is valid.
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            // SAFETY: sockaddr_storage is larger than and at least as aligned as sockaddr_in.
            unsafe {
                std::ptr::write(
                    (ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>(),
                    sin,
                )
            };
            Some(size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        (SockFamily::V4, SocketAddr::V6(_)) => None,
        (SockFamily::V6, to) => {
            let (ip, port, flowinfo, scope) = match to {
                SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), a.port(), 0, 0),
                SocketAddr::V6(a) => (*a.ip(), a.port(), a.flowinfo(), a.scope_id()),
            };
            // SAFETY: all-zero sockaddr_in6 is valid.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = port.to_be();
            sin6.sin6_flowinfo = flowinfo.to_be();
            sin6.sin6_addr.s6_addr = ip.octets();
            sin6.sin6_scope_id = scope;
            // SAFETY: sockaddr_storage is larger than and at least as aligned as sockaddr_in6.
            unsafe {
                std::ptr::write(
                    (ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>(),
                    sin6,
                )
            };
            Some(size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// Write the source-address control message for `from` into `buf`; its length (0 for `None`), or
/// `None` if the socket family cannot express it.
fn encode_pktinfo(
    buf: &mut [u8; CMSG_BUF],
    from: Option<IpAddr>,
    family: SockFamily,
) -> Option<usize> {
    let Some(from) = from else { return Some(0) };
    // (level, type, data)
    let (level, ty, data, data_len): (libc::c_int, libc::c_int, [u8; 20], usize) =
        match (family, from) {
            (SockFamily::V4, IpAddr::V4(a)) => {
                // struct in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst; struct in_addr ipi_addr; }
                let mut d = [0u8; 20];
                d.get_mut(4..8)?.copy_from_slice(&a.octets());
                (libc::IPPROTO_IP, libc::IP_PKTINFO, d, 12)
            }
            (SockFamily::V4, IpAddr::V6(_)) => return None,
            (SockFamily::V6, a) => {
                // struct in6_pktinfo { struct in6_addr ipi6_addr; unsigned int ipi6_ifindex; }
                let v6 = match a {
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                    IpAddr::V6(a) => a,
                };
                let mut d = [0u8; 20];
                d.get_mut(..16)?.copy_from_slice(&v6.octets());
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, d, 20)
            }
        };
    let space = cmsg_space(data_len);
    if space > CMSG_BUF {
        return None;
    }
    // SAFETY: all-zero cmsghdr is valid (integers, padding).
    let mut h: libc::cmsghdr = unsafe { std::mem::zeroed() };
    h.cmsg_len = (CMSG_HDR + data_len) as _;
    h.cmsg_level = level;
    h.cmsg_type = ty;
    buf.fill(0);
    // SAFETY: `buf` has CMSG_BUF ≥ size_of::<cmsghdr>() bytes; write_unaligned needs no alignment.
    unsafe { std::ptr::write_unaligned(buf.as_mut_ptr().cast::<libc::cmsghdr>(), h) };
    buf.get_mut(CMSG_HDR..CMSG_HDR + data_len)?
        .copy_from_slice(data.get(..data_len)?);
    Some(space)
}

/// The address the kernel wrote into `ss` (`len` bytes), unmapped; `None` if absent or unknown.
fn sockaddr_to_std(ss: &libc::sockaddr_storage, len: usize) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says sockaddr_in; the storage is larger and aligned enough.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says sockaddr_in6; the storage is larger and aligned enough.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let sa = SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            );
            Some(unmap_sa(SocketAddr::V6(sa)))
        }
        _ => None,
    }
}

/// Destination address and interface from `IP_PKTINFO` / `IPV6_PKTINFO` control messages in
/// `ctrl` (the bytes the kernel wrote). Anything else, or anything malformed, is ignored.
fn parse_pktinfo(ctrl: &[u8]) -> (Option<IpAddr>, u32) {
    let mut off = 0usize;
    let mut out = (None, 0u32);
    while let Some(rest) = ctrl.get(off..) {
        if rest.len() < size_of::<libc::cmsghdr>() {
            break;
        }
        // SAFETY: `rest` holds at least size_of::<cmsghdr>() bytes; cmsghdr is integers only and
        // read_unaligned needs no alignment.
        let h: libc::cmsghdr = unsafe { std::ptr::read_unaligned(rest.as_ptr().cast()) };
        #[allow(clippy::unnecessary_cast)] // socklen_t on musl
        let len = h.cmsg_len as usize;
        if len < CMSG_HDR || len > rest.len() {
            break;
        }
        let data = rest.get(CMSG_HDR..len).unwrap_or(&[]);
        match (h.cmsg_level, h.cmsg_type) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                // in_pktinfo: ifindex (int), spec_dst, addr (the header's destination)
                let ix = data.get(0..4).and_then(|b| <[u8; 4]>::try_from(b).ok());
                let a = data.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok());
                if let (Some(ix), Some(a)) = (ix, a) {
                    let ix = u32::try_from(i32::from_ne_bytes(ix)).unwrap_or(0);
                    out = (Some(IpAddr::V4(Ipv4Addr::from(a))), ix);
                }
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                // in6_pktinfo: addr (16 bytes), ifindex (unsigned int)
                let a = data.get(0..16).and_then(|b| <[u8; 16]>::try_from(b).ok());
                let ix = data.get(16..20).and_then(|b| <[u8; 4]>::try_from(b).ok());
                if let (Some(a), Some(ix)) = (a, ix) {
                    out = (
                        Some(unmap(IpAddr::V6(Ipv6Addr::from(a)))),
                        u32::from_ne_bytes(ix),
                    );
                }
            }
            _ => {}
        }
        off = match off.checked_add(cmsg_align(len)) {
            Some(o) => o,
            None => break,
        };
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn pktinfo_roundtrip_v4_and_v6() {
        let mut buf = [0u8; CMSG_BUF];
        let n =
            encode_pktinfo(&mut buf, Some("192.0.2.7".parse().unwrap()), SockFamily::V4).unwrap();
        assert_eq!(n, cmsg_space(12));
        // The encoder writes spec_dst; a received in_pktinfo carries the header address in
        // ipi_addr: put it there to check the parser.
        buf[CMSG_HDR + 8..CMSG_HDR + 12].copy_from_slice(&[192, 0, 2, 7]);
        buf[CMSG_HDR..CMSG_HDR + 4].copy_from_slice(&3i32.to_ne_bytes());
        assert_eq!(
            parse_pktinfo(&buf[..n]),
            (Some("192.0.2.7".parse().unwrap()), 3)
        );

        let n = encode_pktinfo(
            &mut buf,
            Some("2001:db8::9".parse().unwrap()),
            SockFamily::V6,
        )
        .unwrap();
        assert_eq!(
            parse_pktinfo(&buf[..n]),
            (Some("2001:db8::9".parse().unwrap()), 0)
        );
        // IPv4 source on an IPv6 socket: mapped on the wire, unmapped when parsed.
        let n =
            encode_pktinfo(&mut buf, Some("10.0.0.1".parse().unwrap()), SockFamily::V6).unwrap();
        assert_eq!(
            &buf[CMSG_HDR..CMSG_HDR + 16],
            &"::ffff:10.0.0.1".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(
            parse_pktinfo(&buf[..n]).0,
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            encode_pktinfo(&mut buf, Some("::1".parse().unwrap()), SockFamily::V4),
            None
        );
        assert_eq!(encode_pktinfo(&mut buf, None, SockFamily::V4), Some(0));
    }

    #[test]
    fn pktinfo_parser_survives_garbage() {
        // Every prefix and every corrupted length of a valid buffer: no panic, no loop.
        let mut buf = [0u8; CMSG_BUF];
        let n = encode_pktinfo(
            &mut buf,
            Some("2001:db8::9".parse().unwrap()),
            SockFamily::V6,
        )
        .unwrap();
        for cut in 0..=n {
            let _ = parse_pktinfo(&buf[..cut]);
        }
        for bad_len in [0usize, 1, CMSG_HDR - 1, CMSG_HDR, 1000, usize::MAX] {
            let mut b = buf;
            let mut h: libc::cmsghdr = unsafe { std::ptr::read_unaligned(b.as_ptr().cast()) };
            h.cmsg_len = bad_len as _;
            unsafe { std::ptr::write_unaligned(b.as_mut_ptr().cast(), h) };
            let _ = parse_pktinfo(&b);
        }
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut b = [0u8; 64];
            for x in b.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *x = seed as u8;
            }
            let _ = parse_pktinfo(&b);
        }
    }

    #[test]
    fn sockaddr_roundtrip() {
        let mut ss = zeroed_storage();
        for (sa, fam) in [
            ("192.0.2.1:4500", SockFamily::V4),
            ("[2001:db8::1]:500", SockFamily::V6),
            ("192.0.2.1:4500", SockFamily::V6), // mapped, then unmapped
        ] {
            let sa: SocketAddr = sa.parse().unwrap();
            let len = encode_sockaddr(&mut ss, sa, fam).unwrap();
            assert_eq!(sockaddr_to_std(&ss, len as usize), Some(sa));
        }
        assert_eq!(
            encode_sockaddr(&mut ss, "[::1]:1".parse().unwrap(), SockFamily::V4),
            None
        );
        assert_eq!(sockaddr_to_std(&ss, 3), None);
        assert_eq!(sockaddr_to_std(&zeroed_storage(), 128), None);
    }

    #[test]
    fn push_commit_limits() {
        let mut b = SendBatch::with_capacity(100);
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(b.push(&[0u8; 101], to, None), Err(PushError::TooLarge));
        for _ in 0..BATCH {
            b.push(&[1u8; 100], to, None).unwrap();
        }
        assert!(b.is_full());
        assert_eq!(b.push(&[1u8; 1], to, None), Err(PushError::Full));
        assert!(b.next_slot().is_none());
        b.clear();
        let slot = b.next_slot().unwrap();
        assert_eq!(slot.len(), HEADROOM + 100 + TAILROOM);
        assert_eq!(
            b.commit(0..HEADROOM + 100 + TAILROOM + 1, to, None),
            Err(PushError::TooLarge)
        );
        #[allow(clippy::reversed_empty_ranges)]
        let r = b.commit(5..4, to, None);
        assert_eq!(r, Err(PushError::TooLarge));
        b.commit(0..10, to, None).unwrap();
        assert_eq!(b.len(), 1);
    }

    /// Loopback UDP needs no privilege: a batch goes out in order, per-packet, and comes back with
    /// headroom in front and the sender and destination addresses.
    #[test]
    fn loopback_udp_batch() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::Ipv4PacketInfo, &true)
            .unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut sb = SendBatch::new();
        for i in 0..40u8 {
            if sb.is_full() {
                let st = sb.flush(tx.as_fd(), SockFamily::V4);
                assert_eq!((st.sent, st.dropped), (BATCH, 0));
            }
            sb.push(&[i; 10], to, Some("127.0.0.1".parse().unwrap()))
                .unwrap();
        }
        let st = sb.flush(tx.as_fd(), SockFamily::V4);
        assert_eq!((st.sent, st.dropped), (8, 0));
        assert!(sb.is_empty());

        let mut rb = RecvBatch::with_capacity(64);
        let mut seen = Vec::new();
        while seen.len() < 40 {
            match rb.recv(rx.as_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        let p = rb.packet(i).unwrap();
                        assert_eq!(p.info.start, HEADROOM);
                        assert_eq!(p.info.src, Some(tx.local_addr().unwrap()));
                        assert_eq!(p.info.dst, Some("127.0.0.1".parse().unwrap()));
                        assert_eq!(p.payload().len(), 10);
                        seen.push(p.payload()[0]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(seen, (0..40).collect::<Vec<u8>>());
        assert_eq!(
            rb.recv(rx.as_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn oversized_datagram_is_dropped_and_counted() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(&[7u8; 200], rx.local_addr().unwrap()).unwrap();
        tx.send_to(&[8u8; 50], rx.local_addr().unwrap()).unwrap();
        let mut rb = RecvBatch::with_capacity(100);
        let mut got = 0;
        for _ in 0..200 {
            if let Ok(n) = rb.recv(rx.as_fd()) {
                for i in 0..n {
                    assert_eq!(rb.payload(i).unwrap(), &[8u8; 50][..]);
                    got += 1;
                }
                if got == 1 && rb.stats().truncated == 1 {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!((got, rb.stats().truncated), (1, 1));
    }

    #[test]
    fn fill_with_stops_at_would_block() {
        let mut rb = RecvBatch::with_capacity(16);
        let mut calls = 0;
        let n = rb
            .fill_with(|buf| {
                calls += 1;
                if calls <= 3 {
                    buf[..4].copy_from_slice(&[calls as u8; 4]);
                    Ok(4)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                }
            })
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(rb.payload(2).unwrap(), &[3u8; 4]);
        assert!(rb.info(2).unwrap().src.is_none());
        assert_eq!(
            rb.fill_with(|_| Err(io::ErrorKind::WouldBlock.into()))
                .unwrap_err()
                .kind(),
            io::ErrorKind::WouldBlock
        );
        // a hard error on the first read is reported
        assert_eq!(
            rb.fill_with(|_| Err(io::ErrorKind::InvalidData.into()))
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidData
        );
        // at most BATCH reads
        let mut calls = 0;
        assert_eq!(
            rb.fill_with(|_| {
                calls += 1;
                Ok(1)
            })
            .unwrap(),
            BATCH
        );
        assert_eq!(calls, BATCH);
    }

    #[test]
    fn retain_map_moves_and_drops() {
        let mut rb = RecvBatch::with_capacity(16);
        let mut k = 0u8;
        rb.fill_with(|buf| {
            k += 1;
            if k > 4 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            buf[0] = k;
            Ok(8)
        })
        .unwrap();
        rb.retain_map(|slot, info| {
            let first = slot[info.start];
            info.start += 1;
            first % 2 == 0
        });
        assert_eq!(rb.len(), 2);
        assert_eq!(rb.stats().malformed, 2);
        assert_eq!(rb.info(0).unwrap().start, HEADROOM + 1);
        assert!(rb.packet(2).is_none());
    }

    #[test]
    fn flush_split_drops_family_without_socket() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sb = SendBatch::new();
        sb.push(b"a", rx.local_addr().unwrap(), None).unwrap();
        sb.push(b"b", "[::1]:9".parse().unwrap(), None).unwrap();
        let st = sb.flush_split(Some(tx.as_fd()), None);
        assert_eq!(
            (st.sent, st.dropped, st.last_error),
            (1, 1, Some(Errno::EAFNOSUPPORT))
        );
        assert!(sb.is_empty());
    }

    #[test]
    fn per_packet_error_does_not_stop_the_batch() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sb = SendBatch::new();
        sb.push(b"one", rx.local_addr().unwrap(), None).unwrap();
        // a source address this host does not have: EINVAL/EADDRNOTAVAIL for this one only
        sb.push(
            b"bad",
            rx.local_addr().unwrap(),
            Some("192.0.2.99".parse().unwrap()),
        )
        .unwrap();
        sb.push(b"two", rx.local_addr().unwrap(), None).unwrap();
        let st = sb.flush(tx.as_fd(), SockFamily::V4);
        assert_eq!((st.sent, st.dropped), (2, 1), "{st:?}");
        assert!(st.last_error.is_some());
    }
}
