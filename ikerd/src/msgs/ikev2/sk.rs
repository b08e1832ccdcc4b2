//! Encrypted (SK, RFC 7296 §3.14) and Encrypted Fragment (SKF, RFC 7383)
//! payloads, and helpers to open and seal them with AES-CBC + HMAC or
//! AES-GCM (RFC 5282).

use super::enums::PayloadType;
use super::{decode_payload_chain, encode_payload_chain, Header, Message, Payload, PayloadBody};
use crate::msgs::codec::{put_u16, DecodeError};
use crate::msgs::reader::Reader;
use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use aes_gcm::aead::{consts::U12, consts::U16, AeadInPlace, KeyInit};
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Most fragments accepted for one message.
pub const MAX_FRAGMENTS: usize = 128;

/// SK payload: IV ‖ ciphertext ‖ ICV, and the type of the first inner
/// payload (carried in the SK generic header's next-payload field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkPayload {
    /// First inner payload type.
    pub first_inner: PayloadType,
    /// IV, ciphertext and ICV.
    pub data: Vec<u8>,
}

/// SKF payload (RFC 7383 §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkfPayload {
    /// First inner payload type (only in fragment 1; 0 otherwise).
    pub first_inner: PayloadType,
    /// Fragment number, from 1.
    pub fragment_number: u16,
    /// Total fragments.
    pub total_fragments: u16,
    /// IV, ciphertext and ICV.
    pub data: Vec<u8>,
}

impl SkfPayload {
    pub(super) fn read_with_next(next: PayloadType, body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let fragment_number = r.u16("SKF fragment number")?;
        let total_fragments = r.u16("SKF total fragments")?;
        if fragment_number == 0 || fragment_number > total_fragments {
            return Err(DecodeError::Invalid {
                what: "SKF fragment number",
                value: u64::from(fragment_number),
            });
        }
        if usize::from(total_fragments) > MAX_FRAGMENTS {
            return Err(DecodeError::TooMany {
                what: "fragments",
                limit: MAX_FRAGMENTS,
            });
        }
        Ok(SkfPayload {
            first_inner: next,
            fragment_number,
            total_fragments,
            data: r.rest().to_vec(),
        })
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.fragment_number);
        put_u16(out, self.total_fragments);
        out.extend_from_slice(&self.data);
    }
}

/// Encryption transform for SK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encr {
    /// ENCR_AES_CBC (key length from SK_e: 16/24/32).
    AesCbc,
    /// ENCR_AES_GCM_16: SK_e = key ‖ 4-byte salt.
    AesGcm16,
    /// ENCR_AES_GCM_12.
    AesGcm12,
}

/// Integrity transform for SK (must be None with GCM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integ {
    /// No integrity transform (AEAD only).
    None,
    /// AUTH_HMAC_SHA1_96.
    HmacSha1_96,
    /// AUTH_HMAC_SHA2_256_128.
    HmacSha256_128,
    /// AUTH_HMAC_SHA2_384_192.
    HmacSha384_192,
    /// AUTH_HMAC_SHA2_512_256.
    HmacSha512_256,
}

impl Integ {
    /// ICV length.
    pub fn icv_len(self) -> usize {
        match self {
            Integ::None => 0,
            Integ::HmacSha1_96 => 12,
            Integ::HmacSha256_128 => 16,
            Integ::HmacSha384_192 => 24,
            Integ::HmacSha512_256 => 32,
        }
    }
}

/// One direction's SK_e / SK_a with their transforms. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SkKeys {
    #[zeroize(skip)]
    encr: Encr,
    #[zeroize(skip)]
    integ: Integ,
    sk_e: Vec<u8>,
    sk_a: Vec<u8>,
}

impl std::fmt::Debug for SkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkKeys")
            .field("encr", &self.encr)
            .field("integ", &self.integ)
            .finish_non_exhaustive()
    }
}

/// A decrypted SK/SKF message.
#[derive(Debug)]
pub struct Opened {
    /// The outer message (header and cleartext payloads).
    pub message: Message,
    /// The decrypted inner payloads (SK only; None for a fragment).
    pub inner: Option<Vec<Payload>>,
    /// First inner payload type.
    pub first_inner: PayloadType,
    /// Plaintext without padding (the fragment data for SKF).
    pub plaintext: Zeroizing<Vec<u8>>,
}

