//! Informational exchanges: DELETE and notifications, sent and received, and the deletion of
//! states.

use super::engine::{tag, Engine};
use super::ike_sa::Sent;
use super::wire::{self, Datagram};
use crate::crypto::ct_eq;
use crate::msgs::isakmp::{
    DeletePayload, Doi, ExchangeType, NotifyPayload, NotifyType, Payload, PayloadType, ProtocolId,
    FLAG_ENCRYPTION,
};
use ipc::ike::Endpoint;
use ipc::sa::IpsecProto;
use std::time::Instant;

impl Engine {
    /// Send an encrypted informational exchange under an established ISAKMP SA.
    pub(super) fn send_info(&mut self, ike: u64, payloads: Vec<Payload>, _now: Instant) {
        let Some(s) = self.ikes.get(&ike) else { return };
        if !s.established() {
            return;
        }
        let msgid = self.msgid(ike);
        let Some(s) = self.ikes.get_mut(&ike) else {
            return;
        };
        s.note_msgid(msgid);
        let (first, rest) = wire::encode_chain(&payloads);
        let h = s.prf().mac(s.skeyid_a(), &[&msgid.to_be_bytes(), &rest]);
        let plain = wire::hash_then(&h, first, &rest);
        let Ok((ct, _)) = s.encrypt_with(&s.p2_iv(msgid), &plain) else {
            return;
        };
        let out = Sent {
            local: s.local,
            remote: s.remote,
            bytes: wire::encrypted_message(
                wire::header(
                    s.icookie,
                    s.rcookie,
                    ExchangeType::INFO,
                    FLAG_ENCRYPTION,
                    msgid,
                ),
                PayloadType::HASH,
                ct,
            ),
        };
        self.send(&out);
    }

    /// Forget an IPsec SA pair; `tell` sends a DELETE for our inbound SPI first. The caller
    /// updates fwd.
    pub(super) fn delete_child(&mut self, serial: u64, now: Instant, tell: bool) {
        let Some(c) = self.children.remove(&serial) else {
            return;
        };
        if !tell || !(c.installed_in || c.installed_out) {
            return;
        }
        let Some(ch) = c.choice else { return };
        let ike = match self.ikes.get(&c.parent) {
            Some(s) if s.established() && !s.deleting => Some(c.parent),
            _ => self.find_isakmp_for(&c.conn, now),
        };
        let Some(ike) = ike else { return };
        let protocol = match ch.proto {
            IpsecProto::Esp => ProtocolId::IPSEC_ESP,
            IpsecProto::Ah => ProtocolId::IPSEC_AH,
        };
        self.info(format!(
            "{}: deleting IPsec SA ({:#010x}/{:#010x}): sending Delete SA payload under #{ike}",
            tag(&c.conn, serial),
            c.our_spi,
            c.peer_spi
        ));
        let d = Payload::Delete(DeletePayload {
            doi: Doi::IPSEC,
            protocol,
            spi_size: 4,
            spis: vec![c.our_spi.to_be_bytes().to_vec()],
        });
        self.send_info(ike, vec![d], now);
    }

    /// Forget an ISAKMP SA; `tell` sends a DELETE when it is established. Quick Modes still
    /// negotiating under it go too.
    pub(super) fn delete_ike(&mut self, serial: u64, tell: bool) {
        let now = self
            .ikes
            .get(&serial)
            .map(|s| s.created)
            .unwrap_or_else(Instant::now);
        if tell && self.ikes.get(&serial).is_some_and(|s| s.established()) {
            let spi = self
                .ikes
                .get(&serial)
                .map(|s| s.cookies())
                .unwrap_or_default();
            let d = Payload::Delete(DeletePayload {
                doi: Doi::IPSEC,
                protocol: ProtocolId::ISAKMP,
                spi_size: 16,
                spis: vec![spi],
            });
            self.send_info(serial, vec![d], now);
        }
        let Some(s) = self.ikes.remove(&serial) else {
            return;
        };
        if let Some((t, _)) = s.waiting {
            self.tickets.remove(&t);
        }
        let negotiating: Vec<u64> = self
            .children
            .values()
            .filter(|c| c.parent == serial && !c.established())
            .map(|c| c.serial)
            .collect();
        let mut touched = false;
        for c in negotiating {
            if let Some(ch) = self.children.remove(&c) {
                touched |= ch.installed_in || ch.installed_out;
                if let Some(old) = ch.replaces.and_then(|o| self.children.get_mut(&o)) {
                    old.rekeying = false;
                }
            }
        }
        if touched {
            self.update_fwd(&s.conn);
        }
        self.gc_instance(&s.conn);
    }

