//! Typed value parsers: addresses, subnets, IDs, durations, RSA keys (RFC 3110), manual keys,
//! protocol/port pairs. Each returns `Err(message)`; the caller adds file and line.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Longest duration accepted (10 years), to keep arithmetic far from overflow.
pub const MAX_DURATION_SECS: u64 = 10 * 365 * 24 * 3600;

/// `yes`/`no` (and the usual synonyms).
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "on" | "1" => Ok(true),
        "no" | "n" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("`{v}` is not yes or no")),
    }
}

/// A duration: a number with an optional `s`, `m`, `h` or `d` suffix (seconds by default).
pub fn parse_duration(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let (digits, mult) = match v.char_indices().last() {
        Some((i, 's')) => (v.get(..i).unwrap_or(""), 1u64),
        Some((i, 'm')) => (v.get(..i).unwrap_or(""), 60),
        Some((i, 'h')) => (v.get(..i).unwrap_or(""), 3600),
        Some((i, 'd')) => (v.get(..i).unwrap_or(""), 86400),
        _ => (v, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{v}` is not a duration (a number with an optional s, m, h or d suffix)"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("`{v}` is too large a duration"))?;
    match n.checked_mul(mult) {
        Some(secs) if secs <= MAX_DURATION_SECS => Ok(secs),
        _ => Err(format!("`{v}` is too large a duration (at most 10 years)")),
    }
}

/// A decimal number within `[min, max]`.
pub fn parse_number(v: &str, min: u64, max: u64) -> Result<u64, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{v}` is not a number"));
    }
    match v.parse::<u64>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("`{v}` is out of range ({min} to {max})")),
    }
}

/// A percentage such as `100%` (the `%` is optional), at most 1000.
pub fn parse_percent(v: &str) -> Result<u32, String> {
    let digits = v.strip_suffix('%').unwrap_or(v);
    let n = parse_number(digits, 0, 1000).map_err(|_| format!("`{v}` is not a percentage like `100%`"))?;
    u32::try_from(n).map_err(|_| format!("`{v}` is out of range"))
}

/// An IP address (v4 or v6).
pub fn parse_ip(v: &str) -> Result<IpAddr, String> {
    v.parse::<IpAddr>().map_err(|_| format!("`{v}` is not an IP address"))
}

/// An IPv4 or IPv6 subnet `addr/len` (a bare address means a single host). Host bits must be 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subnet {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl Subnet {
    pub fn host(addr: IpAddr) -> Self {
        let prefix_len = if addr.is_ipv4() { 32 } else { 128 };
        Subnet { addr, prefix_len }
    }

    /// Whether `ip` lies in this subnet.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = prefix_mask_u32(self.prefix_len);
                u32::from(net) & mask == u32::from(*a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = prefix_mask_u128(self.prefix_len);
                u128::from(net) & mask == u128::from(*a) & mask
            }
            _ => false,
        }
    }
}

fn prefix_mask_u32(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32u32.saturating_sub(u32::from(len.min(32)))) }
}

fn prefix_mask_u128(len: u8) -> u128 {
    if len == 0 { 0 } else { u128::MAX << (128u32.saturating_sub(u32::from(len.min(128)))) }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

pub fn parse_subnet(v: &str) -> Result<Subnet, String> {
    if v.starts_with("vhost:") || v.starts_with("vnet:") || v.starts_with('%') {
        return Err(format!("`{v}`: virtual and special subnets are not supported; give addr/len"));
    }
    if v == "0/0" {
        // FreeS/WAN shorthand for 0.0.0.0/0
        return Ok(Subnet { addr: IpAddr::from([0, 0, 0, 0]), prefix_len: 0 });
    }
    let (addr_s, len_s) = match v.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (v, None),
    };
    let addr = addr_s.parse::<IpAddr>().map_err(|_| format!("`{v}` is not a subnet (addr/len)"))?;
    let max = if addr.is_ipv4() { 32u64 } else { 128 };
    let prefix_len = match len_s {
        None => max,
        Some(l) => match parse_number(l, 0, max) {
            Ok(n) => n,
            Err(_) => return Err(format!("`{v}`: prefix length `{l}` is not between 0 and {max}")),
        },
    };
    let prefix_len = u8::try_from(prefix_len).map_err(|_| format!("`{v}`: bad prefix length"))?;
    let subnet = Subnet { addr, prefix_len };
    let network = match addr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & prefix_mask_u32(prefix_len)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & prefix_mask_u128(prefix_len)).into()),
    };
    if network != addr {
        return Err(format!("`{v}` has host bits set: did you mean {network}/{prefix_len}?"));
    }
    Ok(subnet)
}

