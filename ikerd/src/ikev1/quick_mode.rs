//! Quick Mode (RFC 2409 §5.5), initiator and responder, with and without PFS, NAT-T UDP
//! encapsulation and the RESPONDER-LIFETIME notify.

use super::child::{Child, DirKeys};
use super::conns::{conn_nets, conn_pairs, RETRY_DELAY};
use super::engine::{tag, Engine, MAX_CHILDREN};
use super::ids::{self, net_contains, ts_payload, Ts};
use super::ike_sa::{Retrans, Sent};
use super::main_mode::NONCE_LEN;
use super::proposals::{
    self, auth_key_len, enc_key_len, esp_encr_name, integ_name, pfs_group, P2Choice, P2Want,
};
use super::state::QmState;
use super::wire::{self, Datagram, RawPayload};
use crate::crypto::ct_eq;
use crate::crypto::dh::{public_len, DhPrivate};
use crate::crypto::v1_keymat::qm_keymat;
use crate::msgs::isakmp::{
    Doi, ExchangeType, KePayload, NatOaPayload, NoncePayload, NotifyPayload, NotifyType, Payload,
    PayloadType, ProtocolId, FLAG_ENCRYPTION,
};
use ipc::ike::{Endpoint, IkeConn};
use ipc::policy::Net;
use ipc::sa::{IntegAlg, IpsecProto, SaMode, SecretBytes};
use std::time::{Duration, Instant};

/// An old IPsec SA stays this long after its replacement is installed (packets in flight).
pub const RETIRE_GRACE: Duration = Duration::from_secs(5);
/// Two IPsec SAs of a conn with the same selectors made this close together are duplicates of
/// a simultaneous negotiation (both ends initiated), not a rekey.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(3);

/// What QR1 gave: the choice, the responder's SPI, Nr and g(qm)^xy.
type Qr1 = (P2Choice, u32, Vec<u8>, Option<zeroize::Zeroizing<Vec<u8>>>);

fn want<'a>(cfg: &'a IkeConn, ike_group: ipc::ike::DhGroup) -> P2Want<'a> {
    P2Want {
        proto: cfg.proto,
        esp: &cfg.esp,
        pfs: cfg.pfs,
        ike_group,
        mode: cfg.mode,
        life_secs: cfg.sa_lifetime_secs,
    }
}

fn find(ps: &[RawPayload], t: PayloadType) -> Option<&RawPayload> {
    ps.iter().find(|p| p.ptype == t)
}

fn keys(
    prf: crate::crypto::prf::Prf,
    skeyid_d: &[u8],
    g_qm: Option<&[u8]>,
    ch: &P2Choice,
    spi: u32,
    ni: &[u8],
    nr: &[u8],
) -> DirKeys {
    let elen = match ch.proto {
        IpsecProto::Esp => enc_key_len(ch.encr),
        IpsecProto::Ah => 0,
    };
    let alen = auth_key_len(ch.integ);
    let km = qm_keymat(
        prf,
        skeyid_d,
        g_qm,
        Engine::proto_number(ch.proto),
        spi,
        ni,
        nr,
        elen + alen,
    );
    DirKeys {
        enc: SecretBytes::new(km.get(..elen).unwrap_or(&[]).to_vec()),
        auth: SecretBytes::new(km.get(elen..).unwrap_or(&[]).to_vec()),
    }
}

impl Engine {
    /// The `{ESP/NAT=>0x… <0x… xfrm=… NATOA=none NATD=… DPD=…}` part of pluto's log line.
    fn sa_words(&self, c: &Child) -> String {
        let Some(ch) = c.choice else {
            return String::new();
        };
        let p = match ch.proto {
            IpsecProto::Esp => "ESP",
            IpsecProto::Ah => "AH",
        };
        let nat = if c.encap_ports.is_some() { "/NAT" } else { "" };
        let xfrm = match (ch.proto, ch.integ) {
            (IpsecProto::Ah, i) => integ_name(i).to_string(),
            (_, IntegAlg::None) => esp_encr_name(ch.encr),
            (_, i) => format!("{}-{}", esp_encr_name(ch.encr), integ_name(i)),
        };
        let natd = if c.encap_ports.is_some() {
            c.peer.to_string()
        } else {
            "none".into()
        };
        let dpd = match self.ikes.get(&c.parent) {
            Some(s) if s.dpd.active => "active",
            Some(s) if s.vids.dpd => "passive",
            _ => "unsupported",
        };
        format!(
            "{{{p}{nat}=>{:#010x} <{:#010x} xfrm={xfrm} NATOA=none NATD={natd} DPD={dpd}}}",
            c.peer_spi, c.our_spi
        )
    }

