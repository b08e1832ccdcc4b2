//! The operator's IKE verbs end to end, with every daemon running but no peer: confd pushes the
//! conns to ikerd at start-up, `ipsecctl add|delete` change what `ipsecctl status --json` shows as
//! ikerd reports it, state changes are refused to `nobody` while status/trafficstatus/barf are not,
//! `up`/`down` reach ikerd, `barf` holds no secret (no PSK, no manual key, no private key), and
//! `ipsecctl` run through a link named `ipsec` takes FreeS/WAN's command line (and says which
//! FreeS/WAN verbs it does not have, with exit status 2).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ferroswan_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const WEST: &str = "192.0.2.1";
const PSK: &str = "ferroswan-test-psk-7f3a9c";
/// Manual keys (3DES, HMAC-MD5), with FreeS/WAN's `_` separators.
const ENC_KEY: &str = "0x5a5b5c5d5e5f6061_6263646566676869_6a6b6c6d6e6f7071";
const AUTH_KEY: &str = "0x7273747576777879_7a7b7c7d7e7f8081";

fn conf() -> String {
    format!(
        "version 2\n\nconfig setup\n\n\
         conn west-east\n\tleft={WEST}\n\tleftsubnet=10.1.0.0/16\n\tright=192.0.2.2\n\trightsubnet=10.2.0.0/16\n\
         \tauthby=secret\n\tkeyexchange=ikev1\n\tike=aes128-sha1-modp2048\n\tesp=aes128-sha1\n\tauto=add\n\n\
         conn rw\n\tleft={WEST}\n\tright=%any\n\tauthby=secret\n\tkeyexchange=ikev1\n\tauto=ignore\n\n\
         conn man\n\tleft={WEST}\n\tright=192.0.2.3\n\tspi=0x1000\n\tesp=3des-md5-96\n\
         \tespenckey={ENC_KEY}\n\tespauthkey={AUTH_KEY}\n\tauto=manual\n"
    )
}

fn ready(inst: &Instance) {
    inst.start().expect("start");
    inst.wait_status(Duration::from_secs(30), "ready", |s| {
        all_ready(s) && all_links_up(s)
    })
    .expect("ready");
}

/// The conn names ikerd reports, from `status --json` (None while ikerd cannot report).
fn ike_conns(status: &serde_json::Value) -> Option<Vec<String>> {
    let conns = status["ike"]["conns"].as_array()?;
    let mut v: Vec<String> = conns
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    v.sort();
    Some(v)
}

fn wait_ike_conns(inst: &Instance, want: &[&str]) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = inst.status_json().expect("status --json");
        if ike_conns(&s).is_some_and(|v| v == want) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "ikerd does not report {want:?}; last status:\n{s:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ipsec` (a link to ipsecctl in a temp dir), for this instance, inside its namespace.
fn ipsec(inst: &Instance, link: &Path) -> Command {
    let mut c = inst.ns.cmd(link);
    c.arg("--config-dir")
        .arg(&inst.config_dir)
        .arg("--run-dir")
        .arg(&inst.run_dir);
    c
}

fn ipsec_link(inst: &Instance) -> PathBuf {
    let dir = inst.dir.0.join("bin");
    std::fs::create_dir_all(&dir).expect("bin dir");
    let link = dir.join("ipsec");
    std::os::unix::fs::symlink(bin("ipsecctl"), &link).expect("symlink");
    link
}

