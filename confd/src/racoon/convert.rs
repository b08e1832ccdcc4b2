//! racoon.conf + psk.txt + setkey policies → ipsec.conf + ipsec.secrets (`ipsecctl import racoon`).
//!
//! racoon negotiates what the kernel's `spdadd … -P out ipsec esp/tunnel/A-B/require` policies ask
//! for, with the settings of the `remote` block for the peer B (or `remote anonymous`) and of the
//! `sainfo` matching the policy's selectors (or `sainfo anonymous`). So each outbound IPsec
//! policy becomes one conn: `left=` is A (this gateway), `right=` B, the selectors
//! `leftsubnet=`/`rightsubnet=` (`type=transport` for transport mode, host to host), `ike=` from
//! the remote's proposals in order, `esp=` from the sainfo's algorithms (with `pfs_group` as the
//! PFS group of every item), lifetimes, IDs, DPD. Mirrored `-P in`/`-P fwd` policies are implied
//! by the conn. A `remote` with `generate_policy on` and no policy (road warriors) becomes a
//! responder conn (`auto=add`, `right=%any` for `remote anonymous`).
//!
//! ipsec.secrets gets one `LEFTID RIGHTID : PSK "KEY"` line per peer from psk.txt: racoon's main
//! mode looks the key up by the peer's address, so entries are matched by address (an entry with
//! another identifier is only for aggressive mode, which ferroswan has not: a note says so).
//!
//! Whatever cannot be expressed is an error or a note, each `file:line: message`, never dropped
//! silently: errors when the result would not negotiate what racoon did (aggressive mode only, no
//! proposal ferroswan implements, AH+ESP bundles, a missing sainfo…), notes for what is ignored
//! or approximated (timers, padding, logging, NAT-T switches, certificates, IPComp, `use`
//! levels…). Keys never appear in a message.

use super::parser::{
    self, Alg, Identifier, Kept, PskEntry, RacoonConf, Remote, RemotePeer, SaId, SaInfo,
};
use crate::conf::model::Phase2Proto;
use crate::conf::model::{MAX_IKE_LIFETIME, MAX_SA_LIFETIME};
use crate::setkey::model::{
    IpsecRequest, Level, Located, PolicyAction, PolicyDir, SpdEntry, Statement,
};
use ipc::policy::Net;
use ipc::sa::{IpsecProto, SaMode};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use zeroize::{Zeroize, Zeroizing};

/// What the import writes: ipsec.conf and ipsec.secrets texts, and one `file:line:` note per
/// thing that could not be expressed or was approximated. The secrets text is wiped on drop and
/// never shown by `Debug`.
pub struct Imported {
    pub ipsec_conf: String,
    pub ipsec_secrets: String,
    pub notes: Vec<String>,
}

impl Drop for Imported {
    fn drop(&mut self) {
        self.ipsec_secrets.zeroize();
    }
}

impl std::fmt::Debug for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imported")
            .field("ipsec_conf", &self.ipsec_conf)
            .field("ipsec_secrets", &"<redacted>")
            .field("notes", &self.notes)
            .finish()
    }
}

/// Convert. `policies` are the parsed statements of the setkey script (its `spdadd`s; `spd_file`
/// names it in messages). Errors and notes are `file:line: message`.
pub fn import_racoon(
    conf_text: &str,
    conf_file: &str,
    psk_text: &str,
    psk_file: &str,
    policies: &[Located<SpdEntry>],
    spd_file: &str,
) -> Result<Imported, Vec<String>> {
    let conf = parser::parse_conf(conf_text, conf_file);
    let psk = parser::parse_psk(psk_text, psk_file);
    let (conf, (psk, psk_notes)) = match (conf, psk) {
        (Ok(c), Ok(p)) => (c, p),
        (c, p) => {
            let mut errors = c.err().unwrap_or_default();
            errors.extend(p.err().unwrap_or_default());
            return Err(errors);
        }
    };
    let mut cx = Cx {
        conf_file,
        psk_file,
        spd_file,
        notes: Vec::new(),
        errors: Vec::new(),
    };
    cx.notes.extend(psk_notes);
    cx.run(&conf, &psk, policies)
}

/// The policies a setkey script leaves in the SPD, for [`import_racoon`]: its `spdadd`s in order,
/// less those a later `spdflush;` or `spddelete` removes; and a `file:line:` note for each
/// statement that does not belong in a racoon setup (manual SAs: `ipsecctl import setkey`
/// converts those). `flush`, `dump`, `spddump`, `get`, `delete` do not change the policies.
pub fn policies_from_setkey(
    stmts: &[Located<Statement>],
    file: &str,
) -> (Vec<Located<SpdEntry>>, Vec<String>) {
    let mut out: Vec<Located<SpdEntry>> = Vec::new();
    let mut notes = Vec::new();
    for s in stmts {
        match &s.item {
            Statement::SpdAdd(e) => out.push(Located { line: s.line, item: e.clone() }),
            Statement::SpdFlush => out.clear(),
            Statement::SpdDelete { src, src_port, dst, dst_port, upper, dir } => {
                let before = out.len();
                out.retain(|p| {
                    let e = &p.item;
                    !(e.src == *src
                        && e.src_port == *src_port
                        && e.dst == *dst
                        && e.dst_port == *dst_port
                        && e.upper == *upper
                        && e.dir == *dir)
                });
                if out.len() == before {
                    notes.push(format!("{file}:{}: spddelete matches no earlier spdadd; ignored", s.line));
                }
            }
            Statement::Add(sa) => notes.push(format!(
                "{file}:{}: a manually keyed SA ({} → {}): racoon negotiates the SAs, so it is not converted here (`ipsecctl import setkey` converts manual keys)",
                s.line, sa.src, sa.dst
            )),
            Statement::Flush(_)
            | Statement::Delete { .. }
            | Statement::DeleteAll { .. }
            | Statement::Get { .. }
            | Statement::Dump(_)
            | Statement::SpdDump => {}
        }
    }
    (out, notes)
}

// ------------------------------------------------------------------------------------ context

struct Cx<'a> {
    conf_file: &'a str,
    psk_file: &'a str,
    spd_file: &'a str,
    notes: Vec<String>,
    errors: Vec<String>,
}

/// Which file a message is about.
#[derive(Clone, Copy)]
enum F {
    Conf,
    Psk,
    Spd,
}

const MAX_MESSAGES: usize = 1000;

impl Cx<'_> {
    fn at(&self, f: F, line: usize, msg: &str) -> String {
        let file = match f {
            F::Conf => self.conf_file,
            F::Psk => self.psk_file,
            F::Spd => self.spd_file,
        };
        format!("{file}:{line}: {msg}")
    }
    fn note(&mut self, f: F, line: usize, msg: impl AsRef<str>) {
        let m = self.at(f, line, msg.as_ref());
        if self.notes.len() < MAX_MESSAGES && !self.notes.contains(&m) {
            self.notes.push(m);
        }
    }
    fn error(&mut self, f: F, line: usize, msg: impl AsRef<str>) {
        let m = self.at(f, line, msg.as_ref());
        if self.errors.len() < MAX_MESSAGES && !self.errors.contains(&m) {
            self.errors.push(m);
        }
    }
}

/// One side of a policy's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sel {
    net: Net,
    port: Option<u16>,
    upper: u8,
}

/// `left=`: an address, or `%defaultroute` when nothing says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    Ip(IpAddr),
    DefaultRoute,
}

/// A conn to write.
struct ConnPlan {
    name: String,
    remote: usize,
    /// Comment lines saying where it came from.
    origin: Vec<String>,
    local: Local,
    /// `None`: `%any`.
    peer: Option<IpAddr>,
    local_sel: Option<Sel>,
    remote_sel: Option<Sel>,
    mode: SaMode,
    proto: IpsecProto,
    /// `start` or `add`.
    auto: &'static str,
    sainfo: usize,
}

/// What a `remote` block gives every conn made from it.
struct RemotePlan {
    authby: &'static str,
    psk: bool,
    ike: Vec<String>,
    ike_lifetime: Option<u64>,
    leftid: Option<String>,
    rightid: Option<String>,
    dpd: Option<(u64, u64)>,
    passive: bool,
    generate_policy: bool,
}

