//! IKE conns for ikerd: a loaded [`Conn`] and its orientation become an [`IkeConn`] (`local` is
//! this gateway), with `ike=`/`esp=` parsed into typed proposals (or the defaults). Pure code: no
//! I/O, no clock; the daemon supplies the orientation and the default-route address.
//!
//! # Which conns go to ikerd
//!
//! Every conn that is not manually keyed (`auto=manual` or any manual-keying keyword), not a shunt
//! (`type=passthrough|drop|reject`, `authby=never`), not a policy-group template (`%group`,
//! `%opportunistic`), and has `auto=add|route|start` (or is added by `ipsecctl add`). `auto=ignore`
//! conns are known to confd only.
//!
//! # Proposals
//!
//! `ike=` and `esp=` (or `phase2alg=`) are comma-separated lists in strongSwan's or Libreswan's
//! syntax; each item is `-`-separated tokens (also `;` and `+`, as Libreswan writes them), sorted by
//! kind: ciphers (`3des`, `aes` = `aes128`, `aes192`, `aes256`, `aes_cbc256`, `aes128gcm16`,
//! `aes_gcm_c`, `aes128ctr` in esp=, `null` in esp=), hashes/integrity (`md5`, `sha1`/`sha`,
//! `sha2_256`/`sha256`/`sha2`, `sha2_384`, `sha2_512`, with optional `_96`/`_128` truncation
//! suffixes as FreeS/WAN wrote them), PRFs (`prfsha256`...), DH groups (`modp768`...`modp8192`,
//! `ecp256`, `ecp384`, `curve25519`/`x25519`, `dh14`...). An item with several tokens of one kind
//! (strongSwan's `aes128-aes256-sha1-sha256-modp2048`) stands for every combination, in the
//! order written. A trailing `!` (strongSwan's "strict") is accepted: ferroswan's proposals are
//! always strict. After Libreswan's `;` come only DH groups (`;none`: no PFS group).
//!
//! Unknown tokens and proposals that make no sense (encryption without integrity, AES-GCM with
//! an integrity algorithm) refuse the file, naming the conn and the token. A known algorithm
//! ferroswan does not implement (Camellia, ChaCha20-Poly1305, AES-CCM/XCBC, ECP-521…) drops its
//! item from the list with a warning, as does AES-GCM in `ike=` of an IKEv1-only conn; a list
//! with nothing left is an error. An item with no integrity algorithm gets the default ones
//! (`ike=aes256`: SHA2-256, then SHA1; `esp=aes`: SHA1, then SHA2-256), as Libreswan does.
//!
//! * `ike=`: for IKEv1 the hash is also the PRF (HMAC); an explicit `prf…` token sets the PRF
//!   apart from the integrity algorithm (IKEv2). AES-GCM (IKEv2 only) takes a PRF: `prfsha256`,
//!   or a hash token, which then means the PRF (Libreswan's `aes_gcm-sha2`); with neither,
//!   PRF-HMAC-SHA2-256. No DH group means MODP2048 (group 14).
//! * `esp=`: cipher and integrity (none with AES-GCM); a DH group is the PFS group for that
//!   proposal (`aes128gcm16-modp2048`, `aes128-sha1;modp2048`). With `phase2=ah` the list names
//!   integrity algorithms only (`sha1`, `sha2_256`), and the proposals carry `EncrAlg::Null`.
//!
//! Defaults (AES-CBC/3DES, SHA1/SHA2/MD5, MODP 1024…2048, group 14 first): see [`DEFAULT_IKE`] and
//! [`DEFAULT_ESP`].

use crate::conf::error::{Category, ConfError};
use crate::conf::model::{
    AuthBy, Auto, ConnType, DpdAction as ConfDpdAction, IkeVersion, KeyingTries, Phase2Proto,
};
use crate::conf::values::{HostAddr, Id, NextHop, RsaPubKey};
use crate::conf::{Config, Conn, End, Orientation};
use base64::Engine as _;
use ipc::ike::{
    AuthMethod, DhGroup, DpdAction, DpdSpec, EspProposal, IkeAuto, IkeConn, IkeEncr, IkeEnd, IkeId,
    IkeProposal, IkeSettings, IkeVersions, PrfAlg,
};
use ipc::policy::Net;
use ipc::sa::{EncrAlg, IntegAlg, IpsecProto, SaMode};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// `ike=` when the conn says nothing, in order of preference.
pub const DEFAULT_IKE: &[&str] = &[
    "aes128-sha2_256-modp2048",
    "aes128-sha1-modp2048",
    "3des-sha1-modp2048",
    "aes128-sha1-modp1536",
    "3des-md5-modp1024",
];

/// `esp=` when the conn says nothing (ESP), in order of preference; PFS uses the IKE SA's group.
pub const DEFAULT_ESP: &[&str] = &["aes128-sha1", "aes128-sha2_256", "3des-sha1", "3des-md5"];

/// The integrity algorithms offered when `phase2=ah` and `esp=` says nothing.
pub const DEFAULT_AH: &[&str] = &["sha1", "sha2_256", "md5"];

/// The DH group of an `ike=` item that names none.
pub const DEFAULT_IKE_GROUP: DhGroup = DhGroup::Modp2048;

/// Most proposals one item may expand to, and one list may hold.
pub const MAX_PER_ITEM: usize = 64;
pub const MAX_PROPOSALS: usize = 128;