/// A list of subnets: `{a b}`, `a,b` or `a b`.
pub fn parse_subnet_list(v: &str) -> Result<Vec<Subnet>, String> {
    let inner = v.trim();
    let inner = inner.strip_prefix('{').map(|s| s.strip_suffix('}').unwrap_or(s)).unwrap_or(inner);
    let items: Vec<&str> = inner.split([',', ' ', '\t']).filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        return Err("empty subnet list".to_string());
    }
    items.into_iter().map(parse_subnet).collect()
}

/// The address of one end (`left=`, `right=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HostAddr {
    Ip(IpAddr),
    /// `%defaultroute`: the address of the interface with the default route.
    DefaultRoute,
    /// `%any`: whoever shows up (road warrior).
    Any,
    /// `%opportunistic`: the peer is found per packet (only through policy groups for now).
    Opportunistic,
    /// `%group`, `%opportunisticgroup`: policy group templates.
    Group,
    /// A DNS name, resolved when the connection is loaded.
    Name(String),
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddr::Ip(a) => write!(f, "{a}"),
            HostAddr::DefaultRoute => f.write_str("%defaultroute"),
            HostAddr::Any => f.write_str("%any"),
            HostAddr::Opportunistic => f.write_str("%opportunistic"),
            HostAddr::Group => f.write_str("%group"),
            HostAddr::Name(n) => f.write_str(n),
        }
    }
}

fn is_dns_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
        })
}

pub fn parse_host(v: &str) -> Result<HostAddr, String> {
    match v.to_ascii_lowercase().as_str() {
        "%defaultroute" | "%defaultroute4" | "%defaultroute6" => return Ok(HostAddr::DefaultRoute),
        "%any" | "%any4" | "%any6" => return Ok(HostAddr::Any),
        "%opportunistic" | "%opportunistic4" | "%opportunistic6" => return Ok(HostAddr::Opportunistic),
        "%group" | "%opportunisticgroup" => return Ok(HostAddr::Group),
        _ => {}
    }
    if v.starts_with('%') {
        return Err(format!("`{v}` is not supported here (expected an address, a DNS name, %defaultroute or %any)"));
    }
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Ok(HostAddr::Ip(ip));
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') || v.contains(':') {
        return Err(format!("`{v}` is not an IP address"));
    }
    if is_dns_name(v) {
        return Ok(HostAddr::Name(v.to_string()));
    }
    Err(format!("`{v}` is neither an IP address nor a DNS name"))
}

/// `nexthop=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NextHop {
    Ip(IpAddr),
    DefaultRoute,
    /// `%direct`: the peer is on the same link.
    Direct,
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::Ip(a) => write!(f, "{a}"),
            NextHop::DefaultRoute => f.write_str("%defaultroute"),
            NextHop::Direct => f.write_str("%direct"),
        }
    }
}

pub fn parse_nexthop(v: &str) -> Result<NextHop, String> {
    match v.to_ascii_lowercase().as_str() {
        "%defaultroute" => Ok(NextHop::DefaultRoute),
        "%direct" => Ok(NextHop::Direct),
        _ => parse_ip(v).map(NextHop::Ip),
    }
}

