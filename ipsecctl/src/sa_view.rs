//! Output of `ipsecctl eroute`, `ipsecctl look` and `ipsecctl sa --tcpdump-secrets [--wireshark]`:
//! fwd's listing (no keys) as text or JSON, and SA keys in the forms tcpdump and Wireshark read.
//!
//! # Which tool decodes what
//!
//! * **tcpdump** (`-E`, print-esp.c): `0xSPI@DST ALG:0xKEY`, one per line (comma or newline
//!   separated on the command line, or a file given as `-E "file NAME"`, where `#` lines are
//!   comments). ALG is an OpenSSL cipher name, optionally followed by `-cbc`, then `-hmac96` when
//!   the ESP trailer carries a 12-byte ICV. So it decrypts 3DES-CBC (`3des-cbc-hmac96`) and AES-CBC
//!   (`aes128-cbc-hmac96`, `aes192-...`, `aes256-...`) with HMAC-MD5-96 or HMAC-SHA1-96. It never
//!   checks the ICV (it only skips it), and it cannot skip any other ICV length (HMAC-SHA2-*), nor
//!   decrypt AES-CTR or AES-GCM (its decryption is CBC with the IV in the packet); ESP-NULL and AH
//!   need no key. For each SA it cannot decode a `#` comment line says why.
//! * **Wireshark/tshark** (`esp_sa` UAT, one CSV line per SA:
//!   `"IPv4","SRC","DST","0xSPI","ENCRYPTION","0xKEY","AUTHENTICATION","0xKEY"`, the algorithm
//!   fields being the dissector's own labels): NULL, 3DES-CBC, AES-CBC, AES-CTR and AES-GCM
//!   (8/12/16-byte ICV; the key followed by its 4-byte salt, as fwd holds it), with HMAC-MD5-96,
//!   HMAC-SHA1-96 and HMAC-SHA2-256/384/512: every ESP SA ferroswan makes. With
//!   `esp.enable_authentication_check` it verifies the ICVs too. Its `esp_sa` table is for ESP only:
//!   AH SAs get a comment line.
//!
//! Key text is built in a buffer that is wiped when dropped ([`SecretBytes`]).

use confd::manual::{encr_name, integ_name};
use ipc::policy::{Look, Net, PolicyAction, PolicyInfo, Ports, SaInfo, SaSecret};
use ipc::sa::{Direction, EncrAlg, IntegAlg, IpsecProto, SaId, SaMode, SecretBytes};
use serde::Serialize;
use std::fmt::Write as _;

/// An SA's name as KLIPS wrote it: `esp0x1000@192.0.2.2`.
pub fn sa_name(id: &SaId) -> String {
    let proto = match id.proto {
        IpsecProto::Esp => "esp",
        IpsecProto::Ah => "ah",
    };
    format!("{proto}{:#x}@{}", id.spi, id.dst)
}

/// A policy's action as `ipsec eroute` showed it: the SAs, or `%pass`, `%drop`, `%reject`, `%trap`.
pub fn action_text(a: &PolicyAction) -> String {
    match a {
        PolicyAction::Protect { sas } if sas.is_empty() => "%hold".into(),
        PolicyAction::Protect { sas } => sas.iter().map(sa_name).collect::<Vec<_>>().join(","),
        PolicyAction::Pass => "%pass".into(),
        PolicyAction::Drop => "%drop".into(),
        PolicyAction::Reject => "%reject".into(),
        PolicyAction::Trap => "%trap".into(),
    }
}

fn ports_text(p: Ports) -> Option<String> {
    if p == Ports::ANY {
        None
    } else if p.lo == p.hi {
        Some(p.lo.to_string())
    } else {
        Some(format!("{}-{}", p.lo, p.hi))
    }
}

fn end_text(n: Net, p: Ports) -> String {
    match ports_text(p) {
        Some(ports) => format!("{n}:{ports}"),
        None => n.to_string(),
    }
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
    }
}

/// Outbound policies first (as KLIPS listed its eroutes), then inbound; each by priority.
fn sorted(look: &Look) -> Vec<&PolicyInfo> {
    let mut v: Vec<&PolicyInfo> = look.policies.iter().collect();
    v.sort_by_key(|p| (p.direction == Direction::In, p.priority, p.id));
    v
}

