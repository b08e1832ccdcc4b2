//! Validation of what the control plane asks for. Every [`SaSpec`], [`PolicySpec`] and
//! [`ConnState`] is untrusted input (ikerd parses packets from the Internet and may be
//! compromised): each is checked completely and turned into the internal form the tables hold,
//! and a refusal names the conn, the SA or policy, and the field.

use crate::esp::ah::AhSa;
use crate::esp::EspSa;
use crate::sa_request;
use crate::sad::{IpsecProto as SadProto, SaKey};
use crate::spd::{self, IpNet, PortRange, Selector};
use ipc::policy::{Net, PolicyAction, PolicySpec, Ports, TrafficSelector};
use ipc::sa::{Direction, IpsecProto, SaId, SaMode, SaSpec, UdpEncap};
use std::net::IpAddr;

/// Most SAs one connection may hold.
pub const MAX_SAS_PER_CONN: usize = 64;
/// Most policies one connection may hold.
pub const MAX_POLICIES_PER_CONN: usize = 256;
/// Most SAs one policy applies (ESP, then AH around it).
pub const MAX_BUNDLE: usize = 2;
/// Longest connection name.
pub const MAX_CONN_NAME: usize = sa_request::MAX_CONN_NAME;

/// The SAD key of an SA named on the wire.
pub fn sa_key(id: &SaId) -> SaKey {
    let proto = match id.proto {
        IpsecProto::Esp => SadProto::Esp,
        IpsecProto::Ah => SadProto::Ah,
    };
    SaKey {
        spi: id.spi,
        proto,
        dst: canonical(id.dst),
    }
}

/// The wire name of an SAD key.
pub fn sa_id(key: &SaKey) -> SaId {
    let proto = match key.proto {
        SadProto::Esp => IpsecProto::Esp,
        SadProto::Ah => IpsecProto::Ah,
    };
    SaId {
        spi: key.spi,
        proto,
        dst: key.dst,
    }
}

/// IPv4-mapped IPv6 addresses are IPv4 addresses (a dual-stack socket reports them so).
pub fn canonical(a: IpAddr) -> IpAddr {
    a.to_canonical()
}

/// `esp.1234abcd@192.0.2.1`, as KLIPS named SAs.
pub fn sa_name(id: &SaId) -> String {
    sa_key(id).to_string()
}

/// The SPD's direction for a wire direction.
pub fn spd_dir(d: Direction) -> spd::Direction {
    match d {
        Direction::In => spd::Direction::In,
        Direction::Out => spd::Direction::Out,
    }
}

/// A connection name: 1 to [`MAX_CONN_NAME`] bytes, no control characters.
pub fn check_conn_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_CONN_NAME || name.chars().any(char::is_control) {
        return Err(format!(
            "connection name must be 1 to {MAX_CONN_NAME} printable characters"
        ));
    }
    Ok(())
}

/// The codec state of one SA.
pub enum Codec {
    Esp(EspSa),
    Ah(AhSa),
}

impl Codec {
    /// Packets and payload bytes processed.
    pub fn counters(&self) -> crate::esp::Counters {
        match self {
            Codec::Esp(s) => s.counters(),
            Codec::Ah(s) => s.counters(),
        }
    }
    /// Last sequence number sent.
    pub fn tx_seq(&self) -> u64 {
        match self {
            Codec::Esp(s) => s.tx_seq(),
            Codec::Ah(s) => s.tx_seq(),
        }
    }
    /// Highest sequence number received and authenticated.
    pub fn rx_top(&self) -> u64 {
        match self {
            Codec::Esp(s) => s.rx_top(),
            Codec::Ah(s) => s.rx_top(),
        }
    }
    /// Resume sending after `last_sent`.
    pub fn set_tx_seq(&mut self, last_sent: u64) {
        match self {
            Codec::Esp(s) => s.set_tx_seq(last_sent),
            Codec::Ah(s) => s.set_tx_seq(last_sent),
        }
    }
}

/// Sizes an SA adds to a packet (for the PMTU check), fixed at install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Geom {
    /// ESP: header + IV in front, padding to `align` (with the 2-byte trailer), ICV behind.
    Esp {
        hdr_iv: usize,
        align: usize,
        icv: usize,
    },
    /// AH header length over IPv4 and over IPv6.
    Ah { len4: usize, len6: usize },
}

impl Geom {
    /// Length of a payload of `len` bytes once this SA is applied (headers of this SA only).
    pub fn apply(&self, len: usize, v6: bool) -> usize {
        self.front(v6) + len + self.tail(len)
    }

