//! The one suite interface the SA uses: algorithm identifiers ([`EncAlg`],
//! [`IntegAlg`], [`SuiteSpec`]) and the keyed state ([`Suite`]) that seals and
//! opens the protected part of an ESP packet in place.
//!
//! Crates by measurement (shared/DESIGN-NOTES.md §3): ring for AES-GCM with
//! the 16-byte ICV; RustCrypto `aes-gcm` for the 12-byte ICV; AES-GCM with the
//! 8-byte ICV composed from RustCrypto `aes` + `ctr` + `ghash` (the `aes-gcm`
//! crate has no 8-byte tag); RustCrypto `aes`/`cbc`/`ctr`/`des`/`hmac`/`sha1`/
//! `sha2`/`md-5` for the rest.
//!
//! Key hygiene: raw key bytes are never kept; the expanded AES/3DES key
//! schedules zeroize on drop (crate `zeroize` features). ring's GCM key and
//! the HMAC inner/outer digest states are not zeroized by those crates.
//! `Debug` prints algorithms only.

use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::AesGcm;
use cipher::block_padding::NoPadding;
use cipher::{BlockCipher, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, StreamCipher};
use ghash::universal_hash::UniversalHash;
use ghash::GHash;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use super::error::{EspError, Result};

/// ESP header (SPI + sequence number) length.
pub const ESP_HDR_LEN: usize = 8;
/// Longest ICV of any suite.
pub const MAX_ICV_LEN: usize = 32;

/// ICV length of AES-GCM (RFC 4106 §8: 8, 12 or 16 octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GcmIcv {
    /// 8 octets (IKEv2 transform 18/ 19 family: ENCR_AES_GCM_8)
    B8,
    /// 12 octets (ENCR_AES_GCM_12)
    B12,
    /// 16 octets (ENCR_AES_GCM_16)
    B16,
}

impl GcmIcv {
    /// Length in octets.
    pub fn octets(self) -> usize {
        match self {
            GcmIcv::B8 => 8,
            GcmIcv::B12 => 12,
            GcmIcv::B16 => 16,
        }
    }
}

/// Encryption (or AEAD) algorithm of an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncAlg {
    /// ENCR_NULL (RFC 2410); only with an integrity algorithm.
    Null,
    /// 3DES-CBC (RFC 2451), 24-byte key, 8-byte IV.
    TripleDesCbc,
    /// AES-CBC (RFC 3602) with a 128-bit key.
    AesCbc128,
    /// AES-CBC with a 192-bit key.
    AesCbc192,
    /// AES-CBC with a 256-bit key.
    AesCbc256,
    /// AES-CTR (RFC 3686); key material = key || 4-byte nonce.
    AesCtr128,
    /// AES-CTR, 192-bit key.
    AesCtr192,
    /// AES-CTR, 256-bit key.
    AesCtr256,
    /// AES-GCM (RFC 4106) 128-bit key; key material = key || 4-byte salt.
    AesGcm128(GcmIcv),
    /// AES-GCM 256-bit key; key material = key || 4-byte salt.
    AesGcm256(GcmIcv),
}

impl EncAlg {
    /// Length of the key material (including the CTR nonce / GCM salt).
    pub fn key_len(self) -> usize {
        match self {
            EncAlg::Null => 0,
            EncAlg::TripleDesCbc => 24,
            EncAlg::AesCbc128 => 16,
            EncAlg::AesCbc192 => 24,
            EncAlg::AesCbc256 => 32,
            EncAlg::AesCtr128 | EncAlg::AesGcm128(_) => 20,
            EncAlg::AesCtr192 => 28,
            EncAlg::AesCtr256 | EncAlg::AesGcm256(_) => 36,
        }
    }

    /// Explicit IV carried in each packet.
    pub fn iv_len(self) -> usize {
        match self {
            EncAlg::Null => 0,
            EncAlg::TripleDesCbc => 8,
            EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => 16,
            _ => 8,
        }
    }

    /// Alignment the plaintext + trailer is padded to.
    pub fn pad_align(self) -> usize {
        match self {
            EncAlg::TripleDesCbc => 8,
            EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => 16,
            _ => 4,
        }
    }

