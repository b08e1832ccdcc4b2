//! Engine tests: two gateways A and B wired in memory with mirrored SAs and policies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod alloc;
mod control;
mod lifetimes;
mod negative;
mod policy;
mod prop;
mod roundtrip;

use super::*;
use crate::esp::ip::{self as iph, Ipv4Header, Ipv6Header};
use ipc::policy::{ConnState, Net, PolicyAction, PolicySpec, Ports, TrafficSelector};
use ipc::sa::{
    Direction, EncrAlg, IntegAlg, IpsecProto, SaId, SaLifetime, SaMode, SaSpec, SecretBytes,
    UdpEncap,
};
use std::net::IpAddr;
use std::time::Instant;

pub const CONN: &str = "a-b";

#[derive(Debug, Clone, Copy)]
pub struct Suite {
    pub name: &'static str,
    pub encr: EncrAlg,
    pub enc_len: usize,
    pub integ: IntegAlg,
    pub auth_len: usize,
}

pub const SUITES: [Suite; 5] = [
    Suite {
        name: "3des-md5",
        encr: EncrAlg::TripleDesCbc,
        enc_len: 24,
        integ: IntegAlg::HmacMd5_96,
        auth_len: 16,
    },
    Suite {
        name: "aes128-sha1",
        encr: EncrAlg::AesCbc { key_bits: 128 },
        enc_len: 16,
        integ: IntegAlg::HmacSha1_96,
        auth_len: 20,
    },
    Suite {
        name: "aes256-sha256",
        encr: EncrAlg::AesCbc { key_bits: 256 },
        enc_len: 32,
        integ: IntegAlg::HmacSha256_128,
        auth_len: 32,
    },
    Suite {
        name: "aes128gcm16",
        encr: EncrAlg::AesGcm {
            key_bits: 128,
            icv_bytes: 16,
        },
        enc_len: 20,
        integ: IntegAlg::None,
        auth_len: 0,
    },
    Suite {
        name: "null-sha1",
        encr: EncrAlg::Null,
        enc_len: 0,
        integ: IntegAlg::HmacSha1_96,
        auth_len: 20,
    },
];

pub const AES_SHA1: Suite = SUITES[1];

/// How the two gateways are set up.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub suite: Suite,
    pub mode: SaMode,
    pub esp: bool,
    pub ah: bool,
    pub encap: Option<UdpEncap>,
    pub outer_v6: bool,
    pub inner_v6: bool,
    pub lifetime: SaLifetime,
    pub replay_window: u32,
    pub esn: bool,
    pub cfg_outer_mtu: u32,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            suite: AES_SHA1,
            mode: SaMode::Tunnel,
            esp: true,
            ah: false,
            encap: None,
            outer_v6: false,
            inner_v6: false,
            lifetime: SaLifetime::default(),
            replay_window: 64,
            esn: false,
            cfg_outer_mtu: 1500,
        }
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn net(s: &str) -> Net {
    s.parse().unwrap()
}

pub fn outer(setup: &Setup) -> (IpAddr, IpAddr) {
    if setup.outer_v6 {
        (ip("2001:db8::1"), ip("2001:db8::2"))
    } else {
        (ip("192.0.2.1"), ip("192.0.2.2"))
    }
}

/// Inner addresses used in packets: (host behind A, host behind B).
pub fn hosts(setup: &Setup) -> (IpAddr, IpAddr) {
    match setup.mode {
        SaMode::Transport => outer(setup),
        SaMode::Tunnel if setup.inner_v6 => (ip("fd01::10"), ip("fd02::20")),
        SaMode::Tunnel => (ip("10.1.0.10"), ip("10.2.0.20")),
    }
}

/// (A's side, B's side) of the selectors.
pub fn nets(setup: &Setup) -> (Net, Net) {
    match setup.mode {
        SaMode::Transport => {
            let (a, b) = outer(setup);
            (Net::host(a), Net::host(b))
        }
        SaMode::Tunnel if setup.inner_v6 => (net("fd01::/48"), net("fd02::/48")),
        SaMode::Tunnel => (net("10.1.0.0/16"), net("10.2.0.0/16")),
    }
}

pub fn key(seed: u32, len: usize) -> SecretBytes {
    SecretBytes::new(
        (0..len)
            .map(|i| (seed as usize * 7 + i * 13 + 1) as u8)
            .collect(),
    )
}

pub const SPI_ESP_AB: u32 = 0x1000;
pub const SPI_AH_AB: u32 = 0x1001;
pub const SPI_ESP_BA: u32 = 0x2000;
pub const SPI_AH_BA: u32 = 0x2001;

