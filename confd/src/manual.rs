//! Manual keying (FreeS/WAN's `ipsec manual`, `auto=manual`) and routing (`ipsec auto --route`),
//! translated into the whole-connection state fwd installs ([`ConnState`]). Pure code: no I/O, no
//! clock, no environment; the daemon decides when to call it and what to do with the result.
//!
//! The translation takes a conn whose `left` is this host. [`oriented`] makes one from a loaded
//! conn and its [`Orientation`]; it swaps the ends (and their per-side manual keys) when `right`
//! is local, after first turning `spibase=` into explicit per-direction SPIs, so both gateways
//! derive the same numbers from the same file.
//!
//! # What the keywords mean (as FreeS/WAN's `ipsec manual` script read them)
//!
//! * `spi=` is the SPI of every SA of the conn, in both directions and for ESP and AH alike: the
//!   SAs differ by destination (and protocol), so one number serves. Both gateways share the file.
//! * `spibase=0x...0` numbers the SAs instead, tied to the ends as written in the file (not to which
//!   end is local, so both gateways agree). SAs towards `right` get even offsets, those towards
//!   `left` odd ones, in FreeS/WAN's order: tunnel mode first spent one number each way on KLIPS'
//!   IP-in-IP SA, so tunnel ESP is base+2 (to right) / base+3 (to left) and AH, when ESP is there
//!   too, base+4 / base+5; transport ESP is base+0 / base+1 and AH base+2 / base+3. AH alone uses
//!   the ESP numbers. A FreeS/WAN peer with the same conn therefore uses the same SPIs. The last
//!   hex digit of `spibase=` must be 0, as FreeS/WAN required.
//! * `leftespspi=` / `rightespspi=` (and `leftahspi=` / `rightahspi=`) override the SPI of the SA
//!   whose *destination* is that end: `rightespspi=` is the SPI of the ESP SA sent to `right`.
//! * `espenckey=`, `espauthkey=`, `ahkey=` key both directions. The per-side forms
//!   (`leftespenckey=` ...) key the SA whose *destination* is that end, as FreeS/WAN's script did
//!   (`dir = (dest == me) ? "left" : "right"`), and as `ManualSide` in the model says. (The
//!   alternative, keying by source, would make a ferroswan gateway disagree with a FreeS/WAN one
//!   reading the same file.) A per-side key falls back to the common one; with neither for one
//!   direction the conn is refused, naming the missing keyword.
//! * `esp=` is one algorithm: FreeS/WAN's `3des-md5-96`, `3des-sha1-96`, Libreswan's
//!   `aes128-sha1`, `aes256-sha2_256`, `aes-128-sha1`, `aes_cbc256-sha2_512`... (see
//!   [`parse_esp`]). Encryption without integrity is refused. `ah=` is `hmac-md5-96`,
//!   `hmac-sha1-96`, `hmac-sha2_256` (...384, ...512). ESP and AH together protect with ESP inside
//!   AH: `Protect { sas: [esp, ah] }`.
//! * AES-GCM and AES-CTR are refused: RFC 4106 (GCM) and RFC 3686 (CTR) forbid them with manually
//!   distributed keys, because a manually keyed SA starts its counter again at every restart and the
//!   counter is the nonce, so a restart reuses nonces under the same key (for GCM that gives away
//!   the authentication key too). Only with `insecure_aead` (the daemon sets it from
//!   `FERROSWAN_INSECURE_MANUAL_AEAD=1`, for tests) are they accepted; the key is then followed by
//!   the 4-byte salt/nonce as in those RFCs.
//! * `espreplay_window=` / `ahreplay_window=`: anti-replay window, default 0 (off). RFC 4303 §3.3.3:
//!   a manually keyed SA's sender counter restarts with the SA, so a receiver that kept its window
//!   would drop everything the peer sends after the peer restarts. fwd also checkpoints the outbound
//!   counter, but 0 is FreeS/WAN's practical default and ours.
//! * `type=tunnel` (default): tunnel mode, policies between `leftsubnet(s)=` and
//!   `rightsubnet(s)=` (default: the hosts); every same-family pair gets an outbound policy (local →
//!   remote, routed) and an inbound one (remote → local, not routed). `type=transport`: transport
//!   mode between the hosts (a subnet other than the host itself is refused).
//!   `leftprotoport=`/`rightprotoport=` narrow the selectors.
//!   Priority: `1000 - (source prefix + destination prefix)`, so more specific policies come first.
//! * Manual SAs have no lifetime (they live until taken down), no ESN and no NAT-T encapsulation
//!   (plain ESP, IP protocol 50).
//!
//! [`route_state`] gives what `ipsecctl route` installs: the conn's outbound policies with no SA
//! (`Trap`: dropped, never sent in the clear, and an acquire for ikerd), routed; for
//! `type=passthrough` a `Pass` policy (fwd installs a throw route), for `type=drop`/`reject` a
//! `Drop`/`Reject` policy, routed so fwd sees the packets. Only outbound policies: as KLIPS' eroutes,
//! nothing is installed for inbound traffic until there are SAs.

use crate::conf::model::{ConnType, ManualKeying, ManualSide};
use crate::conf::values::{HostAddr, SecretKey};
use crate::conf::{Conn, Orientation};
use ipc::policy::{ConnState, Net, PolicyAction, PolicySpec, Ports, TrafficSelector};
use ipc::sa::{
    Direction, EncrAlg, IntegAlg, IpsecProto, SaId, SaLifetime, SaMode, SaSpec, SecretBytes,
};
use std::net::IpAddr;

/// The environment variable that lets manual keying use AES-GCM and AES-CTR (tests only).
pub const INSECURE_AEAD_ENV: &str = "FERROSWAN_INSECURE_MANUAL_AEAD";

/// Why counter-mode ciphers are refused with manual keys (part of every refusal).
pub const COUNTER_MODE_REFUSAL: &str = "AES-GCM (RFC 4106) and AES-CTR (RFC 3686) must not be used with manually \
distributed keys: a manual SA restarts its counter, which is the nonce, every time a gateway restarts, \
so nonces repeat under the same key; use IKE, or 3DES/AES-CBC with HMAC";

/// Whether an encryption algorithm uses a counter as its nonce (and so cannot be keyed manually).
pub fn is_counter_mode(e: EncrAlg) -> bool {
    matches!(e, EncrAlg::AesCtr { .. } | EncrAlg::AesGcm { .. })
}

/// Bytes of key material `esp=`'s cipher takes (for CTR and GCM: the key, then the 4-byte nonce).
pub fn enc_key_len(e: EncrAlg) -> usize {
    match e {
        EncrAlg::Null => 0,
        EncrAlg::TripleDesCbc => 24,
        EncrAlg::AesCbc { key_bits } => usize::from(key_bits / 8),
        EncrAlg::AesCtr { key_bits } | EncrAlg::AesGcm { key_bits, .. } => {
            usize::from(key_bits / 8) + 4
        }
    }
}

/// Bytes of HMAC key each integrity algorithm takes (its hash's output size, RFC 2403/2404/4868).
pub fn integ_key_len(i: IntegAlg) -> usize {
    match i {
        IntegAlg::None => 0,
        IntegAlg::HmacMd5_96 => 16,
        IntegAlg::HmacSha1_96 => 20,
        IntegAlg::HmacSha256_128 => 32,
        IntegAlg::HmacSha384_192 => 48,
        IntegAlg::HmacSha512_256 => 64,
    }
}

