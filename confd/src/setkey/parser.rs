//! The setkey(8) script language, parsed sans-IO into [`Statement`]s.
//!
//! Statements end with `;` and may span lines; `#` starts a comment that runs to the end of the
//! line (outside double quotes); tokens are separated by white space. Every problem is a
//! `file:line: message` naming what is wrong; everything ferroswan does not implement (IPComp,
//! lifetimes, reqids, `spdupdate` ...) is refused by name, never dropped. The whole script is
//! refused if any statement is wrong: nothing of it is applied.
//!
//! Keys are `0x` hex or `"quoted strings"`; they are copied straight into zeroizing buffers and
//! never appear in a message.

use super::model::{
    IpsecRequest, Level, Located, PolicyAction, PolicyDir, SaEntry, SadMode, SetkeyError, SpdEntry,
    Statement,
};
use ipc::policy::Net;
use ipc::sa::{EncrAlg, IntegAlg, IpsecProto, SaMode, SecretBytes};
use std::net::IpAddr;
use zeroize::Zeroizing;

/// Largest script accepted.
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;
/// Most statements in one script.
pub const MAX_STATEMENTS: usize = 10_000;
/// Most errors reported for one script (the rest are counted in a last one).
pub const MAX_ERRORS: usize = 100;
/// Largest `-r` replay window (fwd's anti-replay bitmap).
pub const MAX_REPLAY_WINDOW: u32 = 4032;
/// Longest key accepted (the longest any algorithm takes is 64 bytes).
pub const MAX_KEY_BYTES: usize = 256;
/// Most requests in one `-P … ipsec` policy (fwd applies ESP, then AH around it).
pub const MAX_REQUESTS: usize = 2;

/// Statement keywords, for the "missing `;`" hint.
const KEYWORDS: &[&str] = &[
    "add",
    "update",
    "delete",
    "deleteall",
    "get",
    "flush",
    "dump",
    "spdadd",
    "spdupdate",
    "spddelete",
    "spdflush",
    "spddump",
];

#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    text: &'a str,
    line: usize,
    quoted: bool,
    /// The first token of its physical line.
    line_start: bool,
}

/// A statement's tokens (without the `;`), or `None` when lexing it failed (already reported).
struct RawStatement<'a> {
    toks: Vec<Tok<'a>>,
    poisoned: bool,
    terminated: bool,
}

struct Errors<'f> {
    file: &'f str,
    list: Vec<SetkeyError>,
    dropped: usize,
}

impl Errors<'_> {
    fn push(&mut self, line: usize, message: impl Into<String>) {
        if self.list.len() < MAX_ERRORS {
            self.list.push(SetkeyError {
                file: self.file.to_string(),
                line,
                message: message.into(),
            });
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<SetkeyError> {
        if self.dropped > 0 {
            let line = self.list.last().map_or(1, |e| e.line);
            self.list.push(SetkeyError {
                file: self.file.to_string(),
                line,
                message: format!("... and {} more errors", self.dropped),
            });
        }
        self.list
    }
}

/// A token as it may appear in a message: at most 40 characters, control characters escaped.
pub(crate) fn show(s: &str) -> String {
    let mut out: String = s.chars().take(40).flat_map(char::escape_debug).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// Split the script into statements. Lexical errors (an unbalanced quote) are reported and poison
/// the statement they occur in.
fn lex<'a>(text: &'a str, errs: &mut Errors<'_>) -> Vec<RawStatement<'a>> {
    let mut out = Vec::new();
    let mut cur = RawStatement {
        toks: Vec::new(),
        poisoned: false,
        terminated: false,
    };
    for (index, raw_line) in text.split('\n').enumerate() {
        let line = index.saturating_add(1);
        let bytes = raw_line.as_bytes();
        let mut i = 0usize;
        let mut first_on_line = true;
        while let Some(&b) = bytes.get(i) {
            match b {
                b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c' => i += 1,
                b'#' => break,
                b';' => {
                    cur.terminated = true;
                    out.push(std::mem::replace(
                        &mut cur,
                        RawStatement {
                            toks: Vec::new(),
                            poisoned: false,
                            terminated: false,
                        },
                    ));
                    i += 1;
                    first_on_line = false;
                }
                b'"' => {
                    let start = i + 1;
                    let end = bytes
                        .get(start..)
                        .and_then(|rest| rest.iter().position(|&c| c == b'"'))
                        .map(|p| start + p);
                    match end.and_then(|e| raw_line.get(start..e).map(|s| (e, s))) {
                        Some((e, s)) => {
                            cur.toks.push(Tok {
                                text: s,
                                line,
                                quoted: true,
                                line_start: first_on_line,
                            });
                            i = e + 1;
                        }
                        None => {
                            errs.push(
                                line,
                                "unbalanced `\"`: the quoted string that starts here does not end on this line",
                            );
                            cur.poisoned = true;
                            break;
                        }
                    }
                    first_on_line = false;
                }
                _ => {
                    let start = i;
                    while let Some(&c) = bytes.get(i) {
                        if matches!(c, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c' | b';' | b'#') {
                            break;
                        }
                        if c == b'"' {
                            break;
                        }
                        i += 1;
                    }
                    if let Some(s) = raw_line.get(start..i) {
                        cur.toks.push(Tok {
                            text: s,
                            line,
                            quoted: false,
                            line_start: first_on_line,
                        });
                    }
                    if bytes.get(i) == Some(&b'"') {
                        errs.push(
                            line,
                            format!(
                                "unexpected `\"` inside `{}`: a quoted key stands alone",
                                show(raw_line.get(start..i).unwrap_or(""))
                            ),
                        );
                        cur.poisoned = true;
                        break;
                    }
                    first_on_line = false;
                }
            }
        }
    }
    if !cur.toks.is_empty() || cur.poisoned {
        out.push(cur);
    }
    out
}

/// A cursor over one statement's tokens.
struct Cur<'t, 'a> {
    toks: &'t [Tok<'a>],
    pos: usize,
}

type R<T> = Result<T, (usize, String)>;

impl<'a> Cur<'_, 'a> {
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map_or(1, |t| t.line)
    }
    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<Tok<'a>> {
        let t = self.toks.get(self.pos).copied();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }
    fn fail<T>(&self, msg: impl Into<String>) -> R<T> {
        Err((self.line(), msg.into()))
    }
    /// The next token, or an error saying what was expected.
    fn want(&mut self, what: &str, after: &str) -> R<Tok<'a>> {
        match self.next() {
            Some(t) => Ok(t),
            None => self.fail(format!("`{after}`: {what} expected before `;`")),
        }
    }
    fn end(&mut self, stmt: &str) -> R<()> {
        match self.next() {
            None => Ok(()),
            Some(t) => Err((
                t.line,
                format!("`{stmt}`: unexpected `{}` before `;`", show(t.text)),
            )),
        }
    }
}

