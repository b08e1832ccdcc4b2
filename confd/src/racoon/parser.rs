//! racoon.conf(5) and psk.txt, parsed sans-IO.
//!
//! racoon.conf is a sequence of statements ending in `;` and blocks `WORDS { … }` (nested), with
//! `#` comments to the end of the line and `"quoted strings"`. [`parse_conf`] first builds the
//! statement tree (braces, semicolons: the first syntax error stops it, as `file:line: message`),
//! then reads the statements ipsecctl import understands into [`RacoonConf`]. Statements it knows
//! but cannot use (`padding`, `timer`, `log`, certificates…) and keywords it does not know at all
//! are kept as [`Kept`] with their line, so that the conversion can name each one.
//!
//! psk.txt is `IDENTIFIER KEY` per line, read as racoon reads it ([`parse_psk`]): a line starting
//! with `#` is a comment, the identifier is the first word, the key the rest of the line (spaces
//! and `#` included); a key starting with `0x` is hex.
//!
//! Sizes are bounded ([`MAX_CONF_BYTES`], [`MAX_DEPTH`], [`MAX_STATEMENTS`], [`MAX_WORDS`],
//! [`MAX_WORD_LEN`], [`MAX_PSK_ENTRIES`]); nothing here panics on any input.

use crate::setkey::model::Located;
use ipc::policy::Net;
use std::net::IpAddr;
use zeroize::Zeroizing;

/// Largest racoon.conf or psk.txt read.
pub const MAX_CONF_BYTES: usize = 1 << 20;
/// Deepest block nesting (`remote { proposal { } }` is 2).
pub const MAX_DEPTH: usize = 8;
/// Most statements and blocks in one file.
pub const MAX_STATEMENTS: usize = 20_000;
/// Most words in one statement (or block header).
pub const MAX_WORDS: usize = 256;
/// Longest word or quoted string.
pub const MAX_WORD_LEN: usize = 4096;
/// Most psk.txt entries.
pub const MAX_PSK_ENTRIES: usize = 10_000;

// ------------------------------------------------------------------------------------ lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokKind {
    Word,
    Quoted,
    Semi,
    Open,
    Close,
    Comma,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tok {
    kind: TokKind,
    text: String,
    line: usize,
    /// The first token of its line.
    first_on_line: bool,
}

fn err(file: &str, line: usize, msg: impl std::fmt::Display) -> String {
    format!("{file}:{line}: {msg}")
}

/// Shorten text for an error message (never more than 60 characters, no control characters).
fn show(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() > 60 {
        let cut: String = clean.chars().take(57).collect();
        format!("{cut}...")
    } else {
        clean
    }
}

fn lex(text: &str, file: &str) -> Result<Vec<Tok>, String> {
    let mut toks: Vec<Tok> = Vec::new();
    let mut line = 1usize;
    let mut last_tok_line = 0usize;
    let mut chars = text.char_indices().peekable();
    let push = |toks: &mut Vec<Tok>, last: &mut usize, kind, text: String, line: usize| {
        toks.push(Tok {
            kind,
            text,
            line,
            first_on_line: *last != line,
        });
        *last = line;
    };
    while let Some((_, c)) = chars.next() {
        if toks.len() > MAX_STATEMENTS.saturating_mul(8) {
            return Err(err(file, line, "too many tokens"));
        }
        match c {
            '\n' => line = line.saturating_add(1),
            c if c.is_whitespace() => {}
            '#' => {
                while let Some((_, c)) = chars.peek() {
                    if *c == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            ';' => push(
                &mut toks,
                &mut last_tok_line,
                TokKind::Semi,
                ";".into(),
                line,
            ),
            '{' => push(
                &mut toks,
                &mut last_tok_line,
                TokKind::Open,
                "{".into(),
                line,
            ),
            '}' => push(
                &mut toks,
                &mut last_tok_line,
                TokKind::Close,
                "}".into(),
                line,
            ),
            ',' => push(
                &mut toks,
                &mut last_tok_line,
                TokKind::Comma,
                ",".into(),
                line,
            ),
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\n')) | None => {
                            return Err(err(file, start, "unterminated quoted string"))
                        }
                        Some((_, c)) if c.is_control() && c != '\t' => {
                            return Err(err(file, start, "control character in a quoted string"))
                        }
                        Some((_, c)) => {
                            if s.len() >= MAX_WORD_LEN {
                                return Err(err(
                                    file,
                                    start,
                                    format!("quoted string longer than {MAX_WORD_LEN} bytes"),
                                ));
                            }
                            s.push(c);
                        }
                    }
                }
                push(&mut toks, &mut last_tok_line, TokKind::Quoted, s, start);
            }
            c if c.is_control() => {
                return Err(err(
                    file,
                    line,
                    format!("unexpected control character {:#04x}", u32::from(c)),
                ))
            }
            c => {
                let mut s = String::new();
                s.push(c);
                while let Some((_, n)) = chars.peek() {
                    let n = *n;
                    if n.is_whitespace()
                        || n.is_control()
                        || matches!(n, ';' | '{' | '}' | ',' | '"' | '#')
                    {
                        break;
                    }
                    if s.len() >= MAX_WORD_LEN {
                        return Err(err(
                            file,
                            line,
                            format!("word longer than {MAX_WORD_LEN} bytes"),
                        ));
                    }
                    s.push(n);
                    chars.next();
                }
                push(&mut toks, &mut last_tok_line, TokKind::Word, s, line);
            }
        }
    }
    Ok(toks)
}

// ----------------------------------------------------------------------------- statement tree

/// One word of a statement: its text (quotes removed), whether it was quoted, its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub quoted: bool,
    /// `,` between list items is kept as an unquoted word `,`.
    pub line: usize,
}

/// A statement `WORDS;` (no body) or a block `WORDS { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub line: usize,
    pub words: Vec<Word>,
    pub body: Option<Vec<Node>>,
}

impl Node {
    /// The statement as written (quotes restored), for messages.
    pub fn text(&self) -> String {
        words_text(&self.words)
    }
}

