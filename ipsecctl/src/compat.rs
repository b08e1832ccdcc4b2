//! FreeS/WAN's command line: `ipsecctl` run through a link named `ipsec` understands `ipsec auto
//! --up NAME`, `ipsec setup start`, `ipsec look`… by turning each into the `ipsecctl` command line
//! that does the same (no second implementation), and names the FreeS/WAN verbs it does not have,
//! with what to use instead (exit status 2).

use std::ffi::OsStr;
use std::path::Path;

/// What to do with an `ipsec …` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compat {
    /// Run these `ipsecctl` command lines (without the program name) in order, stopping at the
    /// first that fails.
    Run(Vec<Vec<String>>),
    /// Print `text` (to stderr unless `code` is 0) and exit with `code`.
    Say { text: String, code: u8 },
}

/// Exit status for verbs ferroswan does not provide, and for usage errors.
pub const NOT_PROVIDED: u8 = 2;

/// Whether the program was run as `ipsec` (its argv[0]'s file name).
pub fn is_ipsec(argv0: &OsStr) -> bool {
    Path::new(argv0).file_name() == Some(OsStr::new("ipsec"))
}

pub const USAGE: &str = "\
usage: ipsec VERB [ARGS]   (ferroswan's FreeS/WAN-compatible command line; see `ipsecctl --help`)
  ipsec auto --up|--down|--add|--delete|--replace|--route|--unroute NAME
  ipsec auto --status [NAME]            ipsec auto --rereadsecrets|--rereadall
  ipsec setup start|stop|restart        (under systemd, use the package's unit: systemctl start|stop|restart)
  ipsec manual --up|--down NAME         ipsec look     ipsec eroute     ipsec barf
  ipsec rsasigkey [--bits N | N]        ipsec showhostkey [--left|--right] [--id ID]
  ipsec ranbits [--bytes] N
and every ipsecctl verb (ipsec status, ipsec trafficstatus, ipsec checkconfig …)";

/// ipsecctl's own verbs, passed through unchanged.
const OWN_VERBS: &[&str] = &[
    "start",
    "stop",
    "status",
    "trafficstatus",
    "checkconfig",
    "reload",
    "rereadsecrets",
    "rsasigkey",
    "showhostkey",
    "ranbits",
    "manual",
    "route",
    "unroute",
    "eroute",
    "look",
    "sa",
    "up",
    "down",
    "add",
    "delete",
    "replace",
    "barf",
    "help",
];

/// FreeS/WAN (and Libreswan) verbs ferroswan has no counterpart for, and what to use instead.
const NOT_HERE: &[(&str, &str)] = &[
    ("klipsdebug", "fwd has no debug flags; set FERROSWAN_LOG=debug and restart the gateway (`ipsecctl stop; ipsecctl start`)"),
    ("plutodebug", "set FERROSWAN_LOG=debug (or plutodebug= in ipsec.conf) and restart the gateway"),
    ("spi", "SAs come from IKE or from ipsec.conf's manual keying: `ipsecctl manual up NAME`; `ipsecctl look` lists them"),
    ("spigrp", "SA bundles (AH around ESP) come from the conn: `ipsecctl manual up NAME`; `ipsecctl look` lists them"),
    ("tncfg", "fwd keeps its own tunnel device (ipsec0, `fwd --tun`); there is nothing to attach"),
    ("eroute-add", "policies come from conns: `ipsecctl route NAME`"),
    ("pf_key", "SAs live in fwd, not in the kernel: `ipsecctl look`"),
    ("whack", "`ipsecctl up|down|add|delete|replace|status NAME`"),
    ("pluto", "ikerd is started with the gateway: `ipsecctl start` (ipsec setup start)"),
    ("_plutorun", "the supervisor runs the daemons: `ipsecctl start`"),
    ("_plutoload", "`ipsecctl add NAME` or auto=add"),
    ("secrets", "`ipsecctl rereadsecrets`"),
    ("verify", "`ipsecctl checkconfig` and `ipsecctl status`"),
    ("newhostkey", "`ipsecctl rsasigkey > key` and add the block to ipsec.secrets (root-owned, mode 0600)"),
    ("showdefaults", "`ipsecctl checkconfig --orient`"),
    ("addconn", "`ipsecctl checkconfig` (to check) or `ipsecctl add NAME` (to load)"),
    ("readwriteconf", "`ipsecctl checkconfig`"),
    ("_confread", "`ipsecctl checkconfig`"),
    ("calcgoo", "nothing: fwd needs no KLIPS interface names"),
    ("mailkey", "`ipsecctl showhostkey --left` and your mail client"),
    ("send-pr", "`ipsecctl barf` and the project's issue tracker"),
    ("policy", "policy groups are read with ipsec.conf: `ipsecctl status` says what they do"),
    ("look-ike", "`ipsecctl status`"),
    ("initnss", "ferroswan keeps no NSS database: keys are in ipsec.secrets (`ipsecctl rsasigkey`)"),
    ("import", "ferroswan keeps no NSS database: keys are in ipsec.secrets"),
    ("certutil", "certificates are not supported yet"),
    ("crlutil", "certificates are not supported yet"),
    ("pk12util", "certificates are not supported yet"),
    ("modutil", "ferroswan keeps no NSS database"),
    ("traffic", "`ipsecctl trafficstatus`"),
    ("briefstatus", "`ipsecctl status`"),
    ("globalstatus", "`ipsecctl status`"),
    ("listen", "ikerd listens from start-up; nothing to do"),
    ("stopnflog", "fwd has no nflog interface"),
];

fn say(text: impl Into<String>, code: u8) -> Compat {
    Compat::Say {
        text: text.into(),
        code,
    }
}

fn not_provided(verb: &str, hint: &str) -> Compat {
    say(
        format!("ipsec {verb}: not provided by ferroswan; use {hint}"),
        NOT_PROVIDED,
    )
}

/// Each command line prefixed with the global options given before the verb.
fn run(global: &[String], cmds: Vec<Vec<&str>>) -> Compat {
    Compat::Run(
        cmds.into_iter()
            .map(|c| {
                global
                    .iter()
                    .cloned()
                    .chain(c.into_iter().map(str::to_string))
                    .collect()
            })
            .collect(),
    )
}

/// Translate `ipsec ARGS` (without the program name).
pub fn translate(args: &[String]) -> Compat {
    // --config-dir/--run-dir (ipsecctl's) may come first
    let mut global = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--config-dir" || a == "--run-dir" {
            global.push(a.clone());
            if let Some(v) = args.get(i + 1) {
                global.push(v.clone());
            }
            i += 2;
        } else if a.starts_with("--config-dir=") || a.starts_with("--run-dir=") {
            global.push(a.clone());
            i += 1;
        } else {
            break;
        }
    }
    let rest: Vec<&str> = args
        .get(i..)
        .unwrap_or(&[])
        .iter()
        .map(String::as_str)
        .collect();
    let Some((&verb, rest)) = rest.split_first() else {
        return say(USAGE, NOT_PROVIDED);
    };
    match verb {
        "--help" | "-h" => say(USAGE, 0),
        "--version" | "version" => run(&global, vec![vec!["--version"]]),
        "auto" => auto(&global, rest),
        "setup" => setup(&global, rest),
        "restart" => run(&global, vec![vec!["stop"], vec!["start"]]),
        "rsasigkey" => rsasigkey(&global, rest),
        "showhostkey" => showhostkey(&global, rest),
        "ranbits" => ranbits(&global, rest),
        v if OWN_VERBS.contains(&v) => {
            let mut c = vec![v];
            c.extend(rest);
            run(&global, vec![c])
        }
        v => match NOT_HERE.iter().find(|(n, _)| *n == v) {
            Some((_, hint)) => not_provided(v, hint),
            None => not_provided(v, "`ipsecctl --help` (or `ipsec --help`) for what there is"),
        },
    }
}

