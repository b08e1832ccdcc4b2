//! The supervisor of one gateway instance, as `_plutorun` was for pluto: starts the four daemons,
//! learns their readiness through the sd_notify protocol (the same one systemd uses, so the daemons
//! run unchanged under either), writes pid files, restarts a daemon that dies (with back-off), answers
//! on supervisor.sock and stops everything on request or SIGTERM.

use ipc::peer::Authz;
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::status::now_unix;
use ipc::supervisor::{
    UpdownRun,
    ProcReport, ProcState, SupervisorChannel, SupervisorRequest, SupervisorResponse,
    SupervisorStatus,
};
use ipc::{Dirs, Role};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::sync::Notify;

/// Back-off between restarts of a daemon that keeps dying: doubles from 1 s up to 30 s, and starts
/// over once a daemon has stayed up for a minute.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How long daemons get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Proc {
    pid: Option<u32>,
    state: Option<ProcState>,
    started: Option<u64>,
    restarts: u32,
    last_exit: Option<String>,
    /// Set by a Restart request: start again at once, without back-off.
    restart_now: bool,
}

pub struct Supervisor {
    dirs: Dirs,
    libexec: PathBuf,
    started: u64,
    procs: RefCell<BTreeMap<Role, Proc>>,
    stopping: Cell<bool>,
    stop: Notify,
    authz: Authz,
    /// `ctlstatus=everyone`.
    status_for_everyone: bool,
}

/// Where the daemon binaries are: $FERROSWAN_LIBEXEC, else beside this executable (a cargo build),
/// else /usr/libexec/ferroswan (the packages).
pub fn libexec_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FERROSWAN_LIBEXEC") {
        return PathBuf::from(d);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            if dir.join("keyd").is_file() {
                return dir.to_path_buf();
            }
        }
    }
    PathBuf::from("/usr/libexec/ferroswan")
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!(
            "killed by signal {}",
            nix::sys::signal::Signal::try_from(s)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| s.to_string())
        ),
        _ => "exited".into(),
    }
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .inspect(|f| {
            // Readable by the daemons' group too: confd gathers the logs for `ipsecctl barf`.
            if let Ok(Some(g)) = nix::unistd::Group::from_name(ipc::server::SOCKET_GROUP) {
                let _ = nix::unistd::fchown(std::os::fd::AsRawFd::as_raw_fd(f), None, Some(g.gid));
            }
        })
}

impl Supervisor {
    fn report(&self) -> SupervisorStatus {
        let procs = self
            .procs
            .borrow()
            .iter()
            .map(|(role, p)| ProcReport {
                role: *role,
                pid: p.pid,
                state: p.state.unwrap_or(ProcState::Down),
                started_unix: p.started,
                restarts: p.restarts,
                last_exit: p.last_exit.clone(),
            })
            .collect();
        SupervisorStatus {
            pid: std::process::id(),
            started_unix: self.started,
            config_dir: self.dirs.config.display().to_string(),
            run_dir: self.dirs.run.display().to_string(),
            procs,
        }
    }

    fn set(&self, role: Role, f: impl FnOnce(&mut Proc)) {
        f(self.procs.borrow_mut().entry(role).or_default());
    }

    fn pid_of(&self, role: Role) -> Option<u32> {
        self.procs.borrow().get(&role).and_then(|p| p.pid)
    }

    fn signal(&self, role: Role, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid_of(role).and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    }

