//! Main Mode + Quick Mode between two engines: suites, auth methods, PFS, NAT-T, selectors.

use super::harness::*;
use ipc::ike::*;
use ipc::policy::PolicyAction;
use ipc::sa::{Direction, EncrAlg, IntegAlg, IpsecProto, SaMode};

fn pair_with(w: IkeConn, e: IkeConn) -> Pair {
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p
}

#[test]
fn psk_aes128_sha1_modp2048_with_pfs() {
    let (w, e) = west_east();
    let mut p = pair_with(w, e);
    p.up("west-east");
    let (a, b) = assert_matching_installs(&p, "west-east", "west-east");
    for line in [
        "\"west-east\" #1: initiating Main Mode",
        "\"west-east\" #1: STATE_MAIN_I1: initiate",
        "\"west-east\" #1: STATE_MAIN_I2: sent MI2, expecting MR2",
        "\"west-east\" #1: STATE_MAIN_I3: sent MI3, expecting MR3",
        "\"west-east\" #1: STATE_MAIN_I4: ISAKMP SA established {auth=PRESHARED_KEY cipher=aes_128 prf=sha group=MODP2048}",
        "\"west-east\" #2: initiating Quick Mode PSK+ENCRYPT+TUNNEL+PFS+UP {using isakmp#1}",
        "\"west-east\" #2: STATE_QUICK_I1: initiate",
        "\"west-east\" #2: STATE_QUICK_I2: sent QI2, IPsec SA established tunnel mode {ESP=>0x",
        "xfrm=AES_CBC_128-HMAC_SHA1 NATOA=none NATD=none DPD=passive}",
    ] {
        assert!(p.a.log_has(line), "missing {line:?} in\n{}", p.a.log_dump());
    }
    for line in [
        "STATE_MAIN_R1: sent MR1, expecting MI2",
        "STATE_MAIN_R2: sent MR2, expecting MI3",
        "STATE_MAIN_R3: sent MR3, ISAKMP SA established {auth=PRESHARED_KEY cipher=aes_128 prf=sha group=MODP2048}",
        "STATE_QUICK_R1: sent QR1, inbound IPsec SA installed, expecting QI2",
        "STATE_QUICK_R2: IPsec SA established tunnel mode",
    ] {
        assert!(p.b.log_has(line), "missing {line:?} in\n{}", p.b.log_dump());
    }
    let out = newest_sa(&a, Direction::Out);
    assert_eq!(out.encr, EncrAlg::AesCbc { key_bits: 128 });
    assert_eq!(out.enc_key.len(), 16);
    assert_eq!(out.auth_key.len(), 20);
    assert_eq!(out.src, ip("192.0.2.1"));
    assert_eq!(out.dst, ip("192.0.2.2"));
    assert_eq!(out.encap, None);
    assert_eq!(out.lifetime.hard_secs, 1800);
    let po = a
        .policies
        .iter()
        .find(|x| x.direction == Direction::Out)
        .unwrap();
    assert_eq!(po.selector.src, net("10.0.1.0/24"));
    assert_eq!(po.selector.dst, net("10.0.2.0/24"));
    // B installed the inbound SA first (QR1), then both (QI2).
    assert_eq!(p.b.installs.len(), 2);
    assert_eq!(p.b.installs[0].sas.len(), 1);
    assert_eq!(p.b.installs[0].sas[0].direction, Direction::In);
    assert_eq!(b.sas.len(), 2);
    // status
    let st = p.a.eng.status(p.now);
    assert_eq!(st.ike_sas.len(), 1);
    assert!(st.ike_sas[0].established);
    assert_eq!(st.ike_sas[0].algs, "AES_CBC_128/HMAC_SHA1/MODP2048");
    assert_eq!(st.child_sas[0].algs, "ESP_AES_CBC_128/HMAC_SHA1/MODP2048");
    assert_eq!(st.conns[0].state, "erouted; eroute owner #2");
    // fwd_states re-pushes exactly the last state.
    assert_eq!(p.a.eng.fwd_states(), vec![a]);
}