type HmacSha1 = Hmac<sha1::Sha1>;
type HmacSha256 = Hmac<sha2::Sha256>;
type HmacSha384 = Hmac<sha2::Sha384>;
type HmacSha512 = Hmac<sha2::Sha512>;

fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut m =
        <M as Mac>::new_from_slice(key).map_err(|_| DecodeError::Crypto("bad integrity key"))?;
    m.update(data);
    Ok(m.finalize().into_bytes().to_vec())
}

fn gcm_apply<A: AeadInPlace + KeyInit>(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag: Option<&[u8]>,
) -> Result<Vec<u8>, DecodeError> {
    let c = A::new_from_slice(key).map_err(|_| DecodeError::Crypto("bad GCM key length"))?;
    let nonce = aes_gcm::Nonce::<U12>::from_slice(nonce);
    let nonce = aead_nonce::<A>(nonce)?;
    match tag {
        Some(t) => {
            let tag = aead_tag::<A>(t)?;
            c.decrypt_in_place_detached(&nonce, aad, buf, &tag)
                .map_err(|_| DecodeError::Crypto("GCM tag mismatch"))?;
            Ok(Vec::new())
        }
        None => {
            let tag = c
                .encrypt_in_place_detached(&nonce, aad, buf)
                .map_err(|_| DecodeError::Crypto("GCM encrypt"))?;
            Ok(tag.to_vec())
        }
    }
}

fn aead_nonce<A: AeadInPlace>(
    n: &aes_gcm::Nonce<U12>,
) -> Result<aes_gcm::aead::Nonce<A>, DecodeError> {
    if n.len() != <A as aes_gcm::aead::AeadCore>::NonceSize::USIZE {
        return Err(DecodeError::Crypto("nonce size"));
    }
    Ok(aes_gcm::aead::Nonce::<A>::clone_from_slice(n))
}

fn aead_tag<A: AeadInPlace>(t: &[u8]) -> Result<aes_gcm::aead::Tag<A>, DecodeError> {
    if t.len() != <A as aes_gcm::aead::AeadCore>::TagSize::USIZE {
        return Err(DecodeError::Crypto("tag size"));
    }
    Ok(aes_gcm::aead::Tag::<A>::clone_from_slice(t))
}

use aes_gcm::aead::generic_array::typenum::Unsigned;

type Gcm<C, T> = aes_gcm::AesGcm<C, U12, T>;

impl SkKeys {
    /// Keys for one direction. For GCM, `sk_e` is key ‖ salt (RFC 5282 §7)
    /// and `integ` must be [`Integ::None`]. For CBC, `integ` is required;
    /// `sk_a` may be empty only for [`SkKeys::open_unverified`] (then
    /// [`SkKeys::open`] and [`SkKeys::seal`] fail).
    pub fn new(encr: Encr, integ: Integ, sk_e: &[u8], sk_a: &[u8]) -> Result<Self, DecodeError> {
        let klen = match encr {
            Encr::AesCbc => {
                if integ == Integ::None {
                    return Err(DecodeError::Crypto("CBC needs an integrity transform"));
                }
                sk_e.len()
            }
            Encr::AesGcm16 | Encr::AesGcm12 => {
                if integ != Integ::None {
                    return Err(DecodeError::Crypto("integrity transform with AEAD"));
                }
                sk_e.len().wrapping_sub(4)
            }
        };
        if !matches!(klen, 16 | 24 | 32) {
            return Err(DecodeError::Crypto("bad encryption key length"));
        }
        Ok(SkKeys {
            encr,
            integ,
            sk_e: sk_e.to_vec(),
            sk_a: sk_a.to_vec(),
        })
    }

    fn iv_len(&self) -> usize {
        match self.encr {
            Encr::AesCbc => 16,
            Encr::AesGcm16 | Encr::AesGcm12 => 8,
        }
    }

    fn icv_len(&self) -> usize {
        match self.encr {
            Encr::AesCbc => self.integ.icv_len(),
            Encr::AesGcm16 => 16,
            Encr::AesGcm12 => 12,
        }
    }