fn flags_46n(t: &str) -> bool {
    t.len() > 1 && t.starts_with('-') && t.bytes().skip(1).all(|b| matches!(b, b'4' | b'6' | b'n'))
}

/// `-4`, `-6`, `-n` before the addresses (address family; no name lookups): the family is
/// checked, `-n` changes nothing (names are never looked up).
fn family_flags(c: &mut Cur<'_, '_>) -> Option<bool> {
    let mut fam = None;
    while let Some(t) = c.peek() {
        if t.quoted || !flags_46n(t.text) {
            break;
        }
        c.pos += 1;
        if t.text.contains('4') && !t.text.contains('6') {
            fam = Some(true);
        } else if t.text.contains('6') && !t.text.contains('4') {
            fam = Some(false);
        }
    }
    fam
}

fn check_family(addr: IpAddr, v4: Option<bool>, flag_line: usize) -> R<()> {
    match v4 {
        Some(true) if !addr.is_ipv4() => {
            Err((flag_line, format!("{addr} is not IPv4 (`-4` given)")))
        }
        Some(false) if addr.is_ipv4() => {
            Err((flag_line, format!("{addr} is not IPv6 (`-6` given)")))
        }
        _ => Ok(()),
    }
}

fn parse_ip(t: &str) -> Result<IpAddr, String> {
    if t.contains('%') {
        return Err(format!(
            "`{}`: scoped IPv6 addresses (`%interface`) are not supported",
            show(t)
        ));
    }
    t.parse::<IpAddr>().map_err(|_| {
        format!(
            "`{}` is not an IP address (host names are not looked up: write the address)",
            show(t)
        )
    })
}

/// An SA endpoint: a unicast address.
fn sa_addr(c: &mut Cur<'_, '_>, what: &str, stmt: &str) -> R<IpAddr> {
    let t = c.want(what, stmt)?;
    let a = parse_ip(t.text).map_err(|e| (t.line, format!("`{stmt}`: {e}")))?;
    if a.is_unspecified() || a.is_multicast() {
        return Err((t.line, format!("`{stmt}`: {a} is not a unicast address")));
    }
    Ok(a)
}

fn parse_proto(t: Tok<'_>, stmt: &str) -> R<IpsecProto> {
    match t.text {
        "esp" => Ok(IpsecProto::Esp),
        "ah" => Ok(IpsecProto::Ah),
        "ipcomp" => Err((
            t.line,
            format!("`{stmt}`: IPComp (`ipcomp`) is not supported"),
        )),
        "esp-old" | "ah-old" => Err((
            t.line,
            format!(
                "`{stmt}`: `{}` (the RFC 1827/1829 formats) is not supported",
                t.text
            ),
        )),
        "tcp" => Err((
            t.line,
            format!("`{stmt}`: TCP-MD5 signature SAs (`tcp`) are not supported"),
        )),
        "esp-udp" => Err((
            t.line,
            format!("`{stmt}`: `esp-udp` (ESP in UDP) is not supported with manual keys"),
        )),
        other => Err((
            t.line,
            format!("`{stmt}`: unknown protocol `{}` (esp or ah)", show(other)),
        )),
    }
}

