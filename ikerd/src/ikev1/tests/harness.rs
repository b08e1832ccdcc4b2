//! Two engines in memory: a shuttle delivers each `Send` to the other side (through an optional
//! simulated NAT), answers `Keyd` actions with a fake keyd (PSK SKEYID, RSA signatures with
//! OpenSSL keys made here) and records `Install`/`Remove`.

use crate::actions::Action;
use crate::crypto::prf::Prf;
use crate::crypto::v1_keymat::{hash_i, hash_r, skeyid_psk};
use crate::ikev1::{Engine, EngineConfig};
use ipc::ike::*;
use ipc::keyd::{KeydRequest, KeydResponse};
use ipc::policy::{ConnState, Net, PolicyAction, RemoveMode};
use ipc::sa::{Direction, EncrAlg, IntegAlg, IpsecProto, SaMode, SaSpec, SecretBytes};
use openssl::pkey::Private;
use openssl::rsa::{Padding, Rsa};
use rand::SeedableRng;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn net(s: &str) -> Net {
    s.parse().unwrap()
}

/// Test RSA keys (made once per test binary).
pub fn rsa_key(i: usize) -> &'static Rsa<Private> {
    static KEYS: OnceLock<Vec<Rsa<Private>>> = OnceLock::new();
    &KEYS.get_or_init(|| (0..3).map(|_| Rsa::generate(2048).unwrap()).collect())[i]
}

pub fn pubkey_string(k: &Rsa<Private>) -> String {
    keyfmt::rfc3110::RsaPublicKey::from_components(&k.e().to_vec(), &k.n().to_vec())
        .unwrap()
        .to_rfc3110_base64()
}

pub fn ike_p(encr: IkeEncr, prf: PrfAlg, dh: DhGroup) -> IkeProposal {
    IkeProposal {
        encr,
        prf,
        integ: None,
        dh,
    }
}

pub fn aes128_sha1_2048() -> IkeProposal {
    ike_p(
        IkeEncr::AesCbc { key_bits: 128 },
        PrfAlg::HmacSha1,
        DhGroup::Modp2048,
    )
}

pub fn esp_p(encr: EncrAlg, integ: IntegAlg) -> EspProposal {
    EspProposal {
        encr,
        integ,
        pfs_group: None,
    }
}

pub fn end(host: Option<&str>, id: IkeId, subnets: &[&str]) -> IkeEnd {
    IkeEnd {
        host: host.map(ip),
        id,
        subnets: subnets.iter().map(|s| net(s)).collect(),
        proto: 0,
        port: 0,
        rsasigkeys: Vec::new(),
        nexthop: None,
        sourceip: None,
        updown: None,
        firewall: false,
    }
}

pub fn conn(name: &str, local: IkeEnd, remote: IkeEnd) -> IkeConn {
    IkeConn {
        name: name.into(),
        versions: IkeVersions {
            initiate: 1,
            accept_v1: true,
            accept_v2: false,
        },
        auth: AuthMethod::Psk,
        local,
        remote,
        mode: SaMode::Tunnel,
        proto: IpsecProto::Esp,
        ike: vec![aes128_sha1_2048()],
        esp: vec![esp_p(
            EncrAlg::AesCbc { key_bits: 128 },
            IntegAlg::HmacSha1_96,
        )],
        pfs: true,
        ike_lifetime_secs: 3600,
        sa_lifetime_secs: 1800,
        rekey: true,
        rekey_margin_secs: 540,
        rekey_fuzz_percent: 100,
        keying_tries: 0,
        dpd: None,
        auto: IkeAuto::Add,
    }
}