    fn compute_icv(&self, data: &[u8]) -> Result<Vec<u8>, DecodeError> {
        if self.sk_a.is_empty() {
            return Err(DecodeError::Crypto("no integrity key"));
        }
        let full = match self.integ {
            Integ::None => return Ok(Vec::new()),
            Integ::HmacSha1_96 => mac::<HmacSha1>(&self.sk_a, data)?,
            Integ::HmacSha256_128 => mac::<HmacSha256>(&self.sk_a, data)?,
            Integ::HmacSha384_192 => mac::<HmacSha384>(&self.sk_a, data)?,
            Integ::HmacSha512_256 => mac::<HmacSha512>(&self.sk_a, data)?,
        };
        Ok(full.get(..self.integ.icv_len()).unwrap_or(&full).to_vec())
    }

    fn gcm(
        &self,
        nonce_iv: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: Option<&[u8]>,
    ) -> Result<Vec<u8>, DecodeError> {
        let split = self.sk_e.len().saturating_sub(4);
        let (key, salt) = self.sk_e.split_at(split);
        let mut nonce = Zeroizing::new([0u8; 12]);
        nonce
            .get_mut(..4)
            .ok_or(DecodeError::Crypto("salt"))?
            .copy_from_slice(salt);
        nonce
            .get_mut(4..)
            .ok_or(DecodeError::Crypto("iv"))?
            .copy_from_slice(nonce_iv);
        let n: &[u8] = &nonce[..];
        match (key.len(), self.encr) {
            (16, Encr::AesGcm16) => gcm_apply::<Gcm<aes::Aes128, U16>>(key, n, aad, buf, tag),
            (24, Encr::AesGcm16) => gcm_apply::<Gcm<aes::Aes192, U16>>(key, n, aad, buf, tag),
            (32, Encr::AesGcm16) => gcm_apply::<Gcm<aes::Aes256, U16>>(key, n, aad, buf, tag),
            (16, _) => gcm_apply::<Gcm<aes::Aes128, U12>>(key, n, aad, buf, tag),
            (24, _) => gcm_apply::<Gcm<aes::Aes192, U12>>(key, n, aad, buf, tag),
            (32, _) => gcm_apply::<Gcm<aes::Aes256, U12>>(key, n, aad, buf, tag),
            _ => Err(DecodeError::Crypto("bad GCM key length")),
        }
    }

    fn cbc(&self, iv: &[u8], buf: &mut [u8], decrypt: bool) -> Result<(), DecodeError> {
        macro_rules! run {
            ($c:ty) => {{
                if decrypt {
                    cbc::Decryptor::<$c>::new_from_slices(&self.sk_e, iv)
                        .map_err(|_| DecodeError::Crypto("CBC key/iv"))?
                        .decrypt_padded_mut::<NoPadding>(buf)
                        .map_err(|_| DecodeError::Crypto("CBC ciphertext not a block multiple"))?;
                } else {
                    let n = buf.len();
                    cbc::Encryptor::<$c>::new_from_slices(&self.sk_e, iv)
                        .map_err(|_| DecodeError::Crypto("CBC key/iv"))?
                        .encrypt_padded_mut::<NoPadding>(buf, n)
                        .map_err(|_| DecodeError::Crypto("CBC plaintext not a block multiple"))?;
                }
            }};
        }
        match self.sk_e.len() {
            16 => run!(aes::Aes128),
            24 => run!(aes::Aes192),
            32 => run!(aes::Aes256),
            _ => return Err(DecodeError::Crypto("bad CBC key length")),
        }
        Ok(())
    }

    /// Verify and decrypt the SK or SKF payload of the raw message `raw`.
    pub fn open(&self, raw: &[u8]) -> Result<Opened, DecodeError> {
        self.open_inner(raw, true)
    }

    /// Decrypt without checking the CBC ICV (for captures whose SK_a is not
    /// known; the ICV length still comes from the integrity transform).
    /// GCM always checks its tag. Never use this on live traffic.
    pub fn open_unverified(&self, raw: &[u8]) -> Result<Opened, DecodeError> {
        self.open_inner(raw, false)
    }

