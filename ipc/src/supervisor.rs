//! Channel `supervisor.sock`: `ipsecctl` asks the root supervisor (the `_plutorun` of ferroswan) about
//! the processes it runs, and tells it to stop; fwd, which has dropped root, asks it to run the
//! updown scripts (as root, as FreeS/WAN ran them).

use crate::channel::{Channel, NoEvent};
use crate::hello::Role;
use serde::{Deserialize, Serialize};

pub struct SupervisorChannel;

impl Channel for SupervisorChannel {
    const SOCKET: &'static str = "supervisor.sock";
    const SERVER: Role = Role::Supervisor;
    const CLIENTS: &'static [Role] = &[Role::Ctl, Role::Fwd];
    const MAX_FRAME: usize = 64 * 1024;
    const PASSES_FDS: bool = false;
    const MODE: u32 = 0o666;
    type Request = SupervisorRequest;
    type Response = SupervisorResponse;
    type Event = NoEvent;
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SupervisorRequest {
    Status,
    /// Stop all daemons, then the supervisor itself.
    Stop,
    /// Stop and start one daemon (e.g. keyd, to re-read ipsec.secrets).
    Restart(Role),
    /// fwd only: run one updown script to completion. The supervisor runs only a command the
    /// configuration names (`leftupdown=`/`rightupdown=`, or the default script), with only
    /// `PLUTO_*` and `PATH` in its environment.
    RunUpdown(UpdownRun),
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdownRun {
    pub conn: String,
    pub verb: crate::fwd::UpdownVerb,
    pub command: String,
    pub env: Vec<(String, String)>,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcState {
    Starting,
    Ready,
    /// Exited; waiting out the back-off before the next start.
    Down,
    Stopping,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcReport {
    pub role: Role,
    pub pid: Option<u32>,
    pub state: ProcState,
    pub started_unix: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<String>,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorStatus {
    pub pid: u32,
    pub started_unix: u64,
    pub config_dir: String,
    pub run_dir: String,
    pub procs: Vec<ProcReport>,
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SupervisorResponse {
    Status(SupervisorStatus),
    Stopping,
    Restarting(Role),
    PermissionDenied(String),
    Error(String),
    /// How an updown script ended (`detail`: "exit status 0", "killed after 30 s"…), with the first
    /// lines it printed.
    UpdownRan {
        success: bool,
        detail: String,
        output: Vec<String>,
    },
}
