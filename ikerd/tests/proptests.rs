//! Acceptance 4: round trips of constructed messages and "never panics"
//! properties on arbitrary and mutated input.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

mod common;

use ikerd::msgs::codec::Codec;
use ikerd::msgs::{decode_any, ikev2 as v2, isakmp as v1};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

// ---------------------------------------------------------------- IKEv1

fn v1_attr() -> impl Strategy<Value = v1::Attribute> {
    prop_oneof![
        (0u16..0x8000, any::<u16>()).prop_map(|(t, v)| v1::Attribute::basic(t, v)),
        (0u16..0x8000, bytes(40)).prop_map(|(t, v)| v1::Attribute::variable(t, v)),
    ]
}

fn v1_sa() -> impl Strategy<Value = v1::SaPayload> {
    let transform = (
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(v1_attr(), 0..6),
    )
        .prop_map(|(number, id, attributes)| v1::Transform {
            number,
            id,
            attributes,
        });
    let proposal = (
        any::<u8>(),
        any::<u8>(),
        bytes(9),
        proptest::collection::vec(transform, 0..4),
    )
        .prop_map(|(number, p, spi, transforms)| v1::Proposal {
            number,
            protocol: v1::ProtocolId(p),
            spi,
            transforms,
        });
    (
        prop_oneof![Just(v1::Doi::IPSEC), Just(v1::Doi::ISAKMP)],
        0u32..2,
        proptest::collection::vec(proposal, 1..4),
    )
        .prop_map(|(doi, situation, proposals)| v1::SaPayload {
            doi,
            situation,
            proposals,
        })
}

fn v1_payload() -> impl Strategy<Value = v1::Payload> {
    use v1::Payload as P;
    prop_oneof![
        v1_sa().prop_map(P::Sa),
        bytes(64).prop_map(|data| P::Ke(v1::KePayload { data })),
        prop_oneof![
            (any::<u8>(), any::<u16>(), bytes(30)).prop_map(|(protocol, port, data)| {
                v1::IdPayload {
                    id_type: v1::IdType::FQDN,
                    protocol,
                    port,
                    data,
                }
            }),
            (any::<u8>(), any::<u16>(), any::<[u8; 4]>()).prop_map(|(protocol, port, a)| {
                v1::IdPayload {
                    id_type: v1::IdType::IPV4_ADDR,
                    protocol,
                    port,
                    data: a.to_vec(),
                }
            }),
            any::<[u8; 32]>().prop_map(|a| v1::IdPayload {
                id_type: v1::IdType::IPV6_ADDR_SUBNET,
                protocol: 0,
                port: 0,
                data: a.to_vec()
            }),
        ]
        .prop_map(P::Id),
        (any::<u8>(), bytes(40)).prop_map(|(e, data)| P::Cert(v1::CertPayload {
            encoding: v1::CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(40)).prop_map(|(e, data)| P::CertReq(v1::CertPayload {
            encoding: v1::CertEncoding(e),
            data
        })),
        bytes(32).prop_map(|data| P::Hash(v1::HashPayload { data })),
        bytes(32).prop_map(|data| P::Sig(v1::SigPayload { data })),
        bytes(32).prop_map(|data| P::Nonce(v1::NoncePayload { data })),
        (
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            bytes(17),
            bytes(20)
        )
            .prop_map(|(doi, p, t, spi, data)| P::Notify(v1::NotifyPayload {
                doi: v1::Doi(doi),
                protocol: v1::ProtocolId(p),
                notify_type: v1::NotifyType(t),
                spi,
                data
            })),
        (any::<u32>(), any::<u8>(), 0u8..17, 0usize..5).prop_flat_map(|(doi, p, size, n)| {
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), usize::from(size)), n)
                .prop_map(move |spis| {
                    P::Delete(v1::DeletePayload {
                        doi: v1::Doi(doi),
                        protocol: v1::ProtocolId(p),
                        spi_size: size,
                        spis,
                    })
                })
        }),
        bytes(20).prop_map(|data| P::Vendor(v1::VendorPayload { data })),
        (
            any::<u8>(),
            any::<u16>(),
            proptest::collection::vec(v1_attr(), 0..5)
        )
            .prop_map(|(t, identifier, attributes)| {
                P::Attr(v1::AttrPayload {
                    cfg_type: v1::CfgType(t),
                    identifier,
                    attributes,
                })
            }),
        (any::<bool>(), bytes(20)).prop_map(|(draft, data)| P::NatD {
            draft,
            payload: v1::NatDPayload { data }
        }),
        (
            any::<bool>(),
            any::<[u8; 4]>(),
            any::<[u8; 16]>(),
            any::<bool>()
        )
            .prop_map(|(draft, a4, a6, six)| P::NatOa {
                draft,
                payload: v1::NatOaPayload {
                    addr: if six {
                        IpAddr::from(a6)
                    } else {
                        IpAddr::from(a4)
                    }
                }
            }),
        (200u8..=255, bytes(30)).prop_map(|(t, data)| P::Unknown {
            ptype: v1::PayloadType(t),
            data
        }),
    ]
}

