//! Acceptance 3: IKEv1 Main Mode messages from tcpdump's and libreswan's
//! captures decode with the SA attributes tcpdump's expected output lists.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

mod common;

use ikerd::msgs::isakmp::vendor::KnownVendor;
use ikerd::msgs::isakmp::*;

fn v1_messages(rel: &str) -> Option<Vec<(common::IkeDatagram, Message)>> {
    let p = common::corpus_file(rel);
    if !p.exists() {
        eprintln!("{rel} not present; skipping");
        return None;
    }
    Some(
        common::ike_datagrams(&p)
            .unwrap()
            .into_iter()
            .map(|d| {
                let m = Message::decode(&d.data)
                    .unwrap_or_else(|e| panic!("{rel} frame {}: {e}", d.frame));
                assert_eq!(m.encode(), d.data, "{rel} frame {} round trip", d.frame);
                (d, m)
            })
            .collect(),
    )
}

fn basic(t: &Transform, ty: OakleyAttr) -> u16 {
    match t.attr(ty.0).unwrap_or_else(|| panic!("no {ty:?}")).value {
        AttrValue::Basic(v) => v,
        AttrValue::Variable(_) => panic!("{ty:?} not TV"),
    }
}

fn sa_of(m: &Message) -> &SaPayload {
    m.payloads()
        .iter()
        .find_map(|p| {
            if let Payload::Sa(s) = p {
                Some(s)
            } else {
                None
            }
        })
        .expect("SA payload")
}

#[test]
fn isakmp_sa_setup_matches_isakmp5_v_out() {
    let Some(msgs) = v1_messages("tcpdump-captures/ISAKMP_sa_setup.pcap") else {
        return;
    };
    assert_eq!(msgs.len(), 9);
    // 1: phase 1 I ident: (sa: doi=ipsec situation=identity (p: #1 protoid=isakmp transform=1
    //   (t: #1 id=ike (type=enc value=aes)(type=keylen value=0080)(type=hash value=sha1)
    //   (type=group desc value=modp768)(type=auth value=preshared)(type=lifetype value=sec)
    //   (type=lifeduration len=4 value=00015180)))) (vid: len=16) x3
    let (_, m) = &msgs[0];
    assert_eq!(m.header.exchange, ExchangeType::IDENT);
    assert_eq!(m.header.version, 0x10);
    let sa = sa_of(m);
    assert_eq!((sa.doi, sa.situation), (Doi::IPSEC, sa::SIT_IDENTITY_ONLY));
    assert_eq!(sa.proposals.len(), 1);
    let p = &sa.proposals[0];
    assert_eq!(
        (p.number, p.protocol, p.transforms.len()),
        (1, ProtocolId::ISAKMP, 1)
    );
    let t = &p.transforms[0];
    assert_eq!((t.number, t.id), (1, 1)); // KEY_IKE
    assert_eq!(
        OakleyEncr(basic(t, OakleyAttr::ENCRYPTION_ALGORITHM)),
        OakleyEncr::AES_CBC
    );
    assert_eq!(basic(t, OakleyAttr::KEY_LENGTH), 0x80);
    assert_eq!(
        OakleyHash(basic(t, OakleyAttr::HASH_ALGORITHM)),
        OakleyHash::SHA
    );
    assert_eq!(
        OakleyGroup(basic(t, OakleyAttr::GROUP_DESCRIPTION)),
        OakleyGroup::MODP768
    );
    assert_eq!(
        OakleyAuth(basic(t, OakleyAttr::AUTHENTICATION_METHOD)),
        OakleyAuth::PRESHARED_KEY
    );
    assert_eq!(LifeType(basic(t, OakleyAttr::LIFE_TYPE)), LifeType::SECONDS);
    let life = t.attr(OakleyAttr::LIFE_DURATION.0).unwrap();
    assert_eq!(
        life.value,
        AttrValue::Variable(vec![0x00, 0x01, 0x51, 0x80])
    );
    assert_eq!(life.as_u64(), Some(86400));
    let vids: Vec<_> = m
        .payloads()
        .iter()
        .filter(|p| matches!(p, Payload::Vendor(_)))
        .collect();
    assert_eq!(vids.len(), 3);
    // 3: (ke: key len=96) (nonce: n len=20) (vid: len=16) x3 (vid: len=8) (pay15) (pay15)
    let (_, m3) = &msgs[2];
    let pl = m3.payloads();
    assert!(matches!(&pl[0], Payload::Ke(k) if k.data.len() == 96));
    assert!(matches!(&pl[1], Payload::Nonce(n) if n.data.len() == 20));
    assert!(matches!(&pl[5], Payload::Vendor(v) if v.data.len() == 8));
    assert!(matches!(&pl[3], Payload::Vendor(v) if v.known() == Some(KnownVendor::Dpd)));
    assert!(
        matches!(&pl[6], Payload::Unknown { ptype, data } if ptype.0 == 15 && data.len() == 20)
    );
    assert_eq!(pl.len(), 8);
    // 5: phase 1 I ident[E]: [encrypted id]
    let (_, m5) = &msgs[4];
    assert!(m5.header.encrypted());
    assert!(matches!(
        m5.body,
        Body::Encrypted {
            first_payload: PayloadType::ID,
            ..
        }
    ));
    // 7: phase 2/others I oakley-quick[E]: [encrypted hash]
    let (_, m7) = &msgs[6];
    assert_eq!(m7.header.exchange, ExchangeType::QUICK);
    assert_eq!(m7.header.message_id, 0x0f2b7862);
    assert!(matches!(
        m7.body,
        Body::Encrypted {
            first_payload: PayloadType::HASH,
            ..
        }
    ));
}

