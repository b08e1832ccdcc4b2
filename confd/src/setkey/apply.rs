//! The SAs and policies confd keeps for setkey, a script applied to them, and what fwd installs for
//! them ([`to_conn_state`]: the whole set as one conn named `setkey`).
//!
//! Applying is all or nothing: [`apply`] returns a new state, and the caller swaps it in only when
//! the whole script succeeded (and fwd accepted the converted state).
//!
//! # From setkey's model to fwd's
//!
//! * Each SA is inbound if its destination is an address of this host, outbound if its source is;
//!   neither is an error naming the SA (the script is probably the other gateway's).
//! * A policy's `esp/…` and `ah/…` requests name the SAs that match them as the kernel's template
//!   lookup would: the protocol, and the endpoints (`A-B` in tunnel mode, the selector's two hosts
//!   in transport mode). Several SAs matching: the last added is used (with a note).
//! * A `require` (or `unique`) policy whose SA is missing is still installed: an outbound one as a
//!   trap (its traffic is dropped, never sent in the clear), an inbound one as a drop. `use` and
//!   `default` are enforced as `require`: ferroswan never falls back to cleartext. Notes say so.
//! * `-P fwd` policies are accepted and ignored with a note: in fwd's userspace datapath decrypted
//!   packets are checked against the `in` policies, and Linux's separate forward check has nothing to
//!   apply to.
//! * `none` is `Pass` (outbound: a throw route, cleartext), `discard` is `Drop`.
//! * Priorities as manual conns have them: `1000 - (source prefix + destination prefix)`.
//! * SAs get no lifetime, no ESN, no UDP encapsulation, replay window `-r` or 0. `-m any` SAs take
//!   the mode of the policies that use them.
//! * AES-GCM and AES-CTR are refused, as for manual conns (RFC 4106, RFC 3686: a manual SA restarts
//!   its counter, the nonce, with every restart), unless the caller passes `insecure_aead`.

use super::model::{
    sa_mode, IpsecRequest, Level, Located, PolicyAction, PolicyDir, SaEntry, SetkeyError, SpdEntry,
    Statement,
};
use super::render;
use crate::manual::{is_counter_mode, COUNTER_MODE_REFUSAL};
use ipc::policy::{self, ConnState, Net, PolicySpec, Ports, TrafficSelector};
use ipc::sa::{
    Direction, EncrAlg, IntegAlg, IpsecProto, SaId, SaLifetime, SaMode, SaSpec, SecretBytes,
};
use std::net::IpAddr;

/// The conn name setkey's SAs and policies carry in fwd.
pub const CONN_NAME: &str = "setkey";
/// fwd's limits for one conn (`fwd::datapath::control`).
pub const MAX_SAS: usize = 64;
pub const MAX_POLICIES: usize = 256;

/// What confd holds for setkey: SAs and policies, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetkeyState {
    sas: Vec<SaEntry>,
    policies: Vec<SpdEntry>,
}

impl SetkeyState {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn sas(&self) -> &[SaEntry] {
        &self.sas
    }
    pub fn policies(&self) -> &[SpdEntry] {
        &self.policies
    }
    pub fn is_empty(&self) -> bool {
        self.sas.is_empty() && self.policies.is_empty()
    }
}

/// The tables while a script runs, each entry with the line that added it (0: an earlier script).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tables {
    pub sas: Vec<Located<SaEntry>>,
    pub policies: Vec<Located<SpdEntry>>,
}

impl Tables {
    fn of(state: &SetkeyState) -> Self {
        fn at0<T>(item: T) -> Located<T> {
            Located { line: 0, item }
        }
        Tables {
            sas: state.sas.iter().cloned().map(at0).collect(),
            policies: state.policies.iter().cloned().map(at0).collect(),
        }
    }
    fn into_state(self) -> SetkeyState {
        SetkeyState {
            sas: self.sas.into_iter().map(|l| l.item).collect(),
            policies: self.policies.into_iter().map(|l| l.item).collect(),
        }
    }
    fn plain_sas(&self) -> Vec<SaEntry> {
        self.sas.iter().map(|l| l.item.clone()).collect()
    }
    fn plain_policies(&self) -> Vec<SpdEntry> {
        self.policies.iter().map(|l| l.item.clone()).collect()
    }
}

/// `esp SA 0x1001 from 192.0.2.1 to 192.0.2.2`.
pub(crate) fn sa_desc(s: &SaEntry) -> String {
    format!(
        "{} SA {:#x} from {} to {}",
        render::proto_name(s.proto),
        s.spi,
        s.src,
        s.dst
    )
}