/// An IKE identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Id {
    /// `@host.example` (FQDN; `@` is not sent).
    Fqdn(String),
    /// `user@host.example`.
    UserFqdn(String),
    Ip(IpAddr),
    /// An X.500 distinguished name written out, e.g. `C=CA, O=Example, CN=west`.
    Dn(String),
    /// `%any`: any identity.
    Any,
    /// `%none`: no identity.
    None,
    /// `%null`: the NULL identity of RFC 7619 (with `authby=null`).
    Null,
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Fqdn(s) => write!(f, "@{s}"),
            Id::UserFqdn(s) => f.write_str(s),
            Id::Ip(a) => write!(f, "{a}"),
            Id::Dn(s) => write!(f, "\"{s}\""),
            Id::Any => f.write_str("%any"),
            Id::None => f.write_str("%none"),
            Id::Null => f.write_str("%null"),
        }
    }
}

pub fn parse_id(v: &str) -> Result<Id, String> {
    let lc = v.to_ascii_lowercase();
    match lc.as_str() {
        "%fromcert" => return Err("`%fromcert`: certificates are not supported yet; give the ID itself".to_string()),
        "%any" => return Ok(Id::Any),
        "%none" => return Ok(Id::None),
        "%null" => return Ok(Id::Null),
        "" => return Err("empty ID".to_string()),
        _ => {}
    }
    if v.starts_with('%') {
        return Err(format!("`{v}` is not a supported ID (expected @fqdn, user@fqdn, an IP address or a DN)"));
    }
    if let Some(rest) = v.strip_prefix('@') {
        let rest = rest.strip_prefix('#').map_or(rest, |_| rest); // @#hex: raw key id, kept as text
        if rest.is_empty() {
            return Err("`@` needs a name after it".to_string());
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{v}`: an FQDN ID contains no spaces"));
        }
        return Ok(Id::Fqdn(rest.to_string()));
    }
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Ok(Id::Ip(ip));
    }
    if v.contains('=') {
        return Ok(Id::Dn(v.to_string()));
    }
    if let Some((user, host)) = v.split_once('@') {
        if !user.is_empty() && !host.is_empty() && !v.chars().any(char::is_whitespace) {
            return Ok(Id::UserFqdn(v.to_string()));
        }
        return Err(format!("`{v}` is not a user@fqdn ID"));
    }
    if is_dns_name(v) {
        // FreeS/WAN: a bare name is resolved to an IP address; we keep it as an FQDN ID.
        return Ok(Id::Fqdn(v.to_string()));
    }
    Err(format!("`{v}` is not an ID (expected @fqdn, user@fqdn, an IP address or a DN)"))
}

/// Decode `0x` hex (underscores allowed, FreeS/WAN style) or `0s` base64.
pub fn decode_key_text(v: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        let digits: Vec<u8> = hex.bytes().filter(|b| *b != b'_').collect();
        if digits.is_empty() || !digits.len().is_multiple_of(2) {
            return Err("hex value needs an even, non-zero number of digits".to_string());
        }
        let mut out = Vec::with_capacity(digits.len() / 2);
        for pair in digits.chunks(2) {
            let (Some(h), Some(l)) = (pair.first(), pair.get(1)) else {
                return Err("hex value needs an even number of digits".to_string());
            };
            let (Some(h), Some(l)) = (hex_val(*h), hex_val(*l)) else {
                return Err("not valid hex".to_string());
            };
            out.push(h << 4 | l);
        }
        Ok(out)
    } else if let Some(b64) = v.strip_prefix("0s").or_else(|| v.strip_prefix("0S")) {
        let cleaned: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(cleaned.as_bytes())
            .map_err(|e| format!("not valid base64 ({e})"))
    } else {
        Err("expected `0s` (base64) or `0x` (hex) followed by the value".to_string())
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Smallest and largest accepted RSA modulus, in bits.
pub const RSA_MIN_BITS: usize = 512;
pub const RSA_MAX_BITS: usize = 16384;

/// An RSA public key in RFC 3110 form (`rsasigkey=`): public data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RsaPubKey {
    /// The RFC 3110 encoding as written in the file (exponent length, exponent, modulus).
    pub rfc3110: Vec<u8>,
    /// Modulus size in bits.
    pub bits: usize,
}

impl RsaPubKey {
    /// Exponent and modulus, split out of the RFC 3110 encoding.
    pub fn parts(&self) -> Option<(&[u8], &[u8])> {
        split_rfc3110(&self.rfc3110).ok()
    }
}

fn split_rfc3110(raw: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (exp_len, rest) = match raw.split_first() {
        None => return Err("the key is empty".to_string()),
        Some((0, rest)) => match rest {
            [hi, lo, rest @ ..] => (usize::from(*hi) << 8 | usize::from(*lo), rest),
            _ => return Err("RFC 3110 key truncated in the exponent length".to_string()),
        },
        Some((n, rest)) => (usize::from(*n), rest),
    };
    if exp_len == 0 {
        return Err("RFC 3110 key has an empty exponent".to_string());
    }
    let (Some(exp), Some(modulus)) = (rest.get(..exp_len), rest.get(exp_len..)) else {
        return Err("RFC 3110 key truncated in the exponent".to_string());
    };
    Ok((exp, modulus))
}

pub fn parse_rsa_key(v: &str) -> Result<RsaPubKey, String> {
    let lc = v.to_ascii_lowercase();
    match lc.as_str() {
        "%cert" => return Err("`%cert`: certificates are not supported yet; give the key as 0s... (RFC 3110)".to_string()),
        "%dns" | "%dnsondemand" | "%dnsonload" => {
            return Err(format!("`{v}`: fetching keys from DNS is not supported; give the key as 0s... (RFC 3110)"))
        }
        _ if v.starts_with('%') => return Err(format!("`{v}` is not supported; give the key as 0s... (RFC 3110)")),
        _ => {}
    }
    let raw = decode_key_text(v)?;
    let (exp, modulus) = split_rfc3110(&raw)?;
    if exp.len() > 64 {
        return Err("RFC 3110 key exponent is implausibly long".to_string());
    }
    if exp.iter().all(|b| *b == 0) {
        return Err("RFC 3110 key exponent is zero".to_string());
    }
    let leading = modulus.iter().take_while(|b| **b == 0).count();
    let significant = modulus.get(leading..).unwrap_or(&[]);
    let bits = match significant.first() {
        Some(first) => significant.len().saturating_mul(8).saturating_sub(first.leading_zeros() as usize),
        None => 0,
    };
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(format!("RSA modulus of {bits} bits: expected {RSA_MIN_BITS} to {RSA_MAX_BITS}"));
    }
    if significant.last().is_some_and(|b| b % 2 == 0) {
        return Err("RSA modulus is even".to_string());
    }
    Ok(RsaPubKey { rfc3110: raw, bits })
}

/// Secret key bytes (manual keying). Zeroed when dropped; Debug and Display print `<redacted>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretKey(bytes)
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

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A manual key: `0x...` hex or `0s...` base64, 1 to 128 bytes.
pub fn parse_secret_key(v: &str) -> Result<SecretKey, String> {
    let mut raw = decode_key_text(v)?;
    if raw.is_empty() || raw.len() > 128 {
        let n = raw.len();
        raw.zeroize();
        return Err(format!("key of {n} bytes: expected 1 to 128"));
    }
    Ok(SecretKey(raw))
}

/// An SPI: `0x...` hex or decimal, at least 0x100 (smaller values are reserved).
pub fn parse_spi(v: &str) -> Result<u32, String> {
    let n = if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).map_err(|_| format!("`{v}` is not an SPI (hex)"))?
    } else {
        u32::try_from(parse_number(v, 0, u64::from(u32::MAX))?).map_err(|_| format!("`{v}` is not an SPI"))?
    };
    if n < 0x100 {
        return Err(format!("SPI `{v}` is reserved (below 0x100)"));
    }
    Ok(n)
}

/// `protoport=`: protocol (name or number) and an optional port (`%any` = any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProtoPort {
    pub protocol: u8,
    /// `None`: any port.
    pub port: Option<u16>,
}

