//! One ESP security association: suite + SPI + sequence numbers (with ESN),
//! anti-replay window, packet/byte counters and lifetimes.

use core::ops::Range;

use zeroize::Zeroizing;

use super::codec::{self, NH_IPV4, NH_IPV6, NH_NO_NEXT};
use super::error::{EspError, Result};
use super::ip;
use super::replay::ReplayWindow;
use super::suite::{Suite, SuiteSpec};

/// Tunnel or transport mode. In tunnel mode `open` requires next header 4,
/// 41 or 59 and trims TFC padding (RFC 4303 §2.7) by the inner IP length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Whole IP packets inside.
    Tunnel,
    /// Upper-layer payload inside; the caller builds the outer IP header.
    Transport,
}

/// Soft/hard limits; `u64::MAX` means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Soft byte limit (rekey).
    pub soft_bytes: u64,
    /// Hard byte limit (SA unusable).
    pub hard_bytes: u64,
    /// Soft packet limit.
    pub soft_packets: u64,
    /// Hard packet limit.
    pub hard_packets: u64,
}

impl Default for Lifetime {
    fn default() -> Self {
        Self {
            soft_bytes: u64::MAX,
            hard_bytes: u64::MAX,
            soft_packets: u64::MAX,
            hard_packets: u64::MAX,
        }
    }
}

/// Where the SA stands against its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifetimeState {
    /// Below the soft limits.
    Fresh,
    /// Soft limit reached: ask ikerd to rekey.
    Soft,
    /// Hard limit reached: seal/open refuse.
    Hard,
}

/// Packets and payload bytes processed successfully.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets sealed or opened.
    pub packets: u64,
    /// Payload bytes (before ESP framing).
    pub bytes: u64,
}

/// What it takes to build an SA. Keys are wiped when this is dropped.
pub struct SaConfig {
    /// SPI (the receiver's choice).
    pub spi: u32,
    /// Algorithms.
    pub spec: SuiteSpec,
    /// Encryption key material (with CTR nonce / GCM salt at its end).
    pub enc_key: Zeroizing<Vec<u8>>,
    /// Integrity key.
    pub auth_key: Zeroizing<Vec<u8>>,
    /// Extended (64-bit) sequence numbers (RFC 4303 §2.2.1).
    pub esn: bool,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Limits.
    pub lifetime: Lifetime,
}

