//! Dead Peer Detection (RFC 3706): R-U-THERE every `dpddelay` while established, the peer
//! declared dead after `dpdtimeout` without an answer, then `dpdaction`.

use super::engine::{tag, Engine};
use crate::msgs::isakmp::{Doi, NotifyPayload, NotifyType, Payload, ProtocolId};
use ipc::ike::DpdAction;
use ipc::policy::RemoveMode;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct DpdState {
    /// We send R-U-THERE (dpd= set and the peer sent the DPD vendor ID).
    pub active: bool,
    pub delay: Duration,
    pub timeout: Duration,
    pub next_at: Option<Instant>,
    pub seq: u32,
    /// The oldest R-U-THERE not answered yet.
    pub waiting_since: Option<Instant>,
}

impl DpdState {
    /// Anything authenticated from the peer shows it is alive.
    pub fn alive(&mut self) {
        self.waiting_since = None;
    }

    pub fn deadline(&self) -> Option<Instant> {
        if !self.active {
            return None;
        }
        let dead = self.waiting_since.map(|w| w + self.timeout);
        match (self.next_at, dead) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Engine {
    pub(super) fn dpd_start(&mut self, ike: u64, now: Instant) {
        let Some(s) = self.ikes.get(&ike) else { return };
        let spec = self.conns.get(&s.conn).and_then(|c| c.cfg.dpd);
        let peer = s.vids.dpd;
        let seq = self.rng.next_u32() & 0x7fff_ffff;
        let Some(s) = self.ikes.get_mut(&ike) else {
            return;
        };
        if let (Some(d), true) = (spec, peer) {
            let delay = Duration::from_secs(d.delay_secs.max(1));
            s.dpd = DpdState {
                active: true,
                delay,
                timeout: Duration::from_secs(d.timeout_secs.max(1)),
                next_at: Some(now + delay),
                seq,
                waiting_since: None,
            };
        } else if spec.is_some() {
            let t = tag(&s.conn, ike);
            self.info(format!(
                "{t}: the peer did not send the DPD vendor ID: no dead peer detection"
            ));
        }
    }

    pub(super) fn dpd_ack(&mut self, ike: u64, seq: u32) {
        if let Some(s) = self.ikes.get_mut(&ike) {
            if s.dpd.active && seq == s.dpd.seq {
                s.dpd.waiting_since = None;
            }
        }
    }

    pub(super) fn dpd_tick(&mut self, ike: u64, now: Instant) {
        let Some(s) = self.ikes.get_mut(&ike) else {
            return;
        };
        if !s.dpd.active || !s.established() || s.deleting {
            return;
        }
        if s.dpd
            .waiting_since
            .is_some_and(|w| now >= w + s.dpd.timeout)
        {
            self.dpd_dead(ike, now);
            return;
        }
        if s.dpd.next_at.is_some_and(|n| now >= n) {
            s.dpd.seq = s.dpd.seq.wrapping_add(1);
            s.dpd.waiting_since.get_or_insert(now);
            s.dpd.next_at = Some(now + s.dpd.delay);
            let n = Payload::Notify(NotifyPayload {
                doi: Doi::IPSEC,
                protocol: ProtocolId::ISAKMP,
                notify_type: NotifyType::R_U_THERE,
                spi: s.cookies(),
                data: s.dpd.seq.to_be_bytes().to_vec(),
            });
            self.send_info(ike, vec![n], now);
        }
    }

    fn dpd_dead(&mut self, ike: u64, now: Instant) {
        let Some(s) = self.ikes.get(&ike) else { return };
        let conn = s.conn.clone();
        let t = tag(&conn, ike);
        let action = self
            .conns
            .get(&conn)
            .and_then(|c| c.cfg.dpd.map(|d| d.action))
            .unwrap_or(DpdAction::Clear);
        let instance = self.conns.get(&conn).is_some_and(|c| c.template.is_some());
        self.fail(
            &conn,
            format!("{t}: DPD: No response from peer - declaring peer dead"),
        );
        self.delete_conn_states(&conn, now, false);
        if instance {
            self.info(format!("{t}: DPD: deleting the instance"));
            if self.conns.get(&conn).is_some_and(|c| c.fwd_installed) {
                self.actions.push_back(crate::actions::Action::Remove {
                    conn: conn.clone(),
                    mode: RemoveMode::Everything,
                });
            }
            self.conns.remove(&conn);
            return;
        }
        match action {
            DpdAction::Clear => {
                self.info(format!("{t}: DPD: clearing the connection"));
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.want_up = false;
                }
                self.update_fwd(&conn);
            }
            DpdAction::Hold => {
                self.info(format!("{t}: DPD: putting the connection into %trap"));
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.want_up = false;
                    c.hold_trap = true;
                }
                self.update_fwd(&conn);
            }
            DpdAction::Restart => {
                self.info(format!("{t}: DPD: restarting the connection"));
                self.update_fwd(&conn);
                if let Err(e) = self.up(&conn, now, true) {
                    self.warn(format!("{t}: DPD restart: {e}"));
                }
            }
        }
    }
}
