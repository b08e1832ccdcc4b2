//! `dump` and `spddump` in setkey's own layout (libipsec's `pfkey_sadump`/`pfkey_spdump`, as
//! ipsec-tools prints them on Linux), so scripts and eyes used to setkey keep working.
//!
//! The renderer is pure: it has no clock, so the times setkey prints are left blank (as setkey
//! prints a time of 0), and the counters are those of a fresh SA. Keys are printed only when the
//! caller says so (`show_keys`: confd asks for them only for root).

use super::model::{IpsecRequest, Level, PolicyAction, PolicyDir, SaEntry, SadMode, SpdEntry};
use ipc::policy::Net;
use ipc::sa::{EncrAlg, IntegAlg, IpsecProto, SaMode, SecretBytes};

/// What setkey prints for a time of 0.
const NO_TIME: &str = "                    ";

/// The encryption algorithm as setkey names it.
pub fn enc_name(e: EncrAlg) -> &'static str {
    match e {
        EncrAlg::Null => "null",
        EncrAlg::TripleDesCbc => "3des-cbc",
        EncrAlg::AesCbc { .. } => "aes-cbc",
        EncrAlg::AesCtr { .. } => "aes-ctr",
        EncrAlg::AesGcm { .. } => "aes-gcm-16",
    }
}

/// The authentication algorithm as setkey names it.
pub fn auth_name(i: IntegAlg) -> &'static str {
    match i {
        IntegAlg::None => "null",
        IntegAlg::HmacMd5_96 => "hmac-md5",
        IntegAlg::HmacSha1_96 => "hmac-sha1",
        IntegAlg::HmacSha256_128 => "hmac-sha2-256",
        IntegAlg::HmacSha384_192 => "hmac-sha2-384",
        IntegAlg::HmacSha512_256 => "hmac-sha2-512",
    }
}

pub fn proto_name(p: IpsecProto) -> &'static str {
    match p {
        IpsecProto::Esp => "esp",
        IpsecProto::Ah => "ah",
    }
}

pub fn mode_name(m: SadMode) -> &'static str {
    match m {
        SadMode::Any => "any",
        SadMode::Transport => "transport",
        SadMode::Tunnel => "tunnel",
    }
}

pub fn dir_name(d: PolicyDir) -> &'static str {
    match d {
        PolicyDir::In => "in",
        PolicyDir::Out => "out",
        PolicyDir::Fwd => "fwd",
    }
}

