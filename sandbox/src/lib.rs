//! Privilege dropping for the daemons: one call, [`confine`], made by each daemon after it has opened
//! what it needs (sockets, the TUN device, the secrets) and before it starts any thread or reads a
//! byte from a peer. It changes to the daemon's service user, keeps only the capabilities of its
//! [`Profile`], sets NO_NEW_PRIVS, puts keyd and ikerd in an empty root, and installs the seccomp
//! allow-list. A daemon that cannot drop what its profile says refuses to run, unless the
//! development switch [`DEV_ENV`] is set, and then it says so loudly (log and `ipsecctl status`).

pub mod proc_status;
pub mod profile;
pub mod seccomp;

pub use proc_status::ProcPrivileges;
pub use profile::{FsView, Profile, ADMIN_GROUP, SOCKET_GROUP};

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Group, Uid, User};
use std::path::{Path, PathBuf};

/// `FERROSWAN_INSECURE_DEV=1` lets a daemon run with more privilege than its profile when it cannot
/// drop it (no service users on a development machine). Never set it on a gateway.
pub const DEV_ENV: &str = "FERROSWAN_INSECURE_DEV";

pub fn dev_mode_from_env() -> bool {
    std::env::var_os(DEV_ENV).is_some_and(|v| v == "1")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("the system user {user} does not exist, so {daemon} would run as root: refusing. Create the service users (scripts/setup-users.sh, or the package's sysusers.d entry); {DEV_ENV}=1 runs as root anyway, for development only")]
    MissingUser { daemon: &'static str, user: &'static str },
    #[error("the group {group} does not exist, so {daemon}'s peers could not reach its socket: refusing. Create it with the service users (scripts/setup-users.sh)")]
    MissingGroup { daemon: &'static str, group: &'static str },
    #[error("{daemon} was started as uid {uid} without {missing}, which it needs: refusing (start it as root and let it drop, or grant them to its unit)")]
    MissingCaps { daemon: &'static str, uid: u32, missing: String },
    #[error("{daemon} has {threads} threads: it must confine itself before starting any (capabilities are per thread)")]
    Threads { daemon: &'static str, threads: u32 },
    #[error("{daemon}: {what}: {err}")]
    Sys { daemon: &'static str, what: String, err: String },
    #[error("{daemon}: seccomp: {0}", daemon = .1)]
    Seccomp(seccomp::SeccompError, &'static str),
    #[error("{daemon} is not confined as its profile says after dropping: {what}")]
    Check { daemon: &'static str, what: String },
}

/// Where the empty root of [`FsView::EmptyRoot`] daemons is (created root-owned, mode 0755, empty).
#[derive(Debug, Clone)]
pub struct Options {
    pub dev: bool,
    pub empty_root: PathBuf,
}

impl Options {
    /// The switch from the environment, and the empty root under the run directory.
    pub fn new(run_dir: &Path) -> Options {
        Options {
            dev: dev_mode_from_env(),
            empty_root: run_dir.join("empty"),
        }
    }
}

/// What confinement achieved, as the kernel reports it, and what was relaxed (development only).
#[derive(Debug, Clone)]
pub struct Confined {
    pub daemon: &'static str,
    pub privileges: ProcPrivileges,
    /// In the empty root ([`FsView::EmptyRoot`]).
    pub chrooted: bool,
    /// Each thing the profile asks for that this run does not have, in words. Empty on a gateway.
    pub relaxed: Vec<String>,
}

impl Confined {
    /// Lines for `ipsecctl status --daemons`.
    pub fn notes(&self) -> Vec<String> {
        let mut n = vec![format!("sandbox: {}", self.privileges.summary())];
        for r in &self.relaxed {
            n.push(format!("INSECURE: {r}"));
        }
        n
    }
}

fn sys<E: std::fmt::Display>(daemon: &'static str, what: &str) -> impl FnOnce(E) -> ConfineError {
    let what = what.to_string();
    move |e| ConfineError::Sys {
        daemon,
        what,
        err: e.to_string(),
    }
}

fn cap_set(caps: &[Capability]) -> CapsHashSet {
    caps.iter().copied().collect()
}

/// Make `dir` an empty root-owned directory and change root into it.
fn enter_empty_root(p: &Profile, dir: &Path) -> Result<(), ConfineError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let d = p.name;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(sys(d, &format!("create {}", dir.display())))?;
    let meta = std::fs::symlink_metadata(dir).map_err(sys(d, &dir.display().to_string()))?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(sys(d, &format!("chmod {}", dir.display())))?;
        nix::unistd::chown(dir, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))
            .map_err(sys(d, &format!("chown {}", dir.display())))?;
    }
    if std::fs::read_dir(dir)
        .map_err(sys(d, &dir.display().to_string()))?
        .next()
        .is_some()
    {
        return Err(ConfineError::Sys {
            daemon: d,
            what: format!("empty root {}", dir.display()),
            err: "is not empty".into(),
        });
    }
    nix::unistd::chroot(dir).map_err(sys(d, &format!("chroot {}", dir.display())))?;
    nix::unistd::chdir("/").map_err(sys(d, "chdir /"))?;
    Ok(())
}

fn read_status(f: &mut std::fs::File) -> Result<ProcPrivileges, String> {
    use std::io::{Read, Seek};
    f.seek(std::io::SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(|e| e.to_string())?;
    ProcPrivileges::parse(&text)
}

/// Drop to the profile. Call with one thread, after opening what the daemon needs.
pub fn confine(p: &Profile, opts: &Options) -> Result<Confined, ConfineError> {
    let d = p.name;
    // Opened first: after the empty root and the filter, it could not be opened any more; it is
    // read again (from offset 0) to check the result.
    let mut status =
        std::fs::File::open("/proc/self/status").map_err(sys(d, "/proc/self/status"))?;
    let before = read_status(&mut status).map_err(sys(d, "read /proc/self/status"))?;
    if before.threads != 1 {
        return Err(ConfineError::Threads {
            daemon: d,
            threads: before.threads,
        });
    }
    let mut relaxed = Vec::new();
    let mut chrooted = false;
    // The kernel forgets the parent-death signal when the uid changes: remember it, set it again.
    let pdeathsig = nix::sys::prctl::get_pdeathsig().map_err(sys(d, "PR_GET_PDEATHSIG"))?;
    let parent = nix::unistd::getppid();
    let user = User::from_name(p.user).map_err(sys(d, &format!("look up user {}", p.user)))?;
    let keep = cap_set(p.caps);
    let root = nix::unistd::geteuid().is_root();
    if root {
        let group = Group::from_name(SOCKET_GROUP)
            .map_err(sys(d, &format!("look up group {SOCKET_GROUP}")))?;
        match (&user, &group) {
            (Some(_), Some(_)) => {}
            (None, _) if opts.dev => relaxed.push(format!(
                "running as root: the user {} does not exist ({DEV_ENV}=1)",
                p.user
            )),
            (None, _) => {
                return Err(ConfineError::MissingUser {
                    daemon: d,
                    user: p.user,
                })
            }
            (Some(_), None) => {
                return Err(ConfineError::MissingGroup {
                    daemon: d,
                    group: SOCKET_GROUP,
                })
            }
        }
        if p.fs == FsView::EmptyRoot {
            enter_empty_root(p, &opts.empty_root)?;
            chrooted = true;
        }
        // Out of the bounding set goes everything not kept (needs CAP_SETPCAP: still root here).
        for c in caps::all() {
            if !keep.contains(&c) {
                // A capability this kernel does not know is not in the set to begin with.
                let _ = caps::drop(None, CapSet::Bounding, c);
            }
        }
        if let (Some(u), Some(g)) = (&user, &group) {
            if !keep.is_empty() {
                nix::sys::prctl::set_keepcaps(true).map_err(sys(d, "PR_SET_KEEPCAPS"))?;
            }
            nix::unistd::setgroups(&[g.gid]).map_err(sys(d, "setgroups"))?;
            nix::unistd::setresgid(u.gid, u.gid, u.gid).map_err(sys(d, "setresgid"))?;
            nix::unistd::setresuid(u.uid, u.uid, u.uid).map_err(sys(d, "setresuid"))?;
            nix::sys::prctl::set_keepcaps(false).map_err(sys(d, "PR_SET_KEEPCAPS"))?;
            if let Some(sig) = pdeathsig {
                nix::sys::prctl::set_pdeathsig(sig).map_err(sys(d, "PR_SET_PDEATHSIG"))?;
                if nix::unistd::getppid() != parent {
                    // The parent went while the signal was unset: act as if it had arrived.
                    let _ = nix::sys::signal::raise(sig);
                }
            }
        }
    } else {
        let uid = nix::unistd::geteuid().as_raw();
        if user.as_ref().map(|u| u.uid.as_raw()) != Some(uid) {
            relaxed.push(format!("started as uid {uid}, not as {}", p.user));
        }
        if p.fs == FsView::EmptyRoot {
            relaxed.push("filesystem not confined (needs a start as root)".into());
        }
        let have = caps::read(None, CapSet::Permitted).map_err(sys(d, "read capabilities"))?;
        let missing: Vec<String> = p
            .caps
            .iter()
            .filter(|c| !have.contains(c))
            .map(|c| c.to_string())
            .collect();
        if !missing.is_empty() {
            if !opts.dev {
                return Err(ConfineError::MissingCaps {
                    daemon: d,
                    uid,
                    missing: missing.join(", "),
                });
            }
            relaxed.push(format!("missing {} ({DEV_ENV}=1)", missing.join(", ")));
        }
    }
    // Effective first (it must stay within permitted at each step), then permitted; nothing
    // inheritable or ambient, so a child of a daemon gets no capability.
    let have = caps::read(None, CapSet::Permitted).map_err(sys(d, "read capabilities"))?;
    let kept: CapsHashSet = keep.intersection(&have).copied().collect();
    caps::set(None, CapSet::Effective, &kept).map_err(sys(d, "set effective capabilities"))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(sys(d, "set permitted capabilities"))?;
    caps::clear(None, CapSet::Inheritable).map_err(sys(d, "clear inheritable capabilities"))?;
    caps::clear(None, CapSet::Ambient).map_err(sys(d, "clear ambient capabilities"))?;
    nix::sys::prctl::set_no_new_privs().map_err(sys(d, "PR_SET_NO_NEW_PRIVS"))?;
    seccomp::install(p.fs == FsView::Full, p.extra_syscalls, p.socket_families)
        .map_err(|e| ConfineError::Seccomp(e, d))?;

    let after = read_status(&mut status).map_err(sys(d, "read /proc/self/status"))?;
    drop(status);
    let check = |ok: bool, what: String| {
        if ok {
            Ok(())
        } else {
            Err(ConfineError::Check { daemon: d, what })
        }
    };
    check(after.no_new_privs, "NoNewPrivs is 0".into())?;
    check(after.seccomp == 2, format!("Seccomp is {}", after.seccomp))?;
    check(
        after.cap_eff & !p.cap_mask() == 0 && after.cap_prm & !p.cap_mask() == 0,
        format!(
            "capabilities {:#x}/{:#x} exceed {:#x}",
            after.cap_eff,
            after.cap_prm,
            p.cap_mask()
        ),
    )?;
    if let (true, Some(u)) = (root, &user) {
        check(
            after.uids.iter().all(|x| *x == u.uid.as_raw()),
            format!("uids {:?}, not {}", after.uids, u.uid),
        )?;
    }
    let c = Confined {
        daemon: d,
        privileges: after,
        chrooted,
        relaxed,
    };
    if c.relaxed.is_empty() {
        tracing::info!("{d} confined: user {}, {}", p.user, c.privileges.summary());
    } else {
        for r in &c.relaxed {
            tracing::error!("{d}: INSECURE DEVELOPMENT MODE: {r}");
        }
        tracing::warn!("{d} partly confined: {}", c.privileges.summary());
    }
    Ok(c)
}
