//! Inbound: a packet from the wire → the SA by (SPI, protocol, destination) → open (replay
//! window and ICV before decryption) → for AH with next header 50, the ESP SA next → the inner
//! packet (tunnel mode: checked as IPv4/IPv6; transport mode: an IP header rebuilt in front of
//! the payload so the kernel delivers it locally) → the inbound policy check: the inner flow must
//! match an inbound Protect policy listing exactly the SAs the packet came through.
//!
//! A packet that fails changes nothing but the drop counter and its SA's error counter.

use super::control::Codec;
use super::drops::DropReason;
use super::engine::Engine;
use super::tables::{lock, Tables};
use super::{Inbound, Rx, MAX_PACKET};
use crate::esp::ip::{
    self, Ipv4Header, Ipv6Header, IPV4_HDR_LEN, IPV6_HDR_LEN, PROTO_AH, PROTO_ESP, PROTO_UDP,
};
use crate::esp::{peek_spi, EspError, NH_IPV4, NH_IPV6, NH_NO_NEXT};
use crate::sad::{IpsecProto, SaKey, MAX_RESERVED_SPI};
use crate::spd::{self, Flow};
use ipc::policy::PolicyAction;
use ipc::sa::{Direction, SaMode};
use std::net::IpAddr;
use std::ops::Range;
use std::time::Instant;

type R<T> = Result<T, DropReason>;

/// The SAs a packet came through, outermost first.
#[derive(Default)]
struct Path {
    sas: [Option<SaKey>; 2],
}

impl Path {
    fn push(&mut self, k: SaKey) {
        if let Some(slot) = self.sas.iter_mut().find(|s| s.is_none()) {
            *slot = Some(k);
        }
    }
    fn iter(&self) -> impl Iterator<Item = &SaKey> + '_ {
        self.sas.iter().flatten()
    }
}

/// What opening left: the mode of the innermost SA, its next header, the payload range.
struct Opened {
    mode: SaMode,
    next_header: u8,
    payload: Range<usize>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at.checked_add(2)?) {
        Some(&[hi, lo]) => Some(u16::from_be_bytes([hi, lo])),
        _ => None,
    }
}

impl Engine {
    /// A packet from the wire. `rx.proto` 50: `buf[pkt]` is the ESP packet (from the SPI on);
    /// 17: the same, received in UDP 4500; 51: the whole IP packet from the outer IP header on.
    /// Never panics, never allocates.
    pub fn inbound(&self, rx: Rx, buf: &mut [u8], pkt: Range<usize>, now: Instant) -> Inbound {
        let mut dead: [Option<SaKey>; 2] = [None; 2];
        let res = {
            let t = self.read();
            self.inbound_locked(&t, rx, buf, pkt, now, &mut dead)
        };
        self.reap(&dead);
        match res {
            Ok(range) => Inbound::ToTun { range },
            Err(r) => {
                self.drops.count(r);
                Inbound::Drop(r)
            }
        }
    }

    fn inbound_locked(
        &self,
        t: &Tables,
        rx: Rx,
        buf: &mut [u8],
        pkt: Range<usize>,
        now: Instant,
        dead: &mut [Option<SaKey>; 2],
    ) -> R<Range<usize>> {
        if pkt.start > pkt.end || pkt.end > buf.len() || pkt.len() > MAX_PACKET {
            return Err(DropReason::Malformed);
        }
        let src = rx.src.to_canonical();
        let dst = rx.dst.to_canonical();
        let mut path = Path::default();
        let opened = match rx.proto {
            PROTO_ESP => self.open_esp(t, buf, pkt, dst, false, now, &mut path, dead)?,
            PROTO_UDP => {
                if rx.udp.is_none() {
                    return Err(DropReason::Malformed);
                }
                self.open_esp(t, buf, pkt, dst, true, now, &mut path, dead)?
            }
            PROTO_AH => self.open_ah(t, buf, pkt, dst, now, &mut path, dead)?,
            _ => return Err(DropReason::Malformed),
        };
        let range = inner_packet(buf, opened, src, dst)?;
        let data = buf.get(range.clone()).ok_or(DropReason::BadInner)?;
        let flow = Flow::from_ip_packet(data).map_err(|_| DropReason::BadInner)?;
        let (pid, _) = t
            .spd
            .lookup(spd::Direction::In, &flow)
            .ok_or(DropReason::PolicyMismatch)?;
        let meta = t.policies.get(&pid).ok_or(DropReason::PolicyMismatch)?;
        if !matches!(meta.spec.action, PolicyAction::Protect { .. })
            || meta.bundle.len() != path.iter().count()
            || !path.iter().all(|k| meta.bundle.iter().any(|b| b == k))
        {
            return Err(DropReason::PolicyMismatch);
        }
        meta.count(range.len());
        Ok(range)
    }

