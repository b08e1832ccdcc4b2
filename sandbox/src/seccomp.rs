//! The seccomp allow-list, built with libseccomp (through `seccomp-sys`). Everything not listed fails
//! with EPERM rather than killing the daemon: an unexpected call in a rare path becomes an error the
//! daemon logs, and a hostile one still achieves nothing.

use seccomp_sys as sys;
use std::ffi::CString;

/// System calls every ferroswan daemon needs after start-up: memory, threads, the tokio event loop,
/// Unix-socket IPC (accept, send/receive, fd passing), signals, time, randomness, and reading files
/// (the opening of files is [`OPEN`], allowed where the profile's filesystem view says).
pub const COMMON: &[&str] = &[
    // memory
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore",
    // threads and synchronisation
    "futex", "futex_waitv", "set_robust_list", "get_robust_list", "set_tid_address",
    "rseq", "sched_yield", "sched_getaffinity", "membarrier", "gettid", "getpid", "getppid",
    "tgkill", "prctl", "exit", "exit_group", "restart_syscall",
    // event loop
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "eventfd", "eventfd2", "poll", "ppoll", "select", "pselect6", "pipe", "pipe2",
    "timerfd_create", "timerfd_settime", "timerfd_gettime",
    // file descriptors and files
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "close_range", "fcntl",
    "ioctl", "dup", "dup2", "dup3", "lseek", "fstat", "newfstatat", "statx", "fstatfs",
    "readlink", "readlinkat", "getdents64", "getcwd", "access", "faccessat",
    "faccessat2",
    // sockets that exist (creation is filtered by family, see below)
    "accept", "accept4", "connect", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg",
    "recvmmsg", "shutdown", "getsockname", "getpeername", "getsockopt", "setsockopt",
    // signals
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
    // time, identity, randomness
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "getrandom",
    "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid", "uname",
    "prlimit64", "getrlimit", "sysinfo",
];

/// Opening files by name.
pub const OPEN: &[&str] = &["open", "openat", "openat2", "creat"];

/// Namespace flags a confined thread may not pass to clone(2).
const CLONE_NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("libseccomp: seccomp_init failed")]
    Init,
    #[error("libseccomp: cannot add the rule for {0} (error {1})")]
    Rule(&'static str, i32),
    #[error("libseccomp: seccomp_load failed (error {0})")]
    Load(i32),
}

/// An owned libseccomp context, released on drop.
struct Filter(*mut sys::scmp_filter_ctx);

impl Drop for Filter {
    fn drop(&mut self) {
        // SAFETY: the pointer came from seccomp_init and is released exactly once.
        unsafe { sys::seccomp_release(self.0) }
    }
}

fn syscall_number(name: &str) -> Option<libc::c_int> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let n = unsafe { sys::seccomp_syscall_resolve_name(c.as_ptr()) };
    (n != sys::__NR_SCMP_ERROR).then_some(n)
}

impl Filter {
    fn rule(
        &self,
        action: u32,
        name: &'static str,
        args: &[sys::scmp_arg_cmp],
    ) -> Result<(), SeccompError> {
        // A call this libseccomp does not know (newer than it) cannot be made through it either.
        let Some(nr) = syscall_number(name) else {
            return Ok(());
        };
        let n = libc::c_uint::try_from(args.len()).unwrap_or(0);
        // SAFETY: the context is live; `args` points to `n` initialised comparators.
        let rc = unsafe { sys::seccomp_rule_add_array(self.0, action, nr, n, args.as_ptr()) };
        if rc < 0 {
            return Err(SeccompError::Rule(name, rc));
        }
        Ok(())
    }
}

fn arg_eq(arg: u32, value: u64) -> sys::scmp_arg_cmp {
    sys::scmp_arg_cmp {
        arg,
        op: sys::scmp_compare::SCMP_CMP_EQ,
        datum_a: value,
        datum_b: 0,
    }
}

/// Install the allow-list on the calling thread (the daemons confine themselves while they have one
/// thread, so every later thread inherits it). NO_NEW_PRIVS must already be set.
pub fn install(
    open_files: bool,
    extra: &[&'static str],
    socket_families: &[libc::c_int],
) -> Result<(), SeccompError> {
    // SAFETY: plain constructor; a null return is checked.
    let ctx = unsafe { sys::seccomp_init(sys::SCMP_ACT_ERRNO(libc::EPERM as u32)) };
    if ctx.is_null() {
        return Err(SeccompError::Init);
    }
    let f = Filter(ctx);
    let open: &[&'static str] = if open_files { OPEN } else { &[] };
    for name in COMMON.iter().chain(extra.iter()).chain(open.iter()) {
        f.rule(sys::SCMP_ACT_ALLOW, name, &[])?;
    }
    // clone(2) for threads only: any namespace flag is refused.
    f.rule(
        sys::SCMP_ACT_ALLOW,
        "clone",
        &[sys::scmp_arg_cmp {
            arg: 0,
            op: sys::scmp_compare::SCMP_CMP_MASKED_EQ,
            datum_a: CLONE_NS_FLAGS,
            datum_b: 0,
        }],
    )?;
    // clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone.
    f.rule(sys::SCMP_ACT_ERRNO(libc::ENOSYS as u32), "clone3", &[])?;
    for fam in socket_families {
        f.rule(sys::SCMP_ACT_ALLOW, "socket", &[arg_eq(0, *fam as u64)])?;
    }
    f.rule(
        sys::SCMP_ACT_ALLOW,
        "socketpair",
        &[arg_eq(0, libc::AF_UNIX as u64)],
    )?;
    // SAFETY: the context is live and complete.
    let rc = unsafe { sys::seccomp_load(f.0) };
    if rc < 0 {
        return Err(SeccompError::Load(rc));
    }
    Ok(())
}
