//! Identities (phase 1 ID payloads) and traffic selectors (phase 2 IDci/IDcr).

use crate::msgs::isakmp::{IdPayload, IdType, Identity};
use ipc::ike::IkeId;
use ipc::policy::{Net, Ports, TrafficSelector};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The ID payload for one of our identities.
pub fn id_payload(id: &IkeId) -> Result<IdPayload, String> {
    let (id_type, data) = match id {
        IkeId::Ip(a) => match a.to_canonical() {
            IpAddr::V4(a) => (IdType::IPV4_ADDR, a.octets().to_vec()),
            IpAddr::V6(a) => (IdType::IPV6_ADDR, a.octets().to_vec()),
        },
        IkeId::Fqdn(s) => (IdType::FQDN, s.as_bytes().to_vec()),
        IkeId::UserFqdn(s) => (IdType::USER_FQDN, s.as_bytes().to_vec()),
        IkeId::KeyId(b) => (IdType::KEY_ID, b.clone()),
        IkeId::Dn(s) => {
            return Err(format!(
                "ID_DER_ASN1_DN identities ({s}) are not supported yet (they need certificates)"
            ))
        }
        IkeId::Any => return Err("%any is not an identity to send".into()),
    };
    Ok(IdPayload {
        id_type,
        protocol: 0,
        port: 0,
        data,
    })
}

/// The identity a peer's phase-1 ID payload names.
pub fn ike_id(p: &IdPayload) -> Result<IkeId, String> {
    match p
        .identity()
        .map_err(|e| format!("malformed ID payload: {e}"))?
    {
        Identity::Ipv4(a) => Ok(IkeId::Ip(IpAddr::V4(a))),
        Identity::Ipv6(a) => Ok(IkeId::Ip(IpAddr::V6(a))),
        Identity::Fqdn(b) => Ok(IkeId::Fqdn(String::from_utf8_lossy(&b).into_owned())),
        Identity::UserFqdn(b) => Ok(IkeId::UserFqdn(String::from_utf8_lossy(&b).into_owned())),
        Identity::KeyId(b) => Ok(IkeId::KeyId(b)),
        Identity::DerAsn1Dn(_) => {
            Err("the peer's ID is an ID_DER_ASN1_DN, which is not supported yet".into())
        }
        _ => Err(format!("unsupported phase-1 ID type {:?}", p.id_type)),
    }
}

/// Does the identity `got` satisfy `want` (the conn's `rightid=`)?
pub fn id_matches(want: &IkeId, got: &IkeId) -> bool {
    match (want, got) {
        (IkeId::Any, _) => true,
        (IkeId::Ip(a), IkeId::Ip(b)) => a.to_canonical() == b.to_canonical(),
        (IkeId::Fqdn(a), IkeId::Fqdn(b)) => a
            .trim_end_matches('.')
            .eq_ignore_ascii_case(b.trim_end_matches('.')),
        (IkeId::UserFqdn(a), IkeId::UserFqdn(b)) => a.eq_ignore_ascii_case(b),
        (IkeId::KeyId(a), IkeId::KeyId(b)) => a == b,
        _ => false,
    }
}

/// One side of a phase-2 selector: a prefix, a protocol and a port (0 = any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ts {
    pub net: Net,
    pub proto: u8,
    pub port: u16,
}

impl std::fmt::Display for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.net)?;
        if self.proto != 0 || self.port != 0 {
            write!(f, ":{}/{}", self.proto, self.port)?;
        }
        Ok(())
    }
}

