//! fwd's wiring: binds UDP 500 and 4500 (it is the only daemon with the privilege to), hands the
//! port-500 socket to ikerd over fwd.sock, and serves ikerd and confd.

use ipc::fwd::{FwdChannel, FwdRequest, FwdResponse};
use ipc::peer::Authz;
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::{Dirs, Role};
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use ipc::sa::{SaId, SaSpec};
use std::cell::RefCell;
use crate::sad::{IpsecProto, Sad, SaKey};
use std::rc::Rc;

#[derive(Debug, Clone, clap::Args)]
pub struct PortArgs {
    /// UDP port for IKE (handed to ikerd).
    #[arg(long, env = "FERROSWAN_IKE_PORT", default_value_t = 500)]
    pub ike_port: u16,
    /// UDP port for NAT-T: ESP in UDP stays in fwd; IKE (non-ESP marker) is relayed to ikerd.
    #[arg(long, env = "FERROSWAN_NATT_PORT", default_value_t = 4500)]
    pub natt_port: u16,
}

pub struct Fwd {
    server: Rc<Server<FwdChannel>>,
    ike: UdpSocket,
    natt: UdpSocket,
    /// Installed SAs, with the request they came from (keys inside the SA only).
    sas: RefCell<Sad<InstalledSa>>,
}

struct InstalledSa {
    conn: String,
    by: Role,
    _sa: crate::esp::EspSa,
}

/// The SAD key of an SA named on the wire.
fn sad_key(id: &SaId) -> SaKey {
    let proto = match id.proto {
        ipc::sa::IpsecProto::Esp => IpsecProto::Esp,
        ipc::sa::IpsecProto::Ah => IpsecProto::Ah,
    };
    SaKey { spi: id.spi, proto, dst: id.dst }
}

/// Bind a dual-stack UDP socket on every address (IPv4-mapped included).
fn bind_udp(port: u16) -> std::io::Result<UdpSocket> {
    use nix::sys::socket::{setsockopt, sockopt};
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet6,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&sock, sockopt::Ipv6V6Only, &false)?;
    setsockopt(&sock, sockopt::ReuseAddr, &true)?;
    let udp = UdpSocket::from(sock);
    let addr = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let raw = nix::sys::socket::SockaddrIn6::from(match addr {
        SocketAddr::V6(a) => a,
        SocketAddr::V4(_) => return Err(std::io::Error::other("unexpected IPv4 address")),
    });
    use std::os::fd::AsRawFd;
    nix::sys::socket::bind(udp.as_raw_fd(), &raw)?;
    Ok(udp)
}

impl Fwd {
    fn status(&self) -> ipc::status::DaemonStatus {
        let mut s = ipc::runtime::own_status(Role::Fwd);
        s.clients = self.server.clients();
        for (what, sock) in [("ike", &self.ike), ("nat-t", &self.natt)] {
            if let Ok(a) = sock.local_addr() {
                s.notes.push(format!("{what} socket: udp port {}", a.port()));
            }
        }
        let sas = self.sas.borrow();
        let from = |r: Role| sas.iter().filter(|(_, s)| s.by == r).count();
        s.notes.push(format!("SAs: {} ({} from confd, {} from ikerd)", sas.len(), from(Role::Confd), from(Role::Ikerd)));
        s
    }

    fn add_sa(&self, peer: Peer, spec: SaSpec) -> FwdResponse {
        let id = spec.id();
        let key = sad_key(&id);
        let built = crate::sa_request::build_esp(&spec).and_then(|sa| {
            let conn = spec.conn.clone();
            self.sas
                .borrow_mut()
                .insert(key, InstalledSa { conn, by: peer.role, _sa: sa })
                .map_err(|e| format!("SA {key}: {e}"))
        });
        match built {
            Ok(()) => {
                tracing::info!(
                    "installed {:?} SA {:#010x} {} -> {} for \"{}\" ({:?}/{:?}) at the request of {peer}",
                    spec.direction,
                    spec.spi,
                    spec.src,
                    spec.dst,
                    spec.conn,
                    spec.encr,
                    spec.integ
                );
                FwdResponse::SaAdded(id)
            }
            Err(why) => {
                tracing::warn!("fwd.sock: refused SA {id:?} from {peer}: {why}");
                FwdResponse::Denied(why)
            }
        }
    }

    fn ike_socket(&self, peer: Peer) -> Reply<FwdResponse> {
        if peer.role != Role::Ikerd {
            tracing::warn!("fwd.sock: refused IKE socket to {peer}: only ikerd receives it");
            return Reply::new(FwdResponse::Denied(
                "only ikerd receives the IKE socket".into(),
            ));
        }
        let port = self.ike.local_addr().map(|a| a.port()).unwrap_or(0);
        match self.ike.try_clone() {
            Ok(dup) => {
                tracing::info!("handing the IKE socket (udp {port}) to {peer}");
                Reply {
                    resp: FwdResponse::IkeSocket { port },
                    fds: vec![OwnedFd::from(dup)],
                }
            }
            Err(e) => Reply::new(FwdResponse::Error(format!(
                "cannot duplicate the IKE socket: {e}"
            ))),
        }
    }
}

impl Handler<FwdChannel> for Fwd {
    async fn handle(&self, peer: Peer, req: FwdRequest) -> Reply<FwdResponse> {
        tracing::debug!("request from {peer}: {req:?}");
        match req {
            FwdRequest::Ping => Reply::new(FwdResponse::Pong),
            FwdRequest::Status => Reply::new(FwdResponse::Status(self.status())),
            FwdRequest::IkeSocket => self.ike_socket(peer),
            FwdRequest::AddSa(spec) => Reply::new(self.add_sa(peer, spec)),
            FwdRequest::DeleteSa(id) => Reply::new(match self.sas.borrow_mut().remove(&sad_key(&id)) {
                Some(sa) => {
                    tracing::info!("deleted SA {id:?} of \"{}\" at the request of {peer}", sa.conn);
                    FwdResponse::SaDeleted(id)
                }
                None => FwdResponse::Error(format!("no SA {id:?}")),
            }),
            _ => Reply::new(FwdResponse::Error("not wired yet".into())),
        }
    }
}

pub async fn run(dirs: Dirs, ports: PortArgs) -> Result<(), String> {
    ipc::runtime::started_unix();
    let ike = bind_udp(ports.ike_port)
        .map_err(|e| format!("cannot bind UDP port {}: {e}", ports.ike_port))?;
    let natt = bind_udp(ports.natt_port)
        .map_err(|e| format!("cannot bind UDP port {}: {e}", ports.natt_port))?;
    let (listener, path) = server::listen::<FwdChannel>(&dirs.run)?;
    let srv = Server::<FwdChannel>::new(Authz::from_system("ipsec"));
    srv.spawn(
        listener,
        Rc::new(Fwd { server: srv.clone(), ike, natt, sas: RefCell::new(Sad::new()) }),
    );
    tracing::info!(
        "IKE on udp {}, NAT-T on udp {}",
        ports.ike_port,
        ports.natt_port
    );
    ipc::runtime::ready_until_signal(Role::Fwd, &path).await;
    Ok(())
}
