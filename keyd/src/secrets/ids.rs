//! ID selectors of ipsec.secrets entries, and how they match the IDs of a
//! connection's two ends.
//!
//! | written                         | selector                          |
//! |---------------------------------|-----------------------------------|
//! | `%any`, `0.0.0.0`               | [`IdSelector::AnyV4`] (wildcard)  |
//! | `%any6`, `::`                   | [`IdSelector::AnyV6`] (wildcard)  |
//! | `192.0.2.1`, `2001:db8::1`      | [`IdSelector::Ip`]                |
//! | `@gw.example.org`               | [`IdSelector::Fqdn`]              |
//! | `user@example.org`              | [`IdSelector::UserFqdn`]          |
//! | `@#0a0b…` (hex key id)          | [`IdSelector::KeyId`]             |
//! | `"C=CA, O=Example, CN=gw"`      | [`IdSelector::Dn`] (quoted, has `=`) |
//!
//! Quoted selectors are read like unquoted ones (so `"8::"` is an IPv6
//! address), except that a quoted text containing `=` is a DN.
//! Host names without `@` are refused: they would need a DNS lookup at load
//! time, which keyd does not do.
//!
//! Matching: FQDN and user@FQDN compare without regard to ASCII case; IPs
//! compare as addresses; DNs and key ids compare exactly. `%any` matches an
//! IPv4 address or any non-address ID; `%any6` an IPv6 address or any
//! non-address ID.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdSelector {
    AnyV4,
    AnyV6,
    Ip(IpAddr),
    /// Without the leading `@`, lower-cased.
    Fqdn(String),
    /// `user@domain`, as written.
    UserFqdn(String),
    /// Key id bytes from `@#hex`.
    KeyId(Vec<u8>),
    /// Distinguished name, as written.
    Dn(String),
}

impl IdSelector {
    /// Parse an ID as written in ipsec.secrets (or in ipsec.conf `leftid=`).
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_token(text, false)
    }

    pub(crate) fn parse_token(text: &str, quoted: bool) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty ID".to_string());
        }
        if quoted && text.contains('=') {
            return Ok(IdSelector::Dn(text.trim().to_string()));
        }
        match text {
            "%any" | "%any4" => return Ok(IdSelector::AnyV4),
            "%any6" => return Ok(IdSelector::AnyV6),
            _ => {}
        }
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(match address {
                IpAddr::V4(v4) if v4 == Ipv4Addr::UNSPECIFIED => IdSelector::AnyV4,
                IpAddr::V6(v6) if v6 == Ipv6Addr::UNSPECIFIED => IdSelector::AnyV6,
                other => IdSelector::Ip(other),
            });
        }
        if let Some(hex) = text.strip_prefix("@#") {
            return keyfmt::encoding::decode_hex(hex)
                .map(|bytes| IdSelector::KeyId(bytes.to_vec()))
                .map_err(|e| format!("bad key id {text:?}: {e}"));
        }
        if let Some(fqdn) = text.strip_prefix('@') {
            if fqdn.is_empty() || fqdn.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("bad FQDN ID {text:?}"));
            }
            return Ok(IdSelector::Fqdn(fqdn.to_ascii_lowercase()));
        }
        if text.starts_with('%') {
            return Err(format!(
                "unknown ID keyword {text:?} (only %any and %any6 are allowed here)"
            ));
        }
        if let Some((user, domain)) = text.split_once('@') {
            if !user.is_empty() && !domain.is_empty() && !text.chars().any(char::is_control) {
                return Ok(IdSelector::UserFqdn(text.to_string()));
            }
            return Err(format!("bad user@FQDN ID {text:?}"));
        }
        Err(format!(
            "ID {text:?} is neither an IP address, @FQDN, user@FQDN nor %any; host names are not looked up (write @{text} for an FQDN ID)"
        ))
    }

    /// `%any` / `%any6` (and their address forms).
    pub fn is_wildcard(&self) -> bool {
        matches!(self, IdSelector::AnyV4 | IdSelector::AnyV6)
    }

    /// Equal to `id` (no wildcard expansion: a wildcard only equals the same wildcard).
    pub fn matches_exactly(&self, id: &IdSelector) -> bool {
        match (self, id) {
            (IdSelector::Fqdn(a), IdSelector::Fqdn(b))
            | (IdSelector::UserFqdn(a), IdSelector::UserFqdn(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }

    /// This selector is a wildcard that covers `id` (see the module text for families).
    pub fn covers_as_wildcard(&self, id: &IdSelector) -> bool {
        match self {
            IdSelector::AnyV4 => !matches!(id, IdSelector::Ip(IpAddr::V6(_)) | IdSelector::AnyV6),
            IdSelector::AnyV6 => !matches!(id, IdSelector::Ip(IpAddr::V4(_)) | IdSelector::AnyV4),
            _ => false,
        }
    }
}

impl fmt::Display for IdSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdSelector::AnyV4 => f.write_str("%any"),
            IdSelector::AnyV6 => f.write_str("%any6"),
            IdSelector::Ip(ip) => write!(f, "{ip}"),
            IdSelector::Fqdn(name) => write!(f, "@{name}"),
            IdSelector::UserFqdn(name) => f.write_str(name),
            IdSelector::KeyId(bytes) => {
                f.write_str("@#")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            IdSelector::Dn(dn) => write!(f, "\"{dn}\""),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        assert_eq!(IdSelector::parse("%any").unwrap(), IdSelector::AnyV4);
        assert_eq!(IdSelector::parse("0.0.0.0").unwrap(), IdSelector::AnyV4);
        assert_eq!(IdSelector::parse("%any6").unwrap(), IdSelector::AnyV6);
        assert_eq!(IdSelector::parse("::").unwrap(), IdSelector::AnyV6);
        assert_eq!(
            IdSelector::parse("@East.Example").unwrap(),
            IdSelector::Fqdn("east.example".into())
        );
        assert_eq!(
            IdSelector::parse("u@x.org").unwrap(),
            IdSelector::UserFqdn("u@x.org".into())
        );
        assert_eq!(
            IdSelector::parse("@#0a0b").unwrap(),
            IdSelector::KeyId(vec![10, 11])
        );
        assert_eq!(
            IdSelector::parse_token("8::", true).unwrap(),
            IdSelector::Ip("8::".parse().unwrap())
        );
        assert_eq!(
            IdSelector::parse_token("C=CA, CN=east", true).unwrap(),
            IdSelector::Dn("C=CA, CN=east".into())
        );
        assert!(IdSelector::parse("east")
            .unwrap_err()
            .contains("host names are not looked up"));
        assert!(IdSelector::parse("%foo").is_err());
        assert!(IdSelector::parse("@").is_err());
        assert!(IdSelector::parse("@x").unwrap().to_string() == "@x");
    }

    #[test]
    fn wildcard_families() {
        let v4 = IdSelector::parse("192.0.2.1").unwrap();
        let v6 = IdSelector::parse("2001:db8::1").unwrap();
        let fqdn = IdSelector::parse("@a").unwrap();
        assert!(IdSelector::AnyV4.covers_as_wildcard(&v4));
        assert!(!IdSelector::AnyV4.covers_as_wildcard(&v6));
        assert!(IdSelector::AnyV6.covers_as_wildcard(&v6));
        assert!(IdSelector::AnyV6.covers_as_wildcard(&fqdn));
        assert!(!fqdn.covers_as_wildcard(&fqdn));
        assert!(IdSelector::parse("@A").unwrap().matches_exactly(&fqdn));
    }
}