fn parse_spi(t: Tok<'_>, stmt: &str) -> R<u32> {
    let s = t.text;
    let n = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() || h.len() > 8 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            None
        } else {
            u32::from_str_radix(h, 16).ok()
        }
    } else if !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<u32>().ok()
    } else {
        None
    };
    match n {
        None => Err((
            t.line,
            format!(
                "`{stmt}`: `{}` is not an SPI (decimal or 0x hex, at most 0xffffffff)",
                show(s)
            ),
        )),
        Some(n) if n < 256 => Err((
            t.line,
            format!("`{stmt}`: SPI {n} is reserved (RFC 4303: 0-255); use 256 (0x100) or more"),
        )),
        Some(n) => Ok(n),
    }
}

fn parse_number(t: Tok<'_>, what: &str, max: u32) -> R<u32> {
    let ok = !t.text.is_empty() && t.text.len() <= 10 && t.text.bytes().all(|b| b.is_ascii_digit());
    match ok.then(|| t.text.parse::<u32>().ok()).flatten() {
        Some(n) if n <= max => Ok(n),
        _ => Err((
            t.line,
            format!("{what}: `{}` is not a number from 0 to {max}", show(t.text)),
        )),
    }
}

/// A key: `0x` hex or a quoted string, straight into a zeroizing buffer.
fn parse_key(t: Tok<'_>, alg: &str) -> R<SecretBytes> {
    if t.quoted {
        if t.text.len() > MAX_KEY_BYTES {
            return Err((
                t.line,
                format!("{alg}: key longer than {MAX_KEY_BYTES} bytes"),
            ));
        }
        let mut z = Zeroizing::new(Vec::with_capacity(t.text.len()));
        z.extend_from_slice(t.text.as_bytes());
        return Ok(SecretBytes(z));
    }
    let Some(hex) = t
        .text
        .strip_prefix("0x")
        .or_else(|| t.text.strip_prefix("0X"))
    else {
        return Err((
            t.line,
            format!("{alg}: a key is `0x` followed by hex digits, or a \"quoted string\""),
        ));
    };
    if hex.len() > MAX_KEY_BYTES * 2 {
        return Err((
            t.line,
            format!("{alg}: key longer than {MAX_KEY_BYTES} bytes"),
        ));
    }
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((
            t.line,
            format!("{alg}: the key has a character that is not a hex digit"),
        ));
    }
    if hex.len() % 2 != 0 {
        return Err((
            t.line,
            format!("{alg}: the key has an odd number of hex digits"),
        ));
    }
    let mut z = Zeroizing::new(Vec::with_capacity(hex.len() / 2));
    for pair in hex.as_bytes().chunks(2) {
        let v = pair.iter().fold(0u8, |acc, &d| {
            (acc << 4) | (char::from(d).to_digit(16).unwrap_or(0) as u8)
        });
        z.push(v);
    }
    Ok(SecretBytes(z))
}

fn is_key_token(t: &Tok<'_>) -> bool {
    t.quoted || t.text.starts_with("0x") || t.text.starts_with("0X")
}

fn wrong_len(alg: &str, want: &str, got: usize) -> String {
    format!("{alg} needs a key of {want}, got {got} bytes")
}

