//! Privilege separation, checked from the outside (the privilege issue's acceptance):
//! - each running daemon's /proc/PID/status (every thread) matches the README's privilege table;
//! - a probe under each daemon's own sandbox shows what it cannot do (ikerd: open ipsec.secrets, a
//!   raw socket, a TUN; keyd: any network socket), after showing that it could before;
//! - a compromised ikerd, modelled by a client speaking its role, gets nothing from keyd or fwd;
//! - `ipsecctl` as a user outside the `ipsec` group: status per `ctlstatus=`, `down` denied;
//! - without its service user a daemon refuses to run, unless the development switch says
//!   otherwise, and then the log and `ipsecctl status` say so.

use ferroswan_tests::*;
use ipc::client::Conn;
use ipc::fwd::{FwdChannel, FwdRequest, FwdResponse};
use ipc::ike::{Endpoint, IkeId, PrfAlg};
use ipc::keyd::{KeydChannel, KeydContext, KeydRequest, KeydResponse, V1PskSkeyid, V1RsaSign};
use ipc::policy::{ConnState, Net, PolicyAction, PolicySpec, TrafficSelector};
use ipc::sa::Direction;
use ipc::Role;
use sandbox::ProcPrivileges;
use std::path::Path;
use std::time::Duration;

const PSK: &str = "privilege test secret that must never leave keyd";

/// One row of the README's privilege table: (daemon, user, capabilities, NoNewPrivs, Seccomp).
fn readme_row(daemon: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("README.md");
    let table = readme
        .split("### Privileges")
        .nth(1)
        .expect("README has a Privileges section");
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("| `{daemon}` |")))
        .unwrap_or_else(|| panic!("README privilege table has no row for {daemon}"));
    row.split('|').map(|c| c.trim().trim_matches('`').to_string()).filter(|c| !c.is_empty()).collect()
}

fn caps_named(mask: u64) -> String {
    if mask == 0 {
        return "none".into();
    }
    let mut names: Vec<String> = caps::all()
        .into_iter()
        .filter(|c| mask & (1u64 << c.index()) != 0)
        .map(|c| c.to_string())
        .collect();
    names.sort();
    names.join(", ")
}

fn thread_privileges(pid: i32) -> Vec<(String, ProcPrivileges)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir") {
        let path = t.expect("task").path().join("status");
        let text = std::fs::read_to_string(&path).expect("task status");
        out.push((path.display().to_string(), ProcPrivileges::parse(&text).expect("status")));
    }
    out
}

#[test]
fn each_daemon_runs_with_the_privileges_of_the_readme_table() {
    require_root();
    let inst = Instance::new("priv").expect("instance");
    inst.start().expect("start");
    let s = inst
        .wait_status(Duration::from_secs(30), "ready", |s| all_ready(s) && all_links_up(s))
        .expect("ready");
    for p in sandbox::profile::ALL {
        let row = readme_row(p.name);
        let pid = inst.pid(p.name).expect("pid file");
        let user = nix::unistd::User::from_name(p.user).expect("passwd").expect("service user");
        assert_eq!(row.get(1).map(String::as_str), Some(p.user), "README user of {}: {row:?}", p.name);
        let threads = thread_privileges(pid);
        assert!(!threads.is_empty());
        for (path, t) in &threads {
            let what = format!("{} ({path}): {}", p.name, t.summary());
            assert_eq!(t.uids, [user.uid.as_raw(); 4], "{what}");
            assert_eq!(t.gids, [user.gid.as_raw(); 4], "{what}");
            assert_eq!((t.cap_eff, t.cap_prm, t.cap_bnd), (p.cap_mask(), p.cap_mask(), p.cap_mask()), "{what}");
            assert_eq!((t.cap_inh, t.cap_amb), (0, 0), "{what}");
            assert!(t.no_new_privs, "{what}");
            assert_eq!(t.seccomp, 2, "{what}");
            // The same facts, as the README states them.
            assert_eq!(row.get(2), Some(&caps_named(t.cap_eff)), "README capabilities of {what}");
            assert_eq!(row.get(3).map(String::as_str), Some("1"), "README NoNewPrivs of {what}");
            assert!(row.get(4).is_some_and(|c| c.starts_with('2')), "README Seccomp of {what}: {row:?}");
        }
        let notes = daemon(&s, p.name).expect("daemon in status")["notes"].to_string();
        assert!(notes.contains(&format!("sandbox: uid={}", user.uid)), "{notes}");
        assert!(!notes.contains("INSECURE"), "{notes}");
    }
    // The supervisor is the one process of the instance that stays root.
    let sup = ProcPrivileges::of_pid(inst.pid("supervisor").expect("supervisor pid") as u32).expect("status");
    assert_eq!(sup.uids, [0; 4]);
    let row = readme_row("supervisor");
    assert_eq!(row.get(1).map(String::as_str), Some("root"), "{row:?}");
}

