//! Time and change: rekeying without a gap, ISAKMP SA rekeying, DPD with each action, deletes,
//! conn reloads, fwd's expiries.

use super::harness::*;
use crate::actions::Action;
use ipc::ike::*;
use ipc::policy::{ConnState, PolicyAction, RemoveMode};
use ipc::sa::Direction;
use std::time::Duration;

fn pair(w: IkeConn, e: IkeConn) -> Pair {
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p
}

/// From the first Install with an outbound Protect policy on, every Install has one, and its SA
/// is in the same state.
fn always_protected(installs: &[ConnState]) {
    let first = installs
        .iter()
        .position(|st| {
            st.policies.iter().any(|p| {
                p.direction == Direction::Out && matches!(p.action, PolicyAction::Protect { .. })
            })
        })
        .expect("an outbound protect policy");
    for (i, st) in installs.iter().enumerate().skip(first) {
        let out = st.policies.iter().find(|p| {
            p.direction == Direction::Out && matches!(p.action, PolicyAction::Protect { .. })
        });
        let Some(out) = out else {
            panic!("install {i} has no outbound protect policy: {st:?}");
        };
        let PolicyAction::Protect { sas } = &out.action else {
            unreachable!()
        };
        assert!(
            sas.iter().all(|id| st.sas.iter().any(|s| s.id() == *id)),
            "install {i}: {st:?}"
        );
    }
}

#[test]
fn ipsec_sa_rekey_installs_new_before_removing_old() {
    let (mut w, mut e) = west_east();
    for c in [&mut w, &mut e] {
        c.sa_lifetime_secs = 60;
        c.rekey_margin_secs = 10;
        c.rekey_fuzz_percent = 0;
    }
    let mut p = pair(w, e);
    p.up("west-east");
    let first = newest_sa(p.a.last_install("west-east").unwrap(), Direction::Out).spi;
    p.advance(Duration::from_secs(52), Duration::from_millis(250));
    assert!(
        p.a.log_has("\"west-east\" #2: rekeying the IPsec SA"),
        "{}",
        p.a.log_dump()
    );
    assert!(p.a.log_has("\"west-east\" #3: initiating Quick Mode PSK+ENCRYPT+TUNNEL+PFS+UP to replace #2 {using isakmp#1}"));
    // New SAs in, outbound switched, old inbound still there.
    let st = p.a.last_install("west-east").unwrap().clone();
    assert_eq!(st.sas.len(), 4, "{st:?}");
    assert_ne!(newest_sa(&st, Direction::Out).spi, first);
    assert_matching_installs(&p, "west-east", "west-east");
    // A few seconds later the old pair goes, on both sides.
    p.advance(Duration::from_secs(6), Duration::from_millis(250));
    assert!(p.a.log_has("#2: replaced IPsec SA retired"));
    assert!(p.b.log_has("received Delete SA("), "{}", p.b.log_dump());
    assert_eq!(p.a.last_install("west-east").unwrap().sas.len(), 2);
    assert_eq!(p.b.last_install("west-east").unwrap().sas.len(), 2);
    assert_matching_installs(&p, "west-east", "west-east");
    // Several more cycles: never a moment without an outbound SA, never a Remove.
    p.advance(Duration::from_secs(200), Duration::from_millis(500));
    assert!(p.a.log_has("#6: STATE_QUICK_I2"), "{}", p.a.log_dump());
    always_protected(&p.a.installs);
    always_protected(&p.b.installs);
    assert!(p.a.removes.is_empty() && p.b.removes.is_empty());
    assert!(p.a.last_install("west-east").unwrap().sas.len() <= 4);
    assert_matching_installs(&p, "west-east", "west-east");
    assert!(
        !p.b.log_has("IPsec SA expired"),
        "the responder never saw an SA expire: {}",
        p.b.log_dump()
    );
}

#[test]
fn isakmp_sa_rekey_keeps_ipsec_sas() {
    let (mut w, mut e) = west_east();
    for c in [&mut w, &mut e] {
        c.ike_lifetime_secs = 60;
        c.rekey_margin_secs = 10;
        c.rekey_fuzz_percent = 0;
    }
    let mut p = pair(w, e);
    p.up("west-east");
    let installs = p.a.installs.len();
    p.advance(Duration::from_secs(55), Duration::from_millis(500));
    assert!(
        p.a.log_has("\"west-east\" #3: initiating Main Mode to replace #1"),
        "{}",
        p.a.log_dump()
    );
    assert!(p
        .a
        .log_has("\"west-east\" #3: deleting ISAKMP SA #1: replaced by #3"));
    // The responder drops its old one too (uniqueids), whichever comes first.
    assert!(
        p.b.log_has("received Delete SA payload: deleting ISAKMP State #1")
            || p.b.log_has("#3: deleting ISAKMP SA #1: replaced by #3"),
        "{}",
        p.b.log_dump()
    );
    assert_eq!(p.a.installs.len(), installs, "IPsec SAs untouched");
    let st = p.a.eng.status(p.now);
    assert_eq!(st.ike_sas.len(), 1);
    assert_eq!(st.ike_sas[0].serial, 3);
    assert_eq!(p.b.eng.status(p.now).ike_sas.len(), 1);
    assert_eq!(st.child_sas.len(), 1);
}