/// `ipsec auto [--asynchronous] [--verbose] --OP [NAME]`.
fn auto(global: &[String], args: &[&str]) -> Compat {
    const USAGE_AUTO: &str = "usage: ipsec auto --up|--down|--add|--delete|--replace|--route|--unroute NAME, ipsec auto --status [NAME], ipsec auto --rereadsecrets|--rereadall";
    let mut op: Option<&str> = None;
    let mut names: Vec<&str> = Vec::new();
    for &a in args {
        match a {
            "--asynchronous" | "--verbose" | "--show" => {}
            "--showonly" => {
                return not_provided(
                    "auto --showonly",
                    "the verbs themselves; ipsecctl runs no scripts to show",
                )
            }
            "--config" => {
                return not_provided(
                    "auto --config",
                    "`ipsecctl --config-dir DIR` (the directory holding ipsec.conf)",
                )
            }
            a if a.starts_with("--") => {
                if op.is_some() {
                    return say(
                        format!("ipsec auto: two operations given\n{USAGE_AUTO}"),
                        NOT_PROVIDED,
                    );
                }
                op = Some(a);
            }
            a => names.push(a),
        }
    }
    let Some(op) = op else {
        return say(USAGE_AUTO, NOT_PROVIDED);
    };
    let verb = match op {
        "--up" => "up",
        "--down" => "down",
        "--add" => "add",
        "--delete" => "delete",
        "--replace" => "replace",
        "--route" => "route",
        "--unroute" => "unroute",
        "--status" => {
            return match names.as_slice() {
                [] => run(global, vec![vec!["status"]]),
                [n] => run(global, vec![vec!["status", n]]),
                _ => say(USAGE_AUTO, NOT_PROVIDED),
            }
        }
        "--rereadsecrets" => return run(global, vec![vec!["rereadsecrets"]]),
        "--rereadall" => return run(global, vec![vec!["rereadsecrets"], vec!["reload"]]),
        "--ready" => return say("ipsec auto --ready: nothing to do: ikerd listens from start-up", 0),
        "--rereadgroups" => {
            return not_provided("auto --rereadgroups", "`ipsecctl reload` (policy groups are read with ipsec.conf)")
        }
        other => {
            return not_provided(
                &format!("auto {other}"),
                "`ipsecctl --help`; `ipsec auto` has --up --down --add --delete --replace --route --unroute --status --rereadsecrets --rereadall",
            )
        }
    };
    match names.as_slice() {
        [n] => run(global, vec![vec![verb, n]]),
        _ => say(
            format!("ipsec auto {op}: give exactly one connection name\n{USAGE_AUTO}"),
            NOT_PROVIDED,
        ),
    }
}

