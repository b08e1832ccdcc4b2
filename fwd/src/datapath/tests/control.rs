//! The control plane: validation (every refusal names what), all-or-nothing installs, limits,
//! flush by origin, listings without keys.
use super::*;
use ipc::fwd::FlushWhat;

fn installed(setup: &Setup) -> (Engine, Instant) {
    let now = Instant::now();
    let e = engine(setup);
    e.install_conn(Origin::Ikerd, &conn_state(setup, true), now)
        .unwrap();
    (e, now)
}

fn refused(setup: &Setup, f: impl FnOnce(&mut ConnState)) -> String {
    let (e, now) = installed(setup);
    let before = e.look(now);
    let mut st = conn_state(setup, true);
    f(&mut st);
    let err = e
        .install_conn(Origin::Ikerd, &st, now)
        .expect_err("must be refused");
    assert_eq!(
        e.look(now),
        before,
        "a refused install changes nothing ({err})"
    );
    err
}

#[test]
fn install_is_all_or_nothing() {
    let setup = Setup::default();
    // a second policy with a bad prefix: the first (valid) one must not be applied either
    let err = refused(&setup, |st| {
        for s in &mut st.sas {
            s.spi += 0x10;
        }
        for p in &mut st.policies {
            if let PolicyAction::Protect { sas } = &mut p.action {
                for id in sas {
                    id.spi += 0x10;
                }
            }
        }
        st.policies[1].selector.dst.prefix = 33;
    });
    assert!(
        err.contains("policy 2 of conn \"a-b\"") && err.contains("/33"),
        "{err}"
    );
    // a bad SA
    let err = refused(&setup, |st| {
        st.sas[1].auth_key = SecretBytes::new(vec![1; 3])
    });
    assert!(
        err.contains("SA esp.2000@192.0.2.1") && err.contains("20-byte key"),
        "{err}"
    );
}

#[test]
fn install_replaces_the_conns_previous_state() {
    let setup = Setup::default();
    let (e, now) = installed(&setup);
    let mut st = conn_state(&setup, true);
    for s in &mut st.sas {
        s.spi += 0x10;
    }
    for p in &mut st.policies {
        if let PolicyAction::Protect { sas } = &mut p.action {
            for id in sas {
                id.spi += 0x10;
            }
        }
    }
    st.policies.push(policy(
        Direction::Out,
        net("10.1.0.0/16"),
        net("10.3.0.0/16"),
        PolicyAction::Trap,
        true,
    ));
    assert_eq!(e.install_conn(Origin::Ikerd, &st, now).unwrap(), (2, 3));
    let look = e.look(now);
    let spis: Vec<u32> = look.sas.iter().map(|s| s.id.spi).collect();
    assert_eq!(spis, vec![SPI_ESP_AB + 0x10, SPI_ESP_BA + 0x10]);
    assert_eq!(look.policies.len(), 3);
    assert!(look.policies.iter().all(|p| p.conn == CONN));
    // reinstalling the very same state works too (its own SAs and selectors are no conflict)
    assert_eq!(e.install_conn(Origin::Ikerd, &st, now).unwrap(), (2, 3));
}