    /// Run one daemon for as long as the supervisor runs.
    async fn keep_running(self: Rc<Self>, role: Role) {
        let mut backoff = BACKOFF_MIN;
        let pid_file = self.dirs.pid_file(role.name());
        loop {
            if self.stopping.get() {
                break;
            }
            let mut cmd = tokio::process::Command::new(self.libexec.join(role.name()));
            cmd.arg("--config-dir")
                .arg(&self.dirs.config)
                .arg("--run-dir")
                .arg(&self.dirs.run);
            cmd.env("NOTIFY_SOCKET", self.dirs.notify_socket());
            cmd.stdin(std::process::Stdio::null());
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec. A daemon
            // whose supervisor dies gets SIGTERM, so no orphan holds the instance's sockets.
            unsafe {
                cmd.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(std::io::Error::from)
                });
            }
            match open_log(&self.dirs.log_file(role.name())).and_then(|f| Ok((f.try_clone()?, f))) {
                Ok((out, err)) => {
                    cmd.stdout(out).stderr(err);
                }
                Err(e) => tracing::warn!("{role}: cannot open its log file: {e}"),
            }
            let start = Instant::now();
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(
                        "{role}: cannot start {}: {e}",
                        self.libexec.join(role.name()).display()
                    );
                    self.set(role, |p| {
                        p.state = Some(ProcState::Down);
                        p.last_exit = Some(format!("cannot start: {e}"));
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            let pid = child.id();
            if let Some(pid) = pid {
                if let Err(e) = std::fs::write(&pid_file, format!("{pid}\n")) {
                    tracing::warn!("{role}: cannot write {}: {e}", pid_file.display());
                }
            }
            tracing::info!("{role} started, pid {}", pid.unwrap_or(0));
            self.set(role, |p| {
                p.pid = pid;
                p.state = Some(ProcState::Starting);
                p.started = Some(now_unix());
            });
            let status = child.wait().await;
            // A daemon that asks to be started again (keyd re-reading ipsec.secrets) is, at once.
            let asked = matches!(&status, Ok(s) if s.code() == Some(ipc::runtime::EXIT_RESTART.into()));
            let how = status
                .map(describe_exit)
                .unwrap_or_else(|e| format!("lost track of it: {e}"));
            let _ = std::fs::remove_file(&pid_file);
            let restart_now = self
                .procs
                .borrow()
                .get(&role)
                .is_some_and(|p| p.restart_now)
                || asked;
            self.set(role, |p| {
                p.pid = None;
                p.state = Some(ProcState::Down);
                p.last_exit = Some(how.clone());
                p.restart_now = false;
            });
            if self.stopping.get() {
                tracing::info!("{role} {how}");
                break;
            }
            if start.elapsed() > STABLE_AFTER {
                backoff = BACKOFF_MIN;
            }
            let wait = if restart_now { Duration::ZERO } else { backoff };
            tracing::warn!("{role} {how}; restarting in {} ms", wait.as_millis());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.notified() => {}
            }
            if !restart_now {
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            self.set(role, |p| p.restarts += 1);
        }
    }