#[test]
fn psk_3des_md5_modp1024_without_pfs() {
    let (mut w, mut e) = west_east();
    for c in [&mut w, &mut e] {
        c.ike = vec![ike_p(
            IkeEncr::TripleDesCbc,
            PrfAlg::HmacMd5,
            DhGroup::Modp1024,
        )];
        c.esp = vec![esp_p(EncrAlg::TripleDesCbc, IntegAlg::HmacMd5_96)];
        c.pfs = false;
    }
    let mut p = pair_with(w, e);
    p.up("west-east");
    let (a, _) = assert_matching_installs(&p, "west-east", "west-east");
    assert!(p
        .a
        .log_has("{auth=PRESHARED_KEY cipher=3des prf=md5 group=MODP1024}"));
    assert!(p
        .a
        .log_has("initiating Quick Mode PSK+ENCRYPT+TUNNEL+UP {using isakmp#1}"));
    let out = newest_sa(&a, Direction::Out);
    assert_eq!(out.enc_key.len(), 24);
    assert_eq!(out.auth_key.len(), 16);
    assert_eq!(
        p.a.eng.status(p.now).child_sas[0].algs,
        "ESP_3DES_CBC/HMAC_MD5"
    );
}

#[test]
fn psk_aes256_sha2_256_modp2048() {
    let (mut w, mut e) = west_east();
    for c in [&mut w, &mut e] {
        c.ike = vec![ike_p(
            IkeEncr::AesCbc { key_bits: 256 },
            PrfAlg::HmacSha2_256,
            DhGroup::Modp2048,
        )];
        c.esp = vec![esp_p(
            EncrAlg::AesCbc { key_bits: 256 },
            IntegAlg::HmacSha256_128,
        )];
    }
    let mut p = pair_with(w, e);
    p.up("west-east");
    let (a, _) = assert_matching_installs(&p, "west-east", "west-east");
    assert!(p.b.log_has("cipher=aes_256 prf=sha2_256 group=MODP2048"));
    let out = newest_sa(&a, Direction::Out);
    assert_eq!((out.enc_key.len(), out.auth_key.len()), (32, 32));
}

#[test]
fn responder_picks_first_acceptable_of_several() {
    let (mut w, mut e) = west_east();
    w.ike = vec![
        ike_p(
            IkeEncr::AesCbc { key_bits: 256 },
            PrfAlg::HmacSha2_512,
            DhGroup::Modp4096,
        ),
        ike_p(IkeEncr::TripleDesCbc, PrfAlg::HmacSha1, DhGroup::Modp1536),
        aes128_sha1_2048(),
    ];
    e.ike = vec![
        aes128_sha1_2048(),
        ike_p(IkeEncr::TripleDesCbc, PrfAlg::HmacSha1, DhGroup::Modp1536),
    ];
    w.esp = vec![
        esp_p(EncrAlg::AesCbc { key_bits: 192 }, IntegAlg::HmacSha384_192),
        esp_p(EncrAlg::AesCbc { key_bits: 128 }, IntegAlg::HmacSha1_96),
    ];
    let mut p = pair_with(w, e);
    p.up("west-east");
    assert!(
        p.b.log_has("cipher=3des prf=sha group=MODP1536"),
        "{}",
        p.b.log_dump()
    );
    let (a, _) = assert_matching_installs(&p, "west-east", "west-east");
    assert_eq!(newest_sa(&a, Direction::Out).integ, IntegAlg::HmacSha1_96);
}