/// A short name for messages: `3DES-CBC`, `AES-CBC-128`, `AES-GCM-256/16`...
pub fn encr_name(e: EncrAlg) -> String {
    match e {
        EncrAlg::Null => "NULL".into(),
        EncrAlg::TripleDesCbc => "3DES-CBC".into(),
        EncrAlg::AesCbc { key_bits } => format!("AES-CBC-{key_bits}"),
        EncrAlg::AesCtr { key_bits } => format!("AES-CTR-{key_bits}"),
        EncrAlg::AesGcm {
            key_bits,
            icv_bytes,
        } => format!("AES-GCM-{key_bits}/{icv_bytes}"),
    }
}

pub fn integ_name(i: IntegAlg) -> &'static str {
    match i {
        IntegAlg::None => "none",
        IntegAlg::HmacMd5_96 => "HMAC-MD5-96",
        IntegAlg::HmacSha1_96 => "HMAC-SHA1-96",
        IntegAlg::HmacSha256_128 => "HMAC-SHA2-256-128",
        IntegAlg::HmacSha384_192 => "HMAC-SHA2-384-192",
        IntegAlg::HmacSha512_256 => "HMAC-SHA2-512-256",
    }
}

const ESP_NAMES: &str =
    "3des-md5-96, 3des-sha1-96, aes128-sha1, aes256-sha2_256, aes_cbc192-sha2_512 ...";

/// Split `s` into runs of digits and runs of letters, dropping `_`.
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

/// Parse the encryption part: `3des`, `aes`, `aes128`, `aes_cbc256`, `aes_ctr`, `aes128gcm16`,
/// `aes_gcm_c`... `extra` are further `-`-separated parts that belong to it (`aes-128`, `3des-cbc`).
fn parse_encr(name: &str, extra: &[&str]) -> Result<EncrAlg, String> {
    match name {
        "3des" | "3des_cbc" | "des3" | "des3_cbc" | "tripledes" => {
            return match extra {
                [] | ["cbc"] => Ok(EncrAlg::TripleDesCbc),
                _ => Err(format!("`{name}-{}` is not a 3DES mode", extra.join("-"))),
            }
        }
        "null" | "enc_null" | "esp_null" => return Ok(EncrAlg::Null),
        "des" | "des_cbc" | "1des" => {
            return Err("single DES is not supported (56-bit keys are broken)".into())
        }
        _ => {}
    }
    let Some(rest) = name.strip_prefix("aes") else {
        return Err(format!(
            "unknown cipher `{name}` (known: 3des, aes, aes128, aes192, aes256, aes_cbc..., null)"
        ));
    };
    let mut parts = runs(rest);
    parts.extend(extra.iter().map(|s| s.to_string()));
    let mut bits: Option<u16> = None;
    let mut mode: Option<&str> = None;
    let mut icv: Option<u8> = None;
    for p in &parts {
        match p.as_str() {
            "128" | "192" | "256" if bits.is_none() => bits = p.parse().ok(),
            "cbc" | "ctr" | "gcm" if mode.is_none() => {
                mode = Some(match p.as_str() {
                    "ctr" => "ctr",
                    "gcm" => "gcm",
                    _ => "cbc",
                })
            }
            "8" | "12" | "16" if mode == Some("gcm") && icv.is_none() => icv = p.parse().ok(),
            "a" | "b" | "c" if mode == Some("gcm") && icv.is_none() => {
                icv = Some(match p.as_str() {
                    "a" => 8,
                    "b" => 12,
                    _ => 16,
                })
            }
            "ccm" | "gmac" | "xcbc" => return Err(format!("AES-{} is not supported", p.to_ascii_uppercase())),
            other => return Err(format!("`{other}` in cipher `{name}` is not understood (expected a key length 128/192/256, cbc, ctr or gcm)")),
        }
    }
    let key_bits = bits.unwrap_or(128);
    Ok(match mode.unwrap_or("cbc") {
        "ctr" => EncrAlg::AesCtr { key_bits },
        "gcm" => {
            if key_bits == 192 {
                return Err("AES-GCM with a 192-bit key is not supported (128 or 256)".into());
            }
            EncrAlg::AesGcm {
                key_bits,
                icv_bytes: icv.unwrap_or(16),
            }
        }
        _ => EncrAlg::AesCbc { key_bits },
    })
}

/// Parse an integrity algorithm name: `md5`, `md5-96`, `hmac-md5-96`, `sha1`, `sha1-96`, `sha`,
/// `sha2`, `sha256`, `sha2_256`, `sha2-256-128`, `sha384`, `sha2_512`... `null`/`none` = none.
pub fn parse_integ(name: &str) -> Result<IntegAlg, String> {
    let n = name.trim().to_ascii_lowercase().replace('-', "_");
    let n = n.strip_prefix("hmac_").unwrap_or(&n);
    let n = n.strip_prefix("auth_").unwrap_or(n);
    Ok(match n {
        "md5" | "md5_96" => IntegAlg::HmacMd5_96,
        "sha" | "sha1" | "sha1_96" | "sha_96" => IntegAlg::HmacSha1_96,
        "sha2" | "sha256" | "sha2_256" | "sha2_256_128" | "sha256_128" => IntegAlg::HmacSha256_128,
        "sha384" | "sha2_384" | "sha2_384_192" | "sha384_192" => IntegAlg::HmacSha384_192,
        "sha512" | "sha2_512" | "sha2_512_256" | "sha512_256" => IntegAlg::HmacSha512_256,
        "null" | "none" => IntegAlg::None,
        "sha2_256_96" | "sha256_96" => {
            return Err(
                "HMAC-SHA2-256 truncated to 96 bits (the pre-RFC 4868 Linux bug) is not supported"
                    .into(),
            )
        }
        _ => {
            return Err(format!(
            "unknown integrity algorithm `{name}` (known: md5, sha1, sha2_256, sha2_384, sha2_512)"
        ))
        }
    })
}

/// Parse `esp=` for manual keying: exactly one `cipher[-keylength]-integrity` (the integrity part
/// may be omitted, or be `null`, only for AES-GCM).
pub fn parse_esp(v: &str) -> Result<(EncrAlg, IntegAlg), String> {
    let v = v.trim().to_ascii_lowercase();
    if v.contains(',') {
        return Err(format!(
            "`{v}`: manual keying takes one algorithm, not a list"
        ));
    }
    if v.contains(';') {
        return Err(format!(
            "`{v}`: manual keying has no PFS group (remove the `;...` part)"
        ));
    }
    if v.is_empty() {
        return Err(format!("empty algorithm (e.g. {ESP_NAMES})"));
    }
    let tokens: Vec<&str> = v.split('-').collect();
    let (first, rest) = tokens
        .split_first()
        .ok_or_else(|| "empty algorithm".to_string())?;
    let is_aes = first.starts_with("aes");
    let is_gcm_so_far = |extra: &[&str]| first.contains("gcm") || extra.contains(&"gcm");
    // Further `-` parts that still describe the cipher: a mode, a key length, a GCM ICV length.
    let mut n_extra = 0;
    for t in rest {
        let taken = rest.get(..n_extra).unwrap_or(&[]);
        let belongs = matches!(*t, "cbc")
            || (is_aes && matches!(*t, "ctr" | "gcm" | "128" | "192" | "256"))
            || (is_aes && is_gcm_so_far(taken) && matches!(*t, "8" | "12" | "16"));
        if !belongs {
            break;
        }
        n_extra += 1;
    }
    let (extra, integ_parts) = rest.split_at(n_extra.min(rest.len()));
    let encr = parse_encr(first, extra).map_err(|e| format!("`{v}`: {e}"))?;
    let integ = if integ_parts.is_empty() {
        IntegAlg::None
    } else {
        parse_integ(&integ_parts.join("-")).map_err(|e| format!("`{v}`: {e}"))?
    };
    let aead = matches!(encr, EncrAlg::AesGcm { .. });
    if aead && integ != IntegAlg::None {
        return Err(format!(
            "`{v}`: AES-GCM carries its own integrity; write it without one (or with -null)"
        ));
    }
    if !aead && integ == IntegAlg::None {
        return Err(format!(
            "`{v}`: encryption without integrity is refused (open to cut-and-paste attacks); add one, e.g. {}-sha1",
            first
        ));
    }
    Ok((encr, integ))
}