    /// Is this a combined-mode (AEAD) algorithm?
    pub fn is_aead(self) -> bool {
        matches!(self, EncAlg::AesGcm128(_) | EncAlg::AesGcm256(_))
    }

    fn is_cbc(self) -> bool {
        self.pad_align() > 4
    }
}

/// Integrity algorithm of an SA (RFC 2403, 2404, 4868).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegAlg {
    /// No separate integrity: with an AEAD, or encryption-only ESP.
    None,
    /// HMAC-MD5-96 (RFC 2403).
    HmacMd5_96,
    /// HMAC-SHA1-96 (RFC 2404).
    HmacSha1_96,
    /// HMAC-SHA2-256-128 (RFC 4868).
    HmacSha256_128,
    /// HMAC-SHA2-384-192 (RFC 4868).
    HmacSha384_192,
    /// HMAC-SHA2-512-256 (RFC 4868).
    HmacSha512_256,
}

impl IntegAlg {
    /// Key length (the hash output length, as IKE derives it).
    pub fn key_len(self) -> usize {
        match self {
            IntegAlg::None => 0,
            IntegAlg::HmacMd5_96 => 16,
            IntegAlg::HmacSha1_96 => 20,
            IntegAlg::HmacSha256_128 => 32,
            IntegAlg::HmacSha384_192 => 48,
            IntegAlg::HmacSha512_256 => 64,
        }
    }

    /// Truncated ICV length.
    pub fn icv_len(self) -> usize {
        match self {
            IntegAlg::None => 0,
            IntegAlg::HmacMd5_96 | IntegAlg::HmacSha1_96 => 12,
            IntegAlg::HmacSha256_128 => 16,
            IntegAlg::HmacSha384_192 => 24,
            IntegAlg::HmacSha512_256 => 32,
        }
    }
}

/// A validated (encryption, integrity) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SuiteSpec {
    enc: EncAlg,
    integ: IntegAlg,
}

impl SuiteSpec {
    /// Check the combination: an AEAD takes no separate integrity; NULL
    /// encryption needs one (RFC 4303 §3.2 forbids NULL/NULL). Encryption
    /// without integrity is accepted (RFC 4303 allows it; old peers and the
    /// RFC 3602 vectors use it) but should not be offered by default.
    pub fn new(enc: EncAlg, integ: IntegAlg) -> Result<Self> {
        if enc.is_aead() && integ != IntegAlg::None {
            return Err(EspError::Unsupported);
        }
        if enc == EncAlg::Null && integ == IntegAlg::None {
            return Err(EspError::Unsupported);
        }
        Ok(Self { enc, integ })
    }
    /// Encryption algorithm.
    pub fn enc(&self) -> EncAlg {
        self.enc
    }
    /// Integrity algorithm.
    pub fn integ(&self) -> IntegAlg {
        self.integ
    }
    /// ICV length on the wire.
    pub fn icv_len(&self) -> usize {
        match self.enc {
            EncAlg::AesGcm128(t) | EncAlg::AesGcm256(t) => t.octets(),
            _ => self.integ.icv_len(),
        }
    }
}

type Gcm12<C> = AesGcm<C, U12, U12>;

/// GCM with an 8-byte ICV, composed from AES-CTR and GHASH (NIST SP 800-38D).
#[derive(Clone)]
struct Gcm8<C: Clone> {
    cipher: C,
    ghash: GHash,
}

enum CipherKey {
    Null,
    Des3(des::TdesEde3),
    Cbc128(Aes128),
    Cbc192(Aes192),
    Cbc256(Aes256),
    Ctr128(Aes128, [u8; 4]),
    Ctr192(Aes192, [u8; 4]),
    Ctr256(Aes256, [u8; 4]),
    Ring(ring::aead::LessSafeKey, [u8; 4]),
    Gcm12x128(Box<Gcm12<Aes128>>, [u8; 4]),
    Gcm12x256(Box<Gcm12<Aes256>>, [u8; 4]),
    Gcm8x128(Box<Gcm8<Aes128>>, [u8; 4]),
    Gcm8x256(Box<Gcm8<Aes256>>, [u8; 4]),
}