fn words_text(words: &[Word]) -> String {
    let mut s = String::new();
    for w in words {
        if w.text == "," && !w.quoted {
            s.push(',');
            continue;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        if w.quoted {
            s.push('"');
            s.push_str(&w.text);
            s.push('"');
        } else {
            s.push_str(&w.text);
        }
    }
    show(&s)
}

/// Is `word` a keyword that starts a racoon.conf statement, in any context? Such a word at the start of
/// a line inside an unfinished statement means the `;` before it is missing.
fn is_directive(word: &str) -> bool {
    [
        TOP_KEYWORDS,
        LISTEN_KEYWORDS,
        TIMER_KEYWORDS,
        PADDING_KEYWORDS,
        REMOTE_KEYWORDS,
        PROPOSAL_KEYWORDS,
        SAINFO_KEYWORDS,
    ]
    .iter()
    .any(|list| list.contains(&word))
}

const TIMER_KEYWORDS: &[&str] = &["counter", "interval", "persend", "phase1", "phase2", "natt_keepalive"];
const PADDING_KEYWORDS: &[&str] = &[
    "randomize",
    "randomize_length",
    "maximum_length",
    "exclusive_tail",
    "strict_check",
];

/// racoon.conf's keywords by where they may appear.
const TOP_KEYWORDS: &[&str] = &[
    "path",
    "include",
    "gss_id_enc",
    "complex_bundle",
    "listen",
    "timer",
    "padding",
    "remote",
    "sainfo",
    "log",
    "privsep",
    "mode_cfg",
    "ldapcfg",
    "radiuscfg",
];
const LISTEN_KEYWORDS: &[&str] = &["isakmp", "isakmp_natt", "adminsock", "strict_address"];
const REMOTE_KEYWORDS: &[&str] = &[
    "exchange_mode",
    "doi",
    "situation",
    "my_identifier",
    "peers_identifier",
    "verify_identifier",
    "certificate_type",
    "ca_type",
    "peers_certfile",
    "script",
    "send_cert",
    "send_cr",
    "verify_cert",
    "dnssec",
    "generate_policy",
    "support_proxy",
    "initial_contact",
    "passive",
    "proposal_check",
    "nat_traversal",
    "nonce_size",
    "ike_frag",
    "esp_frag",
    "weak_phase1_check",
    "rekey",
    "lifetime",
    "dpd_delay",
    "dpd_retry",
    "dpd_maxfail",
    "ph1id",
    "remote_address",
    "xauth_login",
    "mode_cfg",
    "proposal",
];
const PROPOSAL_KEYWORDS: &[&str] = &[
    "encryption_algorithm",
    "hash_algorithm",
    "authentication_method",
    "dh_group",
    "lifetime",
    "gss_id",
];
const SAINFO_KEYWORDS: &[&str] = &[
    "pfs_group",
    "lifetime",
    "encryption_algorithm",
    "authentication_algorithm",
    "compression_algorithm",
    "my_identifier",
    "remoteid",
];

/// An open block: its header (line and words; `None` for the file itself) and its nodes so far.
type Frame = (Option<(usize, Vec<Word>)>, Vec<Node>);

fn tree(text: &str, file: &str) -> Result<Vec<Node>, String> {
    if text.len() > MAX_CONF_BYTES {
        return Err(err(
            file,
            1,
            format!("file larger than {MAX_CONF_BYTES} bytes"),
        ));
    }
    let toks = lex(text, file)?;
    // Each open frame: its header (None for the file itself) and the nodes collected so far.
    let mut stack: Vec<Frame> = vec![(None, Vec::new())];
    let mut cur: Vec<Word> = Vec::new();
    let mut count = 0usize;
    let mut after_comma = false;
    for t in toks {
        match t.kind {
            TokKind::Semi => {
                if after_comma {
                    return Err(err(
                        file,
                        t.line,
                        format!("`;` right after a `,` in `{}`", words_text(&cur)),
                    ));
                }
                if !cur.is_empty() {
                    count = count.saturating_add(1);
                    if count > MAX_STATEMENTS {
                        return Err(err(
                            file,
                            t.line,
                            format!("more than {MAX_STATEMENTS} statements"),
                        ));
                    }
                    let line = cur.first().map_or(t.line, |w| w.line);
                    let node = Node {
                        line,
                        words: std::mem::take(&mut cur),
                        body: None,
                    };
                    if let Some((_, nodes)) = stack.last_mut() {
                        nodes.push(node);
                    }
                }
                // an empty statement (`};`, `;;`) is harmless
            }
            TokKind::Open => {
                let Some(first) = cur.first() else {
                    return Err(err(file, t.line, "`{` without a statement before it"));
                };
                if after_comma {
                    return Err(err(
                        file,
                        t.line,
                        format!("`{{` right after a `,` in `{}`", words_text(&cur)),
                    ));
                }
                if stack.len() > MAX_DEPTH {
                    return Err(err(
                        file,
                        t.line,
                        format!("blocks nested deeper than {MAX_DEPTH}"),
                    ));
                }
                let line = first.line;
                stack.push((Some((line, std::mem::take(&mut cur))), Vec::new()));
            }
            TokKind::Close => {
                if let Some(last) = cur.last() {
                    return Err(err(
                        file,
                        last.line,
                        format!(
                            "missing `;` after `{}` (before the `}}` on line {})",
                            words_text(&cur),
                            t.line
                        ),
                    ));
                }
                if stack.len() <= 1 {
                    return Err(err(file, t.line, "`}` without a matching `{`"));
                }
                if let Some((Some((line, words)), body)) = stack.pop() {
                    count = count.saturating_add(1);
                    if count > MAX_STATEMENTS {
                        return Err(err(
                            file,
                            t.line,
                            format!("more than {MAX_STATEMENTS} statements"),
                        ));
                    }
                    if let Some((_, nodes)) = stack.last_mut() {
                        nodes.push(Node {
                            line,
                            words,
                            body: Some(body),
                        });
                    }
                }
            }
            TokKind::Comma | TokKind::Word | TokKind::Quoted => {
                let is_word = t.kind == TokKind::Word;
                if is_word
                    && t.first_on_line
                    && !after_comma
                    && is_directive(&t.text)
                {
                    if let Some(last) = cur.last() {
                        return Err(err(
                            file,
                            last.line,
                            format!(
                                "missing `;` after `{}` (`{}` on line {} starts a new statement)",
                                words_text(&cur),
                                t.text,
                                t.line
                            ),
                        ));
                    }
                }
                if t.kind == TokKind::Comma && (cur.is_empty() || after_comma) {
                    return Err(err(file, t.line, "unexpected `,`"));
                }
                if cur.len() >= MAX_WORDS {
                    return Err(err(
                        file,
                        t.line,
                        format!("statement longer than {MAX_WORDS} words"),
                    ));
                }
                after_comma = t.kind == TokKind::Comma;
                cur.push(Word {
                    text: t.text,
                    quoted: t.kind == TokKind::Quoted,
                    line: t.line,
                });
            }
        }
    }
    if let Some(last) = cur.last() {
        return Err(err(
            file,
            last.line,
            format!(
                "missing `;` after `{}` at the end of the file",
                words_text(&cur)
            ),
        ));
    }
    if stack.len() > 1 {
        if let Some((Some((line, words)), _)) = stack.last() {
            return Err(err(
                file,
                *line,
                format!(
                    "the `{{` of `{}` is never closed (unbalanced braces)",
                    words_text(words)
                ),
            ));
        }
    }
    Ok(stack.pop().map(|(_, n)| n).unwrap_or_default())
}

// ------------------------------------------------------------------------------ typed model

/// Something of racoon.conf that the model does not carry: the statement as written and whether
/// it is a racoon keyword where it stands (known, but with no use or no equivalent here) or not
/// (a misspelling, a keyword out of place, or garbage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub line: usize,
    /// The statement (or block header) as written.
    pub text: String,
    /// A racoon.conf keyword of this context; `false`: not one here.
    pub known: bool,
    /// Where it was: `remote 192.0.2.2`, `sainfo anonymous`, `listen`… (empty at the top level).
    pub context: String,
}

