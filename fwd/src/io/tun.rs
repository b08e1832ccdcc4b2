//! The TUN device fwd reads cleartext from and writes decrypted packets to.
//!
//! Opened by hand with two ioctls (`TUNSETIFF` with `IFF_TUN | IFF_NO_PI`, then `TUNSETPERSIST`)
//! rather than through the `tun` crate, which offers no persistence control. Persistence is the
//! point: the device, and the routes into it, outlive fwd. If fwd dies, packets routed to a
//! protected destination still go into the device and, with no process attached, are dropped by the
//! kernel: never sent in the clear by the main table. A restarted fwd re-attaches by name.
//! Only one process can be attached at a time (`EBUSY` otherwise), which also stops a second fwd.
//!
//! Opening also sets, on the device:
//! - `net.ipv4.conf.<tun>.rp_filter = 2` (loose). The kernel uses the *maximum* of `all` and the
//!   device's value, so 0 would not turn a strict `all.rp_filter = 1` off; 2 does. Usually the
//!   source of a decrypted packet (the remote subnet) is routed back into the device by table 220
//!   (the reverse lookup carries no mark), which even strict mode accepts; loose mode also accepts
//!   a source routed out of another interface (with the address below). `accept_local` stays 0:
//!   an inner source that is one of our own addresses is not something a gateway should accept.
//! - IPv6: `addr_gen_mode = 1` (no link-local address), `accept_ra = 0`, `autoconf = 0`,
//!   `dad_transmits = 0`, before the link comes up, so the kernel sends nothing of its own (router
//!   solicitations, MLD reports, DAD probes) into the tunnel. IPv6 stays enabled on the device so
//!   that IPv6 inner packets can be written into it (`disable_ipv6` would drop them).
//! - the IPv4 address 192.0.0.8/32 ([`HOST_ADDR`], RFC 7600's "IPv4 dummy address") with host scope.
//!   Reverse-path filtering rejects, in strict *and* loose mode, every packet arriving on a device
//!   without an IPv4 address whose source is not routed back through that device (the kernel's
//!   `__fib_validate_source` goes to its "last resort" and refuses when `rp_filter` is on). With
//!   an address, loose mode accepts any routable source. systemd's defaults put
//!   `rp_filter = 2` on `all` and `default`, so this matters on an ordinary Debian host, and a
//!   subnet-to-subnet tunnel whose remote subnet is also routed elsewhere would lose its decrypted
//!   packets. Host scope keeps the kernel from picking it as the source of packets routed into the
//!   device (fwd's tunnel routes are link-scoped), and 192.0.0.8 is reserved for exactly this kind
//!   of placeholder. (Measured in `fwd/tests/io_netns.rs`: without the address the decrypted
//!   packet is dropped with `all.rp_filter` at 1 or 2.)
//! - the MTU, and the link administratively up.
//!
//! **Offload** ([`Tun::open_or_create`]; [`Tun::open_or_create_with`] or
//! `FERROSWAN_TUN_OFFLOAD=0` in fwd's environment turn it off). When the
//! kernel offers `IFF_VNET_HDR` (`TUNGETFEATURES`), the device is attached with it, the header
//! size set to 10 bytes (`struct virtio_net_hdr`, no mergeable-buffer count: fwd reads whole
//! packets) and `TUNSETOFFLOAD` asked for checksum offload, TCP segmentation offload (IPv4, IPv6,
//! ECN) and UDP segmentation offload, dropping what the kernel refuses (USO first, then ECN, then
//! TSO, then checksum offload): the device works with whatever is left, and the log names what is
//! on. Every read then starts with a `virtio_net_hdr` and may be a GSO super-packet of up to
//! 64 KiB, one syscall for what would otherwise be ~45 reads; [`TunReader`] splits it into IP
//! packets of at most the MTU ([`super::gso`]) and completes checksums left to the device. Every
//! write carries an all-zero header in front (`writev`: no offload, checksums valid).
//! `IFF_VNET_HDR` is a flag of the attachment, not of the device: `TUNSETIFF` on an existing
//! device replaces it (and the other per-attachment flags) with the caller's, so a device
//! created without it can be re-attached with it and the other way round (`fwd/tests/io_netns.rs`
//! shows both). The offloads, on the other hand, are device features and outlive the
//! attachment: opening without offload therefore clears them (`TUNSETOFFLOAD 0`), or the kernel
//! would keep handing unsegmented super-packets to a reader that expects MTU-sized packets.
//!
//! The file descriptor is non-blocking: `read` returns `WouldBlock` when no packet is queued; poll
//! it through [`AsFd`]. Everything acts in the network namespace of the calling thread.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use super::batch::RecvBatch;
use super::gso::{self, Plan, VnetHdr, VNET_HDR_LEN};
use super::sysctl::{self, Family};

