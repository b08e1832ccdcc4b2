//! Main Mode (RFC 2409 §5), initiator and responder, with pre-shared keys and RSA signatures,
//! NAT-T detection and the switch to the NAT-T port.

use super::engine::{tag, Engine, MAX_HALF_OPEN, MAX_HALF_OPEN_PER_PEER, MAX_IKE_SAS};
use super::ids::{self, id_matches};
use super::ike_sa::{IkeSa, KeydWhat, Retrans, Sent};
use super::natt::{self, NattVersion};
use super::proposals::{self, auths, AuthKind};
use super::state::MmState;
use super::wire::{self, Datagram, RawPayload};
use crate::crypto::dh::{public_len, DhPrivate};
use crate::crypto::v1_keymat::{derive_phase1, hash_i, hash_r, phase1_iv, skeyid_sig};
use crate::crypto::{ct_eq, v1_cipher::V1Cipher};
use crate::msgs::codec::Codec;
use crate::msgs::isakmp::{
    Doi, ExchangeType, HashPayload, KePayload, NoncePayload, NotifyPayload, NotifyType, Payload,
    PayloadType, ProtocolId, SigPayload, FLAG_ENCRYPTION,
};
use ipc::ike::{Endpoint, IkeId};
use ipc::keyd::{KeydContext, KeydRequest, KeydResponse, V1PskSkeyid, V1RsaSign};
use ipc::sa::SecretBytes;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// A responder's ISAKMP SA that is not established by then is dropped.
pub const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Our nonce length.
pub const NONCE_LEN: usize = 32;

fn find(ps: &[RawPayload], t: PayloadType) -> Option<&RawPayload> {
    ps.iter().find(|p| p.ptype == t)
}

fn natds(ps: &[RawPayload]) -> Vec<&[u8]> {
    ps.iter()
        .filter_map(|p| match &p.payload {
            Payload::NatD { payload, .. } => Some(payload.data.as_slice()),
            _ => None,
        })
        .collect()
}

fn nonce_ok(n: &[u8]) -> bool {
    (8..=256).contains(&n.len())
}

/// Verify a raw PKCS#1 v1.5 (type 1, no DigestInfo) signature over `hash` with any of `keys`
/// (RFC 3110 `0s…` strings). Err: how many keys were tried.
pub fn verify_rsa(keys: &[String], sig: &[u8], hash: &[u8]) -> Result<(), usize> {
    use openssl::bn::BigNum;
    use openssl::rsa::{Padding, Rsa};
    for k in keys {
        let Ok(pk) = keyfmt::rfc3110::parse_rsasigkey(k) else {
            continue;
        };
        let (Ok(n), Ok(e)) = (
            BigNum::from_slice(pk.modulus()),
            BigNum::from_slice(pk.exponent()),
        ) else {
            continue;
        };
        let Ok(rsa) = Rsa::from_public_components(n, e) else {
            continue;
        };
        let size = usize::try_from(rsa.size()).unwrap_or(0);
        if sig.len() != size || size == 0 {
            continue;
        }
        let mut out = vec![0u8; size];
        if let Ok(len) = rsa.public_decrypt(sig, &mut out, Padding::PKCS1) {
            if out.get(..len).is_some_and(|m| ct_eq(m, hash)) {
                return Ok(());
            }
        }
    }
    Err(keys.len())
}

impl Engine {
    fn plain_notify(
        &mut self,
        local: Endpoint,
        remote: Endpoint,
        ic: [u8; 8],
        rc: [u8; 8],
        t: NotifyType,
    ) {
        let n = Payload::Notify(NotifyPayload {
            doi: Doi::IPSEC,
            protocol: ProtocolId::ISAKMP,
            notify_type: t,
            spi: Vec::new(),
            data: Vec::new(),
        });
        let bytes = wire::plain_message(wire::header(ic, rc, ExchangeType::INFO, 0, 0), vec![n]);
        self.send(&Sent {
            local,
            remote,
            bytes,
        });
    }

    /// Start Main Mode as initiator.
    pub(super) fn start_mm(
        &mut self,
        name: &str,
        now: Instant,
        replaces: Option<u64>,
    ) -> Result<u64, String> {
        let cfg = self
            .conns
            .get(name)
            .map(|c| c.cfg.clone())
            .ok_or_else(|| format!("no conn \"{name}\""))?;
        let lh = cfg.local.host.ok_or("no local address")?;
        let rh = cfg.remote.host.ok_or("the peer's address is %any")?;
        if self.ikes.len() >= MAX_IKE_SAS {
            return Err("too many ISAKMP SAs".into());
        }
        ids::id_payload(&cfg.local.id)?;
        let sa = proposals::p1_sa(&cfg.ike, &auths(cfg.auth), cfg.ike_lifetime_secs);
        if sa.proposals.iter().all(|p| p.transforms.is_empty()) {
            return Err("ike= has no proposal IKEv1 can use".into());
        }
        let sai_b = sa.get_encoding();
        let serial = self.serial();
        let icookie = self.cookie();
        let local = Endpoint::new(lh.to_canonical(), self.cfg.ike_port);
        let remote = Endpoint::new(rh.to_canonical(), self.cfg.ike_port);
        let mut payloads = vec![Payload::Sa(sa)];
        payloads.extend(natt::initiator_vids());
        let bytes = wire::plain_message(
            wire::header(icookie, [0; 8], ExchangeType::IDENT, 0, 0),
            payloads,
        );
        let mut s = IkeSa::new(
            serial,
            name,
            true,
            MmState::MainI1,
            icookie,
            [0; 8],
            local,
            remote,
            cfg.local.id.clone(),
            now,
        );
        s.sai_b = sai_b;
        s.replaces = replaces;
        let out = Sent {
            local,
            remote,
            bytes,
        };
        s.last_out = Some(out.clone());
        s.retrans = Some(Retrans::new(now));
        self.ikes.insert(serial, s);
        let t = tag(name, serial);
        match replaces {
            Some(old) => self.info(format!("{t}: initiating Main Mode to replace #{old}")),
            None => self.info(format!("{t}: initiating Main Mode")),
        }
        self.info(format!("{t}: STATE_MAIN_I1: initiate"));
        self.send(&out);
        Ok(serial)
    }