#[test]
fn rsa_signatures() {
    let (mut w, mut e) = west_east();
    w.auth = AuthMethod::RsaSig;
    e.auth = AuthMethod::RsaSig;
    w.local.rsasigkeys = vec![pubkey_string(rsa_key(0))];
    w.remote.rsasigkeys = vec![pubkey_string(rsa_key(1))];
    e.local.rsasigkeys = vec![pubkey_string(rsa_key(1))];
    e.remote.rsasigkeys = vec![pubkey_string(rsa_key(2)), pubkey_string(rsa_key(0))];
    let mut p = pair_with(w, e);
    p.a.rsa = Some(rsa_key(0));
    p.b.rsa = Some(rsa_key(1));
    p.up("west-east");
    assert_matching_installs(&p, "west-east", "west-east");
    assert!(p.a.log_has("{auth=RSA_SIG cipher=aes_128"));
    assert!(p
        .a
        .log_has("initiating Quick Mode RSASIG+ENCRYPT+TUNNEL+PFS+UP"));
    // keyd signed with the key the conn names and never got a PSK request.
    assert!(p
        .a
        .keyd_requests
        .iter()
        .all(|r| matches!(r, ipc::keyd::KeydRequest::V1RsaSign(s)
        if s.initiator && s.local_pubkey.as_deref() == Some(pubkey_string(rsa_key(0)).as_str()))));
    assert!(p
        .b
        .keyd_requests
        .iter()
        .all(|r| matches!(r, ipc::keyd::KeydRequest::V1RsaSign(s) if !s.initiator)));
}

#[test]
fn nat_traversal_switches_to_4500_and_encapsulates() {
    // A (10.0.0.1) is behind a NAT that shows it as 203.0.113.1; B answers any peer.
    let w = conn(
        "rw",
        end(
            Some("10.0.0.1"),
            IkeId::Fqdn("west".into()),
            &["10.0.1.0/24"],
        ),
        end(
            Some("192.0.2.2"),
            IkeId::Fqdn("east".into()),
            &["10.0.2.0/24"],
        ),
    );
    let e = conn(
        "rw",
        end(
            Some("192.0.2.2"),
            IkeId::Fqdn("east".into()),
            &["10.0.2.0/24"],
        ),
        end(None, IkeId::Fqdn("west".into()), &["10.0.1.0/24"]),
    );
    let mut p = Pair::new("10.0.0.1", "192.0.2.2");
    p.nat = Some(Nat {
        public: ip("203.0.113.1"),
    });
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p.up("rw");
    let (a, b) = assert_matching_installs(&p, "rw", "rw[1]");
    // From MI3 on, everything runs between the NAT-T ports.
    let ike_msgs: Vec<_> = p.wire.iter().collect();
    assert!(ike_msgs[..4]
        .iter()
        .all(|m| m.local.port == 500 || m.local.port == 40500));
    assert!(
        ike_msgs[4..]
            .iter()
            .all(|m| m.local.port == 4500 || m.local.port == 44500),
        "{:?}",
        ike_msgs
            .iter()
            .map(|m| (m.local, m.remote))
            .collect::<Vec<_>>()
    );
    let oa = newest_sa(&a, Direction::Out);
    let ob = newest_sa(&b, Direction::Out);
    assert_eq!(
        oa.encap,
        Some(ipc::sa::UdpEncap {
            src_port: 4500,
            dst_port: 4500
        })
    );
    assert_eq!(
        ob.encap,
        Some(ipc::sa::UdpEncap {
            src_port: 4500,
            dst_port: 44500
        })
    );
    assert_eq!(ob.dst, ip("203.0.113.1"));
    assert!(p.a.log_has("NAT detected: we are behind a NAT"));
    assert!(p.a.log_has("{ESP/NAT=>0x"));
    assert!(p.a.log_has("NATD=192.0.2.2:4500"));
    assert!(p.b.log_has("NATD=203.0.113.1:44500"));
    assert!(p.b.eng.status(p.now).ike_sas[0].nat_t);
}