#[test]
fn isakmp4500_main_mode_and_nat_t() {
    let Some(msgs) = v1_messages("tcpdump-captures/isakmp4500.pcap") else {
        return;
    };
    // isakmp4.out: frames 3-6 phase 1 ident on 500, 7-8 ident[E] on 4500,
    // then oakley-quick[E] on 4500.
    assert_eq!(msgs[0].0.dport, 500);
    let sa = sa_of(&msgs[0].1);
    let ts = &sa.proposals[0].transforms;
    assert_eq!(ts.len(), 4);
    for t in ts {
        assert_eq!(
            OakleyEncr(basic(t, OakleyAttr::ENCRYPTION_ALGORITHM)),
            OakleyEncr::TDES_CBC
        );
        assert_eq!(
            OakleyAuth(basic(t, OakleyAttr::AUTHENTICATION_METHOD)),
            OakleyAuth::RSA_SIG
        );
        assert_eq!(basic(t, OakleyAttr::LIFE_DURATION), 3600);
    }
    let groups: Vec<_> = ts
        .iter()
        .map(|t| OakleyGroup(basic(t, OakleyAttr::GROUP_DESCRIPTION)))
        .collect();
    assert_eq!(
        groups,
        [
            OakleyGroup::MODP1536,
            OakleyGroup::MODP1536,
            OakleyGroup::MODP1024,
            OakleyGroup::MODP1024
        ]
    );
    let hashes: Vec<_> = ts
        .iter()
        .map(|t| OakleyHash(basic(t, OakleyAttr::HASH_ALGORITHM)))
        .collect();
    assert_eq!(
        hashes,
        [
            OakleyHash::MD5,
            OakleyHash::SHA,
            OakleyHash::SHA,
            OakleyHash::MD5
        ]
    );
    // Responder picks one transform and announces RFC 3947 NAT-T + DPD.
    let r = &msgs[1].1;
    assert_eq!(sa_of(r).proposals[0].transforms.len(), 1);
    let known: Vec<_> = r
        .payloads()
        .iter()
        .filter_map(|p| {
            if let Payload::Vendor(v) = p {
                v.known()
            } else {
                None
            }
        })
        .collect();
    assert!(
        known.contains(&KnownVendor::NatTRfc3947) && known.contains(&KnownVendor::Dpd),
        "{known:?}"
    );
    // Message 3: KE, nonce, two RFC 3947 NAT-D (payload 20).
    let natd = msgs[2]
        .1
        .payloads()
        .iter()
        .filter(
            |p| matches!(p, Payload::NatD { draft: false, payload } if payload.data.len() == 16),
        )
        .count();
    assert_eq!(natd, 2);
    // The rest go over 4500 behind the non-ESP marker, encrypted.
    let on4500: Vec<_> = msgs
        .iter()
        .filter(|(d, _)| d.dport == 4500 || d.sport == 4500)
        .collect();
    // Compare with tcpdump's isakmp4.out line counts.
    let out = std::fs::read_to_string(common::corpus_file("tcpdump-captures/isakmp4.out")).unwrap();
    let want_4500 = out
        .lines()
        .filter(|l| l.contains("NONESP-encap: isakmp"))
        .count();
    let want_quick = out
        .lines()
        .filter(|l| l.contains("oakley-quick[E]"))
        .count();
    assert_eq!(on4500.len(), want_4500);
    assert!(on4500.iter().all(|(_, m)| m.header.encrypted()));
    assert_eq!(
        on4500
            .iter()
            .filter(|(_, m)| m.header.exchange == ExchangeType::QUICK)
            .count(),
        want_quick
    );
}