/// What a `sainfo` gives (for ESP or AH).
struct EspPlan {
    esp: Vec<String>,
    pfs: bool,
    sa_lifetime: Option<u64>,
}

fn host_prefix(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

fn is_host(n: &Net) -> bool {
    n.prefix == host_prefix(n.addr)
}

/// `8h`, `30m`, `90s`.
fn duration(secs: u64) -> String {
    if secs > 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs > 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A conn name: letters, digits, `.`, `-`, `_`.
fn conn_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn sel_text(s: &Sel) -> String {
    let mut t = s.net.to_string();
    if let Some(p) = s.port {
        t.push_str(&format!("[{p}]"));
    }
    if s.upper != 0 {
        t.push_str(&format!(" proto {}", s.upper));
    }
    t
}

// ------------------------------------------------------------------------------- algorithms

/// A racoon algorithm name mapped for ferroswan: the token, or why not.
enum Map {
    Token(String),
    /// Known to racoon, not implemented by ferroswan: the proposal is dropped (with a note).
    Unsupported(String),
    /// Not a racoon name for this at all.
    Unknown,
}

fn aes_token(a: &Alg) -> Map {
    match a.key_bits {
        None | Some(128) => Map::Token("aes128".into()),
        Some(192) => Map::Token("aes192".into()),
        Some(256) => Map::Token("aes256".into()),
        Some(b) => Map::Unsupported(format!(
            "AES with a {b}-bit key does not exist (128, 192 or 256)"
        )),
    }
}

fn no_bits(a: &Alg, token: &str) -> Map {
    match a.key_bits {
        None => Map::Token(token.into()),
        Some(b) => Map::Unsupported(format!("`{} {b}`: {} takes no key length", a.name, a.name)),
    }
}

/// Phase 1 `encryption_algorithm`.
fn ike_cipher(a: &Alg) -> Map {
    match a.name.as_str() {
        "3des" => no_bits(a, "3des"),
        "aes" | "rijndael" => aes_token(a),
        "des" => Map::Unsupported("single DES (56-bit keys are broken) is not supported".into()),
        "blowfish" | "cast128" | "camellia" | "idea" | "twofish" | "rc5" => {
            Map::Unsupported(format!("{} is not supported (3des, aes)", a.name))
        }
        _ => Map::Unknown,
    }
}

/// Phase 1 `hash_algorithm`.
fn ike_hash(h: &str) -> Map {
    match h {
        "md5" => Map::Token("md5".into()),
        "sha1" | "sha" => Map::Token("sha1".into()),
        "sha256" | "sha2_256" => Map::Token("sha2_256".into()),
        "sha384" | "sha2_384" => Map::Token("sha2_384".into()),
        "sha512" | "sha2_512" => Map::Token("sha2_512".into()),
        "tiger" => {
            Map::Unsupported("Tiger is not supported (md5, sha1, sha256, sha384, sha512)".into())
        }
        _ => Map::Unknown,
    }
}

/// `dh_group` / `pfs_group`: a name or an IKE group number.
fn dh_group(g: &str) -> Map {
    let token = match g {
        "modp768" | "1" => "modp768",
        "modp1024" | "2" => "modp1024",
        "modp1536" | "5" => "modp1536",
        "modp2048" | "14" => "modp2048",
        "modp3072" | "15" => "modp3072",
        "modp4096" | "16" => "modp4096",
        "modp6144" | "17" => "modp6144",
        "modp8192" | "18" => "modp8192",
        "ec2n155" | "3" | "ec2n185" | "4" => {
            return Map::Unsupported(format!("the EC2N group `{g}` is not supported"))
        }
        n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            return Map::Unsupported(format!(
                "DH group {n} is not supported by racoon's import (1, 2, 5, 14…18)"
            ))
        }
        _ => return Map::Unknown,
    };
    Map::Token(token.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Auth {
    Psk,
    Rsa,
}

fn auth_method(m: &str) -> Result<Auth, Option<String>> {
    match m {
        "pre_shared_key" => Ok(Auth::Psk),
        "rsasig" => Ok(Auth::Rsa),
        "dsssig" | "gssapi_krb" | "hybrid_rsa_server" | "hybrid_rsa_client" | "hybrid_dss_server"
        | "hybrid_dss_client" | "xauth_rsa_server" | "xauth_rsa_client" | "xauth_psk_server"
        | "xauth_psk_client" | "xauth_dss_server" | "xauth_dss_client" => Err(Some(format!(
            "authentication_method {m} is not supported (pre_shared_key, rsasig; no XAUTH, hybrid, DSS or Kerberos)"
        ))),
        _ => Err(None),
    }
}

/// Phase 2 `encryption_algorithm`.
fn esp_cipher(a: &Alg) -> Map {
    match a.name.as_str() {
        "3des" => no_bits(a, "3des"),
        "aes" | "rijndael" => aes_token(a),
        "null_enc" => no_bits(a, "null"),
        "des" | "des_iv64" | "des_iv32" => {
            Map::Unsupported("single DES (56-bit keys are broken) is not supported".into())
        }
        "blowfish" | "cast128" | "camellia" | "idea" | "3idea" | "twofish" | "rc5" | "rc4" => {
            Map::Unsupported(format!("{} is not supported (3des, aes, null_enc)", a.name))
        }
        _ => Map::Unknown,
    }
}

/// Phase 2 `authentication_algorithm`.
fn esp_auth(a: &Alg) -> Map {
    let t = match a.name.as_str() {
        "hmac_md5" => "md5",
        "hmac_sha1" => "sha1",
        "hmac_sha256" | "hmac_sha2_256" => "sha2_256",
        "hmac_sha384" | "hmac_sha2_384" => "sha2_384",
        "hmac_sha512" | "hmac_sha2_512" => "sha2_512",
        "non_auth" => {
            return Map::Unsupported(
                "non_auth: ESP without integrity is refused (open to cut-and-paste attacks)".into(),
            )
        }
        "des" | "3des" | "des_1" | "kpdk" => {
            return Map::Unsupported(format!("{} is not supported", a.name))
        }
        _ => return Map::Unknown,
    };
    match a.key_bits {
        None => Map::Token(t.into()),
        Some(b) => Map::Unsupported(format!("`{} {b}`: {} takes no key length", a.name, a.name)),
    }
}

/// An identifier as ipsec.conf/ipsec.secrets write it (`@fqdn`, `user@fqdn`, an address, `@#hex`,
/// a DN).
fn id_text(id: &Identifier) -> Result<Option<String>, String> {
    let clean = |s: &str| -> Result<String, String> {
        if s.is_empty() || s.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
            Err("the identifier contains a quote, a backslash or a control character".into())
        } else {
            Ok(s.to_string())
        }
    };
    Ok(Some(match id {
        Identifier::Address(None) => return Ok(None),
        Identifier::Address(Some(a)) => a.to_string(),
        Identifier::Fqdn(s) => {
            let s = clean(s.trim_start_matches('@'))?;
            if s.chars().any(char::is_whitespace) || s.starts_with('#') {
                return Err(format!("fqdn \"{s}\" is not a domain name"));
            }
            format!("@{s}")
        }
        Identifier::UserFqdn(s) => {
            let s = clean(s)?;
            if s.chars().any(char::is_whitespace) || !s.contains('@') || s.starts_with('@') {
                return Err(format!("user_fqdn \"{s}\" is not user@domain"));
            }
            s
        }
        Identifier::KeyIdTag(s) => format!("@#{}", hex(s.as_bytes())),
        Identifier::Asn1Dn(Some(dn)) => {
            let dn = clean(dn)?;
            if !dn.contains('=') {
                return Err(format!("asn1dn \"{dn}\" is not a distinguished name (C=…, O=…, CN=…)"));
            }
            dn
        }
        Identifier::KeyIdFile(path) => {
            return Err(format!(
                "keyid from the file \"{path}\" is not read by the import: write `keyid tag \"…\"`, or set the ID as @#HEX by hand"
            ))
        }
        Identifier::Asn1Dn(None) => {
            return Err("asn1dn without a value is the certificate's subject; ferroswan has no certificates: give the DN".into())
        }
        Identifier::Subnet(n) => return Err(format!("a subnet identifier ({n}) is not supported for phase 1")),
    }))
}

/// `leftid=` value: DNs in double quotes.
fn conf_id(s: &str) -> String {
    if s.contains('=') {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

fn same_id(a: &Identifier, b: &Identifier) -> bool {
    a == b
}

// ------------------------------------------------------------------------------- conversion

impl Cx<'_> {
    fn run(
        &mut self,
        conf: &RacoonConf,
        psk: &[PskEntry],
        policies: &[Located<SpdEntry>],
    ) -> Result<Imported, Vec<String>> {
        self.report_kept(&conf.kept);
        self.check_psk_path(conf);
        for r in &conf.remotes {
            self.report_kept(&r.kept);
            for p in &r.proposals {
                self.report_kept(&p.kept);
            }
        }
        for s in &conf.sainfos {
            self.report_kept(&s.kept);
        }
        for l in &conf.listen {
            if !l.item.natt && l.item.port.is_some_and(|p| p != 500) {
                self.note(F::Conf, l.line, format!(
                    "listen isakmp {} [{}]: ferroswan's IKE port is set for the whole gateway (`fwd --ike-port`), not in ipsec.conf",
                    l.item.addr, l.item.port.unwrap_or(500)
                ));
            }
        }

        // Remotes: by peer address, and the anonymous one.
        let mut by_addr: BTreeMap<IpAddr, usize> = BTreeMap::new();
        let mut anonymous: Option<usize> = None;
        for (i, r) in conf.remotes.iter().enumerate() {
            if let Some(inh) = &r.inherit {
                self.error(F::Conf, inh.line, format!(
                    "{}: `inherit \"{}\"` is not supported by the import: write the remote's settings out in full",
                    r.title(), inh.item
                ));
                continue;
            }
            let addr = match (&r.peer, &r.remote_address) {
                (RemotePeer::Anonymous, _) => {
                    if let Some(prev) = anonymous.and_then(|j| conf.remotes.get(j)) {
                        self.error(
                            F::Conf,
                            r.line,
                            format!(
                                "a second `remote anonymous` (the first is at line {})",
                                prev.line
                            ),
                        );
                    }
                    anonymous = Some(i);
                    continue;
                }
                (RemotePeer::Address(a), None) => *a,
                (RemotePeer::Address(a), Some(ra)) => {
                    if ra.item != *a {
                        self.error(
                            F::Conf,
                            ra.line,
                            format!("remote_address {} contradicts `{}`", ra.item, r.title()),
                        );
                    }
                    *a
                }
                (RemotePeer::Named(_), Some(ra)) => ra.item,
                (RemotePeer::Named(_), None) => {
                    self.note(F::Conf, r.line, format!(
                        "{}: no remote_address, so no peer to negotiate with (a template for `inherit`?): not converted",
                        r.title()
                    ));
                    continue;
                }
            };
            if let Some(p) = r.port.filter(|p| *p != 500) {
                self.note(F::Conf, r.line, format!(
                    "{}: port {p}: ferroswan's IKE port is set for the whole gateway (`fwd --ike-port`), not per peer",
                    r.title()
                ));
            }
            if let Some(j) = by_addr.get(&addr) {
                let prev = conf.remotes.get(*j).map_or(0, |p| p.line);
                self.error(
                    F::Conf,
                    r.line,
                    format!("a second remote for {addr} (the first is at line {prev})"),
                );
                continue;
            }
            by_addr.insert(addr, i);
        }

        // Plans of the remotes (errors and notes once per remote).
        let mut plans: BTreeMap<usize, Option<RemotePlan>> = BTreeMap::new();
        let remote_idxs: Vec<usize> = by_addr.values().copied().chain(anonymous).collect();
        for i in remote_idxs {
            if let Some(r) = conf.remotes.get(i) {
                let p = self.plan_remote(r);
                plans.insert(i, p);
            }
        }

        // Policies → conns.
        let outs = self.read_policies(policies);
        let listen: Vec<IpAddr> = conf
            .listen
            .iter()
            .filter(|l| !l.item.natt)
            .map(|l| l.item.addr)
            .collect();
        let mut conns: Vec<ConnPlan> = Vec::new();
        let mut used_remotes: BTreeSet<usize> = BTreeSet::new();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut name_for = |base: String| -> String {
            let n = names.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                base
            } else {
                format!("{base}-{n}")
            }
        };
        for (line, o) in &outs {
            let (local_addr, peer) = (o.local, o.peer);
            let Some(ri) = by_addr.get(&peer).copied().or(anonymous) else {
                self.error(F::Spd, *line, format!(
                    "no `remote {peer}` (and no `remote anonymous`) in {}: racoon could not negotiate this policy",
                    self.conf_file
                ));
                continue;
            };
            let Some(r) = conf.remotes.get(ri) else {
                continue;
            };
            if !by_addr.contains_key(&peer) {
                self.note(F::Spd, *line, format!(
                    "the policy's peer {peer} has no remote block of its own: the settings of `remote anonymous` (line {}) are used",
                    r.line
                ));
            }
            if !listen.is_empty() && !listen.contains(&local_addr) {
                self.note(F::Spd, *line, format!(
                    "the local end {local_addr} is not among racoon.conf's `listen {{ isakmp … }}` addresses; left={local_addr} is written"
                ));
            }
            used_remotes.insert(ri);
            let Some(Some(plan)) = plans.get(&ri) else {
                continue;
            };
            let Some(si) = self.find_sainfo(conf, r, &o.local_sel, &o.remote_sel, *line) else {
                continue;
            };
            let auto = if plan.passive { "add" } else { "start" };
            let name = name_for(conn_name(&format!("peer-{peer}")));
            let mut origin = vec![format!("{}:{}: {}", self.conf_file, r.line, r.title())];
            if let Some(s) = conf.sainfos.get(si) {
                origin.push(format!("{}:{}: {}", self.conf_file, s.line, s.title()));
            }
            origin.push(format!("{}:{}: {}", self.spd_file, line, o.text));
            conns.push(ConnPlan {
                name,
                remote: ri,
                origin,
                local: Local::Ip(local_addr),
                peer: Some(peer),
                local_sel: Some(o.local_sel),
                remote_sel: Some(o.remote_sel),
                mode: o.mode,
                proto: o.proto,
                auto,
                sainfo: si,
            });
        }

        // Remotes no policy used: responders for generate_policy, else a note.
        let local_default = self.default_local(&listen, &outs);
        let responders: Vec<usize> = by_addr.values().copied().chain(anonymous).collect();
        for ri in responders {
            let Some(r) = conf.remotes.get(ri) else {
                continue;
            };
            let Some(Some(plan)) = plans.get(&ri) else {
                continue;
            };
            let is_anonymous = r.peer == RemotePeer::Anonymous;
            if used_remotes.contains(&ri) {
                // the policies gave its conns; road warriors still come to `remote anonymous`
                if !(plan.generate_policy && is_anonymous) {
                    if plan.generate_policy {
                        self.note(F::Conf, r.line, format!(
                            "{}: generate_policy: ferroswan negotiates only the selectors of the conns written from the policies",
                            r.title()
                        ));
                    }
                    continue;
                }
            } else if !plan.generate_policy {
                self.note(F::Conf, r.line, format!(
                    "{}: no `spdadd … -P out ipsec …/require` policy names this peer and generate_policy is off, so racoon negotiated nothing with it: no conn written",
                    r.title()
                ));
                continue;
            }
            let peer = match r.peer {
                RemotePeer::Address(a) => Some(a),
                RemotePeer::Anonymous => None,
                RemotePeer::Named(_) => r.remote_address.as_ref().map(|a| a.item),
            };
            let local = match (local_default, peer) {
                (Local::Ip(a), Some(p)) if a.is_ipv4() != p.is_ipv4() => Local::DefaultRoute,
                (l, _) => l,
            };
            let (lsel, rsel) = match (local, peer) {
                (Local::Ip(a), Some(p)) => (
                    Sel {
                        net: Net::host(a),
                        port: None,
                        upper: 0,
                    },
                    Sel {
                        net: Net::host(p),
                        port: None,
                        upper: 0,
                    },
                ),
                _ => {
                    // anonymous: only `sainfo anonymous` can apply
                    let any = Sel {
                        net: Net {
                            addr: IpAddr::from([0, 0, 0, 0]),
                            prefix: 0,
                        },
                        port: None,
                        upper: 0,
                    };
                    (any, any)
                }
            };
            let si = if peer.is_some() && matches!(local, Local::Ip(_)) {
                self.find_sainfo(conf, r, &lsel, &rsel, 0)
            } else {
                self.anonymous_sainfo(conf, r)
            };
            let Some(si) = si else { continue };
            self.note(F::Conf, r.line, format!(
                "{}: generate_policy: racoon accepted whatever selectors the peer proposed; ferroswan needs them in the conn, so a host-to-host responder conn (auto=add) is written: add leftsubnet=/rightsubnet= if the peers tunnel subnets",
                r.title()
            ));
            if local == Local::DefaultRoute {
                self.note(F::Conf, r.line, format!(
                    "{}: neither `listen {{ isakmp … }}` nor the policies say which address is this gateway's: left=%defaultroute is written",
                    r.title()
                ));
            }
            let name = name_for(conn_name(&match peer {
                Some(p) => format!("peer-{p}"),
                None => "anonymous".to_string(),
            }));
            let mut origin = vec![format!("{}:{}: {}", self.conf_file, r.line, r.title())];
            if let Some(s) = conf.sainfos.get(si) {
                origin.push(format!("{}:{}: {}", self.conf_file, s.line, s.title()));
            }
            conns.push(ConnPlan {
                name,
                remote: ri,
                origin,
                local,
                peer,
                local_sel: None,
                remote_sel: None,
                mode: SaMode::Tunnel,
                proto: IpsecProto::Esp,
                auto: "add",
                sainfo: si,
            });
        }

        // ESP plans per (sainfo, proto), then the texts.
        let mut esp_plans: BTreeMap<(usize, bool), Option<EspPlan>> = BTreeMap::new();
        for c in &conns {
            let key = (c.sainfo, c.proto == IpsecProto::Ah);
            if let std::collections::btree_map::Entry::Vacant(v) = esp_plans.entry(key) {
                v.insert(
                    conf.sainfos
                        .get(c.sainfo)
                        .and_then(|s| self.plan_esp(s, c.proto)),
                );
            }
        }
        let secrets = self.secrets(conf, psk, &conns, &plans, &by_addr);
        if !self.errors.is_empty() {
            return Err(std::mem::take(&mut self.errors));
        }
        if conns.is_empty() {
            let spd = if self.spd_file.is_empty() {
                "(no setkey file was given)".to_string()
            } else {
                format!("in {}", self.spd_file)
            };
            let mut e = vec![format!(
                "{}: nothing to convert: no `remote` block has an `spdadd … -P out ipsec …/require` policy {spd} (or generate_policy on)",
                self.conf_file
            )];
            e.append(&mut self.notes);
            return Err(e);
        }
        let mut text = format!(
            "# ipsec.conf written by `ipsecctl import racoon` from {}, {}{}.\n\
             # Read the notes it printed: what racoon did that this file does not say.\n\
             version 2\n\nconfig setup\n",
            self.conf_file,
            self.psk_file,
            if self.spd_file.is_empty() {
                String::new()
            } else {
                format!(" and {}", self.spd_file)
            }
        );
        for c in &conns {
            let (Some(Some(rp)), Some(Some(ep))) = (
                plans.get(&c.remote),
                esp_plans.get(&(c.sainfo, c.proto == IpsecProto::Ah)),
            ) else {
                continue;
            };
            text.push_str(&render_conn(c, rp, ep));
        }
        Ok(Imported {
            ipsec_conf: text,
            ipsec_secrets: secrets.to_string(),
            notes: std::mem::take(&mut self.notes),
        })
    }

    fn report_kept(&mut self, kept: &[Kept]) {
        for k in kept {
            let key = k.text.split([' ', '{', ';']).next().unwrap_or("");
            let ctx = if k.context.is_empty() {
                String::new()
            } else {
                format!(" (in `{}`)", k.context)
            };
            if !k.known {
                self.error(
                    F::Conf,
                    k.line,
                    format!(
                        "`{}`{ctx}: not a racoon.conf keyword{}",
                        k.text,
                        if ctx.is_empty() {
                            " at the top level"
                        } else {
                            " here"
                        }
                    ),
                );
                continue;
            }
            let why = match key {
                "include" => {
                    self.error(F::Conf, k.line, format!(
                        "`{}`: the import reads one racoon.conf; paste the included file into it", k.text
                    ));
                    continue;
                }
                "doi" | "situation" if k.text.ends_with("ipsec_doi") || k.text.ends_with("identity_only") => continue,
                "padding" | "timer" => "racoon's own timers and padding have no equivalent (ferroswan's retransmission back-off and padding apply); ignored",
                "log" => "logging does not change what is negotiated (FERROSWAN_LOG sets the daemons' log level); ignored",
                "privsep" => "ferroswan separates privileges itself; ignored",
                "path" => "not used by the import; ignored",
                "adminsock" => "ferroswan's control socket is ctl.sock; ignored",
                "strict_address" | "isakmp_natt" => "ferroswan binds UDP 500 and 4500 on every address; ignored",
                "mode_cfg" | "xauth_login" | "ldapcfg" | "radiuscfg" => "XAUTH and mode-config are not supported; ignored",
                "certificate_type" | "ca_type" | "peers_certfile" | "send_cert" | "send_cr" | "verify_cert" | "dnssec" => {
                    "certificates are not supported: RSA keys go in leftrsasigkey=/rightrsasigkey= and ipsec.secrets; ignored"
                }
                "script" => "updown scripts are leftupdown=/rightupdown= in ipsec.conf (with PLUTO_* variables, not racoon's); not converted",
                "lifetime" => "lifetimes in bytes are not supported (only time); ignored",
                "nonce_size" | "ike_frag" | "esp_frag" | "support_proxy" | "weak_phase1_check" | "ph1id" | "gss_id"
                | "gss_id_enc" | "complex_bundle" | "rekey" | "counter" | "interval" | "persend" | "phase1" | "phase2"
                | "natt_keepalive" => "no equivalent in ferroswan's ipsec.conf; ignored",
                _ => "no equivalent in ferroswan's ipsec.conf; ignored",
            };
            self.note(F::Conf, k.line, format!("`{}`{ctx}: {why}", k.text));
        }
    }

    fn check_psk_path(&mut self, conf: &RacoonConf) {
        if let Some(p) = &conf.psk_path {
            let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
            if base(&p.item) != base(self.psk_file) {
                self.note(
                    F::Conf,
                    p.line,
                    format!(
                        "path pre_shared_key \"{}\": the keys were read from {} instead",
                        p.item, self.psk_file
                    ),
                );
            }
        }
    }

    /// The remote's settings for its conns; `None` after an error.
    fn plan_remote(&mut self, r: &Remote) -> Option<RemotePlan> {
        let title = r.title();
        let errors_before = self.errors.len();
        // exchange mode
        if let Some(m) = &r.exchange_mode {
            if !m.item.iter().any(|x| x == "main") {
                self.error(F::Conf, m.line, format!(
                    "{title}: exchange_mode {}: ferroswan has only main mode (no aggressive or base mode)",
                    m.item.join(", ")
                ));
            } else if m.item.len() > 1 || m.item.first().is_some_and(|x| x != "main") {
                self.note(
                    F::Conf,
                    m.line,
                    format!(
                    "{title}: exchange_mode {}: ferroswan has only main mode; main mode is used",
                    m.item.join(", ")
                ),
                );
            }
        }
        // proposals
        if r.proposals.is_empty() {
            self.error(F::Conf, r.line, format!("{title}: no `proposal {{ … }}`"));
        }
        let mut ike = Vec::new();
        let mut auths = BTreeSet::new();
        let mut lifetimes: Vec<(usize, u64)> = Vec::new();
        for p in &r.proposals {
            let mut missing = Vec::new();
            if p.encryption.is_none() {
                missing.push("encryption_algorithm");
            }
            if p.hash.is_none() {
                missing.push("hash_algorithm");
            }
            if p.auth_method.is_none() {
                missing.push("authentication_method");
            }
            if p.dh_group.is_none() {
                missing.push("dh_group");
            }
            let (Some(enc), Some(hash), Some(auth), Some(dh)) =
                (&p.encryption, &p.hash, &p.auth_method, &p.dh_group)
            else {
                self.error(
                    F::Conf,
                    p.line,
                    format!("{title}: proposal without {}", missing.join(", ")),
                );
                continue;
            };
            let mut unsupported = Vec::new();
            let auth = match auth_method(&auth.item) {
                Ok(a) => Some(a),
                Err(Some(why)) => {
                    unsupported.push(why);
                    None
                }
                Err(None) => {
                    self.error(
                        F::Conf,
                        auth.line,
                        format!(
                            "{title}: `{}` is not a racoon authentication_method",
                            auth.item
                        ),
                    );
                    continue;
                }
            };
            let mut tokens = Vec::new();
            for (m, line, what) in [
                (ike_cipher(&enc.item), enc.line, "encryption_algorithm"),
                (ike_hash(&hash.item), hash.line, "hash_algorithm"),
                (dh_group(&dh.item), dh.line, "dh_group"),
            ] {
                match m {
                    Map::Token(t) => tokens.push(t),
                    Map::Unsupported(why) => unsupported.push(why),
                    Map::Unknown => {
                        let v = match what {
                            "encryption_algorithm" => enc.item.name.clone(),
                            "hash_algorithm" => hash.item.clone(),
                            _ => dh.item.clone(),
                        };
                        self.error(
                            F::Conf,
                            line,
                            format!("{title}: `{v}` is not a racoon {what}"),
                        );
                    }
                }
            }
            if tokens.len() < 3 && unsupported.is_empty() {
                continue; // an error was reported
            }
            if !unsupported.is_empty() {
                self.note(
                    F::Conf,
                    p.line,
                    format!("{title}: proposal dropped: {}", unsupported.join("; ")),
                );
                continue;
            }
            let item = tokens.join("-");
            match crate::ike_conn::parse_ike_list(&[item.as_str()]) {
                Ok(parsed) if parsed.skipped.is_empty() => {
                    if !ike.contains(&item) {
                        ike.push(item);
                    }
                    if let Some(a) = auth {
                        auths.insert(a);
                    }
                    if let Some(l) = &p.lifetime {
                        lifetimes.push((l.line, l.item));
                    }
                }
                Ok(parsed) => self.note(
                    F::Conf,
                    p.line,
                    format!("{title}: proposal dropped: {}", parsed.skipped.join("; ")),
                ),
                Err(e) => self.note(
                    F::Conf,
                    p.line,
                    format!("{title}: proposal dropped: ike={item}: {e}"),
                ),
            }
        }
        if ike.is_empty() && !r.proposals.is_empty() && self.errors.len() == errors_before {
            self.error(
                F::Conf,
                r.line,
                format!("{title}: no proposal ferroswan supports is left (see the notes)"),
            );
        }
        let (authby, psk) = match (auths.contains(&Auth::Psk), auths.contains(&Auth::Rsa)) {
            (true, true) => {
                self.note(F::Conf, r.line, format!(
                    "{title}: proposals with pre_shared_key and with rsasig: authby=secret|rsasig (ferroswan does not tie the method to the algorithms)"
                ));
                ("secret|rsasig", true)
            }
            (false, true) => ("rsasig", false),
            _ => ("secret", true),
        };
        if auths.contains(&Auth::Rsa) {
            let what = r.certificate_type.as_ref().map_or_else(
                || "racoon's keys".to_string(),
                |c| format!("`certificate_type {}`", c.item),
            );
            self.note(F::Conf, r.certificate_type.as_ref().map_or(r.line, |c| c.line), format!(
                "{title}: rsasig: {what} are not converted (no certificates or plain_rsa files): supply the keys yourself, leftrsasigkey=/rightrsasigkey= in the conn (`ipsecctl showhostkey`) and the private key in ipsec.secrets (`ipsecctl rsasigkey`)"
            ));
        } else if let Some(c) = &r.certificate_type {
            self.note(
                F::Conf,
                c.line,
                format!(
                    "{title}: certificate_type {}: not used with pre_shared_key; ignored",
                    c.item
                ),
            );
        }
        // lifetime: a proposal's, else the remote's
        let ike_lifetime = match lifetimes.first() {
            Some((line, v)) => {
                if lifetimes.iter().any(|(_, x)| x != v) {
                    self.note(F::Conf, *line, format!(
                        "{title}: the proposals have different lifetimes; ferroswan has one per conn: ikelifetime={}", duration(*v)
                    ));
                }
                Some((*line, *v))
            }
            None => r.lifetime.as_ref().map(|l| (l.line, l.item)),
        };
        let ike_lifetime = ike_lifetime
            .and_then(|(line, v)| self.lifetime(line, v, MAX_IKE_LIFETIME, &title, "ikelifetime"));
        // identifiers
        let leftid = match &r.my_identifier {
            Some(id) => match id_text(&id.item) {
                Ok(v) => v,
                Err(e) => {
                    self.error(F::Conf, id.line, format!("{title}: my_identifier: {e}"));
                    None
                }
            },
            None => None,
        };
        let rightid = match r.peers_identifier.first() {
            Some(id) => {
                for more in r.peers_identifier.iter().skip(1) {
                    if !same_id(&more.item, &id.item) {
                        self.note(F::Conf, more.line, format!(
                            "{title}: a second peers_identifier: ferroswan takes one ID per peer; only line {}'s is used", id.line
                        ));
                    }
                }
                match id_text(&id.item) {
                    Ok(v) => {
                        if v.is_some() && !r.verify_identifier.as_ref().is_some_and(|v| v.item) {
                            self.note(F::Conf, id.line, format!(
                                "{title}: verify_identifier is off, but ferroswan always checks the peer's ID against rightid="
                            ));
                        }
                        v
                    }
                    Err(e) => {
                        self.note(F::Conf, id.line, format!(
                            "{title}: peers_identifier: {e}; no rightid= is written (ferroswan then expects the peer's address as its ID)"
                        ));
                        None
                    }
                }
            }
            None => None,
        };
        for (line, v, side) in [
            (
                r.my_identifier.as_ref().map_or(0, |i| i.line),
                &leftid,
                "leftid",
            ),
            (
                r.peers_identifier.first().map_or(0, |i| i.line),
                &rightid,
                "rightid",
            ),
        ] {
            if let Some(v) = v {
                if let Err(e) = crate::conf::values::parse_id(v) {
                    self.error(F::Conf, line, format!("{title}: {side}={v}: {e}"));
                }
            }
        }
        // DPD: racoon declares the peer dead dpd_retry × dpd_maxfail seconds after the first
        // unanswered R-U-THERE, sent after dpd_delay idle seconds.
        let dpd = match &r.dpd_delay {
            Some(d) if d.item > 0 => {
                let retry = r.dpd_retry.as_ref().map_or(5, |x| x.item);
                let maxfail = r.dpd_maxfail.as_ref().map_or(5, |x| x.item);
                let timeout = d.item.saturating_add(retry.saturating_mul(maxfail));
                let delay = self.lifetime(d.line, d.item, MAX_SA_LIFETIME, &title, "dpddelay");
                let timeout = self.lifetime(d.line, timeout, MAX_SA_LIFETIME, &title, "dpdtimeout");
                delay.zip(timeout)
            }
            _ => {
                for x in [&r.dpd_retry, &r.dpd_maxfail].into_iter().flatten() {
                    self.note(
                        F::Conf,
                        x.line,
                        format!(
                            "{title}: dpd_retry/dpd_maxfail without dpd_delay: DPD is off; ignored"
                        ),
                    );
                }
                None
            }
        };
        if let Some(n) = &r.nat_traversal {
            match n.item.as_str() {
                "off" => self.note(F::Conf, n.line, format!(
                    "{title}: nat_traversal off: NAT traversal is always on in ferroswan (NAT-D decides)"
                )),
                "force" => self.note(F::Conf, n.line, format!(
                    "{title}: nat_traversal force: ferroswan moves to UDP 4500 only when NAT-D finds a NAT"
                )),
                _ => {}
            }
        }
        if let Some(pc) = r.proposal_check.as_ref().filter(|p| p.item != "obey") {
            self.note(F::Conf, pc.line, format!(
                "{title}: proposal_check {}: ferroswan accepts only the algorithms of its ike=/esp= lists and applies its own lifetimes",
                pc.item
            ));
        }
        if let Some(ic) = r.initial_contact.as_ref().filter(|i| !i.item) {
            self.note(
                F::Conf,
                ic.line,
                format!("{title}: initial_contact off: no equivalent; ignored"),
            );
        }
        let generate_policy = r.generate_policy.as_ref().is_some_and(|g| g.item != "off");
        if self.errors.len() > errors_before || ike.is_empty() {
            return None;
        }
        Some(RemotePlan {
            authby,
            psk,
            ike,
            ike_lifetime,
            leftid,
            rightid,
            dpd,
            passive: r.passive.as_ref().is_some_and(|p| p.item),
            generate_policy,
        })
    }

    /// A lifetime within ferroswan's bounds (clamped, with a note).
    fn lifetime(&mut self, line: usize, v: u64, max: u64, title: &str, key: &str) -> Option<u64> {
        if v == 0 {
            self.note(
                F::Conf,
                line,
                format!("{title}: a lifetime of 0: ferroswan's default {key} is kept"),
            );
            None
        } else if v > max {
            self.note(
                F::Conf,
                line,
                format!(
                    "{title}: {} is longer than ferroswan allows: {key}={} is written",
                    duration(v),
                    duration(max)
                ),
            );
            Some(max)
        } else {
            Some(v)
        }
    }

    /// The outbound IPsec policies, checked; in/fwd policies that mirror one are implied.
    fn read_policies(&mut self, policies: &[Located<SpdEntry>]) -> Vec<(usize, Out)> {
        let mut outs: Vec<(usize, Out)> = Vec::new();
        let mut others: Vec<&Located<SpdEntry>> = Vec::new();
        for p in policies {
            let e = &p.item;
            let reqs = match (&e.dir, &e.action) {
                (PolicyDir::Out, PolicyAction::Ipsec(reqs)) => reqs,
                (PolicyDir::Out, PolicyAction::None) => {
                    self.note(F::Spd, p.line, format!(
                        "`{} -P out none` (cleartext bypass): not converted; a type=passthrough conn in ipsec.conf does this",
                        sel_pair(e)
                    ));
                    continue;
                }
                (PolicyDir::Out, PolicyAction::Discard) => {
                    self.note(F::Spd, p.line, format!(
                        "`{} -P out discard`: not converted; a type=drop conn in ipsec.conf does this",
                        sel_pair(e)
                    ));
                    continue;
                }
                _ => {
                    others.push(p);
                    continue;
                }
            };
            let req = match reqs.as_slice() {
                [r] => r,
                [] => {
                    self.error(F::Spd, p.line, "`-P out ipsec` without a protocol request");
                    continue;
                }
                _ => {
                    self.error(F::Spd, p.line, format!(
                        "`{}`: a bundle of {} SAs (AH+ESP) is not negotiated by ferroswan's IKE (one ESP or one AH SA per conn)",
                        sel_pair(e),
                        reqs.len()
                    ));
                    continue;
                }
            };
            match req.level {
                Level::Require | Level::Unique(_) => {}
                Level::Use | Level::Default => self.note(F::Spd, p.line, format!(
                    "`{}`: level {}: ferroswan always requires the SA (traffic waits for it, never leaves in the clear)",
                    sel_pair(e),
                    if req.level == Level::Use { "use" } else { "default" }
                )),
            }
            let local_sel = Sel {
                net: e.src,
                port: e.src_port,
                upper: e.upper,
            };
            let remote_sel = Sel {
                net: e.dst,
                port: e.dst_port,
                upper: e.upper,
            };
            let (local, peer) = match (req.mode, req.endpoints) {
                (SaMode::Tunnel, Some((a, b))) => (a, b),
                (SaMode::Tunnel, None) => {
                    self.error(
                        F::Spd,
                        p.line,
                        "tunnel mode without the tunnel endpoints A-B",
                    );
                    continue;
                }
                (SaMode::Transport, _) => {
                    if !is_host(&e.src) || !is_host(&e.dst) {
                        self.error(F::Spd, p.line, format!(
                            "`{}`: transport mode protects one pair of hosts; the selectors are subnets (tunnel mode?)",
                            sel_pair(e)
                        ));
                        continue;
                    }
                    (e.src.addr, e.dst.addr)
                }
            };
            if local.is_ipv4() != peer.is_ipv4() || e.src.addr.is_ipv4() != e.dst.addr.is_ipv4() {
                self.error(
                    F::Spd,
                    p.line,
                    format!("`{}`: mixed address families", sel_pair(e)),
                );
                continue;
            }
            if local == peer {
                self.error(
                    F::Spd,
                    p.line,
                    format!("`{}`: both tunnel endpoints are {local}", sel_pair(e)),
                );
                continue;
            }
            let mode = match req.mode {
                SaMode::Tunnel => "tunnel",
                SaMode::Transport => "transport",
            };
            let proto = match req.proto {
                IpsecProto::Esp => "esp",
                IpsecProto::Ah => "ah",
            };
            let level = match req.level {
                Level::Default => "default".to_string(),
                Level::Use => "use".to_string(),
                Level::Require => "require".to_string(),
                Level::Unique(None) => "unique".to_string(),
                Level::Unique(Some(n)) => format!("unique:{n}"),
            };
            let text = match req.endpoints {
                Some((a, b)) if req.mode == SaMode::Tunnel => {
                    format!(
                        "spdadd {} -P out ipsec {proto}/{mode}/{a}-{b}/{level}",
                        sel_pair(e)
                    )
                }
                _ => format!(
                    "spdadd {} -P out ipsec {proto}/{mode}//{level}",
                    sel_pair(e)
                ),
            };
            if let Some((prev, _)) = outs
                .iter()
                .find(|(_, o)| o.local_sel == local_sel && o.remote_sel == remote_sel)
            {
                self.error(
                    F::Spd,
                    p.line,
                    format!("`{}`: the same selectors as line {prev}", sel_pair(e)),
                );
                continue;
            }
            outs.push((
                p.line,
                Out {
                    local,
                    peer,
                    local_sel,
                    remote_sel,
                    mode: req.mode,
                    proto: req.proto,
                    text,
                },
            ));
        }
        for p in others {
            let e = &p.item;
            let dir = match e.dir {
                PolicyDir::In => "in",
                PolicyDir::Fwd => "fwd",
                PolicyDir::Out => "out",
            };
            let mirrors = |o: &Out, req: Option<&IpsecRequest>| {
                o.remote_sel.net == e.src
                    && o.local_sel.net == e.dst
                    && o.remote_sel.port == e.src_port
                    && o.local_sel.port == e.dst_port
                    && o.local_sel.upper == e.upper
                    && req.is_none_or(|r| {
                        r.mode == o.mode
                            && r.proto == o.proto
                            && (o.mode == SaMode::Transport
                                || r.endpoints == Some((o.peer, o.local)))
                    })
            };
            match &e.action {
                PolicyAction::Ipsec(reqs) => {
                    if outs.iter().any(|(_, o)| reqs.len() == 1 && mirrors(o, reqs.first())) {
                        continue;
                    }
                    self.note(F::Spd, p.line, format!(
                        "`{} -P {dir} ipsec …`: no `-P out` policy it mirrors, so racoon never initiated for it: not converted",
                        sel_pair(e)
                    ));
                }
                PolicyAction::None | PolicyAction::Discard => self.note(F::Spd, p.line, format!(
                    "`{} -P {dir} {}`: not converted (a type=passthrough or type=drop conn does this)",
                    sel_pair(e),
                    if e.action == PolicyAction::None { "none" } else { "discard" }
                )),
            }
        }
        outs
    }

    /// This gateway's address when no policy gives it: the one `listen` address, else the one
    /// local tunnel end of the policies, else `%defaultroute`.
    fn default_local(&self, listen: &[IpAddr], outs: &[(usize, Out)]) -> Local {
        let uniq = |v: Vec<IpAddr>| -> Option<IpAddr> {
            let set: BTreeSet<IpAddr> = v.into_iter().collect();
            if set.len() == 1 {
                set.into_iter().next()
            } else {
                None
            }
        };
        uniq(listen.to_vec())
            .or_else(|| uniq(outs.iter().map(|(_, o)| o.local).collect()))
            .map_or(Local::DefaultRoute, Local::Ip)
    }

    fn sainfo_usable(&mut self, s: &SaInfo, r: &Remote) -> bool {
        if let Some(g) = &s.group {
            self.note(
                F::Conf,
                g.line,
                format!(
                    "{}: `group {}` is for XAUTH users, which ferroswan has not: not used",
                    s.title(),
                    g.item
                ),
            );
            return false;
        }
        match &s.from {
            None => true,
            Some(from) => match (&from.item, &r.peer) {
                (Identifier::Address(Some(a)), RemotePeer::Address(b)) if a == b => true,
                (id, _) => r.peers_identifier.iter().any(|p| same_id(&p.item, id)),
            },
        }
    }

    /// The sainfo racoon would use for these selectors: exact, then with one side anonymous,
    /// then `sainfo anonymous`. `line` is the policy's (0: none).
    fn find_sainfo(
        &mut self,
        conf: &RacoonConf,
        r: &Remote,
        l: &Sel,
        rm: &Sel,
        line: usize,
    ) -> Option<usize> {
        let matches = |id: &SaId, s: &Sel| match id {
            SaId::Anonymous => None,
            SaId::Net { net, port, upper } => {
                Some(*net == s.net && *port == s.port && *upper == s.upper)
            }
        };
        let mut best: Option<(u8, usize)> = None;
        for (i, s) in conf.sainfos.iter().enumerate() {
            let rank = match (matches(&s.local, l), matches(&s.remote, rm)) {
                (Some(true), Some(true)) => 3,
                (Some(true), None) | (None, Some(true)) => 2,
                (None, None) => 1,
                _ => continue,
            };
            if best.is_none_or(|(b, _)| rank > b) && self.sainfo_usable(s, r) {
                best = Some((rank, i));
            }
        }
        match best {
            Some((_, i)) => Some(i),
            None => {
                let (f, at) = if line > 0 {
                    (F::Spd, line)
                } else {
                    (F::Conf, r.line)
                };
                self.error(f, at, format!(
                    "no sainfo for {} ↔ {} (and no `sainfo anonymous`): racoon could not negotiate phase 2 for it",
                    sel_text(l),
                    sel_text(rm)
                ));
                None
            }
        }
    }

    fn anonymous_sainfo(&mut self, conf: &RacoonConf, r: &Remote) -> Option<usize> {
        let found = conf.sainfos.iter().position(|s| {
            s.local == SaId::Anonymous
                && s.remote == SaId::Anonymous
                && s.group.is_none()
                && s.from.is_none()
        });
        if found.is_none() {
            self.error(F::Conf, r.line, format!(
                "{}: generate_policy needs `sainfo anonymous` (the peer's selectors are not known in advance)",
                r.title()
            ));
        }
        found
    }

    /// esp= (or the AH list), pfs and salifetime from a sainfo; `None` after an error.
    fn plan_esp(&mut self, s: &SaInfo, proto: IpsecProto) -> Option<EspPlan> {
        let title = s.title();
        let errors_before = self.errors.len();
        let pfs_token = match &s.pfs_group {
            None => None,
            Some(g) => match dh_group(&g.item) {
                Map::Token(t) => Some(t),
                Map::Unsupported(why) => {
                    self.error(
                        F::Conf,
                        g.line,
                        format!("{title}: pfs_group {}: {why}", g.item),
                    );
                    None
                }
                Map::Unknown => {
                    self.error(
                        F::Conf,
                        g.line,
                        format!("{title}: `{}` is not a racoon pfs_group", g.item),
                    );
                    None
                }
            },
        };
        if let Some(c) = &s.compression {
            self.note(F::Conf, c.line, format!(
                "{title}: compression_algorithm: IPComp is not negotiated by ferroswan (racoon offered it only for policies with ipcomp); ignored"
            ));
        }
        let map_list = |cx: &mut Cx<'_>,
                        list: &Located<Vec<Alg>>,
                        f: fn(&Alg) -> Map,
                        what: &str|
         -> Vec<String> {
            let mut out = Vec::new();
            for a in &list.item {
                match f(a) {
                    Map::Token(t) => out.push(t),
                    Map::Unsupported(why) => cx.note(
                        F::Conf,
                        list.line,
                        format!("{title}: {what} {}: dropped: {why}", a.name),
                    ),
                    Map::Unknown => cx.error(
                        F::Conf,
                        list.line,
                        format!("{title}: `{}` is not a racoon {what}", a.name),
                    ),
                }
            }
            out
        };
        let auths = match &s.authentication {
            Some(a) => {
                if a.item
                    .iter()
                    .any(|x| x.name == "hmac_sha256" || x.name == "hmac_sha2_256")
                {
                    self.note(F::Conf, a.line, format!(
                        "{title}: hmac_sha256 is RFC 4868's HMAC-SHA2-256-128 (Linux before 2.6.33 and some racoon builds used 96 bits: such a peer will not interoperate)"
                    ));
                }
                map_list(self, a, esp_auth, "authentication_algorithm")
            }
            None => {
                self.error(
                    F::Conf,
                    s.line,
                    format!("{title}: no authentication_algorithm"),
                );
                Vec::new()
            }
        };
        let items: Vec<String> = match proto {
            IpsecProto::Ah => auths.clone(),
            IpsecProto::Esp => {
                let encs = match &s.encryption {
                    Some(e) => map_list(self, e, esp_cipher, "encryption_algorithm"),
                    None => {
                        self.error(F::Conf, s.line, format!("{title}: no encryption_algorithm"));
                        Vec::new()
                    }
                };
                encs.iter()
                    .flat_map(|e| auths.iter().map(move |a| format!("{e}-{a}")))
                    .collect()
            }
        };
        let phase2 = match proto {
            IpsecProto::Esp => Phase2Proto::Esp,
            IpsecProto::Ah => Phase2Proto::Ah,
        };
        let mut esp = Vec::new();
        for base in items {
            let item = match &pfs_token {
                Some(g) => format!("{base}-{g}"),
                None => base,
            };
            match crate::ike_conn::parse_esp_list(&[item.as_str()], phase2) {
                Ok(p) if p.skipped.is_empty() => {
                    if !esp.contains(&item) {
                        esp.push(item);
                    }
                }
                Ok(p) => self.note(
                    F::Conf,
                    s.line,
                    format!("{title}: {item} dropped: {}", p.skipped.join("; ")),
                ),
                Err(e) => self.note(F::Conf, s.line, format!("{title}: {item} dropped: {e}")),
            }
        }
        if esp.is_empty() && self.errors.len() == errors_before {
            self.error(
                F::Conf,
                s.line,
                format!("{title}: no phase 2 proposal ferroswan supports is left (see the notes)"),
            );
        }
        let sa_lifetime = s
            .lifetime
            .as_ref()
            .and_then(|l| self.lifetime(l.line, l.item, MAX_SA_LIFETIME, &title, "salifetime"));
        if self.errors.len() > errors_before {
            return None;
        }
        Some(EspPlan {
            esp,
            pfs: s.pfs_group.is_some(),
            sa_lifetime,
        })
    }

    /// ipsec.secrets: one line per (left ID, right ID) of the PSK conns, from psk.txt entries
    /// matched by the peer's address (racoon's main mode).
    fn secrets(
        &mut self,
        conf: &RacoonConf,
        psk: &[PskEntry],
        conns: &[ConnPlan],
        plans: &BTreeMap<usize, Option<RemotePlan>>,
        by_addr: &BTreeMap<IpAddr, usize>,
    ) -> Zeroizing<String> {
        let mut out = Zeroizing::new(format!(
            "# ipsec.secrets written by `ipsecctl import racoon` from {}: keep it root-only (0600).\n",
            self.psk_file
        ));
        let mut used: BTreeSet<usize> = BTreeSet::new();
        let mut written: BTreeSet<(String, String)> = BTreeSet::new();
        let entry_addr = |e: &PskEntry| e.id.parse::<IpAddr>().ok();
        for c in conns {
            let Some(Some(plan)) = plans.get(&c.remote) else {
                continue;
            };
            if !plan.psk {
                continue;
            }
            let lid = plan.leftid.clone().unwrap_or_else(|| match c.local {
                Local::Ip(a) => a.to_string(),
                Local::DefaultRoute => "%any".into(),
            });
            let title = conf
                .remotes
                .get(c.remote)
                .map(|r| r.title())
                .unwrap_or_default();
            let rline = conf.remotes.get(c.remote).map_or(0, |r| r.line);
            // the entries for this conn: its peer's, or for %any every address no other remote has
            let mut found: Vec<(usize, String)> = Vec::new();
            match c.peer {
                Some(peer) => {
                    if let Some((i, _)) = psk
                        .iter()
                        .enumerate()
                        .find(|(_, e)| entry_addr(e) == Some(peer))
                    {
                        let rid = plan.rightid.clone().unwrap_or_else(|| peer.to_string());
                        found.push((i, rid));
                    }
                }
                None => {
                    for (i, e) in psk.iter().enumerate() {
                        if let Some(a) = entry_addr(e).filter(|a| !by_addr.contains_key(a)) {
                            if found
                                .iter()
                                .all(|(j, _)| psk.get(*j).and_then(entry_addr) != Some(a))
                            {
                                found.push((i, a.to_string()));
                            }
                        }
                    }
                    if !found.is_empty() {
                        self.note(F::Conf, rline, format!(
                            "{title}: the psk.txt entries for addresses without a remote of their own are written for the right=%any conn `{}`",
                            c.name
                        ));
                    }
                }
            }
            if found.is_empty() {
                let peer = c
                    .peer
                    .map_or_else(|| "any peer".to_string(), |p| p.to_string());
                self.note(F::Psk, 1, format!(
                    "no entry for {peer} ({title}, conn `{}`): add `{lid} {} : PSK \"…\"` to ipsec.secrets",
                    c.name,
                    c.peer.map_or_else(|| "%any".to_string(), |p| plan.rightid.clone().unwrap_or_else(|| p.to_string()))
                ));
            }
            for (i, rid) in found {
                used.insert(i);
                let Some(e) = psk.get(i) else { continue };
                if !written.insert((lid.clone(), rid.clone())) {
                    continue;
                }
                let value = self.secret_value(e);
                let sid = |s: &str| {
                    if s.contains('=') {
                        format!("\"{s}\"")
                    } else {
                        s.to_string()
                    }
                };
                out.push_str(&sid(&lid));
                out.push(' ');
                out.push_str(&sid(&rid));
                out.push_str(" : PSK ");
                out.push_str(&value);
                out.push('\n');
            }
        }
        for (i, e) in psk.iter().enumerate() {
            if used.contains(&i) {
                continue;
            }
            let why = match entry_addr(e) {
                Some(_) => "no converted conn has this peer",
                None => "racoon looks keys up by identifier only in aggressive mode, which ferroswan has not (main mode uses the address)",
            };
            self.note(
                F::Psk,
                e.line,
                format!("the key for `{}` is not written: {why}", e.id),
            );
        }
        out
    }

    /// The key as ipsec.secrets writes it: `0x…` stays hex, else quoted.
    fn secret_value(&mut self, e: &PskEntry) -> Zeroizing<String> {
        if e.key.starts_with("0x") {
            let bytes = e.key_bytes();
            return Zeroizing::new(format!("0x{}", hex(&bytes)));
        }
        if !e.key.contains('"') {
            Zeroizing::new(format!("\"{}\"", e.key.as_str()))
        } else if !e.key.contains('\'') {
            Zeroizing::new(format!("'{}'", e.key.as_str()))
        } else {
            self.note(F::Psk, e.line, format!(
                "the key for `{}` contains both quote characters: written in hex (0x…), the same bytes",
                e.id
            ));
            Zeroizing::new(format!("0x{}", hex(e.key.as_bytes())))
        }
    }
}

/// An outbound IPsec policy, checked.
struct Out {
    local: IpAddr,
    peer: IpAddr,
    local_sel: Sel,
    remote_sel: Sel,
    mode: SaMode,
    proto: IpsecProto,
    text: String,
}

fn sel_pair(e: &SpdEntry) -> String {
    let port = |p: Option<u16>| p.map_or_else(String::new, |p| format!("[{p}]"));
    let upper = match e.upper {
        0 => "any".to_string(),
        n => n.to_string(),
    };
    format!(
        "{}{} {}{} {upper}",
        e.src,
        port(e.src_port),
        e.dst,
        port(e.dst_port)
    )
}

fn protoport(s: &Sel) -> Option<String> {
    if s.upper == 0 && s.port.is_none() {
        return None;
    }
    Some(match s.port {
        Some(p) => format!("{}/{p}", s.upper),
        None => s.upper.to_string(),
    })
}

fn render_conn(c: &ConnPlan, rp: &RemotePlan, ep: &EspPlan) -> String {
    let mut s = format!("\nconn {}\n", c.name);
    for o in &c.origin {
        s.push_str(&format!("\t# {o}\n"));
    }
    let mut kv = |k: &str, v: &str| s.push_str(&format!("\t{k}={v}\n"));
    kv("keyexchange", "ikev1");
    if c.mode == SaMode::Transport {
        kv("type", "transport");
    }
    kv("authby", rp.authby);
    kv(
        "left",
        &match c.local {
            Local::Ip(a) => a.to_string(),
            Local::DefaultRoute => "%defaultroute".into(),
        },
    );
    if let Some(l) = &c.local_sel {
        if c.mode == SaMode::Tunnel
            && !(matches!(c.local, Local::Ip(a) if is_host(&l.net) && l.net.addr == a))
        {
            kv("leftsubnet", &l.net.to_string());
        }
        if let Some(pp) = protoport(l) {
            kv("leftprotoport", &pp);
        }
    }
    if let Some(id) = &rp.leftid {
        kv("leftid", &conf_id(id));
    }
    kv(
        "right",
        &c.peer.map_or_else(|| "%any".to_string(), |p| p.to_string()),
    );
    if let Some(r) = &c.remote_sel {
        if c.mode == SaMode::Tunnel && !(c.peer.is_some_and(|p| is_host(&r.net) && r.net.addr == p))
        {
            kv("rightsubnet", &r.net.to_string());
        }
        if let Some(pp) = protoport(r) {
            kv("rightprotoport", &pp);
        }
    }
    if let Some(id) = &rp.rightid {
        kv("rightid", &conf_id(id));
    }
    kv("ike", &rp.ike.join(","));
    if let Some(l) = rp.ike_lifetime {
        kv("ikelifetime", &duration(l));
    }
    if c.proto == IpsecProto::Ah {
        kv("phase2", "ah");
    }
    kv("esp", &ep.esp.join(","));
    kv("pfs", if ep.pfs { "yes" } else { "no" });
    if let Some(l) = ep.sa_lifetime {
        kv("salifetime", &duration(l));
    }
    if let Some((d, t)) = rp.dpd {
        kv("dpddelay", &duration(d));
        kv("dpdtimeout", &duration(t));
    }
    kv("auto", c.auto);
    s
}
