//! `ipsecctl import setkey FILE`: a setkey script as ipsec.conf manual conns (`auto=manual`), so
//! the setup lives in ipsec.conf.
//!
//! Each outbound `spdadd … -P out ipsec …` policy is paired with its inbound mirror (`-P in`, the
//! selector reversed) and with the SAs both use; outbound policies that share their SAs become one
//! conn with `leftsubnets=`/`rightsubnets=` (when they are every pair of those subnets). `left=` is
//! the local end of the first outbound policy (the source of its SAs), `right=` the peer. The conn
//! is written with per-direction SPIs and keys (`rightespspi=`, `leftespenckey=` … name the SA whose
//! *destination* is that end, as `crate::manual` reads them), so the same text works on both
//! gateways: each orients it by its own addresses.
//!
//! Whatever a manual conn cannot say is an error naming its line, never dropped: `-P fwd`
//! policies, `none`/`discard` policies, `use`/`default` levels (a manual conn always requires its
//! SAs), a policy without its mirror or without SAs both ways, SAs no policy pair uses, SAs shared
//! between different pairs, directions with different algorithms or replay windows.

use super::apply::{check_bundle, match_request, policy_desc, sa_desc, tables_of, Tables};
use super::model::{
    IpsecRequest, Level, Located, PolicyAction, PolicyDir, SaEntry, SetkeyError, SpdEntry,
    Statement,
};
use crate::manual::{is_counter_mode, COUNTER_MODE_REFUSAL};
use ipc::policy::Net;
use ipc::sa::{EncrAlg, IntegAlg, IpsecProto, SaMode, SecretBytes};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// `esp=` as `crate::manual::parse_esp` reads it: `3des-md5-96`, `aes128-sha1`, `aes256-sha2_256`.
pub fn esp_name(e: EncrAlg, i: IntegAlg) -> String {
    let enc = match e {
        EncrAlg::Null => "null".to_string(),
        EncrAlg::TripleDesCbc => "3des".to_string(),
        EncrAlg::AesCbc { key_bits } => format!("aes{key_bits}"),
        EncrAlg::AesCtr { key_bits } => format!("aes_ctr{key_bits}"),
        EncrAlg::AesGcm {
            key_bits,
            icv_bytes,
        } => format!("aes{key_bits}gcm{icv_bytes}"),
    };
    let integ = match i {
        IntegAlg::None => return enc,
        IntegAlg::HmacMd5_96 => "md5-96",
        IntegAlg::HmacSha1_96 => "sha1",
        IntegAlg::HmacSha256_128 => "sha2_256",
        IntegAlg::HmacSha384_192 => "sha2_384",
        IntegAlg::HmacSha512_256 => "sha2_512",
    };
    format!("{enc}-{integ}")
}

/// `ah=` as `crate::manual::parse_ah` reads it.
pub fn ah_name(i: IntegAlg) -> &'static str {
    match i {
        IntegAlg::None => "null",
        IntegAlg::HmacMd5_96 => "hmac-md5-96",
        IntegAlg::HmacSha1_96 => "hmac-sha1-96",
        IntegAlg::HmacSha256_128 => "hmac-sha2_256",
        IntegAlg::HmacSha384_192 => "hmac-sha2_384",
        IntegAlg::HmacSha512_256 => "hmac-sha2_512",
    }
}

fn hex(k: &SecretBytes) -> String {
    let mut s = String::with_capacity(2 + k.len() * 2);
    s.push_str("0x");
    for b in k.expose() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One outbound policy, its mirror and their SAs.
struct Pair {
    out_line: usize,
    in_line: usize,
    out: SpdEntry,
    mode: SaMode,
    /// SA indexes, in request order (ESP first): outbound (left → right) and inbound.
    out_sas: Vec<usize>,
    in_sas: Vec<usize>,
}

struct Ctx<'a> {
    file: &'a str,
    errors: Vec<SetkeyError>,
}

impl Ctx<'_> {
    fn err(&mut self, line: usize, message: impl Into<String>) {
        if self.errors.len() < super::parser::MAX_ERRORS {
            self.errors.push(SetkeyError {
                file: self.file.to_string(),
                line,
                message: message.into(),
            });
        }
    }
}