nix::ioctl_write_ptr_bad!(tunsetiff, libc::TUNSETIFF, libc::ifreq);
nix::ioctl_write_int_bad!(tunsetpersist, libc::TUNSETPERSIST);
nix::ioctl_read_bad!(siocgifflags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifflags, libc::SIOCSIFFLAGS, libc::ifreq);
nix::ioctl_read_bad!(siocgifmtu, libc::SIOCGIFMTU, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifmtu, libc::SIOCSIFMTU, libc::ifreq);
nix::ioctl_read_bad!(tungetfeatures, libc::TUNGETFEATURES, libc::c_uint);
nix::ioctl_write_ptr_bad!(tunsetvnethdrsz, libc::TUNSETVNETHDRSZ, libc::c_int);

/// Smallest MTU accepted (the IPv4 minimum datagram a host must take). IPv6 needs 1280: below it
/// the kernel disables IPv6 on the device.
pub const MIN_MTU: u32 = 576;
/// Largest MTU accepted.
pub const MAX_MTU: u32 = 65535;
/// The host-scoped placeholder address the device gets (see the module documentation).
pub const HOST_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 0, 8);

const TUN_PATH: &str = "/dev/net/tun";

/// What offload an attached device has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offloads {
    /// Attached with `IFF_VNET_HDR`: every read and write carries a `virtio_net_hdr`.
    pub vnet_hdr: bool,
    /// The `TUN_F_*` flags `TUNSETOFFLOAD` accepted (0 without `vnet_hdr`).
    pub flags: u32,
}

impl Offloads {
    /// The kernel may leave TCP/UDP checksums to fwd (`NEEDS_CSUM`).
    pub fn csum(&self) -> bool {
        self.flags & libc::TUN_F_CSUM != 0
    }

    /// The kernel may hand over TCP super-packets (IPv4, IPv6).
    pub fn tso(&self) -> (bool, bool) {
        (
            self.flags & libc::TUN_F_TSO4 != 0,
            self.flags & libc::TUN_F_TSO6 != 0,
        )
    }

    /// The kernel may hand over UDP super-packets (`UDP_SEGMENT` senders).
    pub fn uso(&self) -> bool {
        self.flags & (libc::TUN_F_USO4 | libc::TUN_F_USO6) == (libc::TUN_F_USO4 | libc::TUN_F_USO6)
    }
}

impl std::fmt::Display for Offloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.vnet_hdr {
            return f.write_str("none (no vnet header)");
        }
        f.write_str("vnet_hdr")?;
        for (bit, name) in [
            (libc::TUN_F_CSUM, "csum"),
            (libc::TUN_F_TSO4, "tso4"),
            (libc::TUN_F_TSO6, "tso6"),
            (libc::TUN_F_TSO_ECN, "tso_ecn"),
            (libc::TUN_F_USO4, "uso4"),
            (libc::TUN_F_USO6, "uso6"),
        ] {
            if self.flags & bit != 0 {
                write!(f, " {name}")?;
            }
        }
        Ok(())
    }
}