#[test]
fn host_to_host_transport_mode() {
    let mut w = conn(
        "h2h",
        end(Some("192.0.2.1"), IkeId::Ip(ip("192.0.2.1")), &[]),
        end(Some("192.0.2.2"), IkeId::Ip(ip("192.0.2.2")), &[]),
    );
    let mut e = conn(
        "h2h",
        end(Some("192.0.2.2"), IkeId::Ip(ip("192.0.2.2")), &[]),
        end(Some("192.0.2.1"), IkeId::Ip(ip("192.0.2.1")), &[]),
    );
    w.mode = SaMode::Transport;
    e.mode = SaMode::Transport;
    let mut p = pair_with(w, e);
    p.up("h2h");
    let (a, _) = assert_matching_installs(&p, "h2h", "h2h");
    let po = a
        .policies
        .iter()
        .find(|x| x.direction == Direction::Out)
        .unwrap();
    assert_eq!(po.selector.src, net("192.0.2.1/32"));
    assert_eq!(po.selector.dst, net("192.0.2.2/32"));
    assert_eq!(newest_sa(&a, Direction::Out).mode, SaMode::Transport);
    assert!(p.a.log_has("IPsec SA established transport mode"));
}

#[test]
fn road_warrior_gets_an_instance() {
    let w = conn(
        "rw",
        end(
            Some("192.0.2.9"),
            IkeId::UserFqdn("alice@example.org".into()),
            &[],
        ),
        end(
            Some("192.0.2.2"),
            IkeId::Fqdn("east".into()),
            &["10.0.2.0/24"],
        ),
    );
    let e = conn(
        "rw",
        end(
            Some("192.0.2.2"),
            IkeId::Fqdn("east".into()),
            &["10.0.2.0/24"],
        ),
        end(None, IkeId::Any, &[]),
    );
    let mut p = Pair::new("192.0.2.9", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    assert!(p.a.eng.initiate("nope", now).is_err());
    assert!(
        p.b.eng.initiate("rw", now).is_err(),
        "a %any conn cannot initiate"
    );
    p.up("rw");
    let (_, b) = assert_matching_installs(&p, "rw", "rw[1]");
    let pi = b
        .policies
        .iter()
        .find(|x| x.direction == Direction::In)
        .unwrap();
    assert_eq!(pi.selector.src, net("192.0.2.9/32"));
    let st = p.b.eng.status(p.now);
    assert!(st
        .conns
        .iter()
        .any(|c| c.name == "rw[1]" && c.state.starts_with("erouted")));
    assert_eq!(st.ike_sas[0].remote_id, "alice@example.org");
    // The instance goes away with its SAs.
    let now = p.now;
    p.a.eng.terminate("rw", now).unwrap();
    p.run();
    assert!(
        p.b.removes
            .contains(&("rw[1]".into(), ipc::policy::RemoveMode::Everything)),
        "{:?}\n{}",
        p.b.removes,
        p.b.log_dump()
    );
    assert!(!p
        .b
        .eng
        .status(p.now)
        .conns
        .iter()
        .any(|c| c.name == "rw[1]"));
}

#[test]
fn ipv6_outer_and_inner() {
    let w = conn(
        "v6",
        end(
            Some("2001:db8::1"),
            IkeId::Ip(ip("2001:db8::1")),
            &["2001:db8:1::/48"],
        ),
        end(
            Some("2001:db8::2"),
            IkeId::Ip(ip("2001:db8::2")),
            &["2001:db8:2::/48"],
        ),
    );
    let e = conn(
        "v6",
        end(
            Some("2001:db8::2"),
            IkeId::Ip(ip("2001:db8::2")),
            &["2001:db8:2::/48"],
        ),
        end(
            Some("2001:db8::1"),
            IkeId::Ip(ip("2001:db8::1")),
            &["2001:db8:1::/48"],
        ),
    );
    let mut p = Pair::new("2001:db8::1", "2001:db8::2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p.up("v6");
    let (a, _) = assert_matching_installs(&p, "v6", "v6");
    let po = a
        .policies
        .iter()
        .find(|x| x.direction == Direction::Out)
        .unwrap();
    assert_eq!(po.selector.dst, net("2001:db8:2::/48"));
    assert_eq!(newest_sa(&a, Direction::Out).dst, ip("2001:db8::2"));
}

#[test]
fn responder_lifetime_shortens_the_initiators_sa() {
    let (mut w, mut e) = west_east();
    w.sa_lifetime_secs = 7200;
    e.sa_lifetime_secs = 600;
    let mut p = pair_with(w, e);
    p.up("west-east");
    let (a, b) = assert_matching_installs(&p, "west-east", "west-east");
    assert_eq!(newest_sa(&a, Direction::Out).lifetime.hard_secs, 600);
    assert_eq!(newest_sa(&b, Direction::Out).lifetime.hard_secs, 600);
    assert!(p.b.log_has("RESPONDER-LIFETIME sent"));
}

#[test]
fn ah_and_aes_gcm() {
    let (mut w, mut e) = west_east();
    for c in [&mut w, &mut e] {
        c.proto = IpsecProto::Ah;
        c.esp = vec![esp_p(EncrAlg::Null, IntegAlg::HmacSha256_128)];
    }
    let mut p = pair_with(w, e);
    p.up("west-east");
    let (a, _) = assert_matching_installs(&p, "west-east", "west-east");
    let o = newest_sa(&a, Direction::Out);
    assert_eq!(
        (o.proto, o.encr, o.enc_key.len(), o.auth_key.len()),
        (IpsecProto::Ah, EncrAlg::Null, 0, 32)
    );
    assert!(p.a.log_has("PSK+AUTHENTICATE+TUNNEL+PFS+UP"));

    let (mut w, mut e) = west_east();
    for c in [&mut w, &mut e] {
        c.esp = vec![esp_p(
            EncrAlg::AesGcm {
                key_bits: 128,
                icv_bytes: 16,
            },
            IntegAlg::None,
        )];
    }
    let mut p = pair_with(w, e);
    p.up("west-east");
    let (a, _) = assert_matching_installs(&p, "west-east", "west-east");
    let o = newest_sa(&a, Direction::Out);
    assert_eq!((o.enc_key.len(), o.auth_key.len()), (20, 0));
}

#[test]
fn conns_share_an_isakmp_sa() {
    let (w, e) = west_east();
    let mut w2 = w.clone();
    let mut e2 = e.clone();
    w2.name = "west-east-2".into();
    e2.name = "west-east-2".into();
    w2.local.subnets = vec![net("10.0.11.0/24")];
    e2.remote.subnets = vec![net("10.0.11.0/24")];
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w, w2], now);
    p.b.load(vec![e, e2], now);
    p.up("west-east");
    p.up("west-east-2");
    assert!(
        p.a.log_has(
            "\"west-east-2\" #3: initiating Quick Mode PSK+ENCRYPT+TUNNEL+PFS+UP {using isakmp#1}"
        ),
        "{}",
        p.a.log_dump()
    );
    assert_matching_installs(&p, "west-east-2", "west-east-2");
    assert_eq!(p.a.eng.status(p.now).ike_sas.len(), 1);
    let b2 = p.b.last_install("west-east-2").unwrap();
    assert!(b2.policies.iter().any(|x| x.direction == Direction::In
        && x.selector.src == net("10.0.11.0/24")
        && matches!(x.action, PolicyAction::Protect { .. })));
}