/// One SA of the pair; `ab` = from A to B. `from_a` = as gateway A sees it.
pub fn sa_spec(setup: &Setup, proto: IpsecProto, ab: bool, from_a: bool) -> SaSpec {
    let (a, b) = outer(setup);
    let (src, dst) = if ab { (a, b) } else { (b, a) };
    let direction = if ab == from_a {
        Direction::Out
    } else {
        Direction::In
    };
    let spi = match (proto, ab) {
        (IpsecProto::Esp, true) => SPI_ESP_AB,
        (IpsecProto::Ah, true) => SPI_AH_AB,
        (IpsecProto::Esp, false) => SPI_ESP_BA,
        (IpsecProto::Ah, false) => SPI_AH_BA,
    };
    let s = setup.suite;
    let (encr, enc_key, integ, auth_key, encap) = match proto {
        IpsecProto::Esp => (
            s.encr,
            key(spi, s.enc_len),
            s.integ,
            key(spi + 1, s.auth_len),
            setup.encap,
        ),
        IpsecProto::Ah => (
            EncrAlg::Null,
            SecretBytes::new(vec![]),
            IntegAlg::HmacSha256_128,
            key(spi + 2, 32),
            None,
        ),
    };
    SaSpec {
        conn: CONN.into(),
        direction,
        proto,
        spi,
        src,
        dst,
        mode: setup.mode,
        encap,
        encr,
        enc_key,
        integ,
        auth_key,
        esn: setup.esn,
        replay_window: setup.replay_window,
        lifetime: setup.lifetime,
    }
}

pub fn id_of(setup: &Setup, proto: IpsecProto, ab: bool) -> SaId {
    sa_spec(setup, proto, ab, true).id()
}

fn bundle(setup: &Setup, ab: bool) -> Vec<SaId> {
    let mut v = vec![];
    if setup.esp {
        v.push(id_of(setup, IpsecProto::Esp, ab));
    }
    if setup.ah {
        v.push(id_of(setup, IpsecProto::Ah, ab));
    }
    v
}

pub fn policy(
    direction: Direction,
    src: Net,
    dst: Net,
    action: PolicyAction,
    route: bool,
) -> PolicySpec {
    PolicySpec {
        conn: CONN.into(),
        direction,
        selector: TrafficSelector::subnets(src, dst),
        action,
        priority: 100,
        route,
    }
}

/// The conn as gateway A (`from_a`) or B sees it.
pub fn conn_state(setup: &Setup, from_a: bool) -> ConnState {
    let mut sas = vec![];
    for ab in [true, false] {
        if setup.esp {
            sas.push(sa_spec(setup, IpsecProto::Esp, ab, from_a));
        }
        if setup.ah {
            sas.push(sa_spec(setup, IpsecProto::Ah, ab, from_a));
        }
    }
    let (an, bn) = nets(setup);
    let (mine, theirs) = if from_a { (an, bn) } else { (bn, an) };
    let out_ab = from_a;
    let policies = vec![
        policy(
            Direction::Out,
            mine,
            theirs,
            PolicyAction::Protect {
                sas: bundle(setup, out_ab),
            },
            true,
        ),
        policy(
            Direction::In,
            theirs,
            mine,
            PolicyAction::Protect {
                sas: bundle(setup, !out_ab),
            },
            false,
        ),
    ];
    ConnState {
        conn: CONN.into(),
        sas,
        policies,
    }
}

pub fn engine(setup: &Setup) -> Engine {
    Engine::new(EngineConfig {
        outer_mtu: setup.cfg_outer_mtu,
        ..EngineConfig::default()
    })
}

/// Gateways A and B with the conn installed, at `now`.
pub fn pair_at(setup: &Setup, now: Instant) -> (Engine, Engine) {
    let a = engine(setup);
    let b = engine(setup);
    assert_eq!(
        a.install_conn(Origin::Ikerd, &conn_state(setup, true), now)
            .unwrap()
            .0 as usize,
        conn_state(setup, true).sas.len()
    );
    b.install_conn(Origin::Ikerd, &conn_state(setup, false), now)
        .unwrap();
    (a, b)
}

pub fn pair(setup: &Setup) -> (Engine, Engine) {
    pair_at(setup, Instant::now())
}

// ------------------------------------------------------------------ packets

pub fn udp_payload(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let mut l4 = vec![0u8; 8 + payload_len];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    for (i, b) in l4[8..].iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    l4
}