enum MacKey {
    None,
    Md5(Hmac<md5::Md5>),
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha384(Hmac<sha2::Sha384>),
    Sha512(Hmac<sha2::Sha512>),
}

/// Keyed suite: encryption + integrity state of one direction of an SA.
pub struct Suite {
    spec: SuiteSpec,
    cipher: CipherKey,
    mac: MacKey,
    /// Per-SA random whitening for CBC IV generation.
    iv_seed: [u8; 16],
}

impl core::fmt::Debug for Suite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Suite")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.iv_seed);
    }
}

fn salt_of(key: &[u8], n: usize) -> Result<(&[u8], [u8; 4])> {
    let (k, s) = key.split_at_checked(n).ok_or(EspError::BadKeyLength)?;
    let salt: [u8; 4] = s.try_into().map_err(|_| EspError::BadKeyLength)?;
    Ok((k, salt))
}

fn new_block<C: KeyInit>(key: &[u8]) -> Result<C> {
    C::new_from_slice(key).map_err(|_| EspError::BadKeyLength)
}

fn new_gcm8<C: KeyInit + BlockEncrypt + Clone + BlockCipher>(key: &[u8]) -> Result<Box<Gcm8<C>>> {
    let cipher: C = new_block(key)?;
    let mut h = ghash::Block::default();
    cipher.encrypt_block(cipher::generic_array::GenericArray::from_mut_slice(
        h.as_mut_slice(),
    ));
    let ghash = <GHash as cipher::KeyInit>::new(&h);
    Ok(Box::new(Gcm8 { cipher, ghash }))
}

fn new_mac<M: Mac + hmac::digest::KeyInit>(key: &[u8]) -> Result<M> {
    <M as hmac::digest::KeyInit>::new_from_slice(key).map_err(|_| EspError::BadKeyLength)
}