/// `-E ALG KEY`: the algorithm as setkey names it, and its key checked against it.
fn enc_alg(c: &mut Cur<'_, '_>) -> R<(EncrAlg, SecretBytes)> {
    let name = c.want("an encryption algorithm", "-E")?;
    let alg = name.text;
    if alg == "null" {
        // `-E null` takes no key (setkey also accepts `-E null ""`).
        if let Some(t) = c.peek() {
            if is_key_token(&t) {
                c.pos += 1;
                let k = parse_key(t, "null")?;
                if !k.is_empty() {
                    return Err((t.line, "`-E null` takes no key".into()));
                }
            }
        }
        return Ok((EncrAlg::Null, SecretBytes::default()));
    }
    let alg_line = name.line;
    let known = match alg {
        "des-cbc" => {
            return Err((
                alg_line,
                "`-E des-cbc` is refused: single DES (56-bit keys) is insecure and broken; use 3des-cbc or aes-cbc"
                    .into(),
            ))
        }
        "3des-cbc" | "rijndael-cbc" | "aes-cbc" | "aes-ctr" | "aes-gcm-16" => true,
        "blowfish-cbc" | "cast128-cbc" | "des-deriv" | "des-32iv" | "twofish-cbc" | "camellia-cbc"
        | "rc5-cbc" | "simple" | "aes-gmac" | "null-aes-gmac" | "null_aes_gmac" | "aes-gcm-8"
        | "aes-gcm-12" | "aes-ccm-8" | "aes-ccm-12" | "aes-ccm-16" | "chacha20-poly1305" => false,
        other => {
            return Err((
                alg_line,
                format!(
                    "unknown encryption algorithm `-E {}` (supported: 3des-cbc, rijndael-cbc/aes-cbc, aes-ctr, aes-gcm-16, null)",
                    show(other)
                ),
            ))
        }
    };
    if !known {
        return Err((
            alg_line,
            format!(
                "encryption algorithm `-E {alg}` is not supported (supported: 3des-cbc, rijndael-cbc/aes-cbc, aes-ctr, aes-gcm-16, null)"
            ),
        ));
    }
    let kt = match c.next() {
        Some(t) if is_key_token(&t) => t,
        _ => {
            return Err((
                alg_line,
                format!("`-E {alg}` needs a key (0x… hex or \"quoted\")"),
            ))
        }
    };
    let key = parse_key(kt, alg)?;
    let n = key.len();
    let fail = |want: &str| Err((kt.line, wrong_len(alg, want, n)));
    let e = match alg {
        "3des-cbc" => {
            if n != 24 {
                return fail("24 bytes (192 bits)");
            }
            EncrAlg::TripleDesCbc
        }
        "aes-ctr" => match n {
            20 | 28 | 36 => EncrAlg::AesCtr {
                key_bits: ((n - 4) * 8) as u16,
            },
            _ => return fail("16, 24 or 32 bytes followed by a 4-byte nonce (20, 28 or 36 bytes)"),
        },
        "aes-gcm-16" => match n {
            20 | 36 => EncrAlg::AesGcm {
                key_bits: ((n - 4) * 8) as u16,
                icv_bytes: 16,
            },
            28 => {
                return Err((
                    kt.line,
                    "aes-gcm-16 with a 192-bit key is not supported (a 16- or 32-byte key followed by the 4-byte salt: 20 or 36 bytes)".into(),
                ))
            }
            _ => return fail("16 or 32 bytes followed by a 4-byte salt (20 or 36 bytes)"),
        },
        // rijndael-cbc / aes-cbc
        _ => match n {
            16 | 24 | 32 => EncrAlg::AesCbc {
                key_bits: (n * 8) as u16,
            },
            _ => return fail("16, 24 or 32 bytes"),
        },
    };
    Ok((e, key))
}

/// `-A ALG KEY`.
fn auth_alg(c: &mut Cur<'_, '_>) -> R<(IntegAlg, SecretBytes)> {
    let name = c.want("an authentication algorithm", "-A")?;
    let alg = name.text;
    let want = match alg {
        "null" => {
            if let Some(t) = c.peek() {
                if is_key_token(&t) {
                    c.pos += 1;
                    let k = parse_key(t, "null")?;
                    if !k.is_empty() {
                        return Err((t.line, "`-A null` takes no key".into()));
                    }
                }
            }
            return Ok((IntegAlg::None, SecretBytes::default()));
        }
        "hmac-md5" => (IntegAlg::HmacMd5_96, 16),
        "hmac-sha1" => (IntegAlg::HmacSha1_96, 20),
        "hmac-sha2-256" | "hmac-sha256" => (IntegAlg::HmacSha256_128, 32),
        "hmac-sha2-384" | "hmac-sha384" => (IntegAlg::HmacSha384_192, 48),
        "hmac-sha2-512" | "hmac-sha512" => (IntegAlg::HmacSha512_256, 64),
        "keyed-md5" | "keyed-sha1" | "hmac-ripemd160" | "aes-xcbc-mac" | "tcp-md5" | "aes-cmac" => {
            return Err((
                name.line,
                format!(
                    "authentication algorithm `-A {alg}` is not supported (supported: hmac-md5, hmac-sha1, hmac-sha2-256, hmac-sha2-384, hmac-sha2-512, null)"
                ),
            ))
        }
        other => {
            return Err((
                name.line,
                format!(
                    "unknown authentication algorithm `-A {}` (supported: hmac-md5, hmac-sha1, hmac-sha2-256, hmac-sha2-384, hmac-sha2-512, null)",
                    show(other)
                ),
            ))
        }
    };
    let kt = match c.next() {
        Some(t) if is_key_token(&t) => t,
        _ => {
            return Err((
                name.line,
                format!("`-A {alg}` needs a key (0x… hex or \"quoted\")"),
            ))
        }
    };
    let key = parse_key(kt, alg)?;
    if key.len() != want.1 {
        return Err((
            kt.line,
            wrong_len(
                alg,
                &format!("{} bytes ({} bits)", want.1, want.1 * 8),
                key.len(),
            ),
        ));
    }
    Ok((want.0, key))
}

