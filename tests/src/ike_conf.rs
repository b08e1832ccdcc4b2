//! One description of an IKE tunnel ([`IkeTunnel`]), written out for both kinds of peer the interop
//! tests run: ferroswan's `ipsec.conf`/`ipsec.secrets` (FreeS/WAN syntax, one file read by both
//! sides) and strongSwan's `swanctl.conf` with its key files. Changing the description changes both
//! sides at once, so a test cannot configure the two ends differently by accident.
//!
//! Semantics carried across (FreeS/WAN → swanctl):
//! - `esp=` lists ESP algorithms; with `pfs=yes` and no group of its own a proposal gets the first IKE
//!   proposal's group on the strongSwan side (FreeS/WAN: the PFS group follows phase 1);
//! - `ikelifetime`/`keylife` are hard lifetimes and rekeying starts `rekeymargin` + up to 100 % fuzz
//!   before them: swanctl `rekey_time = life − margin`, `rand_time = margin` (and `over_time = margin`
//!   for the IKE SA, `life_time = keylife` for the CHILD_SA);
//! - `dpdaction=hold` is swanctl's `trap`; `auto=add|route|start` is `start_action=none|trap|start`;
//! - no subnet means the host itself (`dynamic` traffic selectors).
//!
//! RSA keys ([`RsaKey`]) are generated with the `openssl` CLI and converted here, without any crate:
//! PKCS#1/PKCS#8/SubjectPublicKeyInfo DER and PEM for strongSwan, the RFC 3110 `0s…` public key and
//! the `: RSA { … }` block for ferroswan, and back from an `ipsecctl rsasigkey` block.
//! Test keys only: they are not zeroized, but never appear in `Debug` output.

use crate::strongswan::SwanConf;
use crate::topology::{EAST_LAN_NET, EAST_WAN, WEST_LAN_NET, WEST_WAN};
use crate::Result;
use std::process::{Command, Stdio};

/// How the peers authenticate.
#[derive(Clone, Debug)]
pub enum Auth {
    /// A pre-shared key (its bytes are sent to both files exactly).
    Psk(String),
    /// RSA signatures with raw public keys: each side has its own private key and the other's
    /// public key.
    Rsa(Box<RsaPair>),
}

impl Auth {
    pub fn rsa(pair: RsaPair) -> Auth {
        Auth::Rsa(Box::new(pair))
    }
}

/// What a peer does with the tunnel once loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auto {
    /// Loaded and answered only (swanctl `start_action = none`).
    Add,
    /// Trapped: negotiated on the first packet (`trap`).
    Route,
    /// Negotiated at once (`start`).
    Start,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpdAction {
    Clear,
    Hold,
    Restart,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dpd {
    pub delay_secs: u64,
    /// IKEv1 only in strongSwan (IKEv2 uses its retransmission timeout).
    pub timeout_secs: u64,
    pub action: DpdAction,
}

/// FreeS/WAN lifetimes, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// `ikelifetime=`
    pub ike_secs: u64,
    /// `keylife=` (`salifetime=`)
    pub child_secs: u64,
    /// `rekeymargin=`
    pub margin_secs: u64,
}

/// One IKEv1/IKEv2 tunnel between `left` and `right`.
#[derive(Clone, Debug)]
pub struct IkeTunnel {
    /// Conn name in ipsec.conf; connection and child name in swanctl.conf.
    pub name: String,
    /// 1 or 2.
    pub version: u8,
    pub auth: Auth,
    /// IKE proposal(s), strongSwan style, comma separated: `3des-md5-modp1024`.
    pub ike: String,
    /// ESP proposal(s): `aes128-sha1` (a DH group may be given; see the module notes on PFS).
    pub esp: String,
    /// Addresses (`%any` for a peer whose address is not known, e.g. behind a NAT).
    pub left: String,
    pub right: String,
    /// IDs (`@west`, an address, `user@fqdn`); None: the address.
    pub left_id: Option<String>,
    pub right_id: Option<String>,
    /// Protected subnets; empty: the host itself.
    pub left_subnets: Vec<String>,
    pub right_subnets: Vec<String>,
    pub pfs: bool,
    /// None: each implementation's defaults.
    pub lifetimes: Option<Lifetimes>,
    pub dpd: Option<Dpd>,
    pub auto: Auto,
}

impl IkeTunnel {
    /// A host-to-host tunnel with AES-128/SHA-1/MODP-2048, PFS, `auto=add`.
    pub fn new(name: &str, version: u8, auth: Auth, left: &str, right: &str) -> IkeTunnel {
        IkeTunnel {
            name: name.to_owned(),
            version,
            auth,
            ike: "aes128-sha1-modp2048".into(),
            esp: "aes128-sha1".into(),
            left: left.to_owned(),
            right: right.to_owned(),
            left_id: None,
            right_id: None,
            left_subnets: Vec::new(),
            right_subnets: Vec::new(),
            pfs: true,
            lifetimes: None,
            dpd: None,
            auto: Auto::Add,
        }
    }