impl Suite {
    /// Key a suite. `enc_key` includes the CTR nonce / GCM salt at its end
    /// (RFC 3686 §5.1, RFC 4106 §8.1); both lengths are checked exactly.
    pub fn new(spec: SuiteSpec, enc_key: &[u8], auth_key: &[u8]) -> Result<Self> {
        if enc_key.len() != spec.enc.key_len() || auth_key.len() != spec.integ.key_len() {
            return Err(EspError::BadKeyLength);
        }
        let cipher = match spec.enc {
            EncAlg::Null => CipherKey::Null,
            EncAlg::TripleDesCbc => CipherKey::Des3(new_block(enc_key)?),
            EncAlg::AesCbc128 => CipherKey::Cbc128(new_block(enc_key)?),
            EncAlg::AesCbc192 => CipherKey::Cbc192(new_block(enc_key)?),
            EncAlg::AesCbc256 => CipherKey::Cbc256(new_block(enc_key)?),
            EncAlg::AesCtr128 => {
                let (k, s) = salt_of(enc_key, 16)?;
                CipherKey::Ctr128(new_block(k)?, s)
            }
            EncAlg::AesCtr192 => {
                let (k, s) = salt_of(enc_key, 24)?;
                CipherKey::Ctr192(new_block(k)?, s)
            }
            EncAlg::AesCtr256 => {
                let (k, s) = salt_of(enc_key, 32)?;
                CipherKey::Ctr256(new_block(k)?, s)
            }
            EncAlg::AesGcm128(icv) | EncAlg::AesGcm256(icv) => {
                let klen = enc_key.len() - 4;
                let (k, s) = salt_of(enc_key, klen)?;
                let big = klen == 32;
                match (icv, big) {
                    (GcmIcv::B16, _) => {
                        let alg = if big {
                            &ring::aead::AES_256_GCM
                        } else {
                            &ring::aead::AES_128_GCM
                        };
                        let key = ring::aead::UnboundKey::new(alg, k)
                            .map_err(|_| EspError::BadKeyLength)?;
                        CipherKey::Ring(ring::aead::LessSafeKey::new(key), s)
                    }
                    (GcmIcv::B12, false) => CipherKey::Gcm12x128(Box::new(new_block(k)?), s),
                    (GcmIcv::B12, true) => CipherKey::Gcm12x256(Box::new(new_block(k)?), s),
                    (GcmIcv::B8, false) => CipherKey::Gcm8x128(new_gcm8(k)?, s),
                    (GcmIcv::B8, true) => CipherKey::Gcm8x256(new_gcm8(k)?, s),
                }
            }
        };
        let mac = match spec.integ {
            IntegAlg::None => MacKey::None,
            IntegAlg::HmacMd5_96 => MacKey::Md5(new_mac(auth_key)?),
            IntegAlg::HmacSha1_96 => MacKey::Sha1(new_mac(auth_key)?),
            IntegAlg::HmacSha256_128 => MacKey::Sha256(new_mac(auth_key)?),
            IntegAlg::HmacSha384_192 => MacKey::Sha384(new_mac(auth_key)?),
            IntegAlg::HmacSha512_256 => MacKey::Sha512(new_mac(auth_key)?),
        };
        let mut iv_seed = [0u8; 16];
        if spec.enc.is_cbc() {
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut iv_seed)
                .map_err(|_| EspError::Unsupported)?;
        }
        Ok(Self {
            spec,
            cipher,
            mac,
            iv_seed,
        })
    }

    /// The algorithms.
    pub fn spec(&self) -> SuiteSpec {
        self.spec
    }
    /// Explicit IV length.
    pub fn iv_len(&self) -> usize {
        self.spec.enc.iv_len()
    }
    /// Padding alignment.
    pub fn pad_align(&self) -> usize {
        self.spec.enc.pad_align()
    }
    /// ICV length.
    pub fn icv_len(&self) -> usize {
        self.spec.icv_len()
    }

    /// Fill `iv` for packet number `seq`. Counter modes (CTR, GCM) need a
    /// unique IV: the 64-bit sequence number (RFC 3686 §3, RFC 4106 §3.1).
    /// CBC needs an unpredictable one: E_K(seed XOR seq) under the SA's own
    /// key (NIST SP 800-38A Appendix C), one block operation, no RNG call.
    fn make_iv(&self, seq: u64, iv: &mut [u8]) {
        let mut block = self.iv_seed;
        for (b, s) in block.iter_mut().rev().zip(seq.to_le_bytes()) {
            *b ^= s;
        }
        match &self.cipher {
            CipherKey::Null => {}
            CipherKey::Des3(c) => ecb_block(c, &mut block, iv),
            CipherKey::Cbc128(c) => ecb_block(c, &mut block, iv),
            CipherKey::Cbc192(c) => ecb_block(c, &mut block, iv),
            CipherKey::Cbc256(c) => ecb_block(c, &mut block, iv),
            _ => {
                for (d, s) in iv.iter_mut().zip(seq.to_be_bytes()) {
                    *d = s;
                }
            }
        }
    }

    /// Seal an ESP packet laid out in `pkt` as
    /// `SPI | seq | IV (space) | plaintext+padding+pad len+next header | ICV (space)`.
    /// The header and trailer must already be written. `seq_hi` is the ESN
    /// high half (`None` without ESN). `iv` overrides IV generation (known-answer
    /// tests only).
    pub(crate) fn seal(
        &self,
        pkt: &mut [u8],
        seq: u64,
        esn: bool,
        iv: Option<&[u8]>,
    ) -> Result<()> {
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let body_end = pkt.len().checked_sub(icv_len).ok_or(EspError::NoRoom)?;
        let (front, icv) = pkt.split_at_mut(body_end);
        let (hdr_iv, body) = front
            .split_at_mut_checked(ESP_HDR_LEN + iv_len)
            .ok_or(EspError::NoRoom)?;
        let (hdr, ivbuf) = hdr_iv.split_at_mut(ESP_HDR_LEN);
        match iv {
            Some(v) if v.len() == iv_len => ivbuf.copy_from_slice(v),
            Some(_) => return Err(EspError::Unsupported),
            None => self.make_iv(seq, ivbuf),
        }
        let seq_hi = if esn { Some((seq >> 32) as u32) } else { None };
        let (aad, aad_len) = aead_aad(hdr, seq_hi);
        let aad = aad.get(..aad_len).unwrap_or(&[]);
        if self.spec.enc.is_aead() {
            return self.aead_seal_raw(ivbuf, aad, body, icv);
        }
        self.cipher_encrypt_raw(ivbuf, body)?;
        self.mac_into(front, seq_hi, icv);
        Ok(())
    }

    /// Verify (first, in constant time) and decrypt in place an ESP packet
    /// `SPI | seq | IV | ciphertext | ICV`. On success the ciphertext region
    /// holds the plaintext + trailer. `seq_hi` is the inferred ESN high half.
    pub(crate) fn open(&self, pkt: &mut [u8], seq_hi: Option<u32>) -> Result<()> {
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let body_end = pkt.len().checked_sub(icv_len).ok_or(EspError::Truncated)?;
        let (front, icv) = pkt.split_at_mut(body_end);
        if front.len() < ESP_HDR_LEN + iv_len + 2 {
            return Err(EspError::Truncated);
        }
        if let Some(mac_icv) = self.mac_compute(front, seq_hi) {
            let want = mac_icv.get(..icv_len).ok_or(EspError::Unsupported)?;
            if !bool::from(want.ct_eq(icv)) {
                return Err(EspError::BadIcv);
            }
        }
        let (hdr_iv, body) = front.split_at_mut(ESP_HDR_LEN + iv_len);
        let (hdr, ivbuf) = hdr_iv.split_at_mut(ESP_HDR_LEN);
        if self.spec.enc.is_cbc() && body.len() % self.pad_align() != 0 {
            return Err(EspError::BadLength);
        }
        let (aad, aad_len) = aead_aad(hdr, seq_hi);
        let aad = aad.get(..aad_len).unwrap_or(&[]);
        if self.spec.enc.is_aead() {
            self.aead_open_raw(ivbuf, aad, body, icv)
        } else {
            self.cipher_decrypt_raw(ivbuf, body)
        }
    }

    /// Non-AEAD encryption of `body` in place with explicit `iv`.
    pub(crate) fn cipher_encrypt_raw(&self, iv: &[u8], body: &mut [u8]) -> Result<()> {
        match &self.cipher {
            CipherKey::Null => Ok(()),
            CipherKey::Des3(c) => cbc_encrypt(c, iv, body),
            CipherKey::Cbc128(c) => cbc_encrypt(c, iv, body),
            CipherKey::Cbc192(c) => cbc_encrypt(c, iv, body),
            CipherKey::Cbc256(c) => cbc_encrypt(c, iv, body),
            CipherKey::Ctr128(c, s) => ctr_apply(c, s, iv, 1, body),
            CipherKey::Ctr192(c, s) => ctr_apply(c, s, iv, 1, body),
            CipherKey::Ctr256(c, s) => ctr_apply(c, s, iv, 1, body),
            _ => Err(EspError::Unsupported),
        }
    }

    /// Non-AEAD decryption of `body` in place with explicit `iv`.
    pub(crate) fn cipher_decrypt_raw(&self, iv: &[u8], body: &mut [u8]) -> Result<()> {
        match &self.cipher {
            CipherKey::Null => Ok(()),
            CipherKey::Des3(c) => cbc_decrypt(c, iv, body),
            CipherKey::Cbc128(c) => cbc_decrypt(c, iv, body),
            CipherKey::Cbc192(c) => cbc_decrypt(c, iv, body),
            CipherKey::Cbc256(c) => cbc_decrypt(c, iv, body),
            CipherKey::Ctr128(c, s) => ctr_apply(c, s, iv, 1, body),
            CipherKey::Ctr192(c, s) => ctr_apply(c, s, iv, 1, body),
            CipherKey::Ctr256(c, s) => ctr_apply(c, s, iv, 1, body),
            _ => Err(EspError::Unsupported),
        }
    }

    /// AEAD seal: nonce = salt || `iv`, any `aad`; tag (truncated to the
    /// suite's ICV length) into `icv`.
    pub(crate) fn aead_seal_raw(&self, iv: &[u8], aad: &[u8], body: &mut [u8], icv: &mut [u8]) -> Result<()> {
        match &self.cipher {
            CipherKey::Ring(k, s) => {
                let nonce = ring::aead::Nonce::assume_unique_for_key(nonce12(s, iv));
                let tag = k
                    .seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), body)
                    .map_err(|_| EspError::Unsupported)?;
                copy_exact(icv, tag.as_ref())
            }
            CipherKey::Gcm12x128(g, s) => gcm12_seal(g, s, iv, aad, body, icv),
            CipherKey::Gcm12x256(g, s) => gcm12_seal(g, s, iv, aad, body, icv),
            CipherKey::Gcm8x128(g, s) => gcm8_seal(g, s, iv, aad, body, icv),
            CipherKey::Gcm8x256(g, s) => gcm8_seal(g, s, iv, aad, body, icv),
            _ => Err(EspError::Unsupported),
        }
    }

    /// AEAD open (tag verified before any plaintext is released).
    pub(crate) fn aead_open_raw(&self, iv: &[u8], aad: &[u8], body: &mut [u8], icv: &[u8]) -> Result<()> {
        match &self.cipher {
            CipherKey::Ring(k, s) => {
                let nonce = ring::aead::Nonce::assume_unique_for_key(nonce12(s, iv));
                let tag: [u8; 16] = icv.try_into().map_err(|_| EspError::Truncated)?;
                k.open_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), ring::aead::Tag::from(tag), body, 0..)
                    .map(|_| ())
                    .map_err(|_| EspError::BadIcv)
            }
            CipherKey::Gcm12x128(g, s) => gcm12_open(g, s, iv, aad, body, icv),
            CipherKey::Gcm12x256(g, s) => gcm12_open(g, s, iv, aad, body, icv),
            CipherKey::Gcm8x128(g, s) => gcm8_open(g, s, iv, aad, body, icv),
            CipherKey::Gcm8x256(g, s) => gcm8_open(g, s, iv, aad, body, icv),
            _ => Err(EspError::Unsupported),
        }
    }

    /// Full (untruncated) HMAC over `data || seq_hi`; `None` without integrity.
    pub(crate) fn mac_compute(&self, data: &[u8], seq_hi: Option<u32>) -> Option<[u8; 64]> {
        fn run<M: Mac + Clone>(m: &M, data: &[u8], seq_hi: Option<u32>) -> [u8; 64] {
            let mut m = m.clone();
            m.update(data);
            if let Some(hi) = seq_hi {
                m.update(&hi.to_be_bytes());
            }
            let mut out = [0u8; 64];
            for (o, t) in out.iter_mut().zip(m.finalize().into_bytes()) {
                *o = t;
            }
            out
        }
        match &self.mac {
            MacKey::None => None,
            MacKey::Md5(m) => Some(run(m, data, seq_hi)),
            MacKey::Sha1(m) => Some(run(m, data, seq_hi)),
            MacKey::Sha256(m) => Some(run(m, data, seq_hi)),
            MacKey::Sha384(m) => Some(run(m, data, seq_hi)),
            MacKey::Sha512(m) => Some(run(m, data, seq_hi)),
        }
    }

    fn mac_into(&self, data: &[u8], seq_hi: Option<u32>, icv: &mut [u8]) {
        if let Some(full) = self.mac_compute(data, seq_hi) {
            for (o, t) in icv.iter_mut().zip(full) {
                *o = t;
            }
        }
    }
}