#[test]
fn libreswan_small_captures() {
    // 01-isakmp-vid-first: VID before SA; Main Mode offer of 4 transforms.
    if let Some(msgs) =
        v1_messages("other-captures/libreswan__pluto__inputs__01-isakmp-vid-first.pcap")
    {
        let pl = msgs[0].1.payloads();
        assert!(matches!(pl[0], Payload::Vendor(_)));
        let sa = sa_of(&msgs[0].1);
        assert_eq!(sa.proposals[0].transforms.len(), 4);
        assert_eq!(
            OakleyEncr(basic(
                &sa.proposals[0].transforms[0],
                OakleyAttr::ENCRYPTION_ALGORITHM
            )),
            OakleyEncr::TDES_CBC
        );
    }
    for f in [
        "other-captures/libreswan__pluto__inputs__01-isakmp-broadcast.pcap",
        "other-captures/libreswan__pluto__inputs__01-isakmp-vid-first-resp.pcap",
        "other-captures/libreswan__pluto__inputs__01-isakmp-vid-second-resp.pcap",
        "other-captures/libreswan__pluto__inputs__02-isakmp-vid-first.pcap",
    ] {
        if let Some(msgs) = v1_messages(f) {
            for (_, m) in &msgs {
                assert_eq!(m.header.exchange, ExchangeType::IDENT, "{f}");
                let _ = sa_of(m);
            }
        }
    }
    // weirdike (AuthIP): unknown exchange 243 and unknown payloads 133/135
    // are kept raw, the rest parses.
    if let Some(msgs) = v1_messages(
        "other-captures/libreswan__pluto__replay-authip-01__weirdike-eastwest.pcap-ike.pcap",
    ) {
        let m = &msgs[0].1;
        assert_eq!(m.header.exchange, ExchangeType(243));
        assert!(m.header.exchange.name().is_none());
        let pl = m.payloads();
        assert!(matches!(&pl[0], Payload::Unknown { ptype, .. } if ptype.0 == 133));
        let t = &sa_of(m).proposals[0].transforms[0];
        assert_eq!(basic(t, OakleyAttr::KEY_LENGTH), 128);
        assert!(pl.iter().any(|p| matches!(p, Payload::NatD { .. })));
    }
}

#[test]
fn malformed_ikev1_are_errors() {
    for rel in [
        "tcpdump-captures/isakmp-pointer-loop.pcap",
        "tcpdump-captures/isakmp-no-none-np.pcapng",
        "tcpdump-captures/isakmpv1-attr-oobr.pcap",
        "tcpdump-captures/isakmp-various-oobr.pcap",
        "tcpdump-captures/ikev1_id_ipv6_addr_subnet-oobr.pcap",
        "tcpdump-captures/isakmp-ikev1_n_print-oobr.pcap",
        "tcpdump-captures/isakmp-delete-segfault.pcap",
    ] {
        let p = common::corpus_file(rel);
        if !p.exists() {
            continue;
        }
        let d = common::ike_datagrams(&p).unwrap();
        assert!(!d.is_empty(), "{rel}");
        for x in d {
            assert!(
                ikerd::msgs::decode_any(&x.data).is_err(),
                "{rel} frame {}",
                x.frame
            );
        }
    }
}

#[test]
fn decrypted_chain_with_padding_and_dpd() {
    // A plaintext as an IKEv1 decryptor would hand it over: HASH then a
    // DPD R-U-THERE notify, then cipher padding.
    let payloads = vec![
        Payload::Hash(HashPayload {
            data: vec![0xaa; 20],
        }),
        Payload::Notify(NotifyPayload {
            doi: Doi::IPSEC,
            protocol: ProtocolId::ISAKMP,
            notify_type: NotifyType::R_U_THERE,
            spi: vec![1; 16],
            data: 7u32.to_be_bytes().to_vec(),
        }),
    ];
    let mut plain = Vec::new();
    let first = encode_payload_chain(&payloads, &mut plain);
    plain.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
    let back = decode_payload_chain(first, &plain, true).unwrap();
    assert_eq!(back, payloads);
    assert!(decode_payload_chain(first, &plain, false).is_err());
    let Payload::Notify(n) = &back[1] else {
        panic!()
    };
    assert_eq!(n.dpd_sequence(), Some(7));
    // Through the message API: an INFO exchange with the E flag.
    let m = Message {
        header: Header {
            version: 0x10,
            exchange: ExchangeType::INFO,
            flags: FLAG_ENCRYPTION,
            message_id: 9,
            ..Default::default()
        },
        body: Body::Encrypted {
            first_payload: first,
            ciphertext: vec![0; plain.len()],
        },
    };
    let m = Message::decode(&m.encode()).unwrap();
    assert_eq!(m.decode_decrypted(&plain).unwrap(), payloads);
}