    /// West's LAN to east's LAN in the plain [`GatewayPair`](crate::topology::GatewayPair): west is left.
    pub fn lan_to_lan(name: &str, version: u8, auth: Auth) -> IkeTunnel {
        let mut t = IkeTunnel::new(name, version, auth, WEST_WAN, EAST_WAN);
        t.left_subnets = vec![WEST_LAN_NET.into()];
        t.right_subnets = vec![EAST_LAN_NET.into()];
        t
    }

    fn id(&self, left: bool) -> String {
        let (id, addr) = if left {
            (&self.left_id, &self.left)
        } else {
            (&self.right_id, &self.right)
        };
        id.clone().unwrap_or_else(|| addr.clone())
    }

    /// ferroswan's `ipsec.conf` (the same text for both sides: FreeS/WAN orients by address) and
    /// `ipsec.secrets` for the side that is left when `local_is_left` (it holds that side's RSA
    /// private key; a PSK line is the same on both sides).
    pub fn ferroswan_conf(&self, local_is_left: bool) -> (String, String) {
        let mut c = String::from("version 2\n\nconfig setup\n\n");
        c.push_str(&format!("conn {}\n", self.name));
        let mut kv = |k: &str, v: &str| c.push_str(&format!("\t{k}={}\n", conf_value(v)));
        kv(
            "keyexchange",
            if self.version == 1 { "ikev1" } else { "ikev2" },
        );
        kv(
            "authby",
            match self.auth {
                Auth::Psk(_) => "secret",
                Auth::Rsa(_) => "rsasig",
            },
        );
        for (side, left) in [("left", true), ("right", false)] {
            let (addr, id, subnets) = if left {
                (&self.left, &self.left_id, &self.left_subnets)
            } else {
                (&self.right, &self.right_id, &self.right_subnets)
            };
            kv(side, addr);
            if let Some(id) = id {
                kv(&format!("{side}id"), id);
            }
            match subnets.as_slice() {
                [] => {}
                [one] => kv(&format!("{side}subnet"), one),
                many => c_push_raw(&mut kv, &format!("{side}subnets"), many),
            }
            if let Auth::Rsa(pair) = &self.auth {
                let key = if left { &pair.left } else { &pair.right };
                kv(&format!("{side}rsasigkey"), &key.rfc3110());
            }
        }
        kv("ike", &self.ike);
        kv("esp", &self.esp);
        kv("pfs", if self.pfs { "yes" } else { "no" });
        if let Some(l) = &self.lifetimes {
            kv("ikelifetime", &format!("{}s", l.ike_secs));
            kv("keylife", &format!("{}s", l.child_secs));
            kv("rekeymargin", &format!("{}s", l.margin_secs));
        }
        if let Some(d) = &self.dpd {
            kv("dpddelay", &format!("{}s", d.delay_secs));
            kv("dpdtimeout", &format!("{}s", d.timeout_secs));
            kv(
                "dpdaction",
                match d.action {
                    DpdAction::Clear => "clear",
                    DpdAction::Hold => "hold",
                    DpdAction::Restart => "restart",
                },
            );
        }
        kv(
            "auto",
            match self.auto {
                Auto::Add => "add",
                Auto::Route => "route",
                Auto::Start => "start",
            },
        );

        let mut s = String::from("# written by ferroswan's test harness (tests/src/ike_conf.rs)\n");
        match &self.auth {
            Auth::Psk(psk) => {
                s.push_str(&format!(
                    "{} : PSK {}\n",
                    self.selectors().join(" "),
                    secrets_psk(psk)
                ));
            }
            Auth::Rsa(pair) => {
                let key = if local_is_left {
                    &pair.left
                } else {
                    &pair.right
                };
                s.push_str(&key.secrets_entry(&secrets_selector(&self.id(local_is_left))));
            }
        }
        (c, s)
    }

    /// Every concrete ID and address of both ends, without duplicates (`%any` left out): a PSK is
    /// found by IDs or, in IKEv1 Main Mode before the IDs are known, by addresses.
    fn selectors(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for s in [
            self.id(true),
            self.id(false),
            self.left.clone(),
            self.right.clone(),
        ] {
            if !is_any(&s) && !v.contains(&s) {
                v.push(s);
            }
        }
        v
    }