    fn open_inner(&self, raw: &[u8], verify: bool) -> Result<Opened, DecodeError> {
        let message = Message::decode(raw)?;
        let (first_inner, data, is_frag) = match message.encrypted().map(|p| &p.body) {
            Some(PayloadBody::Sk(sk)) => (sk.first_inner, sk.data.as_slice(), false),
            Some(PayloadBody::Skf(f)) => (f.first_inner, f.data.as_slice(), true),
            _ => return Err(DecodeError::Chain("no SK/SKF payload")),
        };
        // The SK/SKF data are the last bytes of the message.
        let iv_start = raw
            .len()
            .checked_sub(data.len())
            .ok_or(DecodeError::Crypto("layout"))?;
        let (iv_len, icv_len) = (self.iv_len(), self.icv_len());
        if data.len() < iv_len + icv_len + 1 {
            return Err(DecodeError::BadLength {
                what: "SK data",
                len: data.len(),
            });
        }
        let (iv, rest) = data.split_at(iv_len);
        let (ct, icv) = rest.split_at(rest.len() - icv_len);
        let mut buf = Zeroizing::new(ct.to_vec());
        match self.encr {
            Encr::AesCbc => {
                if verify {
                    let signed = raw
                        .get(..raw.len() - icv_len)
                        .ok_or(DecodeError::Crypto("layout"))?;
                    let want = self.compute_icv(signed)?;
                    if !bool::from(want.ct_eq(icv)) {
                        return Err(DecodeError::Crypto("ICV mismatch"));
                    }
                }
                self.cbc(iv, &mut buf, true)?;
            }
            Encr::AesGcm16 | Encr::AesGcm12 => {
                let aad = raw.get(..iv_start).ok_or(DecodeError::Crypto("layout"))?;
                self.gcm(iv, aad, &mut buf, Some(icv))?;
            }
        }
        let pad = usize::from(*buf.last().ok_or(DecodeError::Crypto("empty plaintext"))?);
        let keep = buf
            .len()
            .checked_sub(pad + 1)
            .ok_or(DecodeError::Crypto("pad length exceeds plaintext"))?;
        buf.truncate(keep);
        let inner = if is_frag {
            None
        } else {
            Some(decode_payload_chain(first_inner, &buf, false)?)
        };
        Ok(Opened {
            message,
            inner,
            first_inner,
            plaintext: buf,
        })
    }

    /// Build a message holding `outer` cleartext payloads followed by an SK
    /// payload that carries `inner`, encrypted with `iv` (16 bytes for CBC,
    /// 8 for GCM; the caller supplies a fresh random or counter IV).
    pub fn seal(
        &self,
        header: &Header,
        outer: &[Payload],
        inner: &[Payload],
        iv: &[u8],
    ) -> Result<Vec<u8>, DecodeError> {
        let mut plain = Zeroizing::new(Vec::new());
        let first_inner = encode_payload_chain(inner, &mut plain);
        self.seal_container(header, outer, &plain, iv, |data| {
            PayloadBody::Sk(SkPayload { first_inner, data })
        })
    }

    /// Split `inner` into RFC 7383 fragments of at most `max_chunk`
    /// plaintext bytes each and seal every one in its own message (same
    /// header and message ID). `next_iv` supplies one IV per fragment.
    pub fn seal_fragments(
        &self,
        header: &Header,
        inner: &[Payload],
        max_chunk: usize,
        next_iv: &mut dyn FnMut() -> Vec<u8>,
    ) -> Result<Vec<Vec<u8>>, DecodeError> {
        if max_chunk == 0 {
            return Err(DecodeError::Crypto("fragment size 0"));
        }
        let mut plain = Zeroizing::new(Vec::new());
        let first_inner = encode_payload_chain(inner, &mut plain);
        let chunks: Vec<&[u8]> = plain.chunks(max_chunk).collect();
        let total = u16::try_from(chunks.len()).map_err(|_| DecodeError::TooMany {
            what: "fragments",
            limit: MAX_FRAGMENTS,
        })?;
        if usize::from(total) > MAX_FRAGMENTS || total == 0 {
            return Err(DecodeError::TooMany {
                what: "fragments",
                limit: MAX_FRAGMENTS,
            });
        }
        let mut out = Vec::with_capacity(chunks.len());
        for (n, chunk) in (1u16..).zip(chunks) {
            let first = if n == 1 {
                first_inner
            } else {
                PayloadType::NONE
            };
            let iv = next_iv();
            out.push(self.seal_container(header, &[], chunk, &iv, |data| {
                PayloadBody::Skf(SkfPayload {
                    first_inner: first,
                    fragment_number: n,
                    total_fragments: total,
                    data,
                })
            })?);
        }
        Ok(out)
    }