#[test]
fn auto_start_and_auto_route() {
    let (mut w, e) = west_east();
    w.auto = IkeAuto::Start;
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.b.load(vec![e.clone()], now);
    let sum = p.a.load(vec![w.clone()], now);
    assert_eq!(sum.added, vec!["west-east".to_string()]);
    p.run();
    assert_matching_installs(&p, "west-east", "west-east");

    // auto=route: a trap first, negotiation on acquire.
    let (mut w, e) = west_east();
    w.auto = IkeAuto::Route;
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.b.load(vec![e], now);
    p.a.load(vec![w], now);
    p.run();
    let trap = p.a.last_install("west-east").unwrap().clone();
    assert!(trap.sas.is_empty());
    assert_eq!(trap.policies.len(), 1);
    assert_eq!(trap.policies[0].action, PolicyAction::Trap);
    assert!(trap.policies[0].route);
    assert_eq!(p.a.eng.status(p.now).conns[0].state, "routed (trap)");
    let flow = ipc::policy::FlowInfo {
        src: ip("10.0.1.5"),
        dst: ip("10.0.2.5"),
        proto: 1,
        src_port: 0,
        dst_port: 0,
    };
    p.a.eng.acquire("west-east", flow, now);
    p.run();
    let (a, _) = assert_matching_installs(&p, "west-east", "west-east");
    assert!(
        !a.policies.iter().any(|x| x.action == PolicyAction::Trap),
        "the negotiated selector replaces the trap"
    );
}