    /// strongSwan's swanctl.conf (and key files) for the side that is left when `local_is_left`.
    pub fn swanctl_conf(&self, local_is_left: bool) -> SwanConf {
        let l = local_is_left;
        let (laddr, raddr) = if l {
            (&self.left, &self.right)
        } else {
            (&self.right, &self.left)
        };
        let (lnets, rnets) = if l {
            (&self.left_subnets, &self.right_subnets)
        } else {
            (&self.right_subnets, &self.left_subnets)
        };
        let (lside, rside) = if l {
            ("left", "right")
        } else {
            ("right", "left")
        };
        let name = &self.name;
        let mut files = Vec::new();
        let mut t = String::from("# written by ferroswan's test harness (tests/src/ike_conf.rs)\n");
        t.push_str(&format!("connections {{\n    {} {{\n", swan_value(name)));
        let mut conn = |k: &str, v: &str| t.push_str(&format!("        {k} = {v}\n"));
        conn("version", &self.version.to_string());
        if !is_any(laddr) {
            conn("local_addrs", &swan_value(laddr));
        }
        conn(
            "remote_addrs",
            &if is_any(raddr) {
                "%any".to_string()
            } else {
                swan_value(raddr)
            },
        );
        conn("proposals", &self.ike);
        conn("send_certreq", "no");
        if self.version == 2 {
            conn("mobike", "no");
        }
        if let Some(lt) = &self.lifetimes {
            conn(
                "rekey_time",
                &format!("{}s", lt.ike_secs.saturating_sub(lt.margin_secs).max(1)),
            );
            conn("over_time", &format!("{}s", lt.margin_secs));
            conn("rand_time", &format!("{}s", lt.margin_secs));
        }
        if let Some(d) = &self.dpd {
            conn("dpd_delay", &format!("{}s", d.delay_secs));
            conn("dpd_timeout", &format!("{}s", d.timeout_secs));
        }
        for (section, side, is_left) in [("local", lside, l), ("remote", rside, !l)] {
            t.push_str(&format!("        {section} {{\n"));
            let id = self.id(is_left);
            match &self.auth {
                Auth::Psk(_) => t.push_str("            auth = psk\n"),
                Auth::Rsa(pair) => {
                    t.push_str("            auth = pubkey\n");
                    let key = if is_left { &pair.left } else { &pair.right };
                    let file = format!("{name}-{side}.pem");
                    t.push_str(&format!("            pubkeys = {}\n", swan_value(&file)));
                    files.push((format!("pubkey/{file}"), key.public_pem().into_bytes()));
                    if section == "local" {
                        files.push((format!("private/{file}"), key.pkcs8_pem().into_bytes()));
                    }
                }
            }
            t.push_str(&format!("            id = {}\n", swan_value(&id)));
            t.push_str("        }\n");
        }
        t.push_str(&format!(
            "        children {{\n            {} {{\n",
            swan_value(name)
        ));
        let mut child = |k: &str, v: &str| t.push_str(&format!("                {k} = {v}\n"));
        let ts = |nets: &Vec<String>| {
            if nets.is_empty() {
                "dynamic".to_string()
            } else {
                nets.join(",")
            }
        };
        child("local_ts", &ts(lnets));
        child("remote_ts", &ts(rnets));
        child("mode", "tunnel");
        child("esp_proposals", &self.swan_esp_proposals());
        child(
            "start_action",
            match self.auto {
                Auto::Add => "none",
                Auto::Route => "trap",
                Auto::Start => "start",
            },
        );
        if let Some(d) = &self.dpd {
            child(
                "dpd_action",
                match d.action {
                    DpdAction::Clear => "clear",
                    DpdAction::Hold => "trap",
                    DpdAction::Restart => "restart",
                },
            );
        }
        if let Some(lt) = &self.lifetimes {
            child(
                "rekey_time",
                &format!("{}s", lt.child_secs.saturating_sub(lt.margin_secs).max(1)),
            );
            child("life_time", &format!("{}s", lt.child_secs));
            child("rand_time", &format!("{}s", lt.margin_secs));
        }
        t.push_str("            }\n        }\n    }\n}\n");
        if let Auth::Psk(psk) = &self.auth {
            t.push_str(&format!("secrets {{\n    ike-{} {{\n", swan_value(name)));
            for (i, sel) in self.selectors().iter().enumerate() {
                t.push_str(&format!("        id-{} = {}\n", i + 1, swan_value(sel)));
            }
            t.push_str(&format!(
                "        secret = 0x{}\n    }}\n}}\n",
                hex(psk.as_bytes())
            ));
        }
        SwanConf { text: t, files }
    }

