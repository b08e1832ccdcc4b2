//! What goes wrong, and says why: keys, signatures, proposals, IDs, keyd, lost packets.

use super::harness::*;
use ipc::ike::*;
use ipc::sa::{EncrAlg, IntegAlg};
use std::time::Duration;

fn pair(w: IkeConn, e: IkeConn) -> Pair {
    let mut p = Pair::new("192.0.2.1", "192.0.2.2");
    let now = p.now;
    p.a.load(vec![w], now);
    p.b.load(vec![e], now);
    p
}

#[test]
fn wrong_psk_on_either_side_installs_nothing() {
    for wrong_side in [Side::A, Side::B] {
        let (mut w, e) = west_east();
        w.keying_tries = 1;
        let mut p = pair(w, e);
        p.node(wrong_side).psk = b"not the secret".to_vec();
        p.up("west-east");
        assert!(
            p.b.log_has("\"west-east\" #1: PSK authentication failed: MI3 from 192.0.2.1:500 does not decrypt to a valid message"),
            "{}",
            p.b.log_dump()
        );
        assert!(p.b.log_has("(IDs @east/@west)"));
        assert!(
            p.a.log_has("peer 192.0.2.2:500 sent AUTHENTICATION_FAILED"),
            "{}",
            p.a.log_dump()
        );
        let st = p.b.eng.status(p.now);
        assert!(st.conns[0]
            .last_failure
            .as_deref()
            .unwrap()
            .contains("PSK authentication failed"));
        // The initiator gives up after its keying try; nothing was ever installed.
        p.advance(Duration::from_secs(70), Duration::from_secs(1));
        assert!(p.a.installs.is_empty() && p.b.installs.is_empty());
        assert!(
            p.a.log_has("\"west-east\": giving up after 1 keying attempt"),
            "{}",
            p.a.log_dump()
        );
        assert!(p.a.eng.status(p.now).ike_sas.is_empty());
        assert!(
            p.b.eng.status(p.now).ike_sas.is_empty(),
            "the responder's half-open state is discarded"
        );
    }
}

/// Keys agree but the hash does not (here: the responder's view of the initiator's SA payload is
/// altered in flight, which only HASH_I can notice).
#[test]
fn hash_mismatch_is_an_authentication_failure() {
    let (w, e) = west_east();
    let mut p = pair(w, e);
    // Rewrite the life duration of MI1's transform (a TV attribute) on the wire.
    p.drop = None;
    let now = p.now;
    p.a.eng.initiate("west-east", now).unwrap();
    let mi1 = match p.a.eng.poll_action().unwrap() {
        crate::actions::Action::Send {
            local,
            remote,
            mut bytes,
        } => {
            let needle = [0x80, 0x0c, 0x0e, 0x10]; // LIFE_DURATION 3600
            let at = bytes.windows(4).position(|w| w == needle).unwrap();
            bytes[at + 3] = 0x0f;
            Packet {
                to: Side::B,
                local: remote,
                remote: local,
                bytes,
            }
        }
        other => panic!("{other:?}"),
    };
    p.deliver(&mi1);
    p.run();
    assert!(
        p.b.log_has("PSK authentication failed: HASH_I mismatch (IDs @east/@west)"),
        "{}",
        p.b.log_dump()
    );
    assert!(p.b.installs.is_empty());
}