    /// The ISAKMP SA of a message: by both cookies, or (MR1, a notify answering MI1) an SA we
    /// initiated to that peer that has no responder cookie yet.
    fn find_ike(&self, ic: &[u8; 8], rc: &[u8; 8], from: IpAddr) -> Option<u64> {
        self.ikes
            .values()
            .find(|s| s.icookie == *ic && s.rcookie == *rc)
            .or_else(|| {
                self.ikes.values().find(|s| {
                    s.initiator && s.icookie == *ic && s.rcookie == [0; 8] && s.remote.ip == from
                })
            })
            .map(|s| s.serial)
    }

    pub(super) fn find_ike_for_info(
        &self,
        ic: &[u8; 8],
        rc: &[u8; 8],
        from: IpAddr,
    ) -> Option<u64> {
        self.find_ike(ic, rc, from).or_else(|| {
            if *rc == [0; 8] {
                self.ikes
                    .values()
                    .find(|s| s.icookie == *ic && s.remote.ip == from)
                    .map(|s| s.serial)
            } else {
                None
            }
        })
    }

    /// A message equal to the last one received: answer with the stored reply, never process.
    fn duplicate(&mut self, serial: u64) -> Result<(), String> {
        let Some(s) = self.ikes.get(&serial) else {
            return Ok(());
        };
        if s.waiting.is_some() {
            return Ok(());
        }
        if let Some(out) = s.last_out.clone() {
            let t = tag(&s.conn, serial);
            tracing::debug!("{t}: retransmitting in answer to a duplicate packet");
            self.send(&out);
        }
        Ok(())
    }

    pub(super) fn mm_receive(
        &mut self,
        local: Endpoint,
        remote: Endpoint,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        let h = &dg.header;
        if h.message_id != 0 {
            return Err("Main Mode message with a non-zero message ID".into());
        }
        if h.rcookie == [0; 8] {
            let existing = self
                .ikes
                .values()
                .find(|s| !s.initiator && s.icookie == h.icookie && s.remote.ip == remote.ip)
                .map(|s| {
                    (
                        s.serial,
                        s.state == MmState::MainR1 && s.last_in.as_deref() == Some(bytes),
                    )
                });
            return match existing {
                Some((serial, true)) => self.duplicate(serial),
                Some(_) => {
                    Err("Main Mode I1 with the initiator cookie of an existing state".into())
                }
                None => self.mm_r_mi1(local, remote, bytes, dg, now),
            };
        }
        let serial = self
            .find_ike(&h.icookie, &h.rcookie, remote.ip)
            .ok_or_else(|| {
                "Main Mode message for an unknown ISAKMP SA (cookies do not match)".to_string()
            })?;
        let (state, is_dup, conn) = {
            let s = self.ikes.get(&serial).ok_or("state vanished")?;
            (s.state, s.last_in.as_deref() == Some(bytes), s.conn.clone())
        };
        if is_dup {
            return self.duplicate(serial);
        }
        if self.ikes.get(&serial).is_some_and(|s| s.waiting.is_some()) {
            return Err(format!(
                "{}: busy waiting for keyd; message dropped",
                tag(&conn, serial)
            ));
        }
        match state {
            MmState::MainI1 => self.mm_i_mr1(serial, bytes, dg, now),
            MmState::MainI2 => self.mm_i_mr2(serial, local, remote, bytes, dg, now),
            MmState::MainI3 => self.mm_i_mr3(serial, bytes, dg, now),
            MmState::MainR1 => self.mm_r_mi2(serial, local, remote, bytes, dg, now),
            MmState::MainR2 => self.mm_r_mi3(serial, local, remote, bytes, dg, now),
            st => Err(format!(
                "{}: unexpected Main Mode message in {st}",
                tag(&conn, serial)
            )),
        }
    }

    // ---- responder ----