/// What [`Tun::open_or_create`] asks `TUNSETOFFLOAD` for, most first: each refused set is
/// followed by the next (older kernels refuse USO with `EINVAL`; TSO needs checksum offload).
const OFFLOAD_STEPS: [libc::c_uint; 5] = [
    libc::TUN_F_CSUM
        | libc::TUN_F_TSO4
        | libc::TUN_F_TSO6
        | libc::TUN_F_TSO_ECN
        | libc::TUN_F_USO4
        | libc::TUN_F_USO6,
    libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN,
    libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6,
    libc::TUN_F_CSUM,
    0,
];

/// The environment variable that turns offload off when set to `0` ([`Tun::open_or_create`]).
pub const OFFLOAD_ENV: &str = "FERROSWAN_TUN_OFFLOAD";

/// An attached, persistent TUN device.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
    ifindex: u32,
    offloads: Offloads,
}

fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    if !sysctl::valid_ifname(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    // SAFETY: ifreq is plain old data (integers, byte arrays, a union of those and a pointer);
    // all-zero is a valid value of each.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    // valid_ifname bounds the name at 15 bytes, so the NUL terminator stays in place.
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn ctl_socket() -> io::Result<OwnedFd> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    Ok(socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

fn open_dev() -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(TUN_PATH)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{TUN_PATH}: {e} (is the tun module loaded?)"),
            )
        })
}

/// `TUNGETFEATURES`: the `IFF_*` flags this kernel's TUN driver takes (0 if it cannot say).
fn features(file: &File) -> libc::c_uint {
    let mut f: libc::c_uint = 0;
    // SAFETY: the fd is an open /dev/net/tun; the kernel writes one unsigned int into `f`.
    match unsafe { tungetfeatures(file.as_raw_fd(), &mut f) } {
        Ok(_) => f,
        Err(_) => 0,
    }
}

/// `TUNSETIFF` on `file`: create the device `name` or attach to the existing one, with
/// `IFF_VNET_HDR` when `vnet_hdr`.
fn attach(file: &File, name: &str, vnet_hdr: bool) -> io::Result<()> {
    let mut req = ifreq_for(name)?;
    let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
    if vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: the fd is an open /dev/net/tun; `req` is a valid ifreq that lives across the call.
    match unsafe { tunsetiff(file.as_raw_fd(), &req) } {
        Ok(_) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("TUN device {name} is attached to another process (is another fwd running?)"),
        )),
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("TUNSETIFF {name}: {e}"),
        )),
    }
}

fn set_persist(file: &File, on: bool) -> io::Result<()> {
    // SAFETY: the fd is an attached TUN fd; TUNSETPERSIST takes an integer argument.
    unsafe { tunsetpersist(file.as_raw_fd(), libc::c_int::from(on)) }
        .map(|_| ())
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("TUNSETPERSIST: {e}")))
}

/// `TUNSETVNETHDRSZ`: the header in front of every packet is a plain `virtio_net_hdr`. The size
/// is a device setting that a previous user may have changed.
fn set_vnet_hdr_size(file: &File) -> io::Result<()> {
    let size = VNET_HDR_LEN as libc::c_int;
    // SAFETY: the fd is an attached TUN fd; the kernel reads one int from `size`.
    unsafe { tunsetvnethdrsz(file.as_raw_fd(), &size) }
        .map(|_| ())
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("TUNSETVNETHDRSZ: {e}")))
}

/// `TUNSETOFFLOAD` with `flags` (passed by value as an unsigned long, as the kernel reads it).
fn set_offload(file: &File, flags: libc::c_uint) -> nix::Result<()> {
    // SAFETY: the fd is an attached TUN fd; TUNSETOFFLOAD takes an integer argument, no pointer.
    let r = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::TUNSETOFFLOAD as _,
            libc::c_ulong::from(flags),
        )
    };
    nix::errno::Errno::result(r).map(|_| ())
}