/// `remote ADDRESS|anonymous|"name"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemotePeer {
    Address(IpAddr),
    Anonymous,
    /// ipsec-tools 0.8's named remote (its address from `remote_address`).
    Named(String),
}

/// `my_identifier` / `peers_identifier` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    /// `address [ADDR]`: without a value, the host's own address.
    Address(Option<IpAddr>),
    Fqdn(String),
    UserFqdn(String),
    /// `keyid [file] "PATH"`: the ID is the contents of a file.
    KeyIdFile(String),
    /// `keyid tag "TEXT"`.
    KeyIdTag(String),
    /// `asn1dn ["DN"]`: without a value, the subject of the certificate.
    Asn1Dn(Option<String>),
    /// `subnet ADDR/PREFIX` (rare).
    Subnet(Net),
}

/// An algorithm with an optional key length (`aes 256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alg {
    /// Lower case, as written.
    pub name: String,
    pub key_bits: Option<u16>,
}

/// `proposal { … }` of a remote.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Proposal {
    pub line: usize,
    pub encryption: Option<Located<Alg>>,
    pub hash: Option<Located<String>>,
    pub auth_method: Option<Located<String>>,
    pub dh_group: Option<Located<String>>,
    /// Seconds.
    pub lifetime: Option<Located<u64>>,
    pub kept: Vec<Kept>,
}

/// A `remote` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    pub line: usize,
    pub peer: RemotePeer,
    /// `[PORT]` after the address.
    pub port: Option<u16>,
    /// `inherit PARENT` (ipsec-tools 0.8).
    pub inherit: Option<Located<String>>,
    pub remote_address: Option<Located<IpAddr>>,
    /// `exchange_mode main, aggressive;`, lower case.
    pub exchange_mode: Option<Located<Vec<String>>>,
    pub my_identifier: Option<Located<Identifier>>,
    pub peers_identifier: Vec<Located<Identifier>>,
    pub verify_identifier: Option<Located<bool>>,
    /// `lifetime time N unit`, in seconds.
    pub lifetime: Option<Located<u64>>,
    /// `obey|strict|claim|exact`.
    pub proposal_check: Option<Located<String>>,
    /// `on|off|force`.
    pub nat_traversal: Option<Located<String>>,
    pub dpd_delay: Option<Located<u64>>,
    pub dpd_retry: Option<Located<u64>>,
    pub dpd_maxfail: Option<Located<u64>>,
    /// `on|off|require|unique`.
    pub generate_policy: Option<Located<String>>,
    pub passive: Option<Located<bool>>,
    pub initial_contact: Option<Located<bool>>,
    /// `certificate_type x509|plain_rsa …`, as written.
    pub certificate_type: Option<Located<String>>,
    pub proposals: Vec<Proposal>,
    pub kept: Vec<Kept>,
}

impl Remote {
    fn new(line: usize, peer: RemotePeer) -> Remote {
        Remote {
            line,
            peer,
            port: None,
            inherit: None,
            remote_address: None,
            exchange_mode: None,
            my_identifier: None,
            peers_identifier: Vec::new(),
            verify_identifier: None,
            lifetime: None,
            proposal_check: None,
            nat_traversal: None,
            dpd_delay: None,
            dpd_retry: None,
            dpd_maxfail: None,
            generate_policy: None,
            passive: None,
            initial_contact: None,
            certificate_type: None,
            proposals: Vec::new(),
            kept: Vec::new(),
        }
    }

    /// `remote 192.0.2.2`, `remote anonymous`, `remote "name"`: for messages.
    pub fn title(&self) -> String {
        match &self.peer {
            RemotePeer::Address(a) => format!("remote {a}"),
            RemotePeer::Anonymous => "remote anonymous".into(),
            RemotePeer::Named(n) => format!("remote \"{}\"", show(n)),
        }
    }
}

/// One side of a `sainfo` selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaId {
    Anonymous,
    /// `address|subnet NET[[PORT]] UPPER`.
    Net {
        net: Net,
        port: Option<u16>,
        upper: u8,
    },
}

