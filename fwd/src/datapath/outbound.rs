//! Outbound: a plaintext packet from the TUN device → the first matching outbound policy →
//! pass, drop, reject (ICMP), trap (acquire), or protect: PMTU check, then each SA of the bundle
//! in turn (ESP first, AH around it), in place in the caller's buffer.
//!
//! Tunnel mode seals the whole inner packet (next header 4/41); transport mode seals what follows
//! the IP header and the result carries the packet's own addresses. ESP alone is returned as ESP
//! bytes for the kernel to put an IP header on ([`Outbound::Esp`]); with AH the engine builds the
//! whole IP packet ([`Outbound::Ip`]).
//!
//! PMTU: an inner packet with DF (or IPv6 above 1280 bytes) whose sealed form exceeds
//! `outer_mtu` is answered with ICMP "fragmentation needed" / "packet too big"; without DF it is
//! sealed and the kernel fragments the outer packet. With AH (a full IP packet for a
//! header-included socket, which the kernel does not fragment) the ICMP answer is given DF or not.

use super::control::{Codec, Geom};
use super::drops::DropReason;
use super::engine::Engine;
use super::icmp::{self, IcmpError, IPV4_MIN_MTU, IPV6_MIN_MTU};
use super::tables::{lock, PolicyMeta, SaSlot, Tables};
use super::{Outbound, MAX_PACKET};
use crate::esp::ip::{
    self, Ipv4Header, Ipv6Header, IPV4_HDR_LEN, IPV6_HDR_LEN, PROTO_AH, PROTO_ESP,
};
use crate::esp::{EspError, NH_IPV4, NH_IPV6};
use crate::sad::SaKey;
use crate::spd::{self, Flow};
use ipc::fwd::FwdEvent;
use ipc::policy::{FlowInfo, PolicyAction};
use ipc::sa::{IpsecProto, SaMode};
use std::net::IpAddr;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Instant;

type R<T> = Result<T, DropReason>;

/// IPv4 "don't fragment".
const IPV4_DF: u16 = 0x4000;

/// What the transport-mode path keeps of the original IP header (the ESP header overwrites it).
#[derive(Clone, Copy)]
enum OrigHeader {
    V4(Ipv4Header),
    V6(Ipv6Header),
}

impl OrigHeader {
    fn addrs(&self) -> (IpAddr, IpAddr) {
        match self {
            OrigHeader::V4(h) => (IpAddr::from(h.src), IpAddr::from(h.dst)),
            OrigHeader::V6(h) => (IpAddr::from(h.src), IpAddr::from(h.dst)),
        }
    }
}

fn ext_header(nh: u8) -> bool {
    // hop-by-hop, routing, fragment, destination options, mobility, HIP, shim6, experimental
    matches!(nh, 0 | 43 | 44 | 60 | 135 | 139 | 140 | 253 | 254)
}

fn addr4(a: IpAddr) -> R<[u8; 4]> {
    match a {
        IpAddr::V4(v) => Ok(v.octets()),
        IpAddr::V6(_) => Err(DropReason::Unsupported),
    }
}

fn addr6(a: IpAddr) -> R<[u8; 16]> {
    match a {
        IpAddr::V6(v) => Ok(v.octets()),
        IpAddr::V4(_) => Err(DropReason::Unsupported),
    }
}

impl Engine {
    /// A plaintext IP packet read from the TUN device at `buf[pkt]` (HEADROOM free bytes before,
    /// TAILROOM after). Never panics, never allocates (except for a rate-limited acquire event).
    pub fn outbound(&self, buf: &mut [u8], pkt: Range<usize>, now: Instant) -> Outbound {
        let mut dead: [Option<SaKey>; 2] = [None; 2];
        let res = {
            let t = self.read();
            self.outbound_locked(&t, buf, pkt, now, &mut dead)
        };
        self.reap(&dead);
        match res {
            Ok(o) => o,
            Err(r) => {
                self.drops.count(r);
                Outbound::Drop(r)
            }
        }
    }