#[test]
fn conflicts_with_other_conns() {
    let setup = Setup::default();
    let (e, now) = installed(&setup);
    let mut other = conn_state(&setup, true);
    other.conn = "other".into();
    for s in &mut other.sas {
        s.conn = "other".into();
    }
    for p in &mut other.policies {
        p.conn = "other".into();
    }
    let err = e.install_conn(Origin::Ikerd, &other, now).unwrap_err();
    assert!(err.contains("installed already, by conn \"a-b\""), "{err}");
    for s in &mut other.sas {
        s.spi += 0x100;
    }
    // its policies still name a-b's SAs, which is allowed; their selectors are a-b's: not
    let err = e.install_conn(Origin::Ikerd, &other, now).unwrap_err();
    assert!(
        err.contains("conn \"a-b\" has a policy with the same selector"),
        "{err}"
    );
    for p in &mut other.policies {
        if let PolicyAction::Protect { sas } = &mut p.action {
            for id in sas {
                id.spi += 0x100;
            }
        }
    }
    let err = e.install_conn(Origin::Ikerd, &other, now).unwrap_err();
    assert!(
        err.contains("conn \"a-b\" has a policy with the same selector"),
        "{err}"
    );
    other.policies[0].priority = 5; // same selector, other priority: still the same selector
    assert!(e.install_conn(Origin::Ikerd, &other, now).is_err());
    other.policies[0].selector.src = net("10.1.1.0/24");
    other.policies[1].selector.dst = net("10.1.1.0/24");
    assert_eq!(e.install_conn(Origin::Ikerd, &other, now).unwrap(), (2, 2));
    // a policy may name an SA of another conn that exists
    let mut third = ConnState {
        conn: "third".into(),
        sas: vec![],
        policies: vec![],
    };
    third.policies.push(PolicySpec {
        conn: "third".into(),
        ..policy(
            Direction::Out,
            net("10.1.2.0/24"),
            net("10.2.0.0/16"),
            PolicyAction::Protect {
                sas: vec![id_of(&setup, IpsecProto::Esp, true)],
            },
            false,
        )
    });
    assert_eq!(e.install_conn(Origin::Ikerd, &third, now).unwrap(), (0, 1));
}

#[test]
fn every_bad_field_is_named() {
    let s = Setup::default();
    let bundle = Setup {
        ah: true,
        ..Setup::default()
    };
    type Case<'a> = (&'a Setup, Box<dyn Fn(&mut ConnState)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            &s,
            Box::new(|st| st.conn = String::new()),
            "connection name",
        ),
        (
            &s,
            Box::new(|st| st.conn = "x".repeat(129)),
            "connection name",
        ),
        (
            &s,
            Box::new(|st| st.conn = "a\u{7}b".into()),
            "connection name",
        ),
        (
            &s,
            Box::new(|st| st.sas[0].conn = "zzz".into()),
            "names conn \"zzz\"",
        ),
        (
            &s,
            Box::new(|st| st.policies[0].conn = "zzz".into()),
            "names conn \"zzz\"",
        ),
        (
            &s,
            Box::new(|st| st.sas.push(st.sas[0].clone())),
            "listed twice",
        ),
        (&s, Box::new(|st| st.sas[0].spi = 255), "reserved"),
        (
            &s,
            Box::new(|st| st.policies[0].selector.src = net("fd00::/8")),
            "mixes IPv4 and IPv6",
        ),
        (
            &s,
            Box::new(|st| st.policies[0].selector.src.prefix = 40),
            "source prefix /40",
        ),
        (
            &s,
            Box::new(|st| st.policies[0].selector.dst_ports = Ports { lo: 9, hi: 1 }),
            "destination ports 9-1",
        ),
        (&s, Box::new(|st| st.policies[0].route = false), ""),
        (
            &s,
            Box::new(|st| st.policies[1].route = true),
            "route is for outbound",
        ),
        (
            &s,
            Box::new(|st| st.policies[1].action = PolicyAction::Trap),
            "outbound policies only",
        ),
        (
            &s,
            Box::new(|st| st.policies[0].action = PolicyAction::Protect { sas: vec![] }),
            "protect lists 0 SAs",
        ),
        (
            &s,
            Box::new(|st| {
                let id = st.sas[0].id();
                st.policies[0].action = PolicyAction::Protect {
                    sas: vec![id, id, id],
                };
            }),
            "protect lists 3 SAs",
        ),
        (
            &s,
            Box::new(|st| {
                let id = st.sas[0].id();
                st.policies[0].action = PolicyAction::Protect { sas: vec![id, id] };
            }),
            "listed twice",
        ),
        (
            &s,
            Box::new(|st| {
                st.policies[0].action = PolicyAction::Protect {
                    sas: vec![SaId {
                        spi: 0x7777,
                        ..st.sas[0].id()
                    }],
                }
            }),
            "SA esp.7777@192.0.2.2 does not exist",
        ),
        (
            &s,
            Box::new(|st| {
                st.policies[0].action = PolicyAction::Protect {
                    sas: vec![st.sas[1].id()],
                }
            }),
            "is inbound but the policy is outbound",
        ),
        (
            &bundle,
            Box::new(|st| {
                if let PolicyAction::Protect { sas } = &mut st.policies[0].action {
                    sas.reverse();
                }
            }),
            "ESP then AH",
        ),
        (
            &s,
            Box::new(|st| {
                st.sas[0].mode = SaMode::Transport;
            }),
            "transport-mode SA",
        ),
        (
            &s,
            Box::new(|st| st.policies.push(st.policies[0].clone())),
            "same direction and selector as policy 1",
        ),
        (
            &s,
            Box::new(|st| {
                st.sas = (0..65)
                    .map(|i| SaSpec {
                        spi: 0x5000 + i,
                        ..st.sas[0].clone()
                    })
                    .collect()
            }),
            "at most 64 per conn",
        ),
        (
            &s,
            Box::new(|st| {
                st.policies = (0..257u32)
                    .map(|i| {
                        policy(
                            Direction::Out,
                            net("10.1.0.0/16"),
                            net(&format!("10.{}.{}.0/24", i / 256 + 20, i % 256)),
                            PolicyAction::Drop,
                            false,
                        )
                    })
                    .collect()
            }),
            "at most 256 per conn",
        ),
    ];
    for (setup, f, want) in cases {
        let (e, now) = installed(setup);
        let mut st = conn_state(setup, true);
        f(&mut st);
        match e.install_conn(Origin::Ikerd, &st, now) {
            Err(err) => assert!(
                !want.is_empty() && err.contains(want),
                "want {want:?}, got {err:?}"
            ),
            Ok(_) => assert!(want.is_empty(), "accepted, wanted {want:?}"),
        }
    }
}

