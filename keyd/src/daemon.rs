//! keyd's wiring: the keyd.sock server. keyd answers ikerd and confd; it is the only reader of
//! ipsec.secrets and never returns key material.

use ipc::keyd::{KeydChannel, KeydRequest, KeydResponse};
use ipc::peer::Authz;
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::{Dirs, Role};
use std::rc::Rc;

pub struct Keyd {
    server: Rc<Server<KeydChannel>>,
}

impl Handler<KeydChannel> for Keyd {
    async fn handle(&self, peer: Peer, req: KeydRequest) -> Reply<KeydResponse> {
        tracing::debug!("request from {peer}: {req:?}");
        Reply::new(match req {
            KeydRequest::Ping => KeydResponse::Pong,
            KeydRequest::Status => {
                let mut s = ipc::runtime::own_status(Role::Keyd);
                s.clients = self.server.clients();
                KeydResponse::Status(s)
            }
        })
    }
}

pub async fn run(dirs: Dirs) -> Result<(), String> {
    ipc::runtime::started_unix();
    ipc::paths::ensure_run_dir(&dirs.run).map_err(|e| format!("{}: {e}", dirs.run.display()))?;
    let (listener, path) =
        server::bind::<KeydChannel>(&dirs.run).map_err(|e| format!("keyd.sock: {e}"))?;
    let srv = Server::<KeydChannel>::new(Authz::from_system("ipsec"));
    srv.spawn(
        listener,
        Rc::new(Keyd {
            server: srv.clone(),
        }),
    );
    tracing::info!("keyd listening on {}", path.display());
    ipc::notify::ready();
    let sig = ipc::runtime::shutdown_signal().await;
    tracing::info!("{sig}: keyd shutting down");
    ipc::notify::stopping();
    let _ = std::fs::remove_file(&path);
    Ok(())
}