/// What the daemon knows about this host that orientation alone does not say.
#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    /// The address of the interface with the default route (for `%defaultroute`).
    pub default_route: Option<IpAddr>,
}

/// Whether a conn is negotiated by IKE (and so belongs to ikerd), whatever its `auto=`.
pub fn is_ike(conn: &Conn) -> bool {
    let template = |h: &HostAddr| matches!(h, HostAddr::Opportunistic | HostAddr::Group);
    conn.manual.is_none()
        && conn.auto != Auto::Manual
        && matches!(conn.conn_type, ConnType::Tunnel | ConnType::Transport)
        && conn.authby != AuthBy::Never
        && !template(&conn.left.host)
        && !template(&conn.right.host)
}

/// What `auto=` asks ikerd to do at load; `None` for `ignore` (and `manual`).
pub fn ike_auto(a: Auto) -> Option<IkeAuto> {
    match a {
        Auto::Add => Some(IkeAuto::Add),
        Auto::Route => Some(IkeAuto::Route),
        Auto::Start => Some(IkeAuto::Start),
        Auto::Ignore | Auto::Manual => None,
    }
}

/// The IKE conns a freshly loaded configuration adds, with what ikerd does with each: those with
/// `auto=add|route|start`, and FreeS/WAN 1.x's `plutoload=` (added) and `plutostart=` (started).
pub fn wanted(config: &Config) -> BTreeMap<String, IkeAuto> {
    let mut out = BTreeMap::new();
    for c in config.conns.iter().filter(|c| is_ike(c)) {
        if let Some(a) = ike_auto(c.auto) {
            out.insert(c.name.clone(), a);
        }
    }
    let ike_named = |n: &str| config.conn(n).is_some_and(is_ike);
    for n in &config.setup.plutoload {
        if n == "%search" {
            continue;
        }
        if ike_named(n) {
            out.entry(n.clone()).or_insert(IkeAuto::Add);
        }
    }
    for n in &config.setup.plutostart {
        if ike_named(n) {
            out.insert(n.clone(), IkeAuto::Start);
        }
    }
    out
}

/// `config setup` settings ikerd needs.
pub fn settings(config: &Config) -> IkeSettings {
    IkeSettings {
        uniqueids: config.setup.uniqueids,
    }
}

/// Load-time checks of every IKE conn's `ike=`/`esp=` (whether or not it is oriented or added):
/// (errors, warnings), each `file:line:` at the conn, naming the conn and the token. A warning
/// says which proposals were dropped because ferroswan does not implement an algorithm of theirs.
pub fn check_config(config: &Config) -> (Vec<ConfError>, Vec<ConfError>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for c in config.conns.iter().filter(|c| is_ike(c)) {
        match proposals(c) {
            Ok(p) => warnings.extend(p.warnings.iter().map(|w| {
                ConfError::new(
                    &c.location,
                    Category::Unsupported,
                    format!("conn `{}`: {w}", c.name),
                )
            })),
            Err(e) => errors.push(ConfError::new(
                &c.location,
                Category::BadValue,
                format!("conn `{}`: {e}", c.name),
            )),
        }
    }
    (errors, warnings)
}

/// A conn's proposals, and what was dropped from its lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposals {
    pub ike: Vec<IkeProposal>,
    pub esp: Vec<EspProposal>,
    pub warnings: Vec<String>,
}

/// The conn's IKE and ESP/AH proposals (its own or the defaults), checked against its versions:
/// AES-GCM for the IKE SA is dropped from an IKEv1-only conn (an error if nothing is left).
pub fn proposals(c: &Conn) -> Result<Proposals, String> {
    let ike_text = c.ike.join(",");
    let parsed = if c.ike.is_empty() {
        parse_ike_list(DEFAULT_IKE)
    } else {
        parse_ike_list(&c.ike)
    }
    .map_err(|e| format!("ike={ike_text}: {e}"))?;
    let mut warnings: Vec<String> = parsed
        .skipped
        .iter()
        .map(|w| format!("ike={ike_text}: {w}"))
        .collect();
    let mut ike = parsed.proposals;
    if !c.ike_policy.accept_v2 {
        let (gcm, rest): (Vec<IkeProposal>, Vec<IkeProposal>) = ike
            .into_iter()
            .partition(|p| matches!(p.encr, IkeEncr::AesGcm { .. }));
        if let Some(p) = gcm.first() {
            let why = format!(
                "{} is for IKEv2 only (RFC 5282) and this conn speaks IKEv1 (keyexchange=ikev2 would allow it)",
                ike_proposal_name(p)
            );
            if rest.is_empty() {
                return Err(format!("ike={ike_text}: {why}; nothing else is left"));
            }
            warnings.push(format!(
                "ike={ike_text}: {} AES-GCM proposals skipped: {why}",
                gcm.len()
            ));
        }
        ike = rest;
    }
    let esp_list: Vec<String> = if !c.esp.is_empty() {
        c.esp.clone()
    } else if c.phase2 == Phase2Proto::Ah {
        DEFAULT_AH.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_ESP.iter().map(|s| s.to_string()).collect()
    };
    let esp_text = format!("esp={}", esp_list.join(","));
    let parsed = parse_esp_list(&esp_list, c.phase2).map_err(|e| format!("{esp_text}: {e}"))?;
    warnings.extend(parsed.skipped.iter().map(|w| format!("{esp_text}: {w}")));
    Ok(Proposals {
        ike,
        esp: parsed.proposals,
        warnings,
    })
}