    fn outbound_locked(
        &self,
        t: &Tables,
        buf: &mut [u8],
        pkt: Range<usize>,
        now: Instant,
        dead: &mut [Option<SaKey>; 2],
    ) -> R<Outbound> {
        if pkt.start > pkt.end || pkt.end > buf.len() {
            return Err(DropReason::Malformed);
        }
        if pkt.len() > MAX_PACKET {
            return Err(DropReason::TooBig);
        }
        let data = buf.get(pkt.clone()).ok_or(DropReason::Malformed)?;
        let ip_len = ip::packet_len(data).ok_or(DropReason::Malformed)?;
        if ip_len > data.len() {
            return Err(DropReason::Malformed);
        }
        let pkt = pkt.start..pkt.start + ip_len;
        let data = buf.get(pkt.clone()).ok_or(DropReason::Malformed)?;
        let flow = Flow::from_ip_packet(data).map_err(|_| DropReason::Malformed)?;
        let (pid, _) = t
            .spd
            .lookup(spd::Direction::Out, &flow)
            .ok_or(DropReason::NoPolicy)?;
        let meta = t.policies.get(&pid).ok_or(DropReason::NoPolicy)?;
        meta.count(ip_len);
        match &meta.spec.action {
            PolicyAction::Pass => Ok(Outbound::Clear { range: pkt }),
            PolicyAction::Drop => Err(DropReason::PolicyDrop),
            PolicyAction::Reject => {
                let r = icmp::build(buf, pkt, IcmpError::AdminProhibited)
                    .ok_or(DropReason::PolicyReject)?;
                self.drops.count(DropReason::PolicyReject);
                Ok(Outbound::ToTun { range: r })
            }
            PolicyAction::Trap => {
                self.acquire(meta, &flow, now);
                Err(DropReason::Trap)
            }
            PolicyAction::Protect { .. } => self.protect(t, meta, &flow, buf, pkt, now, dead),
        }
    }

