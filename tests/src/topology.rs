//! The gateway-pair topology every datapath test uses, built in one place:
//!
//! ```text
//!  lan-west            gw-west                         gw-east            lan-east
//!  10.1.0.2/24 ── 10.1.0.1/24 | 192.0.2.1/24 ── wan ── 192.0.2.2/24 | 10.2.0.1/24 ── 10.2.0.2/24
//!  fd01::2/64      fd01::1/64 | 2001:db8::1/64        2001:db8::2/64 | fd02::1/64     fd02::2/64
//! ```
//!
//! Each box is a network namespace created here (and deleted on drop); each gateway is a full
//! [`Instance`] in its namespace. The WAN link is `wan0` on both gateways, the LAN link `lan0`; the LAN
//! hosts route everything through their gateway. Nothing touches the root namespace.

use crate::{run, run_ok, Instance, Netns, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WEST_WAN: &str = "192.0.2.1";
pub const EAST_WAN: &str = "192.0.2.2";
pub const WEST_LAN_NET: &str = "10.1.0.0/24";
pub const EAST_LAN_NET: &str = "10.2.0.0/24";
pub const WEST_GW_LAN: &str = "10.1.0.1";
pub const EAST_GW_LAN: &str = "10.2.0.1";
pub const WEST_HOST: &str = "10.1.0.2";
pub const EAST_HOST: &str = "10.2.0.2";
pub const WEST_WAN6: &str = "2001:db8::1";
pub const EAST_WAN6: &str = "2001:db8::2";
pub const WEST_HOST6: &str = "fd01::2";
pub const EAST_HOST6: &str = "fd02::2";

pub struct GatewayPair {
    pub west: Instance,
    pub east: Instance,
    pub west_lan: Netns,
    pub east_lan: Netns,
}

fn ip(ns: &Netns, args: &[&str]) -> Result<String> {
    run_ok(Command::new("ip").arg("-n").arg(&ns.name).args(args))
}

fn sysctl(ns: &Netns, key: &str, value: &str) -> Result<String> {
    run_ok(ns.cmd("sysctl").args(["-qw", &format!("{key}={value}")]))
}

/// A veth pair with one end in each namespace, named `a_if` and `b_if` there.
fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    // Create inside `a`, then move the peer: nothing is ever created in the root namespace.
    ip(
        a,
        &[
            "link", "add", a_if, "type", "veth", "peer", "name", "tmp-peer",
        ],
    )?;
    ip(a, &["link", "set", "tmp-peer", "netns", &b.name])?;
    ip(b, &["link", "set", "tmp-peer", "name", b_if])?;
    ip(a, &["link", "set", a_if, "up"])?;
    ip(b, &["link", "set", b_if, "up"])?;
    Ok(())
}

impl GatewayPair {
    /// Namespaces, links, addresses and LAN routes; the gateways are not started.
    pub fn new(tag: &str) -> Result<GatewayPair> {
        crate::require_root();
        let west = Instance::new(&format!("{tag}-gw-w"))?;
        let east = Instance::new(&format!("{tag}-gw-e"))?;
        let west_lan = Netns::new(&format!("{tag}-lan-w"))?;
        let east_lan = Netns::new(&format!("{tag}-lan-e"))?;
        for ns in [&west.ns, &east.ns, &west_lan, &east_lan] {
            // No DAD delays on the test links, and IPv6 on.
            sysctl(ns, "net.ipv6.conf.all.accept_dad", "0")?;
            sysctl(ns, "net.ipv6.conf.default.accept_dad", "0")?;
        }
        veth(&west.ns, "wan0", &east.ns, "wan0")?;
        veth(&west_lan, "eth0", &west.ns, "lan0")?;
        veth(&east_lan, "eth0", &east.ns, "lan0")?;
        let addrs: [(&Netns, &str, &str); 8] = [
            (&west.ns, "wan0", "192.0.2.1/24"),
            (&east.ns, "wan0", "192.0.2.2/24"),
            (&west.ns, "lan0", "10.1.0.1/24"),
            (&east.ns, "lan0", "10.2.0.1/24"),
            (&west_lan, "eth0", "10.1.0.2/24"),
            (&east_lan, "eth0", "10.2.0.2/24"),
            (&west.ns, "wan0", "2001:db8::1/64"),
            (&east.ns, "wan0", "2001:db8::2/64"),
        ];
        for (ns, dev, a) in addrs {
            ip(ns, &["addr", "add", a, "dev", dev, "nodad"])?;
        }
        for (ns, dev, a) in [
            (&west.ns, "lan0", "fd01::1/64"),
            (&east.ns, "lan0", "fd02::1/64"),
            (&west_lan, "eth0", "fd01::2/64"),
            (&east_lan, "eth0", "fd02::2/64"),
        ] {
            ip(ns, &["addr", "add", a, "dev", dev, "nodad"])?;
        }
        ip(&west_lan, &["route", "add", "default", "via", WEST_GW_LAN])?;
        ip(&east_lan, &["route", "add", "default", "via", EAST_GW_LAN])?;
        ip(
            &west_lan,
            &["-6", "route", "add", "default", "via", "fd01::1"],
        )?;
        ip(
            &east_lan,
            &["-6", "route", "add", "default", "via", "fd02::1"],
        )?;
        for gw in [&west.ns, &east.ns] {
            sysctl(gw, "net.ipv4.ip_forward", "1")?;
            sysctl(gw, "net.ipv6.conf.all.forwarding", "1")?;
        }
        Ok(GatewayPair {
            west,
            east,
            west_lan,
            east_lan,
        })
    }

