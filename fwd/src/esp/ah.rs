//! AH (RFC 4302): integrity over the whole IP packet, mutable fields zeroed.
//! Sans-IO and in place like ESP. Supported layouts: IPv4 without options
//! and IPv6 with AH directly after the fixed header (no extension headers in
//! front); others give `Unsupported`.

use core::ops::Range;

use subtle::ConstantTimeEq;

use super::error::{EspError, Result};
use super::ip::{IPV4_HDR_LEN, IPV6_HDR_LEN, PROTO_AH};
use super::replay::ReplayWindow;
use super::sa::Counters;
use super::suite::{EncAlg, IntegAlg, Suite, SuiteSpec};

/// Fixed part of the AH header: next header, payload len, reserved, SPI, seq.
pub const AH_FIXED_LEN: usize = 12;

/// Result of a successful AH `open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AhOpened {
    /// IP header length (20 or 40).
    pub ip_header_len: usize,
    /// Where the AH header lies in the packet.
    pub ah: Range<usize>,
    /// What follows AH (inner IP packet in tunnel mode, upper layer in transport).
    pub payload: Range<usize>,
    /// AH next header.
    pub next_header: u8,
    /// Full sequence number.
    pub seq: u64,
}

/// An AH SA, one direction.
pub struct AhSa {
    spi: u32,
    suite: Suite,
    esn: bool,
    tx_seq: u64,
    replay: ReplayWindow,
    counters: Counters,
}

impl core::fmt::Debug for AhSa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AhSa")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("suite", &self.suite)
            .field("esn", &self.esn)
            .field("tx_seq", &self.tx_seq)
            .finish_non_exhaustive()
    }
}

struct IpLayout {
    hdr_len: usize,
    v6: bool,
}

fn layout(pkt: &[u8]) -> Result<IpLayout> {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => {
            let ihl = usize::from(pkt.first().copied().unwrap_or(0) & 0x0f) * 4;
            if ihl != IPV4_HDR_LEN {
                return Err(EspError::Unsupported);
            }
            if pkt.get(9) != Some(&PROTO_AH) {
                return Err(EspError::Unsupported);
            }
            Ok(IpLayout {
                hdr_len: IPV4_HDR_LEN,
                v6: false,
            })
        }
        Some(6) => {
            if pkt.get(6) != Some(&PROTO_AH) {
                return Err(EspError::Unsupported);
            }
            Ok(IpLayout {
                hdr_len: IPV6_HDR_LEN,
                v6: true,
            })
        }
        Some(_) => Err(EspError::BadInner),
        None => Err(EspError::Truncated),
    }
}

/// Zero the mutable fields of the IP header (RFC 4302 §3.3.3.1), returning
/// what to put back.
fn zero_mutable(pkt: &mut [u8], v6: bool) -> [u8; 8] {
    let mut saved = [0u8; 8];
    let idx: &[usize] = if v6 {
        &[0, 1, 2, 3, 7]
    } else {
        &[1, 6, 7, 8, 10, 11]
    };
    for (s, &i) in saved.iter_mut().zip(idx) {
        if let Some(b) = pkt.get_mut(i) {
            *s = *b;
            *b = if v6 && i == 0 { 0x60 } else { 0 };
        }
    }
    saved
}

fn restore_mutable(pkt: &mut [u8], v6: bool, saved: &[u8; 8]) {
    let idx: &[usize] = if v6 {
        &[0, 1, 2, 3, 7]
    } else {
        &[1, 6, 7, 8, 10, 11]
    };
    for (s, &i) in saved.iter().zip(idx) {
        if let Some(b) = pkt.get_mut(i) {
            *b = *s;
        }
    }
}