fn add(c: &mut Cur<'_, '_>) -> R<Statement> {
    let flag_line = c.line();
    let fam = family_flags(c);
    let src = sa_addr(c, "a source address", "add")?;
    let dst = sa_addr(c, "a destination address", "add")?;
    check_family(src, fam, flag_line)?;
    if src.is_ipv4() != dst.is_ipv4() {
        return c.fail(format!(
            "`add`: {src} and {dst} are of different address families"
        ));
    }
    let proto = parse_proto(c.want("a protocol (esp or ah)", "add")?, "add")?;
    let spi = parse_spi(c.want("an SPI", "add")?, "add")?;
    let mut mode: Option<SadMode> = None;
    let mut replay: Option<u32> = None;
    let mut enc: Option<(EncrAlg, SecretBytes)> = None;
    let mut auth: Option<(IntegAlg, SecretBytes)> = None;
    while let Some(t) = c.next() {
        let line = t.line;
        let once = |seen: bool| -> R<()> {
            if seen {
                Err((line, format!("`add`: `{}` given twice", t.text)))
            } else {
                Ok(())
            }
        };
        match t.text {
            "-m" if !t.quoted => {
                once(mode.is_some())?;
                let m = c.want("a mode (transport, tunnel or any)", "-m")?;
                mode = Some(match m.text {
                    "transport" => SadMode::Transport,
                    "tunnel" => SadMode::Tunnel,
                    "any" => SadMode::Any,
                    other => {
                        return Err((
                            m.line,
                            format!("`-m {}`: the mode is transport, tunnel or any", show(other)),
                        ))
                    }
                });
            }
            "-r" if !t.quoted => {
                once(replay.is_some())?;
                let n = c.want("a replay window size", "-r")?;
                replay = Some(parse_number(
                    n,
                    "`-r` (replay window, packets)",
                    MAX_REPLAY_WINDOW,
                )?);
            }
            "-E" if !t.quoted => {
                once(enc.is_some())?;
                if proto == IpsecProto::Ah {
                    return Err((
                        line,
                        "`-E`: AH has no encryption (`-E` is for esp SAs)".into(),
                    ));
                }
                enc = Some(enc_alg(c)?);
            }
            "-A" if !t.quoted => {
                once(auth.is_some())?;
                auth = Some(auth_alg(c)?);
            }
            "-C" | "-R" if !t.quoted => {
                return Err((
                    line,
                    format!("`add`: IPComp (`{}`) is not supported", t.text),
                ))
            }
            "-u" if !t.quoted => {
                return Err((
                    line,
                    "`add`: `-u` (a reqid binding the SA to `unique:N` policies) is not supported"
                        .into(),
                ))
            }
            "-f" if !t.quoted => {
                let what = c.peek().map(|o| show(o.text)).unwrap_or_default();
                return Err((
                    line,
                    format!("`add`: `-f {what}` (padding and sequence options) is not supported"),
                ));
            }
            "-lh" | "-ls" | "-bh" | "-bs" if !t.quoted => {
                return Err((
                    line,
                    format!(
                        "`add`: lifetimes (`{}`) are not supported: manual SAs live until deleted",
                        t.text
                    ),
                ))
            }
            "-ctx" if !t.quoted => {
                return Err((
                    line,
                    "`add`: security contexts (`-ctx`) are not supported".into(),
                ))
            }
            other => {
                return Err((
                    line,
                    format!(
                        "`add`: unexpected `{}` (options: -m, -r, -E, -A)",
                        if is_key_token(&t) {
                            "<key>".to_string()
                        } else {
                            show(other)
                        }
                    ),
                ))
            }
        }
    }
    let integ = auth.as_ref().map_or(IntegAlg::None, |a| a.0);
    match proto {
        IpsecProto::Ah => {
            if integ == IntegAlg::None {
                return c.fail("`add … ah`: AH needs an authentication algorithm (`-A hmac-sha1 KEY` …)");
            }
        }
        IpsecProto::Esp => match &enc {
            None => {
                return c.fail(
                    "`add … esp`: ESP needs an encryption algorithm (`-E …`; `-E null` with `-A` for integrity only)",
                )
            }
            Some((EncrAlg::AesGcm { .. }, _)) if integ != IntegAlg::None => {
                return c.fail("`add … esp`: aes-gcm-16 carries its own integrity: drop `-A`")
            }
            Some((EncrAlg::AesGcm { .. }, _)) => {}
            Some((e, _)) if integ == IntegAlg::None => {
                return c.fail(if *e == EncrAlg::Null {
                    "`add … esp`: `-E null` needs `-A` (an SA with neither encryption nor integrity protects nothing)"
                        .to_string()
                } else {
                    "`add … esp`: encryption without integrity is refused (open to cut-and-paste attacks): add `-A hmac-sha1 KEY` or another"
                        .to_string()
                })
            }
            Some(_) => {}
        },
    }
    // `-A null` is no integrity: keep it as absent.
    let auth = auth.filter(|a| a.0 != IntegAlg::None);
    Ok(Statement::Add(SaEntry {
        src,
        dst,
        proto,
        spi,
        mode: mode.unwrap_or(SadMode::Any),
        replay,
        enc,
        auth,
    }))
}