fn probe(ns: &Netns, profile: &str, run_dir: &Path, actions: &[&str]) -> String {
    let out = run(ns.cmd(bin("sandbox-probe")).arg(profile).arg(run_dir).args(actions)).expect("probe");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

fn assert_before_after(text: &str, action: &str, after_ok: bool) {
    assert!(text.contains(&format!("before {action}: ok")), "root could not {action} to begin with:\n{text}");
    let want = if after_ok { format!("after {action}: ok") } else { format!("after {action}: denied") };
    assert!(text.contains(&want), "expected `{want}`:\n{text}");
}

#[test]
fn probes_under_each_sandbox_show_what_the_daemon_cannot_do() {
    require_root();
    ensure_service_users().expect("users");
    let ns = Netns::new("prb").expect("netns");
    let dir = TempDir::new("prb").expect("dir");
    let secrets = dir.0.join("ipsec.secrets");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().create(true).write(true).mode(0o600).open(&secrets).expect("secrets");
        std::io::Write::write_all(&mut f, format!(": PSK \"{PSK}\"\n").as_bytes()).expect("write");
    }
    let open = format!("open:{}", secrets.display());
    let run_dir = dir.0.join("run");

    let ikerd = probe(&ns, "ikerd", &run_dir, &[&open, "raw-socket", "tun", "udp-socket", "unix-socket"]);
    assert_before_after(&ikerd, &open, false);
    assert_before_after(&ikerd, "raw-socket", false);
    assert_before_after(&ikerd, "tun", false);
    assert_before_after(&ikerd, "udp-socket", false);
    assert_before_after(&ikerd, "unix-socket", true);

    let keyd = probe(&ns, "keyd", &run_dir, &["udp-socket", "udp6-socket", "raw-socket", "netlink-socket", &open]);
    for a in ["udp-socket", "udp6-socket", "raw-socket", "netlink-socket"] {
        assert_before_after(&keyd, a, false);
    }
    // In its empty root, keyd cannot even see the secrets file it read at start.
    assert_before_after(&keyd, &open, false);

    // fwd keeps exactly what its datapath needs, and no more: raw sockets yes, the secrets no.
    let fwd = probe(&ns, "fwd", &run_dir, &["raw-socket", "netlink-socket", &open]);
    assert_before_after(&fwd, "raw-socket", true);
    assert_before_after(&fwd, "netlink-socket", true);
    assert_before_after(&fwd, &open, false);

    let confd = probe(&ns, "confd", &run_dir, &["udp-socket", &open]);
    assert_before_after(&confd, "udp-socket", false);
    assert_before_after(&confd, &open, false);
}

/// A conn for the compromised-ikerd test: this host's end protects 10.1.0.0/24.
const CONF: &str = "version 2\n\nconfig setup\n\nconn net\n\tkeyexchange=ikev1\n\tauthby=secret\n\tleft=192.0.2.1\n\tleftid=@west\n\tleftsubnet=10.1.0.0/24\n\tright=192.0.2.2\n\trightid=@east\n\trightsubnet=10.2.0.0/24\n\tauto=add\n";