/// Parse `ah=`: `hmac-md5-96`, `hmac-sha1-96`, `hmac-sha2_256`, `sha1`...
pub fn parse_ah(v: &str) -> Result<IntegAlg, String> {
    let v = v.trim();
    if v.contains(',') {
        return Err(format!(
            "`{v}`: manual keying takes one algorithm, not a list"
        ));
    }
    match parse_integ(v) {
        Ok(IntegAlg::None) => Err(format!("`{v}`: AH needs an integrity algorithm")),
        Ok(i) => Ok(i),
        Err(e) => Err(format!("`{v}`: {e}")),
    }
}

/// Swap the two ends of a conn, per-side manual keys included.
pub fn swap_ends(conn: &Conn) -> Conn {
    let mut c = conn.clone();
    std::mem::swap(&mut c.left, &mut c.right);
    if let Some(m) = c.manual.as_mut() {
        std::mem::swap(&mut m.left, &mut m.right);
    }
    c
}

/// Which protocols a manual conn uses.
fn uses(m: &ManualKeying) -> (bool, bool) {
    (m.esp.is_some(), m.ah.is_some())
}

/// Turn `spibase=` into explicit per-direction SPIs, numbered against the ends as written (see the
/// module doc), leaving explicitly given per-direction SPIs alone. Errors name `spibase=`.
fn expand_spibase(conn: &Conn) -> Result<Conn, String> {
    let mut c = conn.clone();
    let tunnel = c.conn_type != ConnType::Transport;
    let Some(m) = c.manual.as_mut() else {
        return Ok(c);
    };
    let Some(base) = m.spibase else { return Ok(c) };
    if m.spi.is_some() {
        return Err("spi= and spibase= both given: choose one".into());
    }
    if base & 0xf != 0 {
        return Err(format!(
            "spibase={base:#x}: must end in hex digit 0 (0x...0), as FreeS/WAN required"
        ));
    }
    let (esp, ah) = uses(m);
    let at = |off: u32| {
        base.checked_add(off)
            .ok_or_else(|| format!("spibase={base:#x}: too large"))
    };
    // FreeS/WAN: towards right even offsets, towards left odd; tunnel spent one pair on IP-in-IP.
    let first = if tunnel { 2 } else { 0 };
    let (esp_r, esp_l) = (at(first)?, at(first + 1)?);
    let (ah_r, ah_l) = if esp {
        (at(first + 2)?, at(first + 3)?)
    } else {
        (esp_r, esp_l)
    };
    let fill = |slot: &mut Option<u32>, v: u32| {
        if slot.is_none() {
            *slot = Some(v);
        }
    };
    if esp {
        fill(&mut m.right.esp_spi, esp_r);
        fill(&mut m.left.esp_spi, esp_l);
    }
    if ah {
        fill(&mut m.right.ah_spi, ah_r);
        fill(&mut m.left.ah_spi, ah_l);
    }
    m.spibase = None;
    Ok(c)
}

/// The conn with `left` as this host. `spibase=` is resolved first, against the ends as written.
pub fn oriented(conn: &Conn, orientation: Orientation) -> Result<Conn, String> {
    let c = expand_spibase(conn).map_err(|e| format!("\"{}\": {e}", conn.name))?;
    match orientation {
        Orientation::LeftIsLocal => Ok(c),
        Orientation::RightIsLocal => Ok(swap_ends(&c)),
        Orientation::Unoriented => Err(format!(
            "\"{}\": neither left={} nor right={} is an address of this host",
            conn.name, conn.left.host, conn.right.host
        )),
    }
}

fn host_ip(side: &str, h: &HostAddr) -> Result<IpAddr, String> {
    match h {
        HostAddr::Ip(ip) => Ok(*ip),
        other => Err(format!(
            "{side}={other}: manual keying and routing need the address written out (an IP address)"
        )),
    }
}

fn net(s: &crate::conf::values::Subnet) -> Net {
    Net {
        addr: s.addr,
        prefix: s.prefix_len,
    }
}

/// The selectors of one end: its subnets, or the host itself. `%any` with no subnet is everything
/// (shunt conns such as `type=passthrough right=%any`).
fn end_nets(side: &str, conn: &Conn, local: bool) -> Result<Vec<Net>, String> {
    let end = if local { &conn.left } else { &conn.right };
    if !end.subnets.is_empty() {
        return Ok(end.subnets.iter().map(net).collect());
    }
    match &end.host {
        HostAddr::Ip(ip) => Ok(vec![Net::host(*ip)]),
        HostAddr::Any => Ok(vec![
            Net {
                addr: IpAddr::from([0u8, 0, 0, 0]),
                prefix: 0,
            },
            Net {
                addr: IpAddr::from([0u16; 8]),
                prefix: 0,
            },
        ]),
        other => Err(format!(
            "{side}={other}: give {side}subnet= or an IP address for {side}="
        )),
    }
}

/// `protocol`, local ports, remote ports from `leftprotoport=`/`rightprotoport=`.
fn protoports(conn: &Conn) -> Result<(u8, Ports, Ports), String> {
    let port = |p: Option<u16>| p.map_or(Ports::ANY, |p| Ports { lo: p, hi: p });
    let (l, r) = (conn.left.protoport, conn.right.protoport);
    let lp = l.map_or(0, |p| p.protocol);
    let rp = r.map_or(0, |p| p.protocol);
    let proto = match (lp, rp) {
        (0, p) | (p, 0) => p,
        (a, b) if a == b => a,
        (a, b) => {
            return Err(format!(
                "leftprotoport= says protocol {a}, rightprotoport= {b}: they must agree"
            ))
        }
    };
    Ok((
        proto,
        port(l.and_then(|p| p.port)),
        port(r.and_then(|p| p.port)),
    ))
}

fn priority(src: &Net, dst: &Net) -> u32 {
    1000u32.saturating_sub(u32::from(src.prefix) + u32::from(dst.prefix))
}

/// Every same-family (local, remote) pair, or an error when there is none.
fn pairs(conn: &Conn) -> Result<Vec<(Net, Net)>, String> {
    let locals = end_nets("left", conn, true)?;
    let remotes = end_nets("right", conn, false)?;
    let mut out = Vec::new();
    for l in &locals {
        for r in &remotes {
            if l.addr.is_ipv4() == r.addr.is_ipv4() {
                out.push((*l, *r));
            }
        }
    }
    if out.is_empty() {
        return Err("the local and remote subnets have no address family in common".into());
    }
    Ok(out)
}

/// Outbound and inbound policies for every subnet pair.
fn policies(
    conn: &Conn,
    out: PolicyAction,
    inbound: Option<PolicyAction>,
) -> Result<Vec<PolicySpec>, String> {
    let (proto, lports, rports) = protoports(conn)?;
    let mut v = Vec::new();
    for (l, r) in pairs(conn)? {
        v.push(PolicySpec {
            conn: conn.name.clone(),
            direction: Direction::Out,
            selector: TrafficSelector {
                src: l,
                dst: r,
                proto,
                src_ports: lports,
                dst_ports: rports,
            },
            action: out.clone(),
            priority: priority(&l, &r),
            route: true,
        });
        if let Some(a) = &inbound {
            v.push(PolicySpec {
                conn: conn.name.clone(),
                direction: Direction::In,
                selector: TrafficSelector {
                    src: r,
                    dst: l,
                    proto,
                    src_ports: rports,
                    dst_ports: lports,
                },
                action: a.clone(),
                priority: priority(&r, &l),
                route: false,
            });
        }
    }
    Ok(v)
}