/// `ipsec setup start|stop|restart` (also `--start`…).
fn setup(global: &[String], args: &[&str]) -> Compat {
    let op = args.first().map(|a| a.trim_start_matches('-'));
    match (op, args.len()) {
        (Some("start"), 1) => run(global, vec![vec!["start"]]),
        (Some("stop"), 1) => run(global, vec![vec!["stop"]]),
        (Some("restart"), 1) => run(global, vec![vec!["stop"], vec!["start"]]),
        (Some("status"), 1) => run(global, vec![vec!["status", "--daemons"]]),
        _ => say(
            "usage: ipsec setup start|stop|restart|status (under systemd, use the package's unit with systemctl)",
            NOT_PROVIDED,
        ),
    }
}

/// `ipsec rsasigkey [--verbose] [--random DEV] [--hostname H] [--bits] N`.
fn rsasigkey(global: &[String], args: &[&str]) -> Compat {
    let mut out = vec!["rsasigkey"];
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--verbose" => {}
            "--random" | "--hostname" | "--noopt" => {
                if a != "--noopt" {
                    it.next();
                }
            }
            "--bits" => {
                out.push("--bits");
                match it.next() {
                    Some(n) => out.push(n),
                    None => {
                        return say(
                            "ipsec rsasigkey --bits: give a number of bits",
                            NOT_PROVIDED,
                        )
                    }
                }
            }
            "--insecure" => out.push("--insecure"),
            n if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
                out.push("--bits");
                out.push(n);
            }
            other => {
                return not_provided(
                    &format!("rsasigkey {other}"),
                    "`ipsec rsasigkey [--bits N | N]` (keys come from the system's random source)",
                )
            }
        }
    }
    run(global, vec![out])
}

/// `ipsec showhostkey [--left|--right] [--id ID]` (with neither side, `--left`).
fn showhostkey(global: &[String], args: &[&str]) -> Compat {
    let mut side: Option<&str> = None;
    let mut id: Option<&str> = None;
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--left" | "--right" => side = Some(a),
            "--id" => match it.next() {
                Some(v) => id = Some(v),
                None => return say("ipsec showhostkey --id: give an ID", NOT_PROVIDED),
            },
            "--key" | "--verbose" => {}
            "--txt" | "--dhclient" | "--ipseckey" => {
                return not_provided(
                    &format!("showhostkey {a}"),
                    "`ipsec showhostkey --left|--right` (DNS records are not provided)",
                )
            }
            "--file" => {
                return not_provided(
                    "showhostkey --file",
                    "`ipsec showhostkey` (only keyd reads ipsec.secrets, the one in --config-dir)",
                )
            }
            other => {
                return not_provided(
                    &format!("showhostkey {other}"),
                    "`ipsec showhostkey [--left|--right] [--id ID]`",
                )
            }
        }
    }
    let mut out = vec!["showhostkey", side.unwrap_or("--left")];
    if let Some(id) = id {
        out.push("--id");
        out.push(id);
    }
    run(global, vec![out])
}

