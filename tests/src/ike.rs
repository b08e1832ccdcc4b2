//! Helpers for the IKE end-to-end tests: a gateway pair configured from one [`IkeTunnel`], the
//! operator's verbs, waiting for log lines, and the WAN checks every IKE test makes.

use crate::ike_conf::IkeTunnel;
use crate::topology::{Capture, GatewayPair};
use crate::{run, Instance, Result};
use std::time::{Duration, Instant};

/// Write `t`'s ipsec.conf on both gateways (west is left) and each side's ipsec.secrets.
pub fn configure(p: &GatewayPair, t: &IkeTunnel) {
    for (gw, left) in [(&p.west, true), (&p.east, false)] {
        configure_one(gw, t, left);
    }
}

/// Configure one ferroswan gateway for `t`, as its left (`local_is_left`) or right end.
pub fn configure_one(gw: &Instance, t: &IkeTunnel, local_is_left: bool) {
    let (conf, secrets) = t.ferroswan_conf(local_is_left);
    gw.write_conf(&conf);
    gw.write_secrets(&secrets, 0o600);
}

/// `ipsecctl ARGS` on `gw`: Ok(stdout) when it exits 0, else Err with both streams.
pub fn ctl(gw: &Instance, args: &[&str]) -> Result<String> {
    let out = run(gw.ctl().args(args))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "ipsecctl {}: {}\n{stdout}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Wait until `daemon`'s log on `gw` holds a line containing every one of `needles`.
pub fn wait_log(
    gw: &Instance,
    daemon: &str,
    needles: &[&str],
    timeout: Duration,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let log = gw.log(daemon);
        if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return Ok(line.to_string());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no {daemon} log line with {needles:?} within {timeout:?}; the log ends:\n{}",
                tail(&log, 40)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many of `daemon`'s log lines contain every one of `needles`.
pub fn count_log(gw: &Instance, daemon: &str, needles: &[&str]) -> usize {
    gw.log(daemon)
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Both ends of `conn` have an established ISAKMP SA and IPsec SA (pluto's state lines).
pub fn wait_established(p: &GatewayPair, conn: &str, timeout: Duration) -> Result<()> {
    for gw in [&p.west, &p.east] {
        wait_log(gw, "ikerd", &[conn, "IPsec SA established"], timeout)?;
    }
    Ok(())
}

/// The logs of both gateways' ikerd and fwd, for a failure message.
pub fn logs(p: &GatewayPair) -> String {
    let mut s = String::new();
    for (name, gw) in [("west", &p.west), ("east", &p.east)] {
        for d in ["ikerd", "keyd", "fwd"] {
            s.push_str(&format!(
                "\n----- {name} {d} -----\n{}",
                tail(&gw.log(d), 60)
            ));
        }
        s.push_str(&format!(
            "\n----- {name} look -----\n{}",
            ctl(gw, &["look"]).unwrap_or_else(|e| e)
        ));
    }
    s
}

/// The capture holds IPsec (ESP, or ESP in UDP 4500) and nothing in the clear. Returns the number
/// of ESP packets seen (either encapsulation).
pub fn assert_only_ipsec(cap: &Capture, what: &str) -> usize {
    let clear = cap
        .cleartext()
        .unwrap_or_else(|e| panic!("{what}: reading capture: {e}"));
    assert!(
        clear.is_empty(),
        "{what}: cleartext on the WAN: {:?}",
        &clear[..clear.len().min(5)]
    );
    let esp = cap
        .read("ip proto 50 or ip6 proto 50 or (udp port 4500 and udp[8:4] != 0)")
        .unwrap_or_default();
    assert!(!esp.is_empty(), "{what}: no ESP on the WAN at all");
    esp.len()
}