impl core::fmt::Debug for SaConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SaConfig")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("spec", &self.spec)
            .field("esn", &self.esn)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Result of a successful `open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The inner packet (tunnel) or upper-layer payload (transport), inside
    /// the buffer given to `open`.
    pub payload: Range<usize>,
    /// Next header from the trailer (59: dummy packet, drop it).
    pub next_header: u8,
    /// Full 64-bit sequence number.
    pub seq: u64,
}

/// An ESP SA, one direction (seal for outbound, open for inbound).
pub struct EspSa {
    spi: u32,
    suite: Suite,
    esn: bool,
    mode: Mode,
    /// Last sequence number sent (0: none yet).
    tx_seq: u64,
    replay: ReplayWindow,
    counters: Counters,
    lifetime: Lifetime,
}

impl core::fmt::Debug for EspSa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EspSa")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("suite", &self.suite)
            .field("esn", &self.esn)
            .field("mode", &self.mode)
            .field("tx_seq", &self.tx_seq)
            .field("replay", &self.replay)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl EspSa {
    /// Key the SA.
    pub fn new(cfg: &SaConfig) -> Result<Self> {
        Ok(Self {
            spi: cfg.spi,
            suite: Suite::new(cfg.spec, &cfg.enc_key, &cfg.auth_key)?,
            esn: cfg.esn,
            mode: cfg.mode,
            tx_seq: 0,
            replay: ReplayWindow::new(),
            counters: Counters::default(),
            lifetime: cfg.lifetime,
        })
    }

    /// SPI.
    pub fn spi(&self) -> u32 {
        self.spi
    }
    /// Suite (algorithms, lengths).
    pub fn suite(&self) -> &Suite {
        &self.suite
    }
    /// Mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// Packets/bytes so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }
    /// Last sequence number sent.
    pub fn tx_seq(&self) -> u64 {
        self.tx_seq
    }
    /// Highest sequence number received and authenticated.
    pub fn rx_top(&self) -> u64 {
        self.replay.top()
    }
    /// Set the last sequence number sent (tests, or resuming an SA).
    pub fn set_tx_seq(&mut self, last_sent: u64) {
        self.tx_seq = last_sent;
    }
    /// Anti-replay window in packets (default and maximum
    /// [`super::replay::WINDOW_SIZE`]); 0 turns replay protection off.
    pub fn set_replay_window(&mut self, packets: u32) {
        self.replay.set_size(packets);
    }
    /// Bytes needed in front of the payload for `seal`.
    pub fn headroom(&self) -> usize {
        codec::headroom(&self.suite)
    }
    /// Bytes needed behind a payload of `len` bytes.
    pub fn tailroom(&self, len: usize) -> usize {
        codec::tailroom(&self.suite, len)
    }
    /// Bytes needed behind any payload.
    pub fn max_tailroom(&self) -> usize {
        codec::max_tailroom(&self.suite)
    }

    /// Lifetime state from the counters.
    pub fn lifetime_state(&self) -> LifetimeState {
        let c = self.counters;
        let l = self.lifetime;
        if c.bytes >= l.hard_bytes || c.packets >= l.hard_packets {
            LifetimeState::Hard
        } else if c.bytes >= l.soft_bytes || c.packets >= l.soft_packets {
            LifetimeState::Soft
        } else {
            LifetimeState::Fresh
        }
    }

    fn next_seq(&self) -> Result<u64> {
        let limit = if self.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        if self.tx_seq >= limit {
            return Err(EspError::SeqOverflow);
        }
        Ok(self.tx_seq + 1)
    }

    /// Seal `buf[payload]` (an IP packet in tunnel mode, an upper-layer
    /// payload in transport mode) into an ESP packet in place; returns where
    /// it lies in `buf`. Needs [`EspSa::headroom`] bytes free in front of the
    /// payload and [`EspSa::tailroom`] behind it.
    pub fn seal(
        &mut self,
        buf: &mut [u8],
        payload: Range<usize>,
        next_header: u8,
    ) -> Result<Range<usize>> {
        self.seal_inner(buf, payload, next_header, None)
    }

    /// Tunnel-mode convenience: seal the IP packet `buf[payload]`, taking the
    /// next header (4 or 41) from its version nibble.
    pub fn seal_ip(&mut self, buf: &mut [u8], payload: Range<usize>) -> Result<Range<usize>> {
        let nh = match buf.get(payload.start).map(|b| b >> 4) {
            Some(4) => NH_IPV4,
            Some(6) => NH_IPV6,
            _ => return Err(EspError::BadInner),
        };
        self.seal(buf, payload, nh)
    }

    /// `seal` with a caller-chosen IV. Known-answer tests only: reusing an IV
    /// breaks CBC, CTR and GCM.
    #[doc(hidden)]
    pub fn seal_with_iv(
        &mut self,
        buf: &mut [u8],
        payload: Range<usize>,
        next_header: u8,
        iv: &[u8],
    ) -> Result<Range<usize>> {
        self.seal_inner(buf, payload, next_header, Some(iv))
    }

    fn seal_inner(
        &mut self,
        buf: &mut [u8],
        payload: Range<usize>,
        next_header: u8,
        iv: Option<&[u8]>,
    ) -> Result<Range<usize>> {
        if self.lifetime_state() == LifetimeState::Hard {
            return Err(EspError::LifetimeExpired);
        }
        let seq = self.next_seq()?;
        let plen = payload.len() as u64;
        let r = codec::seal_in_place(
            &self.suite,
            buf,
            payload,
            next_header,
            self.spi,
            seq,
            self.esn,
            iv,
        )?;
        self.tx_seq = seq;
        self.counters.packets += 1;
        self.counters.bytes += plen;
        Ok(r)
    }

    /// Open an ESP packet (starting at the SPI) in place: replay check, ICV
    /// check (constant time, before decryption), decryption, padding check,
    /// then the replay window is updated. The caller has looked the SA up by
    /// [`super::peek_spi`]; a different SPI gives `WrongSpi`.
    pub fn open(&mut self, pkt: &mut [u8]) -> Result<Opened> {
        if self.lifetime_state() == LifetimeState::Hard {
            return Err(EspError::LifetimeExpired);
        }
        let spi = codec::peek_spi(pkt).ok_or(EspError::Truncated)?;
        let seq_lo = codec::peek_seq(pkt).ok_or(EspError::Truncated)?;
        if spi != self.spi {
            return Err(EspError::WrongSpi);
        }
        let (seq, seq_hi) = if self.esn {
            let hi = self.replay.infer_seq_hi(seq_lo);
            ((u64::from(hi) << 32) | u64::from(seq_lo), Some(hi))
        } else {
            (u64::from(seq_lo), None)
        };
        self.replay.check(seq)?;
        let (mut payload, next_header) = codec::open_in_place(&self.suite, pkt, seq_hi)?;
        if self.mode == Mode::Tunnel {
            match next_header {
                NH_IPV4 | NH_IPV6 => {
                    let inner = pkt.get(payload.clone()).ok_or(EspError::BadInner)?;
                    let len = ip::packet_len(inner).ok_or(EspError::BadInner)?;
                    if len > payload.len() {
                        return Err(EspError::BadInner);
                    }
                    payload.end = payload.start + len;
                }
                NH_NO_NEXT => {}
                _ => return Err(EspError::BadInner),
            }
        }
        self.replay.update(seq)?;
        self.counters.packets += 1;
        self.counters.bytes += payload.len() as u64;
        Ok(Opened {
            payload,
            next_header,
            seq,
        })
    }
}