fn copy_exact(dst: &mut [u8], src: &[u8]) -> Result<()> {
    if dst.len() != src.len() {
        return Err(EspError::Unsupported);
    }
    dst.copy_from_slice(src);
    Ok(())
}

/// RFC 4106 §5: AAD = SPI || seq (8 bytes) or SPI || seq_hi || seq_lo (12).
fn aead_aad(hdr: &[u8], seq_hi: Option<u32>) -> ([u8; 12], usize) {
    let mut aad = [0u8; 12];
    let spi = hdr.get(0..4).unwrap_or(&[0; 4]);
    let lo = hdr.get(4..8).unwrap_or(&[0; 4]);
    let hi_bytes = seq_hi.unwrap_or(0).to_be_bytes();
    let parts: [&[u8]; 3] = match seq_hi {
        Some(_) => [spi, &hi_bytes, lo],
        None => [spi, lo, &[]],
    };
    let mut n = 0;
    for p in parts {
        for &b in p {
            if let Some(d) = aad.get_mut(n) {
                *d = b;
            }
            n += 1;
        }
    }
    (aad, n)
}

fn nonce12(salt: &[u8; 4], iv: &[u8]) -> [u8; 12] {
    let mut n = [0u8; 12];
    for (d, s) in n.iter_mut().zip(salt.iter().chain(iv.iter())) {
        *d = *s;
    }
    n
}