/// The `IkeConn` for ikerd. `auto` is what ikerd is to do with it (the conn's `auto=`, or
/// `ipsecctl add|route` overriding it). Errors start with the conn's name in quotes.
pub fn ike_conn(
    conn: &Conn,
    orientation: Orientation,
    auto: IkeAuto,
    host: &HostInfo,
) -> Result<IkeConn, String> {
    ike_conn_inner(conn, orientation, auto, host).map_err(|e| format!("\"{}\": {e}", conn.name))
}

fn ike_conn_inner(
    conn: &Conn,
    orientation: Orientation,
    auto: IkeAuto,
    host: &HostInfo,
) -> Result<IkeConn, String> {
    if !is_ike(conn) {
        return Err(
            "not an IKE conn (manually keyed, a shunt, authby=never, or a policy-group template)"
                .into(),
        );
    }
    let (local, remote, lside, rside) = match orientation {
        Orientation::LeftIsLocal => (&conn.left, &conn.right, "left", "right"),
        Orientation::RightIsLocal => (&conn.right, &conn.left, "right", "left"),
        Orientation::Unoriented => {
            return Err(format!(
                "neither left={} nor right={} is an address of this host",
                conn.left.host, conn.right.host
            ))
        }
    };
    let auth = match conn.authby {
        AuthBy::Secret => AuthMethod::Psk,
        AuthBy::RsaSig => AuthMethod::RsaSig,
        AuthBy::SecretOrRsaSig => AuthMethod::PskOrRsaSig,
        AuthBy::Null => return Err("authby=null (RFC 7619) is not supported by ikerd".into()),
        AuthBy::Never => return Err("authby=never: a shunt, not negotiated".into()),
    };
    let local_ip = match &local.host {
        HostAddr::Ip(ip) => *ip,
        HostAddr::DefaultRoute => host
            .default_route
            .ok_or_else(|| format!("{lside}=%defaultroute, but this host has no default route"))?,
        other => return Err(format!("{lside}={other} cannot be this host's address")),
    };
    let remote_ip = match &remote.host {
        HostAddr::Ip(ip) => Some(*ip),
        HostAddr::Any => None,
        HostAddr::Name(n) => {
            return Err(format!(
                "{rside}={n}: DNS names are not resolved for IKE yet; give the peer's address"
            ))
        }
        other => return Err(format!("{rside}={other} is not a peer address")),
    };
    if let Some(r) = remote_ip {
        if r.is_ipv4() != local_ip.is_ipv4() {
            return Err(format!(
                "{lside}={local_ip} and {rside}={r} are of different address families"
            ));
        }
    }
    let Proposals { ike, esp, .. } = proposals(conn)?;
    let local_end = ike_end(local, lside, Some(local_ip), true)?;
    let remote_end = ike_end(remote, rside, remote_ip, false)?;
    let v = conn.ike_policy;
    Ok(IkeConn {
        name: conn.name.clone(),
        versions: IkeVersions {
            initiate: match v.initiate {
                IkeVersion::V1 => 1,
                IkeVersion::V2 => 2,
            },
            accept_v1: v.accept_v1,
            accept_v2: v.accept_v2,
        },
        auth,
        local: local_end,
        remote: remote_end,
        mode: match conn.conn_type {
            ConnType::Transport => SaMode::Transport,
            _ => SaMode::Tunnel,
        },
        proto: match conn.phase2 {
            Phase2Proto::Esp => IpsecProto::Esp,
            Phase2Proto::Ah => IpsecProto::Ah,
        },
        ike,
        esp,
        pfs: conn.pfs,
        ike_lifetime_secs: conn.ike_lifetime_secs,
        sa_lifetime_secs: conn.sa_lifetime_secs,
        rekey: conn.rekey,
        rekey_margin_secs: conn.rekey_margin_secs,
        rekey_fuzz_percent: conn.rekey_fuzz_percent,
        keying_tries: match conn.keying_tries {
            KeyingTries::Forever => 0,
            KeyingTries::Count(n) => n,
        },
        dpd: conn.dpd.map(|d| DpdSpec {
            delay_secs: d.delay_secs,
            timeout_secs: d.timeout_secs,
            action: match d.action {
                ConfDpdAction::Clear => DpdAction::Clear,
                ConfDpdAction::Hold => DpdAction::Hold,
                ConfDpdAction::Restart => DpdAction::Restart,
            },
        }),
        auto,
    })
}

/// An RFC 3110 key as ipsec.conf writes it: `0s` and base64.
pub fn rsasigkey_text(k: &RsaPubKey) -> String {
    format!(
        "0s{}",
        base64::engine::general_purpose::STANDARD.encode(&k.rfc3110)
    )
}

fn ike_id(id: &Id, side: &str, local: bool) -> Result<Option<IkeId>, String> {
    Ok(Some(match id {
        Id::Ip(a) => IkeId::Ip(*a),
        Id::Fqdn(s) => match s.strip_prefix('#') {
            // `@#0123abcd`: ID_KEY_ID, as hex
            Some(hex) => IkeId::KeyId(key_id(hex).ok_or_else(|| {
                format!("{side}id=@#{hex}: a key ID is an even number of hex digits")
            })?),
            None => IkeId::Fqdn(s.clone()),
        },
        Id::UserFqdn(s) => IkeId::UserFqdn(s.clone()),
        Id::Dn(s) => IkeId::Dn(s.clone()),
        Id::Any if local => {
            return Err(format!(
                "{side}id=%any: this gateway needs an ID of its own"
            ))
        }
        Id::Any => IkeId::Any,
        // `%none`: as if unset (the address)
        Id::None => return Ok(None),
        Id::Null => return Err(format!("{side}id=%null (RFC 7619) is not supported")),
    }))
}

