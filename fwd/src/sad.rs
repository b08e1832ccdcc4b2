//! SA database (SAD): sans-IO, generic over the stored SA value.
//!
//! Inbound lookup follows RFC 4301 §4.1: an SA is identified by
//! (SPI, security protocol, destination address) — [`SaKey`]. The datapath
//! stores its `esp::EspSa` / `esp::ah::AhSa` wrappers as `V`; nothing here
//! knows about crypto, sockets or threads.
//!
//! Bounded: at most [`Sad::max`] SAs ([`DEFAULT_MAX_SAS`] unless configured);
//! an insert past that fails with [`SadError::Full`]. SPIs 0–255 are reserved
//! (RFC 4303 §2.1) and are neither accepted by [`Sad::insert`] nor returned by
//! the SPI allocator.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// Default bound on the number of SAs in one [`Sad`].
pub const DEFAULT_MAX_SAS: usize = 65_536;

/// SPIs `0..=MAX_RESERVED_SPI` are reserved (0: local use / none, 1–255: IANA).
pub const MAX_RESERVED_SPI: u32 = 255;

/// How many random draws [`Sad::alloc_spi_with`] makes before giving up.
/// With fewer than 2^16 SAs in a 2^32 space the chance of needing more than
/// one draw is ~2^-16, so hitting this bound means the RNG is broken.
pub const SPI_ALLOC_ATTEMPTS: usize = 64;

/// IPsec security protocol (IP protocol number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum IpsecProto {
    /// Encapsulating Security Payload (RFC 4303), protocol 50.
    Esp = 50,
    /// Authentication Header (RFC 4302), protocol 51.
    Ah = 51,
}

impl IpsecProto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for IpsecProto {
    type Error = SadError;
    fn try_from(p: u8) -> Result<Self, SadError> {
        match p {
            50 => Ok(IpsecProto::Esp),
            51 => Ok(IpsecProto::Ah),
            other => Err(SadError::UnknownProto(other)),
        }
    }
}

impl fmt::Display for IpsecProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpsecProto::Esp => "esp",
            IpsecProto::Ah => "ah",
        })
    }
}

/// SA identity for inbound lookup: SPI + protocol + destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaKey {
    /// Security Parameters Index (host order).
    pub spi: u32,
    /// ESP or AH.
    pub proto: IpsecProto,
    /// Destination (outer) address of the SA.
    pub dst: IpAddr,
}

impl SaKey {
    /// Convenience constructor.
    pub fn new(spi: u32, proto: IpsecProto, dst: IpAddr) -> Self {
        SaKey { spi, proto, dst }
    }
}

impl fmt::Display for SaKey {
    /// KLIPS style: `esp.1234abcd@192.0.2.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:x}@{}", self.proto, self.spi, self.dst)
    }
}

/// SAD errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SadError {
    /// An SA with the same key already exists.
    #[error("SA already exists")]
    Duplicate,
    /// The database holds its maximum number of SAs.
    #[error("SA database full")]
    Full,
    /// No SA with that key.
    #[error("no such SA")]
    NotFound,
    /// SPI 0–255 (reserved) in a key.
    #[error("reserved SPI {0}")]
    ReservedSpi(u32),
    /// Not ESP (50) or AH (51).
    #[error("not an IPsec protocol: {0}")]
    UnknownProto(u8),
    /// The random source failed, or kept returning SPIs in use/reserved.
    #[error("could not allocate an SPI")]
    SpiExhausted,
}

/// The SA database. `V` is the SA state the datapath keeps.
#[derive(Debug, Clone)]
pub struct Sad<V> {
    map: HashMap<SaKey, V>,
    /// SPI → number of SAs using it (any proto/dst), so the allocator hands
    /// out SPIs unique on this host, whatever the destination.
    spi_refs: HashMap<u32, u32>,
    max: usize,
}

impl<V> Default for Sad<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Sad<V> {
    /// Empty SAD bounded at [`DEFAULT_MAX_SAS`].
    pub fn new() -> Self {
        Self::with_max(DEFAULT_MAX_SAS)
    }

    /// Empty SAD holding at most `max` SAs.
    pub fn with_max(max: usize) -> Self {
        Sad { map: HashMap::new(), spi_refs: HashMap::new(), max }
    }

    /// The configured bound.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Number of SAs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Add an SA. Fails on a reserved SPI, an existing key, or when full.
    pub fn insert(&mut self, key: SaKey, value: V) -> Result<(), SadError> {
        if key.spi <= MAX_RESERVED_SPI {
            return Err(SadError::ReservedSpi(key.spi));
        }
        if self.map.contains_key(&key) {
            return Err(SadError::Duplicate);
        }
        if self.map.len() >= self.max {
            return Err(SadError::Full);
        }
        self.map.insert(key, value);
        *self.spi_refs.entry(key.spi).or_insert(0) += 1;
        Ok(())
    }

    /// Replace the value of an existing SA (e.g. larval → mature), returning the old one.
    pub fn replace(&mut self, key: &SaKey, value: V) -> Result<V, SadError> {
        match self.map.get_mut(key) {
            Some(slot) => Ok(std::mem::replace(slot, value)),
            None => Err(SadError::NotFound),
        }
    }

    /// Inbound lookup.
    pub fn get(&self, key: &SaKey) -> Option<&V> {
        self.map.get(key)
    }