fn dpd_pair(action: DpdAction, auto: IkeAuto) -> Pair {
    let (mut w, e) = west_east();
    w.dpd = Some(DpdSpec {
        delay_secs: 5,
        timeout_secs: 15,
        action,
    });
    w.auto = auto;
    let mut p = pair(w, e);
    p.run();
    if auto != IkeAuto::Start {
        p.up("west-east");
    }
    assert_matching_installs(&p, "west-east", "west-east");
    p
}

#[test]
fn dpd_keeps_a_live_peer() {
    let mut p = dpd_pair(DpdAction::Clear, IkeAuto::Add);
    assert!(p.a.log_has("DPD=active"));
    p.advance(Duration::from_secs(60), Duration::from_secs(1));
    assert!(!p.a.log_has("declaring peer dead"));
    let dpd_msgs = p.wire.iter().filter(|pk| pk.to == Side::B).count();
    assert!(dpd_msgs >= 5 + 11, "R-U-THERE every 5 s: {dpd_msgs}");
}

#[test]
fn dpd_clear() {
    let mut p = dpd_pair(DpdAction::Clear, IkeAuto::Add);
    p.drop = Some(Box::new(|_| true));
    p.advance(Duration::from_secs(30), Duration::from_secs(1));
    assert!(
        p.a.log_has("\"west-east\" #1: DPD: No response from peer - declaring peer dead"),
        "{}",
        p.a.log_dump()
    );
    assert!(p.a.log_has("DPD: clearing the connection"));
    assert_eq!(
        p.a.fwd.last(),
        Some(&Action::Remove {
            conn: "west-east".into(),
            mode: RemoveMode::Everything
        })
    );
    let st = p.a.eng.status(p.now);
    assert!(st.ike_sas.is_empty() && st.child_sas.is_empty());
    assert_eq!(st.conns[0].state, "unrouted");
    assert!(st.conns[0]
        .last_failure
        .as_deref()
        .unwrap()
        .contains("declaring peer dead"));
}

#[test]
fn dpd_clear_on_a_routed_conn_goes_back_to_trap() {
    let mut p = dpd_pair(DpdAction::Clear, IkeAuto::Route);
    p.drop = Some(Box::new(|_| true));
    p.advance(Duration::from_secs(30), Duration::from_secs(1));
    let last = p.a.last_install("west-east").unwrap();
    assert!(last.sas.is_empty());
    assert_eq!(last.policies.len(), 1);
    assert_eq!(last.policies[0].action, PolicyAction::Trap);
    assert!(matches!(p.a.fwd.last(), Some(Action::Install(_))));
}

#[test]
fn dpd_hold() {
    let mut p = dpd_pair(DpdAction::Hold, IkeAuto::Add);
    p.drop = Some(Box::new(|_| true));
    p.advance(Duration::from_secs(30), Duration::from_secs(1));
    assert!(p.a.log_has("DPD: putting the connection into %trap"));
    let last = p.a.last_install("west-east").unwrap();
    assert!(last.sas.is_empty());
    assert!(last
        .policies
        .iter()
        .all(|x| x.action == PolicyAction::Trap && x.route));
    assert_eq!(p.a.eng.status(p.now).conns[0].state, "routed (trap)");
}

#[test]
fn dpd_restart_brings_the_tunnel_back() {
    let mut p = dpd_pair(DpdAction::Restart, IkeAuto::Start);
    p.drop = Some(Box::new(|_| true));
    p.advance(Duration::from_secs(25), Duration::from_secs(1));
    assert!(
        p.a.log_has("DPD: restarting the connection"),
        "{}",
        p.a.log_dump()
    );
    assert!(p.a.log_has("\"west-east\" #3: initiating Main Mode"));
    // The peer comes back.
    p.drop = None;
    p.advance(Duration::from_secs(40), Duration::from_secs(1));
    assert_matching_installs(&p, "west-east", "west-east");
    let st = p.a.eng.status(p.now);
    assert!(
        st.child_sas.iter().any(|c| c.established),
        "{}",
        p.a.log_dump()
    );
}

