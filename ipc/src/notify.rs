//! Readiness reporting in the sd_notify protocol: a datagram "READY=1" to $NOTIFY_SOCKET. systemd and
//! ferroswan's own supervisor both listen this way, so the daemons run unchanged under either.
//! The socket is connected by [`prepare`] before a daemon confines itself (an empty root cannot
//! reach the path afterwards), and reused for every later notification.

use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

static SOCKET: OnceLock<Option<UnixDatagram>> = OnceLock::new();

fn connect() -> Option<UnixDatagram> {
    let path = std::env::var_os("NOTIFY_SOCKET")?;
    let sock = UnixDatagram::unbound().ok()?;
    let bytes = path.as_encoded_bytes();
    let res = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|addr| sock.connect_addr(&addr))
    } else {
        sock.connect(&path)
    };
    match res {
        Ok(()) => Some(sock),
        Err(e) => {
            tracing::warn!("cannot reach the supervisor's notify socket: {e}");
            None
        }
    }
}

/// Connect to $NOTIFY_SOCKET now (idempotent).
pub fn prepare() {
    SOCKET.get_or_init(connect);
}

pub fn notify(state: &str) {
    let Some(sock) = SOCKET.get_or_init(connect) else {
        return;
    };
    if let Err(e) = sock.send(state.as_bytes()) {
        tracing::warn!("could not notify supervisor ({state}): {e}");
    }
}

pub fn ready() {
    notify(&format!("READY=1\nMAINPID={}", std::process::id()));
}

pub fn stopping() {
    notify("STOPPING=1");
}