/// `` `10.1.0.0/24[any] 10.2.0.0/24[any] any -P out` ``.
pub(crate) fn policy_desc(p: &SpdEntry) -> String {
    format!(
        "`{} -P {}`",
        render::selector_text(p),
        render::dir_name(p.dir)
    )
}

fn added_at(line: usize) -> String {
    if line == 0 {
        "by an earlier script".into()
    } else {
        format!("on line {line}")
    }
}

type SpdKey = (Net, Option<u16>, Net, Option<u16>, u8, PolicyDir);

fn spd_key(p: &SpdEntry) -> SpdKey {
    (p.src, p.src_port, p.dst, p.dst_port, p.upper, p.dir)
}

/// Run `stmts` against `t`; output lines of dump/spddump/get go to `out`. Every failing statement
/// is reported (and skipped, so later ones are still checked).
pub(crate) fn run(
    t: &mut Tables,
    stmts: &[Located<Statement>],
    file: &str,
    show_keys: bool,
    out: &mut Vec<String>,
) -> Vec<SetkeyError> {
    let mut errs = Vec::new();
    for st in stmts {
        let line = st.line;
        let mut fail = |message: String| {
            if errs.len() < super::parser::MAX_ERRORS {
                errs.push(SetkeyError {
                    file: file.to_string(),
                    line,
                    message,
                });
            }
        };
        match &st.item {
            Statement::Flush(p) => t.sas.retain(|s| p.is_some_and(|p| s.item.proto != p)),
            Statement::SpdFlush => t.policies.clear(),
            Statement::Add(sa) => {
                if let Some(old) = t.sas.iter().find(|o| {
                    o.item.spi == sa.spi && o.item.proto == sa.proto && o.item.dst == sa.dst
                }) {
                    fail(format!(
                        "`add`: an {} SA with SPI {:#x} to {} exists already (added {})",
                        render::proto_name(sa.proto).to_ascii_uppercase(),
                        sa.spi,
                        sa.dst,
                        added_at(old.line)
                    ));
                } else {
                    t.sas.push(Located {
                        line,
                        item: sa.clone(),
                    });
                }
            }
            Statement::Delete {
                src,
                dst,
                proto,
                spi,
            }
            | Statement::Get {
                src,
                dst,
                proto,
                spi,
            } => {
                let is_get = matches!(st.item, Statement::Get { .. });
                let pos = t.sas.iter().position(|o| {
                    o.item.src == *src
                        && o.item.dst == *dst
                        && o.item.proto == *proto
                        && o.item.spi == *spi
                });
                match pos {
                    None => fail(format!(
                        "`{}`: no {} SA with SPI {:#x} from {src} to {dst}",
                        if is_get { "get" } else { "delete" },
                        render::proto_name(*proto),
                        spi
                    )),
                    Some(i) if is_get => {
                        if let Some(s) = t.sas.get(i) {
                            out.extend(render::sa_lines(&s.item, show_keys, 0));
                        }
                    }
                    Some(i) => {
                        t.sas.remove(i);
                    }
                }
            }
            Statement::DeleteAll { src, dst, proto } => t
                .sas
                .retain(|o| !(o.item.src == *src && o.item.dst == *dst && o.item.proto == *proto)),
            Statement::SpdAdd(p) => {
                let key = spd_key(p);
                if let Some(old) = t.policies.iter().find(|o| spd_key(&o.item) == key) {
                    fail(format!(
                        "`spdadd`: a policy for {} exists already (added {})",
                        policy_desc(p),
                        added_at(old.line)
                    ));
                } else {
                    t.policies.push(Located {
                        line,
                        item: p.clone(),
                    });
                }
            }
            Statement::SpdDelete {
                src,
                src_port,
                dst,
                dst_port,
                upper,
                dir,
            } => {
                let key = (*src, *src_port, *dst, *dst_port, *upper, *dir);
                match t.policies.iter().position(|o| spd_key(&o.item) == key) {
                    Some(i) => {
                        t.policies.remove(i);
                    }
                    None => fail(format!(
                        "`spddelete`: no policy for `{} -P {}`",
                        render::selector_text(&SpdEntry {
                            src: *src,
                            src_port: *src_port,
                            dst: *dst,
                            dst_port: *dst_port,
                            upper: *upper,
                            dir: *dir,
                            action: PolicyAction::None,
                        }),
                        render::dir_name(*dir)
                    )),
                }
            }
            Statement::Dump(p) => out.extend(render::dump(&t.plain_sas(), *p, show_keys)),
            Statement::SpdDump => out.extend(render::spddump(&t.plain_policies())),
        }
    }
    errs
}

