//! IKE connections as confd pushes them to ikerd (already oriented: `local` is this gateway), the
//! algorithms they name, and ikerd's status report. Like everything on the wire, ikerd validates
//! what it receives; confd has checked it against ipsec.conf's rules before sending.

use crate::policy::Net;
use crate::sa::{EncrAlg, IntegAlg, IpsecProto, SaMode};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// An address and UDP port on the wire (a `SocketAddr` without IPv6 flow and scope fields, which
/// IKE endpoints do not use and serde would not carry).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub fn new(ip: IpAddr, port: u16) -> Self {
        Endpoint { ip, port }
    }
    pub fn socket_addr(self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Self {
        Endpoint {
            ip: a.ip().to_canonical(),
            port: a.port(),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.socket_addr().fmt(f)
    }
}

/// An IKE identity (RFC 2407 §4.6.2 / RFC 7296 §3.5), as ipsec.conf writes it.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IkeId {
    /// ID_IPV4_ADDR / ID_IPV6_ADDR (the default: the end's address).
    Ip(IpAddr),
    /// ID_FQDN, `@west.example` (sent without the `@`).
    Fqdn(String),
    /// ID_USER_FQDN, `user@example`.
    UserFqdn(String),
    /// ID_DER_ASN1_DN, written out (`C=CA, O=Example, CN=west`).
    Dn(String),
    /// ID_KEY_ID, `@#0123abcd` (bytes).
    KeyId(Vec<u8>),
    /// `%any`: whoever the peer says it is (only for the remote end).
    Any,
}

impl std::fmt::Display for IkeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IkeId::Ip(a) => write!(f, "{a}"),
            IkeId::Fqdn(s) => write!(f, "@{s}"),
            IkeId::UserFqdn(s) => write!(f, "{s}"),
            IkeId::Dn(s) => write!(f, "{s}"),
            IkeId::KeyId(b) => {
                write!(f, "@#")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
            IkeId::Any => write!(f, "%any"),
        }
    }
}

/// Which IKE versions a conn initiates and answers (`keyexchange=`, Libreswan's `ikev2=`).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeVersions {
    /// 1 or 2.
    pub initiate: u8,
    pub accept_v1: bool,
    pub accept_v2: bool,
}

/// How the ends prove who they are (`authby=`).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthMethod {
    /// `authby=secret`: a pre-shared key from ipsec.secrets (keyd holds it).
    Psk,
    /// `authby=rsasig`: RSA signatures; the local private key is in keyd, the peer's public key in
    /// `remote.rsasigkeys`.
    RsaSig,
    /// `authby=secret|rsasig`: offer/accept either.
    PskOrRsaSig,
}

/// IKE SA encryption.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IkeEncr {
    TripleDesCbc,
    AesCbc {
        key_bits: u16,
    },
    /// IKEv2 only (RFC 5282).
    AesGcm {
        key_bits: u16,
        icv_bytes: u8,
    },
}

/// IKEv1's hash (also its PRF, as HMAC); IKEv2's PRF.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PrfAlg {
    HmacMd5,
    HmacSha1,
    HmacSha2_256,
    HmacSha2_384,
    HmacSha2_512,
}

/// Diffie-Hellman groups by their IANA number (RFC 2409, RFC 3526, RFC 5903, RFC 8031).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DhGroup {
    Modp768,
    Modp1024,
    Modp1536,
    Modp2048,
    Modp3072,
    Modp4096,
    Modp6144,
    Modp8192,
    Ecp256,
    Ecp384,
    Curve25519,
}

impl DhGroup {
    pub fn number(self) -> u16 {
        match self {
            DhGroup::Modp768 => 1,
            DhGroup::Modp1024 => 2,
            DhGroup::Modp1536 => 5,
            DhGroup::Modp2048 => 14,
            DhGroup::Modp3072 => 15,
            DhGroup::Modp4096 => 16,
            DhGroup::Modp6144 => 17,
            DhGroup::Modp8192 => 18,
            DhGroup::Ecp256 => 19,
            DhGroup::Ecp384 => 20,
            DhGroup::Curve25519 => 31,
        }
    }
    pub fn from_number(n: u16) -> Option<Self> {
        Some(match n {
            1 => DhGroup::Modp768,
            2 => DhGroup::Modp1024,
            5 => DhGroup::Modp1536,
            14 => DhGroup::Modp2048,
            15 => DhGroup::Modp3072,
            16 => DhGroup::Modp4096,
            17 => DhGroup::Modp6144,
            18 => DhGroup::Modp8192,
            19 => DhGroup::Ecp256,
            20 => DhGroup::Ecp384,
            31 => DhGroup::Curve25519,
            _ => return None,
        })
    }
}

/// One IKE SA proposal (`ike=aes128-sha1-modp2048`). For IKEv1, `prf` is the hash algorithm and
/// `integ` is unused; for IKEv2, `integ` is None with an AEAD cipher.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IkeProposal {
    pub encr: IkeEncr,
    pub prf: PrfAlg,
    pub integ: Option<IntegAlg>,
    pub dh: DhGroup,
}

