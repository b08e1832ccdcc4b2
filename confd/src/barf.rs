//! `ipsecctl barf`: one support dump, as FreeS/WAN's `ipsec barf` was — versions, the normalised
//! configuration, every daemon's health, ikerd's connections and SAs, fwd's SAs (never keys),
//! policies and routes, and the end of each log file in the run dir. Never a secret: ipsec.conf is
//! rendered by `checkconfig` (manual keys as `<redacted>`, RSA keys by size), ipsec.secrets is
//! never read (only keyd reads it), and as a last guard every manual key confd knows is searched
//! for in the finished text (hex and base64) and replaced.
//!
//! [`render`] is pure (tested with made-up inputs); [`tail`] reads the end of one log file.

use crate::conf::model::Config;
use base64::Engine as _;
use ipc::ctl::DaemonReport;
use ipc::ike::{IkeAuto, IkeStatusReport};
use ipc::policy::{Look, PolicyAction};
use ipc::sa::IpsecProto;
use ipc::status::LinkState;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Seek as _};
use std::path::Path;
use zeroize::Zeroizing;

/// Bytes read from the end of each log file.
pub const LOG_TAIL_BYTES: u64 = 64 * 1024;
/// Lines kept from each log.
pub const LOG_TAIL_LINES: usize = 200;
/// The whole dump stays well under the ctl channel's 4 MiB frame.
pub const MAX_BARF: usize = 3 * 1024 * 1024;

/// Everything the dump shows, gathered by the daemon.
#[derive(Debug)]
pub struct BarfInput {
    /// `date`-like time of the dump (seconds since the epoch).
    pub now_unix: u64,
    pub hostname: String,
    pub kernel: String,
    pub version: String,
    /// Per daemon: pid, uid and the binary it runs, where known.
    pub binaries: Vec<(String, String)>,
    pub config_path: String,
    pub config: Config,
    pub config_error: Option<String>,
    /// IKE conns added to ikerd and how.
    pub added: BTreeMap<String, IkeAuto>,
    /// Manually keyed conns up / routed by confd.
    pub manual_up: Vec<String>,
    pub routed: Vec<String>,
    pub last_ike_load: Option<String>,
    pub daemons: Vec<DaemonReport>,
    pub ike: Result<IkeStatusReport, String>,
    pub look: Result<Look, String>,
    /// (file name, its last lines) for every `*.log` in the run dir, or why it could not be read.
    pub logs: Vec<(String, Result<String, String>)>,
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n+ {title}");
}

fn auto_name(a: IkeAuto) -> &'static str {
    match a {
        IkeAuto::Add => "add",
        IkeAuto::Route => "route",
        IkeAuto::Start => "start",
    }
}

fn daemon_text(out: &mut String, r: &DaemonReport) {
    match r {
        DaemonReport::Ok(s) => {
            let _ = writeln!(
                out,
                "{}: pid {} uid {} started {} ready {}",
                s.role, s.pid, s.uid, s.started_unix, s.ready
            );
            for l in &s.links {
                let st = match &l.state {
                    LinkState::Connecting => "connecting".to_string(),
                    LinkState::Up { reconnects, .. } => format!("up (reconnects {reconnects})"),
                    LinkState::Down {
                        reason, reconnects, ..
                    } => format!("down: {reason} (reconnects {reconnects})"),
                };
                let _ = writeln!(out, "  link to {}: {st}", l.peer);
            }
            for c in &s.clients {
                let _ = writeln!(
                    out,
                    "  client {} pid {} uid {}",
                    c.role, c.cred.pid, c.cred.uid
                );
            }
            for n in &s.notes {
                let _ = writeln!(out, "  {n}");
            }
        }
        DaemonReport::Unreachable { role, reason } => {
            let _ = writeln!(out, "{role}: unreachable: {reason}");
        }
    }
}

fn ike_text(out: &mut String, r: &IkeStatusReport) {
    let _ = writeln!(out, "connections: {}", r.conns.len());
    for c in &r.conns {
        let _ = writeln!(
            out,
            "\"{}\": {}; {}; {} {}; auto={}",
            c.name,
            c.summary,
            c.state,
            c.auth,
            c.version,
            auto_name(c.auto)
        );
        if let Some(f) = &c.last_failure {
            let _ = writeln!(out, "\"{}\":   last failure: {f}", c.name);
        }
    }
    let _ = writeln!(out, "ISAKMP/IKE SAs: {}", r.ike_sas.len());
    for s in &r.ike_sas {
        let _ = writeln!(
            out,
            "#{}: \"{}\" IKEv{} {} {} {} -> {} ({} -> {}) {}{} age {}s; next {} in {}",
            s.serial,
            s.conn,
            s.version,
            if s.initiator {
                "initiator"
            } else {
                "responder"
            },
            s.state,
            s.local,
            s.remote,
            s.local_id,
            s.remote_id,
            s.algs,
            if s.nat_t { " NAT-T" } else { "" },
            s.age_secs,
            s.next_event,
            s.next_event_secs
                .map(|x| format!("{x}s"))
                .unwrap_or_else(|| "-".into())
        );
    }
    let _ = writeln!(out, "IPsec SAs: {}", r.child_sas.len());
    for s in &r.child_sas {
        let _ = writeln!(
            out,
            "#{}: \"{}\" (isakmp #{}) {} {:?} in {:#010x} out {:#010x} {} {} === {}{} age {}s; next {} in {}",
            s.serial,
            s.conn,
            s.parent,
            s.state,
            s.proto,
            s.spi_in,
            s.spi_out,
            s.algs,
            s.local_ts,
            s.remote_ts,
            if s.encap { " UDP-encap" } else { "" },
            s.age_secs,
            s.next_event,
            s.next_event_secs
                .map(|x| format!("{x}s"))
                .unwrap_or_else(|| "-".into())
        );
    }
}