/// `ipsec ranbits [--quick] [--continuous] [--bytes] N`.
fn ranbits(global: &[String], args: &[&str]) -> Compat {
    let mut bytes = false;
    let mut n: Option<u64> = None;
    for &a in args {
        match a {
            "--quick" | "--continuous" => {}
            "--bytes" => bytes = true,
            v if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() && n.is_none() => {
                n = v.parse().ok();
            }
            _ => return say("usage: ipsec ranbits [--bytes] N", NOT_PROVIDED),
        }
    }
    let Some(n) = n else {
        return say("usage: ipsec ranbits [--bytes] N", NOT_PROVIDED);
    };
    let bits = if bytes { n.saturating_mul(8) } else { n };
    Compat::Run(vec![global
        .iter()
        .cloned()
        .chain(["ranbits".to_string(), bits.to_string()])
        .collect()])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn t(line: &str) -> Compat {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        translate(&args)
    }

    fn runs(line: &str) -> Vec<String> {
        match t(line) {
            Compat::Run(cmds) => cmds.iter().map(|c| c.join(" ")).collect(),
            other => panic!("{line}: {other:?}"),
        }
    }

    fn said(line: &str) -> (String, u8) {
        match t(line) {
            Compat::Say { text, code } => (text, code),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn argv0() {
        assert!(is_ipsec(OsStr::new("ipsec")));
        assert!(is_ipsec(OsStr::new("/usr/sbin/ipsec")));
        assert!(!is_ipsec(OsStr::new("ipsecctl")));
        assert!(!is_ipsec(OsStr::new("/tmp/ipsec/ipsecctl")));
    }

    #[test]
    fn freeswan_verbs_map_to_ipsecctl() {
        for (line, want) in [
            ("auto --up west-east", vec!["up west-east"]),
            ("auto --down west-east", vec!["down west-east"]),
            ("auto --add west-east", vec!["add west-east"]),
            ("auto --delete west-east", vec!["delete west-east"]),
            ("auto --replace west-east", vec!["replace west-east"]),
            ("auto --route west-east", vec!["route west-east"]),
            ("auto --unroute west-east", vec!["unroute west-east"]),
            ("auto --asynchronous --up west-east", vec!["up west-east"]),
            ("auto --status", vec!["status"]),
            ("auto --status west-east", vec!["status west-east"]),
            ("auto --rereadsecrets", vec!["rereadsecrets"]),
            ("auto --rereadall", vec!["rereadsecrets", "reload"]),
            ("setup start", vec!["start"]),
            ("setup --stop", vec!["stop"]),
            ("setup restart", vec!["stop", "start"]),
            ("look", vec!["look"]),
            ("eroute", vec!["eroute"]),
            ("barf", vec!["barf"]),
            ("manual --up m", vec!["manual --up m"]),
            ("manual --down m", vec!["manual --down m"]),
            ("rsasigkey", vec!["rsasigkey"]),
            ("rsasigkey 2048", vec!["rsasigkey --bits 2048"]),
            (
                "rsasigkey --verbose --bits 3072",
                vec!["rsasigkey --bits 3072"],
            ),
            ("showhostkey", vec!["showhostkey --left"]),
            (
                "showhostkey --right --id @east",
                vec!["showhostkey --right --id @east"],
            ),
            ("ranbits 128", vec!["ranbits 128"]),
            ("ranbits --quick --bytes 16", vec!["ranbits 128"]),
            ("status --json", vec!["status --json"]),
            ("trafficstatus", vec!["trafficstatus"]),
            (
                "--config-dir /etc/x --run-dir /run/x auto --up c",
                vec!["--config-dir /etc/x --run-dir /run/x up c"],
            ),
        ] {
            assert_eq!(runs(line), want, "ipsec {line}");
        }
    }

    #[test]
    fn missing_verbs_say_what_to_use_with_status_2() {
        for (verb, hint) in [
            ("klipsdebug", "FERROSWAN_LOG"),
            ("spi", "manual up"),
            ("spigrp", "manual up"),
            ("tncfg", "ipsec0"),
            ("pf_key", "ipsecctl look"),
            ("whack", "ipsecctl up"),
            ("pluto", "ipsecctl start"),
            ("secrets", "rereadsecrets"),
            ("verify", "checkconfig"),
            ("newhostkey", "rsasigkey"),
            ("frobnicate", "ipsecctl --help"),
        ] {
            let (text, code) = said(verb);
            assert_eq!(code, NOT_PROVIDED, "{verb}");
            assert!(
                text.starts_with(&format!("ipsec {verb}: not provided by ferroswan; use "))
                    && text.contains(hint)
                    && !text.contains('\n'),
                "{verb}: {text}"
            );
        }
        for line in [
            "auto --up",
            "auto --up a b",
            "auto",
            "auto --up a --down b",
            "setup",
            "setup sideways",
            "ranbits",
            "ranbits x",
            "",
        ] {
            assert_eq!(said(line).1, NOT_PROVIDED, "ipsec {line}");
        }
        assert_eq!(said("auto --listall").1, NOT_PROVIDED);
        assert_eq!(said("showhostkey --txt gw").1, NOT_PROVIDED);
        assert_eq!(said("--help").1, 0);
        assert_eq!(said("auto --ready").1, 0);
    }
}
