//! The operations keyd performs on the secrets for ikerd, from typed requests. keyd never returns a
//! pre-shared key, a private key, or anything they follow from trivially: only SKEYID (a prf of the
//! PSK and both nonces) and signatures over hashes keyd builds itself.
//!
//! * [`Ops`]: the loaded secrets plus each RSA key converted into OpenSSL's form once, at load
//!   time (the daemon rebuilds it on `RereadSecrets`).
//! * [`Ops::v1_psk_skeyid`], [`Ops::v1_rsa_sign`]: check the caller and every field, compute, log
//!   the request with its context (never a secret, SKEYID or hash), answer.
//!
//! Sans-IO: the daemon passes the request and the caller, and sends back what these return.
//! ikerd parses packets from the Internet and is treated as possibly compromised: every refusal is
//! an answer (`Denied`/`Error`) and a warning in the log, never a panic.

pub mod ikev1;
pub mod prf;
pub mod rsa_sign;

use crate::secrets::{MatchRank, RsaEntry, Secrets};
use ikev1::printable;
use ipc::ike::IkeId;
use ipc::keyd::{KeydContext, KeydResponse, V1PskSkeyid, V1RsaSign};
use ipc::sa::SecretBytes;
use ipc::server::Peer;
use ipc::Role;
use rsa_sign::SigningKey;

/// Why a request was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not allowed, or keyd holds no secret for it (`KeydResponse::Denied`).
    Denied(String),
    /// Malformed or out of bounds, or an internal failure (`KeydResponse::Error`).
    Error(String),
}

impl Refusal {
    fn reason(&self) -> &str {
        match self {
            Refusal::Denied(r) | Refusal::Error(r) => r,
        }
    }

    fn into_response(self) -> KeydResponse {
        match self {
            Refusal::Denied(r) => KeydResponse::Denied(r),
            Refusal::Error(r) => KeydResponse::Error(r),
        }
    }
}

fn bad(reason: String) -> Refusal {
    Refusal::Error(format!("bad request: {reason}"))
}

/// The secrets keyd holds, with the RSA keys ready for OpenSSL.
#[derive(Debug, Default)]
pub struct Ops {
    secrets: Secrets,
    /// One per `secrets.rsa_entries()`, same order: the OpenSSL key, or why OpenSSL refused it.
    keys: Vec<Result<SigningKey, String>>,
}

/// `"conn" #3 peer 192.0.2.2:500`, as each log line starts.
struct Ctx<'a>(&'a KeydContext);

impl std::fmt::Display for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\"{}\" #{} peer {}",
            printable(&self.0.conn),
            self.0.serial,
            self.0.peer
        )
    }
}

fn show_id(id: &IkeId) -> String {
    printable(&id.to_string())
}

fn rank_text(rank: MatchRank) -> &'static str {
    match rank {
        MatchRank::Exact => "both IDs named",
        MatchRank::OneSideWildcard => "one ID named, the other %any",
        MatchRank::LocalOnly => "local ID only",
        MatchRank::WildcardOnly => "%any",
        MatchRank::Default => "default entry",
    }
}

