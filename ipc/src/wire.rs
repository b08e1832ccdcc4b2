//! Moving typed frames over a Unix stream: hello exchange, messages with optional fds. Shared by the
//! server and both clients so each byte is framed, capped and decoded in exactly one way.

use crate::channel::Channel;
use crate::frame::{self, FrameError, HEADER_LEN, HELLO_MAX};
use crate::hello::{Hello, HelloReply, Role, MAGIC, PROTOCOL_VERSION};
use crate::peer::{recv_with_fds, send_with_fds};
use serde::{de::DeserializeOwned, Serialize};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("rejected by {server}: {reason}")]
    Rejected {
        server: &'static str,
        reason: String,
    },
    #[error("{0} is not reachable: {1}")]
    Unavailable(&'static str, String),
    #[error("no answer from {0} in time")]
    Timeout(&'static str),
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl From<std::io::Error> for IpcError {
    fn from(e: std::io::Error) -> Self {
        IpcError::Frame(FrameError::from(e))
    }
}

/// Check a decoded hello against what a channel allows; `Err` carries the reason to log.
pub fn check_hello<C: Channel>(h: &Hello) -> Result<Role, String> {
    if h.magic != MAGIC {
        return Err("bad magic in hello (not a ferroswan peer)".into());
    }
    if h.version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} (this daemon speaks {})",
            h.version, PROTOCOL_VERSION
        ));
    }
    if !C::CLIENTS.contains(&h.role) {
        return Err(format!("role {} may not connect to {}", h.role, C::SOCKET));
    }
    Ok(h.role)
}

/// Write one message as a frame, with fds attached to its first byte when given.
pub async fn send<T: Serialize>(
    w: &mut OwnedWriteHalf,
    msg: &T,
    max: usize,
    fds: &[OwnedFd],
) -> Result<(), FrameError> {
    let bytes = frame::encode(msg, max)?;
    if fds.is_empty() {
        return frame::write_frame(w, &bytes).await;
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let stream: &tokio::net::UnixStream = w.as_ref();
    let sock = stream.as_raw_fd();
    let sent = loop {
        stream.writable().await?;
        match stream.try_io(Interest::WRITABLE, || {
            send_with_fds(sock, &bytes, &raw).map_err(std::io::Error::from)
        }) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if let Some(rest) = bytes.get(sent..) {
        w.write_all(rest).await?;
    }
    w.flush().await?;
    Ok(())
}

/// Read one message. With `take_fds`, fds passed with the frame are returned; otherwise the kernel
/// discards any that a peer tried to send.
pub async fn recv<T: DeserializeOwned>(
    r: &mut OwnedReadHalf,
    max: usize,
    take_fds: bool,
) -> Result<(T, Vec<OwnedFd>), FrameError> {
    if !take_fds {
        let payload = frame::read_payload(r, max).await?;
        return Ok((frame::decode(&payload)?, Vec::new()));
    }
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0usize;
    let mut fds = Vec::new();
    let stream: &tokio::net::UnixStream = r.as_ref();
    let sock = stream.as_raw_fd();
    while got < HEADER_LEN {
        stream.readable().await?;
        let dst = header.get_mut(got..).ok_or(FrameError::Closed)?;
        match stream.try_io(Interest::READABLE, || {
            recv_with_fds(sock, dst).map_err(std::io::Error::from)
        }) {
            Ok((0, _)) => {
                return Err(if got == 0 {
                    FrameError::Closed
                } else {
                    FrameError::Truncated {
                        got,
                        want: HEADER_LEN,
                    }
                })
            }
            Ok((n, more)) => {
                got += n;
                fds.extend(more);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let len = frame::parse_header(header, max)?;
    let payload = frame::read_body(r, len).await?;
    Ok((frame::decode(&payload)?, fds))
}

/// Client side of the hello: say who we are, learn whether we were accepted.
pub async fn client_hello<C: Channel>(
    r: &mut OwnedReadHalf,
    w: &mut OwnedWriteHalf,
    me: Role,
) -> Result<(), IpcError> {
    send(w, &Hello::new(me), HELLO_MAX, &[]).await?;
    let (reply, _) = recv::<HelloReply>(r, HELLO_MAX, false).await?;
    match reply {
        HelloReply::Accepted { version, role }
            if version == PROTOCOL_VERSION && role == C::SERVER =>
        {
            Ok(())
        }
        HelloReply::Accepted { version, role } => Err(IpcError::Protocol(format!(
            "{} answered as {role} protocol {version}",
            C::SOCKET
        ))),
        HelloReply::Rejected { reason } => Err(IpcError::Rejected {
            server: C::SERVER.name(),
            reason,
        }),
    }
}
