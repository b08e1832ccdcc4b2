//! Security associations as they travel to fwd: from confd (manual keying, setkey scripts) and from
//! ikerd (negotiated SAs). fwd treats every field as untrusted and validates it before use
//! (`fwd::sa_request`). Keys are wiped on drop and never shown by `Debug`.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use zeroize::Zeroizing;

/// Key bytes on the wire: zeroized on drop, `<redacted>` in Debug output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SecretBytes(#[serde(with = "secret_serde")] pub Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

mod secret_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;
    pub fn serialize<S: Serializer>(v: &Zeroizing<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<Vec<u8>>, D::Error> {
        Ok(Zeroizing::new(Vec::<u8>::deserialize(d)?))
    }
}

#[cfg(test)]
impl proptest::arbitrary::Arbitrary for SecretBytes {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::strategy::Strategy;
        proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..64).prop_map(SecretBytes::new).boxed()
    }
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IpsecProto {
    Esp,
    Ah,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaMode {
    Tunnel,
    Transport,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    In,
    Out,
}

/// ESP encryption as named by the IKE/ESP registries and ipsec.conf's `esp=`.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EncrAlg {
    Null,
    TripleDesCbc,
    AesCbc { key_bits: u16 },
    AesCtr { key_bits: u16 },
    AesGcm { key_bits: u16, icv_bytes: u8 },
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IntegAlg {
    None,
    HmacMd5_96,
    HmacSha1_96,
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

/// Soft limits raise an expire event (rekey); hard limits delete the SA. 0 = no limit.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SaLifetime {
    pub soft_bytes: u64,
    pub hard_bytes: u64,
    pub soft_packets: u64,
    pub hard_packets: u64,
    pub soft_secs: u64,
    pub hard_secs: u64,
}

/// RFC 3948 UDP encapsulation: the ports the ESP packets travel between.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpEncap {
    pub src_port: u16,
    pub dst_port: u16,
}

/// One SA to install.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaSpec {
    /// The connection it belongs to (for listings, and to delete a conn's SAs together).
    pub conn: String,
    pub direction: Direction,
    pub proto: IpsecProto,
    pub spi: u32,
    /// Outer addresses.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub mode: SaMode,
    pub encap: Option<UdpEncap>,
    pub encr: EncrAlg,
    /// For CTR and GCM, the 4-byte nonce/salt follows the key (RFC 3686, RFC 4106).
    pub enc_key: SecretBytes,
    pub integ: IntegAlg,
    pub auth_key: SecretBytes,
    pub esn: bool,
    /// Anti-replay window in packets; 0 turns replay protection off (manual keying, as FreeS/WAN's
    /// `espreplay_window=0`).
    pub replay_window: u32,
    pub lifetime: SaLifetime,
}

/// What identifies an SA in fwd (RFC 4301: SPI, protocol, destination).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SaId {
    pub spi: u32,
    pub proto: IpsecProto,
    pub dst: IpAddr,
}

impl SaSpec {
    pub fn id(&self) -> SaId {
        SaId { spi: self.spi, proto: self.proto, dst: self.dst }
    }
}