/// Ask for [`OFFLOAD_STEPS`] in turn; the first set the kernel accepts (0 if none).
fn negotiate_offload(file: &File) -> u32 {
    for step in OFFLOAD_STEPS {
        if set_offload(file, step).is_ok() {
            return step;
        }
    }
    0
}

/// The MTU of interface `name` (in the calling thread's namespace).
pub fn get_mtu(name: &str) -> io::Result<u32> {
    let sock = ctl_socket()?;
    let mut req = ifreq_for(name)?;
    // SAFETY: `sock` is an open socket and `req` a valid ifreq the kernel fills in.
    unsafe { siocgifmtu(sock.as_raw_fd(), &mut req) }?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel wrote ifru_mtu.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| io::Error::other(format!("{name}: negative MTU {mtu}")))
}

fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let sock = ctl_socket()?;
    let mut req = ifreq_for(name)?;
    req.ifr_ifru.ifru_mtu =
        libc::c_int::try_from(mtu).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `sock` is an open socket and `req` a valid ifreq.
    unsafe { siocsifmtu(sock.as_raw_fd(), &req) }
        .map(|_| ())
        .map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("{name}: set MTU {mtu}: {e}"),
            )
        })
}

fn set_up(name: &str) -> io::Result<()> {
    let sock = ctl_socket()?;
    let mut req = ifreq_for(name)?;
    // SAFETY: `sock` is an open socket and `req` a valid ifreq the kernel fills in.
    unsafe { siocgifflags(sock.as_raw_fd(), &mut req) }?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel wrote ifru_flags.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let up = libc::IFF_UP as libc::c_short;
    if flags & up == 0 {
        req.ifr_ifru.ifru_flags = flags | up;
        // SAFETY: as above.
        unsafe { siocsifflags(sock.as_raw_fd(), &req) }.map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("{name}: set link up: {e}"),
            )
        })?;
    }
    Ok(())
}

