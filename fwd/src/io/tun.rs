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
//! The file descriptor is non-blocking: `read` returns `WouldBlock` when no packet is queued; poll
//! it through [`AsFd`]. Everything acts in the network namespace of the calling thread.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use super::batch::RecvBatch;
use super::sysctl::{self, Family};

nix::ioctl_write_ptr_bad!(tunsetiff, libc::TUNSETIFF, libc::ifreq);
nix::ioctl_write_int_bad!(tunsetpersist, libc::TUNSETPERSIST);
nix::ioctl_read_bad!(siocgifflags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifflags, libc::SIOCSIFFLAGS, libc::ifreq);
nix::ioctl_read_bad!(siocgifmtu, libc::SIOCGIFMTU, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifmtu, libc::SIOCSIFMTU, libc::ifreq);

/// Smallest MTU accepted (the IPv4 minimum datagram a host must take). IPv6 needs 1280: below it
/// the kernel disables IPv6 on the device.
pub const MIN_MTU: u32 = 576;
/// Largest MTU accepted.
pub const MAX_MTU: u32 = 65535;
/// The host-scoped placeholder address the device gets (see the module documentation).
pub const HOST_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 0, 8);

const TUN_PATH: &str = "/dev/net/tun";

/// An attached, persistent TUN device.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
    ifindex: u32,
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

/// `TUNSETIFF` on `file`: create the device `name` or attach to the existing one.
fn attach(file: &File, name: &str) -> io::Result<()> {
    let mut req = ifreq_for(name)?;
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
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
    /// then set its sysctls, MTU and link state. Fails with `AddrInUse` if another process is
    /// attached, and if `name` exists but is not a TUN device.
    pub fn open_or_create(name: &str, mtu: u32) -> io::Result<Tun> {
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("MTU {mtu} outside {MIN_MTU}..={MAX_MTU}"),
            ));
        }
        let file = open_dev()?;
        attach(&file, name)?;
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
        attach(&file, name)?;
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

    /// Read one packet (an IPv4 or IPv6 packet, no prefix). `WouldBlock` if none is queued.
    /// A packet longer than `buf` is truncated by the kernel; callers size `buf` above the MTU.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&self.file).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Write one IPv4 or IPv6 packet into the device (the kernel takes the family from the first
    /// nibble and refuses anything else with `EINVAL`).
    pub fn write(&self, pkt: &[u8]) -> io::Result<()> {
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

    /// Read up to [`super::BATCH`] queued packets into `batch` (one `read` each, stopping at the
    /// first `WouldBlock`). `Err(WouldBlock)` if none was queued. The batch's capacity must be at
    /// least the device MTU (the kernel truncates a longer packet silently).
    pub fn read_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.fill_with(|slot| self.read(slot))
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