    /// `esp_proposals` for strongSwan: with PFS, each proposal without a DH group gets the first IKE
    /// proposal's group.
    pub fn swan_esp_proposals(&self) -> String {
        let group = dh_group(&self.ike);
        self.esp
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match (&group, self.pfs && dh_group(p).is_none()) {
                (Some(g), true) => format!("{p}-{g}"),
                _ => p.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn c_push_raw(kv: &mut impl FnMut(&str, &str), key: &str, many: &[String]) {
    kv(key, &format!("{{{}}}", many.join(" ")));
}

fn is_any(s: &str) -> bool {
    matches!(s, "%any" | "%any6" | "0.0.0.0" | "::")
}

/// The DH group of the first proposal in `proposals` (`modp2048`, `ecp256`, `curve25519` …).
pub fn dh_group(proposals: &str) -> Option<String> {
    proposals
        .split(',')
        .next()?
        .split('-')
        .map(str::trim)
        .find(|t| {
            ["modp", "ecp", "curve", "x25519", "x448", "ffdhe"]
                .iter()
                .any(|p| t.starts_with(p))
        })
        .map(str::to_owned)
}

/// An ipsec.conf value, quoted when it holds anything but a plain word (`{a b}` lists pass as is).
fn conf_value(v: &str) -> String {
    let plain = (v.starts_with('{') && v.ends_with('}'))
        || (!v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "@.:-_/%+,=".contains(c)));
    if plain {
        v.to_owned()
    } else {
        format!("\"{}\"", v.replace('"', ""))
    }
}

/// A swanctl.conf value, quoted (with `\"` escapes) when it holds anything but a plain word.
fn swan_value(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@.:-_/%*+".contains(c))
    {
        v.to_owned()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The selector of an ipsec.secrets entry (an ID with spaces is quoted).
fn secrets_selector(id: &str) -> String {
    if id
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == ':')
    {
        format!("\"{}\"", id.replace('"', ""))
    } else {
        id.to_owned()
    }
}

/// A PSK as ipsec.secrets writes it: quoted text when that is exact, else `0x` hex.
fn secrets_psk(psk: &str) -> String {
    if !psk.is_empty() && psk.chars().all(|c| (' '..='~').contains(&c) && c != '"') {
        format!("\"{psk}\"")
    } else {
        format!("0x{}", hex(psk.as_bytes()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    let s: String = s.chars().filter(|c| *c != '_').collect();
    let s = if s.len() % 2 == 1 { format!("0{s}") } else { s };
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("bad hex {s:?}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Base64 (RFC 4648, with padding), for PEM and RFC 3110 `0s` values.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let idx = ((n >> shift) & 63) as usize;
                out.push(char::from(B64.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in text.bytes() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            break;
        }
        let v = B64
            .iter()
            .position(|&x| x == c)
            .ok_or_else(|| format!("bad base64 character {:?}", char::from(c)))?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b = base64_encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(line));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// The DER inside a PEM text with `label`.
pub fn pem_decode(text: &str, label: &str) -> Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or_else(|| format!("no {begin}"))? + begin.len();
    let stop = text.find(&end).ok_or_else(|| format!("no {end}"))?;
    base64_decode(text.get(start..stop).ok_or("PEM markers out of order")?)
}

// ---------------------------------------------------------------------------------------------
// Minimal DER: the RSA structures only.

const OID_RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        v.push(0x80 | bytes.len() as u8);
        v.extend_from_slice(&bytes);
    }
    v.extend_from_slice(content);
    v
}

fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let stripped = strip_zeros(bytes);
    let mut c = Vec::with_capacity(stripped.len() + 1);
    if stripped.first().is_none_or(|b| b & 0x80 != 0) {
        c.push(0);
    }
    c.extend_from_slice(stripped);
    der_tlv(0x02, &c)
}

fn der_seq(parts: &[Vec<u8>]) -> Vec<u8> {
    der_tlv(0x30, &parts.concat())
}

fn rsa_algorithm_id() -> Vec<u8> {
    der_seq(&[der_tlv(0x06, &OID_RSA), der_tlv(0x05, &[])])
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|x| **x == 0).count();
    b.get(n..).unwrap_or_default()
}

/// A reader over DER elements that never reads past its buffer.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn next(&mut self, want_tag: u8) -> Result<&'a [u8]> {
        let (&tag, rest) = self.0.split_first().ok_or("DER: truncated")?;
        if tag != want_tag {
            return Err(format!("DER: tag {tag:#04x}, expected {want_tag:#04x}"));
        }
        let (&l0, rest) = rest.split_first().ok_or("DER: truncated length")?;
        let (len, rest) = if l0 < 0x80 {
            (usize::from(l0), rest)
        } else {
            let k = usize::from(l0 & 0x7f);
            if k == 0 || k > 4 {
                return Err("DER: unsupported length".into());
            }
            let lb = rest.get(..k).ok_or("DER: truncated length")?;
            let len = lb.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
            (len, rest.get(k..).unwrap_or_default())
        };
        let content = rest.get(..len).ok_or("DER: truncated content")?;
        self.0 = rest.get(len..).unwrap_or_default();
        Ok(content)
    }

    fn uint(&mut self) -> Result<Vec<u8>> {
        Ok(strip_zeros(self.next(0x02)?).to_vec())
    }
}

// ---------------------------------------------------------------------------------------------
// RSA keys.

/// An RSA private key (big-endian numbers without leading zeros).
#[derive(Clone, PartialEq, Eq)]
pub struct RsaKey {
    pub modulus: Vec<u8>,
    pub public_exponent: Vec<u8>,
    d: Vec<u8>,
    p: Vec<u8>,
    q: Vec<u8>,
    dp: Vec<u8>,
    dq: Vec<u8>,
    qinv: Vec<u8>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaKey({} bits, keyid {})", self.bits(), self.keyid())
    }
}

