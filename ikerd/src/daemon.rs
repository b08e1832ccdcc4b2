//! ikerd's wiring: serves confd on ikerd.sock; links to keyd and fwd; receives its UDP port-500
//! socket from fwd (it holds no capability to bind one itself) each time the fwd link comes up.

use ipc::client::Link;
use ipc::fwd::{FwdChannel, FwdEvent, FwdRequest, FwdResponse};
use ipc::ikerd::{IkerdChannel, IkerdRequest, IkerdResponse};
use ipc::keyd::KeydChannel;
use ipc::peer::Authz;
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::{Dirs, Role};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub struct Ikerd {
    server: Rc<Server<IkerdChannel>>,
    keyd: Link<KeydChannel>,
    fwd: Link<FwdChannel>,
    /// The IKE socket fwd handed over, and the port it is bound to.
    ike_socket: RefCell<Option<(std::net::UdpSocket, u16)>>,
    /// fwd's events so far: (acquires, soft expiries, hard expiries).
    fwd_events: std::cell::Cell<(u64, u64, u64)>,
}

impl Ikerd {
    fn status(&self) -> ipc::status::DaemonStatus {
        let mut s = ipc::runtime::own_status(Role::Ikerd);
        s.clients = self.server.clients();
        s.links = vec![self.keyd.report(), self.fwd.report()];
        s.notes.push(match &*self.ike_socket.borrow() {
            Some((_, port)) => format!("ike socket: udp port {port}, received from fwd"),
            None => "ike socket: not yet received from fwd".into(),
        });
        let (acq, soft, hard) = self.fwd_events.get();
        s.notes.push(format!("from fwd: {acq} acquires, {soft} soft and {hard} hard expiries"));
        s
    }

    /// What fwd reports without being asked. IKE is not negotiated yet (the IKEv1 issue): log each
    /// event so the operator sees the trap fire, and count it.
    async fn fwd_events(self: Rc<Self>, mut rx: tokio::sync::mpsc::UnboundedReceiver<FwdEvent>) {
        while let Some(ev) = rx.recv().await {
            let (mut acq, mut soft, mut hard) = self.fwd_events.get();
            match &ev {
                FwdEvent::Acquire { conn, flow } => {
                    acq += 1;
                    tracing::info!("\"{conn}\": acquire from fwd for {flow}: no IKE negotiation yet");
                }
                FwdEvent::Expire { conn, id, hard: true } => {
                    hard += 1;
                    tracing::info!("\"{conn}\": SA {:#010x} reached its hard lifetime; fwd deleted it", id.spi);
                }
                FwdEvent::Expire { conn, id, hard: false } => {
                    soft += 1;
                    tracing::info!("\"{conn}\": SA {:#010x} reached its soft lifetime (rekey due)", id.spi);
                }
                FwdEvent::IkePacket { remote, .. } => {
                    tracing::debug!("IKE message from {remote} relayed by fwd (NAT-T)");
                }
            }
            self.fwd_events.set((acq, soft, hard));
        }
    }

    /// Ask fwd for the IKE socket whenever the link to fwd (re)connects.
    async fn fetch_ike_socket(self: Rc<Self>) {
        let mut connected = self.fwd.on_connect();
        // The link may have come up before we subscribed: look once at the current state too.
        connected.mark_changed();
        loop {
            if connected.changed().await.is_err() {
                return;
            }
            if !self.fwd.is_up() {
                continue;
            }
            match self
                .fwd
                .call(FwdRequest::IkeSocket, Duration::from_secs(5))
                .await
            {
                Ok((FwdResponse::IkeSocket { port, .. }, mut fds)) if fds.len() == 1 => {
                    if let Some(fd) = fds.pop() {
                        tracing::info!("received the IKE socket (udp {port}) from fwd");
                        *self.ike_socket.borrow_mut() = Some((std::net::UdpSocket::from(fd), port));
                    }
                }
                Ok((other, fds)) => {
                    tracing::error!(
                        "fwd answered the IKE socket request with {other:?} and {} fds",
                        fds.len()
                    )
                }
                Err(e) => tracing::warn!("could not get the IKE socket from fwd: {e}"),
            }
        }
    }
}

impl Handler<IkerdChannel> for Ikerd {
    async fn handle(&self, peer: Peer, req: IkerdRequest) -> Reply<IkerdResponse> {
        tracing::debug!("request from {peer}: {req:?}");
        Reply::new(match req {
            IkerdRequest::Ping => IkerdResponse::Pong,
            IkerdRequest::Status => IkerdResponse::Status(self.status()),
            other => IkerdResponse::Error(format!("not implemented yet: {other:?}")),
        })
    }
}

pub async fn run(dirs: Dirs) -> Result<(), String> {
    ipc::runtime::started_unix();
    let (listener, path) = server::listen::<IkerdChannel>(&dirs.run)?;
    let srv = Server::<IkerdChannel>::new(Authz::from_system("ipsec"));
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let ikerd = Rc::new(Ikerd {
        server: srv.clone(),
        keyd: Link::spawn(dirs.socket::<KeydChannel>(), Role::Ikerd, None),
        fwd: Link::spawn(dirs.socket::<FwdChannel>(), Role::Ikerd, Some(events_tx)),
        ike_socket: RefCell::new(None),
        fwd_events: std::cell::Cell::new((0, 0, 0)),
    });
    tokio::task::spawn_local(ikerd.clone().fwd_events(events_rx));
    tokio::task::spawn_local(ikerd.clone().fetch_ike_socket());
    srv.spawn(listener, ikerd);
    ipc::runtime::ready_until_signal(Role::Ikerd, &path).await;
    Ok(())
}
