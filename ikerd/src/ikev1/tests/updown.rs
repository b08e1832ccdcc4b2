//! `leftupdown=` / `leftfirewall=`: when the engine asks fwd to run the updown script, with which
//! verb and environment, and in which order with the fwd changes.

use super::harness::*;
use crate::actions::Action;
use ipc::fwd::{UpdownEnv, UpdownVerb};
use ipc::ike::*;
use ipc::policy::{PolicyAction, RemoveMode};
use ipc::sa::Direction;
use std::time::Duration;

fn with_script(mut c: IkeConn, script: &str) -> IkeConn {
    c.local.updown = Some(script.into());
    c
}

fn pair(w: IkeConn, e: IkeConn) -> Pair {
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p.run();
    p
}

/// West and east, each with a script.
fn scripted() -> (IkeConn, IkeConn) {
    let (w, e) = west_east();
    (with_script(w, "/w/updown"), with_script(e, "/e/updown"))
}

fn verbs(n: &Node) -> Vec<UpdownVerb> {
    n.updowns.iter().map(|(_, v, _)| *v).collect()
}

fn west_env() -> UpdownEnv {
    UpdownEnv {
        instance: "west-east".into(),
        me: ip("192.0.2.1"),
        my_id: "@west".into(),
        my_client: net("10.0.1.0/24"),
        my_protocol: 0,
        my_port: 0,
        my_sourceip: None,
        peer: ip("192.0.2.2"),
        peer_id: "@east".into(),
        peer_client: net("10.0.2.0/24"),
        peer_protocol: 0,
        peer_port: 0,
        next_hop: None,
    }
}

#[test]
fn up_once_with_the_environment_then_down_on_terminate_both_sides() {
    let (mut w, e) = scripted();
    w.local.nexthop = Some(ip("192.0.2.254"));
    w.local.sourceip = Some(ip("10.0.1.1"));
    let mut p = pair(w, e);
    assert!(p.a.updowns.is_empty() && p.b.updowns.is_empty());
    p.up("west-east");
    assert_matching_installs(&p, "west-east", "west-east");
    let mut want = west_env();
    want.next_hop = Some(ip("192.0.2.254"));
    want.my_sourceip = Some(ip("10.0.1.1"));
    assert_eq!(
        p.a.updowns,
        vec![("west-east".into(), UpdownVerb::UpClient, want.clone())]
    );
    let (conn, verb, env) = p.b.updowns[0].clone();
    assert_eq!((conn.as_str(), verb), ("west-east", UpdownVerb::UpClient));
    assert_eq!(p.b.updowns.len(), 1);
    assert_eq!(env.me, ip("192.0.2.2"));
    assert_eq!(env.peer, ip("192.0.2.1"));
    assert_eq!(
        (env.my_id.as_str(), env.peer_id.as_str()),
        ("@east", "@west")
    );
    assert_eq!(env.my_client, net("10.0.2.0/24"));
    assert_eq!(env.peer_client, net("10.0.1.0/24"));
    assert_eq!((env.next_hop, env.my_sourceip), (None, None));

    // The up follows the Install that holds both SAs and the outbound protect policy (B: QR2,
    // not QR1's inbound-only Install).
    for n in [&p.a, &p.b] {
        let i = n
            .fwd
            .iter()
            .position(|a| matches!(a, Action::Updown { .. }))
            .unwrap();
        let Some(Action::Install(st)) = n.fwd.get(i - 1) else {
            panic!("{:?}", n.fwd);
        };
        assert_eq!(st.sas.len(), 2);
        assert!(st
            .policies
            .iter()
            .any(|x| x.direction == Direction::Out
                && matches!(x.action, PolicyAction::Protect { .. })));
    }

    // ipsecctl down on west: west's down before its Remove; east's when the delete arrives.
    let now = p.now;
    p.a.eng.terminate("west-east", now).unwrap();
    p.run();
    assert_eq!(verbs(&p.a), [UpdownVerb::UpClient, UpdownVerb::DownClient]);
    assert_eq!(p.a.updowns[1].2, want, "down has the environment of its up");
    let n = p.a.fwd.len();
    assert!(matches!(
        p.a.fwd[n - 2],
        Action::Updown {
            verb: UpdownVerb::DownClient,
            ..
        }
    ));
    assert!(matches!(p.a.fwd[n - 1], Action::Remove { .. }));
    assert_eq!(verbs(&p.b), [UpdownVerb::UpClient, UpdownVerb::DownClient]);
    assert_eq!(p.b.updowns[1].2, env);
    // Nothing more later (no restart: auto=add).
    p.advance(Duration::from_secs(60), Duration::from_secs(5));
    assert_eq!(p.a.updowns.len(), 2);
    assert_eq!(p.b.updowns.len(), 2);
}