fn is_mirror(o: &SpdEntry, i: &SpdEntry) -> bool {
    i.dir == PolicyDir::In
        && i.src == o.dst
        && i.dst == o.src
        && i.upper == o.upper
        && i.src_port == o.dst_port
        && i.dst_port == o.src_port
}

/// The mirror's requests must be the outbound ones with the endpoints reversed.
fn mirrored_reqs(o: &[IpsecRequest], i: &[IpsecRequest]) -> bool {
    o.len() == i.len()
        && o.iter().zip(i).all(|(a, b)| {
            a.proto == b.proto
                && a.mode == b.mode
                && a.endpoints.map(|(x, y)| (y, x)) == b.endpoints
        })
}

/// Resolve a policy's requests to SAs (all must exist), or report.
fn sas_of(
    ctx: &mut Ctx<'_>,
    sas: &[SaEntry],
    line: usize,
    p: &SpdEntry,
    reqs: &[IpsecRequest],
) -> Option<Vec<usize>> {
    let mut v = Vec::new();
    for r in reqs {
        match match_request(sas, p, r) {
            Err(e) => {
                ctx.err(line, e);
                return None;
            }
            Ok(m) if m.count > 1 => {
                ctx.err(
                    line,
                    format!(
                        "policy {}: {} SAs match {}: a manual conn has one SA per direction",
                        policy_desc(p),
                        m.count,
                        super::render::request_text(r)
                    ),
                );
                return None;
            }
            Ok(m) => match m.sa {
                Some(i) => v.push(i),
                None => {
                    ctx.err(
                        line,
                        format!(
                            "policy {}: no {} SA from {} to {}: a manual conn needs its SAs in both directions",
                            policy_desc(p),
                            super::render::proto_name(r.proto),
                            m.ends.0,
                            m.ends.1
                        ),
                    );
                    return None;
                }
            },
        }
    }
    Some(v)
}

/// A conn name from the addresses: `192.0.2.1-192.0.2.2`, `10.1.0.0_16-10.2.0.0_16`.
fn conn_name(p: &Pair, taken: &mut BTreeSet<String>) -> String {
    let net = |n: &Net| {
        if p.mode == SaMode::Transport {
            n.addr.to_string()
        } else {
            format!("{}_{}", n.addr, n.prefix)
        }
    };
    let raw = format!("{}-{}", net(&p.out.src), net(&p.out.dst));
    let mut base: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    base.truncate(100);
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

fn protoport(upper: u8, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{upper}/{p}"),
        None => format!("{upper}/%any"),
    }
}