/// Run `openssl ARGS` with `stdin`; its stdout.
fn openssl(args: &[&str], stdin: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("openssl: {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin)
            .map_err(|e| format!("openssl stdin: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

impl RsaKey {
    /// A new key from `openssl genpkey` (public exponent 65537).
    pub fn generate(bits: usize) -> Result<RsaKey> {
        // PEM output is PKCS#8 (OpenSSL 3 writes PKCS#1 for `-outform DER`); from_pem takes both.
        let pem = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &format!("rsa_keygen_bits:{bits}"),
            ],
            b"",
        )?;
        RsaKey::from_pem(&String::from_utf8_lossy(&pem))
    }

    /// From PKCS#1 `RSAPrivateKey` DER.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<RsaKey> {
        let mut outer = Der(der);
        let mut d = Der(outer.next(0x30)?);
        let version = d.uint()?;
        if !version.is_empty() {
            return Err("PKCS#1: only two-prime keys (version 0)".into());
        }
        Ok(RsaKey {
            modulus: d.uint()?,
            public_exponent: d.uint()?,
            d: d.uint()?,
            p: d.uint()?,
            q: d.uint()?,
            dp: d.uint()?,
            dq: d.uint()?,
            qinv: d.uint()?,
        })
    }

    /// From PKCS#8 `PrivateKeyInfo` DER holding an RSA key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<RsaKey> {
        let mut outer = Der(der);
        let mut d = Der(outer.next(0x30)?);
        d.uint()?;
        let mut alg = Der(d.next(0x30)?);
        if alg.next(0x06)? != OID_RSA {
            return Err("PKCS#8: not an RSA key".into());
        }
        RsaKey::from_pkcs1_der(d.next(0x04)?)
    }

    /// From a PEM private key: PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`).
    pub fn from_pem(text: &str) -> Result<RsaKey> {
        if text.contains("BEGIN RSA PRIVATE KEY") {
            RsaKey::from_pkcs1_der(&pem_decode(text, "RSA PRIVATE KEY")?)
        } else {
            RsaKey::from_pkcs8_der(&pem_decode(text, "PRIVATE KEY")?)
        }
    }

    /// From an ipsec.secrets `: RSA { … }` block as `ipsecctl rsasigkey` prints it (or just the
    /// lines between the braces); values in `0x` hex or `0s` base64.
    pub fn from_secrets_block(text: &str) -> Result<RsaKey> {
        let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || !line.contains(':') || line.contains('{') {
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let bytes = if let Some(h) = value.strip_prefix("0x") {
                unhex(h)?
            } else if let Some(b) = value.strip_prefix("0s") {
                base64_decode(b)?
            } else {
                continue;
            };
            fields.push((
                name.trim().to_ascii_lowercase(),
                strip_zeros(&bytes).to_vec(),
            ));
        }
        let get = |n: &str| {
            fields
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("RSA block without {n}"))
        };
        Ok(RsaKey {
            modulus: get("modulus")?,
            public_exponent: get("publicexponent")?,
            d: get("privateexponent")?,
            p: get("prime1")?,
            q: get("prime2")?,
            dp: get("exponent1")?,
            dq: get("exponent2")?,
            qinv: get("coefficient")?,
        })
    }

    pub fn bits(&self) -> usize {
        match self.modulus.first() {
            Some(b) => self.modulus.len() * 8 - b.leading_zeros() as usize,
            None => 0,
        }
    }

    /// The RFC 3110 public key bytes: exponent length, exponent, modulus.
    pub fn rfc3110_bytes(&self) -> Vec<u8> {
        rfc3110_bytes(&self.public_exponent, &self.modulus)
    }

    /// `0sAw…`: the public key as ferroswan's `leftrsasigkey=` takes it.
    pub fn rfc3110(&self) -> String {
        format!("0s{}", base64_encode(&self.rfc3110_bytes()))
    }

    /// FreeS/WAN's key id: the first 9 characters of the RFC 3110 key in base64.
    pub fn keyid(&self) -> String {
        base64_encode(&self.rfc3110_bytes())
            .chars()
            .take(9)
            .collect()
    }

    /// PKCS#1 `RSAPrivateKey` DER.
    pub fn pkcs1_der(&self) -> Vec<u8> {
        der_seq(&[
            der_uint(&[0]),
            der_uint(&self.modulus),
            der_uint(&self.public_exponent),
            der_uint(&self.d),
            der_uint(&self.p),
            der_uint(&self.q),
            der_uint(&self.dp),
            der_uint(&self.dq),
            der_uint(&self.qinv),
        ])
    }

    /// PKCS#8 `PrivateKeyInfo` PEM (`-----BEGIN PRIVATE KEY-----`), for swanctl's `private/`.
    pub fn pkcs8_pem(&self) -> String {
        let der = der_seq(&[
            der_uint(&[0]),
            rsa_algorithm_id(),
            der_tlv(0x04, &self.pkcs1_der()),
        ]);
        pem("PRIVATE KEY", &der)
    }

    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), for swanctl's `pubkey/`.
    pub fn public_pem(&self) -> String {
        spki_pem(&self.public_exponent, &self.modulus)
    }

    /// The ipsec.secrets entry `SELECTOR : RSA { … }` (the layout `ipsecctl rsasigkey` writes).
    pub fn secrets_entry(&self, selector: &str) -> String {
        let h = |b: &[u8]| format!("0x{}", hex(b));
        let mut s = format!("{selector} : RSA\t{{\n");
        s.push_str(&format!(
            "\t# RSA {} bits   ferroswan test harness\n",
            self.bits()
        ));
        s.push_str("\t# for signatures only, UNSAFE FOR ENCRYPTION\n");
        s.push_str(&format!("\t#pubkey={}\n", self.rfc3110()));
        s.push_str(&format!("\tModulus: {}\n", h(&self.modulus)));
        s.push_str(&format!("\tPublicExponent: {}\n", h(&self.public_exponent)));
        s.push_str("\t# everything after this point is secret\n");
        for (n, v) in [
            ("PrivateExponent", &self.d),
            ("Prime1", &self.p),
            ("Prime2", &self.q),
            ("Exponent1", &self.dp),
            ("Exponent2", &self.dq),
            ("Coefficient", &self.qinv),
        ] {
            s.push_str(&format!("\t{n}: {}\n", h(v)));
        }
        s.push_str("\t}\n# do not change the indenting of that \"}\"\n");
        s
    }
}