/// How long [`Tun::open_or_create`] waits for the kernel to mark the device running.
const RUNNING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Wait until `name` is `IFF_RUNNING` (or `limit` passes; then go on regardless).
///
/// Re-attaching to a persistent device turns its carrier back on, but the kernel re-activates the
/// transmit queue asynchronously (link-watch work): until then packets routed into the device,
/// such as the answers to the first packets fwd writes, are dropped. `IFF_RUNNING` is set by the
/// same work, just before the queue is activated. Measured: without this wait about half of the
/// echo replies in the re-attach test were lost.
fn wait_running(name: &str, limit: std::time::Duration) -> io::Result<()> {
    let sock = ctl_socket()?;
    let start = std::time::Instant::now();
    loop {
        let mut req = ifreq_for(name)?;
        // SAFETY: `sock` is an open socket and `req` a valid ifreq the kernel fills in.
        unsafe { siocgifflags(sock.as_raw_fd(), &mut req) }?;
        // SAFETY: SIOCGIFFLAGS succeeded, so the kernel wrote ifru_flags.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        if flags & (libc::IFF_RUNNING as libc::c_short) != 0 || start.elapsed() >= limit {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

fn ifindex(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name)
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{name}: {e}")))
}

/// The sysctls described in the module documentation.
fn configure_sysctls(name: &str) -> io::Result<()> {
    sysctl::set_iface(Family::V4, name, "rp_filter", "2")?;
    if sysctl::ipv6_available() {
        for (key, value) in [
            ("addr_gen_mode", "1"),
            ("accept_ra", "0"),
            ("autoconf", "0"),
            ("dad_transmits", "0"),
        ] {
            sysctl::set_iface(Family::V6, name, key, value)?;
        }
    }
    Ok(())
}

impl Tun {
    /// Create the persistent TUN device `name`, or re-attach to it if it exists (after a restart),
    /// with as much offload as the kernel gives (module documentation), then set its sysctls, MTU
    /// and link state. Fails with `AddrInUse` if another process is attached, and if `name`
    /// exists but is not a TUN device.
    /// `FERROSWAN_TUN_OFFLOAD=0` in the environment turns offload off (to compare, or to work
    /// around a kernel whose offload misbehaves).
    pub fn open_or_create(name: &str, mtu: u32) -> io::Result<Tun> {
        let offload = std::env::var_os(OFFLOAD_ENV).is_none_or(|v| v != "0");
        Tun::open_or_create_with(name, mtu, offload)
    }

    /// [`Tun::open_or_create`], with offload only if `offload` (without it: one packet per read,
    /// no header; offloads a previous attachment left on the device are cleared).
    pub fn open_or_create_with(name: &str, mtu: u32, offload: bool) -> io::Result<Tun> {
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("MTU {mtu} outside {MIN_MTU}..={MAX_MTU}"),
            ));
        }
        let file = open_dev()?;
        let vnet_hdr = offload && features(&file) & (libc::IFF_VNET_HDR as libc::c_uint) != 0;
        attach(&file, name, vnet_hdr)?;
        let offloads = if vnet_hdr {
            set_vnet_hdr_size(&file)?;
            Offloads {
                vnet_hdr,
                flags: negotiate_offload(&file),
            }
        } else {
            // Not fatal: a kernel without TUNSETOFFLOAD has no offload to clear either.
            let _ = set_offload(&file, 0);
            Offloads::default()
        };
        tracing::info!("tunnel device {name}: offload {offloads}");
        set_persist(&file, true)?;
        configure_sysctls(name)?;
        set_mtu(name, mtu)?;
        set_up(name)?;
        let ifindex = ifindex(name)?;
        super::netlink::ensure_host_address(ifindex, HOST_ADDR)?;
        wait_running(name, RUNNING_WAIT)?;
        Ok(Tun {
            file,
            name: name.to_owned(),
            ifindex,
            offloads,
        })
    }

    /// Remove the persistent device `name` (tests, uninstall). `Ok(false)` if it did not exist.
    /// Fails with `AddrInUse` while a process is attached to it.
    pub fn destroy(name: &str) -> io::Result<bool> {
        if !sysctl::valid_ifname(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        if nix::net::if_::if_nametoindex(name).is_err() {
            return Ok(false);
        }
        let file = open_dev()?;
        attach(&file, name, false)?;
        set_persist(&file, false)?;
        drop(file); // last reference to a non-persistent device: the kernel unregisters it
        Ok(true)
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index (for routes).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The device's current MTU.
    pub fn mtu(&self) -> io::Result<u32> {
        get_mtu(&self.name)
    }

    /// The offload this attachment has.
    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    /// Read one packet (an IPv4 or IPv6 packet, no prefix). `WouldBlock` if none is queued.
    /// A packet longer than `buf` is truncated by the kernel; callers size `buf` above the MTU.
    /// With offload, the virtio header is read and consumed and a checksum left to the device is
    /// completed; a GSO super-packet cannot be one packet: it is consumed and refused with
    /// `InvalidData` (read through a [`TunReader`], which splits it).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.offloads.vnet_hdr {
            return self.read_raw(buf);
        }
        let (hdr, n) = self.read_vnet(buf)?;
        let pkt = buf.get_mut(..n).unwrap_or_default();
        let plan =
            Plan::new(&hdr, pkt).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if plan.is_gso() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "GSO super-packet of {n} bytes ({} segments)",
                    plan.segments()
                ),
            ));
        }
        if hdr.flags & gso::F_NEEDS_CSUM != 0 {
            gso::complete_checksum(
                pkt,
                usize::from(hdr.csum_start),
                usize::from(hdr.csum_offset),
            )
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        Ok(n)
    }

    fn read_raw(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&self.file).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// One read with the device's virtio header (all-zero without offload): the header and the
    /// packet's length in `buf`. With offload the packet may be a GSO super-packet; size `buf`
    /// at 64 KiB. A read shorter than the header is `InvalidData`.
    pub fn read_vnet(&self, buf: &mut [u8]) -> io::Result<(VnetHdr, usize)> {
        if !self.offloads.vnet_hdr {
            return Ok((VnetHdr::NONE, self.read_raw(buf)?));
        }
        let mut hdr = [0u8; VNET_HDR_LEN];
        let n = loop {
            let mut iov = [IoSliceMut::new(&mut hdr), IoSliceMut::new(buf)];
            match (&self.file).read_vectored(&mut iov) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        let len = n.checked_sub(VNET_HDR_LEN).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("TUN read of {n} bytes"))
        })?;
        Ok((VnetHdr::decode(&hdr), len))
    }

    /// Write one IPv4 or IPv6 packet into the device (the kernel takes the family from the first
    /// nibble and refuses anything else with `EINVAL`). With offload, an all-zero virtio header
    /// goes in front: no segmentation, the checksums are valid.
    pub fn write(&self, pkt: &[u8]) -> io::Result<()> {
        if self.offloads.vnet_hdr {
            return self.write_vnet(&VnetHdr::NONE, pkt);
        }
        loop {
            match (&self.file).write(pkt) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(n) if n == pkt.len() => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::other(format!(
                        "short TUN write: {n} of {} bytes",
                        pkt.len()
                    )))
                }
            }
        }
    }

    /// Write `pkt` with the virtio header `hdr` in front (one `writev`): a GSO super-packet for
    /// the kernel to segment, or a packet whose checksum it is to complete. `Unsupported` without
    /// offload.
    pub fn write_vnet(&self, hdr: &VnetHdr, pkt: &[u8]) -> io::Result<()> {
        if !self.offloads.vnet_hdr {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TUN device attached without IFF_VNET_HDR",
            ));
        }
        let h = hdr.encode();
        let want = VNET_HDR_LEN + pkt.len();
        loop {
            match (&self.file).write_vectored(&[IoSlice::new(&h), IoSlice::new(pkt)]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(n) if n == want => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::other(format!(
                        "short TUN write: {n} of {want} bytes"
                    )))
                }
            }
        }
    }
}