/// Apply a parsed script to `state`: the new state and the output of its `dump`/`spddump`/`get`
/// statements (one string per line; keys not shown), or every error. `state` itself never changes.
pub fn apply(
    state: &SetkeyState,
    stmts: &[Located<Statement>],
    file: &str,
) -> Result<(SetkeyState, Vec<String>), Vec<SetkeyError>> {
    apply_with(state, stmts, file, false)
}

/// [`apply`], with keys shown in `dump` and `get` output when `show_keys` (root only).
pub fn apply_with(
    state: &SetkeyState,
    stmts: &[Located<Statement>],
    file: &str,
    show_keys: bool,
) -> Result<(SetkeyState, Vec<String>), Vec<SetkeyError>> {
    let mut t = Tables::of(state);
    let mut out = Vec::new();
    let errs = run(&mut t, stmts, file, show_keys, &mut out);
    if errs.is_empty() {
        Ok((t.into_state(), out))
    } else {
        Err(errs)
    }
}

/// Run a script from an empty state, keeping the line of each entry (for the importer).
pub(crate) fn tables_of(
    stmts: &[Located<Statement>],
    file: &str,
) -> Result<Tables, Vec<SetkeyError>> {
    let mut t = Tables::default();
    let mut out = Vec::new();
    let errs = run(&mut t, stmts, file, false, &mut out);
    if errs.is_empty() {
        Ok(t)
    } else {
        Err(errs)
    }
}

fn host_len(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

/// The SA endpoints a request's template names: `A-B` in tunnel mode, the selector's hosts in
/// transport mode (which must then be host selectors).
pub(crate) fn template_ends(p: &SpdEntry, r: &IpsecRequest) -> Result<(IpAddr, IpAddr), String> {
    match (r.mode, r.endpoints) {
        (SaMode::Tunnel, Some(ends)) => Ok(ends),
        (SaMode::Tunnel, None) => Err(format!(
            "policy {}: {} has no tunnel endpoints",
            policy_desc(p),
            render::request_text(r)
        )),
        (SaMode::Transport, _) => {
            if p.src.prefix != host_len(&p.src.addr) || p.dst.prefix != host_len(&p.dst.addr) {
                return Err(format!(
                    "policy {}: transport mode protects traffic between two hosts, so its selector must be two host addresses (use tunnel mode for subnets)",
                    policy_desc(p)
                ));
            }
            Ok((p.src.addr, p.dst.addr))
        }
    }
}

/// What a request's template matched.
pub(crate) struct Match {
    pub ends: (IpAddr, IpAddr),
    /// The SA used (the last added that matches), if any.
    pub sa: Option<usize>,
    /// How many SAs matched in all.
    pub count: usize,
}

/// Match a request against the SAs, as the kernel's template lookup does (protocol and
/// endpoints; an SA with an explicit `-m` must have the request's mode).
pub(crate) fn match_request(
    sas: &[SaEntry],
    p: &SpdEntry,
    r: &IpsecRequest,
) -> Result<Match, String> {
    let ends = template_ends(p, r)?;
    let same_ends: Vec<usize> = sas
        .iter()
        .enumerate()
        .filter(|(_, s)| s.proto == r.proto && (s.src, s.dst) == ends)
        .map(|(i, _)| i)
        .collect();
    let fits: Vec<usize> = same_ends
        .iter()
        .copied()
        .filter(|&i| {
            sas.get(i)
                .is_some_and(|s| sa_mode(s.mode).is_none_or(|m| m == r.mode))
        })
        .collect();
    if fits.is_empty() {
        if let Some(s) = same_ends.first().and_then(|&i| sas.get(i)) {
            return Err(format!(
                "policy {} asks for {} but the {} is `-m {}`",
                policy_desc(p),
                render::request_text(r),
                sa_desc(s),
                render::mode_name(s.mode)
            ));
        }
    }
    Ok(Match {
        ends,
        sa: fits.last().copied(),
        count: fits.len(),
    })
}

/// Requests in the order fwd applies them: `[esp]`, `[ah]` or `[esp, ah]` (ESP inside AH), with
/// the same mode and endpoints.
pub(crate) fn check_bundle(p: &SpdEntry, reqs: &[IpsecRequest]) -> Result<(), String> {
    match reqs {
        [_] => Ok(()),
        [a, b] => {
            if a.proto != IpsecProto::Esp || b.proto != IpsecProto::Ah {
                return Err(format!(
                    "policy {}: `{} {}`: two requests must be esp then ah (ESP inside AH), the only bundle fwd applies",
                    policy_desc(p),
                    render::request_text(a),
                    render::request_text(b)
                ));
            }
            if a.mode != b.mode || a.endpoints != b.endpoints {
                return Err(format!(
                    "policy {}: `{} {}`: the esp and ah requests must have the same mode and endpoints",
                    policy_desc(p),
                    render::request_text(a),
                    render::request_text(b)
                ));
            }
            Ok(())
        }
        _ => Err(format!(
            "policy {}: {} requests (1 or 2: esp, ah, or esp then ah)",
            policy_desc(p),
            reqs.len()
        )),
    }
}

/// What fwd installs for a setkey state, and notes for the operator (policies ignored, traps ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub state: ConnState,
    pub notes: Vec<String>,
}