    /// Bytes this SA puts in front of the payload.
    pub fn front(&self, v6: bool) -> usize {
        match *self {
            Geom::Esp { hdr_iv, .. } => hdr_iv,
            Geom::Ah { len4, len6 } => {
                if v6 {
                    len6
                } else {
                    len4
                }
            }
        }
    }

    /// Bytes this SA puts behind a payload of `len` bytes (ESP padding, trailer, ICV).
    pub fn tail(&self, len: usize) -> usize {
        match *self {
            Geom::Esp { align, icv, .. } => {
                let a = align.max(1);
                let pad = (a - (len + 2) % a) % a;
                pad + 2 + icv
            }
            Geom::Ah { .. } => 0,
        }
    }
}

/// A checked SA, keyed and ready to insert.
pub struct ValidSa {
    pub spec: SaSpec,
    pub key: SaKey,
    pub codec: Codec,
    pub geom: Geom,
}

/// Check an SA request and key it. Errors start with the SA's name.
pub fn validate_sa(spec: &SaSpec) -> Result<ValidSa, String> {
    let mut spec = spec.clone();
    spec.src = canonical(spec.src);
    spec.dst = canonical(spec.dst);
    let name = sa_name(&spec.id());
    let fail = |e: String| format!("SA {name} of conn {:?}: {e}", spec.conn);
    let (codec, geom) = match spec.proto {
        IpsecProto::Esp => {
            let sa = sa_request::build_esp(&spec).map_err(fail)?;
            let geom = Geom::Esp {
                hdr_iv: sa.headroom(),
                align: sa.suite().pad_align(),
                icv: sa.suite().icv_len(),
            };
            (Codec::Esp(sa), geom)
        }
        IpsecProto::Ah => {
            let sa = sa_request::build_ah(&spec).map_err(fail)?;
            let geom = Geom::Ah {
                len4: sa.ah_len(false),
                len6: sa.ah_len(true),
            };
            (Codec::Ah(sa), geom)
        }
    };
    let key = sa_key(&spec.id());
    Ok(ValidSa {
        spec,
        key,
        codec,
        geom,
    })
}

/// What a policy check needs to know about an SA its Protect list names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaFacts {
    pub direction: Direction,
    pub proto: IpsecProto,
    pub mode: SaMode,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub encap: Option<UdpEncap>,
}

impl SaFacts {
    pub fn of(spec: &SaSpec) -> Self {
        SaFacts {
            direction: spec.direction,
            proto: spec.proto,
            mode: spec.mode,
            src: canonical(spec.src),
            dst: canonical(spec.dst),
            encap: spec.encap,
        }
    }
}

/// The SAs a Protect policy applies, innermost first: `[ESP]`, `[AH]` or `[ESP, AH]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bundle {
    pub sas: [Option<SaKey>; MAX_BUNDLE],
}

impl Bundle {
    /// The SAs, innermost first.
    pub fn iter(&self) -> impl Iterator<Item = &SaKey> + '_ {
        self.sas.iter().flatten()
    }
    /// How many.
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    /// True for a policy that is not Protect.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A checked policy: canonical spec (host bits cleared), the SPD selector, resolved SAs.
#[derive(Debug, Clone)]
pub struct ValidPolicy {
    pub spec: PolicySpec,
    pub selector: Selector,
    pub bundle: Bundle,
}

fn net(n: &Net, what: &str) -> Result<(IpNet, Net), String> {
    let width = if n.addr.is_ipv4() { 32 } else { 128 };
    let ipn = IpNet::new(n.addr, n.prefix)
        .map_err(|_| format!("{what} prefix /{} is longer than {width} bits", n.prefix))?;
    Ok((
        ipn,
        Net {
            addr: ipn.addr(),
            prefix: ipn.prefix(),
        },
    ))
}

fn ports(p: &Ports, what: &str) -> Result<PortRange, String> {
    PortRange::new(p.lo, p.hi)
        .ok_or_else(|| format!("{what} ports {}-{}: low end above high end", p.lo, p.hi))
}

