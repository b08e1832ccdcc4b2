//! What each daemon keeps: the privilege table of the README, in one place. The daemons confine
//! themselves with these profiles and the privilege tests assert the same values from /proc.

use caps::Capability;

/// Where a daemon may still look in the filesystem once confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsView {
    /// The whole filesystem, as its user sees it (confd re-reads ipsec.conf and its includes).
    Full,
    /// No file can be opened at all (seccomp refuses open/openat); Unix sockets are still reached
    /// by path (ikerd reconnects to keyd and fwd).
    NoOpen,
    /// [`FsView::NoOpen`] inside an empty, root-owned directory as `/` (keyd, a server only).
    EmptyRoot,
}

/// One daemon's row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// The daemon's name, for log lines and errors.
    pub name: &'static str,
    /// The system user it runs as.
    pub user: &'static str,
    /// Capabilities kept in the permitted and effective sets (everything else leaves the bounding set).
    pub caps: &'static [Capability],
    pub fs: FsView,
    /// Socket families it may still create sockets of (`socket(2)`); others fail with EPERM.
    pub socket_families: &'static [libc::c_int],
    /// System calls allowed beyond the common set every daemon needs ([`crate::seccomp::COMMON`]).
    pub extra_syscalls: &'static [&'static str],
}

/// The group every service user belongs to: the daemons' sockets are mode 0660 in this group.
pub const SOCKET_GROUP: &str = "ferroswan";

/// The operators' group: members may change state through `ipsecctl` (root always may).
pub const ADMIN_GROUP: &str = "ipsec";

pub const KEYD: Profile = Profile {
    name: "keyd",
    user: "ferroswan-keyd",
    caps: &[],
    fs: FsView::EmptyRoot,
    socket_families: &[],
    extra_syscalls: &[],
};

pub const IKERD: Profile = Profile {
    name: "ikerd",
    user: "ferroswan-ikerd",
    caps: &[],
    fs: FsView::NoOpen,
    // It talks to keyd and fwd over Unix sockets; its UDP socket comes from fwd, already bound.
    socket_families: &[libc::AF_UNIX],
    extra_syscalls: &[],
};

pub const CONFD: Profile = Profile {
    name: "confd",
    user: "ferroswan-confd",
    caps: &[],
    fs: FsView::Full,
    // Unix for IPC; a netlink route socket to list the host's addresses (getifaddrs) on reload.
    socket_families: &[libc::AF_UNIX, libc::AF_NETLINK],
    extra_syscalls: &["bind"],
};

pub const FWD: Profile = Profile {
    name: "fwd",
    user: "ferroswan-fwd",
    caps: &[Capability::CAP_NET_ADMIN, Capability::CAP_NET_RAW],
    fs: FsView::Full,
    // Netlink for routes and rules, inet for ESP, UDP and the ICMP it sends back; Unix for IPC.
    socket_families: &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK],
    // Sequence-number checkpoints are written to a temporary file and renamed into place.
    extra_syscalls: &[
        "bind", "rename", "renameat", "renameat2", "unlink", "unlinkat", "fchmod", "fchown",
        "mkdir", "mkdirat",
    ],
};

/// All four, for tests and the README's table.
pub const ALL: [Profile; 4] = [KEYD, IKERD, CONFD, FWD];

impl Profile {
    /// The capabilities as a bit mask, as /proc/PID/status prints CapEff and CapPrm.
    pub fn cap_mask(&self) -> u64 {
        self.caps
            .iter()
            .fold(0u64, |m, c| m | (1u64 << (c.index() as u64)))
    }
}
