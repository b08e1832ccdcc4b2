//! ESP framing (RFC 4303 §2): header, padding, trailer — in place in a
//! caller-owned buffer, no allocation. The keyed [`Suite`] does the crypto;
//! [`super::sa::EspSa`] adds sequence numbers, replay and lifetimes.

use core::ops::Range;

use super::error::{EspError, Result};
use super::suite::{Suite, ESP_HDR_LEN};

/// Next header value of a tunnelled IPv4 packet.
pub const NH_IPV4: u8 = 4;
/// Next header value of a tunnelled IPv6 packet.
pub const NH_IPV6: u8 = 41;
/// Next header of a dummy packet (RFC 4303 §2.6): the receiver drops it.
pub const NH_NO_NEXT: u8 = 59;

/// SPI of an ESP packet (first 4 bytes), to find the SA. `None` if too short.
pub fn peek_spi(pkt: &[u8]) -> Option<u32> {
    pkt.get(0..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
}

/// Low 32 bits of the sequence number of an ESP packet.
pub fn peek_seq(pkt: &[u8]) -> Option<u32> {
    pkt.get(4..8)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
}

/// Bytes the caller must leave in front of the payload for `seal`.
pub fn headroom(suite: &Suite) -> usize {
    ESP_HDR_LEN + suite.iv_len()
}

/// Padding length for a payload of `len` bytes.
pub fn pad_len(suite: &Suite, len: usize) -> usize {
    let a = suite.pad_align();
    (a - (len + 2) % a) % a
}

/// Bytes the caller must leave behind a payload of `len` bytes for `seal`.
pub fn tailroom(suite: &Suite, len: usize) -> usize {
    pad_len(suite, len) + 2 + suite.icv_len()
}

/// Most tailroom any payload needs with this suite.
pub fn max_tailroom(suite: &Suite) -> usize {
    suite.pad_align() - 1 + 2 + suite.icv_len()
}

/// Seal `buf[payload]` into an ESP packet built around it in `buf`: the header
/// and IV go into the `headroom` bytes in front, padding, trailer and ICV into
/// the bytes behind. Returns where the ESP packet lies in `buf`. `seq` is the
/// full 64-bit sequence number; its low half is sent, its high half is
/// authenticated only when `esn`.
#[allow(clippy::too_many_arguments)]
pub fn seal_in_place(
    suite: &Suite,
    buf: &mut [u8],
    payload: Range<usize>,
    next_header: u8,
    spi: u32,
    seq: u64,
    esn: bool,
    iv: Option<&[u8]>,
) -> Result<Range<usize>> {
    if payload.start > payload.end || payload.end > buf.len() {
        return Err(EspError::NoRoom);
    }
    let start = payload
        .start
        .checked_sub(headroom(suite))
        .ok_or(EspError::NoRoom)?;
    let plen = payload.end - payload.start;
    let pad = pad_len(suite, plen);
    let trailer_end = payload.end + pad + 2;
    let end = trailer_end + suite.icv_len();
    let pkt = buf.get_mut(start..end).ok_or(EspError::NoRoom)?;
    let (hdr, rest) = pkt.split_at_mut(ESP_HDR_LEN);
    hdr.copy_from_slice(&[spi.to_be_bytes(), (seq as u32).to_be_bytes()].concat_fixed());
    let tstart = headroom(suite) - ESP_HDR_LEN + plen;
    if let Some(trailer) = rest.get_mut(tstart..tstart + pad + 2) {
        let (padding, tail) = trailer.split_at_mut(pad);
        for (i, b) in padding.iter_mut().enumerate() {
            *b = (i + 1) as u8;
        }
        if let [pl, nh] = tail {
            *pl = pad as u8;
            *nh = next_header;
        }
    }
    suite.seal(pkt, seq, esn, iv)?;
    Ok(start..end)
}

trait ConcatFixed {
    fn concat_fixed(&self) -> [u8; 8];
}
impl ConcatFixed for [[u8; 4]; 2] {
    fn concat_fixed(&self) -> [u8; 8] {
        let [a, b] = self;
        let mut o = [0u8; 8];
        for (d, s) in o.iter_mut().zip(a.iter().chain(b.iter())) {
            *d = *s;
        }
        o
    }
}

/// Verify, decrypt and unpad the ESP packet `pkt` in place (the replay check
/// is the SA's job). Returns the payload range inside `pkt` and next header.
/// Padding must be 1, 2, 3, ... (RFC 4303 §2.4 default, checked).
pub fn open_in_place(
    suite: &Suite,
    pkt: &mut [u8],
    seq_hi: Option<u32>,
) -> Result<(Range<usize>, u8)> {
    let min = headroom(suite) + 2 + suite.icv_len();
    if pkt.len() < min {
        return Err(EspError::Truncated);
    }
    suite.open(pkt, seq_hi)?;
    let body_start = headroom(suite);
    let body_end = pkt.len() - suite.icv_len();
    let body = pkt.get(body_start..body_end).ok_or(EspError::Truncated)?;
    let (rest, tail) = body
        .split_at_checked(body.len().saturating_sub(2))
        .ok_or(EspError::Truncated)?;
    let (pad, nh) = match tail {
        [p, n] => (usize::from(*p), *n),
        _ => return Err(EspError::Truncated),
    };
    let payload_len = rest.len().checked_sub(pad).ok_or(EspError::BadPadding)?;
    let padding = rest.get(payload_len..).ok_or(EspError::BadPadding)?;
    for (i, b) in padding.iter().enumerate() {
        if usize::from(*b) != i + 1 {
            return Err(EspError::BadPadding);
        }
    }
    Ok((body_start..body_start + payload_len, nh))
}