fn ctx() -> KeydContext {
    KeydContext {
        conn: "net".into(),
        serial: 7,
        peer: Endpoint { ip: "192.0.2.2".parse().expect("ip"), port: 500 },
    }
}

fn skeyid_req(remote: &str) -> KeydRequest {
    KeydRequest::V1PskSkeyid(V1PskSkeyid {
        ctx: ctx(),
        local_id: IkeId::Fqdn("west".into()),
        remote_id: IkeId::Fqdn(remote.into()),
        prf: PrfAlg::HmacSha1,
        ni: vec![1; 16],
        nr: vec![2; 16],
    })
}

fn policy(src: &str, dst: &str, action: PolicyAction) -> PolicySpec {
    let net = |s: &str| s.parse::<Net>().expect("net");
    PolicySpec {
        conn: "net".into(),
        direction: Direction::Out,
        selector: TrafficSelector::subnets(net(src), net(dst)),
        action,
        priority: 10,
        route: true,
    }
}

#[test]
fn a_compromised_ikerd_gets_no_secret_from_keyd_and_no_cleartext_from_fwd() {
    require_root();
    let inst = Instance::new("cikerd").expect("instance");
    run_ok(inst.ns.cmd("ip").args(["addr", "add", "192.0.2.1/24", "dev", "lo"])).expect("address");
    std::fs::write(inst.config_dir.join("ipsec.conf"), CONF).expect("conf");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).truncate(true).mode(0o600)
            .open(inst.config_dir.join("ipsec.secrets")).expect("secrets");
        std::io::Write::write_all(&mut f, format!("@west @east : PSK \"{PSK}\"\n").as_bytes()).expect("write");
    }
    inst.start().expect("start");
    inst.wait_status(Duration::from_secs(30), "ready", |s| all_ready(s) && all_links_up(s)).expect("ready");

    let keyd_sock = inst.socket("keyd.sock");
    let fwd_sock = inst.socket("fwd.sock");
    let (keyd_answers, fwd_answers) = ipc::runtime::run_local(async move {
        let mut k = Conn::<KeydChannel>::connect(&keyd_sock, Role::Ikerd).await.expect("keyd as ikerd");
        let mut ka = Vec::new();
        for req in [
            skeyid_req("east"),
            skeyid_req("north"),
            KeydRequest::V1RsaSign(V1RsaSign {
                ctx: ctx(),
                local_id: IkeId::Fqdn("west".into()),
                local_pubkey: None,
                prf: PrfAlg::HmacSha1,
                skeyid: ipc::sa::SecretBytes::new(vec![8; 20]),
                initiator: true,
                g_xi: vec![3; 128],
                g_xr: vec![4; 128],
                cky_i: [5; 8],
                cky_r: [6; 8],
                sai_b: vec![7; 40],
                // ID_FQDN "west", as keyd requires the ID payload to carry local_id.
                id_b: vec![2, 0, 0, 0, b'w', b'e', b's', b't'],
            }),
            KeydRequest::RereadSecrets,
        ] {
            ka.push(k.call(req).await.expect("keyd answers").0);
        }
        let mut f = Conn::<FwdChannel>::connect(&fwd_sock, Role::Ikerd).await.expect("fwd as ikerd");
        let mut fa = Vec::new();
        let state = |policies: Vec<PolicySpec>| ConnState { conn: "net".into(), sas: vec![], policies };
        for req in [
            // Cleartext for the conn's own subnet.
            FwdRequest::InstallConn(state(vec![policy("10.1.0.0/24", "10.2.0.0/24", PolicyAction::Pass)])),
            // A subnet no configured conn names.
            FwdRequest::InstallConn(state(vec![policy("10.9.0.0/16", "10.2.0.0/24", PolicyAction::Drop)])),
            // A conn that does not exist.
            FwdRequest::InstallConn(ConnState { conn: "ghost".into(), sas: vec![], policies: vec![] }),
            // Beyond the limits.
            FwdRequest::InstallConn(state(
                (0..300u32).map(|i| policy("10.1.0.0/24", &format!("10.{}.{}.0/24", 100 + i / 256, i % 256), PolicyAction::Drop)).collect(),
            )),
            // What confd alone may do.
            FwdRequest::SetIkeScopes(vec![]),
        ] {
            fa.push(f.call(req).await.expect("fwd answers").0);
        }
        (ka, fa)
    })
    .expect("runtime");

    // keyd: the configured pair gets SKEYID (never the PSK); anything else is refused.
    match &keyd_answers[0] {
        KeydResponse::Skeyid(s) => assert_ne!(s.expose(), PSK.as_bytes()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(&keyd_answers[1], KeydResponse::Denied(m) if m.contains("no PSK for @west/@north")), "{:?}", keyd_answers[1]);
    assert!(matches!(&keyd_answers[2], KeydResponse::Denied(m) | KeydResponse::Error(m) if m.contains("@west")), "{:?}", keyd_answers[2]);
    assert!(matches!(&keyd_answers[3], KeydResponse::Denied(m) if m.contains("only confd")), "{:?}", keyd_answers[3]);
    for a in &keyd_answers {
        let dbg = format!("{a:?}");
        assert!(!dbg.contains(PSK) && !dbg.contains("privilege test secret"), "{dbg}");
    }
    let klog = inst.log("keyd");
    assert!(klog.contains("refused SKEYID (PSK) for @west/@north asked by ikerd"), "{klog}");
    assert!(klog.contains("refused RSA signature of HASH_I for @west asked by ikerd"), "{klog}");
    assert!(klog.contains("refused RereadSecrets from"), "{klog}");
    assert!(!klog.contains(PSK), "the PSK is in keyd's log");

    // fwd: every one refused, with the reason logged, and nothing installed.
    let why = |i: usize| match &fwd_answers[i] {
        FwdResponse::Denied(m) => m.clone(),
        other => panic!("request {i} was not refused: {other:?}"),
    };
    assert!(why(0).contains("cleartext"), "{}", why(0));
    assert!(why(1).contains("10.9.0.0/16 is not within"), "{}", why(1));
    assert!(why(2).contains("not an IKE conn"), "{}", why(2));
    assert!(why(3).contains("at most"), "{}", why(3));
    assert!(why(4).contains("only confd"), "{}", why(4));
    let flog = inst.log("fwd");
    for needle in [
        "refused conn \"net\" from ikerd",
        "cleartext",
        "10.9.0.0/16 is not within",
        "\"ghost\" is not an IKE conn",
        "policies, at most",
        "refused SetIkeScopes",
    ] {
        assert!(flog.contains(needle), "fwd's log lacks {needle:?}:\n{flog}");
    }
    let s = inst.status_json().expect("status");
    let notes = daemon(&s, "fwd").expect("fwd")["notes"].to_string();
    assert!(notes.contains("SAs: 0"), "{notes}");
}