fn action_text(a: &PolicyAction) -> String {
    match a {
        PolicyAction::Protect { sas } => sas
            .iter()
            .map(|id| {
                let p = match id.proto {
                    IpsecProto::Esp => "esp",
                    IpsecProto::Ah => "ah",
                };
                format!("{p}.{:x}@{}", id.spi, id.dst)
            })
            .collect::<Vec<_>>()
            .join(","),
        PolicyAction::Pass => "%pass".into(),
        PolicyAction::Drop => "%drop".into(),
        PolicyAction::Reject => "%reject".into(),
        PolicyAction::Trap => "%trap".into(),
    }
}

fn look_text(out: &mut String, l: &Look) {
    let _ = writeln!(out, "tunnel device {} (mtu {})", l.tun, l.tun_mtu);
    let _ = writeln!(out, "SAs: {} (keys never shown)", l.sas.len());
    for s in &l.sas {
        let _ = writeln!(
            out,
            "  {:?} spi {:#010x} dst {} \"{}\" {:?} {} -> {} {:?} {} {:?}/{:?} replay {}: {} packets, {} bytes, {} errors, seq {}, age {}s, {}",
            s.id.proto,
            s.id.spi,
            s.id.dst,
            s.conn,
            s.direction,
            s.src,
            s.dst,
            s.mode,
            s.encap
                .map(|e| format!("udp {}->{}", e.src_port, e.dst_port))
                .unwrap_or_default(),
            s.encr,
            s.integ,
            s.replay_window,
            s.packets,
            s.bytes,
            s.errors,
            s.seq,
            s.age_secs,
            s.state
        );
    }
    let _ = writeln!(out, "policies: {}", l.policies.len());
    for p in &l.policies {
        let _ = writeln!(
            out,
            "  \"{}\" {:?} {} -> {} proto {} => {} prio {}{}: {} packets",
            p.conn,
            p.direction,
            p.selector.src,
            p.selector.dst,
            p.selector.proto,
            action_text(&p.action),
            p.priority,
            if p.routed { " routed" } else { "" },
            p.packets
        );
    }
    let _ = writeln!(out, "routes: {}", l.routes.len());
    for r in &l.routes {
        let _ = writeln!(out, "  {r}");
    }
    for d in l.drops.iter().filter(|d| d.packets > 0) {
        let _ = writeln!(out, "drops {}: {}", d.reason, d.packets);
    }
}

/// The dump, section by section (before [`redact`]).
pub fn render(i: &BarfInput) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ferroswan barf: {} at {} (unix time), kernel {}",
        i.hostname, i.now_unix, i.kernel
    );
    section(&mut out, "versions");
    let _ = writeln!(
        out,
        "ferroswan {} (confd; ipc protocol {})",
        i.version,
        ipc::hello::PROTOCOL_VERSION
    );
    for (who, what) in &i.binaries {
        let _ = writeln!(out, "{who}: {what}");
    }
    section(&mut out, "configuration (normalised; no secrets)");
    let _ = writeln!(out, "# {}", i.config_path);
    if let Some(e) = &i.config_error {
        let _ = writeln!(out, "# REFUSED at start-up: {e}");
    }
    out.push_str(&crate::conf::render_checkconfig(&i.config));
    section(&mut out, "conns confd keeps");
    let added: Vec<String> = i
        .added
        .iter()
        .map(|(n, a)| format!("{n} ({})", auto_name(*a)))
        .collect();
    let _ = writeln!(out, "IKE conns added to ikerd: {}", list_or_none(&added));
    let _ = writeln!(out, "manual conns up: {}", list_or_none(&i.manual_up));
    let _ = writeln!(out, "routed by confd: {}", list_or_none(&i.routed));
    if let Some(l) = &i.last_ike_load {
        let _ = writeln!(out, "last load into ikerd: {l}");
    }
    section(&mut out, "daemons");
    for d in &i.daemons {
        daemon_text(&mut out, d);
    }
    section(&mut out, "ikerd: connections and SAs");
    match &i.ike {
        Ok(r) => ike_text(&mut out, r),
        Err(e) => {
            let _ = writeln!(out, "(not available: {e})");
        }
    }
    section(&mut out, "fwd: SAs, policies, routes");
    match &i.look {
        Ok(l) => look_text(&mut out, l),
        Err(e) => {
            let _ = writeln!(out, "(not available: {e})");
        }
    }
    section(&mut out, "logs (most recent lines)");
    if i.logs.is_empty() {
        let _ = writeln!(
            out,
            "(no *.log in the run dir: under systemd, see journalctl)"
        );
    }
    for (name, text) in &i.logs {
        let _ = writeln!(out, "\n++ {name}");
        match text {
            Ok(t) => {
                out.push_str(t);
                if !t.ends_with('\n') {
                    out.push('\n');
                }
            }
            Err(e) => {
                let _ = writeln!(out, "(cannot read: {e})");
            }
        }
    }
    if out.len() > MAX_BARF {
        let mut cut = MAX_BARF;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n[barf truncated]\n");
    }
    out
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The last [`LOG_TAIL_LINES`] lines of a file, reading at most [`LOG_TAIL_BYTES`] from its end.
pub fn tail(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    f.seek(std::io::SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    f.take(LOG_TAIL_BYTES).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // a partial first line
    }
    let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
    Ok(lines
        .get(skip..)
        .unwrap_or(&[])
        .iter()
        .map(|l| format!("{l}\n"))
        .collect())
}