/// `SRC DST PROTO` of delete, deleteall and get.
fn sa_triple(c: &mut Cur<'_, '_>, stmt: &str) -> R<(IpAddr, IpAddr, IpsecProto)> {
    let flag_line = c.line();
    let fam = family_flags(c);
    let src = sa_addr(c, "a source address", stmt)?;
    let dst = sa_addr(c, "a destination address", stmt)?;
    check_family(src, fam, flag_line)?;
    if src.is_ipv4() != dst.is_ipv4() {
        return c.fail(format!(
            "`{stmt}`: {src} and {dst} are of different address families"
        ));
    }
    let proto = parse_proto(c.want("a protocol (esp or ah)", stmt)?, stmt)?;
    Ok((src, dst, proto))
}

fn opt_proto(c: &mut Cur<'_, '_>, stmt: &str) -> R<Option<IpsecProto>> {
    let p = match c.next() {
        None => None,
        Some(t) => Some(parse_proto(t, stmt)?),
    };
    c.end(stmt)?;
    Ok(p)
}

/// `ADDR[/PREFIX][[PORT]]`.
fn range(t: Tok<'_>, stmt: &str) -> R<(Net, Option<u16>)> {
    let fail = |m: String| Err((t.line, format!("`{stmt}`: {m}")));
    let s = t.text;
    let (addr_part, port) = match s.strip_suffix(']') {
        Some(body) => {
            let Some(open) = body.rfind('[') else {
                return fail(format!("`{}`: `]` without `[`", show(s)));
            };
            let p = body.get(open + 1..).unwrap_or("");
            let port = if p == "any" || p == "*" {
                None
            } else {
                match (p.len() <= 5 && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse::<u16>().ok())
                    .flatten()
                {
                    Some(0) => None,
                    Some(n) => Some(n),
                    None => {
                        return fail(format!(
                            "`{}`: the port is `[any]` or a number up to 65535",
                            show(s)
                        ))
                    }
                }
            };
            (body.get(..open).unwrap_or(""), port)
        }
        None => (s, None),
    };
    let (a, prefix) = match addr_part.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (addr_part, None),
    };
    if a.contains('-') {
        return fail(format!(
            "`{}`: address ranges are not supported (use a prefix)",
            show(s)
        ));
    }
    let addr = match parse_ip(a) {
        Ok(ip) => ip,
        Err(e) => return fail(e),
    };
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match (p.len() <= 3 && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u8>().ok())
            .flatten()
        {
            Some(n) if n <= max => n,
            _ => return fail(format!("`{}`: prefix length is 0 to {max}", show(s))),
        },
    };
    Ok((masked(addr, prefix), port))
}

/// The network address of `addr/prefix` (host bits cleared, as the kernel stores it).
fn masked(addr: IpAddr, prefix: u8) -> Net {
    let addr = match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    };
    Net { addr, prefix }
}

fn upper(t: Tok<'_>, stmt: &str) -> R<u8> {
    Ok(match t.text {
        "any" => 0,
        "icmp" => 1,
        "ip4" | "ipencap" => 4,
        "tcp" => 6,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmp6" | "ipv6-icmp" => 58,
        "sctp" => 132,
        s if !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()) => {
            match s.parse::<u8>() {
                Ok(n) => n,
                Err(_) => {
                    return Err((t.line, format!("`{stmt}`: upper-layer protocol {s} is above 255")))
                }
            }
        }
        other => {
            return Err((
                t.line,
                format!(
                    "`{stmt}`: unknown upper-layer protocol `{}` (any, icmp, tcp, udp, icmp6, gre, sctp or a number)",
                    show(other)
                ),
            ))
        }
    })
}

/// `SRC[/PREFIX][[PORT]] DST[/PREFIX][[PORT]] UPPERSPEC`: source, its port, destination, its port,
/// upper-layer protocol.
type Selector = (Net, Option<u16>, Net, Option<u16>, u8);

fn selector(c: &mut Cur<'_, '_>, stmt: &str) -> R<Selector> {
    let flag_line = c.line();
    let fam = family_flags(c);
    let (src, sp) = range(c.want("a source range", stmt)?, stmt)?;
    let (dst, dp) = range(c.want("a destination range", stmt)?, stmt)?;
    check_family(src.addr, fam, flag_line)?;
    if src.addr.is_ipv4() != dst.addr.is_ipv4() {
        return c.fail(format!(
            "`{stmt}`: {src} and {dst} are of different address families"
        ));
    }
    let up = upper(
        c.want("an upper-layer protocol (any, tcp, udp …)", stmt)?,
        stmt,
    )?;
    if let Some(t) = c.peek() {
        if !t.quoted && t.text != "-P" && (up == 58 || up == 1) {
            return Err((
                t.line,
                format!(
                    "`{stmt}`: ICMP type/code selectors (`{}`) are not supported",
                    show(t.text)
                ),
            ));
        }
    }
    Ok((src, sp, dst, dp, up))
}

