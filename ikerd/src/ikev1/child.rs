//! One IPsec SA pair negotiated by Quick Mode.

use super::ids::Ts;
use super::ike_sa::{Retrans, Sent};
use super::proposals::P2Choice;
use super::state::QmState;
use crate::crypto::dh::DhPrivate;
use ipc::ike::{DhGroup, Endpoint};
use ipc::sa::SecretBytes;
use std::net::IpAddr;
use std::time::Instant;

/// Encryption and integrity keys of one direction.
#[derive(Clone, Default)]
pub struct DirKeys {
    pub enc: SecretBytes,
    pub auth: SecretBytes,
}

pub struct Child {
    pub serial: u64,
    /// The ISAKMP SA it is negotiated under.
    pub parent: u64,
    pub conn: String,
    pub initiator: bool,
    pub state: QmState,
    pub msgid: u32,
    /// The exchange's IV chain.
    pub iv: Vec<u8>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub dh: Option<DhPrivate>,
    pub pfs: Option<DhGroup>,
    pub our_spi: u32,
    pub peer_spi: u32,
    pub choice: Option<P2Choice>,
    pub local_ts: Ts,
    pub remote_ts: Ts,
    /// Outer addresses.
    pub local_ip: IpAddr,
    pub remote_ip: IpAddr,
    /// UDP encapsulation: (our port, the peer's port).
    pub encap_ports: Option<(u16, u16)>,
    /// The peer's IKE endpoint when it was negotiated (NATD= in the log).
    pub peer: Endpoint,
    pub keys_in: DirKeys,
    pub keys_out: DirKeys,
    pub installed_in: bool,
    pub installed_out: bool,
    pub created: Instant,
    pub established_at: Option<Instant>,
    pub last_in: Option<Vec<u8>>,
    pub last_out: Option<Sent>,
    pub retrans: Option<Retrans>,
    pub rekey_at: Option<Instant>,
    pub expire_at: Option<Instant>,
    /// Replaced by a newer SA: deleted (and the peer told) at this time.
    pub retire_at: Option<Instant>,
    /// The child this one replaces (a rekey).
    pub replaces: Option<u64>,
    /// A replacement was started.
    pub rekeying: bool,
}

impl Child {
    pub fn established(&self) -> bool {
        self.state.established()
    }
}