fn width(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask_bits(prefix: u8, bytes: usize) -> Vec<u8> {
    let mut out = vec![0u8; bytes];
    let mut left = u32::from(prefix);
    for b in out.iter_mut() {
        let take = left.min(8);
        *b = if take == 0 { 0 } else { 0xffu8 << (8 - take) };
        left -= take;
    }
    out
}

/// Clear the host bits of a prefix.
pub fn normalise(n: Net) -> Net {
    let w = width(n.addr);
    let prefix = n.prefix.min(w);
    let addr = match n.addr {
        IpAddr::V4(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    };
    Net { addr, prefix }
}

/// The IDci/IDcr payload for a selector: a host address or a subnet.
pub fn ts_payload(ts: &Ts) -> IdPayload {
    let n = normalise(ts.net);
    let full = n.prefix == width(n.addr);
    let (id_type, data) = match (n.addr, full) {
        (IpAddr::V4(a), true) => (IdType::IPV4_ADDR, a.octets().to_vec()),
        (IpAddr::V6(a), true) => (IdType::IPV6_ADDR, a.octets().to_vec()),
        (IpAddr::V4(a), false) => (
            IdType::IPV4_ADDR_SUBNET,
            [a.octets().to_vec(), mask_bits(n.prefix, 4)].concat(),
        ),
        (IpAddr::V6(a), false) => (
            IdType::IPV6_ADDR_SUBNET,
            [a.octets().to_vec(), mask_bits(n.prefix, 16)].concat(),
        ),
    };
    IdPayload {
        id_type,
        protocol: ts.proto,
        port: ts.port,
        data,
    }
}

fn prefix_of_mask(mask: &[u8]) -> Option<u8> {
    let mut prefix = 0u8;
    let mut seen_zero = false;
    for b in mask {
        for i in (0..8).rev() {
            if b >> i & 1 == 1 {
                if seen_zero {
                    return None;
                }
                prefix = prefix.saturating_add(1);
            } else {
                seen_zero = true;
            }
        }
    }
    Some(prefix)
}

/// The selector an IDci/IDcr payload names. Ranges are accepted when they are exactly a prefix.
pub fn ts_of(p: &IdPayload) -> Result<Ts, String> {
    let id = p
        .identity()
        .map_err(|e| format!("malformed ID payload: {e}"))?;
    let net = match id {
        Identity::Ipv4(a) => Net::host(IpAddr::V4(a)),
        Identity::Ipv6(a) => Net::host(IpAddr::V6(a)),
        Identity::Ipv4Subnet(a, m) => Net {
            addr: IpAddr::V4(a),
            prefix: prefix_of_mask(&m.octets()).ok_or("non-contiguous IPv4 subnet mask")?,
        },
        Identity::Ipv6Subnet(a, m) => Net {
            addr: IpAddr::V6(a),
            prefix: prefix_of_mask(&m.octets()).ok_or("non-contiguous IPv6 subnet mask")?,
        },
        Identity::Ipv4Range(lo, hi) => range_prefix(IpAddr::V4(lo), IpAddr::V4(hi))?,
        Identity::Ipv6Range(lo, hi) => range_prefix(IpAddr::V6(lo), IpAddr::V6(hi))?,
        other => return Err(format!("{other:?} is not a phase-2 selector")),
    };
    Ok(Ts {
        net: normalise(net),
        proto: p.protocol,
        port: p.port,
    })
}

fn range_prefix(lo: IpAddr, hi: IpAddr) -> Result<Net, String> {
    let (l, h, w) = match (lo, hi) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            (u128::from(u32::from(a)), u128::from(u32::from(b)), 32u32)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128u32),
        _ => return Err("address range mixes families".into()),
    };
    let span = h.checked_sub(l).ok_or("address range runs backwards")?;
    let size = span.checked_add(1);
    let bits = match size {
        None => 128,
        Some(s) if s.is_power_of_two() => s.trailing_zeros(),
        Some(_) => return Err(format!("address range {lo}-{hi} is not a prefix")),
    };
    if bits > w || (bits < 128 && l & ((1u128 << bits) - 1) != 0) {
        return Err(format!("address range {lo}-{hi} is not a prefix"));
    }
    let prefix = u8::try_from(w - bits).map_err(|_| "bad range")?;
    Ok(Net { addr: lo, prefix })
}