#[test]
fn peer_delete_removes_the_sas() {
    // auto=add: everything goes.
    let (w, e) = west_east();
    let mut p = pair(w, e);
    p.up("west-east");
    let now = p.now;
    assert!(p.b.eng.terminate("west-east", now).is_ok());
    p.run();
    assert!(p.a.log_has("received Delete SA("), "{}", p.a.log_dump());
    assert!(p
        .a
        .log_has("received Delete SA payload: deleting ISAKMP State #1"));
    assert_eq!(
        p.a.fwd.last(),
        Some(&Action::Remove {
            conn: "west-east".into(),
            mode: RemoveMode::Everything
        })
    );
    assert_eq!(
        p.b.fwd.last(),
        Some(&Action::Remove {
            conn: "west-east".into(),
            mode: RemoveMode::KeepRoute
        })
    );
    let st = p.a.eng.status(p.now);
    assert!(st.ike_sas.is_empty() && st.child_sas.is_empty());
    // Not re-initiated.
    p.advance(Duration::from_secs(60), Duration::from_secs(5));
    assert!(p.a.eng.status(p.now).ike_sas.is_empty());

    // auto=route: back to the trap.
    let (mut w, e) = west_east();
    w.auto = IkeAuto::Route;
    let mut p = pair(w, e);
    p.run();
    p.up("west-east");
    let now = p.now;
    p.b.eng.terminate("west-east", now).unwrap();
    p.run();
    let last = p.a.last_install("west-east").unwrap();
    assert!(last.sas.is_empty() && last.policies[0].action == PolicyAction::Trap);
}

#[test]
fn reload_replaces_and_removes_conns() {
    let (w, e) = west_east();
    let mut p = pair(w.clone(), e.clone());
    p.up("west-east");
    let now = p.now;
    // Unchanged: nothing happens.
    let s = p.a.load(vec![w.clone()], now);
    assert!(s.added.is_empty() && s.replaced.is_empty() && s.removed.is_empty());
    assert_eq!(p.a.eng.status(now).child_sas.len(), 1);
    // Changed: torn down (the peer is told) and added again.
    let mut w2 = w.clone();
    w2.pfs = false;
    let s = p.a.load(vec![w2], now);
    assert_eq!(s.replaced, vec!["west-east".to_string()]);
    p.run();
    assert!(p.b.log_has("received Delete SA("));
    assert!(p.a.eng.status(now).child_sas.is_empty());
    // Removed: Remove(Everything).
    let mut bad = w.clone();
    bad.name = "bad".into();
    bad.esp.clear();
    let s = p.a.load(vec![bad], now);
    assert_eq!(s.removed, vec!["west-east".to_string()]);
    assert_eq!(s.refused, vec!["bad: esp= is empty".to_string()]);
    assert!(p.a.eng.status(now).conns.is_empty());
}

#[test]
fn fwd_expiries() {
    let (w, e) = west_east();
    let mut p = pair(w, e);
    p.up("west-east");
    let st = p.a.last_install("west-east").unwrap().clone();
    let out = newest_sa(&st, Direction::Out);
    let now = p.now;
    // Soft: rekey now.
    p.a.eng.expire("west-east", out.id(), false, now);
    p.run();
    assert!(p.a.log_has("to replace #2"), "{}", p.a.log_dump());
    assert_eq!(p.a.last_install("west-east").unwrap().sas.len(), 4);
    // Hard, on the new outbound SA: deleted, the peer told.
    let new_out = newest_sa(p.a.last_install("west-east").unwrap(), Direction::Out);
    p.a.eng.expire("west-east", new_out.id(), true, now);
    p.run();
    assert!(p.a.log_has("reached its hard lifetime in fwd"));
    assert!(
        p.b.log_has(&format!("received Delete SA({:#010x})", new_out.spi))
            || p.b.log_has("received Delete SA(")
    );
    let last = p.a.last_install("west-east").unwrap();
    assert!(last.sas.iter().all(|s| s.spi != new_out.spi));
}

#[test]
fn uniqueids_replaces_a_road_warriors_old_instance() {
    let w = conn(
        "rw",
        end(Some("192.0.2.9"), IkeId::Fqdn("alice".into()), &[]),
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
    p.a.load(vec![w.clone()], now);
    p.b.load(vec![e], now);
    p.up("rw");
    assert!(p.b.last_install("rw[1]").is_some());
    // Alice comes back from another address, with fresh state (her old engine is gone).
    let mut a2 = Node::new("192.0.2.10", 9);
    let mut w2 = w;
    w2.local.host = Some(ip("192.0.2.10"));
    a2.load(vec![w2], now);
    p.a = a2;
    p.up("rw");
    assert!(
        p.b.log_has("uniqueids: \"rw[1]\" has the same peer ID @alice: deleting it"),
        "{}",
        p.b.log_dump()
    );
    assert!(p
        .b
        .removes
        .contains(&("rw[1]".into(), RemoveMode::Everything)));
    assert_matching_installs(&p, "rw", "rw[2]");
}

#[test]
fn both_ends_starting_at_once_agree_on_one_sa_pair() {
    let (mut w, mut e) = west_east();
    w.auto = IkeAuto::Start;
    e.auto = IkeAuto::Start;
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p.run();
    assert_matching_installs(&p, "west-east", "west-east");
    assert!(
        p.a.log_has("both ends negotiated at once"),
        "{}",
        p.a.log_dump()
    );
    // The losers go; one pair is left on each side, the same one.
    p.advance(Duration::from_secs(10), Duration::from_millis(500));
    let (a, b) = assert_matching_installs(&p, "west-east", "west-east");
    assert_eq!(a.sas.len(), 2, "{a:?}");
    assert_eq!(b.sas.len(), 2, "{b:?}");
    always_protected(&p.a.installs);
}