impl fmt::Display for ProtoPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}/{}", self.protocol, p),
            None => write!(f, "{}/%any", self.protocol),
        }
    }
}

fn port_by_name(name: &str) -> Option<u16> {
    Some(match name.to_ascii_lowercase().as_str() {
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" => 53,
        "http" => 80,
        "https" => 443,
        "isakmp" => 500,
        "l2tp" => 1701,
        "ipsec-nat-t" => 4500,
        _ => return None,
    })
}

pub fn parse_protoport(v: &str) -> Result<ProtoPort, String> {
    let (proto_s, port_s) = match v.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let protocol = match proto_s.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "gre" => 47,
        "sctp" => 132,
        "ipv6-icmp" | "icmpv6" | "icmp6" => 58,
        "%any" | "0" => 0,
        p => u8::try_from(parse_number(p, 0, 255).map_err(|_| format!("`{proto_s}` is not a protocol"))?)
            .map_err(|_| format!("`{proto_s}` is not a protocol"))?,
    };
    let port = match port_s {
        None | Some("%any") | Some("") => None,
        Some(name) if port_by_name(name).is_some() => port_by_name(name),
        Some(p) => Some(
            u16::try_from(parse_number(p, 0, 65535).map_err(|_| format!("`{p}` is not a port"))?)
                .map_err(|_| format!("`{p}` is not a port"))?,
        ),
    };
    Ok(ProtoPort { protocol, port: port.filter(|p| *p != 0) })
}

