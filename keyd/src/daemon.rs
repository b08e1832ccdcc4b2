//! keyd's wiring: loads ipsec.secrets (refusing a file that is not root-owned 0600), serves keyd.sock
//! for ikerd and confd. It is the only process that opens ipsec.secrets, and it never returns key
//! material: only public halves, and the results of operations (`crate::ops`: IKEv1 SKEYID from a
//! PSK, RSA signatures of hashes keyd builds itself).

use crate::ops::ikev1::printable;
use crate::ops::Ops;
use crate::secrets::{load_secrets_file, Secrets};
use ipc::keyd::{HostKey, KeydChannel, KeydRequest, KeydResponse, SecretsSummary};
use ipc::peer::Authz;
use ipc::server::{self, Handler, Peer, Reply, Server};
use ipc::{Dirs, Role};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

/// What keyd holds: the secrets (with the RSA keys already in OpenSSL's form), or why it holds none.
enum Loaded {
    Ok(Ops),
    Refused(String),
}

pub struct Keyd {
    server: Rc<Server<KeydChannel>>,
    file: PathBuf,
    secrets: RefCell<Loaded>,
    /// How keyd is confined; once it has dropped root it cannot open the root-only secrets file
    /// again, so a re-read is a restart (the supervisor or systemd starts it again at once).
    confined: sandbox::Confined,
    restart: Rc<tokio::sync::Notify>,
}

/// Whether keyd's main loop ended because a re-read asked for a restart.
pub static RESTART_REQUESTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Load the secrets file. A missing file means no secrets (a gateway may use none yet); a file that
/// is unsafe or malformed is refused as a whole, with the reason logged and shown in `status`.
fn load(file: &std::path::Path) -> Loaded {
    if !file.exists() {
        tracing::warn!("{}: no such file; keyd holds no secrets", file.display());
        return Loaded::Ok(Ops::new(Secrets::default()));
    }
    match load_secrets_file(file) {
        Ok(s) => {
            for w in s.warnings() {
                tracing::warn!("{w}");
            }
            tracing::info!(
                "loaded {}: {} PSK, {} RSA keys",
                file.display(),
                s.psk_count(),
                s.rsa_count()
            );
            // Each RSA key is converted for OpenSSL here, once per load.
            Loaded::Ok(Ops::new(s))
        }
        Err(e) => {
            tracing::error!("refusing secrets: {e}");
            Loaded::Refused(e.to_string())
        }
    }
}

impl Keyd {
    /// Can keyd open the secrets file itself? Only while it is still root with its filesystem.
    fn can_reread(&self) -> bool {
        self.confined.privileges.uids[1] == 0 && !self.confined.chrooted
    }

    fn summary(&self) -> Result<SecretsSummary, String> {
        match &*self.secrets.borrow() {
            Loaded::Ok(ops) => {
                let s = ops.secrets();
                let mut warnings: Vec<String> =
                    s.warnings().iter().map(|w| w.to_string()).collect();
                if ops.unusable_keys() > 0 {
                    warnings.push(format!(
                        "{} RSA key(s) refused by OpenSSL and unusable for signing (see keyd's log)",
                        ops.unusable_keys()
                    ));
                }
                Ok(SecretsSummary {
                    file: self.file.display().to_string(),
                    psks: u32::try_from(s.psk_count()).unwrap_or(u32::MAX),
                    rsa_keys: u32::try_from(s.rsa_count()).unwrap_or(u32::MAX),
                    warnings,
                })
            }
            Loaded::Refused(why) => Err(why.clone()),
        }
    }

    fn status(&self) -> ipc::status::DaemonStatus {
        let mut st = ipc::runtime::own_status(Role::Keyd);
        st.clients = self.server.clients();
        st.notes.extend(self.confined.notes());
        st.notes.push(match self.summary() {
            Ok(s) => format!(
                "secrets: {} PSK, {} RSA keys from {}",
                s.psks, s.rsa_keys, s.file
            ),
            Err(why) => format!("secrets: REFUSED: {why}"),
        });
        st
    }

    fn host_keys(&self) -> KeydResponse {
        match &*self.secrets.borrow() {
            Loaded::Ok(ops) => KeydResponse::HostKeys(
                ops.secrets()
                    .rsa_entries()
                    .iter()
                    .map(|e| {
                        let pk = e.key.public_key();
                        HostKey {
                            ids: e.ids.iter().map(|i| i.to_string()).collect(),
                            pubkey: pk.to_rfc3110_base64(),
                            keyid: pk.keyid(),
                            bits: u32::try_from(pk.modulus_bits()).unwrap_or(0),
                        }
                    })
                    .collect(),
            ),
            Loaded::Refused(why) => KeydResponse::Error(format!("no secrets loaded: {why}")),
        }
    }
}