fn ecb_block<C: BlockEncrypt>(c: &C, block: &mut [u8; 16], iv: &mut [u8]) {
    let mut b = cipher::Block::<C>::default();
    for (d, s) in b.iter_mut().zip(block.iter()) {
        *d = *s;
    }
    c.encrypt_block(&mut b);
    for (d, s) in iv.iter_mut().zip(b.iter()) {
        *d = *s;
    }
}

fn cbc_encrypt<C>(c: &C, iv: &[u8], body: &mut [u8]) -> Result<()>
where
    C: BlockEncryptMut + BlockCipher + Clone,
{
    let enc = <cbc::Encryptor<C> as cipher::InnerIvInit>::inner_iv_slice_init(c.clone(), iv)
        .map_err(|_| EspError::Unsupported)?;
    let len = body.len();
    enc.encrypt_padded_mut::<NoPadding>(body, len)
        .map_err(|_| EspError::BadLength)?;
    Ok(())
}

fn cbc_decrypt<C>(c: &C, iv: &[u8], body: &mut [u8]) -> Result<()>
where
    C: BlockDecryptMut + BlockCipher + Clone,
{
    let dec = <cbc::Decryptor<C> as cipher::InnerIvInit>::inner_iv_slice_init(c.clone(), iv)
        .map_err(|_| EspError::Unsupported)?;
    dec.decrypt_padded_mut::<NoPadding>(body)
        .map_err(|_| EspError::BadLength)?;
    Ok(())
}