/// An algorithm proposal list (`ike=`, `esp=`): comma-separated, each `alg-alg;group`-like.
pub fn parse_proposals(v: &str) -> Result<Vec<String>, String> {
    if v.contains('!') {
        return Err(format!("`{v}`: a trailing `!` (strict proposals) is strongSwan syntax; ferroswan proposals are always strict"));
    }
    let items: Vec<String> = v.split(',').map(|s| s.trim().to_ascii_lowercase()).collect();
    if items.iter().any(|s| s.is_empty()) {
        return Err(format!("`{v}`: empty algorithm in the list"));
    }
    for s in &items {
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b';' | b'+' | b'.' | b':')) {
            return Err(format!("`{s}` is not an algorithm proposal"));
        }
    }
    Ok(items)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(30));
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("9m"), Ok(540));
        assert_eq!(parse_duration("8h"), Ok(28800));
        assert_eq!(parse_duration("1d"), Ok(86400));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn subnets() {
        assert_eq!(parse_subnet("10.0.0.0/8").map(|s| s.to_string()), Ok("10.0.0.0/8".to_string()));
        assert_eq!(parse_subnet("192.0.2.1").map(|s| s.prefix_len), Ok(32));
        assert_eq!(parse_subnet("2001:db8::/32").map(|s| s.prefix_len), Ok(32));
        assert!(parse_subnet("10.0.0.0/33").is_err());
        assert!(parse_subnet("10.0.0.1/24").is_err());
        assert!(parse_subnet("10.0.0/24").is_err());
        assert!(parse_subnet("vhost:%no").is_err());
        assert_eq!(parse_subnet_list("{10.0.0.0/8 192.168.0.0/16}").map(|v| v.len()), Ok(2));
        assert_eq!(parse_subnet_list("10.0.0.0/8,192.168.0.0/16").map(|v| v.len()), Ok(2));
        let s = parse_subnet("10.1.0.0/16").unwrap_or(Subnet::host(IpAddr::from([0, 0, 0, 0])));
        assert!(s.contains(&"10.1.2.3".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
        assert!(!s.contains(&"10.2.2.3".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))));
    }

    #[test]
    fn ids() {
        assert_eq!(parse_id("@west.example"), Ok(Id::Fqdn("west.example".into())));
        assert_eq!(parse_id("user@example.org"), Ok(Id::UserFqdn("user@example.org".into())));
        assert_eq!(parse_id("192.0.2.1"), Ok(Id::Ip("192.0.2.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))));
        assert_eq!(parse_id("C=CA, CN=west"), Ok(Id::Dn("C=CA, CN=west".into())));
        assert!(parse_id("%fromcert").is_err_and(|e| e.contains("certificates are not supported")));
        assert!(parse_id("@").is_err());
    }

    #[test]
    fn keys() {
        // exponent 3, 1024-bit odd modulus
        let mut raw = vec![1u8, 3, 0xc1];
        raw.extend(std::iter::repeat_n(0x55, 126));
        raw.push(0x01);
        let b64 = format!("0s{}", base64::engine::general_purpose::STANDARD.encode(&raw));
        let k = parse_rsa_key(&b64);
        assert_eq!(k.as_ref().map(|k| k.bits), Ok(1024));
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_rsa_key(&format!("0x{hex}")).map(|k| k.bits), Ok(1024));
        assert!(parse_rsa_key("0sAQ==").is_err());
        assert!(parse_rsa_key("0s!!!!").is_err_and(|e| e.contains("base64")));
        assert!(parse_rsa_key("%cert").is_err_and(|e| e.contains("certificates")));
        assert!(parse_rsa_key("%dnsondemand").is_err_and(|e| e.contains("DNS")));
        assert!(parse_rsa_key("0s").is_err());
        assert!(parse_rsa_key(&format!("0s{}", base64::engine::general_purpose::STANDARD.encode([0u8, 0, 5, 1]))).is_err());
        let sk = parse_secret_key("0x0123_4567_89ab_cdef");
        assert_eq!(sk.as_ref().map(|k| k.expose().to_vec()), Ok(vec![1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]));
        assert_eq!(sk.map(|k| format!("{k:?}")), Ok("<redacted>".to_string()));
        assert!(parse_secret_key("0x123").is_err());
        assert_eq!(parse_spi("0x200"), Ok(0x200));
        assert!(parse_spi("0x10").is_err());
    }

    #[test]
    fn protoports() {
        assert_eq!(parse_protoport("17/1701"), Ok(ProtoPort { protocol: 17, port: Some(1701) }));
        assert_eq!(parse_protoport("tcp/%any"), Ok(ProtoPort { protocol: 6, port: None }));
        assert!(parse_protoport("udp/70000").is_err());
    }

    proptest::proptest! {
        #[test]
        fn duration_suffixes(n in 0u64..100_000, unit in 0usize..4) {
            let (suffix, mult) = [("s", 1u64), ("m", 60), ("h", 3600), ("d", 86400)][unit];
            let expected = n * mult;
            let got = parse_duration(&format!("{n}{suffix}"));
            if expected <= MAX_DURATION_SECS {
                proptest::prop_assert_eq!(got, Ok(expected));
            } else {
                proptest::prop_assert!(got.is_err());
            }
        }

        #[test]
        fn subnet_roundtrip(a in proptest::prelude::any::<u32>(), len in 0u8..=32) {
            let mask = prefix_mask_u32(len);
            let net = std::net::Ipv4Addr::from(a & mask);
            let text = format!("{net}/{len}");
            proptest::prop_assert_eq!(parse_subnet(&text).map(|s| s.to_string()), Ok(text));
        }

        #[test]
        fn value_parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_subnet(&s);
            let _ = parse_id(&s);
            let _ = parse_rsa_key(&s);
            let _ = parse_duration(&s);
            let _ = parse_protoport(&s);
            let _ = parse_host(&s);
            let _ = parse_secret_key(&s);
        }
    }
}