#[test]
fn an_ah_esp_bundle_must_join_the_same_endpoints_and_mode() {
    let setup = Setup {
        ah: true,
        ..Setup::default()
    };
    let err = refused(&setup, |st| {
        let ah = st.sas.iter_mut().find(|s| s.spi == SPI_AH_AB).unwrap();
        ah.src = ip("192.0.2.7");
    });
    assert!(err.contains("same endpoints"), "{err}");
    let err = refused(&setup, |st| {
        let ah = st.sas.iter_mut().find(|s| s.spi == SPI_AH_AB).unwrap();
        ah.mode = SaMode::Transport;
    });
    assert!(
        err.contains("same mode") || err.contains("transport-mode"),
        "{err}"
    );
    let err = refused(&setup, |st| {
        let esp = st.sas.iter_mut().find(|s| s.spi == SPI_ESP_AB).unwrap();
        esp.encap = Some(UdpEncap {
            src_port: 4500,
            dst_port: 4500,
        });
    });
    assert!(err.contains("UDP encapsulation"), "{err}");
}

#[test]
fn engine_wide_limits() {
    let setup = Setup::default();
    let now = Instant::now();
    let e = Engine::new(EngineConfig {
        max_sas: 3,
        max_policies: 3,
        ..EngineConfig::default()
    });
    e.install_conn(Origin::Ikerd, &conn_state(&setup, true), now)
        .unwrap();
    let mut other = conn_state(&setup, true);
    other.conn = "o".into();
    for s in &mut other.sas {
        s.conn = "o".into();
        s.spi += 0x100;
    }
    other.policies.clear();
    let err = e.install_conn(Origin::Ikerd, &other, now).unwrap_err();
    assert!(
        err.contains("4 SAs in all would exceed the limit of 3"),
        "{err}"
    );
    other.sas.truncate(1);
    assert_eq!(e.install_conn(Origin::Ikerd, &other, now).unwrap(), (1, 0));
    let err = e
        .add_sa(
            Origin::Confd,
            &SaSpec {
                spi: 0x9000,
                ..other.sas[0].clone()
            },
            now,
        )
        .unwrap_err();
    assert!(err.contains("limit of 3"), "{err}");
    // policies: 2 installed, room for one more
    let p = |dst: &str| PolicySpec {
        conn: "o".into(),
        ..policy(
            Direction::Out,
            net("10.1.0.0/16"),
            net(dst),
            PolicyAction::Drop,
            false,
        )
    };
    other.policies = vec![p("10.50.0.0/16"), p("10.51.0.0/16")];
    let err = e.install_conn(Origin::Ikerd, &other, now).unwrap_err();
    assert!(
        err.contains("4 policies in all would exceed the limit of 3"),
        "{err}"
    );
    assert!(e.add_policy(Origin::Confd, &p("10.50.0.0/16")).is_ok());
    assert!(e
        .add_policy(Origin::Confd, &p("10.51.0.0/16"))
        .unwrap_err()
        .contains("limit of 3"));
    // replacing a conn counts what it gives back
    assert_eq!(
        e.install_conn(Origin::Ikerd, &conn_state(&setup, true), now)
            .unwrap(),
        (2, 2)
    );
}