    #[allow(clippy::too_many_arguments)]
    fn open_esp(
        &self,
        t: &Tables,
        buf: &mut [u8],
        esp: Range<usize>,
        dst: IpAddr,
        encap: bool,
        now: Instant,
        path: &mut Path,
        dead: &mut [Option<SaKey>; 2],
    ) -> R<Opened> {
        let data = buf.get_mut(esp.clone()).ok_or(DropReason::Malformed)?;
        let spi = peek_spi(data).ok_or(DropReason::Truncated)?;
        if spi <= MAX_RESERVED_SPI {
            return Err(DropReason::NoSa);
        }
        let key = SaKey {
            spi,
            proto: IpsecProto::Esp,
            dst,
        };
        let slot = t.sad.get(&key).ok_or(DropReason::NoSa)?;
        if slot.spec.direction != Direction::In {
            return Err(DropReason::NoSa);
        }
        if slot.spec.encap.is_some() != encap {
            return Err(DropReason::EncapMismatch);
        }
        if !slot.alive(now) {
            return Err(DropReason::HardExpired);
        }
        let mut st = lock(&slot.state);
        let Codec::Esp(sa) = &mut st.codec else {
            return Err(DropReason::NoSa);
        };
        let o = match sa.open(data) {
            Ok(o) => o,
            Err(e) => {
                if e != EspError::LifetimeExpired {
                    st.errors += 1;
                }
                return Err(e.into());
            }
        };
        if self.after_use(slot, &mut st) {
            dead[1] = Some(key);
        }
        path.push(key);
        Ok(Opened {
            mode: slot.spec.mode,
            next_header: o.next_header,
            payload: esp.start + o.payload.start..esp.start + o.payload.end,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn open_ah(
        &self,
        t: &Tables,
        buf: &mut [u8],
        pkt: Range<usize>,
        dst: IpAddr,
        now: Instant,
        path: &mut Path,
        dead: &mut [Option<SaKey>; 2],
    ) -> R<Opened> {
        let data = buf.get(pkt.clone()).ok_or(DropReason::Malformed)?;
        // The outer header: IPv4 without options or IPv6 with AH right after the fixed header.
        let (hl, len) = match ip::version(data) {
            Some(4) => {
                let b0 = *data.first().ok_or(DropReason::Truncated)?;
                if data.len() < IPV4_HDR_LEN {
                    return Err(DropReason::Truncated);
                }
                if usize::from(b0 & 0x0f) * 4 != IPV4_HDR_LEN || data.get(9) != Some(&PROTO_AH) {
                    return Err(DropReason::Unsupported);
                }
                (
                    IPV4_HDR_LEN,
                    usize::from(be16(data, 2).ok_or(DropReason::Truncated)?),
                )
            }
            Some(6) => {
                if data.len() < IPV6_HDR_LEN {
                    return Err(DropReason::Truncated);
                }
                if data.get(6) != Some(&PROTO_AH) {
                    return Err(DropReason::Unsupported);
                }
                (
                    IPV6_HDR_LEN,
                    IPV6_HDR_LEN + usize::from(be16(data, 4).ok_or(DropReason::Truncated)?),
                )
            }
            Some(_) => return Err(DropReason::Malformed),
            None => return Err(DropReason::Truncated),
        };
        if len > data.len() {
            return Err(DropReason::Truncated);
        }
        if len < hl {
            return Err(DropReason::Malformed);
        }
        let whole = pkt.start..pkt.start + len;
        let spi = data
            .get(hl + 4..hl + 8)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or(DropReason::Truncated)?;
        if spi <= MAX_RESERVED_SPI {
            return Err(DropReason::NoSa);
        }
        let key = SaKey {
            spi,
            proto: IpsecProto::Ah,
            dst,
        };
        let slot = t.sad.get(&key).ok_or(DropReason::NoSa)?;
        if slot.spec.direction != Direction::In {
            return Err(DropReason::NoSa);
        }
        if !slot.alive(now) {
            return Err(DropReason::HardExpired);
        }
        let o = {
            let mut st = lock(&slot.state);
            let Codec::Ah(sa) = &mut st.codec else {
                return Err(DropReason::NoSa);
            };
            let p = buf.get_mut(whole.clone()).ok_or(DropReason::Malformed)?;
            let o = match sa.open(p) {
                Ok(o) => o,
                Err(e) => {
                    st.errors += 1;
                    return Err(e.into());
                }
            };
            if self.after_use(slot, &mut st) {
                dead[0] = Some(key);
            }
            o
        };
        path.push(key);
        let payload = whole.start + o.payload.start..whole.start + o.payload.end;
        if o.next_header == PROTO_ESP {
            return self.open_esp(t, buf, payload, dst, false, now, path, dead);
        }
        Ok(Opened {
            mode: slot.spec.mode,
            next_header: o.next_header,
            payload,
        })
    }
}

/// The packet to write into the TUN device: tunnel mode, the inner packet as it is (checked);
/// transport mode, the payload behind a rebuilt IP header (addresses of the outer packet).
fn inner_packet(buf: &mut [u8], o: Opened, src: IpAddr, dst: IpAddr) -> R<Range<usize>> {
    if o.next_header == NH_NO_NEXT {
        return Err(DropReason::Dummy);
    }
    match o.mode {
        SaMode::Tunnel => {
            let inner = buf.get(o.payload.clone()).ok_or(DropReason::BadInner)?;
            let want = match o.next_header {
                NH_IPV4 => 4,
                NH_IPV6 => 6,
                _ => return Err(DropReason::BadInner),
            };
            if ip::version(inner) != Some(want) {
                return Err(DropReason::BadInner);
            }
            let len = ip::packet_len(inner).ok_or(DropReason::BadInner)?;
            if len > inner.len() || (want == 6 && len == IPV6_HDR_LEN && inner.len() > len) {
                // longer than what came; or an IPv6 jumbogram (payload length 0)
                return Err(DropReason::BadInner);
            }
            if want == 4 {
                Ipv4Header::parse(inner).map_err(|_| DropReason::BadInner)?;
            }
            Ok(o.payload.start..o.payload.start + len)
        }
        SaMode::Transport => {
            let len = o.payload.len();
            let (hl, v6) = if dst.is_ipv6() {
                (IPV6_HDR_LEN, true)
            } else {
                (IPV4_HDR_LEN, false)
            };
            let start = o.payload.start.checked_sub(hl).ok_or(DropReason::NoRoom)?;
            let hdr = buf
                .get_mut(start..o.payload.start)
                .ok_or(DropReason::NoRoom)?;
            match (v6, src, dst) {
                (false, IpAddr::V4(s), IpAddr::V4(d)) => Ipv4Header {
                    tos: 0,
                    total_len: u16::try_from(hl + len).map_err(|_| DropReason::BadInner)?,
                    id: 0,
                    flags_frag: 0,
                    ttl: 64,
                    protocol: o.next_header,
                    src: s.octets(),
                    dst: d.octets(),
                }
                .write(hdr),
                (true, IpAddr::V6(s), IpAddr::V6(d)) => Ipv6Header {
                    traffic_class: 0,
                    flow_label: 0,
                    payload_len: u16::try_from(len).map_err(|_| DropReason::BadInner)?,
                    next_header: o.next_header,
                    hop_limit: 64,
                    src: s.octets(),
                    dst: d.octets(),
                }
                .write(hdr),
                _ => return Err(DropReason::Malformed),
            }
            .map_err(DropReason::from)?;
            Ok(start..o.payload.end)
        }
    }
}