/// Every `*.log` in the run dir, by name, with its last lines.
pub fn logs(run: &Path) -> Vec<(String, Result<String, String>)> {
    let Ok(rd) = std::fs::read_dir(run) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names.truncate(32);
    names
        .into_iter()
        .map(|n| {
            let t = tail(&run.join(&n)).map_err(|e| e.to_string());
            (n, t)
        })
        .collect()
}

/// The manual keys of a configuration (the only secrets confd holds), for [`redact`].
pub fn config_secrets(config: &Config) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out = Vec::new();
    for c in &config.conns {
        let Some(m) = &c.manual else { continue };
        for k in [
            &m.esp_enc_key,
            &m.esp_auth_key,
            &m.ah_key,
            &m.left.esp_enc_key,
            &m.left.esp_auth_key,
            &m.left.ah_key,
            &m.right.esp_enc_key,
            &m.right.esp_auth_key,
            &m.right.ah_key,
        ]
        .into_iter()
        .flatten()
        {
            out.push(Zeroizing::new(k.expose().to_vec()));
        }
    }
    out
}

/// Replace every occurrence of each secret (as hex in either case, or base64) by `<redacted>`.
/// Secrets shorter than 4 bytes are skipped (their text would match by chance).
pub fn redact(text: &str, secrets: &[Zeroizing<Vec<u8>>]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        let hex: Zeroizing<String> = Zeroizing::new(s.iter().map(|b| format!("{b:02x}")).collect());
        let forms = [
            Zeroizing::new(hex.to_string()),
            Zeroizing::new(hex.to_ascii_uppercase()),
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(s.as_slice())),
        ];
        for f in &forms {
            if out.contains(f.as_str()) {
                out = out.replace(f.as_str(), "<redacted>");
            }
        }
        // FreeS/WAN writes keys with `_` every few digits: compare with those removed too.
        if out.contains('_') {
            out = redact_underscored(&out, &hex);
        }
    }
    out
}

/// Redact runs of hex digits and `_` whose digits (without `_`) contain `hex`.
fn redact_underscored(text: &str, hex: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits: String = run.chars().filter(|c| *c != '_').collect();
        if run.contains('_') && digits.to_ascii_lowercase().contains(hex) {
            out.push_str("<redacted>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() || c == '_' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_key_is_redacted() {
        let key = Zeroizing::new(vec![0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        let short = Zeroizing::new(vec![0x00, 0x01]);
        let text = "hex 0123456789abcdef, HEX 0x0123456789ABCDEF, freeswan 0x01234567_89abcdef, \
                    base64 ASNFZ4mrze8=, other 0011 and deadbeef_cafe";
        let r = redact(text, &[key, short]);
        assert_eq!(
            r,
            "hex <redacted>, HEX 0x<redacted>, freeswan 0x<redacted>, \
             base64 <redacted>, other 0011 and deadbeef_cafe"
        );
    }

    #[test]
    fn tail_keeps_the_last_lines_of_a_long_file() {
        let dir = std::env::temp_dir().join(format!("barf-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let long: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.join("big.log"), &long).unwrap();
        std::fs::write(dir.join("small.log"), "one\ntwo\n").unwrap();
        std::fs::write(dir.join("not-a-log.txt"), "x").unwrap();
        let logs = logs(&dir);
        assert_eq!(
            logs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["big.log", "small.log"]
        );
        let big = logs[0].1.as_ref().unwrap();
        assert_eq!(big.lines().count(), LOG_TAIL_LINES);
        assert!(
            big.ends_with("line 19999\n") && big.starts_with("line 19800\n"),
            "{big}"
        );
        assert_eq!(logs[1].1.as_deref(), Ok("one\ntwo\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