fn rfc3110_bytes(e: &[u8], n: &[u8]) -> Vec<u8> {
    let e = strip_zeros(e);
    let mut v = Vec::with_capacity(3 + e.len() + n.len());
    if e.len() < 256 {
        v.push(e.len() as u8);
    } else {
        v.push(0);
        v.extend_from_slice(&(e.len() as u16).to_be_bytes());
    }
    v.extend_from_slice(e);
    v.extend_from_slice(strip_zeros(n));
    v
}

fn spki_pem(e: &[u8], n: &[u8]) -> String {
    let rsa_pub = der_seq(&[der_uint(n), der_uint(e)]);
    let mut bits = vec![0u8];
    bits.extend_from_slice(&rsa_pub);
    pem(
        "PUBLIC KEY",
        &der_seq(&[rsa_algorithm_id(), der_tlv(0x03, &bits)]),
    )
}

/// (exponent, modulus) of an RFC 3110 public key written `0s…` or `0x…`.
pub fn parse_rfc3110(text: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let text = text.trim();
    let blob = if let Some(b) = text.strip_prefix("0s") {
        base64_decode(b)?
    } else if let Some(h) = text.strip_prefix("0x") {
        unhex(h)?
    } else {
        return Err(format!("not an RFC 3110 key: {text:.20}…"));
    };
    let (&first, rest) = blob.split_first().ok_or("empty RFC 3110 key")?;
    let (elen, rest) = if first != 0 {
        (usize::from(first), rest)
    } else {
        let l = rest.get(..2).ok_or("truncated RFC 3110 key")?;
        (
            usize::from(u16::from_be_bytes([
                l.first().copied().unwrap_or(0),
                l.get(1).copied().unwrap_or(0),
            ])),
            rest.get(2..).unwrap_or_default(),
        )
    };
    let e = rest.get(..elen).ok_or("truncated RFC 3110 exponent")?;
    let n = rest.get(elen..).unwrap_or_default();
    if n.is_empty() {
        return Err("RFC 3110 key without modulus".into());
    }
    Ok((strip_zeros(e).to_vec(), strip_zeros(n).to_vec()))
}

/// The SubjectPublicKeyInfo PEM of an RFC 3110 `0s…` key (e.g. from `ipsecctl showhostkey`).
pub fn spki_pem_from_rfc3110(text: &str) -> Result<String> {
    let (e, n) = parse_rfc3110(text)?;
    Ok(spki_pem(&e, &n))
}

/// An RSA key for each end of a tunnel.
#[derive(Clone, Debug)]
pub struct RsaPair {
    pub left: RsaKey,
    pub right: RsaKey,
}

