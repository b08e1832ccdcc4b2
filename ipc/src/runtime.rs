//! The event loop every daemon runs: a single-threaded tokio runtime with a LocalSet (daemons' control
//! state is `Rc`/`RefCell`; datapath threads, where there are any, live outside it), and shutdown on
//! SIGTERM or SIGINT.

use std::future::Future;

pub fn run_local<F: Future>(f: F) -> std::io::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    Ok(local.block_on(&rt, f))
}

/// Resolves with the signal's name when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the default action (exit) still applies; never resolve.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// The exit status with which a daemon asks its supervisor (or systemd's `RestartForceExitStatus=`)
/// to start it again at once: keyd, to re-read ipsec.secrets as root after it has dropped root.
pub const EXIT_RESTART: u8 = 75;

/// Status skeleton for the calling process.
pub fn own_status(role: crate::Role) -> crate::status::DaemonStatus {
    crate::status::DaemonStatus {
        role,
        pid: std::process::id(),
        uid: nix::unistd::getuid().as_raw(),
        started_unix: started_unix(),
        ready: true,
        links: Vec::new(),
        clients: Vec::new(),
        notes: Vec::new(),
    }
}

/// When this process started (first call fixes it; daemons call it at start-up).
pub fn started_unix() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *START.get_or_init(crate::status::now_unix)
}

/// The whole of a daemon's `main` after argument parsing: logging, the event loop, an exit code.
pub fn daemon_main<F: Future<Output = Result<(), String>>>(
    program: &'static str,
    run: F,
) -> std::process::ExitCode {
    crate::log::init(program);
    match run_local(run) {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(e)) => {
            tracing::error!("{program}: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!("{program}: cannot start the event loop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Report ready, serve until SIGTERM/SIGINT, then report stopping and remove the daemon's socket.
pub async fn ready_until_signal(role: crate::Role, socket: &std::path::Path) {
    tracing::info!("{role} listening on {}", socket.display());
    crate::notify::ready();
    let sig = shutdown_signal().await;
    tracing::info!("{sig}: {role} shutting down");
    crate::notify::stopping();
    let _ = std::fs::remove_file(socket);
}