    /// Raise an acquire for `meta`'s conn, at most once per `acquire_interval`.
    fn acquire(&self, meta: &PolicyMeta, flow: &Flow, now: Instant) {
        let mut last = lock(&meta.last_acquire);
        let due = match *last {
            None => true,
            Some(l) => now
                .checked_duration_since(l)
                .is_some_and(|d| d >= self.cfg.acquire_interval),
        };
        if due {
            *last = Some(now);
            drop(last);
            self.push_event(FwdEvent::Acquire {
                conn: meta.spec.conn.clone(),
                flow: FlowInfo {
                    src: flow.src,
                    dst: flow.dst,
                    proto: flow.proto,
                    src_port: flow.src_port,
                    dst_port: flow.dst_port,
                },
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn protect(
        &self,
        t: &Tables,
        meta: &PolicyMeta,
        flow: &Flow,
        buf: &mut [u8],
        pkt: Range<usize>,
        now: Instant,
        dead: &mut [Option<SaKey>; 2],
    ) -> R<Outbound> {
        // Resolve the bundle; a missing or expired SA makes the policy a trap.
        let mut slots: [Option<&SaSlot>; 2] = [None; 2];
        for (slot, key) in slots.iter_mut().zip(meta.bundle.iter()) {
            match t.sad.get(key) {
                Some(s) if s.alive(now) => *slot = Some(s),
                _ => {
                    self.acquire(meta, flow, now);
                    return Err(DropReason::Trap);
                }
            }
        }
        let (esp, ah) = match slots {
            [Some(a), None] if a.spec.proto == IpsecProto::Esp => (Some(a), None),
            [Some(a), None] => (None, Some(a)),
            [Some(e), Some(a)] => (Some(e), Some(a)),
            _ => {
                self.acquire(meta, flow, now);
                return Err(DropReason::Trap);
            }
        };
        let first = esp.or(ah).ok_or(DropReason::Trap)?;
        let mode = first.spec.mode;
        let data = buf.get(pkt.clone()).ok_or(DropReason::Malformed)?;
        let inner_v6 = ip::version(data) == Some(6);

        // What transport mode keeps of the header, and where its payload starts.
        let (orig, strip) = match mode {
            SaMode::Tunnel => (None, 0),
            SaMode::Transport => {
                if inner_v6 {
                    let h = Ipv6Header::parse(data).map_err(|_| DropReason::Malformed)?;
                    if ext_header(h.next_header) {
                        return Err(DropReason::Unsupported);
                    }
                    (Some(OrigHeader::V6(h)), IPV6_HDR_LEN)
                } else {
                    let (h, ihl) = Ipv4Header::parse(data).map_err(|_| DropReason::Malformed)?;
                    if h.flags_frag & 0x3fff != 0 {
                        // a fragment (MF or offset): transport mode takes whole packets only
                        return Err(DropReason::Unsupported);
                    }
                    (Some(OrigHeader::V4(h)), ihl)
                }
            }
        };
        let outer_v6 = match mode {
            SaMode::Tunnel => first.spec.dst.is_ipv6(),
            SaMode::Transport => inner_v6,
        };

        // PMTU (RFC 4301 §8): the sealed size of an inner packet of `len` bytes.
        let outer_hdr = if outer_v6 { IPV6_HDR_LEN } else { IPV4_HDR_LEN };
        let encap = esp.and_then(|e| e.spec.encap);
        let encap_len = if encap.is_some() { ip::UDP_HDR_LEN } else { 0 };
        let geoms = [esp.map(|e| e.geom), ah.map(|a| a.geom)];
        let wire_len = |len: usize| -> usize {
            let mut n = len.saturating_sub(strip);
            for g in geoms.iter().flatten() {
                n = g.apply(n, outer_v6);
            }
            outer_hdr + encap_len + n
        };
        let total = wire_len(pkt.len());
        let mtu = self.cfg.outer_mtu as usize;
        if total > mtu || total > MAX_PACKET {
            // With AH the engine builds the whole packet and a header-included raw socket does
            // not fragment (EMSGSIZE): ask the sender to, DF or not.
            let df = if inner_v6 {
                pkt.len() > IPV6_MIN_MTU
            } else {
                ah.is_some()
                    || matches!(data.get(6..8), Some(&[hi, lo]) if u16::from_be_bytes([hi, lo]) & IPV4_DF != 0)
            };
            if df {
                let floor = if inner_v6 { IPV6_MIN_MTU } else { IPV4_MIN_MTU };
                let next_hop = max_inner(&wire_len, mtu.min(MAX_PACKET)).max(floor);
                let r = icmp::build(
                    buf,
                    pkt,
                    IcmpError::TooBig {
                        mtu: next_hop as u32,
                    },
                )
                .ok_or(DropReason::TooBig)?;
                self.drops.count(DropReason::TooBig);
                return Ok(Outbound::ToTun { range: r });
            }
            if total > MAX_PACKET {
                return Err(DropReason::TooBig);
            }
        }

        // Room in the caller's buffer, checked before any sequence number is spent.
        let plen = pkt.len().saturating_sub(strip);
        let mut front = if ah.is_some() { outer_hdr } else { 0 };
        for g in geoms.iter().flatten() {
            front += g.front(outer_v6);
        }
        let tail = esp.map_or(0, |e| e.geom.tail(plen));
        if pkt.start + strip < front || buf.len() - pkt.end < tail {
            return Err(DropReason::NoRoom);
        }

        // ESP, innermost.
        let mut cur = pkt.clone();
        let mut nh = match (mode, orig) {
            (SaMode::Tunnel, _) => {
                if inner_v6 {
                    NH_IPV6
                } else {
                    NH_IPV4
                }
            }
            (SaMode::Transport, Some(OrigHeader::V4(h))) => h.protocol,
            (SaMode::Transport, Some(OrigHeader::V6(h))) => h.next_header,
            (SaMode::Transport, None) => return Err(DropReason::Malformed),
        };
        cur.start += strip;
        if let Some(e) = esp {
            let mut st = lock(&e.state);
            let Codec::Esp(sa) = &mut st.codec else {
                return Err(DropReason::Unsupported);
            };
            match sa.seal(buf, cur.clone(), nh) {
                Ok(r) => cur = r,
                Err(err) => {
                    if err == EspError::SeqOverflow && self.expire_hard(e) {
                        dead[0] = Some(e.key);
                    }
                    return Err(err.into());
                }
            }
            if self.after_use(e, &mut st) {
                dead[0] = Some(e.key);
            }
            nh = PROTO_ESP;
        }
        let (src, dst) = match orig {
            Some(o) => o.addrs(),
            None => (first.spec.src, first.spec.dst),
        };
        let Some(a) = ah else {
            return Ok(Outbound::Esp {
                src,
                dst,
                encap,
                range: cur,
            });
        };

        // AH around it, with the outer IP header the engine writes itself.
        let Geom::Ah { len4, len6 } = a.geom else {
            return Err(DropReason::Unsupported);
        };
        let ah_len = if outer_v6 { len6 } else { len4 };
        let start = cur
            .start
            .checked_sub(ah_len + outer_hdr)
            .ok_or(DropReason::NoRoom)?;
        let total = cur.end - start;
        let total16 = u16::try_from(total).map_err(|_| DropReason::TooBig)?;
        let hdr = buf
            .get_mut(start..start + outer_hdr)
            .ok_or(DropReason::NoRoom)?;
        match orig {
            Some(OrigHeader::V4(h)) => Ipv4Header {
                total_len: total16,
                flags_frag: h.flags_frag & IPV4_DF,
                protocol: PROTO_AH,
                ..h
            }
            .write(hdr),
            Some(OrigHeader::V6(h)) => Ipv6Header {
                payload_len: total16 - IPV6_HDR_LEN as u16,
                next_header: PROTO_AH,
                ..h
            }
            .write(hdr),
            None if outer_v6 => Ipv6Header {
                traffic_class: 0,
                flow_label: 0,
                payload_len: total16 - IPV6_HDR_LEN as u16,
                next_header: PROTO_AH,
                hop_limit: 64,
                src: addr6(src)?,
                dst: addr6(dst)?,
            }
            .write(hdr),
            None => Ipv4Header {
                tos: 0,
                total_len: total16,
                id: self.ip_id.fetch_add(1, Ordering::Relaxed),
                flags_frag: 0,
                ttl: 64,
                protocol: PROTO_AH,
                src: addr4(src)?,
                dst: addr4(dst)?,
            }
            .write(hdr),
        }
        .map_err(DropReason::from)?;
        let whole = start..cur.end;
        {
            let mut st = lock(&a.state);
            let Codec::Ah(sa) = &mut st.codec else {
                return Err(DropReason::Unsupported);
            };
            let p = buf.get_mut(whole.clone()).ok_or(DropReason::NoRoom)?;
            if let Err(err) = sa.seal(p, nh) {
                if err == EspError::SeqOverflow && self.expire_hard(a) {
                    dead[1] = Some(a.key);
                }
                return Err(err.into());
            }
            if !outer_v6 {
                // AH restores the mutable fields it zeroed; refresh the checksum anyway.
                if let Some(h) = p.get_mut(..IPV4_HDR_LEN) {
                    if let Some(c) = h.get_mut(10..12) {
                        c.copy_from_slice(&[0, 0]);
                    }
                    let c = ip::checksum(h).to_be_bytes();
                    if let Some(cs) = h.get_mut(10..12) {
                        cs.copy_from_slice(&c);
                    }
                }
            }
            if self.after_use(a, &mut st) {
                dead[1] = Some(a.key);
            }
        }
        Ok(Outbound::Ip { range: whole })
    }
}

/// The largest inner packet whose sealed size fits `mtu` (0 if none does).
fn max_inner(wire_len: &impl Fn(usize) -> usize, mtu: usize) -> usize {
    // The overhead varies with the length by less than a cipher block (padding): start a
    // little above the estimate and step down, a few dozen steps at most.
    let over = wire_len(mtu).saturating_sub(mtu);
    let mut l = (mtu.saturating_sub(over) + 32).min(mtu);
    while l > 0 && wire_len(l) > mtu {
        l -= 1;
    }
    l
}