/// A `sainfo` block: `local` is racoon's source ID (this gateway's side), `remote` its destination.
#[derive(Debug, Clone, PartialEq)]
pub struct SaInfo {
    pub line: usize,
    pub local: SaId,
    pub remote: SaId,
    /// `from IDTYPE [VALUE]`: only for phase 1 with this peer ID.
    pub from: Option<Located<Identifier>>,
    /// `group NAME` (XAUTH groups).
    pub group: Option<Located<String>>,
    pub pfs_group: Option<Located<String>>,
    /// Seconds.
    pub lifetime: Option<Located<u64>>,
    pub encryption: Option<Located<Vec<Alg>>>,
    pub authentication: Option<Located<Vec<Alg>>>,
    pub compression: Option<Located<Vec<Alg>>>,
    pub kept: Vec<Kept>,
}

impl SaInfo {
    /// `sainfo anonymous`, `sainfo address 10.1.0.0/24 any address 10.2.0.0/24 any`.
    pub fn title(&self) -> String {
        fn side(s: &SaId) -> String {
            match s {
                SaId::Anonymous => "anonymous".into(),
                SaId::Net { net, port, upper } => {
                    let port = port.map(|p| format!("[{p}]")).unwrap_or_default();
                    let upper = match upper {
                        0 => "any".to_string(),
                        n => upper_name(*n).map_or_else(|| n.to_string(), str::to_string),
                    };
                    format!("address {net}{port} {upper}")
                }
            }
        }
        match (&self.local, &self.remote) {
            (SaId::Anonymous, SaId::Anonymous) => "sainfo anonymous".into(),
            (l, r) => format!("sainfo {} {}", side(l), side(r)),
        }
    }
}

/// A `listen { isakmp ADDR [[PORT]]; }` address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr {
    pub addr: IpAddr,
    pub port: Option<u16>,
    /// `isakmp_natt` rather than `isakmp`.
    pub natt: bool,
}

/// What a racoon.conf says, as far as the import reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RacoonConf {
    /// `path pre_shared_key "FILE";`
    pub psk_path: Option<Located<String>>,
    pub listen: Vec<Located<ListenAddr>>,
    pub remotes: Vec<Remote>,
    pub sainfos: Vec<SaInfo>,
    /// Top-level, `listen`, `path`… statements not carried by the model.
    pub kept: Vec<Kept>,
}

fn upper_name(n: u8) -> Option<&'static str> {
    Some(match n {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "icmp6",
        _ => return None,
    })
}

// ------------------------------------------------------------------------------ typed parse

struct P<'a> {
    file: &'a str,
    errors: Vec<String>,
}

const MAX_ERRORS: usize = 100;

impl P<'_> {
    fn error(&mut self, line: usize, msg: impl std::fmt::Display) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(err(self.file, line, msg));
        }
    }

    fn kept(&self, n: &Node, known: bool, context: &str) -> Kept {
        let mut text = n.text();
        if n.body.is_some() {
            text.push_str(" { … }");
        }
        Kept {
            line: n.line,
            text,
            known,
            context: context.to_string(),
        }
    }

    /// A statement that must not be a block, or a block that must not be a statement.
    fn shape(&mut self, n: &Node, block: bool) -> bool {
        match (&n.body, block) {
            (Some(_), false) => {
                self.error(
                    n.line,
                    format!("`{}` is a statement, not a block", n.text()),
                );
                false
            }
            (None, true) => {
                self.error(n.line, format!("`{}` needs a block `{{ … }}`", n.text()));
                false
            }
            _ => true,
        }
    }
}

fn plain(w: &Word) -> Option<&str> {
    (!w.quoted).then_some(w.text.as_str())
}

/// The words of a statement after the keyword, as text (quotes dropped).
fn args(n: &Node) -> Vec<&str> {
    n.words.iter().skip(1).map(|w| w.text.as_str()).collect()
}