impl Tun {
    /// Write `pkt`, described by `hdr`, as the separate packets the kernel would have made of it
    /// ([`Plan`]: a GSO super-packet split, a pending checksum completed), each with an all-zero
    /// header; `scratch` holds one packet at a time. The fallback for a kernel that refuses a
    /// GSO write. Stops at the first error; `InvalidData` if `hdr` does not describe `pkt`.
    pub fn write_segmented(&self, hdr: &VnetHdr, pkt: &[u8], scratch: &mut [u8]) -> io::Result<()> {
        let bad = |e: gso::GsoError| io::Error::new(io::ErrorKind::InvalidData, e);
        let plan = Plan::new(hdr, pkt).map_err(bad)?;
        for i in 0..plan.segments() {
            let n = plan.write_segment(pkt, i, scratch).map_err(bad)?;
            self.write(scratch.get(..n).unwrap_or_default())?;
        }
        Ok(())
    }
}

/// Largest read a [`TunReader`] takes: the virtio header and a 64 KiB super-packet, with room
/// to tell a longer (truncated) one apart.
const READ_BUF: usize = VNET_HDR_LEN + 65536 + 1024;

/// What a [`TunReader`] has seen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TunRxStats {
    /// Reads that returned a packet.
    pub reads: u64,
    /// ... of which GSO super-packets.
    pub super_packets: u64,
    /// Packets handed on (segments and whole packets).
    pub packets: u64,
    /// Checksums completed (`NEEDS_CSUM` without GSO).
    pub csum_completed: u64,
    /// Reads dropped: a header that does not describe its packet, a segment longer than the
    /// caller's buffer, or a read that filled the whole buffer (possibly truncated).
    pub malformed: u64,
}

/// Reads packets from a [`Tun`] one IP packet at a time whatever its offload: GSO super-packets
/// are split ([`gso::Plan`]) and their segments handed out in order across calls, checksums
/// left to the device are completed. One per reading thread; holds a 64 KiB buffer (without
/// offload it is not used: packets are read straight into the caller's buffer).
pub struct TunReader {
    buf: Box<[u8]>,
    len: usize,
    plan: Option<Plan>,
    next: usize,
    stats: TunRxStats,
    last_error: Option<gso::GsoError>,
}