#[test]
fn nothing_is_asked_for_a_conn_without_updown_or_firewall() {
    let (w, e) = west_east();
    let mut p = pair(w, e);
    p.up("west-east");
    let now = p.now;
    p.a.eng.terminate("west-east", now).unwrap();
    p.run();
    assert!(p.a.updowns.is_empty() && p.b.updowns.is_empty());
    assert!(p.a.removes.len() == 1, "{:?}", p.a.fwd);
}

#[test]
fn leftfirewall_alone_asks_too() {
    let (mut w, e) = west_east();
    w.local.firewall = true;
    let mut p = pair(w, e);
    p.up("west-east");
    assert_eq!(verbs(&p.a), [UpdownVerb::UpClient]);
    assert!(p.b.updowns.is_empty());
}

#[test]
fn rekeys_report_nothing_expiry_without_rekey_reports_down() {
    let (mut w, mut e) = scripted();
    for c in [&mut w, &mut e] {
        c.sa_lifetime_secs = 60;
        c.rekey_margin_secs = 10;
        c.rekey_fuzz_percent = 0;
        c.ike_lifetime_secs = 90;
    }
    let mut p = pair(w, e);
    p.up("west-east");
    // Several IPsec SA rekeys (and an ISAKMP SA rekey) in 200 s.
    p.advance(Duration::from_secs(200), Duration::from_millis(500));
    assert!(p.a.log_has("rekeying the IPsec SA"), "{}", p.a.log_dump());
    assert!(p.a.log_has("replaced IPsec SA retired"));
    assert_eq!(verbs(&p.a), [UpdownVerb::UpClient], "{}", p.a.log_dump());
    assert_eq!(verbs(&p.b), [UpdownVerb::UpClient]);

    // rekey=no: the SA expires and the pair is down.
    let (mut w, mut e) = scripted();
    for c in [&mut w, &mut e] {
        c.sa_lifetime_secs = 60;
        c.rekey = false;
    }
    let mut p = pair(w, e);
    p.up("west-east");
    p.advance(Duration::from_secs(70), Duration::from_millis(500));
    assert!(p.a.log_has("IPsec SA expired"), "{}", p.a.log_dump());
    assert_eq!(verbs(&p.a), [UpdownVerb::UpClient, UpdownVerb::DownClient]);
    assert_eq!(verbs(&p.b), [UpdownVerb::UpClient, UpdownVerb::DownClient]);
}

#[test]
fn peer_delete_reports_down() {
    let (w, e) = scripted();
    let mut p = pair(w, e);
    p.up("west-east");
    let now = p.now;
    p.b.eng.terminate("west-east", now).unwrap();
    p.run();
    assert!(p.a.log_has("received Delete SA("));
    assert_eq!(verbs(&p.a), [UpdownVerb::UpClient, UpdownVerb::DownClient]);
    assert_eq!(p.a.updowns[1].0, "west-east");
    assert_eq!(p.a.updowns[1].2, west_env());
    // Down before the Remove that takes the SAs out.
    let n = p.a.fwd.len();
    assert!(matches!(
        p.a.fwd[n - 2],
        Action::Updown {
            verb: UpdownVerb::DownClient,
            ..
        }
    ));
    assert_eq!(
        p.a.fwd[n - 1],
        Action::Remove {
            conn: "west-east".into(),
            mode: RemoveMode::Everything
        }
    );
}

