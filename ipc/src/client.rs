//! Connecting side of a channel: `Conn` for one-shot clients (ipsecctl, tests), `Link` for daemons,
//! which keeps reconnecting with back-off so that start order and restarts of a peer never matter.

use crate::channel::{Channel, ClientMsg, ServerMsg};
use crate::frame::FrameError;
use crate::hello::Role;
use crate::status::{now_unix, LinkReport, LinkState};
use crate::wire::{self, IpcError};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch, Mutex};

pub type Answer<C> = (<C as Channel>::Response, Vec<OwnedFd>);

/// A single connection with sequential request/response; events that arrive meanwhile are queued.
pub struct Conn<C: Channel> {
    r: OwnedReadHalf,
    w: OwnedWriteHalf,
    next_id: u32,
    events: VecDeque<C::Event>,
}

impl<C: Channel> Conn<C> {
    pub async fn connect(path: &Path, me: Role) -> Result<Self, IpcError> {
        let stream = UnixStream::connect(path).await.map_err(|e| {
            IpcError::Unavailable(C::SERVER.name(), format!("{}: {e}", path.display()))
        })?;
        let (mut r, mut w) = stream.into_split();
        wire::client_hello::<C>(&mut r, &mut w, me).await?;
        Ok(Conn {
            r,
            w,
            next_id: 1,
            events: VecDeque::new(),
        })
    }

    pub async fn call(&mut self, req: C::Request) -> Result<Answer<C>, IpcError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        wire::send(&mut self.w, &ClientMsg { id, req }, C::MAX_FRAME, &[]).await?;
        loop {
            let (msg, fds) = wire::recv::<ServerMsg<C::Response, C::Event>>(
                &mut self.r,
                C::MAX_FRAME,
                C::PASSES_FDS,
            )
            .await?;
            match msg {
                ServerMsg::Response { id: got, resp } if got == id => return Ok((resp, fds)),
                ServerMsg::Response { id: got, .. } => {
                    return Err(IpcError::Protocol(format!(
                        "answer to request {got}, expected {id}"
                    )))
                }
                ServerMsg::Event(ev) => self.events.push_back(ev),
            }
        }
    }

    pub fn take_events(&mut self) -> Vec<C::Event> {
        self.events.drain(..).collect()
    }
}

type Pending<C> = RefCell<HashMap<u32, oneshot::Sender<Result<Answer<C>, IpcError>>>>;

struct LinkInner<C: Channel> {
    path: PathBuf,
    me: Role,
    state: RefCell<LinkState>,
    reconnects: Cell<u32>,
    writer: RefCell<Option<Rc<Mutex<OwnedWriteHalf>>>>,
    pending: Pending<C>,
    next_id: Cell<u32>,
    connected: watch::Sender<u64>,
    events: Option<mpsc::UnboundedSender<C::Event>>,
}

/// A daemon's channel to a peer daemon: reconnects with back-off (100 ms doubling to 2 s), fails
/// requests at once while the peer is down, and reports its state for `ipsecctl status`.
pub struct Link<C: Channel> {
    inner: Rc<LinkInner<C>>,
}