#[test]
fn unknown_rsa_key_is_refused() {
    let (mut w, mut e) = west_east();
    w.auth = AuthMethod::RsaSig;
    e.auth = AuthMethod::RsaSig;
    w.remote.rsasigkeys = vec![pubkey_string(rsa_key(1))];
    e.remote.rsasigkeys = vec![pubkey_string(rsa_key(2))];
    let mut p = pair(w, e);
    p.a.rsa = Some(rsa_key(0));
    p.b.rsa = Some(rsa_key(1));
    p.up("west-east");
    assert!(
        p.b.log_has("\"west-east\" #1: signature from @west did not verify with any of its 1 rightrsasigkey"),
        "{}",
        p.b.log_dump()
    );
    assert!(p.a.log_has("sent AUTHENTICATION_FAILED"));
    assert!(p.a.installs.is_empty() && p.b.installs.is_empty());

    // The other way: the responder signs with a key the initiator does not know.
    let (mut w, mut e) = west_east();
    w.auth = AuthMethod::RsaSig;
    e.auth = AuthMethod::RsaSig;
    w.remote.rsasigkeys = vec![pubkey_string(rsa_key(2))];
    e.remote.rsasigkeys = vec![pubkey_string(rsa_key(0))];
    let mut p = pair(w, e);
    p.a.rsa = Some(rsa_key(0));
    p.b.rsa = Some(rsa_key(1));
    p.up("west-east");
    assert!(
        p.a.log_has("signature from @east did not verify with any of its 1 rightrsasigkey"),
        "{}",
        p.a.log_dump()
    );
    assert!(p.a.installs.is_empty());
}

#[test]
fn ike_proposal_mismatch() {
    let (mut w, mut e) = west_east();
    w.ike = vec![ike_p(
        IkeEncr::TripleDesCbc,
        PrfAlg::HmacMd5,
        DhGroup::Modp1024,
    )];
    e.ike = vec![
        ike_p(
            IkeEncr::AesCbc { key_bits: 256 },
            PrfAlg::HmacSha2_256,
            DhGroup::Modp2048,
        ),
        aes128_sha1_2048(),
    ];
    let mut p = pair(w, e);
    p.up("west-east");
    let want = "\"west-east\" #1: no acceptable proposal: peer offered [3DES_CBC/MD5/MODP1024]; conn allows [AES_CBC_256/SHA2_256/MODP2048, AES_CBC_128/SHA1/MODP2048]";
    assert!(p.b.log_has(want), "{}", p.b.log_dump());
    assert_eq!(
        p.b.eng.status(p.now).conns[0].last_failure.as_deref(),
        Some(want)
    );
    assert!(
        p.a.log_has("peer 192.0.2.2:500 sent NO_PROPOSAL_CHOSEN"),
        "{}",
        p.a.log_dump()
    );
    assert!(p.b.eng.status(p.now).ike_sas.is_empty());
}

#[test]
fn esp_proposal_mismatch() {
    let (mut w, mut e) = west_east();
    w.esp = vec![esp_p(EncrAlg::TripleDesCbc, IntegAlg::HmacMd5_96)];
    e.esp = vec![esp_p(
        EncrAlg::AesCbc { key_bits: 256 },
        IntegAlg::HmacSha256_128,
    )];
    w.keying_tries = 1;
    let mut p = pair(w, e);
    p.up("west-east");
    assert!(
        p.b.log_has("\"west-east\" #2: no acceptable proposal: peer offered [ESP:3DES_CBC/HMAC_MD5/MODP2048]; conn allows [ESP:AES_CBC_256/HMAC_SHA2_256/MODP2048]"),
        "{}",
        p.b.log_dump()
    );
    assert!(
        p.a.log_has("peer 192.0.2.2:500 sent notification NO_PROPOSAL_CHOSEN"),
        "{}",
        p.a.log_dump()
    );
    assert!(p.a.installs.is_empty() && p.b.installs.is_empty());
    // The ISAKMP SA stays up; the Quick Mode times out and the conn gives up.
    p.advance(Duration::from_secs(40), Duration::from_secs(1));
    assert!(
        p.a.log_has("giving up after 1 keying attempt"),
        "{}",
        p.a.log_dump()
    );
    assert!(p.a.eng.status(p.now).ike_sas[0].established);
}

#[test]
fn peer_id_mismatch() {
    let (w, mut e) = west_east();
    e.remote.id = IkeId::Fqdn("somebody-else".into());
    let mut p = pair(w, e);
    p.up("west-east");
    assert!(
        p.b.log_has("no connection matches: peer 192.0.2.1:500 says it is @west; \"west-east\" expects @somebody-else"),
        "{}",
        p.b.log_dump()
    );
    assert!(p.a.log_has("sent INVALID_ID_INFORMATION"));
    assert!(p.b.eng.status(p.now).ike_sas.is_empty());
}