#[test]
fn several_subnets_get_one_sa_pair_each() {
    let (mut w, mut e) = west_east();
    w.local.subnets.push(net("10.0.11.0/24"));
    e.remote.subnets.push(net("10.0.11.0/24"));
    w.auto = IkeAuto::Route;
    let mut p = pair_with(w, e);
    p.run();
    let trap = p.a.last_install("west-east").unwrap().clone();
    assert_eq!(trap.policies.len(), 2);
    // The first packet for the second pair negotiates it (and the first pair with it).
    let flow = ipc::policy::FlowInfo {
        src: ip("10.0.11.7"),
        dst: ip("10.0.2.7"),
        proto: 6,
        src_port: 1000,
        dst_port: 80,
    };
    let now = p.now;
    p.a.eng.acquire("west-east", flow, now);
    p.run();
    let a = p.a.last_install("west-east").unwrap().clone();
    let b = p.b.last_install("west-east").unwrap().clone();
    for st in [&a, &b] {
        assert_eq!(st.sas.len(), 4, "{st:?}");
        assert_eq!(
            st.policies
                .iter()
                .filter(|x| matches!(x.action, PolicyAction::Protect { .. }))
                .count(),
            4
        );
    }
    let out_srcs: Vec<_> = a
        .policies
        .iter()
        .filter(|x| x.direction == Direction::Out)
        .map(|x| x.selector.src)
        .collect();
    assert!(out_srcs.contains(&net("10.0.1.0/24")) && out_srcs.contains(&net("10.0.11.0/24")));
    // Each outbound SA of A is an inbound SA of B with the same keys.
    for o in a.sas.iter().filter(|s| s.direction == Direction::Out) {
        let i = b
            .sas
            .iter()
            .find(|s| s.direction == Direction::In && s.spi == o.spi)
            .unwrap();
        assert_eq!(o.enc_key, i.enc_key);
    }
    // A second acquire for a covered flow does nothing.
    let n = p.a.installs.len();
    p.a.eng.acquire("west-east", flow, now);
    p.run();
    assert_eq!(p.a.installs.len(), n);
}

#[test]
fn rsa_responder_switches_to_the_conn_for_the_peers_id() {
    let mut bob = conn(
        "home",
        end(Some("192.0.2.9"), IkeId::Fqdn("bob".into()), &[]),
        end(
            Some("192.0.2.2"),
            IkeId::Fqdn("east".into()),
            &["10.0.2.0/24"],
        ),
    );
    bob.auth = AuthMethod::RsaSig;
    bob.remote.rsasigkeys = vec![pubkey_string(rsa_key(2))];
    let template = |name: &str, id: &str, key: usize| {
        let mut c = conn(
            name,
            end(
                Some("192.0.2.2"),
                IkeId::Fqdn("east".into()),
                &["10.0.2.0/24"],
            ),
            end(None, IkeId::Fqdn(id.into()), &[]),
        );
        c.auth = AuthMethod::RsaSig;
        c.remote.rsasigkeys = vec![pubkey_string(rsa_key(key))];
        c
    };
    let mut p = Pair::new("192.0.2.9", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![bob], now);
    p.b.load(
        vec![
            template("rw-alice", "alice", 0),
            template("rw-bob", "bob", 1),
        ],
        now,
    );
    p.a.rsa = Some(rsa_key(1));
    p.b.rsa = Some(rsa_key(2));
    p.up("home");
    assert!(
        p.b.log_has("switched from \"rw-alice\" to \"rw-bob\" for peer ID @bob"),
        "{}",
        p.b.log_dump()
    );
    assert_matching_installs(&p, "home", "rw-bob[1]");
}
