//! The FreeS/WAN "ttodata" value encodings used in ipsec.conf and
//! ipsec.secrets: `0x` followed by hex digits (underscores allowed as
//! separators) and `0s` followed by base64.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use zeroize::Zeroizing;

use crate::error::KeyFmtError;

/// Standard alphabet; padding accepted when present and when absent.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decode a `0x…` or `0s…` value into bytes. The result is wrapped in
/// [`Zeroizing`] because the same decoder is used for secrets.
pub fn decode_prefixed(value: &str) -> Result<Zeroizing<Vec<u8>>, KeyFmtError> {
    if value.is_empty() {
        return Err(KeyFmtError::Empty);
    }
    let prefix = value.get(..2).unwrap_or(value);
    let body = value.get(2..).unwrap_or("");
    match prefix {
        "0x" | "0X" => decode_hex(body),
        "0s" | "0S" => decode_base64(body),
        "0t" | "0T" => Err(KeyFmtError::TextEncodingUnsupported),
        _ => Err(KeyFmtError::UnknownEncoding {
            found: value.chars().take(2).collect(),
        }),
    }
}

/// Decode hex digits (no prefix); `_` separators are skipped.
pub fn decode_hex(digits: &str) -> Result<Zeroizing<Vec<u8>>, KeyFmtError> {
    let mut out = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
    let mut pending_high: Option<u8> = None;
    let mut digit_count = 0usize;
    for (position, ch) in digits.chars().enumerate() {
        if ch == '_' {
            continue;
        }
        let nibble = match ch.to_digit(16) {
            Some(v) => v as u8,
            None => {
                return Err(KeyFmtError::NotHex {
                    detail: format!("character {} is not a hex digit", position + 3),
                })
            }
        };
        digit_count += 1;
        match pending_high.take() {
            None => pending_high = Some(nibble),
            Some(high) => out.push((high << 4) | nibble),
        }
    }
    if digit_count == 0 {
        return Err(KeyFmtError::NotHex {
            detail: "no hex digits after 0x".into(),
        });
    }
    if pending_high.is_some() {
        return Err(KeyFmtError::NotHex {
            detail: format!("odd number of hex digits ({digit_count})"),
        });
    }
    Ok(out)
}

/// Decode base64 (no prefix), padding optional.
pub fn decode_base64(text: &str) -> Result<Zeroizing<Vec<u8>>, KeyFmtError> {
    if text.is_empty() {
        return Err(KeyFmtError::NotBase64 {
            detail: "no base64 digits after 0s".into(),
        });
    }
    BASE64_LENIENT
        .decode(text)
        .map(Zeroizing::new)
        .map_err(|e| KeyFmtError::NotBase64 {
            detail: e.to_string(),
        })
}

/// `0s` + standard base64 with padding.
pub fn encode_base64_prefixed(bytes: &[u8]) -> String {
    format!(
        "0s{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// `0x` + lower-case hex.
pub fn encode_hex_prefixed(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("0x");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Strip leading zero octets of a big-endian unsigned number.
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first_nonzero = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first_nonzero..).unwrap_or(&[])
}

/// Number of significant bits of a big-endian unsigned number.
pub(crate) fn bit_length(bytes: &[u8]) -> usize {
    let significant = strip_leading_zeros(bytes);
    match significant.first() {
        None => 0,
        Some(&top) => (significant.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn hex_with_separators() {
        assert_eq!(&*decode_prefixed("0x01_02ff").unwrap(), &[1, 2, 0xff]);
        assert_eq!(&*decode_prefixed("0X0A").unwrap(), &[10]);
    }

    #[test]
    fn hex_errors() {
        assert_eq!(
            decode_prefixed("0x123").unwrap_err().to_string(),
            "not valid hex: odd number of hex digits (3)"
        );
        assert!(decode_prefixed("0xzz")
            .unwrap_err()
            .to_string()
            .starts_with("not valid hex"));
        assert!(decode_prefixed("0x").is_err());
    }

    #[test]
    fn base64_padding_optional() {
        assert_eq!(&*decode_prefixed("0sAw==").unwrap(), &[3]);
        assert_eq!(&*decode_prefixed("0sAw").unwrap(), &[3]);
        assert!(decode_prefixed("0s!!")
            .unwrap_err()
            .to_string()
            .starts_with("not valid base64"));
    }

    #[test]
    fn prefixes() {
        assert_eq!(decode_prefixed("").unwrap_err(), KeyFmtError::Empty);
        assert!(matches!(
            decode_prefixed("AQ"),
            Err(KeyFmtError::UnknownEncoding { .. })
        ));
        assert!(matches!(
            decode_prefixed("é"),
            Err(KeyFmtError::UnknownEncoding { .. })
        ));
        assert_eq!(
            decode_prefixed("0tabc").unwrap_err(),
            KeyFmtError::TextEncodingUnsupported
        );
    }

    #[test]
    fn bits() {
        assert_eq!(bit_length(&[0, 0, 1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(encode_hex_prefixed(&[0, 0xab]), "0x00ab");
        assert_eq!(encode_base64_prefixed(&[3]), "0sAw==");
    }
}