fn key_id(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim_start_matches("0x");
    if hex.is_empty() || !hex.len().is_multiple_of(2) || hex.len() > 256 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

fn ike_end(e: &End, side: &str, host: Option<IpAddr>, local: bool) -> Result<IkeEnd, String> {
    let default_id = match host {
        Some(ip) => IkeId::Ip(ip),
        None => IkeId::Any,
    };
    let id = match &e.id {
        Some(id) => ike_id(id, side, local)?.unwrap_or(default_id),
        None => default_id,
    };
    Ok(IkeEnd {
        host,
        id,
        subnets: e
            .subnets
            .iter()
            .map(|s| Net {
                addr: s.addr,
                prefix: s.prefix_len,
            })
            .collect(),
        proto: e.protoport.map_or(0, |p| p.protocol),
        port: e.protoport.and_then(|p| p.port).unwrap_or(0),
        rsasigkeys: e.rsasigkeys.iter().map(rsasigkey_text).collect(),
        nexthop: match e.nexthop {
            Some(NextHop::Ip(ip)) => Some(ip),
            _ => None,
        },
        sourceip: e.sourceip,
        updown: e.updown.clone(),
        firewall: e.firewall,
    })
}

// ------------------------------------------------------------------------------- proposals

/// A cipher as written, before it is known whether it is for IKE or ESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cipher {
    TripleDes,
    Null,
    Aes {
        bits: Option<u16>,
        mode: AesMode,
        icv: Option<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AesMode {
    Cbc,
    Ctr,
    Gcm,
}

impl Cipher {
    fn is_aead(self) -> bool {
        matches!(
            self,
            Cipher::Aes {
                mode: AesMode::Gcm,
                ..
            }
        )
    }
    fn esp(self) -> EncrAlg {
        match self {
            Cipher::TripleDes => EncrAlg::TripleDesCbc,
            Cipher::Null => EncrAlg::Null,
            Cipher::Aes { bits, mode, icv } => {
                let key_bits = bits.unwrap_or(128);
                match mode {
                    AesMode::Cbc => EncrAlg::AesCbc { key_bits },
                    AesMode::Ctr => EncrAlg::AesCtr { key_bits },
                    AesMode::Gcm => EncrAlg::AesGcm {
                        key_bits,
                        icv_bytes: icv.unwrap_or(16),
                    },
                }
            }
        }
    }
}

/// Split into runs of digits and runs of letters, dropping `_`: `aes_cbc256` → cbc, 256.
fn runs(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_digit = false;
    for c in s.chars() {
        if c == '_' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let d = c.is_ascii_digit();
        if !cur.is_empty() && d != cur_digit {
            out.push(std::mem::take(&mut cur));
        }
        cur_digit = d;
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Add a numeric or mode part to an AES cipher; false when it does not belong to it.
fn aes_part(c: &mut Cipher, p: &str) -> bool {
    let Cipher::Aes { bits, mode, icv } = c else {
        return false;
    };
    match p {
        "128" | "192" | "256" if bits.is_none() => *bits = p.parse().ok(),
        "cbc" if *mode == AesMode::Cbc => {}
        "ctr" if *mode == AesMode::Cbc => *mode = AesMode::Ctr,
        "gcm" if *mode == AesMode::Cbc => *mode = AesMode::Gcm,
        "8" | "12" | "16" if *mode == AesMode::Gcm && icv.is_none() => *icv = p.parse().ok(),
        // strongSwan's ICV in bits: aes128gcm64/96/128
        "64" | "96" | "128" if *mode == AesMode::Gcm && icv.is_none() && bits.is_some() => {
            *icv = Some(match p {
                "64" => 8,
                "96" => 12,
                _ => 16,
            })
        }
        "a" | "b" | "c" if *mode == AesMode::Gcm && icv.is_none() => {
            *icv = Some(match p {
                "a" => 8,
                "b" => 12,
                _ => 16,
            })
        }
        _ => return false,
    }
    true
}

/// Why one proposal item was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalError {
    pub message: String,
    /// A known algorithm ferroswan does not implement (Camellia, ChaCha20, ECP-521…): a list
    /// with other proposals drops the item with a warning. Otherwise (unknown token, a proposal
    /// that makes no sense) the list is refused.
    pub unsupported: bool,
}

impl std::fmt::Display for ProposalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn bad(m: impl Into<String>) -> ProposalError {
    ProposalError {
        message: m.into(),
        unsupported: false,
    }
}

fn unsupported(m: impl Into<String>) -> ProposalError {
    ProposalError {
        message: m.into(),
        unsupported: true,
    }
}

type PResult<T> = Result<T, ProposalError>;

/// A cipher token, `None` when the token is not a cipher name at all.
fn cipher(tok: &str) -> Option<PResult<Cipher>> {
    let flat = tok.replace('_', "");
    Some(match flat.as_str() {
        "3des" | "3descbc" | "des3" | "des3cbc" | "tripledes" => Ok(Cipher::TripleDes),
        "null" | "encnull" | "espnull" => Ok(Cipher::Null),
        "des" | "descbc" | "1des" => Err(unsupported(format!(
            "`{tok}`: single DES is not supported (56-bit keys are broken)"
        ))),
        "blowfish" | "cast" | "cast128" | "twofish" | "serpent" | "camellia" | "camellia128"
        | "camellia192" | "camellia256" | "camelliacbc" | "chacha20poly1305" | "chacha20"
        | "idea" | "rc5" | "nullauthaesgmac" => Err(unsupported(format!(
            "`{tok}`: cipher not supported (3des, aes, aes_gcm, aes_ctr)"
        ))),
        _ => {
            let rest = tok.strip_prefix("aes")?;
            let mut c = Cipher::Aes {
                bits: None,
                mode: AesMode::Cbc,
                icv: None,
            };
            for p in runs(rest) {
                if matches!(p.as_str(), "ccm" | "gmac" | "xcbc" | "cmac") {
                    return Some(Err(unsupported(format!(
                        "`{tok}`: AES-{} is not supported",
                        p.to_ascii_uppercase()
                    ))));
                }
                if !aes_part(&mut c, &p) {
                    return Some(Err(bad(format!(
                        "`{tok}`: `{p}` is not understood (key length 128/192/256, cbc, ctr, gcm with ICV 8/12/16)"
                    ))));
                }
            }
            if let Cipher::Aes {
                bits: Some(192),
                mode: AesMode::Gcm,
                ..
            } = c
            {
                return Some(Err(unsupported(format!(
                    "`{tok}`: AES-GCM with a 192-bit key is not supported (128 or 256)"
                ))));
            }
            Ok(c)
        }
    })
}

/// A hash/integrity token (`sha1`, `sha2_256`, `md5_96`...), `None` when it is not one.
fn integ(tok: &str) -> Option<PResult<IntegAlg>> {
    let known = matches!(
        tok.trim_start_matches("hmac_")
            .split('_')
            .next()
            .unwrap_or(""),
        "md5" | "sha" | "sha1" | "sha2" | "sha256" | "sha384" | "sha512" | "none"
    ) || tok == "null";
    if !known {
        return None;
    }
    Some(crate::manual::parse_integ(tok).map_err(|e| {
        let m = format!("`{tok}`: {e}");
        if e.contains("not supported") {
            unsupported(m)
        } else {
            bad(m)
        }
    }))
}

fn prf_of(i: IntegAlg) -> Option<PrfAlg> {
    Some(match i {
        IntegAlg::HmacMd5_96 => PrfAlg::HmacMd5,
        IntegAlg::HmacSha1_96 => PrfAlg::HmacSha1,
        IntegAlg::HmacSha256_128 => PrfAlg::HmacSha2_256,
        IntegAlg::HmacSha384_192 => PrfAlg::HmacSha2_384,
        IntegAlg::HmacSha512_256 => PrfAlg::HmacSha2_512,
        IntegAlg::None => return None,
    })
}

/// A PRF token (`prfsha256`, `prf_sha1`, `prfmd5`), `None` when it is not one.
fn prf(tok: &str) -> Option<PResult<PrfAlg>> {
    let rest = tok.strip_prefix("prf")?;
    let rest = rest.trim_start_matches(['_', '-']);
    if rest.contains("xcbc") || rest.contains("cmac") {
        return Some(Err(unsupported(format!(
            "`{tok}`: AES-based PRFs are not supported"
        ))));
    }
    Some(match integ(rest) {
        Some(Ok(i)) => prf_of(i).ok_or_else(|| bad(format!("`{tok}`: no such PRF"))),
        Some(Err(e)) => Err(e),
        None => Err(bad(format!(
            "`{tok}`: unknown PRF (prfmd5, prfsha1, prfsha256, prfsha384, prfsha512)"
        ))),
    })
}

/// A DH group token (`modp2048`, `ecp_256`, `dh14`), `None` when it is not one.
fn dh(tok: &str) -> Option<PResult<DhGroup>> {
    let flat = tok.replace('_', "");
    let g = match flat.as_str() {
        "modp768" => DhGroup::Modp768,
        "modp1024" => DhGroup::Modp1024,
        "modp1536" => DhGroup::Modp1536,
        "modp2048" => DhGroup::Modp2048,
        "modp3072" => DhGroup::Modp3072,
        "modp4096" => DhGroup::Modp4096,
        "modp6144" => DhGroup::Modp6144,
        "modp8192" => DhGroup::Modp8192,
        "ecp256" => DhGroup::Ecp256,
        "ecp384" => DhGroup::Ecp384,
        "curve25519" | "x25519" => DhGroup::Curve25519,
        _ => {
            if let Some(n) = flat
                .strip_prefix("dh")
                .or_else(|| flat.strip_prefix("modpgroup"))
            {
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                    return Some(
                        n.parse::<u16>()
                            .ok()
                            .and_then(DhGroup::from_number)
                            .ok_or_else(|| {
                                unsupported(format!("`{tok}`: DH group {n} is not supported"))
                            }),
                    );
                }
            }
            let known_family = ["modp", "ecp", "curve", "x448", "brainpool"]
                .iter()
                .any(|f| flat.starts_with(f) && flat.len() > f.len());
            if known_family {
                let digits = flat.trim_start_matches(|c: char| c.is_ascii_alphabetic());
                return Some(Err(if digits.bytes().all(|b| b.is_ascii_digit()) {
                    unsupported(format!(
                        "`{tok}`: DH group not supported (modp768…modp8192, ecp256, ecp384, curve25519)"
                    ))
                } else {
                    bad(format!("`{tok}` is not a DH group"))
                }));
            }
            return None;
        }
    };
    Some(Ok(g))
}

/// The tokens of one item, sorted by kind.
#[derive(Debug, Default)]
struct Tokens {
    ciphers: Vec<Cipher>,
    integs: Vec<IntegAlg>,
    prfs: Vec<PrfAlg>,
    groups: Vec<DhGroup>,
    /// Libreswan's `;none`: explicitly no (PFS) group.
    no_group: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Cipher,
    Integ,
    Other,
}

const KNOWN: &str = "ciphers 3des, aes, aes128, aes256, aes128gcm16 …; hashes md5, sha1, sha2_256, sha2_384, sha2_512; \
PRFs prfsha1, prfsha256 …; DH groups modp1024 … modp8192, ecp256, ecp384, curve25519";

fn tokens(item: &str) -> PResult<Tokens> {
    let item = item.trim().to_ascii_lowercase();
    let body = item.strip_suffix('!').unwrap_or(&item);
    if body.is_empty() {
        return Err(bad("empty proposal"));
    }
    // Libreswan: `alg-alg;group` — after `;` only DH groups (or `none`)
    let (body, groups) = match body.split_once(';') {
        Some((b, g)) => (b, Some(g)),
        None => (body, None),
    };
    let mut t = Tokens::default();
    for g in groups.into_iter().flat_map(|g| g.split(['-', '+', ';'])) {
        match g {
            "none" | "null" => t.no_group = true,
            "" => return Err(bad(format!("`{item}`: empty DH group after `;`"))),
            _ => match dh(g) {
                Some(r) => t.groups.push(r?),
                None => {
                    return Err(bad(format!(
                        "`{g}` after `;` in `{item}` is not a DH group"
                    )))
                }
            },
        }
    }
    let mut last = Last::Nothing;
    // The integrity token as written, for FreeS/WAN's `md5-96` (a truncation joined by `-`).
    let mut last_integ_tok = String::new();
    for tok in body.split(['-', '+']) {
        if tok.is_empty() {
            return Err(bad(format!("`{item}`: empty token")));
        }
        if last == Last::Cipher {
            if let Some(c) = t.ciphers.last_mut() {
                if (*c == Cipher::TripleDes && tok == "cbc") || aes_part(c, tok) {
                    continue;
                }
            }
        }
        if last == Last::Integ && tok.bytes().all(|b| b.is_ascii_digit()) {
            // `md5-96`, `sha2_256-128`: the truncation belongs to the hash
            let joined = format!("{last_integ_tok}_{tok}");
            if let Some(r) = integ(&joined) {
                let i = r?;
                if let Some(x) = t.integs.last_mut() {
                    *x = i;
                }
                continue;
            }
        }
        // `null` first is the ESP null cipher; later, "no integrity".
        if tok != "null" || last == Last::Nothing {
            if let Some(c) = cipher(tok) {
                t.ciphers.push(c?);
                last = Last::Cipher;
                continue;
            }
        }
        if let Some(p) = prf(tok) {
            t.prfs.push(p?);
            last = Last::Other;
            continue;
        }
        if let Some(i) = integ(tok) {
            t.integs.push(i?);
            last_integ_tok = tok.to_string();
            last = Last::Integ;
            continue;
        }
        if let Some(g) = dh(tok) {
            t.groups.push(g?);
            last = Last::Other;
            continue;
        }
        match tok {
            "noesn" => {
                last = Last::Other;
                continue;
            }
            "esn" => {
                return Err(unsupported(
                    "`esn`: extended sequence numbers are not supported",
                ))
            }
            _ => {}
        }
        return Err(bad(format!("unknown token `{tok}` (known: {KNOWN})")));
    }
    Ok(t)
}

fn dedup_push<T: PartialEq>(out: &mut Vec<T>, x: T) {
    if !out.contains(&x) {
        out.push(x);
    }
}

fn too_many(n: usize, item: &str) -> PResult<()> {
    if n > MAX_PER_ITEM {
        return Err(bad(format!(
            "`{item}` stands for {n} combinations, at most {MAX_PER_ITEM}"
        )));
    }
    Ok(())
}

/// The hashes an `ike=` item without one gets (as the default list), and the PRF of AES-GCM.
const IKE_DEFAULT_INTEG: [IntegAlg; 2] = [IntegAlg::HmacSha256_128, IntegAlg::HmacSha1_96];
const IKE_DEFAULT_AEAD_PRF: PrfAlg = PrfAlg::HmacSha2_256;
/// The integrity an `esp=` item without one gets.
const ESP_DEFAULT_INTEG: [IntegAlg; 2] = [IntegAlg::HmacSha1_96, IntegAlg::HmacSha256_128];

fn ike_item(item: &str) -> PResult<Vec<IkeProposal>> {
    let t = tokens(item)?;
    let item = item.trim();
    if t.ciphers.is_empty() {
        return Err(bad(format!(
            "`{item}`: no cipher (e.g. aes128-sha2_256-modp2048)"
        )));
    }
    if t.no_group && t.groups.is_empty() {
        return Err(bad(format!("`{item}`: the IKE SA needs a DH group")));
    }
    let aead = t.ciphers.iter().any(|c| c.is_aead());
    if aead && t.ciphers.iter().any(|c| !c.is_aead()) {
        return Err(bad(format!(
            "`{item}`: AES-GCM and non-AEAD ciphers cannot share one proposal; write two"
        )));
    }
    let mut encrs = Vec::new();
    for c in &t.ciphers {
        encrs.push(match c.esp() {
            EncrAlg::TripleDesCbc => IkeEncr::TripleDesCbc,
            EncrAlg::AesCbc { key_bits } => IkeEncr::AesCbc { key_bits },
            EncrAlg::AesGcm {
                key_bits,
                icv_bytes,
            } => IkeEncr::AesGcm {
                key_bits,
                icv_bytes,
            },
            EncrAlg::Null => {
                return Err(bad(format!(
                    "`{item}`: the IKE SA cannot go unencrypted (null)"
                )))
            }
            EncrAlg::AesCtr { .. } => {
                return Err(unsupported(format!(
                    "`{item}`: AES-CTR is not offered for the IKE SA"
                )))
            }
        });
    }
    let groups = if t.groups.is_empty() {
        vec![DEFAULT_IKE_GROUP]
    } else {
        t.groups.clone()
    };
    // (integ, prf) pairs
    let mut pairs: Vec<(Option<IntegAlg>, PrfAlg)> = Vec::new();
    if aead {
        // a hash token names the PRF; `-null` (no integrity) is what AES-GCM wants anyway
        let mut prfs = t.prfs.clone();
        prfs.extend(t.integs.iter().filter_map(|i| prf_of(*i)));
        if prfs.is_empty() {
            prfs.push(IKE_DEFAULT_AEAD_PRF);
        }
        for p in prfs {
            dedup_push(&mut pairs, (None, p));
        }
    } else {
        if t.integs.contains(&IntegAlg::None) {
            return Err(bad(format!(
                "`{item}`: the IKE SA needs integrity with a non-AEAD cipher"
            )));
        }
        let integs: &[IntegAlg] = if t.integs.is_empty() {
            &IKE_DEFAULT_INTEG
        } else {
            &t.integs
        };
        for i in integs {
            if t.prfs.is_empty() {
                if let Some(p) = prf_of(*i) {
                    dedup_push(&mut pairs, (Some(*i), p));
                }
            } else {
                for p in &t.prfs {
                    dedup_push(&mut pairs, (Some(*i), *p));
                }
            }
        }
    }
    too_many(
        encrs
            .len()
            .saturating_mul(pairs.len())
            .saturating_mul(groups.len()),
        item,
    )?;
    let mut out = Vec::new();
    for encr in &encrs {
        for (integ, prf) in &pairs {
            for dh in &groups {
                dedup_push(
                    &mut out,
                    IkeProposal {
                        encr: *encr,
                        prf: *prf,
                        integ: *integ,
                        dh: *dh,
                    },
                );
            }
        }
    }
    Ok(out)
}

fn esp_item(item: &str, phase2: Phase2Proto) -> PResult<Vec<EspProposal>> {
    let t = tokens(item)?;
    let item = item.trim();
    if !t.prfs.is_empty() {
        return Err(bad(format!(
            "`{item}`: a PRF has no place in an ESP/AH proposal"
        )));
    }
    let groups: Vec<Option<DhGroup>> = if t.groups.is_empty() {
        vec![None]
    } else {
        t.groups.iter().copied().map(Some).collect()
    };
    let mut combos: Vec<(EncrAlg, IntegAlg)> = Vec::new();
    match phase2 {
        Phase2Proto::Ah => {
            if !t.ciphers.is_empty() {
                return Err(bad(format!(
                    "`{item}`: phase2=ah takes integrity algorithms only (sha1, sha2_256 …)"
                )));
            }
            if t.integs.is_empty() || t.integs.contains(&IntegAlg::None) {
                return Err(bad(format!("`{item}`: AH needs an integrity algorithm")));
            }
            for i in &t.integs {
                dedup_push(&mut combos, (EncrAlg::Null, *i));
            }
        }
        Phase2Proto::Esp => {
            if t.ciphers.is_empty() {
                return Err(bad(format!("`{item}`: no cipher (e.g. aes128-sha1)")));
            }
            for c in &t.ciphers {
                let e = c.esp();
                if c.is_aead() {
                    if t.integs.iter().any(|i| *i != IntegAlg::None) {
                        return Err(bad(format!(
                            "`{item}`: AES-GCM carries its own integrity; write it without one"
                        )));
                    }
                    dedup_push(&mut combos, (e, IntegAlg::None));
                } else {
                    if t.integs.contains(&IntegAlg::None) {
                        return Err(bad(format!(
                            "`{item}`: encryption without integrity is refused (open to cut-and-paste attacks); e.g. {}-sha1",
                            item.split(['-', ';']).next().unwrap_or(item)
                        )));
                    }
                    let integs: &[IntegAlg] = if t.integs.is_empty() {
                        &ESP_DEFAULT_INTEG
                    } else {
                        &t.integs
                    };
                    for i in integs {
                        dedup_push(&mut combos, (e, *i));
                    }
                }
            }
        }
    }
    too_many(combos.len().saturating_mul(groups.len()), item)?;
    let mut out = Vec::new();
    for (encr, integ) in &combos {
        for g in &groups {
            dedup_push(
                &mut out,
                EspProposal {
                    encr: *encr,
                    integ: *integ,
                    pfs_group: *g,
                },
            );
        }
    }
    Ok(out)
}

/// One `ike=` item: every combination it names, in the order written.
pub fn parse_ike_proposal(item: &str) -> Result<Vec<IkeProposal>, String> {
    ike_item(item).map_err(|e| e.message)
}

/// One `esp=` item (`phase2 = Esp`) or, with `phase2 = Ah`, one AH item (integrity only).
pub fn parse_esp_proposal(item: &str, phase2: Phase2Proto) -> Result<Vec<EspProposal>, String> {
    esp_item(item, phase2).map_err(|e| e.message)
}

/// A parsed list: the proposals, and one line per item dropped because ferroswan does not
/// implement one of its algorithms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub proposals: Vec<T>,
    pub skipped: Vec<String>,
}

fn list<T: PartialEq, S: AsRef<str>>(
    items: &[S],
    one: impl Fn(&str) -> PResult<Vec<T>>,
) -> Result<Parsed<T>, String> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for item in items {
        for sub in item.as_ref().split(',') {
            match one(sub) {
                Ok(v) => {
                    for p in v {
                        dedup_push(&mut out, p);
                    }
                }
                Err(e) if e.unsupported => skipped.push(format!("`{}` skipped: {e}", sub.trim())),
                Err(e) => return Err(e.message),
            }
        }
    }
    if out.is_empty() {
        return Err(if skipped.is_empty() {
            "no proposal".into()
        } else {
            format!("no proposal ferroswan supports ({})", skipped.join("; "))
        });
    }
    if out.len() > MAX_PROPOSALS {
        return Err(format!("{} proposals, at most {MAX_PROPOSALS}", out.len()));
    }
    Ok(Parsed {
        proposals: out,
        skipped,
    })
}

