//! The one place that builds test topologies: network namespaces and gateway instances, cleaned up on
//! drop even when a test fails. Every end-to-end test uses these; none adds addresses or routes in
//! the root namespace, and processes are only ever killed by the pids in their instance's run dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod ike;
pub mod ike_conf;
pub mod strongswan;
pub mod topology;

pub type Result<T> = std::result::Result<T, String>;

/// The directory holding the built binaries (`cargo build --bins` puts them beside the test binary's
/// parent), or $FERROSWAN_BIN_DIR.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FERROSWAN_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // A test: target/<profile>/deps/<test> -> target/<profile>; a helper binary such as the tunnel
    // benchmark: target/<profile>/<bin> -> target/<profile>.
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        dir
    }
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`)",
        p.display()
    );
    p
}

/// End-to-end tests need root (namespaces, port 500). They fail, never skip, without it: CI runs as root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this end-to-end test needs root (network namespaces); run the suite with scripts/test.sh as root"
    );
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    format!(
        "fsw-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The value after `--name` in a helper binary's arguments.
pub fn arg(args: &[String], name: &str) -> Result<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .ok_or_else(|| format!("missing {name}"))
}

pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    Ok(out)
}

pub fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace that exists for as long as this value does.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Result<Netns> {
        let name = unique(tag);
        run_ok(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        run_ok(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// A command that runs inside this namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A private directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Result<TempDir> {
        use std::os::unix::fs::PermissionsExt;
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        // 0755: tests run clients as `nobody`, which must reach the sockets inside.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("FERROSWAN_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One gateway instance (supervisor and four daemons) in a namespace, with its own config and run
/// dirs. Dropping it stops the instance, and kills by pid whatever is left of it.
pub struct Instance {
    pub ns: Netns,
    pub dir: TempDir,
    pub config_dir: PathBuf,
    pub run_dir: PathBuf,
}

pub const DAEMONS: [&str; 4] = ["keyd", "ikerd", "fwd", "confd"];

/// The daemons drop to their service users and refuse to run as root without them: create them
/// once, with the project's script (what the packages' sysusers.d entry does), if they are missing.
pub fn ensure_service_users() -> Result<()> {
    static DONE: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let missing = sandbox::profile::ALL
            .iter()
            .any(|p| !matches!(nix::unistd::User::from_name(p.user), Ok(Some(_))));
        if !missing {
            return Ok(());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup-users.sh");
        run_ok(Command::new("bash").arg(&script)).map(|_| ())
    })
    .clone()
}

impl Instance {
    /// Namespace and directories, with an ipsec.conf/ipsec.secrets that say nothing yet.
    pub fn new(tag: &str) -> Result<Instance> {
        ensure_service_users()?;
        let ns = Netns::new(tag)?;
        let dir = TempDir::new(tag)?;
        let config_dir = dir.0.join("etc");
        let run_dir = dir.0.join("run");
        std::fs::create_dir_all(config_dir.join("ipsec.d")).map_err(|e| e.to_string())?;
        std::fs::write(config_dir.join("ipsec.conf"), "version 2\n\nconfig setup\n")
            .map_err(|e| e.to_string())?;
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(config_dir.join("ipsec.secrets"))
                .map_err(|e| e.to_string())?;
            std::io::Write::write_all(&mut f, b"# no secrets yet\n").map_err(|e| e.to_string())?;
        }
        Ok(Instance {
            ns,
            dir,
            config_dir,
            run_dir,
        })
    }

    /// `ipsecctl` for this instance, inside its namespace.
    pub fn ctl(&self) -> Command {
        let mut c = self.ns.cmd(bin("ipsecctl"));
        c.arg("--config-dir")
            .arg(&self.config_dir)
            .arg("--run-dir")
            .arg(&self.run_dir);
        c
    }

    pub fn start(&self) -> Result<String> {
        run_ok(self.ctl().arg("start"))
    }

    pub fn stop(&self) -> Result<String> {
        run_ok(self.ctl().arg("stop"))
    }

    pub fn status_json(&self) -> Result<serde_json::Value> {
        let out = run(self.ctl().args(["status", "--json"]))?;
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "status --json: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.run_dir.join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.run_dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn socket(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    /// Poll `status --json` until `pred` holds or `timeout` passes; returns the last status.
    pub fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status_json()?;
            if pred(&s) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}; last status:\n{s:#}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = run(self.ctl().arg("stop"));
        for name in DAEMONS.iter().chain(std::iter::once(&"supervisor")) {
            if let Some(pid) = self.pid(name) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The entry for daemon `name` in a `status --json` document.
pub fn daemon<'a>(status: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    status["daemons"]
        .as_array()?
        .iter()
        .find(|d| d["name"] == name)
}

pub fn all_ready(status: &serde_json::Value) -> bool {
    DAEMONS
        .iter()
        .all(|n| daemon(status, n).is_some_and(|d| d["state"] == "ready" && d["reported"] == true))
}

/// Every channel every daemon opened is up, and keyd and fwd each see ikerd and confd connected.
pub fn all_links_up(status: &serde_json::Value) -> bool {
    let links_up = DAEMONS.iter().all(|n| {
        daemon(status, n).is_some_and(|d| {
            d["links"]
                .as_array()
                .is_some_and(|ls| ls.iter().all(|l| l["state"] == "up"))
        })
    });
    let links_present = daemon(status, "ikerd")
        .is_some_and(|d| d["links"].as_array().is_some_and(|l| l.len() == 2))
        && daemon(status, "confd")
            .is_some_and(|d| d["links"].as_array().is_some_and(|l| l.len() == 3));
    let clients_seen = ["keyd", "fwd"].iter().all(|n| {
        daemon(status, n).is_some_and(|d| {
            let cs = d["clients"]
                .as_array()
                .map(|c| c.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>())
                .unwrap_or_default();
            cs.iter().any(|c| c.starts_with("ikerd")) && cs.iter().any(|c| c.starts_with("confd"))
        })
    });
    links_up && links_present && clients_seen
}

impl Instance {
    pub fn write_conf(&self, text: &str) {
        std::fs::write(self.config_dir.join("ipsec.conf"), text).expect("write ipsec.conf");
    }

    /// Write ipsec.secrets with `mode` (root-owned, as the test runs as root).
    pub fn write_secrets(&self, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.config_dir.join("ipsec.secrets");
        std::fs::write(&p, text).expect("write ipsec.secrets");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .expect("chmod ipsec.secrets");
    }

    /// `ipsecctl` for this instance as user `nobody` (outside the namespace: `ip netns exec` needs root,
    /// and Unix sockets are reached by path whatever the network namespace).
    pub fn ctl_as_nobody(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(bin("ipsecctl"));
        c.arg("--config-dir")
            .arg(&self.config_dir)
            .arg("--run-dir")
            .arg(&self.run_dir);
        c.uid(65534).gid(65534);
        c
    }

    /// Run `ipsecctl ARGS` for this instance; (exit ok, stdout, stderr).
    pub fn ctl_out(&self, args: &[&str]) -> (bool, String, String) {
        let out = run(self.ctl().args(args)).expect("ipsecctl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}
