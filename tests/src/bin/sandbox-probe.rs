//! A small probe run under a daemon's sandbox: tries each action once as started (root), then
//! confines itself with the daemon's own profile (`sandbox::confine`, the call the daemon makes) and
//! tries each again. Prints one line per try: `before ACTION: ok` / `after ACTION: denied: …`.
//!
//! usage: sandbox-probe keyd|ikerd|confd|fwd RUN_DIR ACTION...
//!   open:PATH | raw-socket | udp-socket | udp6-socket | netlink-socket | unix-socket | tun

use std::os::fd::{FromRawFd, OwnedFd};

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn tun() -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short, _pad: [0; 22] };
    req.name[..7].copy_from_slice(b"probe%d");
    // SAFETY: TUNSETIFF reads and writes one ifreq, which `req` is (with padding to its size).
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&f), 0x400454ca, &mut req) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn attempt(action: &str) -> std::io::Result<()> {
    if let Some(path) = action.strip_prefix("open:") {
        return std::fs::File::open(path).map(|_| ());
    }
    match action {
        "raw-socket" => socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ESP).map(|_| ()),
        "udp-socket" => socket(libc::AF_INET, libc::SOCK_DGRAM, 0).map(|_| ()),
        "udp6-socket" => socket(libc::AF_INET6, libc::SOCK_DGRAM, 0).map(|_| ()),
        "netlink-socket" => socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE).map(|_| ()),
        "unix-socket" => socket(libc::AF_UNIX, libc::SOCK_STREAM, 0).map(|_| ()),
        "tun" => tun(),
        other => Err(std::io::Error::other(format!("unknown action {other}"))),
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(name), Some(run_dir)) = (args.first(), args.get(1)) else {
        eprintln!("usage: sandbox-probe keyd|ikerd|confd|fwd RUN_DIR ACTION...");
        return std::process::ExitCode::from(2);
    };
    let Some(profile) = sandbox::profile::ALL.iter().find(|p| p.name == name) else {
        eprintln!("no profile {name}");
        return std::process::ExitCode::from(2);
    };
    let actions = args.get(2..).unwrap_or_default();
    for a in actions {
        match attempt(a) {
            Ok(()) => println!("before {a}: ok"),
            Err(e) => println!("before {a}: denied: {e}"),
        }
    }
    let opts = sandbox::Options::new(std::path::Path::new(run_dir));
    match sandbox::confine(profile, &opts) {
        Ok(c) => println!("confined: {}", c.privileges.summary()),
        Err(e) => {
            println!("cannot confine: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    for a in actions {
        match attempt(a) {
            Ok(()) => println!("after {a}: ok"),
            Err(e) => println!("after {a}: denied: {e}"),
        }
    }
    std::process::ExitCode::SUCCESS
}
