//! Where a gateway instance keeps its configuration and its sockets. Every daemon and `ipsecctl`
//! take `--config-dir` and `--run-dir` (or FERROSWAN_CONFIG_DIR / FERROSWAN_RUN_DIR), so several
//! instances run side by side.

use crate::channel::Channel;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_DIR: &str = "/etc";
pub const DEFAULT_RUN_DIR: &str = "/run/ferroswan";

/// Options every ferroswan program accepts, before or after its verb.
#[derive(Debug, Clone, clap::Args)]
pub struct DirArgs {
    /// Directory holding ipsec.conf, ipsec.secrets and ipsec.d/.
    #[arg(long, global = true, env = "FERROSWAN_CONFIG_DIR", default_value = DEFAULT_CONFIG_DIR)]
    pub config_dir: PathBuf,
    /// Directory for sockets, pid files and (without systemd) logs of this instance.
    #[arg(long, global = true, env = "FERROSWAN_RUN_DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
}

impl DirArgs {
    pub fn dirs(&self) -> Dirs {
        Dirs {
            config: self.config_dir.clone(),
            run: self.run_dir.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    pub config: PathBuf,
    pub run: PathBuf,
}

impl Dirs {
    pub fn socket<C: Channel>(&self) -> PathBuf {
        self.run.join(C::SOCKET)
    }
    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.run.join(format!("{name}.pid"))
    }
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.run.join(format!("{name}.log"))
    }
    pub fn notify_socket(&self) -> PathBuf {
        self.run.join("notify.sock")
    }
    pub fn ipsec_conf(&self) -> PathBuf {
        self.config.join("ipsec.conf")
    }
    pub fn ipsec_secrets(&self) -> PathBuf {
        self.config.join("ipsec.secrets")
    }
    pub fn ipsec_d(&self) -> PathBuf {
        self.config.join("ipsec.d")
    }
}

/// Create the run dir if needed (0755: clients must reach ctl.sock; each socket has its own mode).
pub fn ensure_run_dir(run: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(run)
}
