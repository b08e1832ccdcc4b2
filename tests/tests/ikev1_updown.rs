//! `leftupdown=` / `rightupdown=` and `leftfirewall=` on IKE tunnels: ikerd tells fwd when a conn's
//! IPsec SA pair comes up and goes down, and fwd runs the conn's script with FreeS/WAN's `PLUTO_*`
//! environment.
//! - a script of the test's own, on both gateways: `up-client` with the right subnets, peer and peer
//!   ID once the tunnel is up (once, on each side); `ipsecctl down` on west gives `down-client` on
//!   west, and on east when the delete arrives;
//! - `leftfirewall=yes` with ferroswan's default script (`packaging/_updown`, through
//!   `FERROSWAN_UPDOWN_DEFAULT`): west's FORWARD chain holds the two ACCEPT rules for the tunnelled
//!   subnets while the tunnel is up, and none once it is down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ferroswan_tests::ike::*;
use ferroswan_tests::ike_conf::*;
use ferroswan_tests::topology::*;
use ferroswan_tests::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PSK: &str = "ferroswan updown test secret";
const UP: Duration = Duration::from_secs(20);

/// The tunnel: west (left) starts it, east answers.
fn tunnel() -> (IkeTunnel, IkeTunnel) {
    let mut west = IkeTunnel::lan_to_lan("net", 1, Auth::Psk(PSK.into()));
    west.auto = Auto::Start;
    let mut east = west.clone();
    east.auto = Auto::Add;
    (west, east)
}

/// Write `gw`'s config for `t` with `extra` lines appended to the conn (the last thing in the file).
fn configure_with(gw: &Instance, t: &IkeTunnel, local_is_left: bool, extra: &str) {
    let (conf, secrets) = t.ferroswan_conf(local_is_left);
    assert!(conf.ends_with('\n'));
    gw.write_conf(&format!("{conf}{extra}"));
    gw.write_secrets(&secrets, 0o600);
}

/// A root-owned 0755 script in `gw`'s temp dir that appends one line per call to `updown.out`
/// beside it. Returns (script, output file).
fn recording_script(gw: &Instance) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let script = gw.dir.0.join("updown.sh");
    let out = gw.dir.0.join("updown.out");
    let s = script.to_str().unwrap();
    assert!(
        !s.contains(char::is_whitespace),
        "the script path goes into ipsec.conf unquoted: {s}"
    );
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$PLUTO_VERB $PLUTO_CONNECTION $PLUTO_MY_CLIENT $PLUTO_PEER_CLIENT $PLUTO_PEER $PLUTO_PEER_ID\" >> {}\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, out)
}

fn lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Wait until `file` has a line equal to `want`.
fn wait_line(file: &Path, want: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if lines(file).iter().any(|l| l == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} has no line {want:?} within {timeout:?}; it holds {:?}",
                file.display(),
                lines(file)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn updown_scripts_run_on_both_gateways_when_the_tunnel_goes_up_and_down() {
    require_root();
    let (west_t, east_t) = tunnel();
    let p = GatewayPair::new("v1ud").expect("topology");
    let (west_script, west_out) = recording_script(&p.west);
    let (east_script, east_out) = recording_script(&p.east);
    // One file on each side, FreeS/WAN style: west is left, east is right.
    configure_with(
        &p.west,
        &west_t,
        true,
        &format!("\tleftupdown={}\n", west_script.display()),
    );
    configure_with(
        &p.east,
        &east_t,
        false,
        &format!("\trightupdown={}\n", east_script.display()),
    );
    p.start().expect("gateways start");
    wait_established(&p, "net", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));

    let west_up = format!("up-client net {WEST_LAN_NET} {EAST_LAN_NET} {EAST_WAN} {EAST_WAN}");
    let east_up = format!("up-client net {EAST_LAN_NET} {WEST_LAN_NET} {WEST_WAN} {WEST_WAN}");
    wait_line(&west_out, &west_up, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_line(&east_out, &east_up, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_log(
        &p.west,
        "fwd",
        &["\"net\": updown up-client done"],
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    // The tunnel works with the scripts in place, and nothing else was reported.
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    assert_eq!(lines(&west_out), std::slice::from_ref(&west_up));
    assert_eq!(lines(&east_out), std::slice::from_ref(&east_up));

    ctl(&p.west, &["down", "net"]).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    let west_down = west_up.replacen("up-client", "down-client", 1);
    let east_down = east_up.replacen("up-client", "down-client", 1);
    wait_line(&west_out, &west_down, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_line(&east_out, &east_down, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&west_out), [west_up, west_down]);
    assert_eq!(lines(&east_out), [east_up, east_down]);
}

/// `iptables -S FORWARD` in `ns`: the rules that mention `net`.
fn forward_rules(ns: &Netns, net: &str) -> Vec<String> {
    let out = run_ok(ns.cmd("iptables").args(["-S", "FORWARD"])).expect("iptables -S FORWARD");
    out.lines()
        .filter(|l| l.contains(net))
        .map(str::to_owned)
        .collect()
}

fn wait_rules(ns: &Netns, net: &str, n: usize, timeout: Duration) -> Result<Vec<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let rules = forward_rules(ns, net);
        if rules.len() == n {
            return Ok(rules);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "FORWARD has {} rules for {net}, not {n}, after {timeout:?}: {rules:?}",
                rules.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn leftfirewall_opens_and_closes_the_forward_chain_with_the_default_script() {
    require_root();
    let default_script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/_updown")
        .canonicalize()
        .expect("packaging/_updown");
    let (west_t, east_t) = tunnel();
    let p = GatewayPair::new("v1fw").expect("topology");
    configure_with(&p.west, &west_t, true, "\tleftfirewall=yes\n");
    configure_with(&p.east, &east_t, false, "\trightfirewall=yes\n");
    // No rule before the gateways run (auto=start may bring the tunnel up before they report ready).
    assert!(forward_rules(&p.west.ns, EAST_LAN_NET).is_empty());
    for gw in [&p.west, &p.east] {
        run_ok(
            gw.ctl()
                .env("FERROSWAN_UPDOWN_DEFAULT", &default_script)
                .arg("start"),
        )
        .expect("gateway starts");
    }
    for gw in [&p.west, &p.east] {
        gw.wait_status(Duration::from_secs(30), "gateway ready", |s| {
            all_ready(s) && all_links_up(s)
        })
        .expect("gateway ready");
    }
    wait_established(&p, "net", UP).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    let rules = wait_rules(&p.west.ns, EAST_LAN_NET, 2, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    let inbound = format!("-s {EAST_LAN_NET} -d {WEST_LAN_NET} -i ipsec0 -j ACCEPT");
    let outbound = format!("-s {WEST_LAN_NET} -d {EAST_LAN_NET} -o ipsec0 -j ACCEPT");
    for want in [&inbound, &outbound] {
        assert!(
            rules.iter().any(|r| r.contains(want.as_str())),
            "no rule with {want:?} in {rules:?}"
        );
    }
    // East's own script ran too (its subnets the other way round).
    wait_rules(&p.east.ns, WEST_LAN_NET, 2, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));

    ctl(&p.west, &["down", "net"]).unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_rules(&p.west.ns, EAST_LAN_NET, 0, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
    wait_rules(&p.east.ns, WEST_LAN_NET, 0, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}{}", logs(&p)));
}