    /// Start both gateways and wait until every daemon of each is ready with its channels up.
    pub fn start(&self) -> Result<()> {
        for gw in [&self.west, &self.east] {
            gw.start()?;
        }
        for gw in [&self.west, &self.east] {
            gw.wait_status(Duration::from_secs(30), "gateway ready", |s| {
                crate::all_ready(s) && crate::all_links_up(s)
            })?;
        }
        Ok(())
    }

    /// Write the same ipsec.conf on both gateways (FreeS/WAN style: one file, left/right oriented by
    /// each host's addresses).
    pub fn write_conf_both(&self, conf: &str) {
        self.west.write_conf(conf);
        self.east.write_conf(conf);
    }
}

/// `ping -c COUNT` from a namespace; Ok with ping's output when every reply came back.
pub fn ping(ns: &Netns, dst: &str, count: u32) -> Result<String> {
    run_ok(ns.cmd("ping").args([
        "-n",
        "-q",
        "-c",
        &count.to_string(),
        "-i",
        "0.05",
        "-W",
        "2",
        dst,
    ]))
}

/// Ping until one reply comes back (routes and SAs settling), for at most `timeout`.
pub fn wait_ping(ns: &Netns, dst: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let ok = run(ns.cmd("ping").args(["-n", "-q", "-c", "1", "-W", "1", dst]))?
            .status
            .success();
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("no ping reply from {dst} within {timeout:?}"));
        }
    }
}

/// A packet capture with tcpdump in a namespace, stopped (by its pid) on [`Capture::finish`] or drop.
pub struct Capture {
    child: Option<Child>,
    pub file: PathBuf,
}