impl Ops {
    /// Take over freshly loaded secrets and convert each RSA key for OpenSSL. A key OpenSSL
    /// refuses is logged (with its file:line) and answered with an error when asked for.
    pub fn new(secrets: Secrets) -> Ops {
        let keys = secrets
            .rsa_entries()
            .iter()
            .map(|entry| {
                SigningKey::from_keyfmt(&entry.key).inspect_err(|why| {
                    tracing::error!(
                        "{}: RSA key {} cannot be used for signing: {why}",
                        entry.origin,
                        entry.key.public_key().keyid()
                    );
                })
            })
            .collect();
        Ops { secrets, keys }
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// How many RSA keys OpenSSL refused (each was logged at load time).
    pub fn unusable_keys(&self) -> usize {
        self.keys.iter().filter(|k| k.is_err()).count()
    }

    /// `V1PskSkeyid`: SKEYID for pre-shared-key authentication (RFC 2409 §5).
    pub fn v1_psk_skeyid(&self, peer: &Peer, req: &V1PskSkeyid) -> KeydResponse {
        let ctx = Ctx(&req.ctx);
        let ids = format!("{}/{}", show_id(&req.local_id), show_id(&req.remote_id));
        match self.psk_skeyid(peer, req, &ids) {
            Ok((skeyid, note)) => {
                tracing::info!("keyd: {ctx}: SKEYID (PSK) for {ids}{note}");
                KeydResponse::Skeyid(SecretBytes(skeyid))
            }
            Err(refusal) => {
                tracing::warn!(
                    "keyd: {ctx}: refused SKEYID (PSK) for {ids} asked by {peer}: {}",
                    refusal.reason()
                );
                refusal.into_response()
            }
        }
    }

    fn psk_skeyid(
        &self,
        peer: &Peer,
        req: &V1PskSkeyid,
        ids: &str,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, String), Refusal> {
        only_ikerd(peer)?;
        ikev1::check_conn_name(&req.ctx.conn).map_err(bad)?;
        ikev1::check_id("the local ID", &req.local_id).map_err(bad)?;
        ikev1::check_id("the remote ID", &req.remote_id).map_err(bad)?;
        if req.local_id == IkeId::Any {
            return Err(bad("the local ID may not be %any".into()));
        }
        ikev1::check_nonces(&req.ni, &req.nr).map_err(bad)?;
        let local = ikev1::id_selector(&req.local_id, req.ctx.peer.ip);
        let remote = ikev1::id_selector(&req.remote_id, req.ctx.peer.ip);
        let Some(found) = self.secrets.lookup_psk(&local, &remote) else {
            return Err(Refusal::Denied(format!("no PSK for {ids}")));
        };
        if found.ambiguous {
            tracing::warn!(
                "keyd: \"{}\": several PSKs of the same rank ({}) match {ids}; using the first, {}",
                printable(&req.ctx.conn),
                rank_text(found.rank),
                found.entry.origin
            );
        }
        let skeyid =
            ikev1::skeyid_psk(req.prf, found.entry.secret.expose_bytes(), &req.ni, &req.nr);
        if skeyid.len() != prf::output_len(req.prf) {
            return Err(Refusal::Error("internal error computing SKEYID".into()));
        }
        let note = format!(
            " ({}, secret from {}, {})",
            prf::name(req.prf),
            found.entry.origin,
            rank_text(found.rank)
        );
        Ok((skeyid, note))
    }

    /// `V1RsaSign`: HASH_I or HASH_R, built here from the exchange's values and signed with the
    /// private key of this end (RFC 2409 §5.1).
    pub fn v1_rsa_sign(&self, peer: &Peer, req: &V1RsaSign) -> KeydResponse {
        let ctx = Ctx(&req.ctx);
        let which = if req.initiator { "HASH_I" } else { "HASH_R" };
        let local = show_id(&req.local_id);
        match self.rsa_sign(peer, req) {
            Ok((sig, key, entry)) => {
                tracing::info!(
                    "keyd: {ctx}: RSA signature of {which} ({}) for {local} with key {} ({} bits, {})",
                    prf::name(req.prf),
                    key.public_key().keyid(),
                    key.public_key().modulus_bits(),
                    entry.origin
                );
                KeydResponse::Signature {
                    sig,
                    pubkey: key.pubkey_text().to_string(),
                }
            }
            Err(refusal) => {
                tracing::warn!(
                    "keyd: {ctx}: refused RSA signature of {which} for {local} asked by {peer}: {}",
                    refusal.reason()
                );
                refusal.into_response()
            }
        }
    }

    fn rsa_sign(
        &self,
        peer: &Peer,
        req: &V1RsaSign,
    ) -> Result<(Vec<u8>, &SigningKey, &RsaEntry), Refusal> {
        only_ikerd(peer)?;
        ikev1::check_conn_name(&req.ctx.conn).map_err(bad)?;
        ikev1::check_id("the local ID", &req.local_id).map_err(bad)?;
        if req.local_id == IkeId::Any {
            return Err(bad("the local ID may not be %any".into()));
        }
        let inputs = ikev1::HashInputs {
            g_xi: &req.g_xi,
            g_xr: &req.g_xr,
            cky_i: &req.cky_i,
            cky_r: &req.cky_r,
            sai_b: &req.sai_b,
            id_b: &req.id_b,
        };
        ikev1::check_hash_inputs(req.prf, req.skeyid.len(), &inputs).map_err(bad)?;
        ikev1::check_id_body(&req.local_id, &req.id_b).map_err(Refusal::Denied)?;

        let conn = printable(&req.ctx.conn);
        let local = show_id(&req.local_id);
        let entry = match &req.local_pubkey {
            Some(text) => {
                ikev1::check_len("local_pubkey", text.len(), 1, ikev1::MAX_PUBKEY_TEXT)
                    .map_err(bad)?;
                let public =
                    keyfmt::parse_rsasigkey(text).map_err(|e| bad(format!("local_pubkey: {e}")))?;
                self.secrets.rsa_key_for(&public).ok_or_else(|| {
                    Refusal::Denied(format!(
                        "no private key for \"{conn}\" local ID {local}: none matches its public key {} ({} bits)",
                        public.keyid(),
                        public.modulus_bits()
                    ))
                })?
            }
            None => {
                let selector = ikev1::id_selector(&req.local_id, req.ctx.peer.ip);
                self.secrets
                    .rsa_key_for_local_id(&selector)
                    .ok_or_else(|| {
                        Refusal::Denied(format!("no private key for \"{conn}\" local ID {local}"))
                    })?
            }
        };
        let key = self
            .secrets
            .rsa_entries()
            .iter()
            .position(|e| std::ptr::eq(e, entry))
            .and_then(|i| self.keys.get(i))
            .ok_or_else(|| Refusal::Error("internal error: key index".into()))?
            .as_ref()
            .map_err(|why| {
                Refusal::Error(format!(
                    "the private key from {} cannot be used: {why}",
                    entry.origin
                ))
            })?;
        let skeyid = req.skeyid.expose();
        let hash = if req.initiator {
            ikev1::hash_i(req.prf, skeyid, &inputs)
        } else {
            ikev1::hash_r(req.prf, skeyid, &inputs)
        };
        let sig = key.sign_pkcs1_raw(&hash).map_err(Refusal::Error)?;
        Ok((sig, key, entry))
    }
}

/// Only ikerd negotiates IKE; confd (or anyone else) may not ask for key operations.
pub fn only_ikerd(peer: &Peer) -> Result<(), Refusal> {
    if peer.role == Role::Ikerd {
        Ok(())
    } else {
        Err(Refusal::Denied(format!(
            "only ikerd may ask for IKE key operations, not {}",
            peer.role
        )))
    }
}