    fn seal_container(
        &self,
        header: &Header,
        outer: &[Payload],
        inner_plain: &[u8],
        iv: &[u8],
        wrap: impl FnOnce(Vec<u8>) -> PayloadBody,
    ) -> Result<Vec<u8>, DecodeError> {
        if iv.len() != self.iv_len() {
            return Err(DecodeError::Crypto("IV length"));
        }
        let mut plain = Zeroizing::new(inner_plain.to_vec());
        let block = if self.encr == Encr::AesCbc { 16 } else { 1 };
        let pad = (block - (plain.len() + 1) % block) % block;
        let padded = plain.len() + pad;
        plain.resize(padded, 0);
        plain.push(u8::try_from(pad).unwrap_or(0));
        let icv_len = self.icv_len();
        let mut data = iv.to_vec();
        data.extend_from_slice(&plain);
        data.resize(data.len() + icv_len, 0);
        // Generic header + SKF numbers must fit the 16-bit payload length.
        if data.len() + 8 > usize::from(u16::MAX) {
            return Err(DecodeError::Crypto("SK payload too large"));
        }
        let mut payloads = outer.to_vec();
        payloads.push(Payload::new(wrap(data)));
        let mut raw = Message {
            header: header.clone(),
            payloads,
        }
        .encode();
        let total = raw.len();
        let ct_end = total
            .checked_sub(icv_len)
            .ok_or(DecodeError::Crypto("layout"))?;
        let ct_start = ct_end
            .checked_sub(plain.len())
            .ok_or(DecodeError::Crypto("layout"))?;
        let iv_start = ct_start
            .checked_sub(iv.len())
            .ok_or(DecodeError::Crypto("layout"))?;
        match self.encr {
            Encr::AesCbc => {
                let ct = raw
                    .get_mut(ct_start..ct_end)
                    .ok_or(DecodeError::Crypto("layout"))?;
                self.cbc(iv, ct, false)?;
                let icv =
                    self.compute_icv(raw.get(..ct_end).ok_or(DecodeError::Crypto("layout"))?)?;
                raw.get_mut(ct_end..)
                    .ok_or(DecodeError::Crypto("layout"))?
                    .copy_from_slice(&icv);
            }
            Encr::AesGcm16 | Encr::AesGcm12 => {
                let aad = raw
                    .get(..iv_start)
                    .ok_or(DecodeError::Crypto("layout"))?
                    .to_vec();
                let mut buf = Zeroizing::new(plain.to_vec());
                let tag = self.gcm(iv, &aad, &mut buf, None)?;
                raw.get_mut(ct_start..ct_end)
                    .ok_or(DecodeError::Crypto("layout"))?
                    .copy_from_slice(&buf);
                raw.get_mut(ct_end..)
                    .ok_or(DecodeError::Crypto("layout"))?
                    .copy_from_slice(&tag);
            }
        }
        Ok(raw)
    }
}

/// Reassemble decrypted SKF fragments (RFC 7383 §2.6): each entry is one
/// [`Opened`] fragment; all numbers 1..=total must be present once.
pub fn reassemble(fragments: &[Opened]) -> Result<Vec<Payload>, DecodeError> {
    let mut parts: Vec<(u16, u16, PayloadType, &[u8])> = Vec::new();
    for f in fragments {
        match f.message.encrypted().map(|p| &p.body) {
            Some(PayloadBody::Skf(s)) => parts.push((
                s.fragment_number,
                s.total_fragments,
                s.first_inner,
                &f.plaintext,
            )),
            _ => return Err(DecodeError::Chain("not a fragment")),
        }
    }
    if parts.len() > MAX_FRAGMENTS {
        return Err(DecodeError::TooMany {
            what: "fragments",
            limit: MAX_FRAGMENTS,
        });
    }
    parts.sort_by_key(|p| p.0);
    let total = parts.first().map_or(0, |p| p.1);
    if usize::from(total) != parts.len() {
        return Err(DecodeError::CountMismatch {
            what: "fragments",
            declared: usize::from(total),
            found: parts.len(),
        });
    }
    let mut all = Zeroizing::new(Vec::new());
    let mut first = PayloadType::NONE;
    for (i, (n, t, fi, d)) in parts.iter().enumerate() {
        if usize::from(*n) != i + 1 || *t != total {
            return Err(DecodeError::Chain("fragment numbering"));
        }
        if *n == 1 {
            first = *fi;
        }
        all.extend_from_slice(d);
    }
    decode_payload_chain(first, &all, false)
}
