//! `ipsecctl status`: the supervisor's view (processes) merged with each daemon's own report
//! (readiness, channels), as a table or as JSON for scripts.

use ipc::ctl::DaemonReport;
use ipc::status::{now_unix, DaemonStatus, LinkState};
use ipc::supervisor::{ProcState, SupervisorStatus};
use ipc::Role;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkView {
    pub peer: String,
    pub state: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DaemonView {
    pub name: String,
    pub pid: Option<u32>,
    /// starting, ready, down or stopping, as the supervisor sees the process.
    pub state: String,
    pub uptime_s: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// The daemon's own answer (through confd): absent when it could not be asked.
    pub reported: bool,
    pub unreachable_reason: Option<String>,
    pub uid: Option<u32>,
    pub links: Vec<LinkView>,
    pub clients: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusView {
    pub running: bool,
    pub supervisor_pid: Option<u32>,
    pub uptime_s: Option<u64>,
    pub config_dir: String,
    pub run_dir: String,
    pub daemons: Vec<DaemonView>,
    /// Why confd's view is missing, if it is.
    pub confd_error: Option<String>,
}

fn state_name(s: ProcState) -> &'static str {
    match s {
        ProcState::Starting => "starting",
        ProcState::Ready => "ready",
        ProcState::Down => "down",
        ProcState::Stopping => "stopping",
    }
}

fn link_view(l: &ipc::status::LinkReport) -> LinkView {
    let (state, detail) = match &l.state {
        LinkState::Connecting => ("connecting", String::new()),
        LinkState::Up { reconnects, .. } => ("up", format!("reconnects {reconnects}")),
        LinkState::Down {
            reason, reconnects, ..
        } => ("down", format!("{reason} (reconnects {reconnects})")),
    };
    LinkView {
        peer: l.peer.name().to_string(),
        state: state.into(),
        detail,
    }
}

pub fn merge(sup: &SupervisorStatus, reports: Result<&[DaemonReport], String>) -> StatusView {
    let now = now_unix();
    let own: Vec<&DaemonStatus> = match &reports {
        Ok(rs) => rs
            .iter()
            .filter_map(|r| {
                if let DaemonReport::Ok(s) = r {
                    Some(s)
                } else {
                    None
                }
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let daemons = Role::DAEMONS
        .iter()
        .map(|role| {
            let proc = sup.procs.iter().find(|p| p.role == *role);
            let mine = own
                .iter()
                .find(|s| s.role == *role && Some(s.pid) == proc.and_then(|p| p.pid));
            // When confd itself cannot be asked, that is said once below the table, not on every row.
            let unreachable_reason = match &reports {
                Err(_) => None,
                Ok(rs) => rs.iter().find_map(|r| match r {
                    DaemonReport::Unreachable { role: r, reason } if r == role => {
                        Some(reason.clone())
                    }
                    _ => None,
                }),
            };
            DaemonView {
                name: role.name().into(),
                pid: proc.and_then(|p| p.pid),
                state: proc.map(|p| state_name(p.state)).unwrap_or("down").into(),
                uptime_s: proc
                    .and_then(|p| p.pid.and(p.started_unix))
                    .map(|s| now.saturating_sub(s)),
                restarts: proc.map(|p| p.restarts).unwrap_or(0),
                last_exit: proc.and_then(|p| p.last_exit.clone()),
                reported: mine.is_some(),
                unreachable_reason: if mine.is_some() {
                    None
                } else {
                    unreachable_reason
                },
                uid: mine.map(|s| s.uid),
                links: mine
                    .map(|s| s.links.iter().map(link_view).collect())
                    .unwrap_or_default(),
                clients: mine
                    .map(|s| {
                        s.clients
                            .iter()
                            .map(|c| format!("{} (pid {})", c.role, c.cred.pid))
                            .collect()
                    })
                    .unwrap_or_default(),
                notes: mine.map(|s| s.notes.clone()).unwrap_or_default(),
            }
        })
        .collect();
    StatusView {
        running: true,
        supervisor_pid: Some(sup.pid),
        uptime_s: Some(now.saturating_sub(sup.started_unix)),
        config_dir: sup.config_dir.clone(),
        run_dir: sup.run_dir.clone(),
        daemons,
        confd_error: reports.err(),
    }
}

pub fn not_running(config_dir: &str, run_dir: &str) -> StatusView {
    StatusView {
        running: false,
        supervisor_pid: None,
        uptime_s: None,
        config_dir: config_dir.into(),
        run_dir: run_dir.into(),
        daemons: Vec::new(),
        confd_error: None,
    }
}

fn dur(s: Option<u64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) => format!("{}h", s / 3600),
    }
}

pub fn render_text(v: &StatusView) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if !v.running {
        let _ = writeln!(
            out,
            "ferroswan is not running (no supervisor answers in {})",
            v.run_dir
        );
        return out;
    }
    let _ = writeln!(
        out,
        "ferroswan: supervisor pid {}, up {}; config {}, run {}",
        v.supervisor_pid.unwrap_or(0),
        dur(v.uptime_s),
        v.config_dir,
        v.run_dir
    );
    let _ = writeln!(
        out,
        "{:<7} {:>7} {:<9} {:>7} {:>8}  CHANNELS",
        "DAEMON", "PID", "STATE", "UPTIME", "RESTARTS"
    );
    for d in &v.daemons {
        let links = if d.links.is_empty() {
            String::new()
        } else {
            d.links
                .iter()
                .map(|l| format!("{}:{}", l.peer, l.state))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let extra = match (&d.unreachable_reason, &d.last_exit) {
            (Some(r), _) if d.state != "ready" || !d.reported => format!(" [{r}]"),
            (_, Some(e)) if d.state == "down" => format!(" [last: {e}]"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<7} {:>7} {:<9} {:>7} {:>8}  {links}{extra}",
            d.name,
            d.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            d.state,
            dur(d.uptime_s),
            d.restarts
        );
        for n in &d.notes {
            let _ = writeln!(out, "{:<7} {n}", "");
        }
    }
    if let Some(e) = &v.confd_error {
        let _ = writeln!(
            out,
            "(confd could not be asked: {e}; daemon channels unknown)"
        );
    }
    out
}