#[test]
fn no_connection_for_the_peer() {
    let (w, mut e) = west_east();
    e.remote.host = Some(ip("192.0.2.77"));
    let mut p = pair(w, e);
    p.up("west-east");
    assert!(
        p.b.log_has("no connection matches: Main Mode from 192.0.2.1:500 to 192.0.2.2:500: no conn has left=192.0.2.2 and right=192.0.2.1 or right=%any"),
        "{}",
        p.b.log_dump()
    );
}

#[test]
fn keyd_refusal_fails_the_exchange() {
    let (mut w, e) = west_east();
    w.keying_tries = 1;
    let mut p = pair(w, e);
    p.b.keyd_denies = Some("no PSK for @east/@west".into());
    p.up("west-east");
    assert!(
        p.b.log_has("\"west-east\" #1: keyd refused the pre-shared key (SKEYID) for IDs @east/@west: no PSK for @east/@west in STATE_MAIN_R1"),
        "{}",
        p.b.log_dump()
    );
    assert!(p.b.eng.status(p.now).ike_sas.is_empty());
    // keyd that never answers: the initiator fails after the keyd timeout.
    let (mut w, e) = west_east();
    w.keying_tries = 1;
    let mut p = pair(w, e);
    p.a.keyd_silent = true;
    p.up("west-east");
    p.advance(Duration::from_secs(12), Duration::from_secs(1));
    assert!(
        p.a.log_has("no answer from keyd within 10 s"),
        "{}",
        p.a.log_dump()
    );
    assert!(p.a.log_has("giving up after 1 keying attempt"));
}

#[test]
fn retransmission_schedule_and_keying_tries() {
    let (mut w, e) = west_east();
    w.keying_tries = 2;
    let mut p = pair(w, e);
    p.drop = Some(Box::new(|pk: &Packet| pk.to == Side::B));
    let t0 = p.now;
    p.up("west-east");
    let mut sends = Vec::new();
    let mut last_seen = 0;
    for _ in 0..800 {
        p.advance(Duration::from_millis(100), Duration::from_millis(100));
        if p.dropped > last_seen {
            sends.push((p.now - t0).as_millis());
            last_seen = p.dropped;
        }
    }
    // First try: sent at 0 (seen at the first 100 ms step), again at 0.5, 1.5, 3.5, 7.5 and
    // 15.5 s; at 31.5 s it gives up and the second try starts with the same schedule.
    assert_eq!(
        sends,
        vec![100, 500, 1500, 3500, 7500, 15500, 31500, 32000, 33000, 35000, 39000, 47000],
    );
    assert!(
        p.a.log_has("max number of retransmissions (5) reached STATE_MAIN_I1"),
        "{}",
        p.a.log_dump()
    );
    assert!(p
        .a
        .log_has("\"west-east\": starting keying attempt 2 of at most 2"));
    assert!(p
        .a
        .log_has("\"west-east\": giving up after 2 keying attempts"));
    assert_eq!(p.a.eng.next_deadline(), None, "nothing left to do");
}

#[test]
fn a_lost_reply_is_answered_from_the_stored_message() {
    for lost in 1..6 {
        let (w, e) = west_east();
        let mut p = pair(w, e);
        let mut n = 0;
        p.drop = Some(Box::new(move |_pk: &Packet| {
            n += 1;
            n == lost
        }));
        p.up("west-east");
        p.advance(Duration::from_secs(5), Duration::from_millis(100));
        assert_matching_installs(&p, "west-east", "west-east");
        // Each responder state was made once (never re-processed).
        let log = p.b.eng.recent_log();
        for st in [
            "STATE_MAIN_R1",
            "STATE_MAIN_R2",
            "STATE_MAIN_R3",
            "STATE_QUICK_R1",
            "STATE_QUICK_R2",
        ] {
            assert_eq!(
                log.iter().filter(|l| l.contains(st)).count(),
                1,
                "{st} after losing #{lost}\n{}",
                p.b.log_dump()
            );
        }
        assert_eq!(p.b.eng.status(p.now).ike_sas.len(), 1);
    }
}