/// RFC 3686 §4 counter block: nonce(4) || IV(8) || 32-bit counter from 1.
fn ctr_block(salt: &[u8; 4], iv: &[u8], first: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    for (d, s) in b.iter_mut().zip(
        salt.iter()
            .chain(iv.iter())
            .chain(first.to_be_bytes().iter()),
    ) {
        *d = *s;
    }
    b
}

/// XOR `body` with the AES-CTR keystream of counter blocks `salt || iv || n`, n = `first`, `first`+1, …
/// (RFC 3686 starts at 1; GCM's payload keystream starts at 2, after J0).
fn ctr_apply<C>(c: &C, salt: &[u8; 4], iv: &[u8], first: u32, body: &mut [u8]) -> Result<()>
where
    C: BlockEncryptMut + BlockCipher<BlockSize = cipher::consts::U16> + Clone,
{
    let block = ctr_block(salt, iv, first);
    let core = <ctr::CtrCore<C, ctr::flavors::Ctr32BE> as cipher::InnerIvInit>::inner_iv_init(
        c.clone(),
        &block.into(),
    );
    let mut s = ctr::Ctr32BE::<C>::from_core(core);
    s.try_apply_keystream(body).map_err(|_| EspError::BadLength)
}

fn gcm12_seal<C>(
    g: &Gcm12<C>,
    salt: &[u8; 4],
    iv: &[u8],
    aad: &[u8],
    body: &mut [u8],
    icv: &mut [u8],
) -> Result<()>
where
    Gcm12<C>: AeadInPlace<NonceSize = U12, TagSize = U12>,
{
    let nonce = nonce12(salt, iv);
    let tag = g
        .encrypt_in_place_detached(&nonce.into(), aad, body)
        .map_err(|_| EspError::BadLength)?;
    copy_exact(icv, &tag)
}

