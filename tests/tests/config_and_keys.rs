//! Issue: ipsec.conf / ipsec.secrets and key tools, end to end through a running instance.

use ferroswan_tests::*;
use std::process::Command;
use std::time::Duration;

fn ready(inst: &Instance) {
    inst.start().expect("start");
    inst.wait_status(Duration::from_secs(20), "ready", |s| {
        all_ready(s) && all_links_up(s)
    })
    .expect("ready");
}

fn note(status: &serde_json::Value, daemon_name: &str) -> String {
    daemon(status, daemon_name)
        .map(|d| d["notes"].to_string())
        .unwrap_or_default()
}

const CONN: &str = "version 2\n\nconfig setup\n\nconn west-east\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tleftsubnet=10.1.0.0/16\n\trightsubnet=10.2.0.0/16\n\tauthby=rsasig\n\tauto=add\n";

#[test]
fn rsasigkey_put_in_secrets_comes_back_from_showhostkey_and_conf_accepts_it() {
    require_root();
    let inst = Instance::new("keys").expect("instance");
    let block = run_ok(inst.ctl().args(["rsasigkey", "--bits", "2048"])).expect("rsasigkey");
    let pubkey = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("#pubkey="))
        .expect("rsasigkey prints the public key")
        .to_string();
    assert!(pubkey.starts_with("0s"), "{pubkey}");
    inst.write_secrets(&block, 0o600);
    ready(&inst);
    assert!(note(&inst.status_json().expect("status"), "keyd").contains("0 PSK, 1 RSA keys"));
    let shown = run_ok(inst.ctl().args(["showhostkey", "--left"])).expect("showhostkey");
    let line = shown
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("leftrsasigkey="))
        .expect("a leftrsasigkey line");
    assert_eq!(
        line,
        format!("leftrsasigkey={pubkey}"),
        "showhostkey answers the public half rsasigkey printed"
    );
    let right = run_ok(inst.ctl().args(["showhostkey", "--right"])).expect("showhostkey --right");
    assert!(right.contains(&format!("rightrsasigkey={pubkey}")));
    // ipsec.conf accepts the line as written.
    inst.write_conf(&format!("{CONN}\t{line}\n\trightrsasigkey={pubkey}\n"));
    let (ok, out, err) = inst.ctl_out(&["checkconfig"]);
    assert!(ok, "checkconfig refused the key: {err}");
    assert!(
        out.contains("leftrsasigkey=<2048 bit RSA key>")
            && out.contains("rightrsasigkey=<2048 bit RSA key>"),
        "{out}"
    );
    assert!(
        !err.contains("rsasigkey"),
        "no warning about the key: {err}"
    );
    // The same line with its base64 damaged is refused, at its line.
    let damaged = line.replacen("0s", "0s!", 1);
    inst.write_conf(&format!("{CONN}\t{damaged}\n"));
    let (ok, _, err) = inst.ctl_out(&["checkconfig"]);
    assert!(
        !ok && err.contains("ipsec.conf:12:") && err.contains("leftrsasigkey"),
        "{err}"
    );
    // Weak keys only on request.
    let (ok, _, err) = inst.ctl_out(&["rsasigkey", "--bits", "1024"]);
    assert!(!ok && err.contains("too weak"), "{err}");
}

#[test]
fn keyd_refuses_unsafe_secrets_and_rereads_them_when_fixed() {
    require_root();
    let inst = Instance::new("perm").expect("instance");
    inst.write_secrets(": PSK \"not-so-secret\"\n", 0o644);
    ready(&inst);
    let n = note(&inst.status_json().expect("status"), "keyd");
    assert!(
        n.contains("REFUSED") && n.contains("mode 0644 is group/world readable"),
        "{n}"
    );
    assert!(inst
        .log("keyd")
        .contains("mode 0644 is group/world readable; must be 0600 and owned by root"));
    let (ok, _, err) = inst.ctl_out(&["rereadsecrets"]);
    assert!(!ok && err.contains("0644"), "{err}");
    inst.write_secrets(
        ": PSK \"not-so-secret\"\n@west @east : PSK \"other\"\n",
        0o600,
    );
    let (ok, out, err) = inst.ctl_out(&["rereadsecrets"]);
    assert!(ok, "{err}");
    assert!(out.contains("2 PSK, 0 RSA keys"), "{out}");
    assert!(note(&inst.status_json().expect("status"), "keyd").contains("2 PSK, 0 RSA keys"));
    // The secret itself appears nowhere: not in logs, not in status.
    for d in DAEMONS {
        assert!(
            !inst.log(d).contains("not-so-secret"),
            "{d} logged a secret"
        );
    }
    assert!(!inst
        .status_json()
        .expect("status")
        .to_string()
        .contains("not-so-secret"));
}

