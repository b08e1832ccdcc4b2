//! The demo gateway pair (`scripts/demo.sh`): two gateways in namespaces with a LAN behind each
//! (the test topology, tests/src/topology.rs), a manually keyed AES-128-CBC/HMAC-SHA1 tunnel between
//! the LANs with fresh keys from `ipsecctl ranbits`, their status and policies, a ping from LAN to LAN
//! and what the WAN saw of it. Everything is torn down at the end.

use ferroswan_tests::topology::*;
use ferroswan_tests::{run_ok, Result};
use std::time::Duration;

fn show(title: &str, text: &str) {
    println!("\n== {title}");
    print!("{text}");
}

fn demo() -> Result<()> {
    let p = GatewayPair::new("demo")?;
    let enc = run_ok(p.west.ctl().args(["ranbits", "128"]))?;
    let auth = run_ok(p.west.ctl().args(["ranbits", "160"]))?;
    let conf = format!(
        "version 2\n\nconfig setup\n\n# west's LAN <-> east's LAN, keyed by hand (no IKE)\nconn lan-lan\n    \
         left={WEST_WAN}\n    leftsubnet={WEST_LAN_NET}\n    right={EAST_WAN}\n    rightsubnet={EAST_LAN_NET}\n    \
         auto=manual\n    spi=0x1000\n    esp=aes128-sha1\n    espenckey={}\n    espauthkey={}\n",
        enc.trim(),
        auth.trim()
    );
    p.write_conf_both(&conf);
    show(
        "ipsec.conf (the same file on both gateways)",
        &conf
            .replace(enc.trim(), "0x<128 random bits>")
            .replace(auth.trim(), "0x<160 random bits>"),
    );
    println!("\n== starting west and east");
    p.start()?;
    show(
        "ipsecctl status (west)",
        &run_ok(p.west.ctl().arg("status"))?,
    );
    show(
        "ipsecctl eroute (west)",
        &run_ok(p.west.ctl().arg("eroute"))?,
    );
    show("ipsecctl look (west)", &run_ok(p.west.ctl().arg("look"))?);
    let file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &file)?;
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10))?;
    show(
        &format!("ping {EAST_HOST} from west's LAN host {WEST_HOST}"),
        &ping(&p.west_lan, EAST_HOST, 3)?,
    );
    cap.finish();
    let wire = cap.read("")?;
    show(
        "what the WAN link carried (tcpdump on west's wan0)",
        &wire
            .iter()
            .take(8)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    let clear = cap.cleartext()?;
    println!("\n== packets in the clear on the WAN: {}", clear.len());
    println!("\n== stopping both gateways and removing the namespaces");
    Ok(())
}

fn main() {
    ferroswan_tests::require_root();
    if let Err(e) = demo() {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}