fn shunt_action(t: ConnType) -> Option<PolicyAction> {
    match t {
        ConnType::Passthrough => Some(PolicyAction::Pass),
        ConnType::Drop => Some(PolicyAction::Drop),
        ConnType::Reject => Some(PolicyAction::Reject),
        ConnType::Tunnel | ConnType::Transport => None,
    }
}

/// What `ipsecctl route NAME` installs: outbound policies and routes, no SAs (see the module doc).
/// `conn` must have `left` as this host ([`oriented`]).
pub fn route_state(conn: &Conn) -> Result<ConnState, String> {
    route_state_inner(conn).map_err(|e| format!("\"{}\": {e}", conn.name))
}

fn route_state_inner(conn: &Conn) -> Result<ConnState, String> {
    let action = shunt_action(conn.conn_type).unwrap_or(PolicyAction::Trap);
    let policies = policies(conn, action, None)?;
    Ok(ConnState {
        conn: conn.name.clone(),
        sas: Vec::new(),
        policies,
    })
}

/// Which keyword supplies a value for the SA towards one end: the per-side one if set, else the
/// common one. Returns the keyword's name with the value, for messages.
fn pick<'a, T>(
    side_name: &str,
    side: &'a Option<T>,
    common: &'a Option<T>,
    keyword: &str,
) -> Option<(String, &'a T)> {
    match (side, common) {
        (Some(v), _) => Some((format!("{side_name}{keyword}"), v)),
        (None, Some(v)) => Some((keyword.to_string(), v)),
        (None, None) => None,
    }
}

struct DirKeys<'a> {
    /// "left" or "right": the SA's destination end (in the oriented conn).
    dest: &'static str,
    side: &'a ManualSide,
}

fn secret(key: &SecretKey) -> SecretBytes {
    SecretBytes::new(key.expose().to_vec())
}

fn check_len(keyword: &str, what: &str, key: &SecretKey, want: usize) -> Result<(), String> {
    if key.len() != want {
        return Err(format!(
            "{keyword}=: {what} needs {want} bytes of key, got {} ({} hex digits)",
            key.len(),
            key.len() * 2
        ));
    }
    Ok(())
}

fn spi_for(
    m: &ManualKeying,
    d: &DirKeys<'_>,
    proto: IpsecProto,
    dst: IpAddr,
) -> Result<u32, String> {
    let (side_spi, kw) = match proto {
        IpsecProto::Esp => (d.side.esp_spi, "espspi"),
        IpsecProto::Ah => (d.side.ah_spi, "ahspi"),
    };
    side_spi.or(m.spi).ok_or_else(|| {
        format!(
            "no SPI for the {} SA to {dst}: give spi=, spibase= or {}{kw}=",
            if proto == IpsecProto::Esp {
                "ESP"
            } else {
                "AH"
            },
            d.dest
        )
    })
}

/// The SAs of one direction (ESP first, then AH), from `src` to `dst`.
#[allow(clippy::too_many_arguments)]
fn direction_sas(
    conn: &Conn,
    m: &ManualKeying,
    esp: Option<(EncrAlg, IntegAlg)>,
    ah: Option<IntegAlg>,
    d: &DirKeys<'_>,
    direction: Direction,
    src: IpAddr,
    dst: IpAddr,
    mode: SaMode,
) -> Result<Vec<SaSpec>, String> {
    let mut v = Vec::new();
    if let Some((encr, integ)) = esp {
        let spi = spi_for(m, d, IpsecProto::Esp, dst)?;
        let enc_key = match pick(d.dest, &d.side.esp_enc_key, &m.esp_enc_key, "espenckey") {
            Some((kw, k)) => {
                if encr == EncrAlg::Null {
                    return Err(format!("{kw}= given but esp= has no encryption (NULL)"));
                }
                check_len(&kw, &encr_name(encr), k, enc_key_len(encr))?;
                secret(k)
            }
            None if encr == EncrAlg::Null => SecretBytes::default(),
            None => {
                return Err(format!(
                    "no encryption key for the ESP SA to {dst}: give espenckey= or {}espenckey=",
                    d.dest
                ))
            }
        };
        let auth_key = match pick(d.dest, &d.side.esp_auth_key, &m.esp_auth_key, "espauthkey") {
            Some((kw, _)) if integ == IntegAlg::None => {
                return Err(format!(
                    "{kw}= given but {} carries its own integrity",
                    encr_name(encr)
                ))
            }
            Some((kw, k)) => {
                check_len(&kw, integ_name(integ), k, integ_key_len(integ))?;
                secret(k)
            }
            None if integ == IntegAlg::None => SecretBytes::default(),
            None => {
                return Err(format!(
                "no authentication key for the ESP SA to {dst}: give espauthkey= or {}espauthkey=",
                d.dest
            ))
            }
        };
        v.push(SaSpec {
            conn: conn.name.clone(),
            direction,
            proto: IpsecProto::Esp,
            spi,
            src,
            dst,
            mode,
            encap: None,
            encr,
            enc_key,
            integ,
            auth_key,
            esn: false,
            replay_window: m.esp_replay_window.unwrap_or(0),
            lifetime: SaLifetime::default(),
        });
    }
    if let Some(integ) = ah {
        let spi = spi_for(m, d, IpsecProto::Ah, dst)?;
        let auth_key = match pick(d.dest, &d.side.ah_key, &m.ah_key, "ahkey") {
            Some((kw, k)) => {
                check_len(&kw, integ_name(integ), k, integ_key_len(integ))?;
                secret(k)
            }
            None => {
                return Err(format!(
                    "no key for the AH SA to {dst}: give ahkey= or {}ahkey=",
                    d.dest
                ))
            }
        };
        v.push(SaSpec {
            conn: conn.name.clone(),
            direction,
            proto: IpsecProto::Ah,
            spi,
            src,
            dst,
            mode,
            encap: None,
            encr: EncrAlg::Null,
            enc_key: SecretBytes::default(),
            integ,
            auth_key,
            esn: false,
            replay_window: m.ah_replay_window.unwrap_or(0),
            lifetime: SaLifetime::default(),
        });
    }
    Ok(v)
}