impl Handler<KeydChannel> for Keyd {
    async fn handle(&self, peer: Peer, req: KeydRequest) -> Reply<KeydResponse> {
        tracing::debug!("request from {peer}: {req:?}");
        Reply::new(match req {
            KeydRequest::Ping => KeydResponse::Pong,
            KeydRequest::Status => KeydResponse::Status(self.status()),
            KeydRequest::HostKeys => self.host_keys(),
            KeydRequest::RereadSecrets if peer.role != Role::Confd => {
                tracing::warn!("keyd.sock: refused RereadSecrets from {peer}: only confd may ask");
                KeydResponse::Denied("only confd may ask keyd to re-read the secrets".into())
            }
            KeydRequest::RereadSecrets if self.can_reread() => {
                tracing::info!("re-reading secrets at the request of {peer}");
                *self.secrets.borrow_mut() = load(&self.file);
                match self.summary() {
                    Ok(s) => KeydResponse::SecretsLoaded(s),
                    Err(why) => KeydResponse::Error(why),
                }
            }
            KeydRequest::RereadSecrets => {
                tracing::info!(
                    "re-reading secrets at the request of {peer}: keyd has dropped root, so it \
                     exits to be started again (status {})",
                    ipc::runtime::EXIT_RESTART
                );
                RESTART_REQUESTED.store(true, std::sync::atomic::Ordering::SeqCst);
                self.restart.notify_one();
                KeydResponse::Restarting
            }
            KeydRequest::SecretsSummary => match self.summary() {
                Ok(s) => KeydResponse::SecretsLoaded(s),
                Err(why) => KeydResponse::Error(why),
            },
            KeydRequest::V1PskSkeyid(r) => match &*self.secrets.borrow() {
                Loaded::Ok(ops) => ops.v1_psk_skeyid(&peer, &r),
                Loaded::Refused(why) => {
                    let what = format!(
                        "SKEYID (PSK) for {}/{}",
                        printable(&r.local_id.to_string()),
                        printable(&r.remote_id.to_string())
                    );
                    refused_secrets(&what, &r.ctx, &peer, why)
                }
            },
            KeydRequest::V1RsaSign(r) => match &*self.secrets.borrow() {
                Loaded::Ok(ops) => ops.v1_rsa_sign(&peer, &r),
                Loaded::Refused(why) => {
                    let what = format!(
                        "RSA signature of {} for {}",
                        if r.initiator { "HASH_I" } else { "HASH_R" },
                        printable(&r.local_id.to_string())
                    );
                    refused_secrets(&what, &r.ctx, &peer, why)
                }
            },
        })
    }
}

/// An operation asked while the secrets file is refused: keyd holds no secret at all.
fn refused_secrets(
    what: &str,
    ctx: &ipc::keyd::KeydContext,
    peer: &Peer,
    why: &str,
) -> KeydResponse {
    let (why, resp) = match crate::ops::only_ikerd(peer) {
        Err(crate::ops::Refusal::Denied(r)) => (r.clone(), KeydResponse::Denied(r)),
        _ => (
            format!("no secrets loaded: {why}"),
            KeydResponse::Error(format!("no secrets loaded: {why}")),
        ),
    };
    tracing::warn!(
        "keyd: \"{}\" #{} peer {}: refused {what} asked by {peer}: {why}",
        printable(&ctx.conn),
        ctx.serial,
        ctx.peer
    );
    resp
}

pub async fn run(dirs: Dirs) -> Result<(), String> {
    ipc::runtime::started_unix();
    // OpenSSL reads its configuration now, while there is a filesystem to read it from.
    openssl::init();
    let file = dirs.ipsec_secrets();
    let secrets = load(&file);
    let (listener, path) = server::listen::<KeydChannel>(&dirs.run)?;
    let authz = Authz::from_system("ipsec");
    ipc::notify::prepare();
    // From here on: its own user, no capability, no network socket, an empty root.
    let confined = sandbox::confine(&sandbox::profile::KEYD, &sandbox::Options::new(&dirs.run))
        .map_err(|e| e.to_string())?;
    let srv = Server::<KeydChannel>::new(authz);
    let restart = Rc::new(tokio::sync::Notify::new());
    srv.spawn(
        listener,
        Rc::new(Keyd {
            server: srv.clone(),
            file,
            secrets: RefCell::new(secrets),
            confined,
            restart: restart.clone(),
        }),
    );
    tokio::select! {
        () = ipc::runtime::ready_until_signal(Role::Keyd, &path) => {}
        () = restart.notified() => {
            // Let the reply reach confd before the process goes.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            ipc::notify::stopping();
        }
    }
    Ok(())
}
