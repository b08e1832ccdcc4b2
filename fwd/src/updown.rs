//! `leftupdown=` scripts, started by fwd when ikerd says a conn went up or down, and run as root by
//! the supervisor (fwd has dropped root; see `ipsecctl::updown_runner`). ikerd names the conn and gives typed values; the command comes only from
//! confd's configuration, and fwd builds FreeS/WAN's `PLUTO_*` environment itself, so a compromised
//! ikerd can neither choose what runs nor inject variables (no `LD_PRELOAD`, no newlines).

use ipc::fwd::{UpdownConfig, UpdownEnv, UpdownVerb};
use ipc::supervisor::{SupervisorChannel, SupervisorRequest, SupervisorResponse, UpdownRun};
use ipc::policy::Net;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How long one script may run before the supervisor kills it.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest conn name, ID or command accepted.
const MAX_TEXT: usize = 1024;
/// The most conns with updown settings.
pub const MAX_CONNS: usize = 10_000;
/// Scripts waiting to run; more are refused (and logged).
pub const MAX_QUEUED: usize = 256;

/// The interface version FreeS/WAN 2.x scripts check (`PLUTO_VERSION`).
const PLUTO_VERSION: &str = "1.1";

#[derive(Debug, Default)]
pub struct Updowns {
    conns: HashMap<String, UpdownConfig>,
    /// The script a conn with `leftfirewall=yes` and no `leftupdown=` gets.
    default_script: PathBuf,
}

fn printable(what: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_TEXT || s.chars().any(char::is_control) {
        return Err(format!(
            "{what} must be at most {MAX_TEXT} bytes without control characters"
        ));
    }
    Ok(())
}

impl Updowns {
    pub fn new(default_script: PathBuf) -> Updowns {
        Updowns {
            conns: HashMap::new(),
            default_script,
        }
    }

    /// Replace the configuration (confd's `SetUpdowns`), checked whole first.
    pub fn set(&mut self, list: Vec<UpdownConfig>) -> Result<usize, String> {
        if list.len() > MAX_CONNS {
            return Err(format!("{} conns, at most {MAX_CONNS}", list.len()));
        }
        let mut conns = HashMap::with_capacity(list.len());
        for c in list {
            printable("a conn name", &c.conn)?;
            if let Some(s) = &c.script {
                printable(&format!("conn \"{}\": updown command", c.conn), s)?;
            }
            if c.script.is_some() || c.firewall {
                conns.insert(c.conn.clone(), c);
            }
        }
        let n = conns.len();
        self.conns = conns;
        Ok(n)
    }

    /// The shell command to run for `conn`, if it has one.
    pub fn command(&self, conn: &str) -> Option<String> {
        let c = self.conns.get(conn)?;
        match &c.script {
            Some(s) => Some(s.clone()),
            None if c.firewall => Some(self.default_script.display().to_string()),
            None => None,
        }
    }
}

fn mask(n: &Net) -> String {
    match n.addr {
        IpAddr::V4(_) => {
            let bits = u32::MAX
                .checked_shl(32 - u32::from(n.prefix.min(32)))
                .unwrap_or(0);
            std::net::Ipv4Addr::from(bits).to_string()
        }
        IpAddr::V6(_) => {
            let bits = u128::MAX
                .checked_shl(128 - u32::from(n.prefix.min(128)))
                .unwrap_or(0);
            std::net::Ipv6Addr::from(bits).to_string()
        }
    }
}

/// FreeS/WAN's updown environment for `verb`, after checking every text value. `interface` is
/// fwd's tunnel device.
pub fn environment(
    verb: UpdownVerb,
    env: &UpdownEnv,
    interface: &str,
) -> Result<Vec<(String, String)>, String> {
    printable("PLUTO_CONNECTION", &env.instance)?;
    printable("PLUTO_MY_ID", &env.my_id)?;
    printable("PLUTO_PEER_ID", &env.peer_id)?;
    let mut v: Vec<(&str, String)> = vec![
        ("PLUTO_VERSION", PLUTO_VERSION.into()),
        ("PLUTO_VERB", verb.as_str().into()),
        ("PLUTO_CONNECTION", env.instance.clone()),
        ("PLUTO_INTERFACE", interface.into()),
        (
            "PLUTO_NEXT_HOP",
            env.next_hop.unwrap_or(env.peer).to_string(),
        ),
        ("PLUTO_ME", env.me.to_string()),
        ("PLUTO_MY_ID", env.my_id.clone()),
        ("PLUTO_MY_CLIENT", env.my_client.to_string()),
        ("PLUTO_MY_CLIENT_NET", env.my_client.addr.to_string()),
        ("PLUTO_MY_CLIENT_MASK", mask(&env.my_client)),
        ("PLUTO_MY_PORT", env.my_port.to_string()),
        ("PLUTO_MY_PROTOCOL", env.my_protocol.to_string()),
        ("PLUTO_PEER", env.peer.to_string()),
        ("PLUTO_PEER_ID", env.peer_id.clone()),
        ("PLUTO_PEER_CLIENT", env.peer_client.to_string()),
        ("PLUTO_PEER_CLIENT_NET", env.peer_client.addr.to_string()),
        ("PLUTO_PEER_CLIENT_MASK", mask(&env.peer_client)),
        ("PLUTO_PEER_PORT", env.peer_port.to_string()),
        ("PLUTO_PEER_PROTOCOL", env.peer_protocol.to_string()),
    ];
    if let Some(ip) = env.my_sourceip {
        v.push(("PLUTO_MY_SOURCEIP", ip.to_string()));
    }
    v.push(("PATH", "/usr/sbin:/usr/bin:/sbin:/bin".into()));
    Ok(v.into_iter().map(|(k, val)| (k.to_string(), val)).collect())
}