impl RsaPair {
    pub fn generate(bits: usize) -> Result<RsaPair> {
        Ok(RsaPair {
            left: RsaKey::generate(bits)?,
            right: RsaKey::generate(bits)?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_known_values() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        for n in 0..70u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ n).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert!(base64_decode("Zm9v!").is_err());
    }

    #[test]
    fn der_reader_rejects_truncation() {
        let good = der_seq(&[der_uint(&[1, 2, 3])]);
        let mut d = Der(&good);
        assert!(Der(d.next(0x30).unwrap()).uint().unwrap() == vec![1, 2, 3]);
        for cut in 0..good.len() {
            let mut d = Der(&good[..cut]);
            let r = d.next(0x30).and_then(|c| Der(c).uint());
            assert!(r.is_err(), "cut at {cut} parsed");
        }
        // A high-bit integer gets its leading zero.
        assert_eq!(der_uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_uint(&[]), vec![0x02, 0x01, 0x00]);
        // Long lengths.
        let big = der_tlv(0x04, &[7u8; 300]);
        assert_eq!(&big[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(Der(&big).next(0x04).unwrap().len(), 300);
    }

    #[test]
    fn rfc3110_layout() {
        let b = rfc3110_bytes(&[1, 0, 1], &[0, 0xc0, 0xff, 0xee]);
        assert_eq!(b, vec![3, 1, 0, 1, 0xc0, 0xff, 0xee]);
        let s = format!("0s{}", base64_encode(&b));
        assert_eq!(
            parse_rfc3110(&s).unwrap(),
            (vec![1, 0, 1], vec![0xc0, 0xff, 0xee])
        );
        assert_eq!(
            parse_rfc3110("0x03010001c0ffee").unwrap(),
            (vec![1, 0, 1], vec![0xc0, 0xff, 0xee])
        );
        assert!(parse_rfc3110("0s").is_err());
        assert!(parse_rfc3110("0x05010001").is_err());
        assert!(parse_rfc3110("AQAB").is_err());
    }

    #[test]
    fn dh_group_and_pfs_proposals() {
        assert_eq!(dh_group("3des-md5-modp1024").as_deref(), Some("modp1024"));
        assert_eq!(
            dh_group("aes256-sha2_256-ecp256,aes128-sha1-modp2048").as_deref(),
            Some("ecp256")
        );
        assert_eq!(dh_group("aes128-sha1"), None);
        let mut t = IkeTunnel::new("x", 1, Auth::Psk("k".into()), "1.1.1.1", "2.2.2.2");
        t.ike = "3des-md5-modp1024".into();
        t.esp = "3des-md5, aes128gcm16-modp2048".into();
        assert_eq!(
            t.swan_esp_proposals(),
            "3des-md5-modp1024,aes128gcm16-modp2048"
        );
        t.pfs = false;
        assert_eq!(t.swan_esp_proposals(), "3des-md5,aes128gcm16-modp2048");
    }

    fn psk_tunnel() -> IkeTunnel {
        let mut t = IkeTunnel::lan_to_lan("net", 1, Auth::Psk("a \"quoted\" secret".into()));
        t.left_id = Some("@west".into());
        t.lifetimes = Some(Lifetimes {
            ike_secs: 3600,
            child_secs: 1200,
            margin_secs: 60,
        });
        t.dpd = Some(Dpd {
            delay_secs: 5,
            timeout_secs: 20,
            action: DpdAction::Hold,
        });
        t.auto = Auto::Route;
        t
    }

    #[test]
    fn ferroswan_psk_conf_and_secrets() {
        let t = psk_tunnel();
        let (conf, secrets) = t.ferroswan_conf(true);
        for line in [
            "conn net\n",
            "\tkeyexchange=ikev1\n",
            "\tauthby=secret\n",
            "\tleft=192.0.2.1\n",
            "\tleftid=@west\n",
            "\tleftsubnet=10.1.0.0/24\n",
            "\tright=192.0.2.2\n",
            "\trightsubnet=10.2.0.0/24\n",
            "\tike=aes128-sha1-modp2048\n",
            "\tesp=aes128-sha1\n",
            "\tpfs=yes\n",
            "\tikelifetime=3600s\n",
            "\tkeylife=1200s\n",
            "\trekeymargin=60s\n",
            "\tdpddelay=5s\n",
            "\tdpdtimeout=20s\n",
            "\tdpdaction=hold\n",
            "\tauto=route\n",
        ] {
            assert!(conf.contains(line), "{line:?} missing from\n{conf}");
        }
        assert!(!conf.contains("rightid"));
        // The PSK has a quote in it: written as hex, the same bytes swanctl gets.
        let hexpsk = hex(b"a \"quoted\" secret");
        assert!(
            secrets.contains(&format!("@west 192.0.2.2 192.0.2.1 : PSK 0x{hexpsk}\n")),
            "{secrets}"
        );
        assert_eq!(t.ferroswan_conf(false), (conf, secrets));
        let mut plain = t.clone();
        plain.auth = Auth::Psk("simple secret".into());
        assert!(plain
            .ferroswan_conf(true)
            .1
            .contains(": PSK \"simple secret\"\n"));
    }

    #[test]
    fn swanctl_psk_sides() {
        let t = psk_tunnel();
        let west = t.swanctl_conf(true).text;
        let east = t.swanctl_conf(false).text;
        for (text, local, remote, lts, rts) in [
            (
                &west,
                "192.0.2.1",
                "192.0.2.2",
                "10.1.0.0/24",
                "10.2.0.0/24",
            ),
            (
                &east,
                "192.0.2.2",
                "192.0.2.1",
                "10.2.0.0/24",
                "10.1.0.0/24",
            ),
        ] {
            for line in [
                "version = 1\n".to_string(),
                format!("local_addrs = {local}\n"),
                format!("remote_addrs = {remote}\n"),
                "proposals = aes128-sha1-modp2048\n".into(),
                format!("local_ts = {lts}\n"),
                format!("remote_ts = {rts}\n"),
                "esp_proposals = aes128-sha1-modp2048\n".into(),
                "start_action = trap\n".into(),
                "dpd_action = trap\n".into(),
                "dpd_delay = 5s\n".into(),
                "dpd_timeout = 20s\n".into(),
                "rekey_time = 3540s\n".into(),
                "over_time = 60s\n".into(),
                "rekey_time = 1140s\n".into(),
                "life_time = 1200s\n".into(),
                "auth = psk\n".into(),
                format!("secret = 0x{}\n", hex(b"a \"quoted\" secret")),
            ] {
                assert!(text.contains(&line), "{line:?} missing from\n{text}");
            }
            assert!(!text.contains("mobike"), "IKEv1 has no MOBIKE");
        }
        // West's local id is @west, east's remote id is @west.
        let local_of = |text: &str| {
            let l = text.find("local {").unwrap();
            text[l..]
                .lines()
                .find(|l| l.contains("id ="))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(local_of(&west), "id = @west");
        assert_eq!(local_of(&east), "id = 192.0.2.2");
        assert!(t.swanctl_conf(true).files.is_empty());
    }

    #[test]
    fn swanctl_host_to_host_behind_nat() {
        let mut t = IkeTunnel::new("h", 2, Auth::Psk("k".into()), "%any", "198.51.100.2");
        t.left_id = Some("@west".into());
        t.auto = Auto::Start;
        let east = t.swanctl_conf(false).text;
        assert!(east.contains("remote_addrs = %any\n"), "{east}");
        assert!(east.contains("local_ts = dynamic\n") && east.contains("remote_ts = dynamic\n"));
        assert!(east.contains("mobike = no\n") && east.contains("start_action = start\n"));
        assert!(!east.contains("local_addrs = %any") && !east.contains("id-3"));
        let west = t.swanctl_conf(true).text;
        assert!(!west.contains("local_addrs"), "{west}");
        let (conf, secrets) = t.ferroswan_conf(true);
        assert!(conf.contains("\tleft=%any\n") && conf.contains("\tkeyexchange=ikev2\n"));
        assert!(
            secrets.contains("@west 198.51.100.2 : PSK \"k\""),
            "{secrets}"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(swan_value("@west"), "@west");
        assert_eq!(swan_value("C=CH, O=x"), "\"C=CH, O=x\"");
        assert_eq!(conf_value("C=CH, O=x"), "\"C=CH, O=x\"");
        assert_eq!(
            conf_value("{10.0.0.0/8 10.1.0.0/16}"),
            "{10.0.0.0/8 10.1.0.0/16}"
        );
    }

    /// openssl itself reads what the converters write, and they agree with its own output.
    #[test]
    fn rsa_conversions_agree_with_openssl() {
        let key = RsaKey::generate(1024).unwrap();
        assert_eq!(key.bits(), 1024);
        assert_eq!(key.public_exponent, vec![1, 0, 1]);
        // Our PKCS#8 is a valid key to openssl, with the same public half as our SPKI.
        let ours = key.pkcs8_pem();
        let check = openssl(&["pkey", "-check", "-noout"], ours.as_bytes()).unwrap();
        let _ = check;
        let pub_by_openssl = openssl(&["pkey", "-pubout"], ours.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(pub_by_openssl).unwrap(), key.public_pem());
        // openssl's PKCS#1 DER equals ours.
        let pkcs1 = openssl(
            &["pkey", "-traditional", "-outform", "DER"],
            ours.as_bytes(),
        )
        .unwrap();
        assert_eq!(pkcs1, key.pkcs1_der());
        assert_eq!(RsaKey::from_pkcs1_der(&pkcs1).unwrap(), key);
        assert_eq!(RsaKey::from_pem(&ours).unwrap(), key);
        // RFC 3110 ⇄ SPKI.
        assert!(key.rfc3110().starts_with("0sAwEAA"));
        assert_eq!(
            spki_pem_from_rfc3110(&key.rfc3110()).unwrap(),
            key.public_pem()
        );
        // The secrets block parses back to the same key.
        let block = key.secrets_entry("@west");
        assert!(block.starts_with("@west : RSA\t{\n") && block.contains("\t}\n"));
        assert_eq!(RsaKey::from_secrets_block(&block).unwrap(), key);
        assert!(!format!("{key:?}").contains(&hex(&key.d)[..16]));
        assert!(format!("{key:?}").contains(&key.keyid()));
    }

    #[test]
    fn rsa_tunnel_files() {
        let pair = RsaPair::generate(1024).unwrap();
        let mut t = IkeTunnel::lan_to_lan("rsa", 2, Auth::rsa(pair.clone()));
        t.left_id = Some("@west".into());
        t.right_id = Some("@east".into());
        let (conf, west_secrets) = t.ferroswan_conf(true);
        assert!(conf.contains(&format!("\tleftrsasigkey={}\n", pair.left.rfc3110())));
        assert!(conf.contains(&format!("\trightrsasigkey={}\n", pair.right.rfc3110())));
        assert!(conf.contains("\tauthby=rsasig\n"));
        assert!(west_secrets.contains("@west : RSA\t{"));
        assert_eq!(
            RsaKey::from_secrets_block(&west_secrets).unwrap(),
            pair.left
        );
        let (_, east_secrets) = t.ferroswan_conf(false);
        assert_eq!(
            RsaKey::from_secrets_block(&east_secrets).unwrap(),
            pair.right
        );

        let sw = t.swanctl_conf(false);
        let names: Vec<&str> = sw.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "pubkey/rsa-right.pem",
                "private/rsa-right.pem",
                "pubkey/rsa-left.pem"
            ]
        );
        assert_eq!(sw.files[0].1, pair.right.public_pem().into_bytes());
        assert_eq!(sw.files[1].1, pair.right.pkcs8_pem().into_bytes());
        assert_eq!(sw.files[2].1, pair.left.public_pem().into_bytes());
        assert!(
            sw.text.contains("pubkeys = rsa-right.pem\n") && sw.text.contains("auth = pubkey\n")
        );
        assert!(!sw.text.contains("secrets {"));
        assert!(!format!("{sw:?}").contains("PRIVATE KEY"));
    }
}