#[test]
fn per_conn_limits_for_single_adds() {
    let setup = Setup::default();
    let now = Instant::now();
    let e = engine(&setup);
    let base = sa_spec(&setup, IpsecProto::Esp, true, true);
    for i in 0..64 {
        e.add_sa(
            Origin::Confd,
            &SaSpec {
                spi: 0x10000 + i,
                ..base.clone()
            },
            now,
        )
        .unwrap();
    }
    let err = e
        .add_sa(
            Origin::Confd,
            &SaSpec {
                spi: 0x20000,
                ..base.clone()
            },
            now,
        )
        .unwrap_err();
    assert!(err.contains("64 SAs already"), "{err}");
    for i in 0..256u32 {
        let p = policy(
            Direction::Out,
            net("10.1.0.0/16"),
            net(&format!("10.{}.{}.0/24", i / 256 + 20, i % 256)),
            PolicyAction::Drop,
            false,
        );
        e.add_policy(Origin::Confd, &p).unwrap();
    }
    let p = policy(
        Direction::Out,
        net("10.1.0.0/16"),
        net("10.99.0.0/16"),
        PolicyAction::Drop,
        false,
    );
    assert!(e
        .add_policy(Origin::Confd, &p)
        .unwrap_err()
        .contains("256 policies already"));
}

#[test]
fn add_policy_validates_against_installed_sas() {
    let setup = Setup::default();
    let (e, _) = installed(&setup);
    let mut p = policy(
        Direction::Out,
        net("10.1.0.0/16"),
        net("10.4.0.0/16"),
        PolicyAction::Protect {
            sas: vec![id_of(&setup, IpsecProto::Esp, false)],
        },
        false,
    );
    assert!(e
        .add_policy(Origin::Confd, &p)
        .unwrap_err()
        .contains("inbound but the policy is outbound"));
    p.action = PolicyAction::Protect {
        sas: vec![SaId {
            spi: 0x4444,
            ..id_of(&setup, IpsecProto::Esp, true)
        }],
    };
    let err = e.add_policy(Origin::Confd, &p).unwrap_err();
    assert!(
        err.starts_with("policy of conn \"a-b\" (out 10.1.0.0/16 -> 10.4.0.0/16)"),
        "{err}"
    );
    p.action = PolicyAction::Protect {
        sas: vec![id_of(&setup, IpsecProto::Esp, true)],
    };
    assert!(e.add_policy(Origin::Confd, &p).is_ok());
    // host bits are cleared
    let mut q = policy(
        Direction::Out,
        net("10.1.0.0/16"),
        net("10.77.1.2/16"),
        PolicyAction::Drop,
        false,
    );
    q.conn = "q".into();
    let id = e.add_policy(Origin::Confd, &q).unwrap();
    let info = e
        .look(Instant::now())
        .policies
        .into_iter()
        .find(|p| p.id == id)
        .unwrap();
    assert_eq!(info.selector.dst, net("10.77.0.0/16"));
}