impl AhSa {
    /// Key an AH SA with an HMAC integrity algorithm.
    pub fn new(spi: u32, integ: IntegAlg, auth_key: &[u8], esn: bool) -> Result<Self> {
        if integ == IntegAlg::None {
            return Err(EspError::Unsupported);
        }
        let spec = SuiteSpec::new(EncAlg::Null, integ)?;
        Ok(Self {
            spi,
            suite: Suite::new(spec, &[], auth_key)?,
            esn,
            tx_seq: 0,
            replay: ReplayWindow::new(),
            counters: Counters::default(),
        })
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Set the last sequence number sent (tests, resuming).
    pub fn set_tx_seq(&mut self, last_sent: u64) {
        self.tx_seq = last_sent;
    }

    /// Last sequence number sent.
    pub fn tx_seq(&self) -> u64 {
        self.tx_seq
    }

    /// Highest sequence number received and authenticated.
    pub fn rx_top(&self) -> u64 {
        self.replay.top()
    }

    /// SPI.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// Anti-replay window in packets; 0 turns replay protection off.
    pub fn set_replay_window(&mut self, packets: u32) {
        self.replay.set_size(packets);
    }

    /// AH header length (ICV padded to 32 bits for IPv4, 64 bits for IPv6).
    pub fn ah_len(&self, ipv6: bool) -> usize {
        let raw = AH_FIXED_LEN + self.suite.icv_len();
        let align = if ipv6 { 8 } else { 4 };
        raw.div_ceil(align) * align
    }

    /// Fill in AH in `pkt` = IP header (protocol/next header 51, lengths and
    /// addresses final) || `ah_len` bytes of space || payload, and compute the
    /// ICV. The caller computes the IPv4 header checksum afterwards.
    pub fn seal(&mut self, pkt: &mut [u8], next_header: u8) -> Result<Range<usize>> {
        let lay = layout(pkt)?;
        let limit = if self.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        if self.tx_seq >= limit {
            return Err(EspError::SeqOverflow);
        }
        let seq = self.tx_seq + 1;
        let ah_len = self.ah_len(lay.v6);
        let ah_range = lay.hdr_len..lay.hdr_len + ah_len;
        let ah = pkt.get_mut(ah_range.clone()).ok_or(EspError::NoRoom)?;
        ah.fill(0);
        let words = (ah_len / 4 - 2) as u8;
        for (d, s) in ah.iter_mut().zip(
            [next_header, words, 0, 0]
                .into_iter()
                .chain(self.spi.to_be_bytes())
                .chain((seq as u32).to_be_bytes()),
        ) {
            *d = s;
        }
        let saved = zero_mutable(pkt, lay.v6);
        let mac = self
            .suite
            .mac_compute(pkt, self.esn.then_some((seq >> 32) as u32));
        restore_mutable(pkt, lay.v6, &saved);
        let mac = mac.ok_or(EspError::Unsupported)?;
        let icv_len = self.suite.icv_len();
        let icv = pkt
            .get_mut(ah_range.start + AH_FIXED_LEN..ah_range.start + AH_FIXED_LEN + icv_len)
            .ok_or(EspError::NoRoom)?;
        for (d, s) in icv.iter_mut().zip(mac) {
            *d = s;
        }
        self.tx_seq = seq;
        self.counters.packets += 1;
        self.counters.bytes += pkt.len().saturating_sub(ah_range.end) as u64;
        Ok(ah_range)
    }

    /// Verify an IP packet carrying AH (replay check, ICV in constant time,
    /// then the window is updated). The packet is left unchanged.
    pub fn open(&mut self, pkt: &mut [u8]) -> Result<AhOpened> {
        let lay = layout(pkt)?;
        let fixed = pkt
            .get(lay.hdr_len..lay.hdr_len + AH_FIXED_LEN)
            .ok_or(EspError::Truncated)?;
        let (next_header, words) = match fixed {
            [nh, w, ..] => (*nh, usize::from(*w)),
            _ => return Err(EspError::Truncated),
        };
        let spi = fixed
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes);
        let seq_lo = fixed
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes);
        let (spi, seq_lo) = spi.zip(seq_lo).ok_or(EspError::Truncated)?;
        if spi != self.spi {
            return Err(EspError::WrongSpi);
        }
        let ah_len = (words + 2) * 4;
        if ah_len != self.ah_len(lay.v6) {
            return Err(EspError::BadLength);
        }
        let ah_range = lay.hdr_len..lay.hdr_len + ah_len;
        if pkt.len() < ah_range.end {
            return Err(EspError::Truncated);
        }
        let (seq, seq_hi) = if self.esn {
            let hi = self.replay.infer_seq_hi(seq_lo);
            ((u64::from(hi) << 32) | u64::from(seq_lo), Some(hi))
        } else {
            (u64::from(seq_lo), None)
        };
        self.replay.check(seq)?;
        let icv_len = self.suite.icv_len();
        let icv_range = ah_range.start + AH_FIXED_LEN..ah_range.end;
        let mut got = [0u8; 64];
        {
            let icv = pkt.get_mut(icv_range.clone()).ok_or(EspError::Truncated)?;
            for (g, b) in got.iter_mut().zip(icv.iter_mut()) {
                *g = *b;
                *b = 0;
            }
        }
        let saved = zero_mutable(pkt, lay.v6);
        let mac = self.suite.mac_compute(pkt, seq_hi);
        restore_mutable(pkt, lay.v6, &saved);
        if let Some(icv) = pkt.get_mut(icv_range) {
            for (b, g) in icv.iter_mut().zip(got) {
                *b = g;
            }
        }
        let mac = mac.ok_or(EspError::Unsupported)?;
        let ok = match (mac.get(..icv_len), got.get(..icv_len)) {
            (Some(a), Some(b)) => bool::from(a.ct_eq(b)),
            _ => false,
        };
        if !ok {
            return Err(EspError::BadIcv);
        }
        self.replay.update(seq)?;
        let payload = ah_range.end..pkt.len();
        self.counters.packets += 1;
        self.counters.bytes += payload.len() as u64;
        Ok(AhOpened {
            ip_header_len: lay.hdr_len,
            ah: ah_range,
            payload,
            next_header,
            seq,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::ip::{Ipv4Header, Ipv6Header};
    use super::*;

    fn v4_packet(sa: &AhSa, payload: &[u8]) -> Vec<u8> {
        let ah_len = sa.ah_len(false);
        let total = 20 + ah_len + payload.len();
        let mut p = vec![0u8; total];
        Ipv4Header {
            tos: 0,
            total_len: total as u16,
            id: 7,
            flags_frag: 0x4000,
            ttl: 64,
            protocol: PROTO_AH,
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
        }
        .write(&mut p)
        .unwrap();
        p[20 + ah_len..].copy_from_slice(payload);
        p
    }

    #[test]
    fn ah_v4_roundtrip_and_mutable_fields() {
        for integ in [
            IntegAlg::HmacMd5_96,
            IntegAlg::HmacSha1_96,
            IntegAlg::HmacSha256_128,
            IntegAlg::HmacSha384_192,
            IntegAlg::HmacSha512_256,
        ] {
            for esn in [false, true] {
                let key = vec![0x42; integ.key_len()];
                let mut tx = AhSa::new(0x1000, integ, &key, esn).unwrap();
                let mut rx = AhSa::new(0x1000, integ, &key, esn).unwrap();
                let mut p = v4_packet(&tx, b"hello upper layer");
                tx.seal(&mut p, 6).unwrap();
                // a router changes TTL and checksum: still verifies
                p[8] = 17;
                p[10] = 0xaa;
                let o = rx.open(&mut p).unwrap();
                assert_eq!(&p[o.payload], b"hello upper layer");
                assert_eq!(o.next_header, 6);
                assert_eq!(rx.open(&mut p), Err(EspError::Replay));
                // flip an immutable bit
                let mut q = v4_packet(&tx, b"x");
                tx.seal(&mut q, 6).unwrap();
                q[12] ^= 1;
                assert_eq!(rx.open(&mut q), Err(EspError::BadIcv));
            }
        }
    }

    #[test]
    fn ah_v6_roundtrip() {
        let key = [7u8; 32];
        let mut tx = AhSa::new(9, IntegAlg::HmacSha256_128, &key, false).unwrap();
        let mut rx = AhSa::new(9, IntegAlg::HmacSha256_128, &key, false).unwrap();
        let ah_len = tx.ah_len(true);
        assert_eq!(ah_len, 32);
        let payload = [1u8; 30];
        let mut p = vec![0u8; 40 + ah_len + payload.len()];
        Ipv6Header {
            traffic_class: 0,
            flow_label: 5,
            payload_len: (ah_len + payload.len()) as u16,
            next_header: PROTO_AH,
            hop_limit: 64,
            src: [1; 16],
            dst: [2; 16],
        }
        .write(&mut p)
        .unwrap();
        p[40 + ah_len..].copy_from_slice(&payload);
        tx.seal(&mut p, 41).unwrap();
        p[7] = 3; // hop limit is mutable
        let o = rx.open(&mut p).unwrap();
        assert_eq!(o.payload, 40 + ah_len..p.len());
        let mut fuzz = p.clone();
        fuzz[50] ^= 0x80;
        assert!(rx.open(&mut fuzz).is_err());
    }

    #[test]
    fn ah_never_panics_on_garbage() {
        let mut rx = AhSa::new(9, IntegAlg::HmacSha1_96, &[1; 20], true).unwrap();
        for len in 0..80 {
            let mut p: Vec<u8> = (0..len).map(|i| (i * 37 + 0x45) as u8).collect();
            let _ = rx.open(&mut p);
            if len > 9 {
                p[0] = 0x45;
                p[9] = PROTO_AH;
                let _ = rx.open(&mut p);
            }
        }
    }
}
