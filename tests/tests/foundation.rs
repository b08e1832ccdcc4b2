//! Issue: foundation. Two instances side by side; every socket survives bad input; every daemon
//! survives SIGKILL and its peers reconnect by themselves.

use ferroswan_tests::*;
use std::process::Command;
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(20);

fn started(tag: &str) -> Instance {
    require_root();
    let inst = Instance::new(tag).expect("instance");
    inst.start().expect("ipsecctl start");
    inst.wait_status(
        READY_TIMEOUT,
        "all daemons ready with all channels up",
        |s| all_ready(s) && all_links_up(s),
    )
    .expect("ready");
    inst
}

fn pids(inst: &Instance) -> Vec<(String, i32)> {
    DAEMONS
        .iter()
        .map(|d| {
            (
                d.to_string(),
                inst.pid(d).unwrap_or_else(|| panic!("no pid file for {d}")),
            )
        })
        .collect()
}

#[test]
fn two_instances_side_by_side_in_two_namespaces() {
    let a = started("a");
    let b = started("b");
    for inst in [&a, &b] {
        let s = inst.status_json().expect("status");
        assert_eq!(s["running"], true);
        assert_eq!(s["run_dir"], inst.run_dir.display().to_string());
        for d in DAEMONS {
            let e = daemon(&s, d).expect("daemon listed");
            assert_eq!(e["state"], "ready", "{d} in {s:#}");
            assert_eq!(
                e["pid"].as_i64(),
                inst.pid(d).map(i64::from),
                "{d}: status pid matches the pid file"
            );
        }
        // ikerd got its IKE socket from fwd, in its own namespace.
        let ikerd = daemon(&s, "ikerd").expect("ikerd");
        assert!(
            ikerd["notes"]
                .to_string()
                .contains("udp port 500, received from fwd"),
            "{ikerd:#}"
        );
        let text = run_ok(inst.ctl().arg("status")).expect("status text");
        assert!(text.contains("confd") && text.contains("ready"), "{text}");
    }
    // Distinct processes, distinct sockets.
    let (pa, pb) = (pids(&a), pids(&b));
    for ((_, x), (_, y)) in pa.iter().zip(pb.iter()) {
        assert_ne!(x, y);
    }
    a.stop().expect("stop a");
    let s = a.status_json().expect("status after stop");
    assert_eq!(s["running"], false, "{s:#}");
    assert!(!a.run_dir.join("supervisor.pid").exists());
    // b is untouched by a's stop.
    assert!(all_ready(&b.status_json().expect("status b")));
}