fn v1_message() -> impl Strategy<Value = v1::Message> {
    let header = (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        0u8..16,
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(
            |(icookie, rcookie, minor, ex, flags, message_id)| v1::Header {
                icookie,
                rcookie,
                version: 0x10 | minor,
                exchange: v1::ExchangeType(ex),
                flags,
                message_id,
            },
        );
    (
        header,
        proptest::collection::vec(v1_payload(), 0..8),
        bytes(64),
        any::<u8>(),
    )
        .prop_map(|(mut header, payloads, ct, first)| {
            let body = if header.flags & v1::FLAG_ENCRYPTION != 0 {
                v1::Body::Encrypted {
                    first_payload: v1::PayloadType(first),
                    ciphertext: ct,
                }
            } else {
                v1::Body::Plain(payloads)
            };
            header.flags |= 0; // flags kept as generated
            v1::Message { header, body }
        })
}

// ---------------------------------------------------------------- IKEv2

fn v2_attr() -> impl Strategy<Value = v1::Attribute> {
    v1_attr()
}

fn v2_sa() -> impl Strategy<Value = v2::SaPayload> {
    let transform = (
        1u8..6,
        any::<u16>(),
        proptest::collection::vec(v2_attr(), 0..3),
    )
        .prop_map(|(t, id, attributes)| v2::Transform {
            ty: v2::TransformType(t),
            id,
            attributes,
        });
    let proposal = (
        any::<u8>(),
        1u8..4,
        bytes(9),
        proptest::collection::vec(transform, 0..6),
    )
        .prop_map(|(number, p, spi, transforms)| v2::Proposal {
            number,
            protocol: v2::ProtocolId(p),
            spi,
            transforms,
        });
    proptest::collection::vec(proposal, 1..5).prop_map(|proposals| v2::SaPayload { proposals })
}

fn ts() -> impl Strategy<Value = v2::TrafficSelector> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 4]>(),
            any::<[u8; 4]>()
        )
            .prop_map(|(p, sp, ep, a, b)| {
                v2::TrafficSelector::Range {
                    ip_protocol: p,
                    start_port: sp,
                    end_port: ep,
                    start: IpAddr::V4(Ipv4Addr::from(a)),
                    end: IpAddr::V4(Ipv4Addr::from(b)),
                }
            }),
        (any::<u8>(), any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(p, a, b)| {
            v2::TrafficSelector::Range {
                ip_protocol: p,
                start_port: 0,
                end_port: 65535,
                start: IpAddr::V6(Ipv6Addr::from(a)),
                end: IpAddr::V6(Ipv6Addr::from(b)),
            }
        }),
        (9u8..=255, bytes(20)).prop_map(|(t, data)| v2::TrafficSelector::Other {
            ts_type: v2::TsType(t),
            data
        }),
    ]
}