/// Is `inner` inside `outer` (same family, at least as long, same leading bits)?
pub fn net_contains(outer: &Net, inner: &Net) -> bool {
    if outer.addr.is_ipv4() != inner.addr.is_ipv4() || inner.prefix < outer.prefix {
        return false;
    }
    normalise(Net {
        addr: inner.addr,
        prefix: outer.prefix,
    }) == normalise(*outer)
}

/// Ports of a selector side: 0 is any.
pub fn ports(port: u16) -> Ports {
    if port == 0 {
        Ports::ANY
    } else {
        Ports { lo: port, hi: port }
    }
}

/// The outbound policy selector from our side `l` to the peer's side `r`.
pub fn selector(l: &Ts, r: &Ts) -> TrafficSelector {
    TrafficSelector {
        src: normalise(l.net),
        dst: normalise(r.net),
        proto: if l.proto != 0 { l.proto } else { r.proto },
        src_ports: ports(l.port),
        dst_ports: ports(r.port),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn net(s: &str) -> Net {
        s.parse().unwrap()
    }

    #[test]
    fn selectors_round_trip() {
        for (s, ty) in [
            ("10.1.0.0/16", IdType::IPV4_ADDR_SUBNET),
            ("192.0.2.7/32", IdType::IPV4_ADDR),
            ("2001:db8:1::/48", IdType::IPV6_ADDR_SUBNET),
            ("2001:db8::1/128", IdType::IPV6_ADDR),
            ("0.0.0.0/0", IdType::IPV4_ADDR_SUBNET),
        ] {
            let ts = Ts {
                net: net(s),
                proto: 17,
                port: 1701,
            };
            let p = ts_payload(&ts);
            assert_eq!(p.id_type, ty, "{s}");
            assert_eq!(ts_of(&p).unwrap(), ts, "{s}");
        }
        let host_bits = Ts {
            net: net("10.1.2.3/16"),
            proto: 0,
            port: 0,
        };
        assert_eq!(
            ts_of(&ts_payload(&host_bits)).unwrap().net,
            net("10.1.0.0/16")
        );
    }

    #[test]
    fn ranges_and_masks() {
        let p = IdPayload {
            id_type: IdType::IPV4_ADDR_RANGE,
            protocol: 0,
            port: 0,
            data: vec![10, 0, 0, 0, 10, 0, 0, 255],
        };
        assert_eq!(ts_of(&p).unwrap().net, net("10.0.0.0/24"));
        let p = IdPayload {
            data: vec![10, 0, 0, 1, 10, 0, 0, 255],
            ..p
        };
        assert!(ts_of(&p).is_err());
        let p = IdPayload {
            id_type: IdType::IPV4_ADDR_SUBNET,
            protocol: 0,
            port: 0,
            data: vec![10, 0, 0, 0, 255, 0, 255, 0],
        };
        assert!(ts_of(&p).is_err());
    }

    #[test]
    fn containment_and_ids() {
        assert!(net_contains(&net("10.0.0.0/8"), &net("10.1.0.0/16")));
        assert!(!net_contains(&net("10.1.0.0/16"), &net("10.0.0.0/8")));
        assert!(net_contains(&net("0.0.0.0/0"), &net("192.0.2.1/32")));
        assert!(!net_contains(&net("0.0.0.0/0"), &net("::/0")));
        assert!(id_matches(
            &IkeId::Fqdn("East.example".into()),
            &IkeId::Fqdn("east.example".into())
        ));
        assert!(!id_matches(
            &IkeId::Fqdn("east".into()),
            &IkeId::UserFqdn("east".into())
        ));
        assert!(id_matches(&IkeId::Any, &IkeId::KeyId(vec![1])));
        let p = id_payload(&IkeId::Fqdn("west".into())).unwrap();
        assert_eq!(ike_id(&p).unwrap(), IkeId::Fqdn("west".into()));
        assert!(id_payload(&IkeId::Dn("CN=x".into())).is_err());
    }
}
