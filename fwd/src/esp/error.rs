//! Typed drop reasons, so the datapath can count drops per reason.

/// Why a packet could not be sealed or opened. `Copy` and allocation-free;
/// [`EspError::index`] maps each reason to a slot in a per-reason counter array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EspError {
    /// The packet is shorter than header + IV + minimal trailer + ICV.
    #[error("packet truncated")]
    Truncated,
    /// The encrypted part is not a multiple of the cipher block size.
    #[error("ciphertext length not a multiple of the block size")]
    BadLength,
    /// The integrity check value (or AEAD tag) did not verify.
    #[error("ICV mismatch")]
    BadIcv,
    /// Sequence number already seen, or left of the anti-replay window.
    #[error("replayed or too old sequence number")]
    Replay,
    /// Pad length too large, or padding bytes not 1, 2, 3, ...
    #[error("bad padding")]
    BadPadding,
    /// The inner packet of a tunnel-mode SA is not a well-formed IP packet.
    #[error("malformed inner packet")]
    BadInner,
    /// The outbound sequence number would wrap: the SA must be rekeyed.
    #[error("sequence number overflow, rekey needed")]
    SeqOverflow,
    /// The hard lifetime (bytes or packets) of the SA is reached.
    #[error("hard lifetime expired")]
    LifetimeExpired,
    /// The caller's buffer lacks headroom or tailroom for the ESP/AH framing.
    #[error("buffer too small for the ESP/AH framing")]
    NoRoom,
    /// Key material of the wrong length for the suite.
    #[error("bad key length")]
    BadKeyLength,
    /// A combination the codec does not support (e.g. AEAD + separate MAC,
    /// or IPv4 options / IPv6 extension headers in front of AH).
    #[error("unsupported")]
    Unsupported,
    /// The packet's SPI is not the SA's.
    #[error("SPI mismatch")]
    WrongSpi,
}

impl EspError {
    /// Number of distinct reasons: size of a per-reason counter array.
    pub const COUNT: usize = 12;

    /// Stable slot for per-reason drop counters (`0..COUNT`).
    pub fn index(self) -> usize {
        match self {
            EspError::Truncated => 0,
            EspError::BadLength => 1,
            EspError::BadIcv => 2,
            EspError::Replay => 3,
            EspError::BadPadding => 4,
            EspError::BadInner => 5,
            EspError::SeqOverflow => 6,
            EspError::LifetimeExpired => 7,
            EspError::NoRoom => 8,
            EspError::BadKeyLength => 9,
            EspError::Unsupported => 10,
            EspError::WrongSpi => 11,
        }
    }

    /// Short stable name, for counters in `ipsecctl` output.
    pub fn name(self) -> &'static str {
        match self {
            EspError::Truncated => "truncated",
            EspError::BadLength => "bad-length",
            EspError::BadIcv => "bad-icv",
            EspError::Replay => "replay",
            EspError::BadPadding => "bad-padding",
            EspError::BadInner => "bad-inner",
            EspError::SeqOverflow => "seq-overflow",
            EspError::LifetimeExpired => "lifetime-expired",
            EspError::NoRoom => "no-room",
            EspError::BadKeyLength => "bad-key-length",
            EspError::Unsupported => "unsupported",
            EspError::WrongSpi => "wrong-spi",
        }
    }
}

/// Result alias for the codec.
pub type Result<T> = core::result::Result<T, EspError>;