fn v2_body() -> impl Strategy<Value = v2::PayloadBody> {
    use v2::PayloadBody as B;
    let id = prop_oneof![
        bytes(30).prop_map(|data| v2::IdPayload {
            id_type: v2::IdType::FQDN,
            data
        }),
        bytes(30).prop_map(|data| v2::IdPayload {
            id_type: v2::IdType::KEY_ID,
            data
        }),
        any::<[u8; 4]>().prop_map(|a| v2::IdPayload {
            id_type: v2::IdType::IPV4_ADDR,
            data: a.to_vec()
        }),
        any::<[u8; 16]>().prop_map(|a| v2::IdPayload {
            id_type: v2::IdType::IPV6_ADDR,
            data: a.to_vec()
        }),
        (100u8..=255, bytes(10)).prop_map(|(t, data)| v2::IdPayload {
            id_type: v2::IdType(t),
            data
        }),
    ];
    prop_oneof![
        v2_sa().prop_map(B::Sa),
        (any::<u16>(), bytes(64)).prop_map(|(g, data)| B::Ke(v2::KePayload {
            group: v2::DhGroup(g),
            data
        })),
        id.clone().prop_map(B::IdI),
        id.prop_map(B::IdR),
        (any::<u8>(), bytes(40)).prop_map(|(e, data)| B::Cert(v2::CertPayload {
            encoding: v2::CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(40)).prop_map(|(e, data)| B::CertReq(v2::CertPayload {
            encoding: v2::CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(40)).prop_map(|(m, data)| B::Auth(v2::AuthPayload {
            method: v2::AuthMethod(m),
            data
        })),
        bytes(64).prop_map(|data| B::Nonce(v2::NoncePayload { data })),
        (any::<u8>(), any::<u16>(), bytes(9), bytes(20)).prop_map(|(p, t, spi, data)| B::Notify(
            v2::NotifyPayload {
                protocol: v2::ProtocolId(p),
                notify_type: v2::NotifyType(t),
                spi,
                data
            }
        )),
        (any::<u8>(), 0u8..9, 0usize..5).prop_flat_map(|(p, size, n)| {
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), usize::from(size)), n)
                .prop_map(move |spis| {
                    B::Delete(v2::DeletePayload {
                        protocol: v2::ProtocolId(p),
                        spi_size: size,
                        spis,
                    })
                })
        }),
        bytes(20).prop_map(|data| B::Vendor(v2::VendorPayload { data })),
        proptest::collection::vec(ts(), 0..4)
            .prop_map(|selectors| B::TsI(v2::TsPayload { selectors })),
        proptest::collection::vec(ts(), 0..4)
            .prop_map(|selectors| B::TsR(v2::TsPayload { selectors })),
        (
            any::<u8>(),
            proptest::collection::vec((0u16..0x8000, bytes(16)), 0..5)
        )
            .prop_map(|(t, a)| {
                B::Cp(v2::CpPayload {
                    cfg_type: v2::CfgType(t),
                    attributes: a
                        .into_iter()
                        .map(|(ty, value)| v2::CfgAttribute {
                            ty: v2::CfgAttr(ty),
                            value,
                        })
                        .collect(),
                })
            }),
        bytes(30).prop_map(|data| B::Eap(v2::EapPayload { data })),
        prop_oneof![1u8..33, 54u8..=255]
            .prop_map(v2::PayloadType)
            .prop_flat_map(|ptype| bytes(30).prop_map(move |data| B::Unknown { ptype, data })),
    ]
}

fn v2_message() -> impl Strategy<Value = v2::Message> {
    let header = (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        0u8..16,
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(|(spi_i, spi_r, minor, ex, flags, message_id)| v2::Header {
            spi_i,
            spi_r,
            version: 0x20 | minor,
            exchange: v2::ExchangeType(ex),
            flags,
            message_id,
        });
    let payload =
        (any::<bool>(), v2_body()).prop_map(|(critical, body)| v2::Payload { critical, body });
    let last = prop_oneof![
        Just(None),
        (any::<u8>(), bytes(80)).prop_map(|(f, data)| Some(v2::PayloadBody::Sk(v2::SkPayload {
            first_inner: v2::PayloadType(f),
            data
        }))),
        (any::<u8>(), 1u16..=128, bytes(80)).prop_flat_map(|(f, total, data)| (1..=total)
            .prop_map(move |n| {
                Some(v2::PayloadBody::Skf(v2::SkfPayload {
                    first_inner: v2::PayloadType(f),
                    fragment_number: n,
                    total_fragments: total,
                    data: data.clone(),
                }))
            })),
    ];
    (
        header,
        proptest::collection::vec(payload, 0..8),
        last,
        any::<bool>(),
    )
        .prop_map(|(header, mut payloads, last, c)| {
            if let Some(body) = last {
                payloads.push(v2::Payload { critical: c, body });
            }
            v2::Message { header, payloads }
        })
}

// ---------------------------------------------------------------- corpus

fn corpus() -> &'static Vec<Vec<u8>> {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| {
        let mut v: Vec<Vec<u8>> = common::capture_files()
            .iter()
            .flat_map(|f| common::ike_datagrams(f).unwrap_or_default())
            .map(|d| d.data)
            .collect();
        if v.is_empty() {
            // No corpus: fall back on one constructed message of each kind.
            v.push(
                v1::Message {
                    header: v1::Header {
                        version: 0x10,
                        ..Default::default()
                    },
                    body: v1::Body::Plain(vec![]),
                }
                .encode(),
            );
            v.push(
                v2::Message {
                    header: v2::Header {
                        version: 0x20,
                        ..Default::default()
                    },
                    payloads: vec![],
                }
                .encode(),
            );
        }
        v
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    SetU16(usize, u16),
}

fn mutate(mut b: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = b.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                if let Some(c) = b.get_mut(i % n) {
                    *c ^= x | 1;
                }
            }
            Mutation::Truncate(i) => b.truncate(i % n),
            Mutation::Insert(i, v) => {
                let at = (i % n).min(b.len());
                b.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(i, k) => {
                let at = (i % n).min(b.len());
                let end = (at + k % 16).min(b.len());
                b.drain(at..end);
            }
            Mutation::SetU16(i, v) => {
                let at = i % n;
                if at + 2 <= b.len() {
                    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
    b
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), bytes(12)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, k)| Mutation::Remove(i, k)),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u16),
                Just(1),
                Just(3),
                Just(4),
                Just(0xffff),
                any::<u16>()
            ]
        )
            .prop_map(|(i, v)| Mutation::SetU16(i, v)),
    ]
}

