//! confd's wiring: links to keyd, fwd and ikerd; serves the operator's control socket, authorising
//! every request by SO_PEERCRED (the socket is 0666: its mode never decides).

use ipc::client::Link;
use ipc::ctl::{CtlChannel, CtlRequest, CtlResponse, DaemonReport};
use ipc::fwd::{FwdChannel, FwdRequest, FwdResponse};
use ipc::ikerd::{IkerdChannel, IkerdRequest, IkerdResponse};
use ipc::keyd::{KeydChannel, KeydRequest, KeydResponse};
use ipc::peer::Authz;
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::status::DaemonStatus;
use ipc::{Dirs, IpcError, Role};
use std::rc::Rc;
use std::time::Duration;

/// How long confd waits for a peer daemon's answer before reporting it unreachable.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Confd {
    server: Rc<Server<CtlChannel>>,
    keyd: Link<KeydChannel>,
    fwd: Link<FwdChannel>,
    ikerd: Link<IkerdChannel>,
}

/// Whether a control request changes state (and so needs root or the admin group).
pub fn changes_state(req: &CtlRequest) -> bool {
    match req {
        CtlRequest::Ping | CtlRequest::Status => false,
    }
}

fn report(role: Role, answer: Result<Option<DaemonStatus>, IpcError>) -> DaemonReport {
    match answer {
        Ok(Some(s)) => DaemonReport::Ok(s),
        Ok(None) => DaemonReport::Unreachable {
            role,
            reason: "unexpected answer to Status".into(),
        },
        Err(e) => DaemonReport::Unreachable {
            role,
            reason: e.to_string(),
        },
    }
}

impl Confd {
    fn own_status(&self) -> DaemonStatus {
        let mut s = ipc::runtime::own_status(Role::Confd);
        s.clients = self.server.clients();
        s.links = vec![self.keyd.report(), self.fwd.report(), self.ikerd.report()];
        s
    }

    async fn status(&self) -> Vec<DaemonReport> {
        let keyd = self
            .keyd
            .call(KeydRequest::Status, PEER_TIMEOUT)
            .await
            .map(|(r, _)| match r {
                KeydResponse::Status(s) => Some(s),
                _ => None,
            });
        let ikerd = self
            .ikerd
            .call(IkerdRequest::Status, PEER_TIMEOUT)
            .await
            .map(|(r, _)| match r {
                IkerdResponse::Status(s) => Some(s),
                _ => None,
            });
        let fwd = self
            .fwd
            .call(FwdRequest::Status, PEER_TIMEOUT)
            .await
            .map(|(r, _)| match r {
                FwdResponse::Status(s) => Some(s),
                _ => None,
            });
        vec![
            report(Role::Keyd, keyd),
            report(Role::Ikerd, ikerd),
            report(Role::Fwd, fwd),
            DaemonReport::Ok(self.own_status()),
        ]
    }
}

impl Handler<CtlChannel> for Confd {
    async fn handle(&self, peer: Peer, req: CtlRequest) -> Reply<CtlResponse> {
        if changes_state(&req) && !self.server.authz().may_change_state(&peer.cred) {
            tracing::warn!("ctl.sock: permission denied for {req:?} from {peer}");
            return Reply::new(CtlResponse::PermissionDenied(format!(
                "permission denied: only root and members of group `{}` may do this",
                self.server.authz().admin_group()
            )));
        }
        Reply::new(match req {
            CtlRequest::Ping => CtlResponse::Pong,
            CtlRequest::Status => CtlResponse::Status(self.status().await),
        })
    }
}

pub async fn run(dirs: Dirs) -> Result<(), String> {
    ipc::runtime::started_unix();
    ipc::paths::ensure_run_dir(&dirs.run).map_err(|e| format!("{}: {e}", dirs.run.display()))?;
    let (listener, path) =
        server::bind::<CtlChannel>(&dirs.run).map_err(|e| format!("ctl.sock: {e}"))?;
    let srv = Server::<CtlChannel>::new(Authz::from_system("ipsec"));
    let confd = Rc::new(Confd {
        server: srv.clone(),
        keyd: Link::spawn(dirs.socket::<KeydChannel>(), Role::Confd, None),
        fwd: Link::spawn(dirs.socket::<FwdChannel>(), Role::Confd, None),
        ikerd: Link::spawn(dirs.socket::<IkerdChannel>(), Role::Confd, None),
    });
    srv.spawn(listener, confd);
    tracing::info!("confd listening on {}", path.display());
    ipc::notify::ready();
    let sig = ipc::runtime::shutdown_signal().await;
    tracing::info!("{sig}: confd shutting down");
    ipc::notify::stopping();
    let _ = std::fs::remove_file(&path);
    Ok(())
}
