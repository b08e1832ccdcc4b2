//! Why packets are dropped: one reason per counter, counted with relaxed atomics (no lock, no
//! allocation on the packet path).

use crate::esp::EspError;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a packet was dropped. The first twelve mirror [`EspError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than its headers (ESP/AH/IP).
    Truncated,
    /// ESP ciphertext not a multiple of the block size, or an AH length field that does not fit.
    BadLength,
    /// ICV (or AEAD tag) mismatch.
    BadIcv,
    /// Replayed or too old sequence number.
    Replay,
    /// Bad ESP padding.
    BadPadding,
    /// The decapsulated packet is not a well-formed IP packet.
    BadInner,
    /// The outbound sequence number would wrap (the SA is then expired).
    SeqOverflow,
    /// The SA's hard byte/packet lifetime was reached (codec-level).
    LifetimeExpired,
    /// The caller's buffer lacks headroom or tailroom.
    NoRoom,
    /// Key length problem in the codec (should not happen: keys are checked at install).
    BadKeyLength,
    /// A layout the codec does not handle (IPv4 options / IPv6 extension headers with AH or in
    /// transport mode, fragments in transport mode).
    Unsupported,
    /// SPI mismatch inside the codec.
    WrongSpi,
    /// Inbound: no SA for (SPI, protocol, destination), or not an inbound SA.
    NoSa,
    /// Inbound: ESP in UDP for an SA without UDP encapsulation, or plain ESP for one with it.
    EncapMismatch,
    /// Outbound: no policy covers the packet (never sent in the clear).
    NoPolicy,
    /// Inbound: the inner packet does not match an inbound policy protected by exactly the SAs it
    /// came through.
    PolicyMismatch,
    /// Outbound: a trap policy, or a protect policy whose SA is missing (an acquire is raised,
    /// rate-limited).
    Trap,
    /// A drop policy.
    PolicyDrop,
    /// A reject policy (answered with ICMP "administratively prohibited" when allowed).
    PolicyReject,
    /// Not an IP packet, bad header fields, or a bad range.
    Malformed,
    /// Too big: answered with ICMP "fragmentation needed"/"packet too big", or larger than an IP
    /// packet can be once sealed.
    TooBig,
    /// Inbound: the SA has reached its hard lifetime.
    HardExpired,
    /// Inbound: an ESP dummy packet (next header 59, RFC 4303 §2.6).
    Dummy,
}

impl DropReason {
    /// Number of reasons (size of the counter array).
    pub const COUNT: usize = 23;

    /// Every reason, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::BadLength,
        DropReason::BadIcv,
        DropReason::Replay,
        DropReason::BadPadding,
        DropReason::BadInner,
        DropReason::SeqOverflow,
        DropReason::LifetimeExpired,
        DropReason::NoRoom,
        DropReason::BadKeyLength,
        DropReason::Unsupported,
        DropReason::WrongSpi,
        DropReason::NoSa,
        DropReason::EncapMismatch,
        DropReason::NoPolicy,
        DropReason::PolicyMismatch,
        DropReason::Trap,
        DropReason::PolicyDrop,
        DropReason::PolicyReject,
        DropReason::Malformed,
        DropReason::TooBig,
        DropReason::HardExpired,
        DropReason::Dummy,
    ];

    /// Slot in the counter array (`0..COUNT`).
    pub fn index(self) -> usize {
        match self {
            DropReason::Truncated => 0,
            DropReason::BadLength => 1,
            DropReason::BadIcv => 2,
            DropReason::Replay => 3,
            DropReason::BadPadding => 4,
            DropReason::BadInner => 5,
            DropReason::SeqOverflow => 6,
            DropReason::LifetimeExpired => 7,
            DropReason::NoRoom => 8,
            DropReason::BadKeyLength => 9,
            DropReason::Unsupported => 10,
            DropReason::WrongSpi => 11,
            DropReason::NoSa => 12,
            DropReason::EncapMismatch => 13,
            DropReason::NoPolicy => 14,
            DropReason::PolicyMismatch => 15,
            DropReason::Trap => 16,
            DropReason::PolicyDrop => 17,
            DropReason::PolicyReject => 18,
            DropReason::Malformed => 19,
            DropReason::TooBig => 20,
            DropReason::HardExpired => 21,
            DropReason::Dummy => 22,
        }
    }

    /// Short stable name, as `ipsecctl look` prints it.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => EspError::Truncated.name(),
            DropReason::BadLength => EspError::BadLength.name(),
            DropReason::BadIcv => EspError::BadIcv.name(),
            DropReason::Replay => EspError::Replay.name(),
            DropReason::BadPadding => EspError::BadPadding.name(),
            DropReason::BadInner => EspError::BadInner.name(),
            DropReason::SeqOverflow => EspError::SeqOverflow.name(),
            DropReason::LifetimeExpired => EspError::LifetimeExpired.name(),
            DropReason::NoRoom => EspError::NoRoom.name(),
            DropReason::BadKeyLength => EspError::BadKeyLength.name(),
            DropReason::Unsupported => EspError::Unsupported.name(),
            DropReason::WrongSpi => EspError::WrongSpi.name(),
            DropReason::NoSa => "no-sa",
            DropReason::EncapMismatch => "encap-mismatch",
            DropReason::NoPolicy => "no-policy",
            DropReason::PolicyMismatch => "policy-mismatch",
            DropReason::Trap => "trap",
            DropReason::PolicyDrop => "policy-drop",
            DropReason::PolicyReject => "policy-reject",
            DropReason::Malformed => "malformed",
            DropReason::TooBig => "too-big",
            DropReason::HardExpired => "hard-expired",
            DropReason::Dummy => "dummy",
        }
    }
}

impl From<EspError> for DropReason {
    fn from(e: EspError) -> Self {
        match e {
            EspError::Truncated => DropReason::Truncated,
            EspError::BadLength => DropReason::BadLength,
            EspError::BadIcv => DropReason::BadIcv,
            EspError::Replay => DropReason::Replay,
            EspError::BadPadding => DropReason::BadPadding,
            EspError::BadInner => DropReason::BadInner,
            EspError::SeqOverflow => DropReason::SeqOverflow,
            EspError::LifetimeExpired => DropReason::LifetimeExpired,
            EspError::NoRoom => DropReason::NoRoom,
            EspError::BadKeyLength => DropReason::BadKeyLength,
            EspError::Unsupported => DropReason::Unsupported,
            EspError::WrongSpi => DropReason::WrongSpi,
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One relaxed atomic counter per reason.
#[derive(Debug, Default)]
pub struct DropCounters {
    counts: [AtomicU64; DropReason::COUNT],
}

impl DropCounters {
    /// Count one packet.
    pub fn count(&self, r: DropReason) {
        if let Some(c) = self.counts.get(r.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Packets dropped for `r` so far.
    pub fn get(&self, r: DropReason) -> u64 {
        self.counts
            .get(r.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The non-zero counters, in reason order.
    pub fn snapshot(&self) -> Vec<ipc::policy::DropCount> {
        DropReason::ALL
            .iter()
            .filter_map(|r| {
                let n = self.get(*r);
                (n != 0).then(|| ipc::policy::DropCount {
                    reason: r.name().to_string(),
                    packets: n,
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_a_bijection_and_names_unique() {
        let mut seen = [false; DropReason::COUNT];
        let mut names = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(!seen[i]);
            seen[i] = true;
            assert!(names.insert(r.name()), "{}", r.name());
        }
        for i in 0..EspError::COUNT {
            let e = [
                EspError::Truncated,
                EspError::BadLength,
                EspError::BadIcv,
                EspError::Replay,
                EspError::BadPadding,
                EspError::BadInner,
                EspError::SeqOverflow,
                EspError::LifetimeExpired,
                EspError::NoRoom,
                EspError::BadKeyLength,
                EspError::Unsupported,
                EspError::WrongSpi,
            ][i];
            assert_eq!(DropReason::from(e).index(), e.index());
            assert_eq!(DropReason::from(e).name(), e.name());
        }
    }

    #[test]
    fn counters_snapshot_only_non_zero() {
        let c = DropCounters::default();
        c.count(DropReason::Replay);
        c.count(DropReason::Replay);
        c.count(DropReason::NoSa);
        let s = c.snapshot();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].reason.as_str(), s[0].packets), ("replay", 2));
        assert_eq!((s[1].reason.as_str(), s[1].packets), ("no-sa", 1));
    }
}