fn manual_state_inner(conn: &Conn, insecure_aead: bool) -> Result<ConnState, String> {
    if shunt_action(conn.conn_type).is_some() {
        if conn
            .manual
            .as_ref()
            .is_some_and(|m| m.esp.is_some() || m.ah.is_some())
        {
            return Err(
                format!("type={:?} takes no esp= or ah=", conn.conn_type).to_ascii_lowercase()
            );
        }
        // `ipsec manual --up` of a shunt conn installs its shunt policy, as FreeS/WAN's eroute did.
        return route_state_inner(conn);
    }
    let m = conn.manual.as_ref().ok_or_else(|| {
        "not a manually keyed conn (no spi=, spibase=, esp=/espenckey= or ah=/ahkey=)".to_string()
    })?;
    let m = &{
        // spibase= not yet expanded (the caller skipped `oriented`): number as if left were left.
        let expanded = expand_spibase(conn)?;
        expanded.manual.unwrap_or_else(|| m.clone())
    };
    let esp = match &m.esp {
        Some(v) => {
            let (encr, integ) = parse_esp(v).map_err(|e| format!("esp={e}"))?;
            if is_counter_mode(encr) && !insecure_aead {
                return Err(format!("esp={v}: {COUNTER_MODE_REFUSAL}"));
            }
            Some((encr, integ))
        }
        None => None,
    };
    let ah = match &m.ah {
        Some(v) => Some(parse_ah(v).map_err(|e| format!("ah={e}"))?),
        None => None,
    };
    if esp.is_none() && ah.is_none() {
        let hint = if m.esp_enc_key.is_some()
            || m.left.esp_enc_key.is_some()
            || m.right.esp_enc_key.is_some()
        {
            " (espenckey= is given: add esp=, e.g. esp=aes128-sha1)"
        } else {
            ""
        };
        return Err(format!("neither esp= nor ah= is given{hint}"));
    }
    if esp.is_none() && (m.esp_enc_key.is_some() || m.esp_auth_key.is_some()) {
        return Err("espenckey=/espauthkey= given but no esp= algorithm".into());
    }
    if ah.is_none() && m.ah_key.is_some() {
        return Err("ahkey= given but no ah= algorithm".into());
    }
    let local = host_ip("left", &conn.left.host)?;
    let remote = host_ip("right", &conn.right.host)?;
    if local.is_ipv4() != remote.is_ipv4() {
        return Err(format!(
            "left={local} and right={remote} are of different address families"
        ));
    }
    let mode = match conn.conn_type {
        ConnType::Transport => {
            for (side, end, host) in [("left", &conn.left, local), ("right", &conn.right, remote)] {
                if end
                    .subnets
                    .iter()
                    .any(|s| s.addr != host || s.prefix_len != Net::host(host).prefix)
                {
                    return Err(format!(
                        "type=transport protects the hosts themselves: {side}subnet= is not allowed"
                    ));
                }
            }
            SaMode::Transport
        }
        _ => SaMode::Tunnel,
    };
    // Outbound: destination is the remote end (right); inbound: destination is us (left).
    let out_dir = DirKeys {
        dest: "right",
        side: &m.right,
    };
    let in_dir = DirKeys {
        dest: "left",
        side: &m.left,
    };
    let out_sas = direction_sas(
        conn,
        m,
        esp,
        ah,
        &out_dir,
        Direction::Out,
        local,
        remote,
        mode,
    )?;
    let in_sas = direction_sas(
        conn,
        m,
        esp,
        ah,
        &in_dir,
        Direction::In,
        remote,
        local,
        mode,
    )?;
    let ids = |v: &[SaSpec]| -> Vec<SaId> { v.iter().map(SaSpec::id).collect() };
    let policies = policies(
        conn,
        PolicyAction::Protect { sas: ids(&out_sas) },
        Some(PolicyAction::Protect { sas: ids(&in_sas) }),
    )?;
    let mut sas = out_sas;
    sas.extend(in_sas);
    // Two SAs with one identity would overwrite each other in fwd's SAD.
    for (i, a) in sas.iter().enumerate() {
        if sas.iter().skip(i + 1).any(|b| b.id() == a.id()) {
            return Err(format!(
                "two SAs would have SPI {:#x} to {}: check spi=/...spi=",
                a.spi, a.dst
            ));
        }
    }
    Ok(ConnState {
        conn: conn.name.clone(),
        sas,
        policies,
    })
}

/// What `ipsecctl manual up NAME` installs: the conn's SAs (outbound from this host to the peer,
/// inbound the reverse) and policies. `conn` must have `left` as this host ([`oriented`]). Errors
/// start with the conn's name and name the keyword at fault; they never contain key material.
pub fn manual_state(conn: &Conn, insecure_aead: bool) -> Result<ConnState, String> {
    manual_state_inner(conn, insecure_aead).map_err(|e| format!("\"{}\": {e}", conn.name))
}

/// Whether a state uses counter-mode ciphers (the daemon then logs an INSECURE warning).
pub fn uses_counter_mode(state: &ConnState) -> bool {
    state.sas.iter().any(|s| is_counter_mode(s.encr))
}

