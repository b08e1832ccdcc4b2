//! Normalised text of a configuration, like `ipsec addconn --checkconfig`, for
//! `ipsecctl checkconfig`. Keys are shown as `<redacted>`; RSA keys by size only.

use super::model::{AuthBy, Auto, Config, Conn, ConnType, DpdAction, End, Interfaces, IkeVersion, KeyingTries, LogLevel, ManualSide, Phase2Proto};
use super::policy_groups::{GroupAction, GroupMember};
use std::fmt::Write as _;

fn end(out: &mut String, side: &str, e: &End) {
    let _ = writeln!(out, "\t{side}={}", e.host);
    if !e.subnets.is_empty() {
        let list: Vec<String> = e.subnets.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "\t{side}subnets={{{}}}", list.join(" "));
    }
    if let Some(n) = &e.nexthop {
        let _ = writeln!(out, "\t{side}nexthop={n}");
    }
    if let Some(id) = &e.id {
        let _ = writeln!(out, "\t{side}id={id}");
    }
    for (i, k) in e.rsasigkeys.iter().enumerate() {
        let n = if i == 0 { String::new() } else { (i + 1).to_string() };
        let _ = writeln!(out, "\t{side}rsasigkey{n}=<{} bit RSA key>", k.bits);
    }
    if let Some(p) = &e.protoport {
        let _ = writeln!(out, "\t{side}protoport={p}");
    }
    if let Some(ip) = &e.sourceip {
        let _ = writeln!(out, "\t{side}sourceip={ip}");
    }
    if e.firewall {
        let _ = writeln!(out, "\t{side}firewall=yes");
    }
    if let Some(u) = &e.updown {
        let _ = writeln!(out, "\t{side}updown=\"{u}\"");
    }
}

fn manual_side(out: &mut String, side: &str, m: &ManualSide) {
    if let Some(s) = m.esp_spi {
        let _ = writeln!(out, "\t{side}espspi={s:#x}");
    }
    if let Some(s) = m.ah_spi {
        let _ = writeln!(out, "\t{side}ahspi={s:#x}");
    }
    for (k, v) in [("espenckey", &m.esp_enc_key), ("espauthkey", &m.esp_auth_key), ("ahkey", &m.ah_key)] {
        if v.is_some() {
            let _ = writeln!(out, "\t{side}{k}=<redacted>");
        }
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// One conn, normalised.
pub fn render_conn(c: &Conn) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "conn {}", c.name);
    let _ = writeln!(out, "\t# from {}", c.location);
    end(&mut out, "left", &c.left);
    end(&mut out, "right", &c.right);
    let authby = match c.authby {
        AuthBy::Secret => "secret",
        AuthBy::RsaSig => "rsasig",
        AuthBy::SecretOrRsaSig => "secret|rsasig",
        AuthBy::Null => "null",
        AuthBy::Never => "never",
    };
    let auto = match c.auto {
        Auto::Ignore => "ignore",
        Auto::Add => "add",
        Auto::Route => "route",
        Auto::Start => "start",
        Auto::Manual => "manual",
    };
    let ty = match c.conn_type {
        ConnType::Tunnel => "tunnel",
        ConnType::Transport => "transport",
        ConnType::Passthrough => "passthrough",
        ConnType::Drop => "drop",
        ConnType::Reject => "reject",
    };
    let kx = match (c.ike_policy.initiate, c.ike_policy.accept_v1, c.ike_policy.accept_v2) {
        (IkeVersion::V1, _, false) => "ikev1",
        (IkeVersion::V2, false, _) => "ikev2",
        (IkeVersion::V2, true, _) => "ike",
        (IkeVersion::V1, _, true) => "ikev1 (ikev2=permit)",
    };
    let _ = writeln!(out, "\tauthby={authby}\n\tauto={auto}\n\ttype={ty}\n\tkeyexchange={kx}");
    if !c.ike.is_empty() {
        let _ = writeln!(out, "\tike={}", c.ike.join(","));
    }
    if !c.esp.is_empty() {
        let _ = writeln!(out, "\tesp={}", c.esp.join(","));
    }
    if c.phase2 == Phase2Proto::Ah {
        let _ = writeln!(out, "\tphase2=ah");
    }
    let tries = match c.keying_tries {
        KeyingTries::Forever => "%forever".to_string(),
        KeyingTries::Count(n) => n.to_string(),
    };
    let _ = writeln!(
        out,
        "\tpfs={}\n\tikelifetime={}s\n\tsalifetime={}s\n\trekey={}\n\trekeymargin={}s\n\trekeyfuzz={}%\n\tkeyingtries={tries}",
        yes(c.pfs),
        c.ike_lifetime_secs,
        c.sa_lifetime_secs,
        yes(c.rekey),
        c.rekey_margin_secs,
        c.rekey_fuzz_percent
    );
    if let Some(d) = &c.dpd {
        let action = match d.action {
            DpdAction::Clear => "clear",
            DpdAction::Hold => "hold",
            DpdAction::Restart => "restart",
        };
        let _ = writeln!(out, "\tdpddelay={}s\n\tdpdtimeout={}s\n\tdpdaction={action}", d.delay_secs, d.timeout_secs);
    }
    if let Some(m) = &c.manual {
        if let Some(s) = m.spi {
            let _ = writeln!(out, "\tspi={s:#x}");
        }
        if let Some(s) = m.spibase {
            let _ = writeln!(out, "\tspibase={s:#x}");
        }
        if let Some(e) = &m.esp {
            let _ = writeln!(out, "\tesp={e}");
        }
        if let Some(a) = &m.ah {
            let _ = writeln!(out, "\tah={a}");
        }
        for (k, v) in [("espenckey", &m.esp_enc_key), ("espauthkey", &m.esp_auth_key), ("ahkey", &m.ah_key)] {
            if v.is_some() {
                let _ = writeln!(out, "\t{k}=<redacted>");
            }
        }
        if let Some(w) = m.esp_replay_window {
            let _ = writeln!(out, "\tespreplay_window={w}");
        }
        manual_side(&mut out, "left", &m.left);
        manual_side(&mut out, "right", &m.right);
    }
    out
}