/// West (192.0.2.1, 10.0.1.0/24) and east (192.0.2.2, 10.0.2.0/24), IDs @west/@east.
pub fn west_east() -> (IkeConn, IkeConn) {
    let w = conn(
        "west-east",
        end(
            Some("192.0.2.1"),
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
        "west-east",
        end(
            Some("192.0.2.2"),
            IkeId::Fqdn("east".into()),
            &["10.0.2.0/24"],
        ),
        end(
            Some("192.0.2.1"),
            IkeId::Fqdn("west".into()),
            &["10.0.1.0/24"],
        ),
    );
    (w, e)
}

/// One side's fake keyd and what fwd was told.
pub struct Node {
    pub eng: Engine,
    /// Address as the node itself sees it.
    pub addr: IpAddr,
    pub psk: Vec<u8>,
    pub rsa: Option<&'static Rsa<Private>>,
    /// keyd answers Denied with this reason.
    pub keyd_denies: Option<String>,
    /// keyd never answers.
    pub keyd_silent: bool,
    pub installs: Vec<ConnState>,
    pub removes: Vec<(String, RemoveMode)>,
    /// Every fwd action in order (Install, Remove or Updown).
    pub fwd: Vec<Action>,
    pub keyd_requests: Vec<KeydRequest>,
    /// Every updown request: (conn, verb, environment).
    pub updowns: Vec<(String, ipc::fwd::UpdownVerb, ipc::fwd::UpdownEnv)>,
}

impl Node {
    pub fn new(addr: &str, seed: u64) -> Node {
        let rng = rand::rngs::StdRng::seed_from_u64(seed);
        Node {
            eng: Engine::new(EngineConfig::default(), Box::new(rng)),
            addr: ip(addr),
            psk: b"secret".to_vec(),
            rsa: None,
            keyd_denies: None,
            keyd_silent: false,
            installs: Vec::new(),
            removes: Vec::new(),
            fwd: Vec::new(),
            keyd_requests: Vec::new(),
            updowns: Vec::new(),
        }
    }

    pub fn load(&mut self, conns: Vec<IkeConn>, now: Instant) -> LoadSummary {
        self.eng
            .load_conns(IkeSettings { uniqueids: true }, conns, now)
    }

    pub fn last_install(&self, conn: &str) -> Option<&ConnState> {
        self.installs.iter().rev().find(|s| s.conn == conn)
    }

    pub fn log_has(&self, needle: &str) -> bool {
        self.eng.recent_log().iter().any(|l| l.contains(needle))
    }

    pub fn log_dump(&self) -> String {
        self.eng.recent_log().join("\n")
    }

    fn keyd(&mut self, req: KeydRequest) -> Option<Result<KeydResponse, String>> {
        self.keyd_requests.push(req.clone());
        if self.keyd_silent {
            return None;
        }
        if let Some(r) = &self.keyd_denies {
            return Some(Ok(KeydResponse::Denied(r.clone())));
        }
        Some(Ok(match req {
            KeydRequest::V1PskSkeyid(r) => KeydResponse::Skeyid(SecretBytes::new(
                skeyid_psk(Prf(r.prf), &self.psk, &r.ni, &r.nr).to_vec(),
            )),
            KeydRequest::V1RsaSign(r) => {
                let Some(k) = self.rsa else {
                    return Some(Ok(KeydResponse::Denied(format!(
                        "no RSA key for {}",
                        r.local_id
                    ))));
                };
                let prf = Prf(r.prf);
                let h = if r.initiator {
                    hash_i(
                        prf,
                        r.skeyid.expose(),
                        &r.g_xi,
                        &r.g_xr,
                        &r.cky_i,
                        &r.cky_r,
                        &r.sai_b,
                        &r.id_b,
                    )
                } else {
                    hash_r(
                        prf,
                        r.skeyid.expose(),
                        &r.g_xi,
                        &r.g_xr,
                        &r.cky_i,
                        &r.cky_r,
                        &r.sai_b,
                        &r.id_b,
                    )
                };
                let mut sig = vec![0u8; k.size() as usize];
                let n = k.private_encrypt(&h, &mut sig, Padding::PKCS1).unwrap();
                sig.truncate(n);
                KeydResponse::Signature {
                    sig,
                    pubkey: pubkey_string(k),
                }
            }
            other => KeydResponse::Error(format!("unexpected {other:?}")),
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// A datagram on the simulated wire, as the receiver will see it.
#[derive(Debug, Clone)]
pub struct Packet {
    pub to: Side,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub bytes: Vec<u8>,
}

/// A is behind a NAT: its packets leave with `public` as source, ports + 40000.
#[derive(Debug, Clone, Copy)]
pub struct Nat {
    pub public: IpAddr,
}

/// Decides which datagrams the simulated wire loses.
pub type DropFn = Box<dyn FnMut(&Packet) -> bool>;

pub struct Pair {
    pub a: Node,
    pub b: Node,
    pub now: Instant,
    pub nat: Option<Nat>,
    /// Every datagram delivered, in order.
    pub wire: Vec<Packet>,
    /// Drop datagrams for which this returns true (loss simulation).
    pub drop: Option<DropFn>,
    pub dropped: usize,
}

impl Pair {
    pub fn new(a: &str, b: &str) -> Pair {
        Pair {
            a: Node::new(a, 1),
            b: Node::new(b, 2),
            now: Instant::now(),
            nat: None,
            wire: Vec::new(),
            drop: None,
            dropped: 0,
        }
    }

    pub fn node(&mut self, s: Side) -> &mut Node {
        match s {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Translate a datagram sent by `from` into what the other side receives.
    fn translate(
        &self,
        from: Side,
        local: Endpoint,
        remote: Endpoint,
        bytes: Vec<u8>,
    ) -> Option<Packet> {
        match (from, self.nat) {
            (Side::A, Some(n)) => Some(Packet {
                to: Side::B,
                local: remote,
                remote: Endpoint::new(n.public, local.port + 40000),
                bytes,
            }),
            (Side::B, Some(n)) => {
                if remote.ip != n.public || remote.port < 40000 {
                    return None;
                }
                Some(Packet {
                    to: Side::A,
                    local: Endpoint::new(self.a.addr, remote.port - 40000),
                    remote: local,
                    bytes,
                })
            }
            (Side::A, None) => (remote.ip == self.b.addr).then_some(Packet {
                to: Side::B,
                local: remote,
                remote: local,
                bytes,
            }),
            (Side::B, None) => (remote.ip == self.a.addr).then_some(Packet {
                to: Side::A,
                local: remote,
                remote: local,
                bytes,
            }),
        }
    }

    /// Handle one side's actions; returns the datagrams it sent.
    fn drain(&mut self, s: Side) -> Vec<Packet> {
        let mut out = Vec::new();
        let now = self.now;
        loop {
            let Some(a) = self.node(s).eng.poll_action() else {
                break;
            };
            match a {
                Action::Send {
                    local,
                    remote,
                    bytes,
                } => {
                    if let Some(p) = self.translate(s, local, remote, bytes) {
                        out.push(p);
                    }
                }
                Action::Keyd { ticket, req } => {
                    let n = self.node(s);
                    if let Some(r) = n.keyd(req) {
                        n.eng.keyd_answer(ticket, r, now);
                    }
                }
                Action::Install(st) => {
                    let n = self.node(s);
                    n.fwd.push(Action::Install(st.clone()));
                    n.installs.push(st);
                }
                Action::Remove { conn, mode } => {
                    let n = self.node(s);
                    n.fwd.push(Action::Remove {
                        conn: conn.clone(),
                        mode,
                    });
                    n.removes.push((conn, mode));
                }
                Action::Updown { conn, verb, env } => {
                    let n = self.node(s);
                    n.fwd.push(Action::Updown {
                        conn: conn.clone(),
                        verb,
                        env: env.clone(),
                    });
                    n.updowns.push((conn, verb, env));
                }
            }
        }
        out
    }

    /// Deliver one packet.
    pub fn deliver(&mut self, p: &Packet) {
        let now = self.now;
        self.node(p.to)
            .eng
            .receive(p.local, p.remote, &p.bytes, now);
    }

    /// Shuttle until both sides are quiet.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            let mut pkts = self.drain(Side::A);
            pkts.extend(self.drain(Side::B));
            if pkts.is_empty() {
                return;
            }
            for p in pkts {
                if let Some(f) = self.drop.as_mut() {
                    if f(&p) {
                        self.dropped += 1;
                        continue;
                    }
                }
                self.wire.push(p.clone());
                self.deliver(&p);
            }
        }
        panic!("the exchange does not settle");
    }

    /// Move time on by `d` in steps no longer than `step`, ticking both engines and shuttling.
    pub fn advance(&mut self, d: Duration, step: Duration) {
        let end = self.now + d;
        while self.now < end {
            let next = [self.a.eng.next_deadline(), self.b.eng.next_deadline()]
                .into_iter()
                .flatten()
                .filter(|t| *t > self.now)
                .min()
                .unwrap_or(end)
                .min(self.now + step)
                .min(end);
            self.now = next.max(self.now + Duration::from_millis(1)).min(end);
            let now = self.now;
            self.a.eng.tick(now);
            self.b.eng.tick(now);
            self.run();
        }
    }

    pub fn up(&mut self, conn: &str) {
        let now = self.now;
        self.a.eng.initiate(conn, now).unwrap();
        self.run();
    }
}

/// Both sides' newest SAs of `conn_a` (on A) and `conn_b` (on B) match: A's outbound is B's
/// inbound and the other way round, with equal keys and algorithms; the selectors mirror.
pub fn assert_matching_installs(p: &Pair, conn_a: &str, conn_b: &str) -> (ConnState, ConnState) {
    let a =
        p.a.last_install(conn_a)
            .unwrap_or_else(|| panic!("A installed nothing\n{}", p.a.log_dump()))
            .clone();
    let b =
        p.b.last_install(conn_b)
            .unwrap_or_else(|| panic!("B installed nothing\n{}", p.b.log_dump()))
            .clone();
    let out_a = newest_sa(&a, Direction::Out);
    let in_a = newest_sa(&a, Direction::In);
    let out_b = newest_sa(&b, Direction::Out);
    let in_b = newest_sa(&b, Direction::In);
    for (o, i) in [(&out_a, &in_b), (&out_b, &in_a)] {
        assert_eq!(o.spi, i.spi);
        assert_eq!(o.proto, i.proto);
        assert_eq!(o.encr, i.encr);
        assert_eq!(o.integ, i.integ);
        assert_eq!(o.enc_key, i.enc_key, "encryption keys differ");
        assert_eq!(o.auth_key, i.auth_key, "integrity keys differ");
        assert_eq!(o.mode, i.mode);
        assert_eq!(o.encap.is_some(), i.encap.is_some());
        assert!(o.replay_window >= 64 && !o.esn);
        assert_eq!(o.lifetime.soft_secs, 0);
        assert!(o.lifetime.hard_secs > 0);
    }
    assert_ne!(
        (&out_a.enc_key, &out_a.auth_key),
        (&in_a.enc_key, &in_a.auth_key),
        "the two directions must have different keys"
    );
    let pol = |s: &ConnState, d: Direction| {
        s.policies
            .iter()
            .find(|p| p.direction == d && matches!(p.action, PolicyAction::Protect { .. }))
            .unwrap_or_else(|| panic!("no {d:?} protect policy in {s:?}"))
            .clone()
    };
    let (ao, ai, bo, bi) = (
        pol(&a, Direction::Out),
        pol(&a, Direction::In),
        pol(&b, Direction::Out),
        pol(&b, Direction::In),
    );
    assert!(ao.route && !ai.route);
    assert_eq!(ao.selector.src, bo.selector.dst);
    assert_eq!(ao.selector.dst, bo.selector.src);
    assert_eq!(ai.selector.src, ao.selector.dst);
    assert_eq!(bi.selector.dst, bo.selector.src);
    assert_eq!(
        ao.action,
        PolicyAction::Protect {
            sas: vec![out_a.id()]
        }
    );
    assert_eq!(
        ai.action,
        PolicyAction::Protect {
            sas: vec![in_a.id()]
        }
    );
    (a, b)
}

pub fn newest_sa(s: &ConnState, d: Direction) -> SaSpec {
    // The outbound policy names the SA in use.
    let named: Vec<_> = s
        .policies
        .iter()
        .filter(|p| p.direction == d)
        .filter_map(|p| match &p.action {
            PolicyAction::Protect { sas } => sas.first().copied(),
            _ => None,
        })
        .collect();
    s.sas
        .iter()
        .find(|x| x.direction == d && named.contains(&x.id()))
        .unwrap_or_else(|| panic!("no {d:?} SA named by a policy in {s:?}"))
        .clone()
}