    /// Inbound lookup, mutable (sequence numbers, replay window, counters).
    pub fn get_mut(&mut self, key: &SaKey) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    /// True when an SA with this key exists.
    pub fn contains(&self, key: &SaKey) -> bool {
        self.map.contains_key(key)
    }

    /// Delete an SA, returning its value.
    pub fn remove(&mut self, key: &SaKey) -> Option<V> {
        let v = self.map.remove(key)?;
        if let MapEntry::Occupied(mut e) = self.spi_refs.entry(key.spi) {
            if *e.get() <= 1 {
                e.remove();
            } else {
                *e.get_mut() -= 1;
            }
        }
        Some(v)
    }

    /// All SAs, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&SaKey, &V)> + '_ {
        self.map.iter()
    }

    /// All SAs, mutable values, in no particular order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&SaKey, &mut V)> + '_ {
        self.map.iter_mut()
    }

    /// True when any SA (any protocol, any destination) uses `spi`.
    pub fn spi_in_use(&self, spi: u32) -> bool {
        self.spi_refs.contains_key(&spi)
    }

    /// Pick a fresh inbound SPI from `rng`: not reserved, not used by any SA.
    /// Draws at most [`SPI_ALLOC_ATTEMPTS`] times; `rng` returning `None` is
    /// a failed random source. Fails with [`SadError::Full`] when no SA could
    /// be inserted anyway.
    ///
    /// The SPI is not reserved by this call: insert the (larval) SA before
    /// allocating the next one.
    pub fn alloc_spi_with<R>(&self, mut rng: R) -> Result<u32, SadError>
    where
        R: FnMut() -> Option<u32>,
    {
        if self.map.len() >= self.max {
            return Err(SadError::Full);
        }
        for _ in 0..SPI_ALLOC_ATTEMPTS {
            let spi = rng().ok_or(SadError::SpiExhausted)?;
            if spi > MAX_RESERVED_SPI && !self.spi_in_use(spi) {
                return Ok(spi);
            }
        }
        Err(SadError::SpiExhausted)
    }

    /// [`Sad::alloc_spi_with`] using the system CSPRNG (SPIs should not be
    /// predictable: RFC 4301 leaves it local, but guessable SPIs help spoofing).
    pub fn alloc_spi(&self) -> Result<u32, SadError> {
        use ring::rand::{SecureRandom, SystemRandom};
        let rng = SystemRandom::new();
        self.alloc_spi_with(|| {
            let mut b = [0u8; 4];
            rng.fill(&mut b).ok()?;
            Some(u32::from_be_bytes(b))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn k(spi: u32) -> SaKey {
        SaKey::new(spi, IpsecProto::Esp, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
    }

    #[test]
    fn insert_get_remove() {
        let mut s = Sad::new();
        s.insert(k(0x1000), "a").unwrap();
        assert_eq!(s.insert(k(0x1000), "b"), Err(SadError::Duplicate));
        assert_eq!(s.get(&k(0x1000)), Some(&"a"));
        *s.get_mut(&k(0x1000)).unwrap() = "c";
        assert_eq!(s.replace(&k(0x1000), "d"), Ok("c"));
        assert_eq!(s.replace(&k(0x2000), "x"), Err(SadError::NotFound));
        assert!(s.spi_in_use(0x1000));
        assert_eq!(s.remove(&k(0x1000)), Some("d"));
        assert!(!s.spi_in_use(0x1000));
        assert!(s.is_empty());
    }

    #[test]
    fn key_includes_proto_and_dst() {
        let mut s = Sad::new();
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        s.insert(k(0x1000), 1).unwrap();
        s.insert(SaKey::new(0x1000, IpsecProto::Ah, k(0).dst), 2).unwrap();
        s.insert(SaKey::new(0x1000, IpsecProto::Esp, v6), 3).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.get(&SaKey::new(0x1000, IpsecProto::Esp, v6)), Some(&3));
        s.remove(&k(0x1000));
        assert!(s.spi_in_use(0x1000), "still used by two SAs");
    }

    #[test]
    fn reserved_and_full() {
        let mut s = Sad::with_max(2);
        assert_eq!(s.insert(k(0), ()), Err(SadError::ReservedSpi(0)));
        assert_eq!(s.insert(k(255), ()), Err(SadError::ReservedSpi(255)));
        s.insert(k(256), ()).unwrap();
        s.insert(k(257), ()).unwrap();
        assert_eq!(s.insert(k(258), ()), Err(SadError::Full));
        assert_eq!(s.alloc_spi(), Err(SadError::Full));
    }

    #[test]
    fn alloc_skips_reserved_and_used() {
        let mut s = Sad::new();
        s.insert(k(0x5000), ()).unwrap();
        let mut seq = [0u32, 7, 255, 0x5000, 0x5001].into_iter();
        assert_eq!(s.alloc_spi_with(|| seq.next()), Ok(0x5001));
        assert_eq!(s.alloc_spi_with(|| Some(3)), Err(SadError::SpiExhausted));
        assert_eq!(s.alloc_spi_with(|| None), Err(SadError::SpiExhausted));
        let spi = s.alloc_spi().unwrap();
        assert!(spi > 255 && spi != 0x5000);
        assert_eq!(IpsecProto::try_from(51), Ok(IpsecProto::Ah));
        assert_eq!(IpsecProto::try_from(6), Err(SadError::UnknownProto(6)));
        assert_eq!(k(0x1234abcd).to_string(), "esp.1234abcd@192.0.2.1");
    }
}