fn dpd(action: DpdAction) -> Pair {
    let (mut w, e) = scripted();
    w.dpd = Some(DpdSpec {
        delay_secs: 5,
        timeout_secs: 15,
        action,
    });
    let mut p = pair(w, e);
    p.up("west-east");
    p.drop = Some(Box::new(|_| true));
    p.advance(Duration::from_secs(30), Duration::from_secs(1));
    assert!(p.a.log_has("declaring peer dead"), "{}", p.a.log_dump());
    p
}

#[test]
fn dpd_death_reports_down_for_each_action() {
    for action in [DpdAction::Clear, DpdAction::Hold, DpdAction::Restart] {
        let p = dpd(action);
        assert_eq!(
            verbs(&p.a),
            [UpdownVerb::UpClient, UpdownVerb::DownClient],
            "{action:?}"
        );
    }
    // Restart: up again once the peer answers.
    let mut p = dpd(DpdAction::Restart);
    p.drop = None;
    p.advance(Duration::from_secs(40), Duration::from_secs(1));
    assert_eq!(
        verbs(&p.a),
        [
            UpdownVerb::UpClient,
            UpdownVerb::DownClient,
            UpdownVerb::UpClient
        ],
        "{}",
        p.a.log_dump()
    );
}

#[test]
fn host_verbs_and_host_clients_without_a_local_subnet() {
    let w = with_script(
        conn(
            "h2n",
            end(Some("192.0.2.1"), IkeId::Ip(ip("192.0.2.1")), &[]),
            end(
                Some("192.0.2.2"),
                IkeId::Ip(ip("192.0.2.2")),
                &["10.0.2.0/24"],
            ),
        ),
        "/w/updown",
    );
    let e = with_script(
        conn(
            "h2n",
            end(
                Some("192.0.2.2"),
                IkeId::Ip(ip("192.0.2.2")),
                &["10.0.2.0/24"],
            ),
            end(Some("192.0.2.1"), IkeId::Ip(ip("192.0.2.1")), &[]),
        ),
        "/e/updown",
    );
    let mut p = pair(w, e);
    p.up("h2n");
    assert_eq!(verbs(&p.a), [UpdownVerb::UpHost]);
    let env = &p.a.updowns[0].2;
    assert_eq!(env.my_client, net("192.0.2.1/32"));
    assert_eq!(env.peer_client, net("10.0.2.0/24"));
    assert_eq!(
        (env.my_id.as_str(), env.peer_id.as_str()),
        ("192.0.2.1", "192.0.2.2")
    );
    // East protects a subnet: client verbs, the peer's client is its host.
    assert_eq!(verbs(&p.b), [UpdownVerb::UpClient]);
    assert_eq!(p.b.updowns[0].2.peer_client, net("192.0.2.1/32"));
    let now = p.now;
    p.a.eng.terminate("h2n", now).unwrap();
    p.run();
    assert_eq!(verbs(&p.a), [UpdownVerb::UpHost, UpdownVerb::DownHost]);
    assert_eq!(verbs(&p.b), [UpdownVerb::UpClient, UpdownVerb::DownClient]);
}

#[test]
fn protoport_goes_into_the_environment() {
    let (mut w, mut e) = scripted();
    for c in [&mut w, &mut e] {
        c.local.proto = 17;
        c.local.port = 1701;
        c.remote.proto = 17;
        c.remote.port = 1701;
    }
    let mut p = pair(w, e);
    p.up("west-east");
    let env = &p.a.updowns[0].2;
    assert_eq!(
        (
            env.my_protocol,
            env.my_port,
            env.peer_protocol,
            env.peer_port
        ),
        (17, 1701, 17, 1701)
    );
}