impl Capture {
    /// Capture everything on `iface` in `ns` into `file`; returns once tcpdump is listening.
    pub fn start(ns: &Netns, iface: &str, file: &Path) -> Result<Capture> {
        let mut child = ns
            .cmd("tcpdump")
            .args(["-i", iface, "-n", "-U", "--immediate-mode", "-s", "0", "-w"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("tcpdump: {e}"))?;
        // tcpdump prints "listening on ..." to stderr when the capture is live.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stderr = child.stderr.take().ok_or("no tcpdump stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 512];
            let mut seen = Vec::new();
            loop {
                match stderr.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        seen.extend_from_slice(buf.get(..n).unwrap_or_default());
                        if String::from_utf8_lossy(&seen).contains("listening on") {
                            let _ = tx.send(());
                        }
                    }
                }
            }
        });
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left)
            .map_err(|_| "tcpdump did not start listening".to_string())?;
        Ok(Capture {
            child: Some(child),
            file: file.to_path_buf(),
        })
    }

    /// Stop tcpdump (SIGINT, so it flushes) and wait for it.
    pub fn finish(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGINT,
                );
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Read the capture back with a filter; one line per packet.
    pub fn read(&self, filter: &str) -> Result<Vec<String>> {
        let mut cmd = Command::new("tcpdump");
        cmd.args(["-n", "-r"]).arg(&self.file);
        if !filter.is_empty() {
            cmd.arg(filter);
        }
        let out = run(&mut cmd)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Packets in the capture that are neither IPsec (ESP, AH, ESP-in-UDP, IKE) nor link chatter
    /// (ARP, neighbour discovery, link-local and multicast IPv6 such as MLD reports):
    /// anything here is traffic that left the gateway in the clear.
    pub fn cleartext(&self) -> Result<Vec<String>> {
        self.read(
            "(ip and not (ip proto 50 or ip proto 51 or udp port 500 or udp port 4500)) or \
             (ip6 and not (ip6 proto 50 or ip6 proto 51 or udp port 500 or udp port 4500 or icmp6 \
             or src net fe80::/10 or dst net ff00::/8))",
        )
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Move `bytes` of deterministic data over TCP from `from` to `to_addr` (a listener started in `to`
/// by this function) and compare SHA-256 on both ends. Returns (bytes, seconds).
pub fn tcp_transfer(
    from: &Netns,
    to: &Netns,
    to_addr: &str,
    bytes: u64,
    timeout: Duration,
) -> Result<(u64, f64)> {
    let port = "5201";
    let mut server = to
        .cmd(crate::bin("tcp-xfer"))
        .args([
            "serve",
            "--bind",
            if to_addr.contains(':') {
                "::"
            } else {
                "0.0.0.0"
            },
        ])
        .args([
            "--port",
            port,
            "--timeout-secs",
            &timeout.as_secs().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("tcp-xfer serve: {e}"))?;
    // Wait for the listener.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let sent = run(from.cmd(crate::bin("tcp-xfer")).args([
        "send",
        "--to",
        to_addr,
        "--port",
        port,
        "--bytes",
        &bytes.to_string(),
        "--timeout-secs",
        &timeout.as_secs().to_string(),
    ]));
    let secs = started.elapsed().as_secs_f64();
    let sent = match sent {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        Ok(o) => {
            let _ = server.kill();
            let _ = server.wait();
            return Err(format!(
                "tcp-xfer send failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Err(e) => {
            let _ = server.kill();
            let _ = server.wait();
            return Err(e);
        }
    };
    let out = server.wait_with_output().map_err(|e| e.to_string())?;
    let got = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        return Err(format!(
            "tcp-xfer serve failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if sent != got || !sent.starts_with(&format!("{bytes} ")) {
        return Err(format!(
            "transfer mismatch: sent `{sent}`, received `{got}`"
        ));
    }
    Ok((bytes, secs))
}

/// A deterministic key of `len` bytes as `0x…` hex (test keys only, never for a real gateway).
pub fn test_key(len: usize, seed: u8) -> String {
    let mut s = String::from("0x");
    for i in 0..len {
        s.push_str(&format!(
            "{:02x}",
            (i as u8).wrapping_mul(29).wrapping_add(seed)
        ));
    }
    s
}

/// A manually keyed conn `net` between the two gateways, for the one ipsec.conf both read: LAN to LAN
/// in tunnel mode, or gateway to gateway with `transport`. `esp` is (`esp=` value, encryption key
/// bytes, authentication key bytes), `ah` is (`ah=` value, key bytes).
pub struct ManualConn {
    pub esp: Option<(&'static str, usize, usize)>,
    pub ah: Option<(&'static str, usize)>,
    pub transport: bool,
    pub replay_window: Option<u32>,
}

impl ManualConn {
    pub fn conf(&self) -> String {
        let mut c = format!(
            "version 2\n\nconfig setup\n\nconn net\n    left={WEST_WAN}\n    right={EAST_WAN}\n    auto=manual\n    spi=0x3000\n"
        );
        if self.transport {
            c.push_str("    type=transport\n");
        } else {
            c.push_str(&format!(
                "    leftsubnet={WEST_LAN_NET}\n    rightsubnet={EAST_LAN_NET}\n"
            ));
        }
        if let Some((esp, enc, auth)) = self.esp {
            c.push_str(&format!(
                "    esp={esp}\n    espenckey={}\n",
                test_key(enc, 3)
            ));
            if auth > 0 {
                c.push_str(&format!("    espauthkey={}\n", test_key(auth, 11)));
            }
        }
        if let Some((ah, len)) = self.ah {
            c.push_str(&format!("    ah={ah}\n    ahkey={}\n", test_key(len, 17)));
        }
        if let Some(w) = self.replay_window {
            c.push_str(&format!("    espreplay_window={w}\n"));
        }
        c
    }
}

/// The NAT variant of the gateway pair: west sits behind a masquerading router, east has a public
/// address and no route back to west's real one.
///
/// ```text
///  lan-west   gw-west              nat (MASQUERADE out wan-e)            gw-east          lan-east
///  10.1.0.2 ─ 10.1.0.1 | 192.0.2.1 ── 192.0.2.254 | 198.51.100.254 ── 198.51.100.2 | 10.2.0.1 ─ 10.2.0.2
/// ```
///
/// West's default route is via 192.0.2.254; east knows only 198.51.100.0/24 on its WAN, so everything
/// from west reaches it as 198.51.100.254. The LAN namespaces are as in [`GatewayPair`] (IPv4 and
/// IPv6); the WAN is IPv4 only. Dropping the value deletes every namespace (and with the `nat`
/// namespace its iptables rules and conntrack state).
pub struct NatGatewayPair {
    /// The gateways and LANs (its `east` has [`NAT_EAST_WAN`], not [`EAST_WAN`]).
    pub pair: GatewayPair,
    /// The router between the two WANs.
    pub nat: Netns,
}

/// West's side of the NAT router.
pub const NAT_INSIDE: &str = "192.0.2.254";
/// The NAT router's public address: what east sees as west's address.
pub const NAT_OUTSIDE: &str = "198.51.100.254";
/// East's WAN address in the NAT topology.
pub const NAT_EAST_WAN: &str = "198.51.100.2";

impl std::ops::Deref for NatGatewayPair {
    type Target = GatewayPair;
    fn deref(&self) -> &GatewayPair {
        &self.pair
    }
}

impl NatGatewayPair {
    /// Namespaces, links, addresses, routes and the NAT rule; the gateways are not started.
    pub fn new(tag: &str) -> Result<NatGatewayPair> {
        crate::require_root();
        let west = Instance::new(&format!("{tag}-gw-w"))?;
        let east = Instance::new(&format!("{tag}-gw-e"))?;
        let west_lan = Netns::new(&format!("{tag}-lan-w"))?;
        let east_lan = Netns::new(&format!("{tag}-lan-e"))?;
        let nat = Netns::new(&format!("{tag}-nat"))?;
        for ns in [&west.ns, &east.ns, &west_lan, &east_lan, &nat] {
            sysctl(ns, "net.ipv6.conf.all.accept_dad", "0")?;
            sysctl(ns, "net.ipv6.conf.default.accept_dad", "0")?;
        }
        veth(&west.ns, "wan0", &nat, "wan-w")?;
        veth(&nat, "wan-e", &east.ns, "wan0")?;
        veth(&west_lan, "eth0", &west.ns, "lan0")?;
        veth(&east_lan, "eth0", &east.ns, "lan0")?;
        let addrs: [(&Netns, &str, &str); 10] = [
            (&west.ns, "wan0", "192.0.2.1/24"),
            (&nat, "wan-w", "192.0.2.254/24"),
            (&nat, "wan-e", "198.51.100.254/24"),
            (&east.ns, "wan0", "198.51.100.2/24"),
            (&west.ns, "lan0", "10.1.0.1/24"),
            (&east.ns, "lan0", "10.2.0.1/24"),
            (&west_lan, "eth0", "10.1.0.2/24"),
            (&east_lan, "eth0", "10.2.0.2/24"),
            (&west.ns, "lan0", "fd01::1/64"),
            (&east.ns, "lan0", "fd02::1/64"),
        ];
        for (ns, dev, a) in addrs {
            ip(ns, &["addr", "add", a, "dev", dev, "nodad"])?;
        }
        for (ns, a) in [(&west_lan, "fd01::2/64"), (&east_lan, "fd02::2/64")] {
            ip(ns, &["addr", "add", a, "dev", "eth0", "nodad"])?;
        }
        ip(&west_lan, &["route", "add", "default", "via", WEST_GW_LAN])?;
        ip(&east_lan, &["route", "add", "default", "via", EAST_GW_LAN])?;
        ip(
            &west_lan,
            &["-6", "route", "add", "default", "via", "fd01::1"],
        )?;
        ip(
            &east_lan,
            &["-6", "route", "add", "default", "via", "fd02::1"],
        )?;
        ip(&west.ns, &["route", "add", "default", "via", NAT_INSIDE])?;
        for gw in [&west.ns, &east.ns] {
            sysctl(gw, "net.ipv4.ip_forward", "1")?;
            sysctl(gw, "net.ipv6.conf.all.forwarding", "1")?;
        }
        sysctl(&nat, "net.ipv4.ip_forward", "1")?;
        run_ok(nat.cmd("iptables").args([
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            "wan-e",
            "-j",
            "MASQUERADE",
        ]))?;
        Ok(NatGatewayPair {
            pair: GatewayPair {
                west,
                east,
                west_lan,
                east_lan,
            },
            nat,
        })
    }
}