fn ports(p: Option<u16>) -> Ports {
    p.map_or(Ports::ANY, |p| Ports { lo: p, hi: p })
}

fn fwd_dir(d: PolicyDir) -> Option<Direction> {
    match d {
        PolicyDir::In => Some(Direction::In),
        PolicyDir::Out => Some(Direction::Out),
        PolicyDir::Fwd => None,
    }
}

fn dir_word(d: Direction) -> &'static str {
    match d {
        Direction::In => "inbound",
        Direction::Out => "outbound",
    }
}

/// [`to_conn_state`] with its notes; `insecure_aead` lets AES-GCM/CTR SAs through (tests and the
/// benchmark only, as `FERROSWAN_INSECURE_MANUAL_AEAD` does for manual conns).
pub fn convert(
    state: &SetkeyState,
    local: &[IpAddr],
    insecure_aead: bool,
) -> Result<Conversion, String> {
    let sas = &state.sas;
    let mut notes = Vec::new();
    if sas.len() > MAX_SAS {
        return Err(format!(
            "{} SAs: fwd holds at most {MAX_SAS} for setkey",
            sas.len()
        ));
    }
    // Direction of every SA, from this host's addresses.
    let mut dirs = Vec::with_capacity(sas.len());
    for s in sas {
        let d = if local.contains(&s.dst) {
            Direction::In
        } else if local.contains(&s.src) {
            Direction::Out
        } else {
            return Err(format!(
                "{}: neither {} nor {} is an address of this host (is this the other gateway's script?)",
                sa_desc(s),
                s.src,
                s.dst
            ));
        };
        if is_counter_mode(s.enc.as_ref().map_or(EncrAlg::Null, |e| e.0)) && !insecure_aead {
            return Err(format!("{}: {COUNTER_MODE_REFUSAL}", sa_desc(s)));
        }
        dirs.push(d);
    }
    // Resolve every policy's requests; note the modes `-m any` SAs are used in.
    let mut used_modes: Vec<Vec<SaMode>> = vec![Vec::new(); sas.len()];
    let mut policies = Vec::new();
    for p in &state.policies {
        let Some(direction) = fwd_dir(p.dir) else {
            notes.push(format!(
                "policy {} ignored: fwd checks decrypted packets against the `in` policies; Linux's separate forward check has nothing to apply to in a userspace datapath",
                policy_desc(p)
            ));
            continue;
        };
        let action = match &p.action {
            PolicyAction::None => policy::PolicyAction::Pass,
            PolicyAction::Discard => policy::PolicyAction::Drop,
            PolicyAction::Ipsec(reqs) => {
                check_bundle(p, reqs)?;
                let mut ids: Vec<SaId> = Vec::new();
                let mut missing = Vec::new();
                for r in reqs {
                    let m = match_request(sas, p, r)?;
                    match m.sa.and_then(|i| sas.get(i).map(|s| (i, s))) {
                        Some((i, s)) => {
                            let sd = dirs.get(i).copied().unwrap_or(Direction::In);
                            if sd != direction {
                                return Err(format!(
                                    "policy {} uses the {}, which is {} on this host: an `{}` policy needs an SA {} this host (is this the other gateway's script?)",
                                    policy_desc(p),
                                    sa_desc(s),
                                    dir_word(sd),
                                    render::dir_name(p.dir),
                                    if direction == Direction::Out { "from" } else { "to" }
                                ));
                            }
                            if m.count > 1 {
                                notes.push(format!(
                                    "policy {}: {} SAs match {}; the last added ({}) is used",
                                    policy_desc(p),
                                    m.count,
                                    render::request_text(r),
                                    sa_desc(s)
                                ));
                            }
                            if let Some(v) = used_modes.get_mut(i) {
                                v.push(r.mode);
                            }
                            ids.push(SaId {
                                spi: s.spi,
                                proto: s.proto,
                                dst: s.dst,
                            });
                        }
                        None => missing.push(format!(
                            "{} from {} to {}",
                            render::proto_name(r.proto),
                            m.ends.0,
                            m.ends.1
                        )),
                    }
                    match r.level {
                        Level::Use | Level::Default => notes.push(format!(
                            "policy {}: level `{}` is enforced as `require`: ferroswan never falls back to cleartext",
                            policy_desc(p),
                            if r.level == Level::Use { "use" } else { "default" }
                        )),
                        Level::Unique(Some(n)) => notes.push(format!(
                            "policy {}: `unique:{n}` is taken as `unique` (SAs carry no reqid here)",
                            policy_desc(p)
                        )),
                        Level::Require | Level::Unique(None) => {}
                    }
                }
                if missing.is_empty() {
                    policy::PolicyAction::Protect { sas: ids }
                } else if direction == Direction::Out {
                    notes.push(format!(
                        "policy {}: no {} yet: installed as a trap, its traffic is dropped (never sent in the clear) until the SA is added",
                        policy_desc(p),
                        missing.join(", no ")
                    ));
                    policy::PolicyAction::Trap
                } else {
                    notes.push(format!(
                        "policy {}: no {} yet: installed as a drop until the SA is added",
                        policy_desc(p),
                        missing.join(", no ")
                    ));
                    policy::PolicyAction::Drop
                }
            }
        };
        policies.push(PolicySpec {
            conn: CONN_NAME.into(),
            direction,
            selector: TrafficSelector {
                src: p.src,
                dst: p.dst,
                proto: p.upper,
                src_ports: ports(p.src_port),
                dst_ports: ports(p.dst_port),
            },
            action,
            priority: 1000u32.saturating_sub(u32::from(p.src.prefix) + u32::from(p.dst.prefix)),
            route: direction == Direction::Out,
        });
    }
    if policies.len() > MAX_POLICIES {
        return Err(format!(
            "{} policies: fwd holds at most {MAX_POLICIES} for setkey",
            policies.len()
        ));
    }
    let mut specs = Vec::with_capacity(sas.len());
    for ((s, d), modes) in sas.iter().zip(&dirs).zip(&used_modes) {
        let mode = match sa_mode(s.mode) {
            Some(m) => m,
            None => {
                let first = modes.first().copied();
                if modes.iter().any(|m| Some(*m) != first) {
                    return Err(format!(
                        "{} is `-m any` and used by both transport- and tunnel-mode policies: give it `-m transport` or `-m tunnel`",
                        sa_desc(s)
                    ));
                }
                first.unwrap_or_else(|| {
                    notes.push(format!(
                        "{} is `-m any` and no policy uses it: installed in transport mode",
                        sa_desc(s)
                    ));
                    SaMode::Transport
                })
            }
        };
        let (encr, enc_key) = match (&s.proto, &s.enc) {
            (IpsecProto::Esp, Some((e, k))) => (*e, k.clone()),
            _ => (EncrAlg::Null, SecretBytes::default()),
        };
        let (integ, auth_key) = match &s.auth {
            Some((a, k)) => (*a, k.clone()),
            None => (IntegAlg::None, SecretBytes::default()),
        };
        specs.push(SaSpec {
            conn: CONN_NAME.into(),
            direction: *d,
            proto: s.proto,
            spi: s.spi,
            src: s.src,
            dst: s.dst,
            mode,
            encap: None,
            encr,
            enc_key,
            integ,
            auth_key,
            esn: false,
            replay_window: s.replay.unwrap_or(0),
            lifetime: SaLifetime::default(),
        });
    }
    Ok(Conversion {
        state: ConnState {
            conn: CONN_NAME.into(),
            sas: specs,
            policies,
        },
        notes,
    })
}

/// What fwd installs for a setkey state, seen from the host whose addresses are `local`: one conn
/// named `setkey` with every SA and every `in`/`out` policy (see the module doc).
pub fn to_conn_state(state: &SetkeyState, local: &[IpAddr]) -> Result<ConnState, String> {
    convert(state, local, false).map(|c| c.state)
}