impl std::fmt::Debug for TunReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunReader")
            .field("pending", &self.pending())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for TunReader {
    fn default() -> Self {
        TunReader::new()
    }
}

impl TunReader {
    pub fn new() -> TunReader {
        TunReader {
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            len: 0,
            plan: None,
            next: 0,
            stats: TunRxStats::default(),
            last_error: None,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TunRxStats {
        self.stats
    }

    /// Why the last dropped read was dropped.
    pub fn last_error(&self) -> Option<gso::GsoError> {
        self.last_error
    }

    /// Segments of the current super-packet not handed out yet.
    pub fn pending(&self) -> usize {
        self.plan
            .map_or(0, |p| p.segments().saturating_sub(self.next))
    }

    fn drop_read(&mut self, e: gso::GsoError) {
        self.stats.malformed += 1;
        self.last_error = Some(e);
        self.plan = None;
    }

    /// The next IP packet into `out`: a pending segment, else what the next read brings.
    /// `WouldBlock` once the device has nothing more. Malformed reads are dropped and counted,
    /// and the next one is tried.
    pub fn read_packet(&mut self, tun: &Tun, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(plan) = self.plan {
                if self.next < plan.segments() {
                    let i = self.next;
                    self.next += 1;
                    let pkt = self.buf.get(..self.len).unwrap_or_default();
                    match plan.write_segment(pkt, i, out) {
                        Ok(n) => {
                            self.stats.packets += 1;
                            return Ok(n);
                        }
                        Err(e) => {
                            self.drop_read(e);
                            continue;
                        }
                    }
                }
                self.plan = None;
            }
            if !tun.offloads.vnet_hdr {
                let n = tun.read_raw(out)?;
                self.stats.reads += 1;
                self.stats.packets += 1;
                return Ok(n);
            }
            let (hdr, n) = tun.read_vnet(&mut self.buf)?;
            self.stats.reads += 1;
            if n + VNET_HDR_LEN >= READ_BUF {
                self.drop_read(gso::GsoError::SegmentTooLong);
                continue;
            }
            let pkt = self.buf.get(..n).unwrap_or_default();
            match Plan::new(&hdr, pkt) {
                Ok(plan) => {
                    if plan.is_gso() {
                        self.stats.super_packets += 1;
                    } else if hdr.flags & gso::F_NEEDS_CSUM != 0 {
                        self.stats.csum_completed += 1;
                    }
                    self.plan = Some(plan);
                    self.len = n;
                    self.next = 0;
                }
                Err(e) => self.drop_read(e),
            }
        }
    }

    /// Fill `batch` with up to [`super::BATCH`] IP packets (pending segments first, then new
    /// reads; a super-packet that does not fit goes on in the next call). `Err(WouldBlock)` if
    /// there was nothing. The batch's capacity must be at least the device MTU.
    pub fn read_batch(&mut self, tun: &Tun, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.fill_with(|slot| self.read_packet(tun, slot))
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_names_and_mtus_before_any_syscall() {
        assert_eq!(
            Tun::open_or_create("../x", 1400).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            Tun::open_or_create("a%d", 1400).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            Tun::open_or_create("ok0", 100).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            Tun::open_or_create("ok0", 70000).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            Tun::destroy("a/b").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn ifreq_name_is_nul_terminated() {
        let req = ifreq_for("123456789012345").unwrap();
        assert_eq!(req.ifr_name[14], b'5' as libc::c_char);
        assert_eq!(req.ifr_name[15], 0);
    }

    #[test]
    fn destroy_of_missing_device_is_false() {
        // if_nametoindex needs no privilege; the name cannot exist.
        assert!(!Tun::destroy("fsno-such-dev0").unwrap());
    }
}