#[test]
fn flush_removes_only_what_the_origin_installed() {
    let setup = Setup::default();
    let (e, now) = installed(&setup); // by ikerd
    let mut manual = sa_spec(&setup, IpsecProto::Esp, true, true);
    manual.spi = 0x3000;
    manual.conn = "manual".into();
    e.add_sa(Origin::Confd, &manual, now).unwrap();
    let mut p = policy(
        Direction::Out,
        net("10.1.0.0/16"),
        net("10.30.0.0/16"),
        PolicyAction::Protect {
            sas: vec![manual.id()],
        },
        true,
    );
    p.conn = "manual".into();
    e.add_policy(Origin::Confd, &p).unwrap();
    assert_eq!(e.flush(Origin::Confd, FlushWhat::Sas), 1);
    assert_eq!(e.flush(Origin::Confd, FlushWhat::Sas), 0);
    assert_eq!(e.look(now).sas.len(), 2);
    assert_eq!(e.flush(Origin::Confd, FlushWhat::Policies), 1);
    assert_eq!(e.look(now).policies.len(), 2);
    assert_eq!(e.flush(Origin::Ikerd, FlushWhat::Policies), 2);
    assert_eq!(e.flush(Origin::Ikerd, FlushWhat::Sas), 2);
    assert!(e.look(now).sas.is_empty() && e.look(now).policies.is_empty());
}

#[test]
fn look_has_no_keys_and_secrets_have_them() {
    let setup = Setup::default();
    let (e, now) = installed(&setup);
    let look = e.look(now);
    assert_eq!(look.sas.len(), 2);
    let s = &look.sas[0];
    assert_eq!(
        (s.id.spi, s.conn.as_str(), s.direction, s.state.as_str()),
        (SPI_ESP_AB, CONN, Direction::Out, "mature")
    );
    assert_eq!(
        (s.encr, s.integ, s.replay_window),
        (AES_SHA1.encr, AES_SHA1.integ, 64)
    );
    assert!(look.tun.is_empty() && look.tun_mtu == 0 && look.routes.is_empty());
    let json = serde_json::to_string(&look).unwrap();
    let k = sa_spec(&setup, IpsecProto::Esp, true, true);
    let key_json = serde_json::to_string(k.enc_key.expose()).unwrap();
    assert!(
        !json.contains(key_json.trim_matches(|c| c == '[' || c == ']')),
        "no key bytes in look"
    );
    assert!(!format!("{e:?}").contains("enc_key"));
    let secrets = e.secrets();
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0].id.spi, SPI_ESP_AB);
    assert_eq!(secrets[0].enc_key.expose(), k.enc_key.expose());
    assert_eq!(secrets[0].auth_key.expose(), k.auth_key.expose());
}

#[test]
fn reinstalling_an_unchanged_sa_keeps_its_state_and_a_changed_one_starts_afresh() {
    let setup = Setup::default();
    let now = Instant::now();
    let (a, b) = pair_at(&setup, now);
    let (src, dst) = hosts(&setup);
    for _ in 0..5 {
        transfer(&a, &b, &udp_plain(src, dst, 100), now).unwrap();
    }
    let seq = |e: &Engine| sa_info(e, SPI_ESP_AB).unwrap().seq;
    assert_eq!(seq(&a), 5);
    // ikerd re-sends the whole state with one more SA (a rekey in progress): the live SAs keep
    // their sequence numbers and counters, and traffic keeps flowing.
    let mut st = conn_state(&setup, true);
    let mut extra = st.sas[0].clone();
    extra.spi += 0x77;
    st.sas.push(extra);
    a.install_conn(Origin::Ikerd, &st, now).unwrap();
    assert_eq!(seq(&a), 5);
    assert_eq!(sa_info(&a, SPI_ESP_AB).unwrap().packets, 5);
    transfer(&a, &b, &udp_plain(src, dst, 100), now).unwrap();
    assert_eq!(seq(&a), 6);
    // the same SPI with another key is another SA: it starts from zero
    let mut st = conn_state(&setup, true);
    st.sas[0].enc_key = key(99, st.sas[0].enc_key.len());
    a.install_conn(Origin::Ikerd, &st, now).unwrap();
    assert_eq!(seq(&a), 0);
    // and the same spec from another origin is not "unchanged" either
    let st = conn_state(&setup, true);
    a.install_conn(Origin::Ikerd, &st, now).unwrap();
    transfer(&a, &b, &udp_plain(src, dst, 100), now).ok();
    a.install_conn(Origin::Confd, &st, now).unwrap();
    assert_eq!(seq(&a), 0);
}