fn subnets(nets: &[Net]) -> String {
    match nets {
        [one] => one.to_string(),
        many => format!(
            "{{{}}}",
            many.iter()
                .map(Net::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// The algorithms of one protocol in both directions must agree (a manual conn has one `esp=`).
fn same_suite(ctx: &mut Ctx<'_>, t: &Tables, out_i: usize, in_i: usize) -> bool {
    let (Some(o), Some(i)) = (t.sas.get(out_i), t.sas.get(in_i)) else {
        return false;
    };
    let alg = |s: &SaEntry| (s.enc.as_ref().map(|e| e.0), s.auth.as_ref().map(|a| a.0));
    if alg(&o.item) != alg(&i.item) {
        ctx.err(
            i.line,
            format!(
                "the {} and the {} (line {}) use different algorithms: a manual conn has one {}= for both directions",
                sa_desc(&i.item),
                sa_desc(&o.item),
                o.line,
                if o.item.proto == IpsecProto::Esp { "esp" } else { "ah" }
            ),
        );
        return false;
    }
    if o.item.replay.unwrap_or(0) != i.item.replay.unwrap_or(0) {
        ctx.err(
            i.line,
            format!(
                "the {} and the {} (line {}) have different replay windows (`-r`): a manual conn has one {}replay_window= for both directions",
                sa_desc(&i.item),
                sa_desc(&o.item),
                o.line,
                if o.item.proto == IpsecProto::Esp { "esp" } else { "ah" }
            ),
        );
        return false;
    }
    true
}

/// Convert a parsed setkey script into ipsec.conf text with one manual conn per SA pair (see the
/// module doc). `file` names the script in the header and in errors.
pub fn import_setkey(stmts: &[Located<Statement>], file: &str) -> Result<String, Vec<SetkeyError>> {
    let t = tables_of(stmts, file)?;
    let mut ctx = Ctx {
        file,
        errors: Vec::new(),
    };
    let sas: Vec<SaEntry> = t.sas.iter().map(|l| l.item.clone()).collect();
    let mut pairs: Vec<Pair> = Vec::new();
    let mut mirrored: BTreeSet<usize> = BTreeSet::new();
    for lp in &t.policies {
        let (line, p) = (lp.line, &lp.item);
        let reqs = match (&p.dir, &p.action) {
            (PolicyDir::Fwd, _) => {
                ctx.err(line, format!("policy {}: `-P fwd` has no manual-conn equivalent (fwd checks decrypted packets against the `in` policy); remove it", policy_desc(p)));
                continue;
            }
            (_, PolicyAction::None | PolicyAction::Discard) => {
                ctx.err(line, format!("policy {}: `none`/`discard` policies are not converted: write a type=passthrough or type=drop conn for them", policy_desc(p)));
                continue;
            }
            (PolicyDir::In, _) => continue, // checked with its outbound mirror
            (PolicyDir::Out, PolicyAction::Ipsec(reqs)) => reqs,
        };
        let mut ok = true;
        for r in reqs {
            if matches!(r.level, Level::Use | Level::Default) {
                ctx.err(line, format!("policy {}: `{}`: a manual conn always requires its SAs; `use`/`default` (cleartext when there is no SA) cannot be expressed: write `require`", policy_desc(p), super::render::request_text(r)));
                ok = false;
            }
        }
        if let Err(e) = check_bundle(p, reqs) {
            ctx.err(line, e);
            ok = false;
        }
        if !ok {
            continue;
        }
        let Some((mi, mirror)) = t
            .policies
            .iter()
            .enumerate()
            .find(|(_, m)| is_mirror(p, &m.item))
        else {
            ctx.err(line, format!("policy {} has no inbound mirror (`spdadd {} {} … -P in ipsec …`): a manual conn protects both directions", policy_desc(p), p.dst, p.src));
            continue;
        };
        mirrored.insert(mi);
        let in_reqs = match &mirror.item.action {
            PolicyAction::Ipsec(r) if mirrored_reqs(reqs, r) => r,
            _ => {
                ctx.err(mirror.line, format!("policy {} does not mirror {} (line {}): it must ask for the same protocols and mode, with the tunnel endpoints reversed", policy_desc(&mirror.item), policy_desc(p), line));
                continue;
            }
        };
        if in_reqs
            .iter()
            .any(|r| matches!(r.level, Level::Use | Level::Default))
        {
            ctx.err(mirror.line, format!("policy {}: `use`/`default` cannot be expressed in a manual conn: write `require`", policy_desc(&mirror.item)));
            continue;
        }
        let Some(out_sas) = sas_of(&mut ctx, &sas, line, p, reqs) else {
            continue;
        };
        let Some(in_sas) = sas_of(&mut ctx, &sas, mirror.line, &mirror.item, in_reqs) else {
            continue;
        };
        let mode = reqs.first().map_or(SaMode::Transport, |r| r.mode);
        pairs.push(Pair {
            out_line: line,
            in_line: mirror.line,
            out: p.clone(),
            mode,
            out_sas,
            in_sas,
        });
    }
    for (i, lp) in t.policies.iter().enumerate() {
        if lp.item.dir == PolicyDir::In
            && matches!(lp.item.action, PolicyAction::Ipsec(_))
            && !mirrored.contains(&i)
        {
            ctx.err(
                lp.line,
                format!(
                    "policy {} has no outbound mirror: a manual conn protects both directions",
                    policy_desc(&lp.item)
                ),
            );
        }
    }
    // Group the pairs that use the same SAs into one conn.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        match groups.iter_mut().find(|g| {
            g.first()
                .and_then(|&f| pairs.get(f))
                .is_some_and(|f| f.out_sas == p.out_sas && f.in_sas == p.in_sas)
        }) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    // An SA may belong to one conn only, and every SA to one.
    let mut owner: Vec<Option<usize>> = vec![None; sas.len()];
    for (gi, g) in groups.iter().enumerate() {
        let Some(first) = g.first().and_then(|&f| pairs.get(f)) else {
            continue;
        };
        for &s in first.out_sas.iter().chain(&first.in_sas) {
            match owner.get_mut(s) {
                Some(Some(other)) if *other != gi => {
                    let line = t.sas.get(s).map_or(0, |l| l.line);
                    let desc = sas.get(s).map(sa_desc).unwrap_or_default();
                    ctx.err(line, format!("the {desc} is used together with different SAs by two policy pairs (lines {} and {}): a manual conn owns its SAs", first.out_line, groups.get(*other).and_then(|o| o.first()).and_then(|&f| pairs.get(f)).map_or(0, |p| p.out_line)));
                }
                Some(slot) => *slot = Some(gi),
                None => {}
            }
        }
    }
    for (i, o) in owner.iter().enumerate() {
        if o.is_none() {
            if let Some(l) = t.sas.get(i) {
                ctx.err(l.line, format!("the {} is used by no pair of `-P out`/`-P in` policies: a manual conn needs both", sa_desc(&l.item)));
            }
        }
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# ipsec.conf written by `ipsecctl import setkey` from {file}:\n\
         # one manually keyed conn (auto=manual) per pair of outbound and inbound policies and their SAs.\n\
         # left= is the source of the first outbound policy; the same file works on both gateways.\n\
         # It holds the script's keys: keep it readable by root only.\n\
         version 2"
    );
    let mut taken = BTreeSet::new();
    for g in &groups {
        if let Some(s) = conn_text(&mut ctx, &t, &pairs, g, &mut taken) {
            text.push('\n');
            text.push_str(&s);
        }
    }
    if groups.is_empty() && ctx.errors.is_empty() {
        ctx.err(
            stmts.last().map_or(1, |s| s.line),
            "the script leaves no `-P out … ipsec` policy with its SAs: there is nothing to convert",
        );
    }
    if ctx.errors.is_empty() {
        Ok(text)
    } else {
        ctx.errors.sort_by_key(|e| e.line);
        Err(ctx.errors)
    }
}

fn conn_text(
    ctx: &mut Ctx<'_>,
    t: &Tables,
    pairs: &[Pair],
    group: &[usize],
    taken: &mut BTreeSet<String>,
) -> Option<String> {
    let members: Vec<&Pair> = group.iter().filter_map(|&i| pairs.get(i)).collect();
    let first = *members.first()?;
    // The same ports and protocol for every member (a manual conn has one leftprotoport=).
    for m in &members {
        if (m.out.upper, m.out.src_port, m.out.dst_port)
            != (first.out.upper, first.out.src_port, first.out.dst_port)
        {
            ctx.err(m.out_line, format!("policy {} shares its SAs with {} (line {}) but not its protocol and ports: a manual conn has one leftprotoport=/rightprotoport=", policy_desc(&m.out), policy_desc(&first.out), first.out_line));
            return None;
        }
    }
    // Every (left subnet, right subnet) pair, as leftsubnets=/rightsubnets= give.
    let mut lefts: Vec<Net> = Vec::new();
    let mut rights: Vec<Net> = Vec::new();
    for m in &members {
        if !lefts.contains(&m.out.src) {
            lefts.push(m.out.src);
        }
        if !rights.contains(&m.out.dst) {
            rights.push(m.out.dst);
        }
    }
    if lefts.len() * rights.len() != members.len() {
        ctx.err(first.out_line, format!("the policies on lines {} share their SAs but are not every pair of their subnets ({} × {}): leftsubnets=/rightsubnets= cannot express them; give each its own SAs", members.iter().map(|m| m.out_line.to_string()).collect::<Vec<_>>().join(", "), subnets(&lefts), subnets(&rights)));
        return None;
    }
    let sa = |i: usize| t.sas.get(i);
    let out0 = sa(*first.out_sas.first()?)?;
    let (left, right) = (out0.item.src, out0.item.dst);
    // Outbound SAs go left → right, inbound ones right → left; one of each per protocol.
    let mut esp: Option<(usize, usize)> = None;
    let mut ah: Option<(usize, usize)> = None;
    for (&o, &i) in first.out_sas.iter().zip(&first.in_sas) {
        let (so, si) = (sa(o)?, sa(i)?);
        if (so.item.src, so.item.dst) != (left, right)
            || (si.item.src, si.item.dst) != (right, left)
        {
            ctx.err(si.line, format!("the {} and the {} (line {}) do not join the same two gateways in opposite directions", sa_desc(&si.item), sa_desc(&so.item), so.line));
            return None;
        }
        if !same_suite(ctx, t, o, i) {
            return None;
        }
        match so.item.proto {
            IpsecProto::Esp => esp = Some((o, i)),
            IpsecProto::Ah => ah = Some((o, i)),
        }
    }
    let name = conn_name(first, taken);
    let mut s = String::new();
    let lines: Vec<String> = members
        .iter()
        .map(|m| format!("{} and {}", m.out_line, m.in_line))
        .collect();
    let _ = writeln!(s, "conn {name}");
    let _ = writeln!(s, "\t# from {} lines {}", ctx.file, lines.join(", "));
    let _ = writeln!(s, "\tauto=manual");
    match first.mode {
        SaMode::Transport => {
            let _ = writeln!(s, "\ttype=transport");
        }
        SaMode::Tunnel => {
            let _ = writeln!(s, "\ttype=tunnel");
        }
    }
    let _ = writeln!(s, "\tleft={left}");
    let _ = writeln!(s, "\tright={right}");
    if first.mode == SaMode::Tunnel {
        let kw = |n: &[Net]| if n.len() == 1 { "subnet" } else { "subnets" };
        let _ = writeln!(s, "\tleft{}={}", kw(&lefts), subnets(&lefts));
        let _ = writeln!(s, "\tright{}={}", kw(&rights), subnets(&rights));
    }
    let o = &first.out;
    if o.upper != 0 || o.src_port.is_some() || o.dst_port.is_some() {
        let _ = writeln!(s, "\tleftprotoport={}", protoport(o.upper, o.src_port));
        let _ = writeln!(s, "\trightprotoport={}", protoport(o.upper, o.dst_port));
    }
    if let Some((oi, ii)) = esp {
        let (so, si) = (&sa(oi)?.item, &sa(ii)?.item);
        let enc = so.enc.as_ref().map_or(EncrAlg::Null, |e| e.0);
        let integ = so.auth.as_ref().map_or(IntegAlg::None, |a| a.0);
        if is_counter_mode(enc) {
            let _ = writeln!(s, "\t# WARNING: {COUNTER_MODE_REFUSAL}.\n\t# ferroswan refuses this conn unless FERROSWAN_INSECURE_MANUAL_AEAD=1 (tests only).");
        }
        let _ = writeln!(s, "\tesp={}", esp_name(enc, integ));
        // Per-side keywords name the SA whose destination is that end.
        for (side, x) in [("right", so), ("left", si)] {
            let _ = writeln!(s, "\t{side}espspi={:#x}", x.spi);
            if let Some((_, k)) = &x.enc {
                if !k.is_empty() {
                    let _ = writeln!(s, "\t{side}espenckey={}", hex(k));
                }
            }
            if let Some((_, k)) = &x.auth {
                let _ = writeln!(s, "\t{side}espauthkey={}", hex(k));
            }
        }
        if let Some(r) = so.replay.filter(|r| *r > 0) {
            let _ = writeln!(s, "\tespreplay_window={r}");
        }
    }
    if let Some((oi, ii)) = ah {
        let (so, si) = (&sa(oi)?.item, &sa(ii)?.item);
        let integ = so.auth.as_ref().map_or(IntegAlg::None, |a| a.0);
        let _ = writeln!(s, "\tah={}", ah_name(integ));
        for (side, x) in [("right", so), ("left", si)] {
            let _ = writeln!(s, "\t{side}ahspi={:#x}", x.spi);
            if let Some((_, k)) = &x.auth {
                let _ = writeln!(s, "\t{side}ahkey={}", hex(k));
            }
        }
        if let Some(r) = so.replay.filter(|r| *r > 0) {
            let _ = writeln!(s, "\tahreplay_window={r}");
        }
    }
    Some(s)
}