#[test]
fn one_call_per_selector_pair() {
    let (mut w, mut e) = scripted();
    w.local.subnets.push(net("10.0.11.0/24"));
    e.remote.subnets.push(net("10.0.11.0/24"));
    let mut p = pair(w, e);
    p.up("west-east");
    assert_eq!(verbs(&p.a), [UpdownVerb::UpClient, UpdownVerb::UpClient]);
    let mut clients: Vec<_> = p.a.updowns.iter().map(|u| u.2.my_client).collect();
    clients.sort();
    assert_eq!(clients, [net("10.0.1.0/24"), net("10.0.11.0/24")]);
    assert_eq!(verbs(&p.b), [UpdownVerb::UpClient, UpdownVerb::UpClient]);
    let now = p.now;
    p.a.eng.terminate("west-east", now).unwrap();
    p.run();
    assert_eq!(
        verbs(&p.a),
        [
            UpdownVerb::UpClient,
            UpdownVerb::UpClient,
            UpdownVerb::DownClient,
            UpdownVerb::DownClient
        ]
    );
    let mut down: Vec<_> = p.a.updowns[2..].iter().map(|u| u.2.my_client).collect();
    down.sort();
    assert_eq!(down, clients);
    assert_eq!(p.b.updowns.len(), 4);
}

#[test]
fn road_warrior_instance_runs_the_templates_script() {
    let w = conn(
        "home",
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
    let e = with_script(
        conn(
            "rw",
            end(
                Some("192.0.2.2"),
                IkeId::Fqdn("east".into()),
                &["10.0.2.0/24"],
            ),
            end(None, IkeId::Any, &[]),
        ),
        "/e/updown",
    );
    let mut p = Pair::new("192.0.2.9", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p.up("home");
    assert_eq!(p.b.updowns.len(), 1, "{}", p.b.log_dump());
    let (conn, verb, env) = &p.b.updowns[0];
    assert_eq!((conn.as_str(), *verb), ("rw", UpdownVerb::UpClient));
    assert_eq!(env.instance, "rw[1]");
    assert_eq!(env.peer, ip("192.0.2.9"));
    assert_eq!(
        env.peer_id, "alice@example.org",
        "the authenticated ID, not %any"
    );
    assert_eq!(env.peer_client, net("192.0.2.9/32"));
    // The instance goes with its SAs: down first.
    let now = p.now;
    p.a.eng.terminate("home", now).unwrap();
    p.run();
    assert_eq!(verbs(&p.b), [UpdownVerb::UpClient, UpdownVerb::DownClient]);
    assert_eq!(p.b.updowns[1].0, "rw");
    assert_eq!(p.b.updowns[1].2.instance, "rw[1]");
}

#[test]
fn removing_or_changing_the_conn_reports_down() {
    let (w, e) = scripted();
    let mut p = pair(w.clone(), e);
    p.up("west-east");
    let now = p.now;
    // Reloaded unchanged: nothing.
    p.a.load(vec![w.clone()], now);
    p.run();
    assert_eq!(verbs(&p.a), [UpdownVerb::UpClient]);
    // Changed: torn down (and not started again: auto=add).
    let mut w2 = w.clone();
    w2.keying_tries = 3;
    p.a.load(vec![w2.clone()], now);
    p.run();
    assert_eq!(verbs(&p.a), [UpdownVerb::UpClient, UpdownVerb::DownClient]);
    assert_eq!(verbs(&p.b), [UpdownVerb::UpClient, UpdownVerb::DownClient]);
    // Up again, then removed.
    p.up("west-east");
    assert_eq!(
        p.a.updowns.len(),
        3,
        "{}\n---\n{}",
        p.a.log_dump(),
        p.b.log_dump()
    );
    p.a.load(vec![], now);
    p.run();
    assert_eq!(
        verbs(&p.a),
        [
            UpdownVerb::UpClient,
            UpdownVerb::DownClient,
            UpdownVerb::UpClient,
            UpdownVerb::DownClient
        ]
    );
    assert_eq!(p.b.updowns.len(), 4);
}

#[test]
fn both_ends_starting_at_once_report_one_up() {
    let (mut w, mut e) = scripted();
    w.auto = IkeAuto::Start;
    e.auto = IkeAuto::Start;
    let mut p = pair(w, e);
    p.advance(Duration::from_secs(30), Duration::from_millis(500));
    assert_eq!(verbs(&p.a), [UpdownVerb::UpClient], "{}", p.a.log_dump());
    assert_eq!(verbs(&p.b), [UpdownVerb::UpClient], "{}", p.b.log_dump());
}
