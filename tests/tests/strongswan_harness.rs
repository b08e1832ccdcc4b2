//! The strongSwan interop harness itself works, strongSwan against strongSwan (no ferroswan daemon is
//! started: the gateways' namespaces run charon instead):
//! - IKEv1 Main Mode PSK, AES-128/SHA-1/MODP-2048, 10.1.0.0/24 ↔ 10.2.0.0/24 in the plain gateway
//!   pair: `initiate` succeeds, LAN-to-LAN ping crosses, the WAN carries only ESP in UDP 4500
//!   (kernel-libipsec always encapsulates) besides IKE, and no ICMP;
//! - the same through the NAT pair, where east sees west only as the NAT router's address;
//! - IKEv2 with RSA raw public keys converted by `ike_conf` (swanctl's `private/` and `pubkey/`);
//! - the ferroswan half of the same description: confd accepts the ipsec.conf and keyd reads the
//!   RSA block back to the very `0s…` key strongSwan was given as PEM;
//! - two charons never share anything: pid files, vici sockets and logs stay in their own
//!   directories, nothing is left in /run, and a dropped instance's process is gone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ferroswan_tests::ike_conf::*;
use ferroswan_tests::strongswan::*;
use ferroswan_tests::topology::*;
use ferroswan_tests::*;
use std::time::{Duration, Instant};

const PSK: &str = "harness test secret, never for a real gateway";

fn started(ns: &Netns, tag: &str) -> StrongSwan {
    check_installed().unwrap();
    let sw = StrongSwan::start(ns, tag).unwrap_or_else(|e| panic!("charon in {}: {e}", ns.name));
    eprintln!("{tag}: charon {} ready in {:?}", sw.pid(), sw.startup);
    sw
}

