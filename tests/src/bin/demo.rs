//! The demo gateway pair (`scripts/demo.sh`): two gateways in namespaces with a LAN behind each
//! (the test topology, tests/src/topology.rs), each with a fresh RSA key from `ipsecctl rsasigkey`,
//! one ipsec.conf naming both public keys, and an IKEv1 tunnel (Main Mode with RSA signatures, Quick
//! Mode with PFS) between the LANs that comes up by itself (`auto=start`); then `ipsecctl status`, a
//! ping from LAN to LAN and what the WAN saw of it. Everything is torn down at the end.

use ferroswan_tests::ike::wait_log;
use ferroswan_tests::topology::*;
use ferroswan_tests::{run_ok, Result};
use std::time::Duration;

fn show(title: &str, text: &str) {
    println!("\n== {title}");
    print!("{text}");
}

/// A new key from `ipsecctl rsasigkey`: (the ipsec.secrets entry for `id`, its `0s…` public key).
fn new_key(gw: &ferroswan_tests::Instance, id: &str) -> Result<(String, String)> {
    let block = run_ok(gw.ctl().args(["rsasigkey", "--bits", "2048"]))?;
    let pubkey = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("#pubkey="))
        .ok_or("rsasigkey printed no #pubkey= line")?
        .to_string();
    Ok((format!("{id} {block}"), pubkey))
}

fn demo() -> Result<()> {
    let p = GatewayPair::new("demo")?;
    println!("== making an RSA key for each gateway (ipsecctl rsasigkey --bits 2048)");
    let (west_secret, west_pub) = new_key(&p.west, "@west")?;
    let (east_secret, east_pub) = new_key(&p.east, "@east")?;
    p.west.write_secrets(&west_secret, 0o600);
    p.east.write_secrets(&east_secret, 0o600);
    let conf = format!(
        "version 2\n\nconfig setup\n\n# west's LAN <-> east's LAN: IKEv1, RSA signatures, AES-128/SHA-1\n\
         conn west-east\n    keyexchange=ikev1\n    authby=rsasig\n    \
         left={WEST_WAN}\n    leftid=@west\n    leftsubnet={WEST_LAN_NET}\n    leftrsasigkey={west_pub}\n    \
         right={EAST_WAN}\n    rightid=@east\n    rightsubnet={EAST_LAN_NET}\n    rightrsasigkey={east_pub}\n    \
         ike=aes128-sha1-modp2048\n    esp=aes128-sha1\n    pfs=yes\n    auto=start\n"
    );
    p.write_conf_both(&conf);
    show(
        "ipsec.conf (the same file on both gateways; the private keys stay in each one's ipsec.secrets, read only by keyd)",
        &conf
            .replace(&west_pub, "0s<west's public key>")
            .replace(&east_pub, "0s<east's public key>"),
    );
    println!("\n== starting west and east; the tunnel comes up by itself");
    p.start()?;
    for gw in [&p.west, &p.east] {
        wait_log(
            gw,
            "ikerd",
            &["\"west-east\"", "IPsec SA established"],
            Duration::from_secs(20),
        )?;
    }
    show(
        "ikerd's log (west)",
        &p.west
            .log("ikerd")
            .lines()
            .filter(|l| l.contains("\"west-east\" #"))
            .map(|l| format!("{}\n", l.split_once("Z ").map_or(l, |(_, r)| r)))
            .collect::<String>(),
    );
    show(
        "ipsecctl status (west)",
        &run_ok(p.west.ctl().arg("status"))?,
    );
    let file = p.west.dir.0.join("wan.pcap");
    let mut cap = Capture::start(&p.west.ns, "wan0", &file)?;
    wait_ping(&p.west_lan, EAST_HOST, Duration::from_secs(10))?;
    show(
        &format!("ping {EAST_HOST} from west's LAN host {WEST_HOST}, through the tunnel"),
        &ping(&p.west_lan, EAST_HOST, 3)?,
    );
    cap.finish();
    let wire = cap.read("")?;
    show(
        "what the WAN link carried (tcpdump on west's wan0): ESP only",
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