/// One policy as a line close to KLIPS' `ipsec eroute`:
/// `<packets> <src> -> <dst> => <action or SAs>`, then the conn (and `in` for inbound policies).
pub fn eroute_line(p: &PolicyInfo) -> String {
    let s = &p.selector;
    let mut line = format!(
        "{:<10} {:<18} -> {:<18} => {}",
        p.packets,
        end_text(s.src, s.src_ports),
        end_text(s.dst, s.dst_ports),
        action_text(&p.action)
    );
    if s.proto != 0 {
        let _ = write!(line, " proto {}", s.proto);
    }
    let _ = write!(line, "  \"{}\"", p.conn);
    if p.direction == Direction::In {
        line.push_str(" in");
    }
    line
}

/// `ipsecctl eroute`.
pub fn eroute_text(look: &Look) -> String {
    if look.policies.is_empty() {
        return "no policies".into();
    }
    sorted(look)
        .into_iter()
        .map(eroute_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One policy in `ipsecctl eroute --json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PolicyView {
    pub conn: String,
    pub direction: &'static str,
    pub src: String,
    pub dst: String,
    pub proto: u8,
    pub src_ports: Option<String>,
    pub dst_ports: Option<String>,
    /// `%trap`, `%pass`, `%drop`, `%reject`, or the SAs joined by `,`.
    pub action: String,
    pub sas: Vec<String>,
    pub priority: u32,
    pub routed: bool,
    pub packets: u64,
    pub bytes: u64,
}

pub fn policy_view(p: &PolicyInfo) -> PolicyView {
    PolicyView {
        conn: p.conn.clone(),
        direction: direction_name(p.direction),
        src: p.selector.src.to_string(),
        dst: p.selector.dst.to_string(),
        proto: p.selector.proto,
        src_ports: ports_text(p.selector.src_ports),
        dst_ports: ports_text(p.selector.dst_ports),
        action: action_text(&p.action),
        sas: match &p.action {
            PolicyAction::Protect { sas } => sas.iter().map(sa_name).collect(),
            _ => Vec::new(),
        },
        priority: p.priority,
        routed: p.routed,
        packets: p.packets,
        bytes: p.bytes,
    }
}

/// `ipsecctl eroute --json`.
pub fn eroute_json(look: &Look) -> serde_json::Value {
    serde_json::json!({
        "policies": sorted(look).into_iter().map(policy_view).collect::<Vec<_>>(),
    })
}

fn sa_line(s: &SaInfo) -> String {
    let mode = match s.mode {
        SaMode::Tunnel => "tunnel",
        SaMode::Transport => "transport",
    };
    let algs = match (s.id.proto, s.integ) {
        (IpsecProto::Ah, i) => integ_name(i).to_string(),
        (IpsecProto::Esp, IntegAlg::None) => encr_name(s.encr),
        (IpsecProto::Esp, i) => format!("{}/{}", encr_name(s.encr), integ_name(i)),
    };
    let mut line = format!(
        "{} {} \"{}\" {mode} {} -> {} {algs}",
        sa_name(&s.id),
        direction_name(s.direction),
        s.conn,
        s.src,
        s.dst
    );
    if let Some(e) = s.encap {
        let _ = write!(line, " udp {}->{}", e.src_port, e.dst_port);
    }
    let _ = write!(
        line,
        " replay {}{}: {} packets, {} bytes, {} errors, seq {}, age {} s, {}",
        s.replay_window,
        if s.esn { " esn" } else { "" },
        s.packets,
        s.bytes,
        s.errors,
        s.seq,
        s.age_secs,
        s.state
    );
    line
}

/// `ipsecctl look`: SAs (no keys), policies, routes and the non-zero drop counters.
pub fn look_text(look: &Look) -> String {
    let mut out = String::new();
    if !look.tun.is_empty() {
        let _ = writeln!(out, "tunnel device {} (mtu {})", look.tun, look.tun_mtu);
    }
    let _ = writeln!(out, "SAs: {}", look.sas.len());
    let mut sas: Vec<&SaInfo> = look.sas.iter().collect();
    sas.sort_by(|a, b| {
        (&a.conn, a.direction == Direction::In, a.id).cmp(&(
            &b.conn,
            b.direction == Direction::In,
            b.id,
        ))
    });
    for s in sas {
        let _ = writeln!(out, "  {}", sa_line(s));
    }
    let _ = writeln!(out, "policies: {}", look.policies.len());
    for p in sorted(look) {
        let _ = writeln!(out, "  {}", eroute_line(p));
    }
    let _ = writeln!(out, "routes: {}", look.routes.len());
    for r in &look.routes {
        let _ = writeln!(out, "  {r}");
    }
    let drops: Vec<_> = look.drops.iter().filter(|d| d.packets > 0).collect();
    if drops.is_empty() {
        out.push_str("drops: none\n");
    } else {
        out.push_str("drops:\n");
        for d in drops {
            let _ = writeln!(out, "  {}: {} packets", d.reason, d.packets);
        }
    }
    out.trim_end().to_string()
}

/// `ipsecctl look --json`: fwd's listing as it is (it holds no key).
pub fn look_json(look: &Look) -> serde_json::Value {
    serde_json::to_value(look).unwrap_or(serde_json::Value::Null)
}

/// tcpdump's name for an SA's algorithms, or why tcpdump cannot decode it.
pub fn tcpdump_alg(s: &SaSecret) -> Result<String, String> {
    if s.proto == IpsecProto::Ah {
        return Err("AH: nothing is encrypted, tcpdump shows it without a key".into());
    }
    let cipher = match s.encr {
        EncrAlg::TripleDesCbc => "3des-cbc".to_string(),
        EncrAlg::AesCbc { key_bits } => format!("aes{key_bits}-cbc"),
        EncrAlg::Null => return Err(
            "ESP-NULL: nothing to decrypt, and tcpdump's ESP printer cannot strip its trailer; \
                        use --wireshark"
                .into(),
        ),
        EncrAlg::AesCtr { .. } | EncrAlg::AesGcm { .. } => {
            return Err(format!(
                "{}: tcpdump decrypts CBC ciphers only; use --wireshark",
                encr_name(s.encr)
            ))
        }
    };
    match s.integ {
        IntegAlg::HmacMd5_96 | IntegAlg::HmacSha1_96 => Ok(format!("{cipher}-hmac96")),
        IntegAlg::None => Ok(cipher),
        other => Err(format!(
            "{}: tcpdump skips only 12-byte (96-bit) ICVs; use --wireshark",
            integ_name(other)
        )),
    }
}

/// Wireshark's `esp_sa` labels for an SA's algorithms, or why it has none.
pub fn wireshark_algs(s: &SaSecret) -> Result<(String, &'static str), String> {
    if s.proto == IpsecProto::Ah {
        return Err("AH: Wireshark's esp_sa table is for ESP; it shows AH without a key".into());
    }
    let enc = match s.encr {
        EncrAlg::Null => "NULL".to_string(),
        EncrAlg::TripleDesCbc => "TripleDES-CBC [RFC2451]".to_string(),
        EncrAlg::AesCbc { .. } => "AES-CBC [RFC3602]".to_string(),
        EncrAlg::AesCtr { .. } => "AES-CTR [RFC3686]".to_string(),
        EncrAlg::AesGcm { icv_bytes, .. } => {
            format!("AES-GCM with {icv_bytes} octet ICV [RFC4106]")
        }
    };
    let auth = match s.integ {
        IntegAlg::None => "NULL",
        IntegAlg::HmacMd5_96 => "HMAC-MD5-96 [RFC2403]",
        IntegAlg::HmacSha1_96 => "HMAC-SHA-1-96 [RFC2404]",
        IntegAlg::HmacSha256_128 => "HMAC-SHA-256-128 [RFC4868]",
        IntegAlg::HmacSha384_192 => "HMAC-SHA-384-192 [RFC4868]",
        IntegAlg::HmacSha512_256 => "HMAC-SHA-512-256 [RFC4868]",
    };
    Ok((enc, auth))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append `0x` and the bytes in hex.
fn push_hex(out: &mut SecretBytes, bytes: &[u8]) {
    out.0.extend_from_slice(b"0x");
    for b in bytes {
        out.0
            .push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
        out.0
            .push(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
    }
}

/// A buffer large enough never to reallocate (a reallocation would leave key text behind unwiped).
fn buffer_for(secrets: &[SaSecret]) -> SecretBytes {
    let cap: usize = secrets
        .iter()
        .map(|s| 512 + 2 * (s.enc_key.len() + s.auth_key.len()))
        .sum();
    SecretBytes::new(Vec::with_capacity(cap + 256))
}

fn push_str(out: &mut SecretBytes, s: &str) {
    out.0.extend_from_slice(s.as_bytes());
}

fn label(s: &SaSecret) -> String {
    format!(
        "{}0x{:08x}@{}",
        if s.proto == IpsecProto::Ah { "ah " } else { "" },
        s.id.spi,
        s.dst
    )
}

/// `ipsecctl sa --tcpdump-secrets`: lines for tcpdump's `-E` (see the module doc).
pub fn tcpdump_secrets(secrets: &[SaSecret]) -> SecretBytes {
    let mut out = buffer_for(secrets);
    for s in secrets {
        match tcpdump_alg(s) {
            Ok(alg) => {
                push_str(&mut out, &format!("0x{:08x}@{} {alg}:", s.id.spi, s.dst));
                push_hex(&mut out, s.enc_key.expose());
                push_str(&mut out, "\n");
            }
            Err(why) => push_str(&mut out, &format!("# {}: {why}\n", label(s))),
        }
    }
    out
}

/// `ipsecctl sa --tcpdump-secrets --wireshark`: Wireshark's `esp_sa` UAT lines (see the module doc).
pub fn wireshark_esp_sa(secrets: &[SaSecret]) -> SecretBytes {
    let mut out = buffer_for(secrets);
    push_str(
        &mut out,
        "# Wireshark esp_sa table (Protocol, Src IP, Dest IP, SPI, Encryption, Key, Authentication, Key):\n\
         # save as ~/.config/wireshark/esp_sa and set esp.enable_encryption_decode (and \
         esp.enable_authentication_check)\n",
    );
    for s in secrets {
        match wireshark_algs(s) {
            Ok((enc, auth)) => {
                let family = if s.dst.is_ipv4() { "IPv4" } else { "IPv6" };
                push_str(
                    &mut out,
                    &format!(
                        "\"{family}\",\"{}\",\"{}\",\"0x{:08x}\",\"{enc}\",\"",
                        s.src, s.dst, s.id.spi
                    ),
                );
                if !s.enc_key.is_empty() {
                    push_hex(&mut out, s.enc_key.expose());
                }
                push_str(&mut out, &format!("\",\"{auth}\",\""));
                if !s.auth_key.is_empty() {
                    push_hex(&mut out, s.auth_key.expose());
                }
                push_str(&mut out, "\"\n");
            }
            Err(why) => push_str(&mut out, &format!("# {}: {why}\n", label(s))),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use ipc::policy::{DropCount, TrafficSelector};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn id(spi: u32, proto: IpsecProto, dst: &str) -> SaId {
        SaId {
            spi,
            proto,
            dst: ip(dst),
        }
    }

    fn secret(
        spi: u32,
        proto: IpsecProto,
        encr: EncrAlg,
        enc: Vec<u8>,
        integ: IntegAlg,
        auth: Vec<u8>,
    ) -> SaSecret {
        SaSecret {
            id: id(spi, proto, "192.0.2.2"),
            src: ip("192.0.2.1"),
            dst: ip("192.0.2.2"),
            proto,
            encr,
            enc_key: SecretBytes::new(enc),
            integ,
            auth_key: SecretBytes::new(auth),
        }
    }

    fn text(b: &SecretBytes) -> String {
        String::from_utf8(b.expose().to_vec()).unwrap()
    }

    fn policy(
        direction: Direction,
        src: &str,
        dst: &str,
        action: PolicyAction,
        packets: u64,
    ) -> PolicyInfo {
        let net = |s: &str| {
            let (a, p) = s.split_once('/').unwrap();
            Net {
                addr: ip(a),
                prefix: p.parse().unwrap(),
            }
        };
        PolicyInfo {
            id: packets,
            conn: "west-east".into(),
            direction,
            selector: TrafficSelector::subnets(net(src), net(dst)),
            action,
            priority: 968,
            routed: direction == Direction::Out,
            packets,
            bytes: packets * 100,
        }
    }

    fn look() -> Look {
        Look {
            tun: "ipsec0".into(),
            tun_mtu: 1400,
            sas: vec![SaInfo {
                id: id(0x1000, IpsecProto::Esp, "192.0.2.2"),
                conn: "west-east".into(),
                direction: Direction::Out,
                src: ip("192.0.2.1"),
                dst: ip("192.0.2.2"),
                mode: SaMode::Tunnel,
                encap: None,
                encr: EncrAlg::TripleDesCbc,
                integ: IntegAlg::HmacMd5_96,
                esn: false,
                replay_window: 0,
                packets: 7,
                bytes: 700,
                errors: 0,
                seq: 7,
                age_secs: 12,
                state: "mature".into(),
            }],
            policies: vec![
                policy(
                    Direction::In,
                    "10.2.0.0/16",
                    "10.1.0.0/16",
                    PolicyAction::Protect {
                        sas: vec![id(0x1000, IpsecProto::Esp, "192.0.2.1")],
                    },
                    3,
                ),
                policy(
                    Direction::Out,
                    "10.1.0.0/16",
                    "10.2.0.0/16",
                    PolicyAction::Protect {
                        sas: vec![
                            id(0x1000, IpsecProto::Esp, "192.0.2.2"),
                            id(0x1001, IpsecProto::Ah, "192.0.2.2"),
                        ],
                    },
                    42,
                ),
            ],
            routes: vec!["10.2.0.0/16 dev ipsec0".into()],
            drops: vec![
                DropCount {
                    reason: "no SA".into(),
                    packets: 5,
                },
                DropCount {
                    reason: "replay".into(),
                    packets: 0,
                },
            ],
        }
    }

    #[test]
    fn eroute_lines_like_klips() {
        let t = eroute_text(&look());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("42 "), "outbound first: {t}");
        assert!(
            lines[0].contains("10.1.0.0/16")
                && lines[0].contains("-> 10.2.0.0/16")
                && lines[0].contains("=> esp0x1000@192.0.2.2,ah0x1001@192.0.2.2"),
            "{t}"
        );
        assert!(
            lines[1].starts_with("3 ") && lines[1].ends_with("\"west-east\" in"),
            "{t}"
        );
        let mut l = look();
        for (a, want) in [
            (PolicyAction::Trap, "%trap"),
            (PolicyAction::Pass, "%pass"),
            (PolicyAction::Drop, "%drop"),
            (PolicyAction::Reject, "%reject"),
        ] {
            l.policies[1].action = a;
            assert!(eroute_text(&l).contains(&format!("=> {want}")), "{want}");
        }
        l.policies[1].selector.proto = 6;
        l.policies[1].selector.dst_ports = Ports { lo: 80, hi: 80 };
        assert!(eroute_text(&l).contains("10.2.0.0/16:80") && eroute_text(&l).contains("proto 6"));
        assert_eq!(eroute_text(&Look::default()), "no policies");
    }

    #[test]
    fn eroute_json_lists_every_policy() {
        let j = eroute_json(&look());
        let ps = j["policies"].as_array().unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0]["direction"], "out");
        assert_eq!(ps[0]["packets"], 42);
        assert_eq!(ps[0]["sas"][1], "ah0x1001@192.0.2.2");
        assert_eq!(ps[0]["routed"], true);
        assert_eq!(ps[1]["action"], "esp0x1000@192.0.2.1");
    }

    #[test]
    fn look_shows_sas_policies_routes_and_nonzero_drops() {
        let t = look_text(&look());
        assert!(t.contains("tunnel device ipsec0 (mtu 1400)"), "{t}");
        assert!(t.contains("esp0x1000@192.0.2.2 out \"west-east\" tunnel 192.0.2.1 -> 192.0.2.2 3DES-CBC/HMAC-MD5-96"), "{t}");
        assert!(t.contains("7 packets, 700 bytes"), "{t}");
        assert!(t.contains("  10.2.0.0/16 dev ipsec0"), "{t}");
        assert!(
            t.contains("no SA: 5 packets") && !t.contains("replay:"),
            "{t}"
        );
        let j = look_json(&look());
        assert_eq!(j["sas"][0]["id"]["spi"], 0x1000);
    }

    #[test]
    fn tcpdump_lines_for_what_it_can_decode_and_comments_for_the_rest() {
        let s = vec![
            secret(
                0x1000,
                IpsecProto::Esp,
                EncrAlg::TripleDesCbc,
                vec![0xab; 24],
                IntegAlg::HmacMd5_96,
                vec![1; 16],
            ),
            secret(
                0x1001,
                IpsecProto::Esp,
                EncrAlg::AesCbc { key_bits: 128 },
                (0..16).collect(),
                IntegAlg::HmacSha1_96,
                vec![2; 20],
            ),
            secret(
                0x1002,
                IpsecProto::Esp,
                EncrAlg::AesCbc { key_bits: 256 },
                vec![3; 32],
                IntegAlg::HmacSha256_128,
                vec![4; 32],
            ),
            secret(
                0x1003,
                IpsecProto::Esp,
                EncrAlg::AesGcm {
                    key_bits: 128,
                    icv_bytes: 16,
                },
                vec![5; 20],
                IntegAlg::None,
                vec![],
            ),
            secret(
                0x1004,
                IpsecProto::Ah,
                EncrAlg::Null,
                vec![],
                IntegAlg::HmacSha1_96,
                vec![6; 20],
            ),
            secret(
                0x1005,
                IpsecProto::Esp,
                EncrAlg::Null,
                vec![],
                IntegAlg::HmacSha1_96,
                vec![7; 20],
            ),
        ];
        let t = text(&tcpdump_secrets(&s));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 6, "{t}");
        assert_eq!(
            lines[0],
            format!("0x00001000@192.0.2.2 3des-cbc-hmac96:0x{}", "ab".repeat(24))
        );
        assert_eq!(
            lines[1],
            "0x00001001@192.0.2.2 aes128-cbc-hmac96:0x000102030405060708090a0b0c0d0e0f"
        );
        for (i, why) in [
            (2, "96-bit"),
            (3, "CBC ciphers only"),
            (4, "AH"),
            (5, "ESP-NULL"),
        ] {
            assert!(
                lines[i].starts_with('#') && lines[i].contains(why),
                "{}",
                lines[i]
            );
        }
        // only the encryption key goes to tcpdump; no comment carries key bytes
        assert!(
            !t.contains("0101010101") && !t.contains("0202020202") && !t.contains("0505050505"),
            "{t}"
        );
    }

    #[test]
    fn wireshark_lines_for_every_esp_sa() {
        let s = vec![
            secret(
                0x1000,
                IpsecProto::Esp,
                EncrAlg::TripleDesCbc,
                vec![0xab; 24],
                IntegAlg::HmacMd5_96,
                vec![1; 16],
            ),
            secret(
                0x1003,
                IpsecProto::Esp,
                EncrAlg::AesGcm {
                    key_bits: 256,
                    icv_bytes: 8,
                },
                vec![5; 36],
                IntegAlg::None,
                vec![],
            ),
            secret(
                0x1002,
                IpsecProto::Esp,
                EncrAlg::AesCtr { key_bits: 128 },
                vec![3; 20],
                IntegAlg::HmacSha512_256,
                vec![4; 64],
            ),
            secret(
                0x1004,
                IpsecProto::Ah,
                EncrAlg::Null,
                vec![],
                IntegAlg::HmacSha1_96,
                vec![6; 20],
            ),
        ];
        let t = text(&wireshark_esp_sa(&s));
        let lines: Vec<&str> = t
            .lines()
            .filter(|l| !l.starts_with("# Wireshark") && !l.starts_with("# save"))
            .collect();
        assert_eq!(
            lines[0],
            format!(
                "\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"0x00001000\",\"TripleDES-CBC [RFC2451]\",\"0x{}\",\"HMAC-MD5-96 [RFC2403]\",\"0x{}\"",
                "ab".repeat(24),
                "01".repeat(16)
            )
        );
        assert!(
            lines[1].contains("\"AES-GCM with 8 octet ICV [RFC4106]\"")
                && lines[1].ends_with("\"NULL\",\"\""),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains(&"05".repeat(36)), "GCM key with its salt");
        assert!(
            lines[2].contains("\"AES-CTR [RFC3686]\"")
                && lines[2].contains("HMAC-SHA-512-256 [RFC4868]")
        );
        assert!(
            lines[3].starts_with("# ah 0x00001004@192.0.2.2: AH"),
            "{}",
            lines[3]
        );
        let v6 = SaSecret {
            src: ip("2001:db8::1"),
            dst: ip("2001:db8::2"),
            ..s[0].clone()
        };
        assert!(text(&wireshark_esp_sa(&[v6])).contains("\"IPv6\",\"2001:db8::1\",\"2001:db8::2\""));
    }

    #[test]
    fn the_key_buffer_never_reallocates() {
        let s: Vec<SaSecret> = (0..50)
            .map(|i| {
                secret(
                    0x1000 + i,
                    IpsecProto::Esp,
                    EncrAlg::AesCbc { key_bits: 256 },
                    vec![9; 32],
                    IntegAlg::HmacSha512_256,
                    vec![8; 64],
                )
            })
            .collect();
        for out in [tcpdump_secrets(&s), wireshark_esp_sa(&s)] {
            assert!(out.0.len() <= out.0.capacity());
            assert_eq!(
                out.0.capacity(),
                buffer_for(&s).0.capacity(),
                "grew past its first allocation"
            );
        }
    }

    #[test]
    fn sa_names() {
        assert_eq!(
            sa_name(&id(0x1000, IpsecProto::Esp, "192.0.2.2")),
            "esp0x1000@192.0.2.2"
        );
        assert_eq!(
            sa_name(&id(0x2a, IpsecProto::Ah, "2001:db8::1")),
            "ah0x2a@2001:db8::1"
        );
    }
}