fn selector(ts: &TrafficSelector) -> Result<(Selector, TrafficSelector), String> {
    if ts.src.addr.is_ipv4() != ts.dst.addr.is_ipv4() {
        return Err(format!(
            "selector {} -> {} mixes IPv4 and IPv6",
            ts.src, ts.dst
        ));
    }
    let (src, csrc) = net(&ts.src, "source")?;
    let (dst, cdst) = net(&ts.dst, "destination")?;
    let sel = Selector {
        src,
        dst,
        proto: (ts.proto != 0).then_some(ts.proto),
        src_port: ports(&ts.src_ports, "source")?,
        dst_port: ports(&ts.dst_ports, "destination")?,
    };
    Ok((
        sel,
        TrafficSelector {
            src: csrc,
            dst: cdst,
            ..*ts
        },
    ))
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::In => "inbound",
        Direction::Out => "outbound",
    }
}

/// Check one policy. `what` names it in errors (e.g. `policy 2 of conn "west"`); `facts` finds
/// the SAs a Protect list may name (the caller decides which: installed ones, or those of the
/// same `ConnState`).
pub fn validate_policy(
    p: &PolicySpec,
    what: &str,
    facts: impl Fn(&SaId) -> Option<SaFacts>,
) -> Result<ValidPolicy, String> {
    let fail = |e: String| format!("{what}: {e}");
    check_conn_name(&p.conn).map_err(fail)?;
    let (sel, canon) = selector(&p.selector).map_err(fail)?;
    if p.route && p.direction == Direction::In {
        return Err(fail("route is for outbound policies only".into()));
    }
    let mut bundle = Bundle::default();
    match &p.action {
        PolicyAction::Protect { sas } => {
            if sas.is_empty() || sas.len() > MAX_BUNDLE {
                return Err(fail(format!(
                    "protect lists {} SAs (1 or {MAX_BUNDLE})",
                    sas.len()
                )));
            }
            let mut found: [Option<SaFacts>; MAX_BUNDLE] = [None; MAX_BUNDLE];
            for (i, id) in sas.iter().enumerate() {
                let name = sa_name(id);
                let f = facts(id).ok_or_else(|| fail(format!("SA {name} does not exist")))?;
                if f.direction != p.direction {
                    return Err(fail(format!(
                        "SA {name} is {} but the policy is {}",
                        dir_name(f.direction),
                        dir_name(p.direction)
                    )));
                }
                // Transport mode sends the packet with its own addresses: the selector must be
                // exactly the SA's two hosts.
                if f.mode == SaMode::Transport
                    && (canon.src != Net::host(f.src) || canon.dst != Net::host(f.dst))
                {
                    return Err(fail(format!(
                        "transport-mode SA {name} joins {} and {}: the selector must be these two hosts",
                        f.src, f.dst
                    )));
                }
                if let (Some(slot), Some(b)) = (found.get_mut(i), bundle.sas.get_mut(i)) {
                    *slot = Some(f);
                    *b = Some(sa_key(id));
                }
            }
            if let [Some(first), Some(second)] = found {
                let (a, b) = (sas.first(), sas.get(1));
                if a == b {
                    return Err(fail("the same SA is listed twice".into()));
                }
                if first.proto != IpsecProto::Esp || second.proto != IpsecProto::Ah {
                    return Err(fail(
                        "a bundle of two SAs is ESP then AH (innermost first)".into(),
                    ));
                }
                if first.src != second.src || first.dst != second.dst {
                    return Err(fail(
                        "the ESP and AH SAs of a bundle must join the same endpoints".into(),
                    ));
                }
                if first.mode != second.mode {
                    return Err(fail(
                        "the ESP and AH SAs of a bundle must have the same mode".into(),
                    ));
                }
                if first.encap.is_some() {
                    return Err(fail("an AH bundle cannot use UDP encapsulation".into()));
                }
            }
        }
        PolicyAction::Trap | PolicyAction::Reject if p.direction == Direction::In => {
            return Err(fail(
                format!("{:?} is for outbound policies only", p.action).to_lowercase(),
            ));
        }
        PolicyAction::Pass | PolicyAction::Drop | PolicyAction::Reject | PolicyAction::Trap => {}
    }
    let mut spec = p.clone();
    spec.selector = canon;
    Ok(ValidPolicy {
        spec,
        selector: sel,
        bundle,
    })
}

/// Name a policy for errors: `policy 3 of conn "west" (out 10.0.1.0/24 -> 10.0.2.0/24)`.
pub fn policy_name(index: Option<usize>, p: &PolicySpec) -> String {
    let dir = match p.direction {
        Direction::In => "in",
        Direction::Out => "out",
    };
    let n = index.map(|i| format!(" {}", i + 1)).unwrap_or_default();
    format!(
        "policy{n} of conn {:?} ({dir} {} -> {})",
        p.conn, p.selector.src, p.selector.dst
    )
}