    fn mm_r_mi1(
        &mut self,
        local: Endpoint,
        remote: Endpoint,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        if dg.encrypted() {
            return Err("encrypted Main Mode I1".into());
        }
        let sa_raw = match dg.payloads.first() {
            Some(p) if p.ptype == PayloadType::SA => p,
            _ => return Err("Main Mode I1 does not start with an SA payload".into()),
        };
        let Payload::Sa(sa) = &sa_raw.payload else {
            return Err("bad SA payload".into());
        };
        let half_open = self.ikes.values().filter(|s| !s.established()).count();
        let from_peer = self
            .ikes
            .values()
            .filter(|s| !s.established() && s.remote.ip == remote.ip)
            .count();
        if half_open >= MAX_HALF_OPEN
            || from_peer >= MAX_HALF_OPEN_PER_PEER
            || self.ikes.len() >= MAX_IKE_SAS
        {
            return Err(format!(
                "too many half-open ISAKMP SAs ({half_open} in all, {from_peer} from this peer)"
            ));
        }
        let candidates = self.responder_candidates(local.ip, remote.ip);
        if candidates.is_empty() {
            return Err(format!(
                "no connection matches: Main Mode from {remote} to {local}: no conn has left={} and right={} or right=%any",
                local.ip, remote.ip
            ));
        }
        let mut chosen = None;
        let mut first_err = None;
        for name in &candidates {
            let Some(c) = self.conns.get(name) else {
                continue;
            };
            match proposals::choose_p1(sa, &c.cfg.ike, &auths(c.cfg.auth), c.cfg.ike_lifetime_secs)
            {
                Ok((reply, choice)) => {
                    chosen = Some((name.clone(), reply, choice, c.cfg.local.id.clone()));
                    break;
                }
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some((name.clone(), e));
                    }
                }
            }
        }
        let Some((name, reply, choice, local_id)) = chosen else {
            let serial = self.serial();
            if let Some((name, (offered, allows))) = first_err {
                self.fail(
                    &name,
                    format!(
                        "{}: no acceptable proposal: peer offered [{offered}]; conn allows [{allows}]",
                        tag(&name, serial)
                    ),
                );
            }
            self.plain_notify(
                local,
                remote,
                dg.header.icookie,
                [0; 8],
                NotifyType::NO_PROPOSAL_CHOSEN,
            );
            return Ok(());
        };
        let vids = natt::scan_vids(dg.payloads.iter().map(|p| &p.payload));
        let serial = self.serial();
        let rcookie = self.cookie();
        let mut s = IkeSa::new(
            serial,
            &name,
            false,
            MmState::MainR1,
            dg.header.icookie,
            rcookie,
            local,
            remote,
            local_id,
            now,
        );
        s.sai_b = sa_raw.body().to_vec();
        s.choice = Some(choice);
        s.vids = vids;
        s.natt = vids.natt;
        s.expire_at = Some(now + HALF_OPEN_TIMEOUT);
        let mut payloads = vec![Payload::Sa(reply)];
        payloads.extend(natt::responder_vids(s.natt));
        let out = Sent {
            local,
            remote,
            bytes: wire::plain_message(
                wire::header(s.icookie, rcookie, ExchangeType::IDENT, 0, 0),
                payloads,
            ),
        };
        s.last_in = Some(bytes.to_vec());
        s.last_out = Some(out.clone());
        self.ikes.insert(serial, s);
        let t = tag(&name, serial);
        self.info(format!(
            "{t}: responding to Main Mode from unknown peer {remote}"
        ));
        self.info(format!("{t}: STATE_MAIN_R1: sent MR1, expecting MI2"));
        self.send(&out);
        Ok(())
    }

    /// The peer's KE, nonce and NAT-D payloads of MI2/MR2, checked.
    fn ke_nonce(&self, serial: u64, dg: &Datagram) -> Result<(Vec<u8>, Vec<u8>), String> {
        let s = self.ikes.get(&serial).ok_or("state vanished")?;
        if dg.encrypted() {
            return Err("encrypted Main Mode message where a cleartext one belongs".into());
        }
        let group = s.choice.map(|c| c.prop.dh).ok_or("no proposal chosen")?;
        let ke = match find(&dg.payloads, PayloadType::KE).map(|p| &p.payload) {
            Some(Payload::Ke(k)) => k.data.clone(),
            _ => return Err("no KE payload".into()),
        };
        if Some(ke.len()) != public_len(group) {
            return Err(format!("KE payload of {} bytes for {group:?}", ke.len()));
        }
        let nonce = match find(&dg.payloads, PayloadType::NONCE).map(|p| &p.payload) {
            Some(Payload::Nonce(n)) if nonce_ok(&n.data) => n.data.clone(),
            _ => return Err("no nonce, or a nonce not 8 to 256 bytes long".into()),
        };
        Ok((ke, nonce))
    }

    fn mm_r_mi2(
        &mut self,
        serial: u64,
        local: Endpoint,
        remote: Endpoint,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        let (ke, ni) = self.ke_nonce(serial, dg)?;
        let (group, auth, prf, natt) = {
            let s = self.ikes.get(&serial).ok_or("state vanished")?;
            let c = s.choice.ok_or("no proposal chosen")?;
            (c.prop.dh, c.auth, s.prf(), s.natt)
        };
        let dh = DhPrivate::generate(group, &mut *self.rng).map_err(|e| e.to_string())?;
        let gxy = dh.shared(&ke).map_err(|e| e.to_string())?;
        let nr = self.random(NONCE_LEN);
        let cfg = {
            let s = self.ikes.get(&serial).ok_or("state vanished")?;
            self.conns
                .get(&s.conn)
                .map(|c| c.cfg.clone())
                .ok_or("conn vanished")?
        };
        let Some(s) = self.ikes.get_mut(&serial) else {
            return Ok(());
        };
        let peer_natds = natds(&dg.payloads);
        if natt.is_some() && !peer_natds.is_empty() {
            let (l, r) = natt::detect(prf, &s.icookie, &s.rcookie, &peer_natds, local, remote);
            s.nat_local = l;
            s.nat_remote = r;
        }
        s.g_xi = ke;
        s.g_xr = dh.public().to_vec();
        s.dh = Some(dh);
        s.ni = ni.clone();
        s.nr = nr.clone();
        s.gxy = gxy;
        s.last_in = Some(bytes.to_vec());
        s.id_b = ids::id_payload(&s.local_id)?.get_encoding();
        match auth {
            AuthKind::Psk => {
                let req = KeydRequest::V1PskSkeyid(V1PskSkeyid {
                    ctx: KeydContext {
                        conn: s.conn.clone(),
                        serial,
                        peer: remote,
                    },
                    local_id: cfg.local.id.clone(),
                    remote_id: cfg.remote.id.clone(),
                    prf: prf.0,
                    ni,
                    nr,
                });
                let t = self.keyd(serial, KeydWhat::Skeyid, req, now);
                if let Some(s) = self.ikes.get_mut(&serial) {
                    s.waiting = Some((t, KeydWhat::Skeyid));
                }
                Ok(())
            }
            AuthKind::Rsa => {
                let skeyid = skeyid_sig(prf, &s.ni, &s.nr, &s.gxy);
                self.set_skeyid(serial, skeyid)?;
                self.mm_r_send_mr2(serial)
            }
        }
    }

    /// SKEYID is known: derive SKEYID_d/a/e, the encryption key and the phase-1 IV.
    fn set_skeyid(&mut self, serial: u64, skeyid: Zeroizing<Vec<u8>>) -> Result<(), String> {
        let s = self.ikes.get_mut(&serial).ok_or("state vanished")?;
        let c = s.choice.ok_or("no proposal chosen")?;
        let cipher = V1Cipher::of(c.prop.encr).ok_or("cipher not usable with IKEv1")?;
        let prf = s.prf();
        let keys = derive_phase1(
            prf,
            &skeyid,
            &s.gxy,
            &s.icookie,
            &s.rcookie,
            cipher.key_len(),
        );
        s.iv = phase1_iv(prf, &s.g_xi, &s.g_xr, cipher.block_len());
        s.keys = Some(keys);
        s.skeyid = Some(skeyid);
        Ok(())
    }

    fn natd_payloads(s: &IkeSa) -> Vec<Payload> {
        match s.natt {
            Some(v) => vec![
                natt::natd_payload(
                    v,
                    natt::natd_hash(s.prf(), &s.icookie, &s.rcookie, s.remote),
                ),
                natt::natd_payload(v, natt::natd_hash(s.prf(), &s.icookie, &s.rcookie, s.local)),
            ],
            None => Vec::new(),
        }
    }

    /// MI2 / MR2: our KE and nonce, and the NAT-D hashes once NAT-T is agreed (cleartext).
    fn ke_nonce_message(s: &IkeSa, g_x: &[u8], nonce: &[u8]) -> Sent {
        let mut payloads = vec![
            Payload::Ke(KePayload { data: g_x.to_vec() }),
            Payload::Nonce(NoncePayload {
                data: nonce.to_vec(),
            }),
        ];
        payloads.extend(Self::natd_payloads(s));
        Sent {
            local: s.local,
            remote: s.remote,
            bytes: wire::plain_message(
                wire::header(s.icookie, s.rcookie, ExchangeType::IDENT, 0, 0),
                payloads,
            ),
        }
    }

    fn mm_r_send_mr2(&mut self, serial: u64) -> Result<(), String> {
        let s = self.ikes.get_mut(&serial).ok_or("state vanished")?;
        let out = Self::ke_nonce_message(s, &s.g_xr, &s.nr);
        s.state = MmState::MainR2;
        s.last_out = Some(out.clone());
        let t = tag(&s.conn, serial);
        self.info(format!("{t}: STATE_MAIN_R2: sent MR2, expecting MI3"));
        self.send(&out);
        Ok(())
    }

    /// Decrypt and parse an MI3/MR3; Err is the reason (the message is dropped, nothing changes).
    fn open_p1(&self, serial: u64, dg: &Datagram) -> Result<(Vec<RawPayload>, Vec<u8>), String> {
        let s = self.ikes.get(&serial).ok_or("state vanished")?;
        if !dg.encrypted() {
            return Err("cleartext message where an encrypted one belongs".into());
        }
        let (pt, next_iv) = s.decrypt_p1(&dg.body)?;
        let ps = wire::parse_chain(dg.first, &pt, true).map_err(|e| e.to_string())?;
        Ok((ps, next_iv))
    }

    /// The ID and HASH/SIG of an MI3/MR3: (peer ID, ID body, auth payload data).
    fn id_and_auth(ps: &[RawPayload], auth: AuthKind) -> Result<(IkeId, Vec<u8>, Vec<u8>), String> {
        let idp = find(ps, PayloadType::ID).ok_or("no ID payload")?;
        let Payload::Id(id) = &idp.payload else {
            return Err("bad ID payload".into());
        };
        let peer = ids::ike_id(id)?;
        let data = match (
            auth,
            find(ps, PayloadType::HASH),
            find(ps, PayloadType::SIG),
        ) {
            (AuthKind::Psk, Some(p), _) => p.body().to_vec(),
            (AuthKind::Rsa, _, Some(p)) => p.body().to_vec(),
            (AuthKind::Psk, ..) => return Err("no HASH payload".into()),
            (AuthKind::Rsa, ..) => return Err("no SIG payload".into()),
        };
        Ok((peer, idp.body().to_vec(), data))
    }

    fn mm_r_mi3(
        &mut self,
        serial: u64,
        local: Endpoint,
        remote: Endpoint,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        let (conn, auth, prf, local_id) = {
            let s = self.ikes.get(&serial).ok_or("state vanished")?;
            let c = s.choice.ok_or("no proposal chosen")?;
            (s.conn.clone(), c.auth, s.prf(), s.local_id.clone())
        };
        let t = tag(&conn, serial);
        let cfg = self
            .conns
            .get(&conn)
            .map(|c| c.cfg.clone())
            .ok_or("conn vanished")?;
        let (ps, next_iv) = match self.open_p1(serial, dg) {
            Ok(x) => x,
            Err(e) if dg.encrypted() => {
                let why = match auth {
                    AuthKind::Psk => format!(
                        "{t}: PSK authentication failed: MI3 from {remote} does not decrypt to a valid message ({e}): the pre-shared keys differ? (IDs {}/{})",
                        cfg.local.id, cfg.remote.id
                    ),
                    AuthKind::Rsa => format!("{t}: MI3 from {remote} does not decrypt to a valid message: {e}"),
                };
                self.fail(&conn, why);
                self.notify_auth_failed(serial, local, remote);
                return Ok(());
            }
            Err(e) => return Err(format!("{t}: {e}")),
        };
        let (peer_id, id_body, auth_data) = match Self::id_and_auth(&ps, auth) {
            Ok(x) => x,
            Err(e) => {
                self.fail(&conn, format!("{t}: MI3 from {remote}: {e}"));
                self.plain_notify(
                    local,
                    remote,
                    dg.header.icookie,
                    dg.header.rcookie,
                    NotifyType::INVALID_ID_INFORMATION,
                );
                self.delete_ike(serial, false);
                return Ok(());
            }
        };
        // The conn must accept the peer's ID; an RSA conn may hand over to another conn for the
        // same hosts that does (pluto's conn switching); a PSK's secret was chosen by the IDs.
        let mut use_conn = conn.clone();
        if !id_matches(&cfg.remote.id, &peer_id) {
            let choice = self.ikes.get(&serial).and_then(|s| s.choice);
            let alt = self
                .responder_candidates(local.ip, remote.ip)
                .into_iter()
                .find(|n| {
                    self.conns.get(n).is_some_and(|c| {
                        auth == AuthKind::Rsa
                            && id_matches(&c.cfg.remote.id, &peer_id)
                            && c.cfg.local.id == local_id
                            && choice.is_some_and(|ch| {
                                auths(c.cfg.auth).contains(&ch.auth) && c.cfg.ike.contains(&ch.prop)
                            })
                    })
                });
            match alt {
                Some(a) => {
                    self.info(format!(
                        "{t}: switched from \"{conn}\" to \"{a}\" for peer ID {peer_id}"
                    ));
                    use_conn = a;
                }
                None => {
                    self.fail(
                        &conn,
                        format!(
                            "{t}: no connection matches: peer {remote} says it is {peer_id}; \"{conn}\" expects {} (no other conn for {} and {} accepts it)",
                            cfg.remote.id, local.ip, remote.ip
                        ),
                    );
                    self.plain_notify(
                        local,
                        remote,
                        dg.header.icookie,
                        dg.header.rcookie,
                        NotifyType::INVALID_ID_INFORMATION,
                    );
                    self.delete_ike(serial, false);
                    return Ok(());
                }
            }
        }
        let cfg = self
            .conns
            .get(&use_conn)
            .map(|c| c.cfg.clone())
            .ok_or("conn vanished")?;
        let expected = {
            let s = self.ikes.get(&serial).ok_or("state vanished")?;
            let skeyid = s.skeyid.as_ref().ok_or("no SKEYID")?;
            hash_i(
                prf, skeyid, &s.g_xi, &s.g_xr, &s.icookie, &s.rcookie, &s.sai_b, &id_body,
            )
        };
        let verdict = match auth {
            AuthKind::Psk => {
                if ct_eq(&auth_data, &expected) {
                    Ok(())
                } else {
                    Err(format!(
                        "{t}: PSK authentication failed: HASH_I mismatch (IDs {}/{peer_id})",
                        cfg.local.id
                    ))
                }
            }
            AuthKind::Rsa => verify_rsa(&cfg.remote.rsasigkeys, &auth_data, &expected).map_err(|n| {
                if n == 0 {
                    format!("{t}: no rightrsasigkey for {peer_id}: cannot verify its signature")
                } else {
                    format!(
                        "{t}: signature from {peer_id} did not verify with any of its {n} rightrsasigkey{}",
                        if n == 1 { "" } else { "s" }
                    )
                }
            }),
        };
        if let Err(why) = verdict {
            self.fail(&use_conn, why);
            self.notify_auth_failed(serial, local, remote);
            self.delete_ike(serial, false);
            return Ok(());
        }
        // Authenticated: commit.
        let mut inst = use_conn.clone();
        if self.conns.get(&use_conn).is_some_and(|c| c.is_template()) {
            inst = self
                .make_instance(&use_conn, remote.ip)
                .ok_or("cannot make an instance")?;
            self.info(format!(
                "{t}: peer {remote} ({peer_id}) gets instance \"{inst}\""
            ));
        }
        let Some(s) = self.ikes.get_mut(&serial) else {
            return Ok(());
        };
        s.iv = next_iv;
        s.conn = inst.clone();
        s.local = local;
        s.remote = remote;
        s.peer_id = Some(peer_id.clone());
        s.peer_id_b = id_body;
        s.last_in = Some(bytes.to_vec());
        s.id_b = ids::id_payload(&s.local_id)?.get_encoding();
        match auth {
            AuthKind::Psk => {
                let skeyid = s.skeyid.as_ref().ok_or("no SKEYID")?;
                let h = hash_r(
                    prf, skeyid, &s.g_xi, &s.g_xr, &s.icookie, &s.rcookie, &s.sai_b, &s.id_b,
                );
                self.mm_r_send_mr3(serial, Payload::Hash(HashPayload { data: h.to_vec() }), now)
            }
            AuthKind::Rsa => {
                let req = KeydRequest::V1RsaSign(V1RsaSign {
                    ctx: KeydContext {
                        conn: inst.clone(),
                        serial,
                        peer: remote,
                    },
                    local_id: s.local_id.clone(),
                    local_pubkey: cfg.local.rsasigkeys.first().cloned(),
                    prf: prf.0,
                    skeyid: SecretBytes::new(
                        s.skeyid.as_ref().map(|k| k.to_vec()).unwrap_or_default(),
                    ),
                    initiator: false,
                    g_xi: s.g_xi.clone(),
                    g_xr: s.g_xr.clone(),
                    cky_i: s.icookie,
                    cky_r: s.rcookie,
                    sai_b: s.sai_b.clone(),
                    id_b: s.id_b.clone(),
                });
                let tk = self.keyd(serial, KeydWhat::Sign, req, now);
                if let Some(s) = self.ikes.get_mut(&serial) {
                    s.waiting = Some((tk, KeydWhat::Sign));
                }
                Ok(())
            }
        }
    }

    fn notify_auth_failed(&mut self, serial: u64, local: Endpoint, remote: Endpoint) {
        let Some(s) = self.ikes.get_mut(&serial) else {
            return;
        };
        if s.notified_failure {
            return;
        }
        s.notified_failure = true;
        let (ic, rc) = (s.icookie, s.rcookie);
        self.plain_notify(local, remote, ic, rc, NotifyType::AUTHENTICATION_FAILED);
    }

    fn mm_r_send_mr3(&mut self, serial: u64, auth: Payload, now: Instant) -> Result<(), String> {
        let s = self.ikes.get_mut(&serial).ok_or("state vanished")?;
        let idp = ids::id_payload(&s.local_id)?;
        let (first, plain) = wire::encode_chain(&[Payload::Id(idp), auth]);
        let ct = s.encrypt_p1(&plain)?;
        s.p1_last_block = s.iv.clone();
        let out = Sent {
            local: s.local,
            remote: s.remote,
            bytes: wire::encrypted_message(
                wire::header(
                    s.icookie,
                    s.rcookie,
                    ExchangeType::IDENT,
                    FLAG_ENCRYPTION,
                    0,
                ),
                first,
                ct,
            ),
        };
        s.state = MmState::MainR3;
        s.last_out = Some(out.clone());
        s.retrans = None;
        s.established_at = Some(now);
        let life = s.choice.map_or(3600, |c| c.life_secs);
        s.expire_at = Some(now + Duration::from_secs(life));
        let words = Self::established_words(s);
        let t = tag(&s.conn, serial);
        self.send(&out);
        self.info(format!(
            "{t}: STATE_MAIN_R3: sent MR3, ISAKMP SA established {{{words}}}"
        ));
        self.on_ike_established(serial, now);
        Ok(())
    }

    fn established_words(s: &IkeSa) -> String {
        match s.choice {
            Some(c) => format!(
                "auth={} {}",
                c.auth.name(),
                proposals::ike_established_words(&c.prop)
            ),
            None => String::new(),
        }
    }

    // ---- initiator ----

    fn mm_i_mr1(
        &mut self,
        serial: u64,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        if dg.encrypted() {
            return Err("encrypted Main Mode R1".into());
        }
        let conn = self
            .ikes
            .get(&serial)
            .map(|s| s.conn.clone())
            .ok_or("state vanished")?;
        let t = tag(&conn, serial);
        let cfg = self
            .conns
            .get(&conn)
            .map(|c| c.cfg.clone())
            .ok_or("conn vanished")?;
        let sa = match find(&dg.payloads, PayloadType::SA).map(|p| &p.payload) {
            Some(Payload::Sa(sa)) => sa,
            _ => return Err(format!("{t}: Main Mode R1 without an SA payload")),
        };
        let choice = match proposals::check_p1_reply(
            sa,
            &cfg.ike,
            &auths(cfg.auth),
            cfg.ike_lifetime_secs,
        ) {
            Ok(c) => c,
            Err(e) => {
                self.fail(&conn, format!("{t}: {e}"));
                return Ok(());
            }
        };
        let vids = natt::scan_vids(dg.payloads.iter().map(|p| &p.payload));
        let dh = DhPrivate::generate(choice.prop.dh, &mut *self.rng).map_err(|e| e.to_string())?;
        let ni = self.random(NONCE_LEN);
        let Some(s) = self.ikes.get_mut(&serial) else {
            return Ok(());
        };
        s.rcookie = dg.header.rcookie;
        s.choice = Some(choice);
        s.vids = vids;
        s.natt = vids.natt;
        s.g_xi = dh.public().to_vec();
        s.dh = Some(dh);
        s.ni = ni;
        let out = Self::ke_nonce_message(s, &s.g_xi, &s.ni);
        s.state = MmState::MainI2;
        s.last_in = Some(bytes.to_vec());
        s.last_out = Some(out.clone());
        s.retrans = Some(Retrans::new(now));
        self.info(format!("{t}: STATE_MAIN_I2: sent MI2, expecting MR2"));
        self.send(&out);
        Ok(())
    }

    fn mm_i_mr2(
        &mut self,
        serial: u64,
        local: Endpoint,
        remote: Endpoint,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        let (ke, nr) = self.ke_nonce(serial, dg)?;
        let conn = self
            .ikes
            .get(&serial)
            .map(|s| s.conn.clone())
            .ok_or("state vanished")?;
        let cfg = self
            .conns
            .get(&conn)
            .map(|c| c.cfg.clone())
            .ok_or("conn vanished")?;
        let natt_port = self.cfg.natt_port;
        let Some(s) = self.ikes.get_mut(&serial) else {
            return Ok(());
        };
        let gxy =
            s.dh.as_ref()
                .ok_or("no DH key")?
                .shared(&ke)
                .map_err(|e| e.to_string())?;
        let prf = s.prf();
        let peer_natds = natds(&dg.payloads);
        if s.natt.is_some() && !peer_natds.is_empty() {
            let (l, r) = natt::detect(prf, &s.icookie, &s.rcookie, &peer_natds, local, remote);
            s.nat_local = l;
            s.nat_remote = r;
        }
        s.g_xr = ke;
        s.nr = nr;
        s.gxy = gxy;
        s.last_in = Some(bytes.to_vec());
        s.retrans = None;
        s.id_b = ids::id_payload(&s.local_id)?.get_encoding();
        if s.nat_in_use() && s.local.port != natt_port {
            // RFC 3947 §4: from MI3 on, both sides talk on the NAT-T port.
            s.local = Endpoint::new(s.local.ip, natt_port);
            s.remote = Endpoint::new(s.remote.ip, natt_port);
        }
        let auth = s.choice.map(|c| c.auth).ok_or("no proposal chosen")?;
        match auth {
            AuthKind::Psk => {
                let req = KeydRequest::V1PskSkeyid(V1PskSkeyid {
                    ctx: KeydContext {
                        conn: conn.clone(),
                        serial,
                        peer: remote,
                    },
                    local_id: cfg.local.id.clone(),
                    remote_id: cfg.remote.id.clone(),
                    prf: prf.0,
                    ni: s.ni.clone(),
                    nr: s.nr.clone(),
                });
                let t = self.keyd(serial, KeydWhat::Skeyid, req, now);
                if let Some(s) = self.ikes.get_mut(&serial) {
                    s.waiting = Some((t, KeydWhat::Skeyid));
                }
                Ok(())
            }
            AuthKind::Rsa => {
                let skeyid = skeyid_sig(prf, &s.ni, &s.nr, &s.gxy);
                self.set_skeyid(serial, skeyid)?;
                self.ask_signature(serial, true, &cfg.local.rsasigkeys, now)
            }
        }
    }

    fn ask_signature(
        &mut self,
        serial: u64,
        initiator: bool,
        local_keys: &[String],
        now: Instant,
    ) -> Result<(), String> {
        let s = self.ikes.get(&serial).ok_or("state vanished")?;
        let req = KeydRequest::V1RsaSign(V1RsaSign {
            ctx: KeydContext {
                conn: s.conn.clone(),
                serial,
                peer: s.remote,
            },
            local_id: s.local_id.clone(),
            local_pubkey: local_keys.first().cloned(),
            prf: s.prf().0,
            skeyid: SecretBytes::new(s.skeyid.as_ref().map(|k| k.to_vec()).unwrap_or_default()),
            initiator,
            g_xi: s.g_xi.clone(),
            g_xr: s.g_xr.clone(),
            cky_i: s.icookie,
            cky_r: s.rcookie,
            sai_b: s.sai_b.clone(),
            id_b: s.id_b.clone(),
        });
        let t = self.keyd(serial, KeydWhat::Sign, req, now);
        if let Some(s) = self.ikes.get_mut(&serial) {
            s.waiting = Some((t, KeydWhat::Sign));
        }
        Ok(())
    }

    fn mm_i_send_mi3(&mut self, serial: u64, auth: Payload, now: Instant) -> Result<(), String> {
        let s = self.ikes.get_mut(&serial).ok_or("state vanished")?;
        let idp = ids::id_payload(&s.local_id)?;
        let (first, plain) = wire::encode_chain(&[Payload::Id(idp), auth]);
        let ct = s.encrypt_p1(&plain)?;
        let out = Sent {
            local: s.local,
            remote: s.remote,
            bytes: wire::encrypted_message(
                wire::header(
                    s.icookie,
                    s.rcookie,
                    ExchangeType::IDENT,
                    FLAG_ENCRYPTION,
                    0,
                ),
                first,
                ct,
            ),
        };
        s.state = MmState::MainI3;
        s.last_out = Some(out.clone());
        s.retrans = Some(Retrans::new(now));
        let t = tag(&s.conn, serial);
        let nat = if s.nat_in_use() {
            format!(
                " (NAT detected: {}; switching to port {})",
                if s.nat_local {
                    "we are behind a NAT"
                } else {
                    "the peer is behind a NAT"
                },
                s.local.port
            )
        } else {
            String::new()
        };
        self.info(format!("{t}: STATE_MAIN_I3: sent MI3, expecting MR3{nat}"));
        self.send(&out);
        Ok(())
    }

    fn mm_i_mr3(
        &mut self,
        serial: u64,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        let (conn, auth, prf) = {
            let s = self.ikes.get(&serial).ok_or("state vanished")?;
            (
                s.conn.clone(),
                s.choice.map(|c| c.auth).ok_or("no choice")?,
                s.prf(),
            )
        };
        let t = tag(&conn, serial);
        let cfg = self
            .conns
            .get(&conn)
            .map(|c| c.cfg.clone())
            .ok_or("conn vanished")?;
        let (ps, next_iv) = self
            .open_p1(serial, dg)
            .map_err(|e| format!("{t}: MR3: {e}"))?;
        let (peer_id, id_body, auth_data) =
            Self::id_and_auth(&ps, auth).map_err(|e| format!("{t}: MR3: {e}"))?;
        let verdict = if !id_matches(&cfg.remote.id, &peer_id) {
            Err(format!(
                "{t}: we require the peer to have ID {}, but it says it is {peer_id}",
                cfg.remote.id
            ))
        } else {
            let s = self.ikes.get(&serial).ok_or("state vanished")?;
            let skeyid = s.skeyid.as_ref().ok_or("no SKEYID")?;
            let expected = hash_r(
                prf, skeyid, &s.g_xi, &s.g_xr, &s.icookie, &s.rcookie, &s.sai_b, &id_body,
            );
            match auth {
                AuthKind::Psk if ct_eq(&auth_data, &expected) => Ok(()),
                AuthKind::Psk => Err(format!(
                    "{t}: PSK authentication failed: HASH_R mismatch (IDs {}/{peer_id})",
                    cfg.local.id
                )),
                AuthKind::Rsa => verify_rsa(&cfg.remote.rsasigkeys, &auth_data, &expected).map_err(|n| {
                    format!(
                        "{t}: signature from {peer_id} did not verify with any of its {n} rightrsasigkey{}",
                        if n == 1 { "" } else { "s" }
                    )
                }),
            }
        };
        if let Err(why) = verdict {
            self.fail(&conn, why);
            self.delete_ike(serial, false);
            self.attempt_failed(&conn, now, super::conns::RETRY_DELAY);
            return Ok(());
        }
        let Some(s) = self.ikes.get_mut(&serial) else {
            return Ok(());
        };
        s.iv = next_iv;
        s.p1_last_block = s.iv.clone();
        s.peer_id = Some(peer_id);
        s.peer_id_b = id_body;
        s.state = MmState::MainI4;
        s.last_in = Some(bytes.to_vec());
        s.last_out = None;
        s.retrans = None;
        s.established_at = Some(now);
        let life = s.choice.map_or(3600, |c| c.life_secs);
        s.expire_at = Some(now + Duration::from_secs(life));
        let words = Self::established_words(s);
        self.info(format!(
            "{t}: STATE_MAIN_I4: ISAKMP SA established {{{words}}}"
        ));
        if cfg.rekey {
            let at = self.rekey_time(now, life, cfg.rekey_margin_secs, cfg.rekey_fuzz_percent);
            if let Some(s) = self.ikes.get_mut(&serial) {
                s.rekey_at = Some(at);
            }
        }
        self.on_ike_established(serial, now);
        Ok(())
    }

    /// After an ISAKMP SA is established: `uniqueids`, the SA it replaces, DPD, and the Quick
    /// Modes waiting for it.
    fn on_ike_established(&mut self, serial: u64, now: Instant) {
        let Some(s) = self.ikes.get(&serial) else {
            return;
        };
        let conn = s.conn.clone();
        let peer_id = s.peer_id.clone();
        let initiator = s.initiator;
        let replaces = s.replaces;
        let t = tag(&conn, serial);
        let template = self.conns.get(&conn).and_then(|c| c.template.clone());
        if self.settings.uniqueids {
            if let Some(pid) = &peer_id {
                // Other instances of the same road-warrior template with the same peer ID.
                if let Some(tn) = &template {
                    let others: Vec<String> = self
                        .conns
                        .iter()
                        .filter(|(n, c)| c.template.as_ref() == Some(tn) && **n != conn)
                        .filter(|(n, _)| {
                            self.ikes
                                .values()
                                .any(|x| x.conn == **n && x.peer_id.as_ref() == Some(pid))
                        })
                        .map(|(n, _)| n.clone())
                        .collect();
                    for o in others {
                        self.info(format!(
                            "{t}: uniqueids: \"{o}\" has the same peer ID {pid}: deleting it"
                        ));
                        self.teardown(&o, now, ipc::policy::RemoveMode::Everything);
                        self.conns.remove(&o);
                    }
                }
            }
        }
        if let Some(old) = replaces {
            if self.ikes.contains_key(&old) {
                self.info(format!(
                    "{t}: deleting ISAKMP SA #{old}: replaced by #{serial}"
                ));
                self.delete_ike(old, true);
            }
        }
        self.dpd_start(serial, now);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.retry_at = None;
        }
        if !initiator {
            return;
        }
        // Quick Modes waiting for this SA: a conn that should be up and has no IPsec SA, and
        // IPsec SAs whose rekey is due.
        let want = self.conns.get(&conn).is_some_and(|c| c.want_up);
        if want && !self.missing_pairs(&conn).is_empty() {
            if let Err(e) = self.start_missing_qms(&conn, serial, now) {
                self.fail(&conn, format!("{t}: cannot start Quick Mode: {e}"));
            }
        }
        let due: Vec<u64> = self
            .children
            .values()
            .filter(|c| {
                c.conn == conn
                    && c.initiator
                    && c.established()
                    && !c.rekeying
                    && c.retire_at.is_none()
                    && c.rekey_at
                        .is_some_and(|r| r <= now + super::conns::RETRY_DELAY)
            })
            .map(|c| c.serial)
            .collect();
        for c in due {
            self.rekey_child(c, now);
        }
    }

    pub(super) fn on_keyd_answer(
        &mut self,
        ticket: u64,
        resp: Result<KeydResponse, String>,
        now: Instant,
    ) {
        let Some(w) = self.tickets.remove(&ticket) else {
            tracing::debug!("keyd answer for unknown ticket {ticket}");
            return;
        };
        let serial = w.serial;
        let Some(s) = self.ikes.get_mut(&serial) else {
            return;
        };
        if s.waiting.map(|(t, _)| t) != Some(ticket) {
            return;
        }
        s.waiting = None;
        let (conn, initiator, state) = (s.conn.clone(), s.initiator, s.state);
        let t = tag(&conn, serial);
        let ids = self
            .conns
            .get(&conn)
            .map(|c| format!("{}/{}", c.cfg.local.id, c.cfg.remote.id))
            .unwrap_or_default();
        let r = match (w.what, resp) {
            (KeydWhat::Skeyid, Ok(KeydResponse::Skeyid(sk))) => {
                let skeyid = Zeroizing::new(sk.expose().to_vec());
                self.set_skeyid(serial, skeyid).and_then(|_| {
                    if initiator {
                        let s = self.ikes.get(&serial).ok_or("state vanished")?;
                        let skeyid = s.skeyid.as_ref().ok_or("no SKEYID")?;
                        let h = hash_i(
                            s.prf(),
                            skeyid,
                            &s.g_xi,
                            &s.g_xr,
                            &s.icookie,
                            &s.rcookie,
                            &s.sai_b,
                            &s.id_b,
                        );
                        self.mm_i_send_mi3(
                            serial,
                            Payload::Hash(HashPayload { data: h.to_vec() }),
                            now,
                        )
                    } else {
                        self.mm_r_send_mr2(serial)
                    }
                })
            }
            (KeydWhat::Sign, Ok(KeydResponse::Signature { sig, .. })) => {
                let p = Payload::Sig(SigPayload { data: sig });
                if initiator {
                    self.mm_i_send_mi3(serial, p, now)
                } else {
                    self.mm_r_send_mr3(serial, p, now)
                }
            }
            (what, Ok(KeydResponse::Denied(r)))
            | (what, Ok(KeydResponse::Error(r)))
            | (what, Err(r)) => Err(format!(
                "keyd refused the {} for IDs {ids}: {r}",
                if what == KeydWhat::Skeyid {
                    "pre-shared key (SKEYID)"
                } else {
                    "RSA signature"
                }
            )),
            (_, Ok(other)) => Err(format!("keyd answered with {other:?}")),
        };
        if let Err(e) = r {
            self.fail(&conn, format!("{t}: {e} in {state}"));
            self.delete_ike(serial, false);
            if initiator {
                self.attempt_failed(&conn, now, super::conns::RETRY_DELAY);
            }
        }
    }

    /// Which NAT-T version an SA speaks (for Quick Mode's encapsulation modes).
    pub(super) fn natt_for_qm(s: &IkeSa) -> Option<NattVersion> {
        if s.nat_in_use() {
            s.natt
        } else {
            None
        }
    }
}
