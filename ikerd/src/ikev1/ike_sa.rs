//! One ISAKMP SA (phase 1) and its cryptographic helpers.

use super::dpd::DpdState;
use super::natt::{NattVersion, PeerVids};
use super::proposals::P1Choice;
use super::state::MmState;
use crate::crypto::dh::DhPrivate;
use crate::crypto::prf::Prf;
use crate::crypto::v1_cipher::V1Cipher;
use crate::crypto::v1_keymat::{phase2_iv, Phase1Keys};
use ipc::ike::{Endpoint, IkeId, PrfAlg};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The first retransmission interval; each next one doubles.
pub const RETRANSMIT_FIRST: Duration = Duration::from_millis(500);
/// A try gives up once this much time has passed since its message was first sent.
pub const RETRANSMIT_BUDGET: Duration = Duration::from_millis(31_500);
/// Message IDs remembered per ISAKMP SA (replayed exchanges are dropped).
pub const MAX_MSGIDS: usize = 512;

/// Retransmission of the last message of an exchange.
#[derive(Debug, Clone, Copy)]
pub struct Retrans {
    pub next_at: Instant,
    pub interval: Duration,
    pub started: Instant,
    pub count: u32,
}

impl Retrans {
    pub fn new(now: Instant) -> Self {
        Retrans {
            next_at: now + RETRANSMIT_FIRST,
            interval: RETRANSMIT_FIRST,
            started: now,
            count: 0,
        }
    }

    /// At `next_at`: Some(()) if the message goes out again (the schedule moves on), None when
    /// the try is over.
    pub fn fire(&mut self, now: Instant) -> Option<()> {
        let next = self.interval.saturating_mul(2);
        if now.saturating_duration_since(self.started) + Duration::from_millis(1)
            >= RETRANSMIT_BUDGET
        {
            return None;
        }
        self.count += 1;
        self.interval = next;
        let until_end =
            RETRANSMIT_BUDGET.saturating_sub(now.saturating_duration_since(self.started));
        self.next_at = now + next.min(until_end);
        Some(())
    }
}

/// A message we sent and may have to send again.
#[derive(Debug, Clone)]
pub struct Sent {
    pub local: Endpoint,
    pub remote: Endpoint,
    pub bytes: Vec<u8>,
}

/// What an ISAKMP SA waits for from keyd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeydWhat {
    /// SKEYID for pre-shared-key authentication.
    Skeyid,
    /// The signature over our HASH_I / HASH_R.
    Sign,
}

pub struct IkeSa {
    pub serial: u64,
    pub conn: String,
    pub initiator: bool,
    pub state: MmState,
    pub icookie: [u8; 8],
    pub rcookie: [u8; 8],
    pub local: Endpoint,
    pub remote: Endpoint,
    pub created: Instant,
    pub established_at: Option<Instant>,
    /// The initiator's SA payload body (SAi_b).
    pub sai_b: Vec<u8>,
    pub choice: Option<P1Choice>,
    pub vids: PeerVids,
    /// The NAT-T dialect both sides speak.
    pub natt: Option<NattVersion>,
    /// NAT detection: we are behind a NAT / the peer is.
    pub nat_local: bool,
    pub nat_remote: bool,
    pub dh: Option<DhPrivate>,
    pub g_xi: Vec<u8>,
    pub g_xr: Vec<u8>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub gxy: Zeroizing<Vec<u8>>,
    pub skeyid: Option<Zeroizing<Vec<u8>>>,
    pub keys: Option<Phase1Keys>,
    /// The phase-1 IV chain.
    pub iv: Vec<u8>,
    /// The last CBC block of phase 1 (for the IVs of phase 2 and informational exchanges).
    pub p1_last_block: Vec<u8>,
    pub local_id: IkeId,
    /// Our ID payload body (IDii_b / IDir_b).
    pub id_b: Vec<u8>,
    pub peer_id: Option<IkeId>,
    /// The peer's ID payload body, once verified or while it is being verified.
    pub peer_id_b: Vec<u8>,
    pub last_in: Option<Vec<u8>>,
    pub last_out: Option<Sent>,
    pub retrans: Option<Retrans>,
    /// The keyd ticket this SA waits for, and for what.
    pub waiting: Option<(u64, KeydWhat)>,
    pub msgids: VecDeque<u32>,
    pub expire_at: Option<Instant>,
    pub rekey_at: Option<Instant>,
    /// A replacement was started (so the rekey timer does not fire again).
    pub rekeying: bool,
    /// The ISAKMP SA this one replaces.
    pub replaces: Option<u64>,
    pub dpd: DpdState,
    /// We told the peer (in the clear) that authentication failed: once is enough.
    pub notified_failure: bool,
    /// Going away: no new exchanges start under it.
    pub deleting: bool,
}

