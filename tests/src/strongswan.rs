//! strongSwan 5.9 as the reference peer of the interop tests: one `charon` per network namespace,
//! started by the test itself and driven with `swanctl` over vici. Never a system service: every
//! file it reads or writes is in its own private directory, and nothing touches /etc or /run.
//!
//! How each instance is kept apart (checked against Debian 12's strongSwan 5.9.8):
//! - **configuration**: libstrongswan reads the file named by `STRONGSWAN_CONF` instead of
//!   /etc/strongswan.conf (charon and swanctl both), so /etc/strongswan.d is never included;
//! - **vici socket**: `charon.plugins.vici.socket = unix://<dir>/charon.vici`, `swanctl --uri` to it;
//! - **pid file**: charon's is compiled in (`/var/run/charon.pid`, and a second charon refuses to start
//!   while it exists), so charon runs under `unshare --mount` with `<dir>/run` bound over /var/run in
//!   that private mount namespace: the pid file lands in `<dir>/run`, the real /run is untouched, and
//!   the mount disappears with the process;
//! - **swanctl credentials**: `SWANCTL_DIR=<dir>/swanctl` (`private/`, `pubkey/`, …) and `--file`;
//! - **datapath**: the `kernel-libipsec` plugin (userspace ESP through a TUN device `ipsec0`, routes in
//!   table 220 from `kernel-netlink`, which stays loaded for addresses and routes but installs no XFRM
//!   state: the libipsec plugin is ahead of it in the `load` list and takes the IPsec interface).
//!   libipsec always encapsulates ESP in UDP 4500 (strongSwan 5.9.8 has no raw ESP for it), so charon
//!   fakes NAT detection and floats to 4500 even between directly connected peers;
//! - **log**: `filelog` into `<dir>/charon.log` (IKE state changes at `ike 2`).
//!
//! Drop stops charon by the pid of the process this module spawned (SIGTERM, then SIGKILL) and
//! removes its directory; charon is also given PR_SET_PDEATHSIG so a test process killed outright
//! does not leave it running. (The death signal follows the *thread* that started charon: start it
//! on the thread that keeps the value, as a test body does, not in a short-lived helper thread.)
//!
//! Declare a `StrongSwan` after the topology it runs in, so that it is dropped first.

use crate::{Netns, Result, TempDir};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Debian's charon binary.
pub const CHARON: &str = "/usr/lib/ipsec/charon";

/// The plugins charon loads, in this order: `kernel-libipsec` before `kernel-netlink` so that the
/// userspace IPsec backend is the one used; `openssl` for 3DES, AES-GCM and the MODP/ECP groups.
pub const CHARON_PLUGINS: &str = "random nonce openssl aes sha1 sha2 md5 hmac gmp kdf gcm xcbc \
                                  pem pkcs1 pkcs8 pubkey x509 kernel-libipsec kernel-netlink \
                                  socket-default vici";

/// The strongswan.conf one instance runs with; `dir` is the instance's private directory.
/// Retransmission is shortened (2 s, ×1.5, 3 retries: about 16 s in all) so that a failed
/// negotiation ends within a test's time.
pub fn strongswan_conf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "# written by ferroswan's test harness (tests/src/strongswan.rs); selected with STRONGSWAN_CONF
charon {{
    load = {CHARON_PLUGINS}
    port = 500
    port_nat_t = 4500
    install_routes = yes
    install_virtual_ip = no
    retransmit_timeout = 2.0
    retransmit_base = 1.5
    retransmit_tries = 3
    plugins {{
        vici {{
            socket = unix://{d}/charon.vici
        }}
        kernel-libipsec {{
            allow_peer_ts = no
        }}
    }}
    filelog {{
        charon {{
            path = {d}/charon.log
            time_format = %H:%M:%S
            time_add_ms = yes
            ike_name = yes
            append = no
            flush_line = yes
            default = 1
            ike = 2
            cfg = 2
            knl = 1
            net = 1
            enc = 1
        }}
    }}
}}
swanctl {{
    load = pem pkcs1 pkcs8 x509 pubkey openssl random
}}
"
    )
}

/// Subdirectories swanctl opens under SWANCTL_DIR (created so that it does not complain).
const SWANCTL_SUBDIRS: [&str; 13] = [
    "x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private", "rsa",
    "ecdsa", "bliss", "pkcs8", "pkcs12",
];