fn on_off(v: &str) -> Option<bool> {
    match v {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

fn number(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// `time N unit` → seconds; `Err` says why.
fn lifetime_secs(a: &[&str]) -> Result<Option<u64>, String> {
    match a {
        ["time", n, unit] => {
            let n = number(n).ok_or_else(|| format!("`{n}` is not a number"))?;
            let mult = match *unit {
                "sec" | "secs" | "second" | "seconds" => 1,
                "min" | "mins" | "minute" | "minutes" => 60,
                "hour" | "hours" => 3600,
                other => return Err(format!("`{other}`: expected sec, min or hour")),
            };
            n.checked_mul(mult)
                .map(Some)
                .ok_or_else(|| "lifetime too large".to_string())
        }
        // lifetime byte N unit: kept by the caller
        ["byte", ..] => Ok(None),
        _ => Err("expected `lifetime time NUMBER sec|min|hour`".into()),
    }
}

/// `ADDR`, `ADDR/PREFIX`, with an optional `[PORT]` suffix or a separate `[PORT]` word.
fn net_port(word: &str) -> Option<(Net, Option<u16>)> {
    let (body, port) = match word.split_once('[') {
        Some((b, rest)) => {
            let p = rest.strip_suffix(']')?;
            (b, port_value(p)?)
        }
        None => (word, None),
    };
    let (addr, prefix) = match body.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (body, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => {
            let n = number(p)?;
            if n > max {
                return None;
            }
            u8::try_from(n).ok()?
        }
        None => u8::try_from(max).ok()?,
    };
    Some((Net { addr, prefix }, port))
}

/// `500`, `any` (no port).
fn port_value(p: &str) -> Option<Option<u16>> {
    if p == "any" {
        return Some(None);
    }
    number(p)
        .and_then(|n| u16::try_from(n).ok())
        .map(|n| (n != 0).then_some(n))
}

/// `[500]` as its own word.
fn bracket_port(w: &str) -> Option<Option<u16>> {
    w.strip_prefix('[')?.strip_suffix(']').and_then(port_value)
}

/// racoon's upper-layer protocol names.
fn upper_proto(w: &str) -> Option<u8> {
    Some(match w {
        "any" => 0,
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmp6" | "ipv6-icmp" => 58,
        n => u8::try_from(number(n)?).ok()?,
    })
}

/// An identifier after its keyword: `address [ADDR]`, `fqdn "x"`, `user_fqdn "u@d"`,
/// `keyid [file|tag] "x"`, `asn1dn ["dn"]`, `subnet NET`.
fn identifier(a: &[&str]) -> Result<Identifier, String> {
    let value_ok = |v: &str| -> Result<String, String> {
        if v.is_empty() {
            Err("empty identifier".into())
        } else if v.chars().any(char::is_control) {
            Err("control character in the identifier".into())
        } else {
            Ok(v.to_string())
        }
    };
    Ok(match a {
        ["address"] => Identifier::Address(None),
        ["address", v] => Identifier::Address(Some(
            v.parse()
                .map_err(|_| format!("`{}` is not an IP address", show(v)))?,
        )),
        ["fqdn", v] => Identifier::Fqdn(value_ok(v)?),
        ["user_fqdn", v] => Identifier::UserFqdn(value_ok(v)?),
        ["keyid", v] | ["keyid", "file", v] => Identifier::KeyIdFile(value_ok(v)?),
        ["keyid", "tag", v] => Identifier::KeyIdTag(value_ok(v)?),
        ["asn1dn"] => Identifier::Asn1Dn(None),
        ["asn1dn", v] => Identifier::Asn1Dn(Some(value_ok(v)?)),
        ["subnet", v] => Identifier::Subnet(
            net_port(v)
                .filter(|(_, p)| p.is_none())
                .map(|(n, _)| n)
                .ok_or_else(|| format!("`{}` is not an address/prefix", show(v)))?,
        ),
        [kind, ..]
            if matches!(
                *kind,
                "address" | "fqdn" | "user_fqdn" | "keyid" | "asn1dn" | "subnet"
            ) =>
        {
            return Err(format!("`{}`: wrong number of values", show(&a.join(" "))))
        }
        [kind, ..] => {
            return Err(format!(
                "`{}`: expected address, fqdn, user_fqdn, keyid or asn1dn",
                show(kind)
            ))
        }
        [] => return Err("missing identifier type".into()),
    })
}

/// `alg [bits], alg [bits], …` (the words after the keyword, commas included).
fn alg_list(words: &[Word]) -> Result<Vec<Alg>, String> {
    let mut out = Vec::new();
    for item in words.split(|w| w.text == "," && !w.quoted) {
        let parts: Vec<&str> = item.iter().map(|w| w.text.as_str()).collect();
        let alg = match parts.as_slice() {
            [name] => Alg {
                name: name.to_ascii_lowercase(),
                key_bits: None,
            },
            [name, bits] => Alg {
                name: name.to_ascii_lowercase(),
                key_bits: Some(
                    number(bits)
                        .and_then(|n| u16::try_from(n).ok())
                        .ok_or_else(|| format!("`{}` is not a key length", show(bits)))?,
                ),
            },
            [] => return Err("empty algorithm in the list".into()),
            _ => return Err(format!("`{}` is not an algorithm", show(&parts.join(" ")))),
        };
        if !alg
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!("`{}` is not an algorithm name", show(&alg.name)));
        }
        out.push(alg);
    }
    if out.is_empty() {
        return Err("no algorithm".into());
    }
    Ok(out)
}

/// A single lower-case word value (`dh_group 2;`, `hash_algorithm sha1;`).
fn single(p: &mut P<'_>, n: &Node) -> Option<Located<String>> {
    match n.words.as_slice() {
        [_, v] if !v.quoted && !v.text.is_empty() => Some(Located {
            line: n.line,
            item: v.text.to_ascii_lowercase(),
        }),
        _ => {
            p.error(n.line, format!("`{}`: expected one value", n.text()));
            None
        }
    }
}

fn set_once<T>(p: &mut P<'_>, slot: &mut Option<Located<T>>, n: &Node, v: T) {
    if let Some(prev) = slot {
        p.error(n.line, format!("`{}` repeats line {}", n.text(), prev.line));
    } else {
        *slot = Some(Located {
            line: n.line,
            item: v,
        });
    }
}

fn parse_proposal(p: &mut P<'_>, n: &Node, body: &[Node], context: &str) -> Proposal {
    let mut prop = Proposal {
        line: n.line,
        ..Proposal::default()
    };
    if n.words.len() != 1 {
        p.error(n.line, format!("`{}`: `proposal` takes no value", n.text()));
    }
    for s in body {
        let key = s.words.first().and_then(plain).unwrap_or("");
        if !matches!(
            key,
            "encryption_algorithm"
                | "hash_algorithm"
                | "authentication_method"
                | "dh_group"
                | "lifetime"
                | "gss_id"
        ) && s.body.is_none()
        {
            prop.kept
                .push(p.kept(s, PROPOSAL_KEYWORDS.contains(&key), context));
            continue;
        }
        if !p.shape(s, false) {
            continue;
        }
        match key {
            "encryption_algorithm" => match alg_list(s.words.get(1..).unwrap_or(&[])) {
                Ok(v) if v.len() == 1 => {
                    if let Some(a) = v.into_iter().next() {
                        set_once(p, &mut prop.encryption, s, a);
                    }
                }
                Ok(_) => p.error(
                    s.line,
                    format!(
                        "`{}`: one algorithm per proposal (write one proposal each)",
                        s.text()
                    ),
                ),
                Err(e) => p.error(s.line, format!("`{}`: {e}", s.text())),
            },
            "hash_algorithm" => {
                if let Some(v) = single(p, s) {
                    set_once(p, &mut prop.hash, s, v.item);
                }
            }
            "authentication_method" => {
                if let Some(v) = single(p, s) {
                    set_once(p, &mut prop.auth_method, s, v.item);
                }
            }
            "dh_group" => {
                if let Some(v) = single(p, s) {
                    set_once(p, &mut prop.dh_group, s, v.item);
                }
            }
            "lifetime" => match lifetime_secs(&args(s)) {
                Ok(Some(v)) => set_once(p, &mut prop.lifetime, s, v),
                Ok(None) => prop.kept.push(p.kept(s, true, context)),
                Err(e) => p.error(s.line, format!("`{}`: {e}", s.text())),
            },
            _ => prop.kept.push(p.kept(s, true, context)),
        }
    }
    prop
}

fn parse_remote(p: &mut P<'_>, n: &Node, body: &[Node]) -> Option<Remote> {
    let words: Vec<&Word> = n.words.iter().skip(1).collect();
    let Some(first) = words.first() else {
        p.error(n.line, "`remote` needs an address, `anonymous` or a name");
        return None;
    };
    let peer = if first.quoted {
        RemotePeer::Named(first.text.clone())
    } else if first.text == "anonymous" {
        RemotePeer::Anonymous
    } else {
        let host = |net: &Net| net.prefix == if net.addr.is_ipv4() { 32 } else { 128 };
        match net_port(&first.text).filter(|(net, _)| host(net) && !first.text.contains('/')) {
            Some((net, port)) => {
                let mut r = Remote::new(n.line, RemotePeer::Address(net.addr));
                r.port = port;
                return finish_remote(p, n, body, r, words.get(1..).unwrap_or(&[]));
            }
            None => {
                p.error(
                    n.line,
                    format!(
                        "`{}`: expected an IP address, `anonymous` or a \"quoted name\"",
                        n.text()
                    ),
                );
                return None;
            }
        }
    };
    let r = Remote::new(n.line, peer);
    finish_remote(p, n, body, r, words.get(1..).unwrap_or(&[]))
}

fn finish_remote(
    p: &mut P<'_>,
    n: &Node,
    body: &[Node],
    mut r: Remote,
    rest: &[&Word],
) -> Option<Remote> {
    let mut rest = rest;
    if let Some(w) = rest.first() {
        if let Some(port) = bracket_port(&w.text).filter(|_| !w.quoted) {
            r.port = port;
            rest = rest.get(1..).unwrap_or(&[]);
        }
    }
    match rest {
        [] => {}
        [kw, parent] if kw.text == "inherit" && !kw.quoted => {
            r.inherit = Some(Located {
                line: n.line,
                item: parent.text.clone(),
            });
        }
        _ => {
            p.error(
                n.line,
                format!("`{}`: unexpected words after the peer", n.text()),
            );
            return None;
        }
    }
    let context = r.title();
    for s in body {
        let key = s.words.first().and_then(plain).unwrap_or("");
        if key == "proposal" {
            if let Some(b) = &s.body {
                let prop = parse_proposal(p, s, b, &format!("{context} proposal"));
                r.proposals.push(prop);
            } else {
                p.error(s.line, "`proposal` needs a block `{ … }`");
            }
            continue;
        }
        const HANDLED: &[&str] = &[
            "exchange_mode",
            "my_identifier",
            "peers_identifier",
            "verify_identifier",
            "lifetime",
            "proposal_check",
            "nat_traversal",
            "dpd_delay",
            "dpd_retry",
            "dpd_maxfail",
            "generate_policy",
            "passive",
            "initial_contact",
            "certificate_type",
            "remote_address",
        ];
        if !HANDLED.contains(&key) {
            r.kept
                .push(p.kept(s, REMOTE_KEYWORDS.contains(&key), &context));
            continue;
        }
        if !p.shape(s, false) {
            continue;
        }
        let a = args(s);
        let bad = |p: &mut P<'_>, why: &str| p.error(s.line, format!("`{}`: {why}", s.text()));
        match key {
            "exchange_mode" => {
                let mut modes = Vec::new();
                let mut ok = true;
                for item in s
                    .words
                    .get(1..)
                    .unwrap_or(&[])
                    .split(|w| w.text == "," && !w.quoted)
                {
                    match item {
                        [w] if matches!(w.text.as_str(), "main" | "aggressive" | "base") => {
                            modes.push(w.text.clone())
                        }
                        _ => ok = false,
                    }
                }
                if ok && !modes.is_empty() {
                    set_once(p, &mut r.exchange_mode, s, modes);
                } else {
                    bad(
                        p,
                        "expected main, aggressive or base (a comma-separated list)",
                    );
                }
            }
            "my_identifier" | "peers_identifier" => match identifier(&a) {
                Ok(id) if key == "my_identifier" => set_once(p, &mut r.my_identifier, s, id),
                Ok(id) => r.peers_identifier.push(Located {
                    line: s.line,
                    item: id,
                }),
                Err(e) => bad(p, &e),
            },
            "verify_identifier" | "passive" | "initial_contact" => match a.as_slice() {
                [v] if on_off(v).is_some() => {
                    let v = on_off(v).unwrap_or(false);
                    let slot = match key {
                        "verify_identifier" => &mut r.verify_identifier,
                        "passive" => &mut r.passive,
                        _ => &mut r.initial_contact,
                    };
                    set_once(p, slot, s, v);
                }
                _ => bad(p, "expected on or off"),
            },
            "lifetime" => match lifetime_secs(&a) {
                Ok(Some(v)) => set_once(p, &mut r.lifetime, s, v),
                Ok(None) => r.kept.push(p.kept(s, true, &context)),
                Err(e) => bad(p, &e),
            },
            "proposal_check" => match a.as_slice() {
                [v] if matches!(*v, "obey" | "strict" | "claim" | "exact") => {
                    set_once(p, &mut r.proposal_check, s, (*v).to_string())
                }
                _ => bad(p, "expected obey, strict, claim or exact"),
            },
            "nat_traversal" => match a.as_slice() {
                [v] if matches!(*v, "on" | "off" | "force") => {
                    set_once(p, &mut r.nat_traversal, s, (*v).to_string())
                }
                _ => bad(p, "expected on, off or force"),
            },
            "generate_policy" => match a.as_slice() {
                [v] if matches!(*v, "on" | "off" | "require" | "unique") => {
                    set_once(p, &mut r.generate_policy, s, (*v).to_string())
                }
                _ => bad(p, "expected on, off, require or unique"),
            },
            "dpd_delay" | "dpd_retry" | "dpd_maxfail" => match a.as_slice() {
                [v] if number(v).is_some() => {
                    let v = number(v).unwrap_or(0);
                    let slot = match key {
                        "dpd_delay" => &mut r.dpd_delay,
                        "dpd_retry" => &mut r.dpd_retry,
                        _ => &mut r.dpd_maxfail,
                    };
                    set_once(p, slot, s, v);
                }
                _ => bad(p, "expected a number"),
            },
            "certificate_type" => {
                if a.is_empty() {
                    bad(p, "expected x509 or plain_rsa and the files");
                } else {
                    set_once(
                        p,
                        &mut r.certificate_type,
                        s,
                        words_text(s.words.get(1..).unwrap_or(&[])),
                    );
                }
            }
            "remote_address" => match a.as_slice() {
                [v] if v.parse::<IpAddr>().is_ok() => {
                    if let Ok(ip) = v.parse::<IpAddr>() {
                        set_once(p, &mut r.remote_address, s, ip);
                    }
                }
                _ => bad(p, "expected an IP address"),
            },
            _ => r.kept.push(p.kept(s, true, &context)),
        }
    }
    Some(r)
}

/// One side of a sainfo header, from `words`; returns the side and how many words it used.
fn sa_id(words: &[&Word]) -> Result<(SaId, usize), String> {
    let w = |i: usize| words.get(i).map(|w| w.text.as_str());
    match w(0) {
        Some("anonymous") => Ok((SaId::Anonymous, 1)),
        Some("address") | Some("subnet") => {
            let addr = w(1).ok_or("`address` needs an address")?;
            let (net, mut port) = net_port(addr)
                .ok_or_else(|| format!("`{}` is not an address[/prefix][[port]]", show(addr)))?;
            let mut used = 2;
            if let Some(p) = w(2).and_then(bracket_port) {
                port = p;
                used = 3;
            }
            let up = w(used).ok_or("missing the upper-layer protocol (any, tcp, udp, icmp …)")?;
            let upper = upper_proto(up)
                .ok_or_else(|| format!("`{}` is not an upper-layer protocol", show(up)))?;
            Ok((SaId::Net { net, port, upper }, used + 1))
        }
        Some(other) => Err(format!(
            "`{}`: expected anonymous, address or subnet",
            show(other)
        )),
        None => Err("`sainfo` needs `anonymous` or `address NET PROTO address NET PROTO`".into()),
    }
}

fn parse_sainfo(p: &mut P<'_>, n: &Node, body: &[Node]) -> Option<SaInfo> {
    let words: Vec<&Word> = n.words.iter().skip(1).collect();
    let header = (|| -> Result<SaInfo, String> {
        let (local, used) = sa_id(&words)?;
        let mut rest = words.get(used..).unwrap_or(&[]);
        let remote = if local == SaId::Anonymous
            && rest
                .first()
                .is_none_or(|w| matches!(w.text.as_str(), "from" | "group"))
        {
            SaId::Anonymous
        } else {
            let (r, used) = sa_id(rest)?;
            rest = rest.get(used..).unwrap_or(&[]);
            r
        };
        let mut info = SaInfo {
            line: n.line,
            local,
            remote,
            from: None,
            group: None,
            pfs_group: None,
            lifetime: None,
            encryption: None,
            authentication: None,
            compression: None,
            kept: Vec::new(),
        };
        while let Some(kw) = rest.first() {
            match kw.text.as_str() {
                "from" => {
                    // from IDTYPE [VALUE]: the value is the next word unless it is `group`
                    let mut take = 2;
                    if rest.get(2).is_some_and(|w| w.text != "group" || w.quoted) {
                        take = 3;
                    }
                    let parts: Vec<&str> = rest
                        .get(1..take)
                        .unwrap_or(&[])
                        .iter()
                        .map(|w| w.text.as_str())
                        .collect();
                    let id = identifier(&parts)?;
                    info.from = Some(Located {
                        line: n.line,
                        item: id,
                    });
                    rest = rest.get(take..).unwrap_or(&[]);
                }
                "group" => {
                    let g = rest.get(1).ok_or("`group` needs a name")?;
                    info.group = Some(Located {
                        line: n.line,
                        item: g.text.clone(),
                    });
                    rest = rest.get(2..).unwrap_or(&[]);
                }
                other => return Err(format!("unexpected `{}`", show(other))),
            }
        }
        Ok(info)
    })();
    let mut info = match header {
        Ok(i) => i,
        Err(e) => {
            p.error(n.line, format!("`{}`: {e}", n.text()));
            return None;
        }
    };
    let context = info.title();
    for s in body {
        let key = s.words.first().and_then(plain).unwrap_or("");
        const HANDLED: &[&str] = &[
            "pfs_group",
            "lifetime",
            "encryption_algorithm",
            "authentication_algorithm",
            "compression_algorithm",
        ];
        if !HANDLED.contains(&key) {
            info.kept
                .push(p.kept(s, SAINFO_KEYWORDS.contains(&key), &context));
            continue;
        }
        if !p.shape(s, false) {
            continue;
        }
        match key {
            "pfs_group" => {
                if let Some(v) = single(p, s) {
                    set_once(p, &mut info.pfs_group, s, v.item);
                }
            }
            "lifetime" => match lifetime_secs(&args(s)) {
                Ok(Some(v)) => set_once(p, &mut info.lifetime, s, v),
                Ok(None) => info.kept.push(p.kept(s, true, &context)),
                Err(e) => p.error(s.line, format!("`{}`: {e}", s.text())),
            },
            _ => match alg_list(s.words.get(1..).unwrap_or(&[])) {
                Ok(v) => {
                    let slot = match key {
                        "encryption_algorithm" => &mut info.encryption,
                        "authentication_algorithm" => &mut info.authentication,
                        _ => &mut info.compression,
                    };
                    set_once(p, slot, s, v);
                }
                Err(e) => p.error(s.line, format!("`{}`: {e}", s.text())),
            },
        }
    }
    Some(info)
}

fn parse_listen(p: &mut P<'_>, body: &[Node], conf: &mut RacoonConf) {
    for s in body {
        let key = s.words.first().and_then(plain).unwrap_or("");
        if !matches!(key, "isakmp" | "isakmp_natt") || s.body.is_some() {
            conf.kept
                .push(p.kept(s, LISTEN_KEYWORDS.contains(&key), "listen"));
            continue;
        }
        let a = args(s);
        let parsed = match a.as_slice() {
            [addr] => net_port(addr),
            [addr, port] => {
                net_port(addr).and_then(|(n, _)| bracket_port(port).map(|port| (n, port)))
            }
            _ => None,
        };
        match parsed {
            Some((net, port))
                if net.prefix == if net.addr.is_ipv4() { 32 } else { 128 }
                    && !a.first().is_some_and(|w| w.contains('/')) =>
            {
                conf.listen.push(Located {
                    line: s.line,
                    item: ListenAddr {
                        addr: net.addr,
                        port,
                        natt: key == "isakmp_natt",
                    },
                })
            }
            _ => p.error(
                s.line,
                format!("`{}`: expected `{key} ADDRESS [[PORT]]`", s.text()),
            ),
        }
    }
}

/// Parse a racoon.conf. Errors are `file:line: message`; a syntax error (braces, a missing `;`,
/// an unterminated string) is reported alone, since what follows it cannot be read reliably.
pub fn parse_conf(text: &str, file: &str) -> Result<RacoonConf, Vec<String>> {
    let nodes = tree(text, file).map_err(|e| vec![e])?;
    let mut p = P {
        file,
        errors: Vec::new(),
    };
    let mut conf = RacoonConf::default();
    for n in &nodes {
        let key = n.words.first().and_then(plain).unwrap_or("");
        match (key, &n.body) {
            ("remote", Some(body)) => {
                if let Some(r) = parse_remote(&mut p, n, body) {
                    conf.remotes.push(r);
                }
            }
            ("sainfo", Some(body)) => {
                if let Some(s) = parse_sainfo(&mut p, n, body) {
                    conf.sainfos.push(s);
                }
            }
            ("listen", Some(body)) => {
                if n.words.len() != 1 {
                    p.error(n.line, format!("`{}`: `listen` takes no value", n.text()));
                }
                parse_listen(&mut p, body, &mut conf);
            }
            ("remote" | "sainfo" | "listen" | "padding" | "timer", None) => {
                p.error(n.line, format!("`{}` needs a block `{{ … }}`", n.text()))
            }
            ("path", None) => match n.words.as_slice() {
                [_, kind, value] if !kind.quoted => {
                    if kind.text == "pre_shared_key" {
                        if let Some(prev) = &conf.psk_path {
                            p.error(n.line, format!("`{}` repeats line {}", n.text(), prev.line));
                        } else {
                            conf.psk_path = Some(Located {
                                line: n.line,
                                item: value.text.clone(),
                            });
                        }
                    } else {
                        conf.kept.push(p.kept(n, true, ""));
                    }
                }
                _ => p.error(
                    n.line,
                    format!("`{}`: expected `path TYPE \"FILE\"`", n.text()),
                ),
            },
            _ => {
                let known = TOP_KEYWORDS.contains(&key);
                conf.kept.push(p.kept(n, known, ""));
            }
        }
    }
    if p.errors.is_empty() {
        Ok(conf)
    } else {
        Err(p.errors)
    }
}

// ------------------------------------------------------------------------------------ psk.txt

/// One psk.txt line: the identifier and the key as written (`0x…` for hex). Debug never shows
/// the key; it is wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct PskEntry {
    pub line: usize,
    pub id: String,
    pub key: Zeroizing<String>,
}