fn direction(c: &mut Cur<'_, '_>, stmt: &str) -> R<PolicyDir> {
    match c.next() {
        Some(t) if t.text == "-P" && !t.quoted => {}
        Some(t) if t.text == "-ctx" => {
            return Err((
                t.line,
                format!("`{stmt}`: security contexts (`-ctx`) are not supported"),
            ))
        }
        Some(t) => {
            return Err((
                t.line,
                format!(
                    "`{stmt}`: `-P DIRECTION …` expected, not `{}`",
                    show(t.text)
                ),
            ))
        }
        None => return c.fail(format!("`{stmt}`: `-P DIRECTION …` expected before `;`")),
    }
    let d = c.want("a direction (in, out or fwd)", "-P")?;
    match d.text {
        "in" => Ok(PolicyDir::In),
        "out" => Ok(PolicyDir::Out),
        "fwd" => Ok(PolicyDir::Fwd),
        other => Err((
            d.line,
            format!("`-P {}`: the direction is in, out or fwd", show(other)),
        )),
    }
}

/// One `esp/transport//require` request.
fn request(t: Tok<'_>) -> R<IpsecRequest> {
    let fail = |m: String| Err((t.line, format!("`{}`: {m}", show(t.text))));
    let parts: Vec<&str> = t.text.split('/').collect();
    if parts.len() < 2 || parts.len() > 4 {
        return fail(
            "a request is PROTOCOL/MODE/[SRC-DST]/[LEVEL], e.g. esp/transport//require".into(),
        );
    }
    let get = |i: usize| parts.get(i).copied().unwrap_or("");
    let proto = match get(0) {
        "esp" => IpsecProto::Esp,
        "ah" => IpsecProto::Ah,
        "ipcomp" => return fail("IPComp is not supported".into()),
        other => return fail(format!("unknown protocol `{}` (esp or ah)", show(other))),
    };
    let mode = match get(1) {
        "transport" => SaMode::Transport,
        "tunnel" => SaMode::Tunnel,
        other => {
            return fail(format!(
                "the mode is transport or tunnel, not `{}`",
                show(other)
            ))
        }
    };
    let ends = get(2);
    let endpoints = if ends.is_empty() {
        None
    } else {
        let Some((a, b)) = ends.split_once('-') else {
            return fail("tunnel endpoints are written SRC-DST".into());
        };
        let a = match parse_ip(a) {
            Ok(a) => a,
            Err(e) => return fail(e),
        };
        let b = match parse_ip(b) {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
        if a.is_ipv4() != b.is_ipv4() {
            return fail("the tunnel endpoints are of different address families".into());
        }
        Some((a, b))
    };
    match (mode, endpoints) {
        (SaMode::Tunnel, None) => {
            return fail("tunnel mode needs the endpoints: esp/tunnel/SRC-DST/require".into())
        }
        (SaMode::Transport, Some(_)) => {
            return fail("transport mode takes no endpoints (they are the selector's hosts): esp/transport//require".into())
        }
        _ => {}
    }
    let lv = get(3);
    let level = match lv {
        "" | "default" => Level::Default,
        "use" => Level::Use,
        "require" => Level::Require,
        "unique" => Level::Unique(None),
        _ => match lv
            .strip_prefix("unique:")
            .or_else(|| lv.strip_prefix("unique#"))
        {
            Some(n) if !n.is_empty() && n.len() <= 5 && n.bytes().all(|b| b.is_ascii_digit()) => {
                Level::Unique(n.parse::<u32>().ok())
            }
            _ => {
                return fail(format!(
                    "the level is require, use, unique[:N] or default, not `{}`",
                    show(lv)
                ))
            }
        },
    };
    Ok(IpsecRequest {
        proto,
        mode,
        endpoints,
        level,
    })
}

fn spdadd(c: &mut Cur<'_, '_>) -> R<Statement> {
    let (src, src_port, dst, dst_port, up) = selector(c, "spdadd")?;
    let dir = direction(c, "spdadd")?;
    let a = c.want("an action (ipsec, none or discard)", "-P")?;
    let action = match a.text {
        "none" => {
            c.end("spdadd")?;
            PolicyAction::None
        }
        "discard" => {
            c.end("spdadd")?;
            PolicyAction::Discard
        }
        "ipsec" => {
            let mut reqs = Vec::new();
            while let Some(t) = c.next() {
                if reqs.len() >= MAX_REQUESTS {
                    return Err((
                        t.line,
                        format!(
                            "`spdadd`: at most {MAX_REQUESTS} requests (esp, then ah around it)"
                        ),
                    ));
                }
                reqs.push(request(t)?);
            }
            if reqs.is_empty() {
                return c.fail(
                    "`spdadd … ipsec`: at least one request expected, e.g. esp/transport//require",
                );
            }
            PolicyAction::Ipsec(reqs)
        }
        "prio" | "priority" => {
            return Err((
                a.line,
                format!(
                    "`spdadd`: policy priorities (`{}`) are not supported",
                    a.text
                ),
            ))
        }
        "entrust" | "bypass" => {
            return Err((
                a.line,
                format!(
                    "`spdadd`: the `{}` action is not supported (ipsec, none or discard)",
                    a.text
                ),
            ))
        }
        other => {
            return Err((
                a.line,
                format!(
                    "`spdadd`: unknown action `{}` (ipsec, none or discard)",
                    show(other)
                ),
            ))
        }
    };
    Ok(Statement::SpdAdd(SpdEntry {
        src,
        src_port,
        dst,
        dst_port,
        upper: up,
        dir,
        action,
    }))
}

fn statement(c: &mut Cur<'_, '_>) -> R<Statement> {
    let Some(kw) = c.next() else {
        return c.fail("empty statement");
    };
    if kw.quoted {
        return Err((
            kw.line,
            format!("unknown statement `\"{}\"`", show(kw.text)),
        ));
    }
    match kw.text {
        "flush" => Ok(Statement::Flush(opt_proto(c, "flush")?)),
        "dump" => Ok(Statement::Dump(opt_proto(c, "dump")?)),
        "spdflush" => {
            c.end("spdflush")?;
            Ok(Statement::SpdFlush)
        }
        "spddump" => {
            c.end("spddump")?;
            Ok(Statement::SpdDump)
        }
        "add" => add(c),
        "delete" => {
            let (src, dst, proto) = sa_triple(c, "delete")?;
            let spi = parse_spi(c.want("an SPI", "delete")?, "delete")?;
            c.end("delete")?;
            Ok(Statement::Delete {
                src,
                dst,
                proto,
                spi,
            })
        }
        "deleteall" => {
            let (src, dst, proto) = sa_triple(c, "deleteall")?;
            c.end("deleteall")?;
            Ok(Statement::DeleteAll { src, dst, proto })
        }
        "get" => {
            let (src, dst, proto) = sa_triple(c, "get")?;
            let spi = parse_spi(c.want("an SPI", "get")?, "get")?;
            c.end("get")?;
            Ok(Statement::Get {
                src,
                dst,
                proto,
                spi,
            })
        }
        "spdadd" => spdadd(c),
        "spddelete" => {
            let (src, src_port, dst, dst_port, upper) = selector(c, "spddelete")?;
            let dir = direction(c, "spddelete")?;
            c.end("spddelete")?;
            Ok(Statement::SpdDelete {
                src,
                src_port,
                dst,
                dst_port,
                upper,
                dir,
            })
        }
        "update" => Err((
            kw.line,
            "`update` is not supported: `delete` the SA and `add` it again".into(),
        )),
        "spdupdate" => Err((
            kw.line,
            "`spdupdate` is not supported: `spddelete` the policy and `spdadd` it again".into(),
        )),
        other => Err((kw.line, format!("unknown statement `{}`", show(other)))),
    }
}

/// A statement keyword at the start of a line after the first: the `;` before it is missing.
fn missing_semicolon(toks: &[Tok<'_>]) -> Option<(usize, String)> {
    let first = toks.first()?;
    let mut prev_line = first.line;
    for t in toks.iter().skip(1) {
        if t.line_start && !t.quoted && t.line > first.line && KEYWORDS.contains(&t.text) {
            return Some((
                prev_line,
                format!(
                    "missing `;` at the end of the `{}` statement (before `{}` on line {})",
                    show(first.text),
                    t.text,
                    t.line
                ),
            ));
        }
        prev_line = t.line;
    }
    None
}

/// Parse a whole setkey script. `file` names it in errors. Every error is `file:line: message`.
pub fn parse(text: &str, file: &str) -> Result<Vec<Located<Statement>>, Vec<SetkeyError>> {
    let mut errs = Errors {
        file,
        list: Vec::new(),
        dropped: 0,
    };
    if text.len() > MAX_SCRIPT_BYTES {
        errs.push(
            1,
            format!(
                "the script is {} bytes: at most {MAX_SCRIPT_BYTES} (1 MiB)",
                text.len()
            ),
        );
        return Err(errs.finish());
    }
    let raw = lex(text, &mut errs);
    let mut out = Vec::new();
    let mut count = 0usize;
    for st in raw {
        let Some(first) = st.toks.first().copied() else {
            continue; // `;;` or a poisoned empty statement (reported)
        };
        count += 1;
        if count > MAX_STATEMENTS {
            errs.push(
                first.line,
                format!("more than {MAX_STATEMENTS} statements in one script"),
            );
            break;
        }
        if st.poisoned {
            continue;
        }
        if let Some((line, msg)) = missing_semicolon(&st.toks) {
            errs.push(line, msg);
            continue;
        }
        if !st.terminated {
            let last = st.toks.last().map_or(first.line, |t| t.line);
            errs.push(
                last,
                format!(
                    "missing `;` at the end of the `{}` statement (started on line {})",
                    show(first.text),
                    first.line
                ),
            );
            continue;
        }
        let mut c = Cur {
            toks: &st.toks,
            pos: 0,
        };
        match statement(&mut c) {
            Ok(item) => out.push(Located {
                line: first.line,
                item,
            }),
            Err((line, msg)) => errs.push(line, msg),
        }
    }
    let list = errs.finish();
    if list.is_empty() {
        Ok(out)
    } else {
        Err(list)
    }
}