fn probe(
    inst: &Instance,
    socket: &str,
    action: &str,
    role: Option<&str>,
    as_nobody: bool,
) -> (u32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipc-probe"));
    c.arg(inst.socket(socket)).arg(action);
    if let Some(r) = role {
        c.arg(r);
    }
    if as_nobody {
        use std::os::unix::process::CommandExt;
        c.uid(65534).gid(65534);
    }
    let out = run_ok(&mut c).expect("probe runs");
    let mut lines = out.lines();
    let pid = lines
        .next()
        .and_then(|l| l.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .expect("probe pid");
    (pid, lines.collect::<Vec<_>>().join("\n"))
}

/// Wait until the daemon's log has a line naming the probe's pid and containing `reason`.
fn logged(inst: &Instance, daemon: &str, pid: u32, reason: &str) -> bool {
    let needle = format!("pid={pid} ");
    for _ in 0..100 {
        if inst
            .log(daemon)
            .lines()
            .any(|l| l.contains(&needle) && l.contains(reason))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn every_socket_rejects_bad_input_and_keeps_serving() {
    use std::os::unix::fs::PermissionsExt;
    let inst = started("bad");
    let before = pids(&inst);
    // (socket, the daemon that logs, a role the channel accepts, a role it does not)
    let sockets = [
        ("keyd.sock", "keyd", "ikerd", "fwd"),
        ("fwd.sock", "fwd", "ikerd", "keyd"),
        ("ikerd.sock", "ikerd", "confd", "ikerd"),
        ("ctl.sock", "confd", "ipsecctl", "ikerd"),
        ("supervisor.sock", "supervisor", "ipsecctl", "confd"),
    ];
    for (sock, owner, good, bad) in sockets {
        let cases: [(&str, Option<&str>, &str); 6] = [
            ("garbage", None, "bad hello: frame of"),
            ("oversize", Some(good), "exceeds the limit"),
            (
                "truncated",
                Some(good),
                "closed in the middle of a frame (10 of 100 bytes)",
            ),
            ("unknown-variant", Some(good), "malformed message"),
            ("trailing", Some(good), "trailing bytes"),
            (
                "hello-as",
                Some(bad),
                &format!("role {bad} may not connect to {sock}"),
            ),
        ];
        for (action, role, reason) in cases {
            let (pid, out) = probe(&inst, sock, action, role, false);
            assert!(
                out.contains("closed") || out.contains("rejected"),
                "{sock} {action}: {out}"
            );
            assert!(
                logged(&inst, owner, pid, reason),
                "{sock} {action}: no log line with pid={pid} and {reason:?} in {owner}.log:\n{}",
                inst.log(owner)
            );
        }
        // A uid that may not claim the role: `nobody` on a socket it can open.
        let path = inst.socket(sock);
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        if owner == "confd" || owner == "supervisor" {
            // Anyone may open ctl.sock and supervisor.sock as the operator's client, but not as a daemon.
            let (pid, out) = probe(&inst, sock, "hello-as", Some("keyd"), true);
            assert!(out.starts_with("rejected"), "{sock}: {out}");
            assert!(
                logged(&inst, owner, pid, "rejected connection from"),
                "{sock}: {}",
                inst.log(owner)
            );
        } else {
            let (pid, out) = probe(&inst, sock, "hello-as", Some(good), true);
            assert!(out.starts_with("rejected"), "{sock} as nobody: {out}");
            assert!(
                logged(
                    &inst,
                    owner,
                    pid,
                    &format!("uid 65534 is not allowed to speak as {good}")
                ),
                "{sock}: {}",
                inst.log(owner)
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod back");
    }
    // `nobody` may not stop the gateway through the supervisor.
    let (pid, out) = probe(&inst, "supervisor.sock", "supervisor-stop", None, true);
    assert!(out.contains("PermissionDenied"), "{out}");
    assert!(logged(
        &inst,
        "supervisor",
        pid,
        "permission denied for Stop"
    ));
    // Nothing changed: same processes, all ready, every channel up, legitimate clients served.
    let s = inst.status_json().expect("status");
    assert!(all_ready(&s) && all_links_up(&s), "{s:#}");
    assert_eq!(pids(&inst), before, "no daemon restarted");
}

#[test]
fn sigkilled_daemons_come_back_and_peers_reconnect() {
    let inst = started("kill");
    for victim in DAEMONS {
        let before = pids(&inst);
        let old = inst.pid(victim).expect("pid");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(old),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill");
        // Status reports it down (the supervisor waits at least a second before restarting).
        let s = inst
            .wait_status(
                Duration::from_secs(5),
                &format!("{victim} reported down"),
                |s| daemon(s, victim).is_some_and(|d| d["state"] == "down"),
            )
            .expect("down");
        let d = daemon(&s, victim).expect("listed");
        assert!(
            d["last_exit"]
                .as_str()
                .unwrap_or_default()
                .contains("SIGKILL"),
            "{d:#}"
        );
        // It comes back, and everything reconnects without restarting anyone else.
        let s = inst
            .wait_status(READY_TIMEOUT, &format!("{victim} back"), |s| {
                all_ready(s)
                    && all_links_up(s)
                    && daemon(s, victim).is_some_and(|d| d["pid"].as_i64() != Some(old.into()))
            })
            .expect("recovered");
        assert_eq!(daemon(&s, victim).expect("listed")["restarts"], 1);
        let after = pids(&inst);
        for ((name, b), (_, a)) in before.iter().zip(after.iter()) {
            if name != victim {
                assert_eq!(b, a, "{name} was restarted when {victim} died");
            }
        }
        if victim == "fwd" {
            // ikerd asked the new fwd for the IKE socket again.
            assert!(
                inst.log("ikerd").matches("received the IKE socket").count() >= 2,
                "{}",
                inst.log("ikerd")
            );
        }
    }
}

#[test]
fn daemons_exit_with_their_supervisor_and_the_instance_starts_again() {
    let inst = started("orphan");
    let daemons = pids(&inst);
    let sup = inst.pid("supervisor").expect("supervisor pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sup), nix::sys::signal::Signal::SIGKILL).expect("kill");
    let alive = |pid: i32| {
        // A zombie is gone for our purpose: its sockets are closed.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while daemons.iter().any(|(_, p)| alive(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<_> = daemons.iter().filter(|(_, p)| alive(*p)).collect();
    assert!(left.is_empty(), "daemons outlived their supervisor: {left:?}");
    // No stale socket or pid file keeps a new supervisor from starting.
    inst.start().expect("start again");
    inst.wait_status(READY_TIMEOUT, "ready again", |s| all_ready(s) && all_links_up(s)).expect("ready");
}