fn out(cmd: &mut Command) -> (i32, String, String) {
    let o = run(cmd).expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn ike_verbs_status_barf_and_the_ipsec_command_line() {
    require_root();
    let inst = Instance::new("ctlike").expect("instance");
    run_ok(
        inst.ns
            .cmd("ip")
            .args(["addr", "add", &format!("{WEST}/32"), "dev", "lo"]),
    )
    .expect("address");
    // an RSA key too, so that showhostkey has something to show (and barf something to hide)
    let block = run_ok(
        inst.ctl()
            .args(["rsasigkey", "--bits", "1024", "--insecure"]),
    )
    .expect("rsasigkey");
    let private_exponent = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("PrivateExponent: 0x"))
        .expect("a PrivateExponent line")
        .to_string();
    inst.write_secrets(
        &format!("{WEST} 192.0.2.2 : PSK \"{PSK}\"\n{block}\n"),
        0o600,
    );
    inst.write_conf(&conf());
    ready(&inst);

    // start-up: auto=add conns pushed to ikerd; the manual conn is fwd's, not ikerd's
    let s = wait_ike_conns(&inst, &["west-east"]);
    assert_eq!(s["running"], true);
    assert!(
        s["daemons"].as_array().is_some_and(|d| d.len() == 4),
        "health kept: {s:#}"
    );
    let text = run_ok(inst.ctl().arg("status")).expect("status");
    assert!(
        text.contains("confd") && text.contains("\"west-east\""),
        "{text}"
    );
    let text = run_ok(inst.ctl().args(["status", "--daemons"])).expect("status --daemons");
    assert!(
        text.contains("confd") && !text.contains("Connections:"),
        "{text}"
    );

    // add / delete
    let (ok, o, e) = inst.ctl_out(&["add", "rw"]);
    assert!(ok, "{o}{e}");
    assert!(o.contains("\"rw\": added"), "{o}");
    wait_ike_conns(&inst, &["rw", "west-east"]);
    let (ok, o, e) = inst.ctl_out(&["delete", "rw"]);
    assert!(ok && o.contains("\"rw\": deleted"), "{o}{e}");
    wait_ike_conns(&inst, &["west-east"]);
    for (args, want) in [
        (&["add", "nope"][..], "no connection named \"nope\""),
        (&["add", "man"], "manually keyed"),
        (&["up", "rw"], "not added"),
        (&["delete", "rw"], "not added"),
    ] {
        let (ok, o, e) = inst.ctl_out(args);
        assert!(
            !ok && e.contains(want) && e.contains("nothing changed"),
            "{args:?}: {o}{e}"
        );
    }

    // nobody may look, not change
    let o = run(inst.ctl_as_nobody().args(["add", "rw"])).expect("runs");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("permission denied"));
    for args in [
        &["status", "--json"][..],
        &["trafficstatus", "--json"],
        &["barf"],
    ] {
        let o = run(inst.ctl_as_nobody().args(args)).expect("runs");
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let t = run_ok(inst.ctl().args(["trafficstatus", "--json"])).expect("trafficstatus");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&t).unwrap(),
        serde_json::json!([]),
        "no peer, no traffic"
    );

    // up reaches ikerd (which starts Main Mode towards a peer that is not there), down too
    let (ok, o, e) = inst.ctl_out(&["up", "west-east"]);
    assert!(ok, "up: {o}{e}");
    let (ok, o, e) = inst.ctl_out(&["down", "west-east"]);
    assert!(ok, "down: {o}{e}");

    // barf: every section, no secret
    let barf = run_ok(inst.ctl().arg("barf")).expect("barf");
    for want in [
        "+ versions",
        "+ configuration",
        "conn west-east",
        "+ daemons",
        "+ ikerd",
        "+ fwd",
        "++ confd.log",
    ] {
        assert!(barf.contains(want), "{want:?} not in barf:\n{barf}");
    }
    let hex = |k: &str| k.trim_start_matches("0x").replace('_', "");
    for secret in [
        PSK.to_string(),
        hex(ENC_KEY),
        hex(AUTH_KEY),
        ENC_KEY.trim_start_matches("0x").to_string(),
        private_exponent.clone(),
        private_exponent[..32].to_string(),
    ] {
        assert!(!barf.contains(&secret), "barf shows a secret ({secret})");
    }

    // ipsec: FreeS/WAN's command line through a link
    let link = ipsec_link(&inst);
    let (code, o, e) = out(ipsec(&inst, &link).args(["auto", "--add", "rw"]));
    assert_eq!(code, 0, "{o}{e}");
    wait_ike_conns(&inst, &["rw", "west-east"]);
    let (code, o, e) = out(ipsec(&inst, &link).args(["auto", "--status"]));
    assert!(
        code == 0 && o.contains("\"rw\"") && o.contains("\"west-east\""),
        "{o}{e}"
    );
    let (code, o, e) = out(ipsec(&inst, &link).args(["auto", "--delete", "rw"]));
    assert_eq!(code, 0, "{o}{e}");
    wait_ike_conns(&inst, &["west-east"]);
    let (code, o, _) = out(ipsec(&inst, &link).arg("look"));
    assert!(
        code == 0 && o.contains("SAs:") && o.contains("\"man\""),
        "{o}"
    );
    let (code, o, _) = out(ipsec(&inst, &link).arg("eroute"));
    assert!(code == 0 && o.contains("\"man\""), "{o}");
    let (code, o, _) = out(ipsec(&inst, &link).arg("barf"));
    assert!(
        code == 0 && o.contains("+ versions") && !o.contains(PSK),
        "{o}"
    );
    let (code, o, _) = out(ipsec(&inst, &link).args(["ranbits", "--bytes", "8"]));
    assert_eq!(code, 0);
    assert_eq!(o.trim().trim_start_matches("0x").len(), 16, "{o}");
    let (code, o, e) = out(ipsec(&inst, &link).arg("showhostkey"));
    assert!(code == 0 && o.contains("leftrsasigkey=0s"), "{o}{e}");
    let (code, o, e) = out(ipsec(&inst, &link).args(["manual", "--down", "man"]));
    assert!(code == 0 && o.contains("\"man\""), "{o}{e}");
    let (code, o, e) = out(ipsec(&inst, &link).args(["manual", "--up", "man"]));
    assert!(code == 0 && o.contains("manual SAs installed"), "{o}{e}");
    for verb in [
        &["spi"][..],
        &["klipsdebug", "--all"],
        &["whack", "--status"],
        &["tncfg"],
        &["pluto"],
    ] {
        let (code, o, e) = out(ipsec(&inst, &link).args(verb));
        assert_eq!(code, 2, "ipsec {verb:?}: {o}{e}");
        assert!(
            e.starts_with(&format!(
                "ipsec {}: not provided by ferroswan; use ",
                verb[0]
            )),
            "{e}"
        );
    }
    // setup stop / start
    let (code, o, e) = out(ipsec(&inst, &link).args(["setup", "stop"]));
    assert!(code == 0 && o.contains("stopped"), "{o}{e}");
    let (code, ..) = out(inst.ctl().args(["status", "--json"]));
    assert_eq!(code, 3, "not running after ipsec setup stop");
    let (code, o, e) = out(ipsec(&inst, &link).args(["setup", "start"]));
    assert!(code == 0 && o.contains("started"), "{o}{e}");
    inst.wait_status(Duration::from_secs(30), "ready again", |s| {
        all_ready(s) && all_links_up(s)
    })
    .expect("ready again");
    wait_ike_conns(&inst, &["west-east"]);
}