    pub(super) fn info_receive(
        &mut self,
        _local: Endpoint,
        remote: Endpoint,
        dg: &Datagram,
        now: Instant,
    ) -> Result<(), String> {
        let h = &dg.header;
        let ike = self
            .find_ike_for_info(&h.icookie, &h.rcookie, remote.ip)
            .ok_or("informational message for an unknown ISAKMP SA")?;
        let (conn, established) = self
            .ikes
            .get(&ike)
            .map(|s| (s.conn.clone(), s.established()))
            .ok_or("state vanished")?;
        let t = tag(&conn, ike);
        if !dg.encrypted() {
            if established {
                return Err(format!(
                    "{t}: cleartext informational message after phase 1 ignored"
                ));
            }
            for p in &dg.payloads {
                if let Payload::Notify(n) = &p.payload {
                    self.fail(
                        &conn,
                        format!(
                            "{t}: peer {remote} sent {:?} (in the clear, so not authenticated)",
                            n.notify_type
                        ),
                    );
                }
            }
            return Ok(());
        }
        if !established {
            return Err(format!(
                "{t}: encrypted informational message before phase 1 is complete"
            ));
        }
        let msgid = h.message_id;
        if msgid == 0 {
            return Err(format!(
                "{t}: encrypted informational message with message ID 0"
            ));
        }
        let (ps, float) = {
            let s = self.ikes.get(&ike).ok_or("state vanished")?;
            if s.msgids.contains(&msgid) {
                return Err(format!("{t}: informational message with a used message ID"));
            }
            let (pt, _) = s.decrypt_with(&s.p2_iv(msgid), &dg.body)?;
            let ps = wire::parse_chain(dg.first, &pt, true).map_err(|e| format!("{t}: {e}"))?;
            let hash = match ps.first() {
                Some(p) if p.ptype == PayloadType::HASH => p.body().to_vec(),
                _ => return Err(format!("{t}: informational message without HASH(1)")),
            };
            let want = s.prf().mac(
                s.skeyid_a(),
                &[&msgid.to_be_bytes(), &wire::after_first(&ps)],
            );
            if !ct_eq(&hash, &want) {
                return Err(format!("{t}: informational message with a bad HASH(1)"));
            }
            (ps, s.nat_in_use() && s.remote != remote)
        };
        if let Some(s) = self.ikes.get_mut(&ike) {
            s.note_msgid(msgid);
            s.dpd.alive();
            if float {
                // The peer's NAT mapping changed: answer where it now comes from.
                s.remote = remote;
            }
        }
        for p in ps.iter().skip(1) {
            match &p.payload {
                Payload::Notify(n) => self.info_notify(ike, n, remote, now),
                Payload::Delete(d) => self.info_delete(ike, d, now),
                _ => {}
            }
        }
        Ok(())
    }

    fn info_notify(&mut self, ike: u64, n: &NotifyPayload, remote: Endpoint, now: Instant) {
        let Some(s) = self.ikes.get(&ike) else { return };
        let (conn, cookies) = (s.conn.clone(), s.cookies());
        let t = tag(&conn, ike);
        match n.notify_type {
            NotifyType::R_U_THERE => {
                if let Some(seq) = n.dpd_sequence() {
                    if n.spi == cookies {
                        let ack = Payload::Notify(NotifyPayload {
                            doi: Doi::IPSEC,
                            protocol: ProtocolId::ISAKMP,
                            notify_type: NotifyType::R_U_THERE_ACK,
                            spi: cookies,
                            data: seq.to_be_bytes().to_vec(),
                        });
                        self.send_info(ike, vec![ack], now);
                    }
                }
            }
            NotifyType::R_U_THERE_ACK => {
                if let Some(seq) = n.dpd_sequence() {
                    self.dpd_ack(ike, seq);
                }
            }
            NotifyType::INITIAL_CONTACT => {
                self.info(format!("{t}: peer {remote} sent INITIAL_CONTACT"));
            }
            other if other.0 < 16384 => {
                self.fail(
                    &conn,
                    format!("{t}: peer {remote} sent notification {other:?}"),
                );
            }
            other => self.info(format!("{t}: peer {remote} sent notification {other:?}")),
        }
    }

    fn info_delete(&mut self, ike: u64, d: &DeletePayload, now: Instant) {
        let Some(s) = self.ikes.get(&ike) else { return };
        let (conn, peer_ip) = (s.conn.clone(), s.remote.ip);
        let t = tag(&conn, ike);
        match d.protocol {
            ProtocolId::ISAKMP => {
                for spi in &d.spis {
                    let victim = self
                        .ikes
                        .values()
                        .find(|x| x.remote.ip == peer_ip && x.cookies() == *spi)
                        .map(|x| (x.serial, x.conn.clone()));
                    if let Some((v, vc)) = victim {
                        self.info(format!(
                            "{t}: received Delete SA payload: deleting ISAKMP State #{v}"
                        ));
                        self.delete_ike(v, false);
                        self.gc_instance(&vc);
                    }
                }
            }
            ProtocolId::IPSEC_ESP | ProtocolId::IPSEC_AH => {
                let proto = if d.protocol == ProtocolId::IPSEC_ESP {
                    IpsecProto::Esp
                } else {
                    IpsecProto::Ah
                };
                let mut conns = Vec::new();
                for spi in &d.spis {
                    let Ok(b) = <[u8; 4]>::try_from(spi.as_slice()) else {
                        continue;
                    };
                    let spi = u32::from_be_bytes(b);
                    let victim = self
                        .children
                        .values()
                        .find(|c| {
                            c.remote_ip == peer_ip
                                && c.peer_spi == spi
                                && c.choice.is_some_and(|x| x.proto == proto)
                        })
                        .map(|c| (c.serial, c.conn.clone()));
                    if let Some((v, vc)) = victim {
                        self.info(format!(
                            "{}: received Delete SA({spi:#010x}) payload: deleting IPsec State #{v}",
                            tag(&vc, ike)
                        ));
                        // The peer deleted both directions; if it was a rekey's old SA, nothing
                        // else changes.
                        self.delete_child(v, now, false);
                        if !conns.contains(&vc) {
                            conns.push(vc);
                        }
                    }
                }
                for c in conns {
                    self.update_fwd(&c);
                    self.gc_instance(&c);
                }
            }
            other => {
                self.warn(format!(
                    "{t}: Delete SA payload for protocol {other:?} ignored"
                ));
            }
        }
    }
}