/// One IPsec SA proposal (`esp=aes128-sha1`, `esp=aes128gcm16-modp2048`). `pfs_group` None means:
/// with `pfs=yes`, use the IKE SA's group.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EspProposal {
    pub encr: EncrAlg,
    pub integ: IntegAlg,
    pub pfs_group: Option<DhGroup>,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DpdAction {
    Clear,
    Hold,
    Restart,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpdSpec {
    pub delay_secs: u64,
    pub timeout_secs: u64,
    pub action: DpdAction,
}

/// What ikerd does with a conn when it is loaded.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IkeAuto {
    /// Known, answered; started only by `ipsecctl up`.
    Add,
    /// Policies installed as traps in fwd; negotiated on the first packet (fwd's acquire).
    Route,
    /// Negotiated at once, and kept up.
    Start,
}

/// One end of an IKE conn, oriented.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeEnd {
    /// None: `%any` (a road warrior; only the remote end).
    pub host: Option<IpAddr>,
    /// The ID this end uses; confd defaults it to `host`.
    pub id: IkeId,
    /// Protected subnets; empty = the host itself.
    pub subnets: Vec<Net>,
    /// `leftprotoport=17/1701`: protocol (0 = any) and port (0 = any).
    pub proto: u8,
    pub port: u16,
    /// RFC 3110 public keys (`0s…`): for the remote end, the keys its signature may verify with;
    /// for the local end, which private key keyd should sign with (keyd picks it by the public half).
    pub rsasigkeys: Vec<String>,
    pub nexthop: Option<IpAddr>,
    pub sourceip: Option<IpAddr>,
    pub updown: Option<String>,
    pub firewall: bool,
}

/// One connection for ikerd.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeConn {
    pub name: String,
    pub versions: IkeVersions,
    pub auth: AuthMethod,
    pub local: IkeEnd,
    pub remote: IkeEnd,
    /// Tunnel or transport mode for the IPsec SAs.
    pub mode: SaMode,
    /// `phase2=esp|ah`.
    pub proto: IpsecProto,
    /// In order of preference; never empty (confd fills in the defaults).
    pub ike: Vec<IkeProposal>,
    pub esp: Vec<EspProposal>,
    pub pfs: bool,
    pub ike_lifetime_secs: u64,
    pub sa_lifetime_secs: u64,
    pub rekey: bool,
    pub rekey_margin_secs: u64,
    pub rekey_fuzz_percent: u32,
    /// 0 = forever.
    pub keying_tries: u32,
    pub dpd: Option<DpdSpec>,
    pub auto: IkeAuto,
}

/// Settings from `config setup` that ikerd needs.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeSettings {
    /// A new ISAKMP SA with the same peer ID replaces the old one (and its IPsec SAs).
    pub uniqueids: bool,
}

/// What a `LoadConns` changed.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LoadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub replaced: Vec<String>,
    /// Conns refused by ikerd's own checks, with the reason.
    pub refused: Vec<String>,
}

/// One connection in `ipsecctl status`.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnStatus {
    pub name: String,
    /// `192.0.2.1[@west]---192.0.2.2[@east]` style summary of the ends and subnets.
    pub summary: String,
    pub auth: String,
    pub version: String,
    pub auto: IkeAuto,
    /// "unrouted", "routed (trap)", "erouted; eroute owner #4", "negotiating #3".
    pub state: String,
    /// The last failure for this conn, in the words of its log line.
    pub last_failure: Option<String>,
}

/// One ISAKMP / IKE SA.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeSaStatus {
    pub serial: u64,
    pub conn: String,
    pub version: u8,
    pub initiator: bool,
    /// `STATE_MAIN_I4`, `STATE_MAIN_R3`…
    pub state: String,
    pub established: bool,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub local_id: String,
    pub remote_id: String,
    /// `3DES_CBC/HMAC_MD5/MODP1024`.
    pub algs: String,
    pub nat_t: bool,
    pub age_secs: u64,
    /// Seconds until the next event (retransmit, rekey, expiry), and what it is.
    pub next_event_secs: Option<u64>,
    pub next_event: String,
}

/// One IPsec SA pair (child SA).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSaStatus {
    pub serial: u64,
    /// The ISAKMP SA it was negotiated under.
    pub parent: u64,
    pub conn: String,
    /// `STATE_QUICK_I2`, `STATE_QUICK_R2`…
    pub state: String,
    pub established: bool,
    pub proto: IpsecProto,
    pub spi_in: u32,
    pub spi_out: u32,
    /// `ESP_AES_128/HMAC_SHA1` (+ `/MODP2048` with PFS).
    pub algs: String,
    pub local_ts: String,
    pub remote_ts: String,
    pub encap: bool,
    pub age_secs: u64,
    pub next_event_secs: Option<u64>,
    pub next_event: String,
}

/// ikerd's answer to `IkeStatus`.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IkeStatusReport {
    pub conns: Vec<ConnStatus>,
    pub ike_sas: Vec<IkeSaStatus>,
    pub child_sas: Vec<ChildSaStatus>,
}