/// Initiate from west, check both ends' SAs, ping LAN to LAN; returns the setup time.
fn initiate_and_ping(
    west: &StrongSwan,
    east: &StrongSwan,
    west_lan: &Netns,
    ike: &str,
    child: &str,
) -> Duration {
    let t0 = Instant::now();
    let out = west
        .initiate(child, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("initiate: {e}\neast log:\n{}", east.log()));
    let setup = t0.elapsed();
    assert!(out.contains("initiate completed successfully"), "{out}");
    for (who, sw) in [("west", west), ("east", east)] {
        let sas = sw
            .wait_established(ike, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert!(sas.contains(&format!("{child}: #")), "{who}: {sas}");
    }
    wait_ping(west_lan, EAST_HOST, Duration::from_secs(10)).unwrap_or_else(|e| {
        panic!(
            "{e}\nwest SAs:\n{}\neast SAs:\n{}\nwest log:\n{}",
            west.list_sas(),
            east.list_sas(),
            west.log()
        )
    });
    ping(west_lan, EAST_HOST, 5).expect("5 pings LAN to LAN");
    setup
}

/// ESP-in-UDP packets (non-ESP marker: the first four bytes of UDP payload are an SPI, not zero).
const ESP_IN_UDP: &str = "udp port 4500 and udp[8:4] != 0";

fn assert_only_esp_in_udp(cap: &Capture, what: &str) -> usize {
    let clear = cap.cleartext().unwrap();
    assert!(
        clear.is_empty(),
        "{what}: cleartext on the WAN: {:?}",
        &clear[..clear.len().min(5)]
    );
    let icmp = cap.read("icmp").unwrap();
    assert!(icmp.is_empty(), "{what}: ICMP on the WAN: {icmp:?}");
    let raw_esp = cap.read("ip proto 50 or ip proto 51").unwrap();
    assert!(
        raw_esp.is_empty(),
        "{what}: raw ESP/AH with kernel-libipsec: {raw_esp:?}"
    );
    let esp = cap.read(ESP_IN_UDP).unwrap();
    // wait_ping's first ping and 5 more, each way.
    assert!(
        esp.len() >= 12,
        "{what}: {} ESP-in-UDP packets: {esp:?}",
        esp.len()
    );
    esp.len()
}

#[test]
fn ikev1_psk_lan_to_lan_in_the_plain_pair() {
    let pair = GatewayPair::new("swh-plain").expect("topology");
    let west = started(&pair.west.ns, "w");
    let east = started(&pair.east.ns, "e");
    let mut t = IkeTunnel::lan_to_lan("net", 1, Auth::Psk(PSK.into()));
    t.ike = "aes128-sha1-modp2048".into();
    t.esp = "aes128-sha1".into();
    east.load(&t.swanctl_conf(false)).expect("east loads");
    let loaded = west.load(&t.swanctl_conf(true)).expect("west loads");
    assert!(loaded.contains("loaded connection 'net'"), "{loaded}");
    assert!(loaded.contains("loaded ike secret 'ike-net'"), "{loaded}");

    let mut cap = Capture::start(&pair.west.ns, "wan0", &west.dir.0.join("wan.pcap")).unwrap();
    let setup = initiate_and_ping(&west, &east, &pair.west_lan, "net", "net");
    cap.finish();
    let n = assert_only_esp_in_udp(&cap, "plain");
    // Main Mode began on 500 and floated to 4500 (libipsec forces encapsulation).
    assert!(!cap.read("udp port 500").unwrap().is_empty());
    let wlog = west.log();
    assert!(
        wlog.contains("initiating Main Mode IKE_SA net[1]"),
        "{wlog}"
    );
    assert!(
        wlog.contains("IKE_SA net[1] state change: CONNECTING => ESTABLISHED"),
        "{wlog}"
    );
    assert!(
        wlog.contains("ESP:AES_CBC_128/HMAC_SHA1_96/MODP_2048"),
        "PFS group in QM: {wlog}"
    );
    // libipsec's TUN carries the routes; no XFRM state anywhere.
    let routes = run_ok(
        pair.west
            .ns
            .cmd("ip")
            .args(["route", "show", "table", "220"]),
    )
    .unwrap();
    assert!(routes.contains("10.2.0.0/24 dev ipsec0"), "{routes}");
    let xfrm = run_ok(pair.west.ns.cmd("ip").args(["xfrm", "state"])).unwrap();
    assert!(
        xfrm.trim().is_empty(),
        "XFRM state with kernel-libipsec: {xfrm}"
    );
    eprintln!(
        "plain: IKEv1 Main+Quick Mode set up in {setup:?}; {n} ESP-in-UDP packets on the WAN"
    );

    // terminate takes both ends' SAs down.
    west.terminate("net", Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while east.list_sas().contains("ESTABLISHED") {
        assert!(
            Instant::now() < deadline,
            "east kept its SA: {}",
            east.list_sas()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ikev1_psk_lan_to_lan_through_nat() {
    let pair = NatGatewayPair::new("swh-nat").expect("NAT topology");
    // East has no route back to west's real address.
    let r = run(pair.east.ns.cmd("ip").args(["route", "get", WEST_WAN])).unwrap();
    assert!(!r.status.success(), "east can route to {WEST_WAN}");
    let west = started(&pair.west.ns, "w");
    let east = started(&pair.east.ns, "e");
    // One description; east knows west only by its ID (its address is whatever the NAT makes it).
    let mut t = IkeTunnel::lan_to_lan("net", 1, Auth::Psk(PSK.into()));
    t.right = NAT_EAST_WAN.into();
    t.left_id = Some("@west".into());
    t.right_id = Some("@east".into());
    let east_view = IkeTunnel {
        left: "%any".into(),
        ..t.clone()
    };
    east.load(&east_view.swanctl_conf(false))
        .expect("east loads");
    west.load(&t.swanctl_conf(true)).expect("west loads");

    let mut wcap = Capture::start(&pair.west.ns, "wan0", &west.dir.0.join("wan.pcap")).unwrap();
    let mut ecap = Capture::start(&pair.east.ns, "wan0", &east.dir.0.join("wan.pcap")).unwrap();
    let setup = initiate_and_ping(&west, &east, &pair.west_lan, "net", "net");
    wcap.finish();
    ecap.finish();
    assert_only_esp_in_udp(&wcap, "NAT, west side");
    let n = assert_only_esp_in_udp(&ecap, "NAT, east side");
    // East saw only the NAT router's address, never west's.
    let from_west = ecap.read(&format!("host {WEST_WAN}")).unwrap();
    assert!(
        from_west.is_empty(),
        "west's address behind the NAT reached east: {from_west:?}"
    );
    let via_nat = ecap
        .read(&format!("src host {NAT_OUTSIDE} and {ESP_IN_UDP}"))
        .unwrap();
    assert!(via_nat.len() >= 6, "{via_nat:?}");
    assert!(
        west.log().contains("local host is behind NAT"),
        "{}",
        west.log()
    );
    let sas = east.list_sas();
    assert!(
        sas.contains(&format!("remote 'west' @ {NAT_OUTSIDE}[4500]")),
        "{sas}"
    );
    eprintln!("NAT: IKEv1 set up in {setup:?}; {n} ESP-in-UDP packets on east's WAN");
}

#[test]
fn ikev2_rsa_raw_keys_converted_for_swanctl() {
    let pair = GatewayPair::new("swh-rsa").expect("topology");
    let west = started(&pair.west.ns, "w");
    let east = started(&pair.east.ns, "e");
    let keys = RsaPair::generate(2048).unwrap();
    let mut t = IkeTunnel::lan_to_lan("rsa", 2, Auth::rsa(keys));
    t.left_id = Some("@west".into());
    t.right_id = Some("@east".into());
    t.ike = "aes256-sha2_256-modp2048".into();
    t.esp = "aes128gcm16".into();
    let out = east.load(&t.swanctl_conf(false)).expect("east loads");
    assert!(
        out.contains("loaded private key from"),
        "private key loaded: {out}"
    );
    west.load(&t.swanctl_conf(true)).expect("west loads");
    let setup = initiate_and_ping(&west, &east, &pair.west_lan, "rsa", "rsa");
    let wlog = west.log();
    assert!(wlog.contains("authentication of 'east' with RSA"), "{wlog}");
    assert!(
        wlog.contains("authentication of 'west' (myself) with RSA"),
        "{wlog}"
    );
    eprintln!("IKEv2 RSA set up in {setup:?}");
}

/// The ferroswan half of one description: confd parses the conf, keyd reads the RSA block and
/// hands back the same public key that strongSwan gets as PEM.
#[test]
fn ferroswan_side_of_the_description_is_accepted() {
    let keys = RsaPair::generate(2048).unwrap();
    let mut t = IkeTunnel::lan_to_lan("rsa", 1, Auth::rsa(keys.clone()));
    t.left_id = Some("@west".into());
    t.right_id = Some("@east".into());
    t.ike = "3des-md5-modp1024".into();
    t.esp = "3des-md5".into();
    t.lifetimes = Some(Lifetimes {
        ike_secs: 3600,
        child_secs: 1200,
        margin_secs: 60,
    });
    t.dpd = Some(Dpd {
        delay_secs: 5,
        timeout_secs: 20,
        action: DpdAction::Restart,
    });
    let inst = Instance::new("swh-fsw").unwrap();
    let (conf, secrets) = t.ferroswan_conf(true);
    inst.write_conf(&conf);
    inst.write_secrets(&secrets, 0o600);
    let (ok, out, err) = inst.ctl_out(&["checkconfig"]);
    assert!(
        ok,
        "confd refuses the generated ipsec.conf:\n{conf}\n{out}{err}"
    );
    assert!(out.contains("rsa"), "{out}");
    // The PSK variant too.
    let psk = IkeTunnel {
        auth: Auth::Psk(PSK.into()),
        ..t.clone()
    };
    let (pconf, _) = psk.ferroswan_conf(false);
    inst.write_conf(&pconf);
    let (ok, out, err) = inst.ctl_out(&["checkconfig"]);
    assert!(ok, "confd refuses the PSK ipsec.conf:\n{pconf}\n{out}{err}");
    inst.write_conf(&conf);

    inst.start().expect("ferroswan starts");
    // `start` returns when the supervisor is up; keyd's socket may come a moment later.
    inst.wait_status(Duration::from_secs(30), "ready", |s| {
        all_ready(s) && all_links_up(s)
    })
    .expect("ferroswan ready");
    let (ok, out, err) = inst.ctl_out(&["showhostkey", "--left", "--id", "@west"]);
    assert!(
        ok,
        "showhostkey: {out}{err}\nkeyd log:\n{}",
        inst.log("keyd")
    );
    assert!(
        out.contains(&format!("leftrsasigkey={}", keys.left.rfc3110())),
        "keyd's key differs from the one given:\n{out}"
    );
    // And that 0s key is the PEM strongSwan's side gets for @west.
    let sw = t.swanctl_conf(false);
    let east_has = sw
        .files
        .iter()
        .find(|(n, _)| n == "pubkey/rsa-left.pem")
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .unwrap();
    let line = out.lines().find(|l| l.contains("rsasigkey=")).unwrap();
    let zero_s = line.split_once('=').unwrap().1.trim();
    assert_eq!(spki_pem_from_rfc3110(zero_s).unwrap(), east_has);
}

/// Two charons side by side keep to their own directories; nothing lands in /run, and Drop stops
/// the process it started.
#[test]
fn instances_are_private_and_cleaned_up() {
    // Other tests (and other suites on the machine) may create files in /run meanwhile: only
    // strongSwan's own names are looked for.
    let swan_files = || -> Vec<std::ffi::OsString> {
        ["/run", "/var/run"]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).unwrap())
            .map(|e| e.unwrap().file_name())
            .filter(|n| {
                let n = n.to_string_lossy();
                n.starts_with("charon") || n.starts_with("strongswan") || n.starts_with("starter")
            })
            .collect()
    };
    let before = swan_files();
    let a_ns = Netns::new("swh-a").unwrap();
    let b_ns = Netns::new("swh-b").unwrap();
    let a = started(&a_ns, "a");
    let b = started(&b_ns, "b");
    assert_ne!(a.pid(), b.pid());
    for sw in [&a, &b] {
        let pidfile = std::fs::read_to_string(sw.dir.0.join("run/charon.pid")).unwrap();
        assert_eq!(pidfile.trim(), sw.pid().to_string());
        assert!(sw.vici_path().exists());
        assert!(sw.log().contains("loaded plugins: charon"), "{}", sw.log());
        assert!(
            sw.log().contains("kernel-libipsec kernel-netlink"),
            "{}",
            sw.log()
        );
        assert!(sw.list_sas().trim().is_empty(), "{}", sw.list_sas());
    }
    assert!(swan_files().is_empty(), "in /run: {:?}", swan_files());
    // Each charon made its TUN device in its own namespace.
    for ns in [&a_ns, &b_ns] {
        let links = run_ok(ns.cmd("ip").args(["-br", "link"])).unwrap();
        assert!(links.contains("ipsec0"), "{links}");
    }
    let a_pid = nix::unistd::Pid::from_raw(a.pid());
    let a_dir = a.dir.0.clone();
    drop(a);
    assert!(
        nix::sys::signal::kill(a_pid, None).is_err(),
        "charon {a_pid} still exists after drop"
    );
    if std::env::var_os("FERROSWAN_KEEP_TEST_DIRS").is_none() {
        assert!(!a_dir.exists(), "{} left behind", a_dir.display());
    }
    // b is untouched by a's end.
    assert!(b.list_sas().trim().is_empty());
    drop(b);
    let after = swan_files();
    assert_eq!(after, before, "strongSwan files in /run");
}

/// FreeS/WAN's classic suite (3DES, MD5, MODP-1024: the openssl plugin provides 3DES to both IKE
/// and libipsec's ESP).
#[test]
fn ikev1_3des_md5_modp1024() {
    let pair = GatewayPair::new("swh-3des").expect("topology");
    let west = started(&pair.west.ns, "w");
    let east = started(&pair.east.ns, "e");
    let mut t = IkeTunnel::lan_to_lan("old", 1, Auth::Psk(PSK.into()));
    t.ike = "3des-md5-modp1024".into();
    t.esp = "3des-md5".into();
    east.load(&t.swanctl_conf(false)).expect("east loads");
    west.load(&t.swanctl_conf(true)).expect("west loads");
    let setup = initiate_and_ping(&west, &east, &pair.west_lan, "old", "old");
    let wlog = west.log();
    assert!(
        wlog.contains("IKE:3DES_CBC/HMAC_MD5_96/PRF_HMAC_MD5/MODP_1024"),
        "{wlog}"
    );
    assert!(
        wlog.contains("ESP:3DES_CBC/HMAC_MD5_96/MODP_1024"),
        "{wlog}"
    );
    eprintln!("3DES/MD5/MODP-1024: set up in {setup:?}");
}

/// A wrong PSK: initiate fails within its timeout (the harness reports failure, it does not hang),
/// and no SA is left.
#[test]
fn mismatched_psk_fails_in_bounded_time() {
    let pair = GatewayPair::new("swh-bad").expect("topology");
    let west = started(&pair.west.ns, "w");
    let east = started(&pair.east.ns, "e");
    let t = IkeTunnel::lan_to_lan("net", 1, Auth::Psk(PSK.into()));
    let wrong = IkeTunnel {
        auth: Auth::Psk("another secret".into()),
        ..t.clone()
    };
    east.load(&wrong.swanctl_conf(false)).expect("east loads");
    west.load(&t.swanctl_conf(true)).expect("west loads");
    let t0 = Instant::now();
    let r = west.initiate("net", Duration::from_secs(4));
    let took = t0.elapsed();
    assert!(r.is_err(), "initiate with a wrong PSK succeeded: {r:?}");
    assert!(took < Duration::from_secs(10), "initiate took {took:?}");
    assert!(
        !east.list_sas().contains("INSTALLED"),
        "{}",
        east.list_sas()
    );
    assert!(
        !west.list_sas().contains("INSTALLED"),
        "{}",
        west.list_sas()
    );
    eprintln!("wrong PSK: initiate failed after {took:?}");
}