/// Key bytes as setkey prints them: groups of four bytes in hex.
fn hex_groups(k: &SecretBytes) -> String {
    let mut s = String::with_capacity(k.len() * 2 + k.len() / 4);
    for (i, b) in k.expose().iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn key_text(k: &SecretBytes, show_keys: bool) -> String {
    if k.is_empty() {
        String::new()
    } else if show_keys {
        format!(" {}", hex_groups(k))
    } else {
        format!(" ({} bytes, shown to root only)", k.len())
    }
}

/// One SA in `dump`/`get` layout; `seq` is setkey's `sadb_seq` (it counts down to 0).
pub fn sa_lines(sa: &SaEntry, show_keys: bool, seq: usize) -> Vec<String> {
    let mut v = vec![
        format!("{} {}", sa.src, sa.dst),
        format!(
            "\t{} mode={} spi={}(0x{:08x}) reqid=0(0x00000000)",
            proto_name(sa.proto),
            mode_name(sa.mode),
            sa.spi,
            sa.spi
        ),
    ];
    if let Some((e, k)) = &sa.enc {
        v.push(
            format!("\tE: {} {}", enc_name(*e), key_text(k, show_keys))
                .trim_end()
                .to_string(),
        );
    }
    if let Some((a, k)) = &sa.auth {
        v.push(
            format!("\tA: {} {}", auth_name(*a), key_text(k, show_keys))
                .trim_end()
                .to_string(),
        );
    }
    v.push(format!(
        "\tseq=0x00000000 replay={} flags=0x00000000 state=mature",
        sa.replay.unwrap_or(0)
    ));
    v.push(format!("\tcreated: {NO_TIME}\tcurrent: {NO_TIME}"));
    v.push("\tdiff: 0(s)\thard: 0(s)\tsoft: 0(s)".into());
    v.push(format!("\tlast: {NO_TIME}\thard: 0(s)\tsoft: 0(s)"));
    v.push("\tcurrent: 0(bytes)\thard: 0(bytes)\tsoft: 0(bytes)".into());
    v.push("\tallocated: 0\thard: 0\tsoft: 0".into());
    v.push(format!("\tsadb_seq={seq} pid=0 refcnt=0"));
    v
}

/// `dump [esp|ah];`: every SA (of that protocol), or setkey's `No SAD entries.`.
pub fn dump(sas: &[SaEntry], proto: Option<IpsecProto>, show_keys: bool) -> Vec<String> {
    let list: Vec<&SaEntry> = sas
        .iter()
        .filter(|s| proto.is_none_or(|p| s.proto == p))
        .collect();
    if list.is_empty() {
        return vec!["No SAD entries.".into()];
    }
    let n = list.len();
    list.iter()
        .enumerate()
        .flat_map(|(i, s)| sa_lines(s, show_keys, n - 1 - i))
        .collect()
}

fn is_host(n: &Net) -> bool {
    n.prefix == if n.addr.is_ipv4() { 32 } else { 128 }
}

/// `addr[/prefix][port]` as setkey prints a selector end.
fn end_text(n: &Net, port: Option<u16>, upper: u8) -> String {
    let mut s = n.addr.to_string();
    if !is_host(n) {
        s.push_str(&format!("/{}", n.prefix));
    }
    if upper != 58 {
        match port {
            Some(p) => s.push_str(&format!("[{p}]")),
            None => s.push_str("[any]"),
        }
    }
    s
}

pub fn upper_name(u: u8) -> String {
    match u {
        0 => "any".into(),
        1 => "icmp".into(),
        4 => "ip4".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        41 => "ipv6".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        58 => "icmp6".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

/// One request as setkey writes it: `esp/tunnel/192.0.2.1-192.0.2.2/require`.
pub fn request_text(r: &IpsecRequest) -> String {
    let mode = match r.mode {
        SaMode::Transport => "transport",
        SaMode::Tunnel => "tunnel",
    };
    let ends = r
        .endpoints
        .map(|(a, b)| format!("{a}-{b}"))
        .unwrap_or_default();
    let level = match r.level {
        Level::Default => "default".to_string(),
        Level::Use => "use".to_string(),
        Level::Require => "require".to_string(),
        Level::Unique(None) => "unique".to_string(),
        Level::Unique(Some(n)) => format!("unique#{n}"),
    };
    format!("{}/{mode}/{ends}/{level}", proto_name(r.proto))
}

/// The selector line of a policy: `10.1.0.0/24[any] 10.2.0.0/24[any] any`.
pub fn selector_text(p: &SpdEntry) -> String {
    format!(
        "{} {} {}",
        end_text(&p.src, p.src_port, p.upper),
        end_text(&p.dst, p.dst_port, p.upper),
        upper_name(p.upper)
    )
}

/// One policy in `spddump` layout. `index` numbers it (setkey's `spid`), `seq` counts down to 0.
pub fn policy_lines(p: &SpdEntry, index: usize, seq: usize) -> Vec<String> {
    let action = match &p.action {
        PolicyAction::None => "none",
        PolicyAction::Discard => "discard",
        PolicyAction::Ipsec(_) => "ipsec",
    };
    let mut v = vec![
        selector_text(p),
        format!("\t{} prio def {action}", dir_name(p.dir)),
    ];
    if let PolicyAction::Ipsec(reqs) = &p.action {
        v.extend(reqs.iter().map(|r| format!("\t{}", request_text(r))));
    }
    // Linux numbers policies 8 apart, the low bits being the direction.
    let dir_bits = match p.dir {
        PolicyDir::In => 0,
        PolicyDir::Out => 1,
        PolicyDir::Fwd => 2,
    };
    let spid = index
        .saturating_add(1)
        .saturating_mul(8)
        .saturating_add(dir_bits);
    v.push(format!("\tcreated: {NO_TIME}  lastused: {NO_TIME}"));
    v.push("\tlifetime:0(s) validtime:0(s)".into());
    v.push(format!("\tspid={spid} seq={seq} pid=0"));
    v.push("\trefcnt=1".into());
    v
}

/// `spddump;`: every policy, or setkey's `No SPD entries.`.
pub fn spddump(policies: &[SpdEntry]) -> Vec<String> {
    if policies.is_empty() {
        return vec!["No SPD entries.".into()];
    }
    let n = policies.len();
    policies
        .iter()
        .enumerate()
        .flat_map(|(i, p)| policy_lines(p, i, n - 1 - i))
        .collect()
}