/// An `ike=` list (items may themselves hold commas).
pub fn parse_ike_list<S: AsRef<str>>(items: &[S]) -> Result<Parsed<IkeProposal>, String> {
    list(items, ike_item)
}

/// An `esp=` list.
pub fn parse_esp_list<S: AsRef<str>>(
    items: &[S],
    phase2: Phase2Proto,
) -> Result<Parsed<EspProposal>, String> {
    list(items, |s| esp_item(s, phase2))
}

pub fn ike_encr_name(e: IkeEncr) -> String {
    match e {
        IkeEncr::TripleDesCbc => "3DES_CBC".into(),
        IkeEncr::AesCbc { key_bits } => format!("AES_CBC_{key_bits}"),
        IkeEncr::AesGcm {
            key_bits,
            icv_bytes,
        } => format!("AES_GCM_{icv_bytes}_{key_bits}"),
    }
}

pub fn prf_name(p: PrfAlg) -> &'static str {
    match p {
        PrfAlg::HmacMd5 => "MD5",
        PrfAlg::HmacSha1 => "SHA1",
        PrfAlg::HmacSha2_256 => "SHA2_256",
        PrfAlg::HmacSha2_384 => "SHA2_384",
        PrfAlg::HmacSha2_512 => "SHA2_512",
    }
}