fn ctl_as(inst: &Instance, uid: u32, gid: u32, args: &[&str]) -> (bool, String) {
    let mut c = inst.ns.cmd("setpriv");
    c.args([
        &format!("--reuid={uid}"),
        &format!("--regid={gid}"),
        "--clear-groups",
        "--",
    ])
    .arg(bin("ipsecctl"))
    .arg("--config-dir")
    .arg(&inst.config_dir)
    .arg("--run-dir")
    .arg(&inst.run_dir)
    .args(args);
    let out = run(&mut c).expect("setpriv ipsecctl");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn the_control_socket_lets_non_members_read_status_per_config_and_nothing_more() {
    require_root();
    let nobody = nix::unistd::User::from_name("nobody").expect("passwd").expect("user nobody");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let ipsec = nix::unistd::Group::from_name("ipsec").expect("group").expect("group ipsec").gid.as_raw();
    for (setting, status_allowed) in [("", true), ("\tctlstatus=group\n", false)] {
        let inst = Instance::new("ctlperm").expect("instance");
        std::fs::write(inst.config_dir.join("ipsec.conf"), format!("version 2\n\nconfig setup\n{setting}")).expect("conf");
        inst.start().expect("start");
        inst.wait_status(Duration::from_secs(30), "ready", all_ready).expect("ready");
        let (ok, out) = ctl_as(&inst, uid, gid, &["status"]);
        assert_eq!(ok, status_allowed, "status as nobody with {setting:?}: {out}");
        if !status_allowed {
            assert!(out.contains("permission denied"), "{out}");
        }
        let (ok, out) = ctl_as(&inst, uid, gid, &["down", "net"]);
        assert!(!ok && out.contains("permission denied"), "down as nobody: {out}");
        // A member of the group (here by primary gid) may do both.
        let (ok, out) = ctl_as(&inst, uid, ipsec, &["status"]);
        assert!(ok, "status as an ipsec member: {out}");
        let (_, out) = ctl_as(&inst, uid, ipsec, &["down", "net"]);
        assert!(!out.contains("permission denied"), "down as an ipsec member: {out}");
        assert!(inst.log("confd").contains("ctl.sock: permission denied for Down"), "{}", inst.log("confd"));
    }
}

/// Run `ipsecctl start` for `inst` in a mount namespace whose /etc/passwd lacks the service users.
fn start_without_users(inst: &Instance, dev: bool) -> Result<String> {
    let passwd: String = std::fs::read_to_string("/etc/passwd")
        .expect("passwd")
        .lines()
        .filter(|l| !l.starts_with("ferroswan-"))
        .map(|l| format!("{l}\n"))
        .collect();
    let fake = inst.dir.0.join("passwd");
    std::fs::write(&fake, passwd).expect("fake passwd");
    let script = format!(
        "mount --bind {} /etc/passwd && exec {} --config-dir {} --run-dir {} start",
        fake.display(),
        bin("ipsecctl").display(),
        inst.config_dir.display(),
        inst.run_dir.display()
    );
    let mut c = inst.ns.cmd("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    if dev {
        c.env(sandbox::DEV_ENV, "1");
    }
    run_ok(&mut c)
}

#[test]
fn without_its_user_a_daemon_refuses_to_run_unless_the_development_switch_says_so() {
    require_root();
    let inst = Instance::new("nouser").expect("instance");
    // `ipsecctl start` gives up: no daemon ever becomes ready.
    let err = start_without_users(&inst, false).expect_err("started without the users");
    assert!(err.contains("not all daemons became ready"), "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let refusal = "the system user ferroswan-keyd does not exist, so keyd would run as root: refusing";
    while !inst.log("keyd").contains(refusal) {
        assert!(std::time::Instant::now() < deadline, "keyd log:\n{}", inst.log("keyd"));
        std::thread::sleep(Duration::from_millis(100));
    }
    // It never got as far as serving: no keyd ever reported ready.
    let s = inst.status_json().unwrap_or_default();
    assert!(!all_ready(&s), "{s:#}");
    drop(inst);

    let inst = Instance::new("devmode").expect("instance");
    start_without_users(&inst, true).expect("start in development mode");
    let s = inst.wait_status(Duration::from_secs(30), "ready", all_ready).expect("ready in development mode");
    for p in sandbox::profile::ALL {
        let notes = daemon(&s, p.name).expect("daemon")["notes"].to_string();
        assert!(notes.contains("INSECURE: running as root"), "{}: {notes}", p.name);
        assert!(inst.log(p.name).contains("INSECURE DEVELOPMENT MODE"), "{}", inst.log(p.name));
        // Still as confined as it can be without the user.
        let pid = inst.pid(p.name).expect("pid");
        let t = ProcPrivileges::of_pid(pid as u32).expect("status");
        assert!(t.no_new_privs && t.seccomp == 2 && t.cap_eff == p.cap_mask(), "{}: {}", p.name, t.summary());
    }
    let text = run_ok(inst.ctl().args(["status", "--daemons"])).expect("status text");
    assert!(text.contains("INSECURE"), "{text}");
}