    fn mode_word(c: &Child) -> &'static str {
        match c.choice.map(|x| x.mode) {
            Some(SaMode::Transport) => "transport mode",
            _ => "tunnel mode",
        }
    }

    /// Start Quick Mode for `name` under ISAKMP SA `ike`, for `pair` (a rekey takes the selectors
    /// of the SA it replaces; None: the conn's first pair).
    pub(super) fn start_qm(
        &mut self,
        name: &str,
        ike: u64,
        now: Instant,
        replaces: Option<u64>,
        pair: Option<(Ts, Ts)>,
    ) -> Result<u64, String> {
        if self.children.len() >= MAX_CHILDREN {
            return Err("too many IPsec SAs".into());
        }
        let cfg = self
            .conns
            .get(name)
            .map(|c| c.cfg.clone())
            .ok_or("no such conn")?;
        let (ike_group, auth, local, remote, natt, nat_remote) = {
            let s = self.ikes.get(&ike).ok_or("no ISAKMP SA")?;
            let c = s.choice.ok_or("ISAKMP SA without a proposal")?;
            (
                c.prop.dh,
                c.auth,
                s.local,
                s.remote,
                Self::natt_for_qm(s),
                s.nat_remote,
            )
        };
        let _ = nat_remote;
        let replaced_pair = replaces
            .and_then(|r| self.children.get(&r))
            .map(|c| (c.local_ts, c.remote_ts));
        let (lts, rts) = match replaced_pair.or(pair) {
            Some(p) => p,
            None => conn_pairs(&cfg)
                .into_iter()
                .next()
                .ok_or("no selector pair of one address family")?,
        };
        let w = want(&cfg, ike_group);
        let pfs = cfg
            .esp
            .first()
            .and_then(|e| pfs_group(e, cfg.pfs, ike_group));
        let spi = self.spi();
        let ni = self.random(NONCE_LEN);
        let dh = match pfs {
            Some(g) => Some(DhPrivate::generate(g, &mut *self.rng).map_err(|e| e.to_string())?),
            None => None,
        };
        let encap = proposals::encap_value(natt, cfg.mode);
        let sa = proposals::p2_sa(&w, spi, pfs, encap);
        if sa.proposals.iter().all(|p| p.transforms.is_empty()) {
            return Err("esp= has no proposal this engine can offer".into());
        }
        let msgid = self.msgid(ike);
        let serial = self.serial();
        let mut rest = vec![
            Payload::Sa(sa),
            Payload::Nonce(NoncePayload { data: ni.clone() }),
        ];
        if let Some(d) = &dh {
            rest.push(Payload::Ke(KePayload {
                data: d.public().to_vec(),
            }));
        }
        rest.push(Payload::Id(ts_payload(&lts)));
        rest.push(Payload::Id(ts_payload(&rts)));
        if natt.is_some() && cfg.mode == SaMode::Transport {
            let draft = natt == Some(super::natt::NattVersion::Draft02);
            rest.push(Payload::NatOa {
                draft,
                payload: NatOaPayload { addr: local.ip },
            });
            rest.push(Payload::NatOa {
                draft,
                payload: NatOaPayload { addr: remote.ip },
            });
        }
        let (first, rest_bytes) = wire::encode_chain(&rest);
        let s = self.ikes.get_mut(&ike).ok_or("no ISAKMP SA")?;
        s.note_msgid(msgid);
        let h1 = s
            .prf()
            .mac(s.skeyid_a(), &[&msgid.to_be_bytes(), &rest_bytes]);
        let plain = wire::hash_then(&h1, first, &rest_bytes);
        let (ct, iv) = s.encrypt_with(&s.p2_iv(msgid), &plain)?;
        let bytes = wire::encrypted_message(
            wire::header(
                s.icookie,
                s.rcookie,
                ExchangeType::QUICK,
                FLAG_ENCRYPTION,
                msgid,
            ),
            PayloadType::HASH,
            ct,
        );
        let out = Sent {
            local,
            remote,
            bytes,
        };
        let child = Child {
            serial,
            parent: ike,
            conn: name.to_string(),
            initiator: true,
            state: QmState::QuickI1,
            msgid,
            iv,
            ni,
            nr: Vec::new(),
            dh,
            pfs,
            our_spi: spi,
            peer_spi: 0,
            choice: None,
            local_ts: lts,
            remote_ts: rts,
            local_ip: local.ip,
            remote_ip: remote.ip,
            encap_ports: None,
            peer: remote,
            keys_in: DirKeys::default(),
            keys_out: DirKeys::default(),
            installed_in: false,
            installed_out: false,
            created: now,
            established_at: None,
            last_in: None,
            last_out: Some(out.clone()),
            retrans: Some(Retrans::new(now)),
            rekey_at: None,
            expire_at: None,
            retire_at: None,
            replaces,
            rekeying: false,
        };
        self.children.insert(serial, child);
        let policy = format!(
            "{}+{}{}{}+UP",
            auth.policy(),
            if cfg.proto == IpsecProto::Esp {
                "ENCRYPT"
            } else {
                "AUTHENTICATE"
            },
            if cfg.mode == SaMode::Tunnel {
                "+TUNNEL"
            } else {
                ""
            },
            if pfs.is_some() { "+PFS" } else { "" },
        );
        let t = tag(name, serial);
        let repl = replaces
            .map(|r| format!(" to replace #{r}"))
            .unwrap_or_default();
        self.info(format!(
            "{t}: initiating Quick Mode {policy}{repl} {{using isakmp#{ike}}}"
        ));
        self.info(format!("{t}: STATE_QUICK_I1: initiate"));
        self.send(&out);
        Ok(serial)
    }

    /// Rekey an IPsec SA we initiated: Quick Mode under a usable ISAKMP SA, or Main Mode first.
    pub(super) fn rekey_child(&mut self, serial: u64, now: Instant) {
        let Some(c) = self.children.get(&serial) else {
            return;
        };
        let conn = c.conn.clone();
        match self.find_isakmp_for(&conn, now) {
            Some(ike) => match self.start_qm(&conn, ike, now, Some(serial), None) {
                Ok(_) => {
                    if let Some(c) = self.children.get_mut(&serial) {
                        c.rekeying = true;
                    }
                }
                Err(e) => {
                    self.fail(&conn, format!("{}: cannot rekey: {e}", tag(&conn, serial)));
                    if let Some(c) = self.children.get_mut(&serial) {
                        c.rekey_at = Some(now + RETRY_DELAY);
                    }
                }
            },
            None => {
                if self.negotiating_ike(&conn).is_none() {
                    if let Err(e) = self.start_mm(&conn, now, None) {
                        self.fail(&conn, format!("{}: cannot rekey: {e}", tag(&conn, serial)));
                        if let Some(c) = self.children.get_mut(&serial) {
                            c.rekey_at = Some(now + RETRY_DELAY);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn qm_receive(
        &mut self,
        local: Endpoint,
        remote: Endpoint,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        let h = &dg.header;
        if h.message_id == 0 {
            return Err("Quick Mode message with message ID 0".into());
        }
        if !dg.encrypted() {
            return Err("cleartext Quick Mode message".into());
        }
        let ike = self
            .ikes
            .values()
            .find(|s| s.icookie == h.icookie && s.rcookie == h.rcookie)
            .map(|s| s.serial)
            .ok_or("Quick Mode for an unknown ISAKMP SA")?;
        let (conn, established) = self
            .ikes
            .get(&ike)
            .map(|s| (s.conn.clone(), s.established()))
            .ok_or("state vanished")?;
        if !established {
            return Err(format!(
                "{}: Quick Mode before the ISAKMP SA is established",
                tag(&conn, ike)
            ));
        }
        let existing = self
            .children
            .values()
            .find(|c| c.parent == ike && c.msgid == h.message_id)
            .map(|c| (c.serial, c.state, c.last_in.as_deref() == Some(bytes)));
        match existing {
            Some((serial, _, true)) => {
                if let Some(out) = self.children.get(&serial).and_then(|c| c.last_out.clone()) {
                    self.send(&out);
                }
                Ok(())
            }
            Some((serial, QmState::QuickI1, _)) => self.qm_i_qr1(serial, bytes, dg, now),
            Some((serial, QmState::QuickR1, _)) => self.qm_r_qi2(serial, bytes, dg, now),
            Some((serial, st, _)) => Err(format!(
                "{}: unexpected Quick Mode message in {st}",
                tag(&conn, serial)
            )),
            None => {
                if self
                    .ikes
                    .get(&ike)
                    .is_some_and(|s| s.msgids.contains(&h.message_id))
                {
                    return Err(format!(
                        "{}: Quick Mode with a used message ID {:#010x}",
                        tag(&conn, ike),
                        h.message_id
                    ));
                }
                self.qm_r_qi1(ike, local, remote, bytes, dg, now)
            }
        }
    }

    /// Decrypt with `iv`, parse, and check HASH(n) = prf(SKEYID_a, prefix | payloads after HASH).
    fn qm_open(
        &self,
        ike: u64,
        iv: &[u8],
        dg: &Datagram,
        prefix: &[&[u8]],
        only_hash: bool,
    ) -> Result<(Vec<RawPayload>, Vec<u8>), String> {
        let s = self.ikes.get(&ike).ok_or("no ISAKMP SA")?;
        let (pt, next_iv) = s.decrypt_with(iv, &dg.body)?;
        let ps = wire::parse_chain(dg.first, &pt, true).map_err(|e| e.to_string())?;
        let hash = match ps.first() {
            Some(p) if p.ptype == PayloadType::HASH => p.body().to_vec(),
            _ => return Err("first payload is not HASH".into()),
        };
        let rest = wire::after_first(&ps);
        if only_hash && !rest.is_empty() {
            return Err("unexpected payloads after HASH(3)".into());
        }
        let mut parts: Vec<&[u8]> = prefix.to_vec();
        parts.push(&rest);
        let want = s.prf().mac(s.skeyid_a(), &parts);
        if !ct_eq(&hash, &want) {
            return Err("HASH mismatch".into());
        }
        Ok((ps, next_iv))
    }

    fn send_info_notify(
        &mut self,
        ike: u64,
        proto: ProtocolId,
        spi: Vec<u8>,
        t: NotifyType,
        now: Instant,
    ) {
        let n = Payload::Notify(NotifyPayload {
            doi: Doi::IPSEC,
            protocol: proto,
            notify_type: t,
            spi,
            data: Vec::new(),
        });
        self.send_info(ike, vec![n], now);
    }

    /// May the peer's proposed selectors (its side `ci`, ours `cr`) run under this conn?
    fn ts_fit(cfg: &IkeConn, ci: &Ts, cr: &Ts, peer_behind_nat: bool) -> bool {
        let (lnets, rnets) = conn_nets(cfg);
        let side_ok = |nets: &[Net], t: &Ts, proto: u8, port: u16| {
            nets.iter().any(|n| net_contains(n, &t.net))
                && (proto == 0 || proto == t.proto)
                && (port == 0 || port == t.port)
        };
        let local_ok = side_ok(&lnets, cr, cfg.local.proto, cfg.local.port);
        let remote_ok = side_ok(&rnets, ci, cfg.remote.proto, cfg.remote.port)
            || (peer_behind_nat
                && cfg.remote.subnets.is_empty()
                && ci.net == Net::host(ci.net.addr)
                && ci.net.addr.is_ipv4() == cr.net.addr.is_ipv4());
        local_ok && remote_ok
    }

    fn qm_r_qi1(
        &mut self,
        ike: u64,
        local: Endpoint,
        remote: Endpoint,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        if self.children.len() >= MAX_CHILDREN {
            return Err("too many IPsec SAs".into());
        }
        let msgid = dg.header.message_id;
        let iv0 = self
            .ikes
            .get(&ike)
            .map(|s| s.p2_iv(msgid))
            .ok_or("no ISAKMP SA")?;
        let (ps, iv1) = self.qm_open(ike, &iv0, dg, &[&msgid.to_be_bytes()], false)?;
        let (ike_conn, ike_group, prf, peer_id, nat_remote, ike_local, ike_remote, local_id) = {
            let s = self.ikes.get_mut(&ike).ok_or("no ISAKMP SA")?;
            s.note_msgid(msgid);
            s.dpd.alive();
            if s.nat_in_use() && (s.remote != remote || s.local != local) {
                // Authenticated: the peer's NAT mapping changed; answer where it comes from now.
                s.remote = remote;
                s.local = local;
            }
            let c = s.choice.ok_or("no choice")?;
            (
                s.conn.clone(),
                c.prop.dh,
                s.prf(),
                s.peer_id.clone(),
                s.nat_remote,
                s.local,
                s.remote,
                s.local_id.clone(),
            )
        };
        let serial = self.serial();
        let t = tag(&ike_conn, serial);
        let sa = match find(&ps, PayloadType::SA).map(|p| &p.payload) {
            Some(Payload::Sa(sa)) => sa.clone(),
            _ => return Err(format!("{t}: Quick Mode I1 without an SA payload")),
        };
        let ni = match find(&ps, PayloadType::NONCE).map(|p| &p.payload) {
            Some(Payload::Nonce(n)) if (8..=256).contains(&n.data.len()) => n.data.clone(),
            _ => return Err(format!("{t}: Quick Mode I1 without a usable nonce")),
        };
        let ke = match find(&ps, PayloadType::KE).map(|p| &p.payload) {
            Some(Payload::Ke(k)) => Some(k.data.clone()),
            _ => None,
        };
        let id_ps: Vec<&RawPayload> = ps.iter().filter(|p| p.ptype == PayloadType::ID).collect();
        let (ci, cr, echo_ids) = match id_ps.as_slice() {
            [] => (
                Ts {
                    net: Net::host(ike_remote.ip),
                    proto: 0,
                    port: 0,
                },
                Ts {
                    net: Net::host(ike_local.ip),
                    proto: 0,
                    port: 0,
                },
                Vec::new(),
            ),
            [a, b] => {
                let (Payload::Id(ia), Payload::Id(ib)) = (&a.payload, &b.payload) else {
                    return Err("bad ID payloads".into());
                };
                let ci = ids::ts_of(ia).map_err(|e| format!("{t}: IDci: {e}"))?;
                let cr = ids::ts_of(ib).map_err(|e| format!("{t}: IDcr: {e}"))?;
                (ci, cr, vec![a.payload.clone(), b.payload.clone()])
            }
            _ => {
                return Err(format!(
                    "{t}: Quick Mode I1 with {} ID payloads",
                    id_ps.len()
                ))
            }
        };
        // Which conn: the ISAKMP SA's own, else another for the same hosts and IDs.
        let mut names = vec![ike_conn.clone()];
        let template_inst = self
            .conns
            .get(&ike_conn)
            .is_some_and(|c| c.template.is_some());
        if !template_inst {
            let mut others: Vec<(u64, String)> = self
                .conns
                .iter()
                .filter(|(n, c)| {
                    **n != ike_conn
                        && c.template.is_none()
                        && c.cfg.local.host.map(|h| h.to_canonical()) == Some(ike_local.ip)
                        && c.cfg.remote.host.map(|h| h.to_canonical()) == Some(ike_remote.ip)
                        && c.cfg.local.id == local_id
                        && peer_id
                            .as_ref()
                            .is_some_and(|p| ids::id_matches(&c.cfg.remote.id, p))
                })
                .map(|(n, c)| (c.order, n.clone()))
                .collect();
            others.sort();
            names.extend(others.into_iter().map(|(_, n)| n));
        }
        let fitting: Vec<(String, IkeConn)> = names
            .iter()
            .filter_map(|n| self.conns.get(n).map(|c| (n.clone(), c.cfg.clone())))
            .filter(|(_, cfg)| Self::ts_fit(cfg, &ci, &cr, nat_remote))
            .collect();
        if fitting.is_empty() {
            let (l, r) = self
                .conns
                .get(&ike_conn)
                .map(|c| conn_nets(&c.cfg))
                .unwrap_or_default();
            let show = |v: &[Net]| {
                v.iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            self.fail(
                &ike_conn,
                format!(
                    "{t}: no connection matches: Quick Mode from {} for {ci} -> {cr}; \"{ike_conn}\" has {} -> {}",
                    ike_remote,
                    show(&r),
                    show(&l)
                ),
            );
            self.send_info_notify(
                ike,
                ProtocolId::IPSEC_ESP,
                Vec::new(),
                NotifyType::INVALID_ID_INFORMATION,
                now,
            );
            return Ok(());
        }
        let mut picked = None;
        let mut first_err = None;
        for (n, cfg) in &fitting {
            match proposals::choose_p2(&sa, &want(cfg, ike_group)) {
                Ok(x) => {
                    picked = Some((n.clone(), cfg.clone(), x));
                    break;
                }
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some((n.clone(), e));
                    }
                }
            }
        }
        let Some((name, cfg, (mut reply, choice, peer_spi))) = picked else {
            if let Some((n, (offered, allows))) = first_err {
                self.fail(
                    &n,
                    format!(
                        "{}: no acceptable proposal: peer offered [{offered}]; conn allows [{allows}]",
                        tag(&n, serial)
                    ),
                );
            }
            self.send_info_notify(
                ike,
                ProtocolId::IPSEC_ESP,
                Vec::new(),
                NotifyType::NO_PROPOSAL_CHOSEN,
                now,
            );
            return Ok(());
        };
        let t = tag(&name, serial);
        // PFS.
        let (dh, g_qm) = match (choice.pfs, &ke) {
            (Some(g), Some(k)) => {
                if Some(k.len()) != public_len(g) {
                    return Err(format!("{t}: KE of {} bytes for {g:?}", k.len()));
                }
                let d = DhPrivate::generate(g, &mut *self.rng).map_err(|e| e.to_string())?;
                let z = d.shared(k).map_err(|e| format!("{t}: {e}"))?;
                (Some(d), Some(z))
            }
            (Some(_), None) => return Err(format!("{t}: PFS group proposed without a KE payload")),
            (None, Some(_)) => return Err(format!("{t}: KE payload without a PFS group")),
            (None, None) => (None, None),
        };
        let our_spi = self.spi();
        let nr = self.random(NONCE_LEN);
        if let Some(p) = reply.proposals.first_mut() {
            p.spi = our_spi.to_be_bytes().to_vec();
        }
        let skeyid_d = self
            .ikes
            .get(&ike)
            .map(|s| s.skeyid_d().to_vec())
            .unwrap_or_default();
        let g = g_qm.as_ref().map(|z| z.as_slice());
        let keys_in = keys(prf, &skeyid_d, g, &choice, our_spi, &ni, &nr);
        let keys_out = keys(prf, &skeyid_d, g, &choice, peer_spi, &ni, &nr);
        let mut rest = vec![
            Payload::Sa(reply),
            Payload::Nonce(NoncePayload { data: nr.clone() }),
        ];
        if let Some(d) = &dh {
            rest.push(Payload::Ke(KePayload {
                data: d.public().to_vec(),
            }));
        }
        rest.extend(echo_ids);
        if choice.shortened {
            rest.push(Payload::Notify(NotifyPayload {
                doi: Doi::IPSEC,
                protocol: match choice.proto {
                    IpsecProto::Esp => ProtocolId::IPSEC_ESP,
                    IpsecProto::Ah => ProtocolId::IPSEC_AH,
                },
                notify_type: NotifyType::RESPONDER_LIFETIME,
                spi: peer_spi.to_be_bytes().to_vec(),
                data: proposals::responder_lifetime_data(choice.life_secs),
            }));
        }
        let (first, rest_bytes) = wire::encode_chain(&rest);
        let s = self.ikes.get(&ike).ok_or("no ISAKMP SA")?;
        let h2 = s
            .prf()
            .mac(s.skeyid_a(), &[&msgid.to_be_bytes(), &ni, &rest_bytes]);
        let plain = wire::hash_then(&h2, first, &rest_bytes);
        let (ct, iv2) = s.encrypt_with(&iv1, &plain)?;
        let out = Sent {
            local: s.local,
            remote: s.remote,
            bytes: wire::encrypted_message(
                wire::header(
                    s.icookie,
                    s.rcookie,
                    ExchangeType::QUICK,
                    FLAG_ENCRYPTION,
                    msgid,
                ),
                PayloadType::HASH,
                ct,
            ),
        };
        let encap_ports = choice.encap.then(|| {
            let theirs = if s.remote.port == self.cfg.ike_port {
                self.cfg.natt_port
            } else {
                s.remote.port
            };
            (self.cfg.natt_port, theirs)
        });
        let child = Child {
            serial,
            parent: ike,
            conn: name.clone(),
            initiator: false,
            state: QmState::QuickR1,
            msgid,
            iv: iv2,
            ni,
            nr,
            dh,
            pfs: choice.pfs,
            our_spi,
            peer_spi,
            choice: Some(choice),
            local_ts: cr,
            remote_ts: ci,
            local_ip: s.local.ip,
            remote_ip: s.remote.ip,
            encap_ports,
            peer: s.remote,
            keys_in,
            keys_out,
            installed_in: true,
            installed_out: false,
            created: now,
            established_at: None,
            last_in: Some(bytes.to_vec()),
            last_out: Some(out.clone()),
            retrans: Some(Retrans::new(now)),
            rekey_at: None,
            expire_at: None,
            retire_at: None,
            replaces: None,
            rekeying: false,
        };
        self.children.insert(serial, child);
        if choice.shortened {
            self.info(format!(
                "{t}: the peer proposed a longer IPsec SA lifetime: using {} s (RESPONDER-LIFETIME sent)",
                choice.life_secs
            ));
        }
        let _ = cfg;
        self.update_fwd(&name);
        self.send(&out);
        self.info(format!(
            "{t}: STATE_QUICK_R1: sent QR1, inbound IPsec SA installed, expecting QI2"
        ));
        Ok(())
    }

    fn qm_i_qr1(
        &mut self,
        serial: u64,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        let (ike, iv, ni, msgid, conn, pfs) = {
            let c = self.children.get(&serial).ok_or("state vanished")?;
            (
                c.parent,
                c.iv.clone(),
                c.ni.clone(),
                c.msgid,
                c.conn.clone(),
                c.pfs,
            )
        };
        let t = tag(&conn, serial);
        let (ps, iv1) = self
            .qm_open(ike, &iv, dg, &[&msgid.to_be_bytes(), &ni], false)
            .map_err(|e| format!("{t}: QR1: {e}"))?;
        let cfg = self
            .conns
            .get(&conn)
            .map(|c| c.cfg.clone())
            .ok_or("conn vanished")?;
        let (ike_group, prf, skeyid_d) = {
            let s = self.ikes.get_mut(&ike).ok_or("no ISAKMP SA")?;
            s.dpd.alive();
            (
                s.choice.map(|c| c.prop.dh).ok_or("no choice")?,
                s.prf(),
                s.skeyid_d().to_vec(),
            )
        };
        let r = (|| -> Result<Qr1, String> {
            let sa = match find(&ps, PayloadType::SA).map(|p| &p.payload) {
                Some(Payload::Sa(sa)) => sa,
                _ => return Err("QR1 without an SA payload".into()),
            };
            let (mut choice, spi) = proposals::check_p2_reply(sa, &want(&cfg, ike_group), pfs)?;
            let nr = match find(&ps, PayloadType::NONCE).map(|p| &p.payload) {
                Some(Payload::Nonce(n)) if (8..=256).contains(&n.data.len()) => n.data.clone(),
                _ => return Err("QR1 without a usable nonce".into()),
            };
            let g_qm = match (pfs, find(&ps, PayloadType::KE).map(|p| &p.payload)) {
                (Some(_), Some(Payload::Ke(k))) => {
                    let c = self.children.get(&serial).ok_or("state vanished")?;
                    let d = c.dh.as_ref().ok_or("no PFS key")?;
                    Some(d.shared(&k.data).map_err(|e| e.to_string())?)
                }
                (Some(_), _) => return Err("PFS without a KE payload in QR1".into()),
                (None, Some(_)) => return Err("KE payload in QR1 without PFS".into()),
                (None, None) => None,
            };
            let id_ps: Vec<&Payload> = ps
                .iter()
                .filter(|p| p.ptype == PayloadType::ID)
                .map(|p| &p.payload)
                .collect();
            if let [Payload::Id(a), Payload::Id(b)] = id_ps.as_slice() {
                let c = self.children.get(&serial).ok_or("state vanished")?;
                if ids::ts_of(a).ok() != Some(c.local_ts) || ids::ts_of(b).ok() != Some(c.remote_ts)
                {
                    return Err("the responder's IDci/IDcr differ from ours".into());
                }
            } else if !id_ps.is_empty() {
                return Err("QR1 with an odd number of ID payloads".into());
            }
            for p in &ps {
                if let Payload::Notify(n) = &p.payload {
                    if n.notify_type == NotifyType::RESPONDER_LIFETIME {
                        let (secs, kb) = proposals::responder_lifetime(&n.data);
                        if let Some(s) = secs {
                            choice.life_secs = choice.life_secs.min(s.max(1));
                        }
                        if let Some(k) = kb {
                            choice.life_kb = if choice.life_kb == 0 {
                                k
                            } else {
                                choice.life_kb.min(k)
                            };
                        }
                    }
                }
            }
            Ok((choice, spi, nr, g_qm))
        })();
        let (choice, peer_spi, nr, g_qm) = match r {
            Ok(x) => x,
            Err(e) => {
                self.fail(&conn, format!("{t}: {e}"));
                self.qm_failed(serial, now);
                return Ok(());
            }
        };
        let g = g_qm.as_ref().map(|z| z.as_slice());
        let Some(c) = self.children.get(&serial) else {
            return Ok(());
        };
        let our_spi = c.our_spi;
        let keys_in = keys(prf, &skeyid_d, g, &choice, our_spi, &c.ni, &nr);
        let keys_out = keys(prf, &skeyid_d, g, &choice, peer_spi, &c.ni, &nr);
        let s = self.ikes.get(&ike).ok_or("no ISAKMP SA")?;
        let h3 = s
            .prf()
            .mac(s.skeyid_a(), &[&[0u8], &msgid.to_be_bytes(), &c.ni, &nr]);
        let plain = wire::hash_then(&h3, PayloadType::NONE, &[]);
        let (ct, iv2) = s.encrypt_with(&iv1, &plain)?;
        let out = Sent {
            local: s.local,
            remote: s.remote,
            bytes: wire::encrypted_message(
                wire::header(
                    s.icookie,
                    s.rcookie,
                    ExchangeType::QUICK,
                    FLAG_ENCRYPTION,
                    msgid,
                ),
                PayloadType::HASH,
                ct,
            ),
        };
        let encap_ports = choice.encap.then(|| {
            let theirs = if s.remote.port == self.cfg.ike_port {
                self.cfg.natt_port
            } else {
                s.remote.port
            };
            (self.cfg.natt_port, theirs)
        });
        let (local_ip, remote_ip, peer) = (s.local.ip, s.remote.ip, s.remote);
        let rekey_at = cfg.rekey.then(|| {
            self.rekey_time(
                now,
                choice.life_secs,
                cfg.rekey_margin_secs,
                cfg.rekey_fuzz_percent,
            )
        });
        let Some(c) = self.children.get_mut(&serial) else {
            return Ok(());
        };
        c.iv = iv2;
        c.nr = nr;
        c.peer_spi = peer_spi;
        c.choice = Some(choice);
        c.keys_in = keys_in;
        c.keys_out = keys_out;
        c.encap_ports = encap_ports;
        c.local_ip = local_ip;
        c.remote_ip = remote_ip;
        c.peer = peer;
        c.installed_in = true;
        c.installed_out = true;
        c.state = QmState::QuickI2;
        c.established_at = Some(now);
        c.expire_at = Some(now + Duration::from_secs(choice.life_secs));
        c.rekey_at = rekey_at;
        c.last_in = Some(bytes.to_vec());
        c.last_out = Some(out.clone());
        c.retrans = None;
        let replaces = c.replaces;
        self.retire_older(serial, replaces, now);
        self.retire_duplicates(&conn, now);
        if let Some(cn) = self.conns.get_mut(&conn) {
            cn.tries = 0;
            cn.retry_at = None;
        }
        self.update_fwd(&conn);
        self.send(&out);
        let words = self
            .children
            .get(&serial)
            .map(|c| (Self::mode_word(c), self.sa_words(c)))
            .unwrap_or_default();
        self.info(format!(
            "{t}: STATE_QUICK_I2: sent QI2, IPsec SA established {} {}",
            words.0, words.1
        ));
        Ok(())
    }

    /// A new IPsec SA of ours is in: the SAs it replaces go after [`RETIRE_GRACE`].
    fn retire_older(&mut self, serial: u64, replaces: Option<u64>, now: Instant) {
        let Some(new) = self.children.get(&serial) else {
            return;
        };
        let (conn, lts, rts) = (new.conn.clone(), new.local_ts, new.remote_ts);
        let old: Vec<u64> = self
            .children
            .values()
            .filter(|c| {
                c.serial != serial
                    && c.conn == conn
                    && c.established()
                    && c.retire_at.is_none()
                    && (Some(c.serial) == replaces || (c.local_ts == lts && c.remote_ts == rts))
            })
            .map(|c| c.serial)
            .collect();
        for o in old {
            if let Some(c) = self.children.get_mut(&o) {
                c.retire_at = Some(now + RETIRE_GRACE);
                c.rekey_at = None;
            }
        }
    }

    /// Both ends initiated at once: of two IPsec SAs with the same selectors, one started by
    /// each end within [`DUPLICATE_WINDOW`], both ends keep the one whose initiator nonce is greater and retire
    /// the other, so that both use the same SA pair.
    fn retire_duplicates(&mut self, conn: &str, now: Instant) {
        let live: Vec<(u64, Instant, Vec<u8>, Ts, Ts, bool)> = self
            .children
            .values()
            .filter(|c| c.conn == conn && c.established() && c.retire_at.is_none())
            .map(|c| {
                (
                    c.serial,
                    c.created,
                    c.ni.clone(),
                    c.local_ts,
                    c.remote_ts,
                    c.initiator,
                )
            })
            .collect();
        let mut losers = Vec::new();
        for (i, x) in live.iter().enumerate() {
            for y in live.iter().skip(i + 1) {
                let close = if x.1 > y.1 { x.1 - y.1 } else { y.1 - x.1 } <= DUPLICATE_WINDOW;
                // One started by each end (a rekey has the same initiator as what it replaces).
                if close && x.5 != y.5 && x.3 == y.3 && x.4 == y.4 {
                    let (win, lose) = if x.2 > y.2 { (x.0, y.0) } else { (y.0, x.0) };
                    losers.push((lose, win));
                }
            }
        }
        for (lose, win) in losers {
            if let Some(c) = self.children.get_mut(&lose) {
                if c.retire_at.is_none() {
                    c.retire_at = Some(now + RETIRE_GRACE);
                    c.rekey_at = None;
                    let t = tag(conn, lose);
                    self.info(format!(
                        "{t}: both ends negotiated at once: keeping #{win}, retiring this one"
                    ));
                }
            }
        }
    }

    fn qm_r_qi2(
        &mut self,
        serial: u64,
        bytes: &[u8],
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        let (ike, iv, ni, nr, msgid, conn) = {
            let c = self.children.get(&serial).ok_or("state vanished")?;
            (
                c.parent,
                c.iv.clone(),
                c.ni.clone(),
                c.nr.clone(),
                c.msgid,
                c.conn.clone(),
            )
        };
        let t = tag(&conn, serial);
        self.qm_open(
            ike,
            &iv,
            dg,
            &[&[0u8], &msgid.to_be_bytes(), &ni, &nr],
            true,
        )
        .map_err(|e| format!("{t}: QI2: {e}"))?;
        if let Some(s) = self.ikes.get_mut(&ike) {
            s.dpd.alive();
        }
        let Some(c) = self.children.get_mut(&serial) else {
            return Ok(());
        };
        c.state = QmState::QuickR2;
        c.installed_out = true;
        c.established_at = Some(now);
        let life = c.choice.map_or(28800, |x| x.life_secs);
        c.expire_at = Some(now + Duration::from_secs(life));
        c.last_in = Some(bytes.to_vec());
        c.last_out = None;
        c.retrans = None;
        self.retire_duplicates(&conn, now);
        self.update_fwd(&conn);
        let words = self
            .children
            .get(&serial)
            .map(|c| (Self::mode_word(c), self.sa_words(c)))
            .unwrap_or_default();
        self.info(format!(
            "{t}: STATE_QUICK_R2: IPsec SA established {} {}",
            words.0, words.1
        ));
        Ok(())
    }

    /// A Quick Mode we started failed: drop it; a rekey tries again later, a first attempt counts
    /// against keyingtries.
    pub(super) fn qm_failed(&mut self, serial: u64, now: Instant) {
        let Some(c) = self.children.remove(&serial) else {
            return;
        };
        if c.installed_in || c.installed_out {
            self.update_fwd(&c.conn);
        }
        if let Some(old) = c.replaces.and_then(|o| self.children.get_mut(&o)) {
            old.rekeying = false;
            old.rekey_at = Some(now + RETRY_DELAY);
            return;
        }
        if c.initiator && !self.missing_pairs(&c.conn).is_empty() {
            self.attempt_failed(&c.conn, now, RETRY_DELAY);
        }
    }
}
