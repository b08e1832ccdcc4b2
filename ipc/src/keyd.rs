//! Channel `keyd.sock`: ikerd and confd ask keyd. keyd never returns key material on it.

use crate::channel::{Channel, NoEvent};
use crate::hello::Role;
use crate::status::DaemonStatus;
use serde::{Deserialize, Serialize};

pub struct KeydChannel;

impl Channel for KeydChannel {
    const SOCKET: &'static str = "keyd.sock";
    const SERVER: Role = Role::Keyd;
    const CLIENTS: &'static [Role] = &[Role::Ikerd, Role::Confd];
    const MAX_FRAME: usize = 64 * 1024;
    const PASSES_FDS: bool = false;
    const MODE: u32 = 0o660;
    type Request = KeydRequest;
    type Response = KeydResponse;
    type Event = NoEvent;
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeydRequest {
    Ping,
    Status,
    /// Public halves of the RSA keys keyd holds (for `showhostkey`). Never private material.
    HostKeys,
    /// confd only: read ipsec.secrets again (`ipsecctl rereadsecrets`).
    RereadSecrets,
    /// ikerd only: IKEv1 SKEYID for pre-shared-key authentication (RFC 2409 §5):
    /// `prf(PSK, Ni_b | Nr_b)`. keyd looks the PSK up by the ID pair, as pluto does.
    V1PskSkeyid(V1PskSkeyid),
    /// ikerd only: IKEv1 signature authentication. keyd computes HASH_I (or HASH_R) itself from the
    /// exchange's values (RFC 2409 §5) and signs it (raw PKCS#1 v1.5, no DigestInfo) with the private
    /// key of `local_id`; it never signs bytes it did not build.
    V1RsaSign(V1RsaSign),
    /// What keyd holds now (after a restart that re-read the secrets).
    SecretsSummary,
}

/// Bounds keyd enforces on the values of a typed request (ikerd may be compromised).
pub const MAX_NONCE: usize = 256;
pub const MAX_DH_PUBLIC: usize = 1024;
pub const MAX_PAYLOAD_BODY: usize = 16 * 1024;

/// Which exchange and SA a request is for: keyd logs it with each request.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeydContext {
    pub conn: String,
    /// ikerd's state serial (`#3`).
    pub serial: u64,
    pub peer: crate::ike::Endpoint,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1PskSkeyid {
    pub ctx: KeydContext,
    pub local_id: crate::ike::IkeId,
    pub remote_id: crate::ike::IkeId,
    pub prf: crate::ike::PrfAlg,
    /// Nonce payload bodies.
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1RsaSign {
    pub ctx: KeydContext,
    pub local_id: crate::ike::IkeId,
    /// The public key the conn names for this end (`leftrsasigkey=`), if any: keyd signs with the
    /// private key whose public half it is. Otherwise keyd picks the key listed for `local_id`.
    pub local_pubkey: Option<String>,
    pub prf: crate::ike::PrfAlg,
    /// `prf(Ni_b | Nr_b, g^xy)`, computed by ikerd (no long-term secret in it).
    pub skeyid: crate::sa::SecretBytes,
    /// true: sign HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b);
    /// false: HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b).
    pub initiator: bool,
    pub g_xi: Vec<u8>,
    pub g_xr: Vec<u8>,
    pub cky_i: [u8; 8],
    pub cky_r: [u8; 8],
    /// The initiator's SA payload body (without the generic header).
    pub sai_b: Vec<u8>,
    /// The signer's ID payload body (without the generic header).
    pub id_b: Vec<u8>,
}

/// The public half of one RSA key from ipsec.secrets.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKey {
    /// The IDs the secrets file lists for this key (may be empty).
    pub ids: Vec<String>,
    /// RFC 3110 public key, `0s…`.
    pub pubkey: String,
    pub keyid: String,
    pub bits: u32,
}

/// What a (re)load of ipsec.secrets found.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsSummary {
    pub file: String,
    pub psks: u32,
    pub rsa_keys: u32,
    pub warnings: Vec<String>,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeydResponse {
    Pong,
    Status(DaemonStatus),
    HostKeys(Vec<HostKey>),
    SecretsLoaded(SecretsSummary),
    /// The SKEYID of a `V1PskSkeyid` request.
    Skeyid(crate::sa::SecretBytes),
    /// A signature (`V1RsaSign`), and the public key it verifies with (`0s…`).
    Signature {
        sig: Vec<u8>,
        pubkey: String,
    },
    Denied(String),
    Error(String),
    /// keyd has dropped root and cannot open ipsec.secrets again: it exits with
    /// `runtime::EXIT_RESTART` and its supervisor starts it again, which reads the file.
    Restarting,
}
