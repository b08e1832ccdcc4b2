//! The verbs that manage a gateway instance: start, stop, status; and the request for `manual`.

use crate::status_view::{self, StatusView};
use ipc::client::Conn;
use ipc::ctl::{CtlChannel, CtlRequest, CtlResponse, DaemonReport};
use ipc::supervisor::{
    ProcState, SupervisorChannel, SupervisorRequest, SupervisorResponse, SupervisorStatus,
};
use ipc::{Dirs, IpcError, Role};
use std::time::{Duration, Instant};

/// How long `ipsecctl start` waits for the four daemons to report ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn supervisor_call(
    dirs: &Dirs,
    req: SupervisorRequest,
) -> Result<SupervisorResponse, IpcError> {
    let mut c =
        Conn::<SupervisorChannel>::connect(&dirs.socket::<SupervisorChannel>(), Role::Ctl).await?;
    Ok(c.call(req).await?.0)
}

pub async fn ctl_call(dirs: &Dirs, req: CtlRequest) -> Result<CtlResponse, IpcError> {
    let mut c = Conn::<CtlChannel>::connect(&dirs.socket::<CtlChannel>(), Role::Ctl).await?;
    Ok(c.call(req).await?.0)
}

pub async fn supervisor_status(dirs: &Dirs) -> Result<SupervisorStatus, String> {
    match supervisor_call(dirs, SupervisorRequest::Status).await {
        Ok(SupervisorResponse::Status(s)) => Ok(s),
        Ok(other) => Err(format!("unexpected answer from the supervisor: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

pub async fn status(dirs: &Dirs) -> StatusView {
    let sup = match supervisor_status(dirs).await {
        Ok(s) => s,
        Err(_) => {
            return status_view::not_running(
                &dirs.config.display().to_string(),
                &dirs.run.display().to_string(),
            )
        }
    };
    let reports: Result<Vec<DaemonReport>, String> = match ctl_call(dirs, CtlRequest::Status).await
    {
        Ok(CtlResponse::Status(r)) => Ok(r),
        Ok(other) => Err(format!("unexpected answer: {other:?}")),
        Err(e) => Err(e.to_string()),
    };
    status_view::merge(&sup, reports.as_deref().map_err(|e| e.clone()))
}

fn all_ready(s: &SupervisorStatus) -> bool {
    Role::DAEMONS.iter().all(|r| {
        s.procs
            .iter()
            .any(|p| p.role == *r && p.state == ProcState::Ready)
    })
}

/// Fork a detached supervisor for this instance and wait until all four daemons are ready.
pub async fn start(dirs: &Dirs) -> Result<String, String> {
    if supervisor_status(dirs).await.is_ok() {
        return Ok(format!(
            "ferroswan is already running for {}",
            dirs.run.display()
        ));
    }
    ipc::paths::ensure_run_dir(&dirs.run).map_err(|e| format!("{}: {e}", dirs.run.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dirs.log_file("supervisor"))
        .map_err(|e| format!("{}: {e}", dirs.log_file("supervisor").display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("supervise")
        .arg("--config-dir")
        .arg(&dirs.config)
        .arg("--run-dir")
        .arg(&dirs.run);
    cmd.stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid() is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the supervisor: {e}"))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!(
                "the supervisor exited ({st}); see {}",
                dirs.log_file("supervisor").display()
            ));
        }
        if let Ok(s) = supervisor_status(dirs).await {
            if all_ready(&s) {
                return Ok(format!("ferroswan started (supervisor pid {})", s.pid));
            }
        }
        if Instant::now() > deadline {
            let v = status(dirs).await;
            return Err(format!(
                "not all daemons became ready within {} s:\n{}logs are in {}",
                START_TIMEOUT.as_secs(),
                status_view::render_text(&v),
                dirs.run.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn stop(dirs: &Dirs) -> Result<String, String> {
    let sup = match supervisor_status(dirs).await {
        Ok(s) => s,
        Err(_) => {
            return Ok(format!(
                "ferroswan is not running for {}",
                dirs.run.display()
            ))
        }
    };
    match supervisor_call(dirs, SupervisorRequest::Stop).await {
        Ok(SupervisorResponse::Stopping) => {}
        Ok(SupervisorResponse::PermissionDenied(m)) => return Err(m),
        Ok(other) => return Err(format!("unexpected answer from the supervisor: {other:?}")),
        Err(e) => return Err(e.to_string()),
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(sup.pid).map_err(|e| e.to_string())?);
    while nix::sys::signal::kill(pid, None).is_ok() && dirs.pid_file("supervisor").exists() {
        if Instant::now() > deadline {
            return Err(format!(
                "the supervisor (pid {}) did not stop within {} s",
                sup.pid,
                STOP_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok("ferroswan stopped".into())
}

/// The request for `ipsecctl manual up|down NAME`, or FreeS/WAN's `ipsec manual --up|--down NAME`.
pub fn manual_request(
    action: Option<&str>,
    name: Option<&str>,
    up: Option<&str>,
    down: Option<&str>,
) -> Result<CtlRequest, String> {
    const USAGE: &str = "usage: ipsecctl manual up|down NAME (or --up NAME / --down NAME)";
    match (action, name, up, down) {
        (Some("up"), Some(n), None, None) | (None, None, Some(n), None) => {
            Ok(CtlRequest::ManualUp(n.to_string()))
        }
        (Some("down"), Some(n), None, None) | (None, None, None, Some(n)) => {
            Ok(CtlRequest::ManualDown(n.to_string()))
        }
        _ => Err(USAGE.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn manual_verbs_and_freeswan_aliases() {
        let up = CtlRequest::ManualUp("c".into());
        let down = CtlRequest::ManualDown("c".into());
        assert_eq!(
            manual_request(Some("up"), Some("c"), None, None),
            Ok(up.clone())
        );
        assert_eq!(manual_request(None, None, Some("c"), None), Ok(up));
        assert_eq!(
            manual_request(Some("down"), Some("c"), None, None),
            Ok(down.clone())
        );
        assert_eq!(manual_request(None, None, None, Some("c")), Ok(down));
        for bad in [
            manual_request(Some("up"), None, None, None),
            manual_request(None, None, None, None),
            manual_request(Some("sideways"), Some("c"), None, None),
            manual_request(None, None, Some("a"), Some("b")),
            manual_request(Some("up"), Some("c"), Some("c"), None),
        ] {
            assert!(bad.is_err_and(|e| e.contains("usage")));
        }
    }
}