fn exercise(b: &[u8]) {
    let _ = decode_any(b);
    if let Ok(m) = v1::Message::decode(b) {
        assert_eq!(v1::Message::decode(&m.encode()).unwrap(), m);
    }
    if let Ok(m) = v2::Message::decode(b) {
        assert_eq!(v2::Message::decode(&m.encode()).unwrap(), m);
    }
    let _ = v1::decode_payload_chain(v1::PayloadType::SA, b, true);
    let _ = v2::decode_payload_chain(v2::PayloadType::SA, b, true);
    let _ = v1::SaPayload::read_bytes(b);
    let _ = v2::SaPayload::read_bytes(b);
    let _ = v2::TsPayload::read_bytes(b);
    let _ = v2::CpPayload::read_bytes(b);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn v1_constructed_roundtrip(m in v1_message()) {
        let wire = m.encode();
        let back = v1::Message::decode(&wire).expect("decodes");
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(&back.encode(), &wire);
    }

    #[test]
    fn v2_constructed_roundtrip(m in v2_message()) {
        let wire = m.encode();
        let back = v2::Message::decode(&wire).expect("decodes");
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(&back.encode(), &wire);
        let any = decode_any(&wire).expect("decode_any");
        prop_assert_eq!(any.encode(), wire);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in bytes(600)) {
        exercise(&b);
    }

    #[test]
    fn ike_shaped_bytes_never_panic(v in 0u8..3, np in any::<u8>(), ex in any::<u8>(), tail in bytes(400)) {
        // A plausible header with the right length, then random payloads.
        let mut b = vec![1u8; 16];
        b.push(np);
        b.push(if v == 0 { 0x10 } else { 0x20 });
        b.push(ex);
        b.push(0);
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&u32::try_from(28 + tail.len()).unwrap().to_be_bytes());
        b.extend_from_slice(&tail);
        exercise(&b);
    }

    #[test]
    fn mutated_corpus_never_panics(i in any::<usize>(), ms in proptest::collection::vec(mutation(), 1..4)) {
        let c = corpus();
        let b = mutate(c[i % c.len()].clone(), &ms);
        exercise(&b);
    }

    #[test]
    fn mutated_constructed_never_panics(m in v2_message(), ms in proptest::collection::vec(mutation(), 1..4)) {
        exercise(&mutate(m.encode(), &ms));
    }

    #[test]
    fn sk_seal_open_roundtrip(
        inner in proptest::collection::vec(
            (any::<bool>(), v2_body()).prop_filter("no SK inside", |(_, b)| !matches!(b, v2::PayloadBody::Sk(_) | v2::PayloadBody::Skf(_)))
                .prop_map(|(critical, body)| v2::Payload { critical, body }), 1..5),
        alg in 0usize..6,
        key in any::<[u8; 36]>(),
        ska in any::<[u8; 64]>(),
        iv in any::<[u8; 16]>(),
        flip in any::<usize>(),
    ) {
        use v2::sk::{Encr, Integ, SkKeys};
        let (encr, integ, klen, alen, ivlen) = match alg {
            0 => (Encr::AesCbc, Integ::HmacSha1_96, 16, 20, 16),
            1 => (Encr::AesCbc, Integ::HmacSha256_128, 32, 32, 16),
            2 => (Encr::AesCbc, Integ::HmacSha384_192, 24, 48, 16),
            3 => (Encr::AesCbc, Integ::HmacSha512_256, 16, 64, 16),
            4 => (Encr::AesGcm16, Integ::None, 36, 0, 8),
            _ => (Encr::AesGcm12, Integ::None, 20, 0, 8),
        };
        let keys = SkKeys::new(encr, integ, &key[..klen], &ska[..alen]).unwrap();
        let header = v2::Header { version: 0x20, exchange: v2::ExchangeType::IKE_AUTH, flags: 8, message_id: 1, ..Default::default() };
        let wire = keys.seal(&header, &[], &inner, &iv[..ivlen]).unwrap();
        let opened = keys.open(&wire).unwrap();
        prop_assert_eq!(opened.inner.as_ref().unwrap(), &inner);
        prop_assert_eq!(&opened.message.header, &header);
        // Any single-bit change after the IKE header is caught.
        let mut bad = wire.clone();
        let at = 28 + flip % (bad.len() - 28);
        bad[at] ^= 0x01;
        prop_assert!(keys.open(&bad).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// RFC 7383: seal as fragments, open each, reassemble (in any order).
    #[test]
    fn skf_fragment_roundtrip(
        inner in proptest::collection::vec(
            (any::<bool>(), v2_body()).prop_filter("no SK inside", |(_, b)| !matches!(b, v2::PayloadBody::Sk(_) | v2::PayloadBody::Skf(_)))
                .prop_map(|(critical, body)| v2::Payload { critical, body }), 1..6),
        gcm in any::<bool>(),
        chunk in 1usize..200,
        rot in any::<usize>(),
    ) {
        use v2::sk::{reassemble, Encr, Integ, SkKeys};
        let keys = if gcm {
            SkKeys::new(Encr::AesGcm16, Integ::None, &[3; 20], &[]).unwrap()
        } else {
            SkKeys::new(Encr::AesCbc, Integ::HmacSha256_128, &[3; 16], &[4; 32]).unwrap()
        };
        let ivlen = if gcm { 8 } else { 16 };
        let header = v2::Header { version: 0x20, exchange: v2::ExchangeType::IKE_AUTH, flags: 8, message_id: 1, ..Default::default() };
        let mut ctr = 0u8;
        let frags = match keys.seal_fragments(&header, &inner, chunk, &mut || { ctr += 1; vec![ctr; ivlen] }) {
            Ok(f) => f,
            Err(_) => return Ok(()), // more than MAX_FRAGMENTS: refused, fine
        };
        let mut opened: Vec<_> = frags.iter().map(|f| keys.open(f).unwrap()).collect();
        prop_assert!(opened.iter().all(|o| o.inner.is_none()));
        let n = opened.len();
        opened.rotate_left(rot % n);
        prop_assert_eq!(reassemble(&opened).unwrap(), inner);
        if n > 1 {
            opened.pop();
            prop_assert!(reassemble(&opened).is_err());
        }
    }
}