impl IkeSa {
    pub fn prf(&self) -> Prf {
        Prf(self.choice.map_or(PrfAlg::HmacSha1, |c| c.prop.prf))
    }

    pub fn cipher(&self) -> Option<V1Cipher> {
        self.choice.and_then(|c| V1Cipher::of(c.prop.encr))
    }

    pub fn nat_in_use(&self) -> bool {
        self.nat_local || self.nat_remote
    }

    pub fn established(&self) -> bool {
        self.state.established()
    }

    /// icookie | rcookie, the SPI of ISAKMP deletes and DPD notifies.
    pub fn cookies(&self) -> Vec<u8> {
        [self.icookie, self.rcookie].concat()
    }

    /// Encrypt a phase-1 message body and move the IV chain on.
    pub fn encrypt_p1(&mut self, plain: &[u8]) -> Result<Vec<u8>, String> {
        let (c, keys) = match (self.cipher(), &self.keys) {
            (Some(c), Some(k)) => (c, k),
            _ => return Err("no phase-1 keys".into()),
        };
        let ct = c
            .encrypt(&keys.enc_key, &self.iv, plain)
            .map_err(|e| e.to_string())?;
        self.iv = c.last_block(&ct);
        Ok(ct)
    }

    /// Decrypt a phase-1 message body with the current IV; returns the plaintext and the IV that
    /// follows it (the caller commits it once the message is accepted).
    pub fn decrypt_p1(&self, ct: &[u8]) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), String> {
        self.decrypt_with(&self.iv, ct)
    }

    pub fn decrypt_with(
        &self,
        iv: &[u8],
        ct: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), String> {
        let (c, keys) = match (self.cipher(), &self.keys) {
            (Some(c), Some(k)) => (c, k),
            _ => return Err("no phase-1 keys yet".into()),
        };
        let pt = c
            .decrypt(&keys.enc_key, iv, ct)
            .map_err(|e| e.to_string())?;
        Ok((pt, c.last_block(ct)))
    }

    pub fn encrypt_with(&self, iv: &[u8], plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let (c, keys) = match (self.cipher(), &self.keys) {
            (Some(c), Some(k)) => (c, k),
            _ => return Err("no phase-1 keys".into()),
        };
        let ct = c
            .encrypt(&keys.enc_key, iv, plain)
            .map_err(|e| e.to_string())?;
        let last = c.last_block(&ct);
        Ok((ct, last))
    }

    /// The first IV of a phase-2 or informational exchange.
    pub fn p2_iv(&self, msgid: u32) -> Vec<u8> {
        let bs = self.cipher().map_or(8, |c| c.block_len());
        phase2_iv(self.prf(), &self.p1_last_block, msgid, bs)
    }

    pub fn skeyid_a(&self) -> &[u8] {
        self.keys.as_ref().map_or(&[], |k| &k.skeyid_a)
    }

    pub fn skeyid_d(&self) -> &[u8] {
        self.keys.as_ref().map_or(&[], |k| &k.skeyid_d)
    }

    /// Remember a message ID; false if it was seen before.
    pub fn note_msgid(&mut self, id: u32) -> bool {
        if self.msgids.contains(&id) {
            return false;
        }
        if self.msgids.len() >= MAX_MSGIDS {
            self.msgids.pop_front();
        }
        self.msgids.push_back(id);
        true
    }
}

impl IkeSa {
    /// A new SA in its first state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        serial: u64,
        conn: &str,
        initiator: bool,
        state: MmState,
        icookie: [u8; 8],
        rcookie: [u8; 8],
        local: Endpoint,
        remote: Endpoint,
        local_id: IkeId,
        now: Instant,
    ) -> Self {
        IkeSa {
            serial,
            conn: conn.to_string(),
            initiator,
            state,
            icookie,
            rcookie,
            local,
            remote,
            created: now,
            established_at: None,
            sai_b: Vec::new(),
            choice: None,
            vids: PeerVids::default(),
            natt: None,
            nat_local: false,
            nat_remote: false,
            dh: None,
            g_xi: Vec::new(),
            g_xr: Vec::new(),
            ni: Vec::new(),
            nr: Vec::new(),
            gxy: Zeroizing::new(Vec::new()),
            skeyid: None,
            keys: None,
            iv: Vec::new(),
            p1_last_block: Vec::new(),
            local_id,
            id_b: Vec::new(),
            peer_id: None,
            peer_id_b: Vec::new(),
            last_in: None,
            last_out: None,
            retrans: None,
            waiting: None,
            msgids: VecDeque::new(),
            expire_at: None,
            rekey_at: None,
            rekeying: false,
            replaces: None,
            dpd: DpdState::default(),
            notified_failure: false,
            deleting: false,
        }
    }
}
