//! The listening side of a channel. Every connection: SO_PEERCRED, a hello within a deadline, a role
//! the channel allows and the uid may claim; then strictly decoded requests. Anything else closes the
//! connection with one log line naming the peer and the reason; the daemon and its other peers go on.

use crate::channel::{Channel, ClientMsg, ServerMsg};
use crate::frame::{FrameError, HELLO_MAX};
use crate::hello::{Hello, HelloReply, Role, PROTOCOL_VERSION};
use crate::peer::{Authz, PeerCred};
use crate::status::{now_unix, ClientReport};
use crate::wire::{self, check_hello};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

/// How long a new connection has to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// The peer a request came from, as authenticated at connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub role: Role,
    pub cred: PeerCred,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.role, self.cred)
    }
}

/// A response, with fds to pass along it on channels that allow that.
pub struct Reply<R> {
    pub resp: R,
    pub fds: Vec<OwnedFd>,
}

impl<R> Reply<R> {
    pub fn new(resp: R) -> Self {
        Reply {
            resp,
            fds: Vec::new(),
        }
    }
}

pub trait Handler<C: Channel>: 'static {
    fn handle(&self, peer: Peer, req: C::Request) -> impl Future<Output = Reply<C::Response>>;
}

struct Client {
    id: u64,
    peer: Peer,
    since: u64,
    writer: Rc<Mutex<OwnedWriteHalf>>,
}

/// Shared view of a running server: who is connected, and a way to push events to them.
pub struct Server<C: Channel> {
    clients: RefCell<Vec<Client>>,
    next_id: Cell<u64>,
    authz: Authz,
    _c: std::marker::PhantomData<C>,
}

/// Bind a channel's socket in `run_dir`, refusing to steal one that another live instance answers on.
/// The group of the daemons' service users (the `sandbox` crate's `SOCKET_GROUP`).
pub const SOCKET_GROUP: &str = "ferroswan";

pub fn bind<C: Channel>(run_dir: &Path) -> std::io::Result<(UnixListener, PathBuf)> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let path = run_dir.join(C::SOCKET);
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::other(format!(
                "{} exists and is not a socket",
                path.display()
            )));
        }
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(std::io::Error::other(format!(
                "{} is in use by a running instance (another daemon with the same --run-dir?)",
                path.display()
            )));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(C::MODE))?;
    if C::MODE & 0o007 == 0 {
        // Group access for the daemons' shared group, so peers that have dropped to their service
        // users reach the socket (SO_PEERCRED still decides what each may say).
        if let Ok(Some(g)) = nix::unistd::Group::from_name(SOCKET_GROUP) {
            let _ = nix::unistd::chown(&path, None, Some(g.gid));
        }
    }
    Ok((listener, path))
}

/// A daemon's listening socket: creates the run dir if needed, binds, and names the socket in errors.
pub fn listen<C: Channel>(run_dir: &Path) -> Result<(UnixListener, PathBuf), String> {
    crate::paths::ensure_run_dir(run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    bind::<C>(run_dir).map_err(|e| format!("{}: {e}", C::SOCKET))
}

impl<C: Channel> Server<C> {
    pub fn new(authz: Authz) -> Rc<Self> {
        Rc::new(Server {
            clients: RefCell::new(Vec::new()),
            next_id: Cell::new(1),
            authz,
            _c: std::marker::PhantomData,
        })
    }

    pub fn authz(&self) -> &Authz {
        &self.authz
    }

    pub fn clients(&self) -> Vec<ClientReport> {
        self.clients
            .borrow()
            .iter()
            .map(|c| ClientReport {
                role: c.peer.role,
                cred: c.peer.cred,
                since_unix: c.since,
            })
            .collect()
    }

    /// Push an event to every connected client of `role`. Returns how many received it.
    pub async fn send_event(&self, role: Role, ev: &C::Event) -> usize {
        let writers: Vec<_> = self
            .clients
            .borrow()
            .iter()
            .filter(|c| c.peer.role == role)
            .map(|c| c.writer.clone())
            .collect();
        let mut n = 0;
        for w in writers {
            let msg: ServerMsg<C::Response, C::Event> = ServerMsg::Event(ev.clone());
            if wire::send(&mut *w.lock().await, &msg, C::MAX_FRAME, &[])
                .await
                .is_ok()
            {
                n += 1;
            }
        }
        n
    }

    /// Accept connections forever on the current LocalSet.
    pub fn spawn<H: Handler<C>>(self: &Rc<Self>, listener: UnixListener, handler: Rc<H>) {
        let server = self.clone();
        tokio::task::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let server = server.clone();
                        let handler = handler.clone();
                        tokio::task::spawn_local(
                            async move { server.serve(stream, handler).await },
                        );
                    }
                    Err(e) => {
                        tracing::error!("{}: accept failed: {e}", C::SOCKET);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }

    async fn serve<H: Handler<C>>(self: Rc<Self>, stream: UnixStream, handler: Rc<H>) {
        let cred = match PeerCred::of(&stream) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "{}: rejected connection: no peer credentials: {e}",
                    C::SOCKET
                );
                return;
            }
        };
        let (mut r, mut w) = stream.into_split();
        let hello =
            tokio::time::timeout(HELLO_TIMEOUT, wire::recv::<Hello>(&mut r, HELLO_MAX, false))
                .await;
        let role = match hello {
            Err(_) => Err("no hello within 5 s".to_string()),
            Ok(Err(e)) => Err(format!("bad hello: {e}")),
            Ok(Ok((h, _))) => check_hello::<C>(&h).and_then(|role| {
                if self.authz.may_claim(role, cred.uid) {
                    Ok(role)
                } else {
                    Err(format!(
                        "uid {} is not allowed to speak as {role}",
                        cred.uid
                    ))
                }
            }),
        };
        let role = match role {
            Ok(role) => role,
            Err(reason) => {
                tracing::warn!("{}: rejected connection from {cred}: {reason}", C::SOCKET);
                let _ = wire::send(&mut w, &HelloReply::Rejected { reason }, HELLO_MAX, &[]).await;
                return;
            }
        };
        if wire::send(
            &mut w,
            &HelloReply::Accepted {
                version: PROTOCOL_VERSION,
                role: C::SERVER,
            },
            HELLO_MAX,
            &[],
        )
        .await
        .is_err()
        {
            return;
        }
        let peer = Peer { role, cred };
        tracing::info!("{}: {peer} connected", C::SOCKET);
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let writer = Rc::new(Mutex::new(w));
        self.clients.borrow_mut().push(Client {
            id,
            peer,
            since: now_unix(),
            writer: writer.clone(),
        });

        let reason = loop {
            let msg = match wire::recv::<ClientMsg<C::Request>>(&mut r, C::MAX_FRAME, false).await {
                Ok((m, _)) => m,
                Err(FrameError::Closed) => break None,
                Err(e) => break Some(e.to_string()),
            };
            let reply = handler.handle(peer, msg.req).await;
            let fds = if C::PASSES_FDS { reply.fds } else { Vec::new() };
            let out: ServerMsg<C::Response, C::Event> = ServerMsg::Response {
                id: msg.id,
                resp: reply.resp,
            };
            if let Err(e) = wire::send(&mut *writer.lock().await, &out, C::MAX_FRAME, &fds).await {
                break Some(format!("could not answer: {e}"));
            }
        };
        self.clients.borrow_mut().retain(|c| c.id != id);
        match reason {
            None => tracing::info!("{}: {peer} disconnected", C::SOCKET),
            Some(reason) => {
                tracing::warn!("{}: closed connection from {peer}: {reason}", C::SOCKET)
            }
        }
    }
}