/// Have the supervisor run one script to completion (it runs them as root, fwd having dropped
/// root), and log its outcome and output as FreeS/WAN's pluto did.
pub async fn run(
    supervisor: &ipc::client::Link<SupervisorChannel>,
    conn: String,
    verb: UpdownVerb,
    command: String,
    env: Vec<(String, String)>,
) {
    let req = SupervisorRequest::RunUpdown(UpdownRun {
        conn: conn.clone(),
        verb,
        command: command.clone(),
        env,
    });
    match supervisor.call(req, SCRIPT_TIMEOUT + Duration::from_secs(5)).await {
        Ok((SupervisorResponse::UpdownRan { success, detail, output }, _)) => {
            for line in output {
                tracing::info!("\"{conn}\": updown {}: {line}", verb.as_str());
            }
            if success {
                tracing::info!("\"{conn}\": updown {} done", verb.as_str());
            } else {
                tracing::warn!(
                    "\"{conn}\": updown `{command}` {} failed: {detail}",
                    verb.as_str()
                );
            }
        }
        Ok((other, _)) => tracing::error!(
            "\"{conn}\": updown `{command}` {}: the supervisor answered {other:?}",
            verb.as_str()
        ),
        Err(e) => tracing::error!(
            "\"{conn}\": updown `{command}` {} not run: no supervisor to run it as root ({e})",
            verb.as_str()
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn env() -> UpdownEnv {
        UpdownEnv {
            instance: "west-east".into(),
            me: "192.0.2.1".parse().unwrap(),
            my_id: "@west".into(),
            my_client: Net {
                addr: "10.1.0.0".parse().unwrap(),
                prefix: 24,
            },
            my_protocol: 0,
            my_port: 0,
            my_sourceip: None,
            peer: "192.0.2.2".parse().unwrap(),
            peer_id: "@east".into(),
            peer_client: Net {
                addr: "10.2.0.0".parse().unwrap(),
                prefix: 16,
            },
            peer_protocol: 17,
            peer_port: 1701,
            next_hop: None,
        }
    }

    fn get<'a>(v: &'a [(String, String)], k: &str) -> &'a str {
        &v.iter().find(|(key, _)| key == k).unwrap().1
    }

    #[test]
    fn the_environment_is_freeswans() {
        let v = environment(UpdownVerb::UpClient, &env(), "ipsec0").unwrap();
        assert_eq!(get(&v, "PLUTO_VERB"), "up-client");
        assert_eq!(get(&v, "PLUTO_CONNECTION"), "west-east");
        assert_eq!(get(&v, "PLUTO_MY_CLIENT"), "10.1.0.0/24");
        assert_eq!(get(&v, "PLUTO_MY_CLIENT_MASK"), "255.255.255.0");
        assert_eq!(get(&v, "PLUTO_PEER_CLIENT_MASK"), "255.255.0.0");
        assert_eq!(get(&v, "PLUTO_PEER"), "192.0.2.2");
        assert_eq!(get(&v, "PLUTO_NEXT_HOP"), "192.0.2.2");
        assert_eq!(get(&v, "PLUTO_PEER_ID"), "@east");
        assert_eq!(get(&v, "PLUTO_PEER_PORT"), "1701");
        assert_eq!(get(&v, "PLUTO_INTERFACE"), "ipsec0");
        // nothing but PLUTO_* and PATH
        assert!(v
            .iter()
            .all(|(k, _)| k.starts_with("PLUTO_") || k == "PATH"));
        let mut e6 = env();
        e6.my_client = Net {
            addr: "fd01::".parse().unwrap(),
            prefix: 64,
        };
        let v = environment(UpdownVerb::DownHost, &e6, "ipsec0").unwrap();
        assert_eq!(get(&v, "PLUTO_MY_CLIENT_MASK"), "ffff:ffff:ffff:ffff::");
    }

    #[test]
    fn control_characters_are_refused() {
        let mut e = env();
        e.peer_id = "@east\nLD_PRELOAD=/tmp/x.so".into();
        assert!(environment(UpdownVerb::UpClient, &e, "ipsec0").is_err());
        let mut u = Updowns::new("/usr/libexec/ferroswan/_updown".into());
        assert!(u
            .set(vec![UpdownConfig {
                conn: "a\u{0}".into(),
                script: None,
                firewall: true
            }])
            .is_err());
    }

    #[test]
    fn only_configured_commands_run() {
        let mut u = Updowns::new("/usr/libexec/ferroswan/_updown".into());
        u.set(vec![
            UpdownConfig {
                conn: "a".into(),
                script: Some("/etc/ipsec.d/a-updown".into()),
                firewall: false,
            },
            UpdownConfig {
                conn: "b".into(),
                script: None,
                firewall: true,
            },
            UpdownConfig {
                conn: "c".into(),
                script: None,
                firewall: false,
            },
        ])
        .unwrap();
        assert_eq!(u.command("a").as_deref(), Some("/etc/ipsec.d/a-updown"));
        assert_eq!(
            u.command("b").as_deref(),
            Some("/usr/libexec/ferroswan/_updown")
        );
        assert_eq!(u.command("c"), None);
        assert_eq!(u.command("unknown"), None);
    }
}