pub fn dh_name(g: DhGroup) -> String {
    match g {
        DhGroup::Ecp256 => "ECP_256".into(),
        DhGroup::Ecp384 => "ECP_384".into(),
        DhGroup::Curve25519 => "CURVE25519".into(),
        other => format!(
            "MODP{}",
            match other {
                DhGroup::Modp768 => 768,
                DhGroup::Modp1024 => 1024,
                DhGroup::Modp1536 => 1536,
                DhGroup::Modp2048 => 2048,
                DhGroup::Modp3072 => 3072,
                DhGroup::Modp4096 => 4096,
                DhGroup::Modp6144 => 6144,
                _ => 8192,
            }
        ),
    }
}

/// `AES_CBC_128/SHA1/MODP2048` (IKEv1 style; `/PRF_SHA2_256` for AEAD).
pub fn ike_proposal_name(p: &IkeProposal) -> String {
    match p.integ {
        None => format!(
            "{}/PRF_{}/{}",
            ike_encr_name(p.encr),
            prf_name(p.prf),
            dh_name(p.dh)
        ),
        Some(i) if prf_of(i) == Some(p.prf) => format!(
            "{}/{}/{}",
            ike_encr_name(p.encr),
            prf_name(p.prf),
            dh_name(p.dh)
        ),
        Some(i) => format!(
            "{}/{}/PRF_{}/{}",
            ike_encr_name(p.encr),
            crate::manual::integ_name(i),
            prf_name(p.prf),
            dh_name(p.dh)
        ),
    }
}

/// `AES_CBC_128/HMAC-SHA1-96` (+ `/MODP2048` with a PFS group).
pub fn esp_proposal_name(p: &EspProposal) -> String {
    let mut s = crate::manual::encr_name(p.encr);
    if p.integ != IntegAlg::None {
        s.push('/');
        s.push_str(crate::manual::integ_name(p.integ));
    }
    if let Some(g) = p.pfs_group {
        s.push('/');
        s.push_str(&dh_name(g));
    }
    s
}