fn gcm12_open<C>(
    g: &Gcm12<C>,
    salt: &[u8; 4],
    iv: &[u8],
    aad: &[u8],
    body: &mut [u8],
    icv: &[u8],
) -> Result<()>
where
    Gcm12<C>: AeadInPlace<NonceSize = U12, TagSize = U12>,
{
    let nonce = nonce12(salt, iv);
    let tag: [u8; 12] = icv.try_into().map_err(|_| EspError::Truncated)?;
    g.decrypt_in_place_detached(&nonce.into(), aad, body, &tag.into())
        .map_err(|_| EspError::BadIcv)
}

fn gcm8_tag<C>(g: &Gcm8<C>, j0: &[u8; 16], aad: &[u8], ct: &[u8]) -> [u8; 16]
where
    C: BlockEncrypt + BlockCipher<BlockSize = cipher::consts::U16> + Clone,
{
    let mut gh = g.ghash.clone();
    gh.update_padded(aad);
    gh.update_padded(ct);
    let mut lens = ghash::Block::default();
    for (d, s) in lens.iter_mut().zip(
        ((aad.len() as u64) * 8)
            .to_be_bytes()
            .into_iter()
            .chain(((ct.len() as u64) * 8).to_be_bytes()),
    ) {
        *d = s;
    }
    gh.update(&[lens]);
    let s = gh.finalize();
    let mut ek = cipher::Block::<C>::clone_from_slice(j0);
    g.cipher.encrypt_block(&mut ek);
    let mut tag = [0u8; 16];
    for ((t, a), b) in tag.iter_mut().zip(s.iter()).zip(ek.iter()) {
        *t = a ^ b;
    }
    tag
}

fn gcm8_seal<C>(
    g: &Gcm8<C>,
    salt: &[u8; 4],
    iv: &[u8],
    aad: &[u8],
    body: &mut [u8],
    icv: &mut [u8],
) -> Result<()>
where
    C: BlockEncrypt + BlockEncryptMut + BlockCipher<BlockSize = cipher::consts::U16> + Clone,
{
    ctr_apply(&g.cipher, salt, iv, 2, body)?;
    let j0 = ctr_block(salt, iv, 1);
    let tag = gcm8_tag(g, &j0, aad, body);
    copy_exact(icv, tag.get(..8).unwrap_or(&[]))
}

fn gcm8_open<C>(
    g: &Gcm8<C>,
    salt: &[u8; 4],
    iv: &[u8],
    aad: &[u8],
    body: &mut [u8],
    icv: &[u8],
) -> Result<()>
where
    C: BlockEncrypt + BlockEncryptMut + BlockCipher<BlockSize = cipher::consts::U16> + Clone,
{
    let j0 = ctr_block(salt, iv, 1);
    let tag = gcm8_tag(g, &j0, aad, body);
    let want = tag.get(..8).unwrap_or(&[]);
    if !bool::from(want.ct_eq(icv)) {
        return Err(EspError::BadIcv);
    }
    ctr_apply(&g.cipher, salt, iv, 2, body)
}

#[cfg(test)]
impl Suite {
    /// Integrity-only suite with a key of any length (HMAC KATs use odd key sizes).
    pub(crate) fn mac_only_any_key(integ: IntegAlg, key: &[u8]) -> Result<Self> {
        let spec = SuiteSpec::new(EncAlg::Null, integ)?;
        let mac = match integ {
            IntegAlg::None => MacKey::None,
            IntegAlg::HmacMd5_96 => MacKey::Md5(new_mac(key)?),
            IntegAlg::HmacSha1_96 => MacKey::Sha1(new_mac(key)?),
            IntegAlg::HmacSha256_128 => MacKey::Sha256(new_mac(key)?),
            IntegAlg::HmacSha384_192 => MacKey::Sha384(new_mac(key)?),
            IntegAlg::HmacSha512_256 => MacKey::Sha512(new_mac(key)?),
        };
        Ok(Self { spec, cipher: CipherKey::Null, mac, iv_seed: [0; 16] })
    }
}