    /// Mark daemons ready as their READY=1 datagrams arrive (sender pid from SCM_CREDENTIALS).
    async fn readiness(self: Rc<Self>, sock: tokio::net::UnixDatagram) {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let fd = sock.as_raw_fd();
        loop {
            let mut buf = [0u8; 512];
            let got = sock
                .async_io(Interest::READABLE, || {
                    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
                    let mut space = nix::cmsg_space!(libc::ucred);
                    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::empty())
                        .map_err(std::io::Error::from)?;
                    let mut pid = None;
                    for c in msg.cmsgs().map_err(std::io::Error::from)? {
                        if let ControlMessageOwned::ScmCredentials(cred) = c {
                            pid = u32::try_from(cred.pid()).ok();
                        }
                    }
                    Ok((msg.bytes, pid))
                })
                .await;
            let Ok((n, Some(pid))) = got else { continue };
            let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).to_string();
            let role = self
                .procs
                .borrow()
                .iter()
                .find(|(_, p)| p.pid == Some(pid))
                .map(|(r, _)| *r);
            let Some(role) = role else {
                tracing::warn!(
                    "notify.sock: ignored {text:?} from pid {pid}, which is not one of our daemons"
                );
                continue;
            };
            for line in text.lines() {
                match line {
                    "READY=1" => {
                        tracing::info!("{role} (pid {pid}) is ready");
                        self.set(role, |p| p.state = Some(ProcState::Ready));
                    }
                    "STOPPING=1" => self.set(role, |p| p.state = Some(ProcState::Stopping)),
                    _ => {}
                }
            }
        }
    }

    async fn stop_all(&self) {
        self.stopping.set(true);
        self.stop.notify_waiters();
        for role in Role::DAEMONS {
            self.signal(role, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline && Role::DAEMONS.iter().any(|r| self.pid_of(*r).is_some()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for role in Role::DAEMONS {
            if self.pid_of(role).is_some() {
                tracing::warn!(
                    "{role} did not stop within {} s; killing it",
                    STOP_GRACE.as_secs()
                );
                self.signal(role, nix::sys::signal::Signal::SIGKILL);
            }
        }
        while Role::DAEMONS.iter().any(|r| self.pid_of(*r).is_some()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

struct Control {
    sup: Rc<Supervisor>,
    stop_requested: Rc<Notify>,
}

impl Control {
    async fn run_updown(&self, peer: &Peer, run: &UpdownRun) -> SupervisorResponse {
        let allowed = crate::updown_runner::configured_commands(&self.sup.dirs.ipsec_conf());
        if let Err(why) = allowed.and_then(|a| crate::updown_runner::check(run, &a)) {
            tracing::warn!(
                "supervisor.sock: refused updown {} for \"{}\" from {peer}: {why}",
                run.verb.as_str(),
                run.conn.escape_debug()
            );
            return SupervisorResponse::PermissionDenied(format!("refused: {why}"));
        }
        tracing::info!(
            "\"{}\": running updown {} `{}` for fwd",
            run.conn,
            run.verb.as_str(),
            run.command
        );
        crate::updown_runner::run(run).await
    }
}

impl Handler<SupervisorChannel> for Control {
    async fn handle(&self, peer: Peer, req: SupervisorRequest) -> Reply<SupervisorResponse> {
        // fwd may ask for updown scripts and nothing else; nobody else may ask for them.
        match (&req, peer.role) {
            (SupervisorRequest::RunUpdown(run), Role::Fwd) => {
                return Reply::new(self.run_updown(&peer, run).await)
            }
            (_, Role::Fwd) | (SupervisorRequest::RunUpdown(_), _) => {
                tracing::warn!("supervisor.sock: refused {req:?} from {peer}: only fwd runs updown scripts, and only them");
                return Reply::new(SupervisorResponse::PermissionDenied(
                    "permission denied: only fwd asks for updown scripts, and fwd may ask nothing else".into(),
                ));
            }
            _ => {}
        }
        let changes = !matches!(req, SupervisorRequest::Status);
        if !changes && !self.sup.status_for_everyone && !self.sup.authz.may_change_state(&peer.cred) {
            tracing::warn!("supervisor.sock: permission denied for {req:?} from {peer} (ctlstatus=group)");
            return Reply::new(SupervisorResponse::PermissionDenied(format!(
                "permission denied: only root and members of group `{}` may read status here (ctlstatus=group)",
                self.sup.authz.admin_group()
            )));
        }
        if changes && !self.sup.authz.may_change_state(&peer.cred) {
            tracing::warn!("supervisor.sock: permission denied for {req:?} from {peer}");
            return Reply::new(SupervisorResponse::PermissionDenied(format!(
                "permission denied: only root and members of group `{}` may do this",
                self.sup.authz.admin_group()
            )));
        }
        Reply::new(match req {
            SupervisorRequest::Status => SupervisorResponse::Status(self.sup.report()),
            SupervisorRequest::Stop => {
                tracing::info!("stop requested by {peer}");
                self.stop_requested.notify_one();
                SupervisorResponse::Stopping
            }
            SupervisorRequest::Restart(role) if Role::DAEMONS.contains(&role) => {
                tracing::info!("restart of {role} requested by {peer}");
                self.sup.set(role, |p| p.restart_now = true);
                self.sup.signal(role, nix::sys::signal::Signal::SIGTERM);
                SupervisorResponse::Restarting(role)
            }
            SupervisorRequest::Restart(role) => {
                SupervisorResponse::Error(format!("{role} is not a daemon"))
            }
            // Answered above: only fwd's requests get this far with it, and they were.
            SupervisorRequest::RunUpdown(_) => {
                SupervisorResponse::Error("updown scripts are fwd's to ask for".into())
            }
        })
    }
}

fn bind_notify(path: &Path) -> std::io::Result<tokio::net::UnixDatagram> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let sock = tokio::net::UnixDatagram::bind(path)?;
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::PassCred, &true)
        .map_err(std::io::Error::from)?;
    // Daemons that dropped to their service users must still reach it; senders are checked by pid.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(sock)
}

/// Run the supervisor in the foreground until `ipsecctl stop` or SIGTERM.
/// `ctlgroup=` and `ctlstatus=` from ipsec.conf (the defaults if it does not load), read once at
/// start as confd does.
fn ctl_setup(dirs: &Dirs) -> (String, bool) {
    match confd::daemon::load_config(&dirs.ipsec_conf()) {
        Ok((c, _)) => (c.setup.ctl_group, c.setup.status_for_everyone),
        Err(_) => (confd::conf::model::DEFAULT_CTL_GROUP.to_string(), true),
    }
}

pub async fn run(dirs: Dirs) -> Result<(), String> {
    ipc::paths::ensure_run_dir(&dirs.run).map_err(|e| format!("{}: {e}", dirs.run.display()))?;
    let (listener, sock_path) = server::bind::<SupervisorChannel>(&dirs.run)
        .map_err(|e| format!("supervisor.sock: {e}"))?;
    let notify = bind_notify(&dirs.notify_socket()).map_err(|e| format!("notify.sock: {e}"))?;
    let pid_file = dirs.pid_file("supervisor");
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .map_err(|e| format!("{}: {e}", pid_file.display()))?;
    let ctl = ctl_setup(&dirs);
    let sup = Rc::new(Supervisor {
        dirs: dirs.clone(),
        libexec: libexec_dir(),
        started: now_unix(),
        procs: RefCell::new(
            Role::DAEMONS
                .iter()
                .map(|r| (*r, Proc::default()))
                .collect(),
        ),
        stopping: Cell::new(false),
        stop: Notify::new(),
        authz: Authz::from_system(&ctl.0),
        status_for_everyone: ctl.1,
    });
    tracing::info!(
        "supervisor pid {} for config {} run {}; daemons from {}",
        std::process::id(),
        dirs.config.display(),
        dirs.run.display(),
        sup.libexec.display()
    );
    tokio::task::spawn_local(sup.clone().readiness(notify));
    let stop_requested = Rc::new(Notify::new());
    let srv = Server::<SupervisorChannel>::new(Authz::from_system(&ctl.0));
    srv.spawn(
        listener,
        Rc::new(Control {
            sup: sup.clone(),
            stop_requested: stop_requested.clone(),
        }),
    );
    let mut runners = Vec::new();
    for role in Role::DAEMONS {
        runners.push(tokio::task::spawn_local(sup.clone().keep_running(role)));
    }
    tokio::select! {
        sig = ipc::runtime::shutdown_signal() => tracing::info!("{sig}: stopping all daemons"),
        _ = stop_requested.notified() => tracing::info!("stopping all daemons"),
    }
    sup.stop_all().await;
    for r in runners {
        let _ = r.await;
    }
    let _ = std::fs::remove_file(&sock_path);
    let _ = std::fs::remove_file(dirs.notify_socket());
    let _ = std::fs::remove_file(&pid_file);
    tracing::info!("supervisor stopped");
    Ok(())
}
