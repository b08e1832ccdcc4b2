//! The typed, validated connection model, built from resolved settings.

use super::error::{Category, Diagnostics, Location};
use super::keywords;
use super::parser::{RawConfig, ResolvedConn, Setting};
use super::policy_groups::PolicyGroup;
use super::values::{self, HostAddr, Id, NextHop, ProtoPort, RsaPubKey, SecretKey, Subnet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// How much the daemons log (`plutodebug=`/`klipsdebug=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LogLevel {
    #[default]
    Info,
    Debug,
    Trace,
}

/// `interfaces=`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Interfaces {
    #[default]
    DefaultRoute,
    None,
    /// `ipsec0=eth0` pairs (FreeS/WAN) or plain interface names.
    List(Vec<String>),
}

/// `config setup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    pub interfaces: Interfaces,
    pub plutodebug: LogLevel,
    pub klipsdebug: LogLevel,
    pub uniqueids: bool,
    /// FreeS/WAN 1.x: conns to load (`%search` = those with `auto=add` or more).
    pub plutoload: Vec<String>,
    /// FreeS/WAN 1.x: conns to start.
    pub plutostart: Vec<String>,
    /// FreeS/WAN 1.x: manual conns to bring up.
    pub manualstart: Vec<String>,
    /// `ctlgroup=`: members of this group (and root) may change state through `ipsecctl`.
    pub ctl_group: String,
    /// `ctlstatus=everyone|group`: who else may read status (`everyone`, the default, or only
    /// root and the group).
    pub status_for_everyone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthBy {
    Secret,
    RsaSig,
    /// Either, the peer's choice (`secret|rsasig`).
    SecretOrRsaSig,
    Null,
    /// No keying (`never`): shunt conns.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Auto {
    Ignore,
    Add,
    /// `route` / `ondemand`: install the policy, negotiate on first packet.
    Route,
    Start,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnType {
    Tunnel,
    Transport,
    Passthrough,
    Drop,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IkeVersion {
    V1,
    V2,
}

/// Which IKE versions a conn initiates and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkePolicy {
    pub initiate: IkeVersion,
    pub accept_v1: bool,
    pub accept_v2: bool,
}

impl IkePolicy {
    pub const V1_ONLY: IkePolicy = IkePolicy { initiate: IkeVersion::V1, accept_v1: true, accept_v2: false };
    pub const V2_ONLY: IkePolicy = IkePolicy { initiate: IkeVersion::V2, accept_v1: false, accept_v2: true };
    pub const V2_OR_V1: IkePolicy = IkePolicy { initiate: IkeVersion::V2, accept_v1: true, accept_v2: true };
    pub const V1_OR_V2: IkePolicy = IkePolicy { initiate: IkeVersion::V1, accept_v1: true, accept_v2: true };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DpdAction {
    Clear,
    Hold,
    Restart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dpd {
    pub delay_secs: u64,
    pub timeout_secs: u64,
    pub action: DpdAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase2Proto {
    Esp,
    Ah,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyingTries {
    Forever,
    Count(u32),
}

/// One end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub host: HostAddr,
    /// Protected subnets (`subnet=` and `subnets=`); empty = the host itself.
    pub subnets: Vec<Subnet>,
    pub nexthop: Option<NextHop>,
    pub id: Option<Id>,
    pub rsasigkeys: Vec<RsaPubKey>,
    pub protoport: Option<ProtoPort>,
    pub sourceip: Option<IpAddr>,
    pub firewall: bool,
    pub updown: Option<String>,
}

/// Manual keys for one direction (the SA whose destination is this end).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManualSide {
    pub esp_spi: Option<u32>,
    pub ah_spi: Option<u32>,
    pub esp_enc_key: Option<SecretKey>,
    pub esp_auth_key: Option<SecretKey>,
    pub ah_key: Option<SecretKey>,
}

/// Manual keying (`auto=manual` / `ipsec manual`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManualKeying {
    pub spi: Option<u32>,
    pub spibase: Option<u32>,
    pub esp: Option<String>,
    pub ah: Option<String>,
    pub esp_enc_key: Option<SecretKey>,
    pub esp_auth_key: Option<SecretKey>,
    pub ah_key: Option<SecretKey>,
    pub esp_replay_window: Option<u32>,
    pub ah_replay_window: Option<u32>,
    pub left: ManualSide,
    pub right: ManualSide,
}

/// A validated connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conn {
    pub name: String,
    /// Where its `conn` line is.
    pub location: Location,
    pub left: End,
    pub right: End,
    pub authby: AuthBy,
    pub auto: Auto,
    pub conn_type: ConnType,
    pub ike_policy: IkePolicy,
    /// `ike=` proposals (empty: built-in defaults).
    pub ike: Vec<String>,
    /// `esp=`/`phase2alg=` proposals (empty: built-in defaults).
    pub esp: Vec<String>,
    pub phase2: Phase2Proto,
    pub pfs: bool,
    pub ike_lifetime_secs: u64,
    pub sa_lifetime_secs: u64,
    pub rekey: bool,
    pub rekey_margin_secs: u64,
    pub rekey_fuzz_percent: u32,
    pub keying_tries: KeyingTries,
    pub dpd: Option<Dpd>,
    /// Present when the conn is manually keyed.
    pub manual: Option<ManualKeying>,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Config {
    pub setup: Setup,
    /// Loadable conns in file order (`also=` fragments are folded into them, not listed).
    pub conns: Vec<Conn>,
    pub policy_groups: Vec<PolicyGroup>,
}

impl Config {
    pub fn conn(&self, name: &str) -> Option<&Conn> {
        self.conns.iter().find(|c| c.name == name)
    }
}

// Defaults as in FreeS/WAN's ipsec.conf(5).
pub const DEFAULT_IKE_LIFETIME: u64 = 3600;
pub const DEFAULT_SA_LIFETIME: u64 = 8 * 3600;
pub const DEFAULT_REKEY_MARGIN: u64 = 9 * 60;
pub const DEFAULT_REKEY_FUZZ: u32 = 100;
pub const DEFAULT_KEYING_TRIES: u32 = 3;
pub const DEFAULT_DPD_TIMEOUT: u64 = 120;
/// Upper bounds (FreeS/WAN's own limits).
pub const MAX_IKE_LIFETIME: u64 = 24 * 3600;
pub const MAX_SA_LIFETIME: u64 = 24 * 3600;

fn bad(diags: &mut Diagnostics, s: &Setting, msg: impl std::fmt::Display) {
    let msg = msg.to_string();
    let category = if msg.contains("not supported") { Category::Unsupported } else { Category::BadValue };
    diags.error(&s.loc, category, format!("{}={}: {msg}", s.key, s.value));
}

fn enum_value<T: Copy>(diags: &mut Diagnostics, s: &Setting, table: &[(&'static str, T)]) -> Option<T> {
    let v = s.value.to_ascii_lowercase();
    if let Some((_, t)) = table.iter().find(|(n, _)| *n == v) {
        return Some(*t);
    }
    let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
    let hint = keywords::suggest(&v, names.iter().copied()).map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default();
    diags.error(
        &s.loc,
        Category::BadValue,
        format!("{}={}: expected one of {}{hint}", s.key, s.value, names.join(", ")),
    );
    None
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            interfaces: Interfaces::default(),
            plutodebug: LogLevel::default(),
            klipsdebug: LogLevel::default(),
            uniqueids: true,
            plutoload: Vec::new(),
            plutostart: Vec::new(),
            manualstart: Vec::new(),
            ctl_group: DEFAULT_CTL_GROUP.to_string(),
            status_for_everyone: true,
        }
    }
}

/// The operators' group when `ctlgroup=` says nothing.
pub const DEFAULT_CTL_GROUP: &str = "ipsec";

/// Build `config setup`.
pub fn build_setup(settings: &[Setting], diags: &mut Diagnostics) -> Setup {
    let mut setup = Setup::default();
    for s in settings {
        let v = s.value.trim();
        match s.key.to_ascii_lowercase().as_str() {
            "interfaces" => {
                setup.interfaces = match v.to_ascii_lowercase().as_str() {
                    "%defaultroute" => Interfaces::DefaultRoute,
                    "%none" | "" => Interfaces::None,
                    _ => Interfaces::List(v.split_whitespace().map(str::to_string).collect()),
                }
            }
            "plutodebug" => setup.plutodebug = log_level(v),
            "klipsdebug" => setup.klipsdebug = log_level(v),
            "uniqueids" => match values::parse_bool(v) {
                Ok(b) => setup.uniqueids = b,
                Err(e) => bad(diags, s, e),
            },
            "plutoload" => setup.plutoload = name_list(v),
            "plutostart" => setup.plutostart = name_list(v),
            "manualstart" => setup.manualstart = name_list(v),
            "ctlgroup" => {
                let ok = !v.is_empty()
                    && v.len() <= 32
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
                if ok {
                    setup.ctl_group = v.to_string();
                } else {
                    bad(diags, s, format!("{v:?} is not a group name"));
                }
            }
            "ctlstatus" => match v.to_ascii_lowercase().as_str() {
                "everyone" => setup.status_for_everyone = true,
                "group" => setup.status_for_everyone = false,
                _ => bad(diags, s, format!("{v:?}: expected everyone or group")),
            },
            _ => {}
        }
    }
    setup
}

fn name_list(v: &str) -> Vec<String> {
    v.split([' ', '\t', ',']).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// `none` → Info, `all`/`private`/`crypt` → Trace, other lists → Debug. Unknown flag names are
/// not errors: pluto's set of debug flags changed in every release.
fn log_level(v: &str) -> LogLevel {
    let words = name_list(&v.to_ascii_lowercase());
    if words.is_empty() || words.iter().all(|w| w == "none" || w == "\"\"") {
        LogLevel::Info
    } else if words.iter().any(|w| matches!(w.as_str(), "all" | "private" | "crypt" | "raw")) {
        LogLevel::Trace
    } else {
        LogLevel::Debug
    }
}

struct Get<'a> {
    settings: &'a BTreeMap<String, Setting>,
}

impl<'a> Get<'a> {
    fn get(&self, key: &str) -> Option<&'a Setting> {
        self.settings.get(key)
    }
}

fn build_end(g: &Get<'_>, side: &str, diags: &mut Diagnostics) -> Option<End> {
    let key = |k: &str| format!("{side}{k}");
    let host = match g.get(side) {
        Some(s) => match values::parse_host(s.value.trim()) {
            Ok(h) => Some(h),
            Err(e) => {
                bad(diags, s, e);
                None
            }
        },
        None => None,
    };
    let mut subnets = Vec::new();
    if let Some(s) = g.get(&key("subnet")) {
        if s.value.trim().contains([',', ' ', '{']) {
            match values::parse_subnet_list(&s.value) {
                Ok(v) => subnets.extend(v),
                Err(e) => bad(diags, s, e),
            }
        } else {
            match values::parse_subnet(s.value.trim()) {
                Ok(v) => subnets.push(v),
                Err(e) => bad(diags, s, e),
            }
        }
    }
    if let Some(s) = g.get(&key("subnets")) {
        match values::parse_subnet_list(&s.value) {
            Ok(v) => subnets.extend(v),
            Err(e) => bad(diags, s, e),
        }
    }
    let mut parsed = |k: &str, f: &dyn Fn(&str) -> Result<(), String>| {
        if let Some(s) = g.get(&key(k)) {
            if let Err(e) = f(s.value.trim()) {
                bad(diags, s, e);
            }
        }
    };
    let nexthop = std::cell::RefCell::new(None);
    parsed("nexthop", &|v| values::parse_nexthop(v).map(|n| *nexthop.borrow_mut() = Some(n)));
    let id = std::cell::RefCell::new(None);
    parsed("id", &|v| values::parse_id(v).map(|n| *id.borrow_mut() = Some(n)));
    let keys = std::cell::RefCell::new(Vec::new());
    for k in ["rsasigkey", "rsasigkey2"] {
        parsed(k, &|v| {
            if v.eq_ignore_ascii_case("%none") || v.is_empty() {
                return Ok(());
            }
            values::parse_rsa_key(v).map(|n| keys.borrow_mut().push(n))
        });
    }
    let protoport = std::cell::RefCell::new(None);
    parsed("protoport", &|v| values::parse_protoport(v).map(|n| *protoport.borrow_mut() = Some(n)));
    let sourceip = std::cell::RefCell::new(None);
    parsed("sourceip", &|v| values::parse_ip(v).map(|n| *sourceip.borrow_mut() = Some(n)));
    let firewall = std::cell::Cell::new(false);
    parsed("firewall", &|v| values::parse_bool(v).map(|b| firewall.set(b)));
    let updown = g.get(&key("updown")).map(|s| s.value.clone()).filter(|v| !v.is_empty() && v != "%disabled");
    let host = host?;
    Some(End {
        host,
        subnets,
        nexthop: nexthop.into_inner(),
        id: id.into_inner(),
        rsasigkeys: keys.into_inner(),
        protoport: protoport.into_inner(),
        sourceip: sourceip.into_inner(),
        firewall: firewall.get(),
        updown,
    })
}

fn duration(g: &Get<'_>, keys: &[&str], default: u64, max: u64, diags: &mut Diagnostics) -> u64 {
    for k in keys {
        if let Some(s) = g.get(k) {
            return match values::parse_duration(s.value.trim()) {
                Ok(d) if d <= max => d,
                Ok(_) => {
                    bad(diags, s, format!("at most {max} seconds"));
                    default
                }
                Err(e) => {
                    bad(diags, s, e);
                    default
                }
            };
        }
    }
    default
}

fn boolean(g: &Get<'_>, key: &str, default: bool, diags: &mut Diagnostics) -> bool {
    match g.get(key) {
        Some(s) => values::parse_bool(s.value.trim()).unwrap_or_else(|e| {
            bad(diags, s, e);
            default
        }),
        None => default,
    }
}

fn secret(g: &Get<'_>, key: &str, diags: &mut Diagnostics) -> Option<SecretKey> {
    let s = g.get(key)?;
    match values::parse_secret_key(s.value.trim()) {
        Ok(k) => Some(k),
        Err(e) => {
            // never echo key material
            diags.error(&s.loc, Category::BadValue, format!("{}: {e}", s.key));
            None
        }
    }
}

fn spi(g: &Get<'_>, key: &str, diags: &mut Diagnostics) -> Option<u32> {
    let s = g.get(key)?;
    values::parse_spi(s.value.trim()).map_err(|e| bad(diags, s, e)).ok()
}

const MANUAL_KEYS: &[&str] = &[
    "spi", "spibase", "espenckey", "espauthkey", "ahkey", "leftespspi", "rightespspi", "leftahspi", "rightahspi",
    "leftespenckey", "rightespenckey", "leftespauthkey", "rightespauthkey", "leftahkey", "rightahkey",
];

fn build_manual(g: &Get<'_>, auto: Auto, diags: &mut Diagnostics) -> Option<ManualKeying> {
    let any_manual = MANUAL_KEYS.iter().any(|k| g.get(k).is_some());
    if !any_manual && auto != Auto::Manual {
        return None;
    }
    let side = |p: &str, diags: &mut Diagnostics| ManualSide {
        esp_spi: spi(g, &format!("{p}espspi"), diags),
        ah_spi: spi(g, &format!("{p}ahspi"), diags),
        esp_enc_key: secret(g, &format!("{p}espenckey"), diags),
        esp_auth_key: secret(g, &format!("{p}espauthkey"), diags),
        ah_key: secret(g, &format!("{p}ahkey"), diags),
    };
    let window = |k: &str, diags: &mut Diagnostics| {
        let s = g.get(k)?;
        values::parse_number(s.value.trim(), 0, 64)
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .or_else(|| {
                bad(diags, s, "expected a replay window of 0 to 64 packets");
                None
            })
    };
    Some(ManualKeying {
        spi: spi(g, "spi", diags),
        spibase: spi(g, "spibase", diags),
        esp: g.get("esp").map(|s| s.value.clone()),
        ah: g.get("ah").map(|s| s.value.clone()),
        esp_enc_key: secret(g, "espenckey", diags),
        esp_auth_key: secret(g, "espauthkey", diags),
        ah_key: secret(g, "ahkey", diags),
        esp_replay_window: window("espreplay_window", diags),
        ah_replay_window: window("ahreplay_window", diags),
        left: side("left", diags),
        right: side("right", diags),
    })
}

fn ike_policy(g: &Get<'_>, diags: &mut Diagnostics) -> IkePolicy {
    let kx = g.get("keyexchange").and_then(|s| {
        enum_value(
            diags,
            s,
            &[("ikev1", Some(IkePolicy::V1_ONLY)), ("ikev2", Some(IkePolicy::V2_ONLY)), ("ike", None)],
        )
        .map(|p| (p, s))
    });
    let v2 = g.get("ikev2").and_then(|s| {
        enum_value(
            diags,
            s,
            &[
                ("no", IkePolicy::V1_ONLY),
                ("never", IkePolicy::V1_ONLY),
                ("permit", IkePolicy::V1_OR_V2),
                ("propose", IkePolicy::V2_OR_V1),
                ("yes", IkePolicy::V2_ONLY),
                ("y", IkePolicy::V2_ONLY),
                ("n", IkePolicy::V1_ONLY),
                ("insist", IkePolicy::V2_ONLY),
            ],
        )
        .map(|p| (p, s))
    });
    match (kx, v2) {
        (None, None) => IkePolicy::V1_ONLY,
        (Some((Some(p), _)), None) => p,
        (Some((None, _)), None) => IkePolicy::V2_OR_V1,
        (None | Some((None, _)), Some((p, _))) => p,
        (Some((Some(p), kxs)), Some((q, v2s))) => {
            if p.initiate != q.initiate {
                diags.error(
                    &v2s.loc,
                    Category::BadConn,
                    format!("ikev2={} contradicts keyexchange={} (line {})", v2s.value, kxs.value, kxs.loc.line),
                );
            }
            p
        }
    }
}

/// Libreswan's `leftauth=`/`rightauth=`: accepted when both sides use the same method
/// (then it is the same as `authby=`); asymmetric authentication is not supported.
fn side_auth(g: &Get<'_>, authby: AuthBy, diags: &mut Diagnostics) -> AuthBy {
    let (l, r) = (g.get("leftauth"), g.get("rightauth"));
    let Some(first) = l.or(r) else { return authby };
    let method = |s: &Setting| match s.value.to_ascii_lowercase().as_str() {
        "secret" => Ok(AuthBy::Secret),
        "rsasig" | "rsa" => Ok(AuthBy::RsaSig),
        "null" => Ok(AuthBy::Null),
        "never" => Ok(AuthBy::Never),
        "eaponly" | "eap" => Err("EAP is not supported".to_string()),
        "ecdsa" | "eddsa" => Err("ECDSA/EdDSA signatures are not supported".to_string()),
        "pubkey" | "psk" | "xauth" | "xauthpsk" | "xauthrsasig" => {
            Err(format!("`{}` is strongSwan's; ferroswan reads authby=", s.value))
        }
        _ => Err("expected secret, rsasig, null or never".to_string()),
    };
    let lm = l.map(|s| (s, method(s)));
    let rm = r.map(|s| (s, method(s)));
    for (s, m) in lm.iter().chain(rm.iter()) {
        if let Err(e) = m {
            bad(diags, s, e);
            return authby;
        }
    }
    match (lm, rm) {
        (Some((_, Ok(a))), Some((rs, Ok(b)))) if a != b => {
            diags.error(
                &rs.loc,
                Category::Unsupported,
                format!("{}={}: different methods per side (asymmetric authentication) are not supported", rs.key, rs.value),
            );
            authby
        }
        (Some((_, Ok(a))), _) | (None, Some((_, Ok(a)))) => {
            if g.get("authby").is_some() && a != authby {
                diags.error(&first.loc, Category::BadConn, format!("{}={} contradicts authby=", first.key, first.value));
            }
            a
        }
        _ => authby,
    }
}

/// Build one conn. `None` when it has errors (they are in `diags`).
pub fn build_conn(rc: &ResolvedConn, diags: &mut Diagnostics) -> Option<Conn> {
    let before = diags.errors.len();
    let g = Get { settings: &rc.settings };
    let left = build_end(&g, "left", diags);
    let right = build_end(&g, "right", diags);
    let authby = g
        .get("authby")
        .and_then(|s| {
            let v = s.value.to_ascii_lowercase().replace(['|', ' '], ",");
            let v = v.split(',').filter(|x| !x.is_empty()).collect::<Vec<_>>();
            let rsa = |x: &&str| x.starts_with("rsa") || *x == "rsasig";
            match v.as_slice() {
                ["secret"] | ["psk"] => Some(AuthBy::Secret),
                [x] if rsa(x) => Some(AuthBy::RsaSig),
                ["null"] => Some(AuthBy::Null),
                ["never"] => Some(AuthBy::Never),
                list if list.iter().all(|x| rsa(x) || *x == "secret") && list.contains(&"secret") => {
                    Some(AuthBy::SecretOrRsaSig)
                }
                list if list.iter().all(rsa) && !list.is_empty() => Some(AuthBy::RsaSig),
                list if list.iter().any(|x| x.starts_with("ecdsa") || x.starts_with("eddsa")) => {
                    diags.error(&s.loc, Category::Unsupported, format!("authby={}: ECDSA/EdDSA signatures are not supported", s.value));
                    None
                }
                _ => {
                    bad(diags, s, "expected secret, rsasig, secret|rsasig, null or never");
                    None
                }
            }
        })
        .unwrap_or(AuthBy::RsaSig);
    let authby = side_auth(&g, authby, diags);
    let auto = g
        .get("auto")
        .and_then(|s| {
            enum_value(
                diags,
                s,
                &[
                    ("add", Auto::Add),
                    ("start", Auto::Start),
                    ("up", Auto::Start),
                    ("route", Auto::Route),
                    ("ondemand", Auto::Route),
                    ("ignore", Auto::Ignore),
                    ("manual", Auto::Manual),
                ],
            )
        })
        .unwrap_or(Auto::Ignore);
    let conn_type = g
        .get("type")
        .and_then(|s| {
            enum_value(
                diags,
                s,
                &[
                    ("tunnel", ConnType::Tunnel),
                    ("transport", ConnType::Transport),
                    ("passthrough", ConnType::Passthrough),
                    ("pass", ConnType::Passthrough),
                    ("drop", ConnType::Drop),
                    ("reject", ConnType::Reject),
                ],
            )
        })
        .unwrap_or(ConnType::Tunnel);
    let ike_policy = ike_policy(&g, diags);
    let proposals = |key: &str, diags: &mut Diagnostics| match g.get(key) {
        Some(s) => values::parse_proposals(s.value.trim()).unwrap_or_else(|e| {
            bad(diags, s, e);
            Vec::new()
        }),
        None => Vec::new(),
    };
    let ike = proposals("ike", diags);
    let mut esp = proposals("esp", diags);
    if let Some(s) = g.get("phase2alg") {
        if g.get("esp").is_some() {
            diags.warn(&s.loc, Category::Duplicate, "phase2alg= and esp= both set: esp= wins");
        } else {
            esp = proposals("phase2alg", diags);
        }
    }
    let mut phase2 = Phase2Proto::Esp;
    for k in ["phase2", "auth"] {
        if let Some(s) = g.get(k) {
            if let Some(p) = enum_value(diags, s, &[("esp", Phase2Proto::Esp), ("ah", Phase2Proto::Ah)]) {
                phase2 = p;
            }
        }
    }
    let ike_lifetime_secs = duration(&g, &["ikelifetime"], DEFAULT_IKE_LIFETIME, MAX_IKE_LIFETIME, diags);
    let sa_lifetime_secs = duration(&g, &["salifetime", "keylife"], DEFAULT_SA_LIFETIME, MAX_SA_LIFETIME, diags);
    let rekey_margin_secs = duration(&g, &["rekeymargin"], DEFAULT_REKEY_MARGIN, MAX_SA_LIFETIME, diags);
    let rekey_fuzz_percent = g
        .get("rekeyfuzz")
        .and_then(|s| values::parse_percent(s.value.trim()).map_err(|e| bad(diags, s, e)).ok())
        .unwrap_or(DEFAULT_REKEY_FUZZ);
    let keying_tries = g
        .get("keyingtries")
        .and_then(|s| {
            let v = s.value.trim();
            if v.eq_ignore_ascii_case("%forever") || v == "0" {
                Some(KeyingTries::Forever)
            } else {
                values::parse_number(v, 1, 1_000_000)
                    .ok()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(KeyingTries::Count)
                    .or_else(|| {
                        bad(diags, s, "expected a number or %forever");
                        None
                    })
            }
        })
        .unwrap_or(KeyingTries::Count(DEFAULT_KEYING_TRIES));
    let pfs = boolean(&g, "pfs", true, diags);
    let rekey = boolean(&g, "rekey", true, diags);
    let dpd = {
        let delay = g.get("dpddelay").map(|_| duration(&g, &["dpddelay"], 0, MAX_SA_LIFETIME, diags));
        let timeout = duration(&g, &["dpdtimeout"], DEFAULT_DPD_TIMEOUT, MAX_SA_LIFETIME, diags);
        let action = g
            .get("dpdaction")
            .and_then(|s| {
                enum_value(
                    diags,
                    s,
                    &[("clear", DpdAction::Clear), ("hold", DpdAction::Hold), ("restart", DpdAction::Restart)],
                )
            })
            .unwrap_or(DpdAction::Hold);
        match delay {
            Some(d) if d > 0 => Some(Dpd { delay_secs: d, timeout_secs: timeout, action }),
            _ => {
                for k in ["dpdtimeout", "dpdaction"] {
                    if let Some(s) = g.get(k) {
                        diags.warn(&s.loc, Category::BadConn, format!("{k}= has no effect without dpddelay="));
                    }
                }
                None
            }
        }
    };
    let manual = build_manual(&g, auto, diags);
    let (left, right) = match (left, right) {
        (Some(l), Some(r)) => (l, r),
        (l, r) => {
            if diags.errors.len() == before {
                let missing = match (l.is_none(), r.is_none()) {
                    (true, true) => "left= and right=",
                    (true, false) => "left=",
                    _ => "right=",
                };
                let missing_host = |side: &str| !rc.settings.contains_key(side);
                if auto == Auto::Ignore && (missing_host("left") || missing_host("right")) {
                    // an incomplete template nobody starts: not loadable, but not an error
                    diags.warn(&rc.loc, Category::BadConn, format!("conn `{}` has no {missing}: not loaded", rc.name));
                } else {
                    diags.error(&rc.loc, Category::BadConn, format!("conn `{}` has no {missing}", rc.name));
                }
            }
            return None;
        }
    };
    let conn = Conn {
        name: rc.name.clone(),
        location: rc.loc.clone(),
        left,
        right,
        authby,
        auto,
        conn_type,
        ike_policy,
        ike,
        esp,
        phase2,
        pfs,
        ike_lifetime_secs,
        sa_lifetime_secs,
        rekey,
        rekey_margin_secs,
        rekey_fuzz_percent,
        keying_tries,
        dpd,
        manual,
    };
    check_conn(&conn, &g, diags);
    (diags.errors.len() == before).then_some(conn)
}

/// Whole-conn consistency checks.
fn check_conn(c: &Conn, g: &Get<'_>, diags: &mut Diagnostics) {
    if matches!(c.left.host, HostAddr::Any) && matches!(c.right.host, HostAddr::Any) {
        diags.error(&c.location, Category::BadConn, format!("conn `{}`: both left and right are %any", c.name));
    }
    if c.rekey_margin_secs >= c.sa_lifetime_secs && g.get("rekeymargin").is_some() {
        if let Some(s) = g.get("rekeymargin") {
            bad(diags, s, "rekeymargin must be shorter than the SA lifetime");
        }
    }
    if c.authby == AuthBy::RsaSig && c.manual.is_none() && matches!(c.conn_type, ConnType::Tunnel | ConnType::Transport) {
        // keys may come from ipsec.secrets or DNS in FreeS/WAN; we only warn when neither side has one
        if c.left.rsasigkeys.is_empty() && c.right.rsasigkeys.is_empty() && g.get("authby").is_some() && c.auto != Auto::Ignore {
            diags.warn(
                &c.location,
                Category::BadConn,
                format!("conn `{}`: authby=rsasig but no leftrsasigkey=/rightrsasigkey=", c.name),
            );
        }
    }
    if let Some(m) = &c.manual {
        if c.auto != Auto::Manual && c.auto != Auto::Ignore && c.auto != Auto::Add {
            diags.warn(&c.location, Category::BadConn, format!("conn `{}`: manual keys with auto={:?}", c.name, c.auto));
        }
        let has_spi = m.spi.is_some() || m.left.esp_spi.is_some() || m.left.ah_spi.is_some() || m.spibase.is_some();
        if !has_spi {
            diags.error(&c.location, Category::BadConn, format!("conn `{}`: manually keyed but no spi=", c.name));
        }
    }
}

/// Build the typed model from resolved conns. Fragments are type-checked through the conns that
/// use them and not listed.
pub fn build_config(raw: &RawConfig, resolved: &[ResolvedConn], diags: &mut Diagnostics) -> Config {
    let setup = build_setup(&raw.setup, diags);
    let mut conns = Vec::new();
    for rc in resolved {
        if rc.fragment {
            continue;
        }
        if let Some(c) = build_conn(rc, diags) {
            conns.push(c);
        }
    }
    Config { setup, conns, policy_groups: Vec::new() }
}