/// `N SAs, M policies`, for log lines and answers.
pub fn summary(state: &ConnState) -> String {
    format!("{} SAs, {} policies", state.sas.len(), state.policies.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::conf::{load_str, orient};

    const WEST: &str = "192.0.2.1";
    const EAST: &str = "192.0.2.2";
    const K3DES: &str = "0x0123456789abcdef_0123456789abcdef_0123456789abcdef";
    const KMD5: &str = "0x00112233445566778899aabbccddeeff";
    const KSHA1: &str = "0x00112233445566778899aabbccddeeff00112233";

    fn conn_of(body: &str) -> Conn {
        let text = format!("version 2\n\nconn t\n\tleft={WEST}\n\tright={EAST}\n{body}");
        let (cfg, _) = load_str("ipsec.conf", &text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        cfg.conns.into_iter().next().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The conn as the gateway owning `me` sees it.
    fn at(conn: &Conn, me: &str) -> Conn {
        let o = orient(conn, &[ip(me)]).unwrap();
        oriented(conn, o).unwrap()
    }

    fn up(body: &str, me: &str) -> Result<ConnState, String> {
        manual_state(&at(&conn_of(body), me), false)
    }

    fn basic() -> String {
        format!(
            "\tleftsubnet=10.1.0.0/16\n\trightsubnet=10.2.0.0/16\n\tspi=0x1000\n\tesp=3des-md5-96\n\
             \tespenckey={K3DES}\n\tespauthkey={KMD5}\n\tauto=manual\n"
        )
    }

    #[test]
    fn tunnel_3des_md5_from_west() {
        let s = up(&basic(), WEST).unwrap();
        assert_eq!(s.conn, "t");
        assert_eq!(s.sas.len(), 2);
        let out = &s.sas[0];
        assert_eq!(
            (out.direction, out.proto, out.spi),
            (Direction::Out, IpsecProto::Esp, 0x1000)
        );
        assert_eq!((out.src, out.dst), (ip(WEST), ip(EAST)));
        assert_eq!(out.mode, SaMode::Tunnel);
        assert_eq!(
            (out.encr, out.integ),
            (EncrAlg::TripleDesCbc, IntegAlg::HmacMd5_96)
        );
        assert_eq!(out.enc_key.len(), 24);
        assert_eq!(
            out.auth_key.expose(),
            &[
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]
        );
        assert_eq!(out.encap, None, "manual SAs are plain ESP");
        assert_eq!(
            out.replay_window, 0,
            "manual keying: no anti-replay by default"
        );
        assert!(!out.esn);
        assert_eq!(out.lifetime, SaLifetime::default());
        let inb = &s.sas[1];
        assert_eq!(
            (inb.direction, inb.spi, inb.src, inb.dst),
            (Direction::In, 0x1000, ip(EAST), ip(WEST))
        );
        // policies: out routed, in not
        assert_eq!(s.policies.len(), 2);
        let po = &s.policies[0];
        assert_eq!(po.direction, Direction::Out);
        assert!(po.route);
        assert_eq!(po.selector.src.to_string(), "10.1.0.0/16");
        assert_eq!(po.selector.dst.to_string(), "10.2.0.0/16");
        assert_eq!(
            po.action,
            PolicyAction::Protect {
                sas: vec![out.id()]
            }
        );
        assert_eq!(po.priority, 1000 - 32);
        let pi = &s.policies[1];
        assert_eq!(pi.direction, Direction::In);
        assert!(!pi.route);
        assert_eq!(pi.selector.src.to_string(), "10.2.0.0/16");
        assert_eq!(pi.selector.dst.to_string(), "10.1.0.0/16");
        assert_eq!(
            pi.action,
            PolicyAction::Protect {
                sas: vec![inb.id()]
            }
        );
    }

    /// Both gateways read the same file: west's outbound SA is east's inbound one, byte for byte.
    fn assert_mirrored(west: &ConnState, east: &ConnState) {
        assert_eq!(west.sas.len(), east.sas.len());
        for w in &west.sas {
            let peer_dir = if w.direction == Direction::Out {
                Direction::In
            } else {
                Direction::Out
            };
            let e = east
                .sas
                .iter()
                .find(|e| e.id() == w.id() && e.direction == peer_dir)
                .unwrap_or_else(|| panic!("east has no {peer_dir:?} SA {:?}", w.id()));
            assert_eq!(
                (e.src, e.dst, e.mode, e.encr, e.integ),
                (w.src, w.dst, w.mode, w.encr, w.integ)
            );
            assert_eq!(
                e.enc_key,
                w.enc_key,
                "same encryption key for SA {:?}",
                w.id()
            );
            assert_eq!(
                e.auth_key,
                w.auth_key,
                "same authentication key for SA {:?}",
                w.id()
            );
            assert_eq!(e.replay_window, w.replay_window);
        }
        for w in &west.policies {
            let peer_dir = if w.direction == Direction::Out {
                Direction::In
            } else {
                Direction::Out
            };
            assert!(
                east.policies.iter().any(|e| e.direction == peer_dir
                    && e.selector.src == w.selector.src
                    && e.selector.dst == w.selector.dst),
                "east has no {peer_dir:?} policy {} -> {}",
                w.selector.src,
                w.selector.dst
            );
        }
    }

    #[test]
    fn two_orientations_of_one_conn_give_mirrored_sas() {
        let s = up(&basic(), WEST).unwrap();
        let e = up(&basic(), EAST).unwrap();
        assert_mirrored(&s, &e);
        assert_eq!(
            e.policies[0].selector.src.to_string(),
            "10.2.0.0/16",
            "east's outbound is from its subnet"
        );
    }

    #[test]
    fn per_direction_keys_and_spis_key_the_sa_towards_that_end() {
        let body = "\tleftsubnet=10.1.0.0/16\n\trightsubnet=10.2.0.0/16\n\tesp=aes128-sha1\n\
             \tleftespspi=0x2001\n\trightespspi=0x2002\n\
             \tleftespenckey=0x11111111111111111111111111111111\n\
             \trightespenckey=0x22222222222222222222222222222222\n\
             \tleftespauthkey=0x3333333333333333333333333333333333333333\n\
             \trightespauthkey=0x4444444444444444444444444444444444444444\n";
        let w = up(body, WEST).unwrap();
        let out = w
            .sas
            .iter()
            .find(|s| s.direction == Direction::Out)
            .unwrap();
        assert_eq!(out.dst, ip(EAST));
        assert_eq!(
            out.spi, 0x2002,
            "rightespspi= is the SPI of the SA sent to right"
        );
        assert_eq!(
            out.enc_key.expose(),
            &[0x22; 16],
            "rightespenckey= keys the SA whose destination is right"
        );
        assert_eq!(out.auth_key.expose(), &[0x44; 20]);
        let inb = w.sas.iter().find(|s| s.direction == Direction::In).unwrap();
        assert_eq!((inb.spi, inb.dst), (0x2001, ip(WEST)));
        assert_eq!(inb.enc_key.expose(), &[0x11; 16]);
        let e = up(body, EAST).unwrap();
        assert_mirrored(&w, &e);
        let e_out = e
            .sas
            .iter()
            .find(|s| s.direction == Direction::Out)
            .unwrap();
        assert_eq!((e_out.spi, e_out.dst), (0x2001, ip(WEST)));
    }

    #[test]
    fn a_per_side_key_falls_back_to_the_common_one() {
        let body = format!(
            "\tspi=0x1000\n\tesp=3des-sha1-96\n\tespenckey={K3DES}\n\trightespenckey=0x{}\n\tespauthkey={KSHA1}\n",
            "ab".repeat(24)
        );
        let w = up(&body, WEST).unwrap();
        assert_eq!(w.sas[0].enc_key.expose(), &[0xab; 24]);
        assert_eq!(w.sas[1].enc_key.len(), 24);
        assert_ne!(w.sas[1].enc_key.expose(), &[0xab; 24]);
    }

    #[test]
    fn spibase_numbers_as_freeswan_and_both_ends_agree() {
        let body = format!(
            "\tspibase=0x3000\n\tesp=3des-md5-96\n\tespenckey={K3DES}\n\tespauthkey={KMD5}\n\
             \tah=hmac-sha1-96\n\tahkey={KSHA1}\n"
        );
        let w = up(&body, WEST).unwrap();
        let find = |s: &ConnState, d: Direction, p: IpsecProto| {
            s.sas
                .iter()
                .find(|x| x.direction == d && x.proto == p)
                .unwrap()
                .spi
        };
        // tunnel: towards right base+2 (ESP), +4 (AH); towards left base+3, +5
        assert_eq!(find(&w, Direction::Out, IpsecProto::Esp), 0x3002);
        assert_eq!(find(&w, Direction::Out, IpsecProto::Ah), 0x3004);
        assert_eq!(find(&w, Direction::In, IpsecProto::Esp), 0x3003);
        assert_eq!(find(&w, Direction::In, IpsecProto::Ah), 0x3005);
        let e = up(&body, EAST).unwrap();
        assert_eq!(find(&e, Direction::Out, IpsecProto::Esp), 0x3003);
        assert_eq!(find(&e, Direction::In, IpsecProto::Esp), 0x3002);
        assert_mirrored(&w, &e);
        // transport: base+0 / base+1
        let t = up(&format!("\ttype=transport\n{body}"), WEST).unwrap();
        assert_eq!(find(&t, Direction::Out, IpsecProto::Esp), 0x3000);
        assert_eq!(find(&t, Direction::In, IpsecProto::Esp), 0x3001);
        assert_eq!(find(&t, Direction::Out, IpsecProto::Ah), 0x3002);
        let bad = conn_of(&format!(
            "\tspibase=0x3001\n\tesp=3des-md5-96\n\tespenckey={K3DES}\n\tespauthkey={KMD5}\n"
        ));
        let err = oriented(&bad, Orientation::LeftIsLocal).unwrap_err();
        assert!(err.contains("spibase=") && err.contains("0x...0"), "{err}");
    }

    #[test]
    fn esp_inside_ah() {
        let body = format!(
            "\tspi=0x1000\n\tesp=aes256-sha2_256\n\tespenckey=0x{}\n\tespauthkey=0x{}\n\
             \tah=hmac-sha2_256\n\tahkey=0x{}\n",
            "01".repeat(32),
            "02".repeat(32),
            "03".repeat(32)
        );
        let s = up(&body, WEST).unwrap();
        assert_eq!(s.sas.len(), 4);
        let out_ids: Vec<SaId> = s
            .sas
            .iter()
            .filter(|x| x.direction == Direction::Out)
            .map(SaSpec::id)
            .collect();
        assert_eq!(
            out_ids.iter().map(|i| i.proto).collect::<Vec<_>>(),
            vec![IpsecProto::Esp, IpsecProto::Ah]
        );
        assert_eq!(s.policies[0].action, PolicyAction::Protect { sas: out_ids });
        let ah = s.sas.iter().find(|x| x.proto == IpsecProto::Ah).unwrap();
        assert_eq!(
            (ah.encr, ah.integ),
            (EncrAlg::Null, IntegAlg::HmacSha256_128)
        );
        assert_eq!(ah.auth_key.expose(), &[0x03; 32]);
        assert!(ah.enc_key.is_empty());
        let esp = s.sas.iter().find(|x| x.proto == IpsecProto::Esp).unwrap();
        assert_eq!(
            (esp.encr, esp.integ),
            (EncrAlg::AesCbc { key_bits: 256 }, IntegAlg::HmacSha256_128)
        );
    }

    #[test]
    fn transport_mode_is_host_to_host() {
        let body = format!("\ttype=transport\n\tspi=0x1000\n\tesp=3des-md5-96\n\tespenckey={K3DES}\n\tespauthkey={KMD5}\n");
        let s = up(&body, WEST).unwrap();
        assert!(s.sas.iter().all(|x| x.mode == SaMode::Transport));
        assert_eq!(s.policies[0].selector.src.to_string(), "192.0.2.1/32");
        assert_eq!(s.policies[0].selector.dst.to_string(), "192.0.2.2/32");
        assert_eq!(s.policies[0].priority, 1000 - 64);
        let err = up(&format!("\tleftsubnet=10.1.0.0/16\n{body}"), WEST).unwrap_err();
        assert!(
            err.contains("type=transport") && err.contains("leftsubnet="),
            "{err}"
        );
    }

    #[test]
    fn several_subnets_give_every_pair_and_specific_first() {
        let body = format!(
            "\tleftsubnets={{10.1.0.0/16 10.1.5.0/24}}\n\trightsubnet=10.2.0.0/16\n\tspi=0x1000\n\
             \tesp=3des-md5-96\n\tespenckey={K3DES}\n\tespauthkey={KMD5}\n"
        );
        let s = up(&body, WEST).unwrap();
        assert_eq!(s.policies.len(), 4);
        let outs: Vec<&PolicySpec> = s
            .policies
            .iter()
            .filter(|p| p.direction == Direction::Out)
            .collect();
        assert_eq!(outs.len(), 2);
        let specific = outs.iter().find(|p| p.selector.src.prefix == 24).unwrap();
        let broad = outs.iter().find(|p| p.selector.src.prefix == 16).unwrap();
        assert!(
            specific.priority < broad.priority,
            "more specific is tried first"
        );
        assert_eq!(s.sas.len(), 2, "one SA pair protects every subnet pair");
    }

    #[test]
    fn protoport_narrows_the_selectors() {
        let body = format!(
            "\ttype=transport\n\tleftprotoport=17/1701\n\trightprotoport=17/%any\n\tspi=0x1000\n\
             \tesp=3des-md5-96\n\tespenckey={K3DES}\n\tespauthkey={KMD5}\n"
        );
        let s = up(&body, WEST).unwrap();
        let o = &s.policies[0].selector;
        assert_eq!(
            (o.proto, o.src_ports, o.dst_ports),
            (17, Ports { lo: 1701, hi: 1701 }, Ports::ANY)
        );
        let i = &s.policies[1].selector;
        assert_eq!(
            (i.src_ports, i.dst_ports),
            (Ports::ANY, Ports { lo: 1701, hi: 1701 })
        );
    }

    #[test]
    fn replay_window_when_asked() {
        let s = up(&format!("{}\tespreplay_window=32\n", basic()), WEST).unwrap();
        assert!(s.sas.iter().all(|x| x.replay_window == 32));
    }

    #[test]
    fn gcm_and_ctr_are_refused_citing_the_rfcs_unless_insecure() {
        let gcm = format!(
            "\tspi=0x1000\n\tesp=aes_gcm128\n\tespenckey=0x{}\n",
            "5a".repeat(20)
        );
        let c = at(&conn_of(&gcm), WEST);
        let err = manual_state(&c, false).unwrap_err();
        assert!(
            err.contains("RFC 4106") && err.contains("esp=aes_gcm128") && err.contains("nonce"),
            "{err}"
        );
        let s = manual_state(&c, true).unwrap();
        assert_eq!(
            s.sas[0].encr,
            EncrAlg::AesGcm {
                key_bits: 128,
                icv_bytes: 16
            }
        );
        assert_eq!(
            s.sas[0].enc_key.len(),
            20,
            "key followed by the 4-byte salt"
        );
        assert!(s.sas[0].auth_key.is_empty());
        assert!(uses_counter_mode(&s));
        let ctr = format!(
            "\tspi=0x1000\n\tesp=aes_ctr256-sha1\n\tespenckey=0x{}\n\tespauthkey={KSHA1}\n",
            "5a".repeat(36)
        );
        let c = at(&conn_of(&ctr), WEST);
        let err = manual_state(&c, false).unwrap_err();
        assert!(err.contains("RFC 3686"), "{err}");
        assert_eq!(
            manual_state(&c, true).unwrap().sas[0].encr,
            EncrAlg::AesCtr { key_bits: 256 }
        );
        assert!(!uses_counter_mode(&up(&basic(), WEST).unwrap()));
    }

    #[test]
    fn errors_name_the_keyword_and_never_the_key() {
        let cases: &[(&str, &[&str])] = &[
            // 16 bytes for 3DES
            ("\tspi=0x1000\n\tesp=3des-md5-96\n\tespenckey=0xdeadbeefdeadbeefdeadbeefdeadbeef\n\tespauthkey=0x00112233445566778899aabbccddeeff\n", &["espenckey=", "24 bytes", "got 16"]),
            ("\tspi=0x1000\n\tesp=3des-sha1-96\n\tespenckey=0x0123456789abcdef0123456789abcdef0123456789abcdef\n\tespauthkey=0x00112233445566778899aabbccddeeff\n", &["espauthkey=", "20 bytes"]),
            ("\tspi=0x1000\n\tesp=3des-md5-96\n\tespenckey=0x0123456789abcdef0123456789abcdef0123456789abcdef\n\trightespauthkey=0x00112233445566778899aabbccddeeff\n", &["leftespauthkey="]),
            ("\tspi=0x1000\n\tesp=blowfish-md5\n\tespenckey=0x00\n", &["esp=", "blowfish"]),
            ("\tspi=0x1000\n\tesp=3des\n\tespenckey=0x0123456789abcdef0123456789abcdef0123456789abcdef\n", &["esp=", "without integrity"]),
            ("\tspi=0x1000\n\tesp=aes128-sha1,3des-md5\n", &["esp=", "one algorithm"]),
            ("\tspi=0x1000\n\tah=hmac-md5-96\n", &["ahkey="]),
            ("\tspi=0x1000\n\tespenckey=0x0123456789abcdef0123456789abcdef0123456789abcdef\n", &["esp="]),
            ("\tesp=3des-md5-96\n\tespenckey=0x0123456789abcdef0123456789abcdef0123456789abcdef\n\tespauthkey=0x00112233445566778899aabbccddeeff\n\tleftespspi=0x1000\n", &["rightespspi=", "spi="]),
            ("\tspi=0x1000\n\tesp=aes_gcm128-sha1\n\tespenckey=0x00\n", &["esp=", "own integrity"]),
        ];
        for (body, wants) in cases {
            let conn = conn_of(body);
            let err = manual_state(&at(&conn, WEST), false).expect_err(body);
            assert!(err.starts_with("\"t\": "), "{err}");
            for w in *wants {
                assert!(err.contains(w), "`{err}` should mention `{w}` ({body})");
            }
            for secret in ["deadbeef", "0123456789abcdef", "00112233"] {
                assert!(!err.contains(secret), "key material in `{err}`");
            }
        }
    }

    #[test]
    fn hosts_must_be_addresses_and_families_agree() {
        let text = format!("version 2\n\nconn t\n\tleft=%defaultroute\n\tright={EAST}\n\tspi=0x1000\n\tesp=3des-md5-96\n\tespenckey={K3DES}\n\tespauthkey={KMD5}\n");
        let (cfg, _) = load_str("ipsec.conf", &text).unwrap();
        let err = manual_state(&cfg.conns[0], false).unwrap_err();
        assert!(err.contains("left=%defaultroute"), "{err}");
        let text = format!("version 2\n\nconn t\n\tleft={WEST}\n\tright=2001:db8::2\n\tspi=0x1000\n\tesp=3des-md5-96\n\tespenckey={K3DES}\n\tespauthkey={KMD5}\n");
        let (cfg, _) = load_str("ipsec.conf", &text).unwrap();
        let err = manual_state(&cfg.conns[0], false).unwrap_err();
        assert!(err.contains("address families"), "{err}");
    }

    #[test]
    fn ipv6_manual_tunnel() {
        let text = format!(
            "version 2\n\nconn t\n\tleft=2001:db8::1\n\tright=2001:db8::2\n\tleftsubnet=2001:db8:1::/48\n\
             \trightsubnet=2001:db8:2::/48\n\tspi=0x1000\n\tesp=3des-md5-96\n\tespenckey={K3DES}\n\tespauthkey={KMD5}\n"
        );
        let (cfg, _) = load_str("ipsec.conf", &text).unwrap();
        let c = oriented(
            &cfg.conns[0],
            orient(&cfg.conns[0], &[ip("2001:db8::2")]).unwrap(),
        )
        .unwrap();
        let s = manual_state(&c, false).unwrap();
        assert_eq!(s.sas[0].dst, ip("2001:db8::1"));
        assert_eq!(s.policies[0].priority, 1000 - 96);
    }

    #[test]
    fn unoriented_conns_are_refused() {
        let err = oriented(&conn_of(&basic()), Orientation::Unoriented).unwrap_err();
        assert!(
            err.contains("neither left=") && err.contains("\"t\""),
            "{err}"
        );
    }

    #[test]
    fn route_state_is_traps_and_shunts() {
        let s = route_state(&at(&conn_of(&basic()), WEST)).unwrap();
        assert!(s.sas.is_empty());
        assert_eq!(s.policies.len(), 1, "outbound only");
        assert_eq!(s.policies[0].action, PolicyAction::Trap);
        assert!(s.policies[0].route);
        assert_eq!(s.policies[0].selector.dst.to_string(), "10.2.0.0/16");
        for (t, a) in [
            ("passthrough", PolicyAction::Pass),
            ("drop", PolicyAction::Drop),
            ("reject", PolicyAction::Reject),
        ] {
            let c = at(
                &conn_of(&format!(
                    "\ttype={t}\n\trightsubnet=10.9.0.0/16\n\tauthby=never\n"
                )),
                WEST,
            );
            let s = route_state(&c).unwrap();
            assert_eq!(s.policies.len(), 1);
            assert_eq!(s.policies[0].action, a, "type={t}");
            assert!(
                s.policies[0].route,
                "type={t}: routed (a throw route for passthrough)"
            );
            // `manual up` of a shunt conn installs the same
            assert_eq!(manual_state(&c, false).unwrap(), s);
        }
    }

    #[test]
    fn esp_names() {
        let ok: &[(&str, EncrAlg, IntegAlg)] = &[
            ("3des-md5-96", EncrAlg::TripleDesCbc, IntegAlg::HmacMd5_96),
            ("3des-sha1-96", EncrAlg::TripleDesCbc, IntegAlg::HmacSha1_96),
            (
                "3des-cbc-sha1",
                EncrAlg::TripleDesCbc,
                IntegAlg::HmacSha1_96,
            ),
            (
                "aes128-sha1",
                EncrAlg::AesCbc { key_bits: 128 },
                IntegAlg::HmacSha1_96,
            ),
            (
                "aes-sha1",
                EncrAlg::AesCbc { key_bits: 128 },
                IntegAlg::HmacSha1_96,
            ),
            (
                "aes-128-sha1",
                EncrAlg::AesCbc { key_bits: 128 },
                IntegAlg::HmacSha1_96,
            ),
            (
                "AES256-SHA2_256",
                EncrAlg::AesCbc { key_bits: 256 },
                IntegAlg::HmacSha256_128,
            ),
            (
                "aes256-sha2",
                EncrAlg::AesCbc { key_bits: 256 },
                IntegAlg::HmacSha256_128,
            ),
            (
                "aes_cbc192-sha2_512",
                EncrAlg::AesCbc { key_bits: 192 },
                IntegAlg::HmacSha512_256,
            ),
            (
                "aes_cbc-sha384",
                EncrAlg::AesCbc { key_bits: 128 },
                IntegAlg::HmacSha384_192,
            ),
            (
                "aes256-hmac-sha2-256",
                EncrAlg::AesCbc { key_bits: 256 },
                IntegAlg::HmacSha256_128,
            ),
            ("null-sha1", EncrAlg::Null, IntegAlg::HmacSha1_96),
            (
                "aes_gcm",
                EncrAlg::AesGcm {
                    key_bits: 128,
                    icv_bytes: 16,
                },
                IntegAlg::None,
            ),
            (
                "aes_gcm_a-256",
                EncrAlg::AesGcm {
                    key_bits: 256,
                    icv_bytes: 8,
                },
                IntegAlg::None,
            ),
            (
                "aes128gcm12",
                EncrAlg::AesGcm {
                    key_bits: 128,
                    icv_bytes: 12,
                },
                IntegAlg::None,
            ),
            (
                "aes_gcm256-null",
                EncrAlg::AesGcm {
                    key_bits: 256,
                    icv_bytes: 16,
                },
                IntegAlg::None,
            ),
            (
                "aesctr-md5",
                EncrAlg::AesCtr { key_bits: 128 },
                IntegAlg::HmacMd5_96,
            ),
            (
                "aes_ctr192-sha1",
                EncrAlg::AesCtr { key_bits: 192 },
                IntegAlg::HmacSha1_96,
            ),
        ];
        for (name, e, i) in ok {
            assert_eq!(parse_esp(name), Ok((*e, *i)), "{name}");
        }
        for bad in [
            "",
            "des-md5",
            "aes512-sha1",
            "aes_ccm-null",
            "aes128-sha2_256_96",
            "3des-ctr-md5",
            "aes_gcm192",
            "rc5-md5",
            "aes128-sha1;modp2048",
            "aes-foo-sha1",
        ] {
            assert!(parse_esp(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_ah("hmac-md5-96"), Ok(IntegAlg::HmacMd5_96));
        assert_eq!(parse_ah("hmac-sha1-96"), Ok(IntegAlg::HmacSha1_96));
        assert_eq!(parse_ah("hmac-sha2_256"), Ok(IntegAlg::HmacSha256_128));
        assert!(parse_ah("null").is_err());
    }

    #[test]
    fn key_lengths_match_fwd() {
        assert_eq!(enc_key_len(EncrAlg::TripleDesCbc), 24);
        assert_eq!(enc_key_len(EncrAlg::AesCbc { key_bits: 192 }), 24);
        assert_eq!(enc_key_len(EncrAlg::AesCtr { key_bits: 256 }), 36);
        assert_eq!(
            enc_key_len(EncrAlg::AesGcm {
                key_bits: 128,
                icv_bytes: 8
            }),
            20
        );
        assert_eq!(integ_key_len(IntegAlg::HmacSha512_256), 64);
    }

    #[test]
    fn debug_output_of_a_state_shows_no_key() {
        let s = up(&basic(), WEST).unwrap();
        let dbg = format!("{s:?}");
        assert!(dbg.contains("redacted"), "{dbg}");
        assert!(
            !dbg.contains("171, 205") && !dbg.to_ascii_lowercase().contains("abcdef"),
            "{dbg}"
        );
    }

    proptest::proptest! {
        #[test]
        fn esp_parser_never_panics(s in "\\PC{0,40}") {
            let _ = parse_esp(&s);
            let _ = parse_ah(&s);
        }
    }
}