/// An IP packet with the given upper-layer bytes. IPv4: id, flags (0x4000 = DF), TTL as given.
pub fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    l4: &[u8],
    id: u16,
    flags: u16,
    ttl: u8,
) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = vec![0u8; 20 + l4.len()];
            Ipv4Header {
                tos: 0,
                total_len: p.len() as u16,
                id,
                flags_frag: flags,
                ttl,
                protocol: proto,
                src: s.octets(),
                dst: d.octets(),
            }
            .write(&mut p)
            .unwrap();
            p[20..].copy_from_slice(l4);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = vec![0u8; 40 + l4.len()];
            Ipv6Header {
                traffic_class: 0,
                flow_label: 0,
                payload_len: l4.len() as u16,
                next_header: proto,
                hop_limit: ttl,
                src: s.octets(),
                dst: d.octets(),
            }
            .write(&mut p)
            .unwrap();
            p[40..].copy_from_slice(l4);
            p
        }
        _ => panic!("mixed families"),
    }
}

/// A UDP packet of `total` bytes in all (at least the headers) from `src` to `dst`.
pub fn udp_total(src: IpAddr, dst: IpAddr, total: usize, df: bool) -> Vec<u8> {
    let hl = if src.is_ipv4() { 20 } else { 40 };
    ip_packet(
        src,
        dst,
        17,
        &udp_payload(1111, 2222, total - hl - 8),
        0x1234,
        if df { 0x4000 } else { 0 },
        63,
    )
}

/// A UDP packet as transport mode rebuilds it on the far side (TTL 64, id 0, no flags).
pub fn udp_plain(src: IpAddr, dst: IpAddr, payload_len: usize) -> Vec<u8> {
    ip_packet(
        src,
        dst,
        17,
        &udp_payload(1111, 2222, payload_len),
        0,
        0,
        64,
    )
}

pub fn in_buf(pkt: &[u8]) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut buf = vec![0u8; HEADROOM + pkt.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    (buf, HEADROOM..HEADROOM + pkt.len())
}

/// A packet on the wire between the gateways.
#[derive(Debug, Clone)]
pub struct Wire {
    pub rx: Rx,
    pub bytes: Vec<u8>,
}

/// What A's outbound path made of `pkt`, with the buffer.
pub fn out(a: &Engine, pkt: &[u8], now: Instant) -> (Outbound, Vec<u8>) {
    let (mut buf, r) = in_buf(pkt);
    let o = a.outbound(&mut buf, r, now);
    (o, buf)
}

pub fn to_wire(o: &Outbound, buf: &[u8]) -> Option<Wire> {
    match o {
        Outbound::Esp {
            src,
            dst,
            encap,
            range,
        } => Some(Wire {
            rx: Rx {
                src: *src,
                dst: *dst,
                proto: if encap.is_some() { 17 } else { 50 },
                udp: encap.map(|e| (e.src_port, e.dst_port)),
            },
            bytes: buf[range.clone()].to_vec(),
        }),
        Outbound::Ip { range } => {
            let p = &buf[range.clone()];
            let (src, dst, proto) = if p[0] >> 4 == 4 {
                let (h, _) = Ipv4Header::parse(p).expect("outer IPv4 header with a valid checksum");
                (IpAddr::from(h.src), IpAddr::from(h.dst), h.protocol)
            } else {
                let h = Ipv6Header::parse(p).unwrap();
                (IpAddr::from(h.src), IpAddr::from(h.dst), h.next_header)
            };
            Some(Wire {
                rx: Rx {
                    src,
                    dst,
                    proto,
                    udp: None,
                },
                bytes: p.to_vec(),
            })
        }
        _ => None,
    }
}

pub fn seal(a: &Engine, pkt: &[u8], now: Instant) -> Wire {
    let (o, buf) = out(a, pkt, now);
    to_wire(&o, &buf).unwrap_or_else(|| panic!("not sealed: {o:?}"))
}

pub fn deliver(b: &Engine, w: &Wire, now: Instant) -> Result<Vec<u8>, DropReason> {
    let (mut buf, r) = in_buf(&w.bytes);
    match b.inbound(w.rx, &mut buf, r, now) {
        Inbound::ToTun { range } => Ok(buf[range].to_vec()),
        Inbound::Drop(r) => Err(r),
    }
}

pub fn transfer(a: &Engine, b: &Engine, pkt: &[u8], now: Instant) -> Result<Vec<u8>, DropReason> {
    deliver(b, &seal(a, pkt, now), now)
}

pub fn sa_info(e: &Engine, spi: u32) -> Option<ipc::policy::SaInfo> {
    e.look(Instant::now())
        .sas
        .into_iter()
        .find(|s| s.id.spi == spi)
}

pub fn drops(e: &Engine, r: DropReason) -> u64 {
    e.drop_counts()
        .into_iter()
        .find(|d| d.reason == r.name())
        .map_or(0, |d| d.packets)
}

pub fn any_ports() -> Ports {
    Ports::ANY
}

/// Keep the helpers used only by some modules from warning.
#[allow(dead_code)]
fn _uses() {
    let _ = (iph::checksum(&[]), any_ports());
}