#[test]
fn reload_applies_only_what_changed_and_keeps_the_running_config_on_errors() {
    require_root();
    let inst = Instance::new("reload").expect("instance");
    let conns = |names: &[(&str, &str)]| {
        let mut s = String::from(
            "version 2\n\nconfig setup\n\nconn %default\n\tauthby=secret\n\tauto=add\n",
        );
        for (n, subnet) in names {
            s.push_str(&format!(
                "\nconn {n}\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\trightsubnet={subnet}\n"
            ));
        }
        s
    };
    inst.write_conf(&conns(&[
        ("a", "10.1.0.0/16"),
        ("b", "10.2.0.0/16"),
        ("c", "10.3.0.0/16"),
    ]));
    ready(&inst);
    assert!(note(&inst.status_json().expect("status"), "confd").contains("3 connections"));
    inst.write_conf(&conns(&[
        ("a", "10.1.0.0/16"),
        ("b", "10.22.0.0/16"),
        ("d", "10.4.0.0/16"),
    ]));
    let (ok, out, err) = inst.ctl_out(&["reload"]);
    assert!(ok, "{err}");
    assert!(out.contains("1 added, 1 removed, 1 modified"), "{out}");
    assert!(
        out.contains("added: d") && out.contains("removed: c") && out.contains("modified: b"),
        "{out}"
    );
    // A broken file: one file:line error, nothing changes.
    inst.write_conf("version 2\n\nconn x\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauto=strat\n");
    let (ok, _, err) = inst.ctl_out(&["reload"]);
    assert!(!ok, "reload of a broken file must fail");
    let path = inst.config_dir.join("ipsec.conf");
    assert!(
        err.contains(&format!("{}:6:", path.display())) && err.contains("auto"),
        "{err}"
    );
    assert!(err.contains("running configuration is unchanged"));
    assert!(note(&inst.status_json().expect("status"), "confd").contains("3 connections"));
    // Not root, not in group ipsec: state changes are refused, status is not.
    let out = run(inst.ctl_as_nobody().arg("reload")).expect("run as nobody");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{out:?}"
    );
    let out = run(inst.ctl_as_nobody().args(["status", "--json"])).expect("status as nobody");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(inst
        .log("confd")
        .contains("permission denied for Reload from ipsecctl (pid="));
}

/// Only keyd ever opens ipsec.secrets: the whole instance (supervisor and every daemon) runs under
/// strace, and so does every ipsecctl command the test gives.
#[test]
fn no_process_but_keyd_opens_ipsec_secrets() {
    require_root();
    let inst = Instance::new("strace").expect("instance");
    inst.write_secrets(": PSK \"s3cret-value\"\n", 0o600);
    inst.write_conf(CONN);
    std::fs::create_dir_all(&inst.run_dir).expect("run dir");
    let trace = inst.dir.0.join("trace");
    let mut sup = inst
        .ns
        .cmd("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&trace)
        .arg(bin("ipsecctl"))
        .arg("--config-dir")
        .arg(&inst.config_dir)
        .arg("--run-dir")
        .arg(&inst.run_dir)
        .arg("supervise")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("strace is installed (scripts/setup-debian.sh)");
    inst.wait_status(Duration::from_secs(30), "ready under strace", |s| {
        all_ready(s) && all_links_up(s)
    })
    .expect("ready");
    let mut keyd_pids = vec![inst.pid("keyd").expect("keyd pid")];
    let ctl_trace = inst.dir.0.join("ctl-trace");
    for args in [
        &["rereadsecrets"][..],
        &["showhostkey", "--left"],
        &["reload"],
        &["checkconfig"],
        &["status"],
    ] {
        let mut c = Command::new("strace");
        c.args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
            .arg(&ctl_trace);
        c.arg(bin("ipsecctl"))
            .arg("--config-dir")
            .arg(&inst.config_dir)
            .arg("--run-dir")
            .arg(&inst.run_dir)
            .args(args);
        let _ = run(&mut c).expect("strace ipsecctl");
        // keyd has dropped root, so `rereadsecrets` is answered by a new keyd, started as root.
        if let Some(pid) = inst.pid("keyd").filter(|p| !keyd_pids.contains(p)) {
            keyd_pids.push(pid);
        }
        let t = std::fs::read_to_string(&ctl_trace).unwrap_or_default();
        assert!(
            !t.contains("ipsec.secrets"),
            "ipsecctl {args:?} opened ipsec.secrets:\n{t}"
        );
    }
    inst.stop().expect("stop");
    let _ = sup.wait();
    let t = std::fs::read_to_string(&trace).expect("trace written");
    let openers: Vec<i32> = t
        .lines()
        .filter(|l| l.contains("ipsec.secrets\""))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        openers.len() >= 2,
        "keyd opened the secrets at start and on rereadsecrets:\n{t}"
    );
    for pid in &openers {
        assert!(
            keyd_pids.contains(pid),
            "pid {pid} (not keyd {keyd_pids:?}) opened ipsec.secrets"
        );
    }
}