impl<C: Channel> Clone for Link<C> {
    fn clone(&self) -> Self {
        Link {
            inner: self.inner.clone(),
        }
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

impl<C: Channel> Link<C> {
    /// Start connecting on the current LocalSet. Events from the server go to `events` if given.
    pub fn spawn(path: PathBuf, me: Role, events: Option<mpsc::UnboundedSender<C::Event>>) -> Self {
        let (connected, _) = watch::channel(0u64);
        let inner = Rc::new(LinkInner {
            path,
            me,
            state: RefCell::new(LinkState::Connecting),
            reconnects: Cell::new(0),
            writer: RefCell::new(None),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            connected,
            events,
        });
        tokio::task::spawn_local(run(inner.clone()));
        Link { inner }
    }

    pub fn report(&self) -> LinkReport {
        LinkReport {
            peer: C::SERVER,
            state: self.inner.state.borrow().clone(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.inner.state.borrow().is_up()
    }

    /// Changes each time the link (re)connects; lets a daemon redo set-up (e.g. fetch a socket).
    pub fn on_connect(&self) -> watch::Receiver<u64> {
        self.inner.connected.subscribe()
    }

    pub async fn call(&self, req: C::Request, timeout: Duration) -> Result<Answer<C>, IpcError> {
        let writer = self.inner.writer.borrow().clone();
        let Some(writer) = writer else {
            return Err(IpcError::Unavailable(
                C::SERVER.name(),
                self.describe_down(),
            ));
        };
        let id = self.inner.next_id.get();
        self.inner.next_id.set(id.wrapping_add(1));
        let (tx, rx) = oneshot::channel();
        self.inner.pending.borrow_mut().insert(id, tx);
        let sent = wire::send(
            &mut *writer.lock().await,
            &ClientMsg { id, req },
            C::MAX_FRAME,
            &[],
        )
        .await;
        if let Err(e) = sent {
            self.inner.pending.borrow_mut().remove(&id);
            return Err(e.into());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(IpcError::Unavailable(
                C::SERVER.name(),
                "connection lost".into(),
            )),
            Err(_) => {
                self.inner.pending.borrow_mut().remove(&id);
                Err(IpcError::Timeout(C::SERVER.name()))
            }
        }
    }

    fn describe_down(&self) -> String {
        match &*self.inner.state.borrow() {
            LinkState::Down { reason, .. } => reason.clone(),
            LinkState::Connecting => "not connected yet".into(),
            LinkState::Up { .. } => "reconnecting".into(),
        }
    }
}

async fn run<C: Channel>(inner: Rc<LinkInner<C>>) {
    let mut backoff = BACKOFF_MIN;
    let mut generation = 0u64;
    let mut last_error = String::new();
    loop {
        let reason = match connect::<C>(&inner).await {
            Ok(r) => {
                backoff = BACKOFF_MIN;
                generation += 1;
                *inner.state.borrow_mut() = LinkState::Up {
                    since_unix: now_unix(),
                    reconnects: inner.reconnects.get(),
                };
                tracing::info!("link to {} up", C::SERVER);
                last_error.clear();
                inner.connected.send_replace(generation);
                let reason = read_loop::<C>(&inner, r).await;
                inner.writer.borrow_mut().take();
                for (_, tx) in inner.pending.borrow_mut().drain() {
                    let _ = tx.send(Err(IpcError::Unavailable(
                        C::SERVER.name(),
                        "connection lost".into(),
                    )));
                }
                inner.reconnects.set(inner.reconnects.get() + 1);
                tracing::warn!("link to {} down: {reason}; reconnecting", C::SERVER);
                reason
            }
            Err(e) => {
                let reason = match e {
                    IpcError::Unavailable(_, why) => why,
                    other => other.to_string(),
                };
                if reason != last_error {
                    tracing::info!("link to {}: {reason}; retrying", C::SERVER);
                    last_error = reason.clone();
                }
                reason
            }
        };
        // Down since the link was lost (or first failed); later failed retries only update the reason.
        let since_unix = match &*inner.state.borrow() {
            LinkState::Down { since_unix, .. } => *since_unix,
            LinkState::Up { .. } | LinkState::Connecting => now_unix(),
        };
        *inner.state.borrow_mut() = LinkState::Down { since_unix, reason, reconnects: inner.reconnects.get() };
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn connect<C: Channel>(inner: &LinkInner<C>) -> Result<OwnedReadHalf, IpcError> {
    let stream = UnixStream::connect(&inner.path).await.map_err(|e| {
        IpcError::Unavailable(C::SERVER.name(), format!("{}: {e}", inner.path.display()))
    })?;
    let (mut r, mut w) = stream.into_split();
    tokio::time::timeout(
        Duration::from_secs(5),
        wire::client_hello::<C>(&mut r, &mut w, inner.me),
    )
    .await
    .map_err(|_| IpcError::Timeout(C::SERVER.name()))??;
    *inner.writer.borrow_mut() = Some(Rc::new(Mutex::new(w)));
    Ok(r)
}

async fn read_loop<C: Channel>(inner: &LinkInner<C>, mut r: OwnedReadHalf) -> String {
    loop {
        let (msg, fds) = match wire::recv::<ServerMsg<C::Response, C::Event>>(
            &mut r,
            C::MAX_FRAME,
            C::PASSES_FDS,
        )
        .await
        {
            Ok(m) => m,
            Err(FrameError::Closed) => return "closed by peer".into(),
            Err(e) => return e.to_string(),
        };
        match msg {
            ServerMsg::Response { id, resp } => match inner.pending.borrow_mut().remove(&id) {
                Some(tx) => {
                    let _ = tx.send(Ok((resp, fds)));
                }
                None => tracing::debug!("late answer {id} from {}", C::SERVER),
            },
            ServerMsg::Event(ev) => {
                if let Some(tx) = &inner.events {
                    let _ = tx.send(ev);
                }
            }
        }
    }
}
