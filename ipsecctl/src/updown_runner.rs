//! The supervisor's side of updown scripts. fwd, the daemon that learns a conn went up or down, has
//! dropped root; FreeS/WAN ran these scripts as root, so the supervisor (root) runs them for it. It
//! runs only a command the configuration names, with only the variables FreeS/WAN defined, so a
//! compromised fwd cannot make it run anything else.

use ipc::supervisor::{SupervisorResponse, UpdownRun};
use std::collections::BTreeSet;
use std::time::Duration;

/// How long one script may run before it is killed.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a script's output kept for the log.
const MAX_OUTPUT_LINES: usize = 50;
/// Longest name or value accepted in the environment.
const MAX_TEXT: usize = 1024;

/// The default script of `leftfirewall=yes` conns, as fwd is told it (same variable, same default).
pub fn default_script() -> String {
    std::env::var("FERROSWAN_UPDOWN_DEFAULT")
        .unwrap_or_else(|_| "/usr/libexec/ferroswan/_updown".to_string())
}

/// Every updown command ipsec.conf names (either end of any conn), and the default script.
pub fn configured_commands(ipsec_conf: &std::path::Path) -> Result<BTreeSet<String>, String> {
    let (config, _) = confd::daemon::load_config(ipsec_conf).map_err(|errs| {
        errs.first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "does not load".into())
    })?;
    let mut set: BTreeSet<String> = config
        .conns
        .iter()
        .flat_map(|c| [c.left.updown.clone(), c.right.updown.clone()])
        .flatten()
        .collect();
    set.insert(default_script());
    Ok(set)
}

/// Why this request may not run, if it may not.
pub fn check(run: &UpdownRun, allowed: &BTreeSet<String>) -> Result<(), String> {
    if !allowed.contains(&run.command) {
        return Err(format!(
            "`{}` is not an updown command of ipsec.conf",
            run.command.escape_debug()
        ));
    }
    for (k, v) in &run.env {
        let name_ok = (k.starts_with("PLUTO_") || k == "PATH")
            && k.len() <= 64
            && k.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err(format!("variable {:?} is not one FreeS/WAN defined", k));
        }
        if v.len() > MAX_TEXT || v.chars().any(char::is_control) {
            return Err(format!("the value of {k} is too long or has control characters"));
        }
    }
    if run.conn.len() > MAX_TEXT || run.conn.chars().any(char::is_control) {
        return Err("conn name too long or with control characters".into());
    }
    Ok(())
}

/// Run one script to completion, bounded by [`SCRIPT_TIMEOUT`].
pub async fn run(run: &UpdownRun) -> SupervisorResponse {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&run.command)
        .env_clear()
        .envs(run.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return SupervisorResponse::UpdownRan {
                success: false,
                detail: format!("cannot start: {e}"),
                output: Vec::new(),
            }
        }
    };
    match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(out)) => SupervisorResponse::UpdownRan {
            success: out.status.success(),
            detail: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&out.stderr).lines())
                .take(MAX_OUTPUT_LINES)
                .map(|l| l.chars().take(MAX_TEXT).collect())
                .collect(),
        },
        Ok(Err(e)) => SupervisorResponse::UpdownRan {
            success: false,
            detail: e.to_string(),
            output: Vec::new(),
        },
        Err(_) => SupervisorResponse::UpdownRan {
            success: false,
            detail: format!("ran longer than {} s and was killed", SCRIPT_TIMEOUT.as_secs()),
            output: Vec::new(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ipc::fwd::UpdownVerb;

    fn req(command: &str, env: &[(&str, &str)]) -> UpdownRun {
        UpdownRun {
            conn: "net".into(),
            verb: UpdownVerb::UpClient,
            command: command.into(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn only_configured_commands_with_freeswan_variables_run() {
        let allowed: BTreeSet<String> = ["/etc/ipsec.d/up.sh".to_string()].into();
        assert!(check(&req("/etc/ipsec.d/up.sh", &[("PLUTO_VERB", "up-client"), ("PATH", "/bin")]), &allowed).is_ok());
        let e = check(&req("rm -rf /", &[]), &allowed).unwrap_err();
        assert!(e.contains("not an updown command"), "{e}");
        let e = check(&req("/etc/ipsec.d/up.sh", &[("LD_PRELOAD", "/tmp/x.so")]), &allowed).unwrap_err();
        assert!(e.contains("LD_PRELOAD"), "{e}");
        let e = check(&req("/etc/ipsec.d/up.sh", &[("PLUTO_PEER", "1.2.3.4\nrm -rf /")]), &allowed)
            .unwrap_err();
        assert!(e.contains("control characters"), "{e}");
    }

    #[test]
    fn configured_commands_come_from_ipsec_conf() {
        let dir = std::env::temp_dir().join(format!("ferroswan-updown-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("ipsec.conf");
        std::fs::write(
            &conf,
            "config setup\n\nconn a\n\tleft=192.0.2.1\n\tright=192.0.2.2\n\tauthby=secret\n\tleftupdown=/usr/local/bin/a-up\n\tauto=add\n\nconn b\n\tleft=192.0.2.1\n\tright=192.0.2.3\n\tauthby=secret\n\trightupdown=\"/usr/local/bin/b-up --x\"\n\tauto=add\n",
        )
        .unwrap();
        let set = configured_commands(&conf).unwrap();
        assert!(set.contains("/usr/local/bin/a-up"), "{set:?}");
        assert!(set.contains("/usr/local/bin/b-up --x"), "{set:?}");
        assert!(set.contains(&default_script()), "{set:?}");
        assert_eq!(set.len(), 3, "{set:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_script_runs_with_its_environment_and_reports_its_output() {
        let r = req("echo \"$PLUTO_VERB $PLUTO_CONNECTION\"; exit 3", &[("PLUTO_VERB", "up-client"), ("PLUTO_CONNECTION", "net")]);
        match run(&r).await {
            SupervisorResponse::UpdownRan { success, detail, output } => {
                assert!(!success);
                assert!(detail.contains('3'), "{detail}");
                assert_eq!(output, vec!["up-client net".to_string()]);
            }
            other => panic!("{other:?}"),
        }
    }
}