fn level(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Info => "none",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "all",
    }
}

/// The whole configuration, normalised.
pub fn render(cfg: &Config) -> String {
    let mut out = String::from("version 2\n\nconfig setup\n");
    let ifs = match &cfg.setup.interfaces {
        Interfaces::DefaultRoute => "%defaultroute".to_string(),
        Interfaces::None => "%none".to_string(),
        Interfaces::List(l) => format!("\"{}\"", l.join(" ")),
    };
    let _ = writeln!(out, "\tinterfaces={ifs}");
    let _ = writeln!(out, "\tplutodebug={}", level(cfg.setup.plutodebug));
    let _ = writeln!(out, "\tklipsdebug={}", level(cfg.setup.klipsdebug));
    let _ = writeln!(out, "\tuniqueids={}", yes(cfg.setup.uniqueids));
    // ferroswan's own settings, only where they differ from the defaults.
    if cfg.setup.ctl_group != crate::conf::model::DEFAULT_CTL_GROUP {
        let _ = writeln!(out, "\tctlgroup={}", cfg.setup.ctl_group);
    }
    if !cfg.setup.status_for_everyone {
        let _ = writeln!(out, "\tctlstatus=group");
    }
    for (k, v) in [("plutoload", &cfg.setup.plutoload), ("plutostart", &cfg.setup.plutostart), ("manualstart", &cfg.setup.manualstart)] {
        if !v.is_empty() {
            let _ = writeln!(out, "\t{k}=\"{}\"", v.join(" "));
        }
    }
    for c in &cfg.conns {
        out.push('\n');
        out.push_str(&render_conn(c));
    }
    for g in &cfg.policy_groups {
        let action = match g.action {
            GroupAction::Clear => "clear",
            GroupAction::Drop => "drop",
        };
        let _ = writeln!(out, "\n# policy group {} ({action}): {} entries", g.name, g.members.len());
        for m in &g.members {
            match m {
                GroupMember::Subnet(s) => {
                    let _ = writeln!(out, "#\t{s}");
                }
                GroupMember::Host(h) => {
                    let _ = writeln!(out, "#\t{h}");
                }
            }
        }
    }
    out
}
