//! Peer credentials (SO_PEERCRED), who may speak which role, and fd passing (SCM_RIGHTS).

use crate::hello::Role;
use nix::unistd::{Gid, Group, Uid, User};
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The kernel's word on who is at the other end of a Unix socket.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Display for PeerCred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid={} uid={} gid={}", self.pid, self.uid, self.gid)
    }
}

impl PeerCred {
    pub fn of(stream: &tokio::net::UnixStream) -> std::io::Result<PeerCred> {
        let c = stream.peer_cred()?;
        Ok(PeerCred {
            pid: c.pid().unwrap_or(-1),
            uid: c.uid(),
            gid: c.gid(),
        })
    }
}

/// The name of the system user each daemon drops to (created by the packages; see the README).
pub fn service_user(role: Role) -> Option<&'static str> {
    match role {
        Role::Keyd => Some("ferroswan-keyd"),
        Role::Ikerd => Some("ferroswan-ikerd"),
        Role::Confd => Some("ferroswan-confd"),
        Role::Fwd => Some("ferroswan-fwd"),
        Role::Ctl | Role::Supervisor => None,
    }
}

/// Which uids may claim which role. Root may claim any role; each daemon role may also be claimed by
/// its service user; `Ctl` (the operator's client) may be claimed by anyone, and each request is then
/// authorised by [`Authz::may_change_state`].
#[derive(Debug, Clone, Default)]
pub struct Authz {
    role_uids: BTreeMap<Role, BTreeSet<u32>>,
    admin_gid: Option<u32>,
    admin_group: String,
}

impl Authz {
    /// Build from the system's user database: service users that exist are allowed for their role.
    pub fn from_system(admin_group: &str) -> Self {
        let mut a = Authz {
            admin_group: admin_group.to_string(),
            ..Default::default()
        };
        for role in Role::DAEMONS {
            if let Some(name) = service_user(role) {
                if let Ok(Some(u)) = User::from_name(name) {
                    a.allow(role, u.uid.as_raw());
                }
            }
        }
        a.admin_gid = Group::from_name(admin_group)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw());
        a
    }

    pub fn allow(&mut self, role: Role, uid: u32) {
        self.role_uids.entry(role).or_default().insert(uid);
    }

    /// May a process with this uid claim `role`?
    pub fn may_claim(&self, role: Role, uid: u32) -> bool {
        uid == 0 || role == Role::Ctl || self.role_uids.get(&role).is_some_and(|s| s.contains(&uid))
    }

    /// May this operator change state (root, or a member of the admin group, by primary or
    /// supplementary membership)?
    pub fn may_change_state(&self, cred: &PeerCred) -> bool {
        if cred.uid == 0 {
            return true;
        }
        let Some(admin) = self.admin_gid else {
            return false;
        };
        if cred.gid == admin {
            return true;
        }
        let Ok(Some(user)) = User::from_uid(Uid::from_raw(cred.uid)) else {
            return false;
        };
        let Ok(name) = std::ffi::CString::new(user.name) else {
            return false;
        };
        nix::unistd::getgrouplist(&name, user.gid)
            .map(|gs| gs.contains(&Gid::from_raw(admin)))
            .unwrap_or(false)
    }

    pub fn admin_group(&self) -> &str {
        &self.admin_group
    }
}

/// Send `data` with `fds` attached (SCM_RIGHTS) in one sendmsg; returns bytes written.
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> nix::Result<usize> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [std::io::IoSlice::new(data)];
    let cmsgs = if fds.is_empty() {
        vec![]
    } else {
        vec![ControlMessage::ScmRights(fds)]
    };
    sendmsg::<()>(sock, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None)
}

/// Most fds a single frame may carry.
pub const MAX_FDS: usize = 4;

/// Receive into `buf`, collecting any fds passed with it. Returns (bytes read, fds).
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(rs) = c {
            for r in rs {
                // SAFETY: the kernel just installed this descriptor in our table for us; we own it.
                fds.push(unsafe { OwnedFd::from_raw_fd(r) });
            }
        }
    }
    Ok((msg.bytes, fds))
}