impl std::fmt::Debug for PskEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PskEntry")
            .field("line", &self.line)
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl PskEntry {
    /// The key's bytes: hex decoded for `0x…`, else the text itself.
    pub fn key_bytes(&self) -> Zeroizing<Vec<u8>> {
        match self.key.strip_prefix("0x") {
            Some(hex) => Zeroizing::new(decode_hex(hex).unwrap_or_default()),
            None => Zeroizing::new(self.key.as_bytes().to_vec()),
        }
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let b = hex.as_bytes();
    b.chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// Parse psk.txt: (entries, notes). Lines racoon itself skips (an identifier with no key) are
/// notes; a bad hex key, a control character, an oversized file are errors (`file:line:`,
/// never showing the key).
pub fn parse_psk(text: &str, file: &str) -> Result<(Vec<PskEntry>, Vec<String>), Vec<String>> {
    if text.len() > MAX_CONF_BYTES {
        return Err(vec![err(
            file,
            1,
            format!("file larger than {MAX_CONF_BYTES} bytes"),
        )]);
    }
    let mut entries = Vec::new();
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i.saturating_add(1);
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        if l.starts_with([' ', '\t']) {
            notes.push(err(
                file,
                line,
                "line starts with white space: racoon reads no identifier from it; skipped",
            ));
            continue;
        }
        let (id, rest) = match l.find(char::is_whitespace) {
            Some(pos) => (l.get(..pos).unwrap_or(""), l.get(pos..).unwrap_or("")),
            None => (l, ""),
        };
        let key = rest.trim_start();
        if key.is_empty() {
            notes.push(err(
                file,
                line,
                format!("`{}` has no key: racoon skips the line; skipped", show(id)),
            ));
            continue;
        }
        if key.chars().any(|c| c.is_control() && c != '\t') || id.chars().any(char::is_control) {
            errors.push(err(file, line, "control character in the line"));
            continue;
        }
        if let Some(hex) = key.strip_prefix("0x") {
            if decode_hex(hex).is_none() {
                errors.push(err(
                    file,
                    line,
                    format!(
                        "the key of `{}` starts with 0x but is not an even number of hex digits",
                        show(id)
                    ),
                ));
                continue;
            }
        }
        if entries.len() >= MAX_PSK_ENTRIES {
            errors.push(err(
                file,
                line,
                format!("more than {MAX_PSK_ENTRIES} entries"),
            ));
            break;
        }
        entries.push(PskEntry {
            line,
            id: id.to_string(),
            key: Zeroizing::new(key.to_string()),
        });
    }
    if errors.is_empty() {
        Ok((entries, notes))
    } else {
        Err(errors)
    }
}