/// A swanctl.conf and the files it refers to, relative to the swanctl directory
/// (`private/west.pem`, `pubkey/east.pem`).
#[derive(Clone, Default)]
pub struct SwanConf {
    pub text: String,
    pub files: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for SwanConf {
    // The files hold private keys: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwanConf")
            .field("text", &self.text)
            .field(
                "files",
                &self.files.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl From<&str> for SwanConf {
    fn from(text: &str) -> SwanConf {
        SwanConf {
            text: text.to_owned(),
            files: Vec::new(),
        }
    }
}

/// One charon in a network namespace, with its own directory.
pub struct StrongSwan {
    child: Option<Child>,
    pid: i32,
    ns: String,
    /// The private directory: strongswan.conf, charon.vici, charon.log, run/, swanctl/.
    pub dir: TempDir,
    /// How long start() took until vici answered.
    pub startup: Duration,
}

impl StrongSwan {
    /// Start charon in `ns` and wait (at most 15 s) until vici answers.
    pub fn start(ns: &Netns, tag: &str) -> Result<StrongSwan> {
        StrongSwan::start_with(ns, tag, "")
    }

    /// As [`StrongSwan::start`], with `extra` appended to strongswan.conf (sections of the same name
    /// merge, so `charon { make_before_break = yes }` adds to the harness's settings).
    pub fn start_with(ns: &Netns, tag: &str, extra: &str) -> Result<StrongSwan> {
        let started = Instant::now();
        let dir = TempDir::new(&format!("swan-{tag}"))?;
        let base = dir.0.clone();
        let mkdir =
            |p: &Path| std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()));
        mkdir(&base.join("run"))?;
        for sub in SWANCTL_SUBDIRS {
            mkdir(&base.join("swanctl").join(sub))?;
        }
        {
            use std::os::unix::fs::PermissionsExt;
            let private = base.join("swanctl").join("private");
            std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("{}: {e}", private.display()))?;
        }
        let mut conf = strongswan_conf(&base);
        conf.push_str(extra);
        write(&base.join("strongswan.conf"), conf.as_bytes(), 0o644)?;
        let swanctl_conf = base.join("swanctl").join("swanctl.conf");
        write(&swanctl_conf, b"# nothing loaded yet\n", 0o600)?;

        let stderr = std::fs::File::create(base.join("charon.stderr"))
            .map_err(|e| format!("charon.stderr: {e}"))?;
        let stdout = stderr
            .try_clone()
            .map_err(|e| format!("charon.stderr: {e}"))?;
        // ip netns exec, unshare (no --fork) and sh all exec in turn: the spawned pid is charon's.
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns", "exec", &ns.name, "unshare", "--mount", "--", "sh", "-c",
        ])
        .arg(r#"mount -n --bind "$1" /var/run && exec "$2""#)
        .arg("sh")
        .arg(base.join("run"))
        .arg(CHARON)
        .env("STRONGSWAN_CONF", base.join("strongswan.conf"))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; nothing is allocated between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().map_err(|e| format!("spawning charon: {e}"))?;
        let pid = i32::try_from(child.id()).map_err(|e| e.to_string())?;
        let mut sw = StrongSwan {
            child: Some(child),
            pid,
            ns: ns.name.clone(),
            dir,
            startup: Duration::ZERO,
        };
        sw.wait_vici(Duration::from_secs(15))?;
        let pidfile =
            std::fs::read_to_string(sw.dir.0.join("run").join("charon.pid")).unwrap_or_default();
        if pidfile.trim() != pid.to_string() {
            return Err(format!(
                "charon's pid file says {:?}, the process started is {pid}",
                pidfile.trim()
            ));
        }
        sw.startup = started.elapsed();
        Ok(sw)
    }

    fn wait_vici(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "charon exited during start-up ({status})\nstderr:\n{}\nlog:\n{}",
                        self.stderr(),
                        self.log()
                    ));
                }
            }
            if std::os::unix::net::UnixStream::connect(self.vici_path()).is_ok() {
                let out = self.swanctl(&["--stats"], Duration::from_secs(5))?;
                if out.status.success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "charon's vici did not answer within {timeout:?}\nstderr:\n{}\nlog:\n{}",
                    self.stderr(),
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn vici_path(&self) -> PathBuf {
        self.dir.0.join("charon.vici")
    }

    pub fn uri(&self) -> String {
        format!("unix://{}", self.vici_path().display())
    }

    pub fn swanctl_dir(&self) -> PathBuf {
        self.dir.0.join("swanctl")
    }

    pub fn conf_path(&self) -> PathBuf {
        self.dir.0.join("strongswan.conf")
    }

    /// `swanctl VERB… --uri <ours>` inside the namespace, killed after `timeout`.
    pub fn swanctl(&self, args: &[&str], timeout: Duration) -> Result<Output> {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, "swanctl"])
            .args(args)
            .arg("--uri")
            .arg(self.uri())
            .env("STRONGSWAN_CONF", self.conf_path())
            .env("SWANCTL_DIR", self.swanctl_dir());
        run_timeout(&mut c, timeout)
    }

    fn swanctl_ok(&self, args: &[&str], timeout: Duration) -> Result<String> {
        let out = self.swanctl(args, timeout)?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "swanctl {} failed ({}):\n{text}",
                args.join(" "),
                out.status
            ))
        }
    }

    /// Write swanctl.conf and its files into the swanctl directory and load everything
    /// (`swanctl --load-all --clear`: connections and credentials not in it are unloaded).
    pub fn load(&self, conf: &SwanConf) -> Result<String> {
        let sdir = self.swanctl_dir();
        for (rel, bytes) in &conf.files {
            let rel_path = Path::new(rel);
            if rel_path.is_absolute()
                || rel_path
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(format!(
                    "swanctl file {rel:?} must be a plain relative path"
                ));
            }
            let p = sdir.join(rel_path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            let mode = if rel.starts_with("private/") {
                0o600
            } else {
                0o644
            };
            write(&p, bytes, mode)?;
        }
        let file = sdir.join("swanctl.conf");
        write(&file, conf.text.as_bytes(), 0o600)?;
        let file = file.display().to_string();
        let out = self.swanctl_ok(
            &["--load-all", "--clear", "--noprompt", "--file", &file],
            Duration::from_secs(10),
        )?;
        // swanctl exits 0 even when a connection section is rejected; its output says so.
        if out.contains("failed") {
            return Err(format!("swanctl --load-all:\n{out}"));
        }
        Ok(out)
    }

    /// A swanctl.conf with no files.
    pub fn load_text(&self, text: &str) -> Result<String> {
        self.load(&SwanConf::from(text))
    }

    /// `swanctl --initiate --child CHILD`: Ok with swanctl's log of the exchange when the CHILD_SA
    /// is established within `timeout` (whole seconds, at least 1).
    pub fn initiate(&self, child: &str, timeout: Duration) -> Result<String> {
        let secs = timeout.as_secs().max(1).to_string();
        self.swanctl_ok(
            &["--initiate", "--child", child, "--timeout", &secs],
            timeout + Duration::from_secs(5),
        )
        .map_err(|e| format!("{e}\ncharon log:\n{}", self.log()))
    }

    /// `swanctl --terminate --ike IKE` (its CHILD_SAs go with it).
    pub fn terminate(&self, ike: &str, timeout: Duration) -> Result<String> {
        let secs = timeout.as_secs().max(1).to_string();
        self.swanctl_ok(
            &["--terminate", "--ike", ike, "--timeout", &secs],
            timeout + Duration::from_secs(5),
        )
    }

    /// `swanctl --list-sas`, or the error text if swanctl failed.
    pub fn list_sas(&self) -> String {
        self.swanctl_ok(&["--list-sas"], Duration::from_secs(10))
            .unwrap_or_else(|e| e)
    }

    /// `swanctl --list-conns`, or the error text if swanctl failed.
    pub fn list_conns(&self) -> String {
        self.swanctl_ok(&["--list-conns"], Duration::from_secs(10))
            .unwrap_or_else(|e| e)
    }

    /// Poll `--list-sas --ike IKE` until the IKE_SA is ESTABLISHED with an INSTALLED CHILD_SA
    /// (e.g. on the responder, or after `start_action = start`); returns that listing.
    pub fn wait_established(&self, ike: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self
                .swanctl_ok(&["--list-sas", "--ike", ike], Duration::from_secs(10))
                .unwrap_or_else(|e| e);
            if out.contains("ESTABLISHED") && out.contains("INSTALLED") {
                return Ok(out);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{ike} not established within {timeout:?}; list-sas:\n{out}\ncharon log:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// charon's log file.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("charon.log")).unwrap_or_default()
    }

    /// What charon (or the wrappers before it) wrote to stdout/stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("charon.stderr")).unwrap_or_default()
    }

    /// Whether the charon this value started is still running.
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stop charon: SIGTERM (it deletes its SAs, telling the peer), SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(self.pid);
        if matches!(c.try_wait(), Ok(None)) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
        }
        let _ = c.wait();
    }
}

impl Drop for StrongSwan {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("FERROSWAN_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept strongSwan dir {}", self.dir.0.display());
        }
    }
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::Write::write_all(&mut f, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Run `cmd` with its output collected; killed (by its pid) if it runs longer than `timeout`.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_t = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_t = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = out_t.join();
                let _ = err_t.join();
                return Err(format!("{cmd:?} did not finish within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{cmd:?}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

/// Whether Debian's strongSwan pieces this module needs are installed (for a clear failure message).
pub fn check_installed() -> Result<()> {
    let missing: Vec<&str> = [
        CHARON,
        "/usr/sbin/swanctl",
        "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so",
        "/usr/lib/ipsec/plugins/libstrongswan-openssl.so",
        "/usr/lib/ipsec/plugins/libstrongswan-vici.so",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "strongSwan is not installed ({} missing): run scripts/setup-debian.sh",
        missing.join(", ")
    ))
}
