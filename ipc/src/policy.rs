//! Security policies (FreeS/WAN's "eroutes") as they travel to fwd, and the listings fwd gives back.
//! Like [`crate::sa`], everything here is untrusted input to fwd and is validated there
//! (`fwd::datapath::control`).

use crate::sa::{Direction, EncrAlg, IntegAlg, IpsecProto, SaId, SaMode, SaSpec, UdpEncap};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// An address prefix. fwd refuses a prefix longer than the family allows and clears host bits.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    pub fn host(addr: IpAddr) -> Self {
        Net { addr, prefix: if addr.is_ipv4() { 32 } else { 128 } }
    }
}

/// `10.1.0.0/16`, `2001:db8::/32`, or a bare address (the host). Host bits are kept as written.
impl std::str::FromStr for Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Net, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("{s:?}: not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0 to {max}"))?,
        };
        Ok(Net { addr, prefix })
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Inclusive port range; `0..=65535` is "any". Port 0 stands for "no port" (ICMP, fragments).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ports {
    pub lo: u16,
    pub hi: u16,
}

impl Ports {
    pub const ANY: Ports = Ports { lo: 0, hi: u16::MAX };
}

/// What traffic a policy covers, seen from this gateway (outbound: src is ours; inbound: src is the
/// peer's side).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrafficSelector {
    pub src: Net,
    pub dst: Net,
    /// IP protocol number; 0 = any.
    pub proto: u8,
    pub src_ports: Ports,
    pub dst_ports: Ports,
}

impl TrafficSelector {
    pub fn subnets(src: Net, dst: Net) -> Self {
        TrafficSelector { src, dst, proto: 0, src_ports: Ports::ANY, dst_ports: Ports::ANY }
    }
}

/// What to do with matching packets.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyAction {
    /// Outbound: apply these SAs in order, innermost first (ESP, then AH around it).
    /// Inbound: a decrypted packet matching the selector must have come through these SAs.
    Protect { sas: Vec<SaId> },
    /// `type=passthrough`: cleartext, and no route into the tunnel device.
    Pass,
    /// `type=drop`: discard silently.
    Drop,
    /// `type=reject`: discard and answer with ICMP "administratively prohibited".
    Reject,
    /// Routed, no SA yet: drop (never cleartext) and raise an acquire event to ikerd (rate-limited).
    Trap,
}

/// One policy to install.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// The connection it belongs to.
    pub conn: String,
    pub direction: Direction,
    pub selector: TrafficSelector,
    pub action: PolicyAction,
    /// Lower is tried first; among equals, the older policy wins.
    pub priority: u32,
    /// Outbound only: route `selector.dst` into the tunnel device (FreeS/WAN's `ipsec route`).
    /// A `Pass` policy with `route` gets a "throw" route instead, so its traffic leaves in the clear.
    pub route: bool,
}

/// Everything fwd holds for one connection, installed or replaced as a whole: validated completely
/// before anything changes, so nothing is ever half-applied.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnState {
    pub conn: String,
    pub sas: Vec<SaSpec>,
    pub policies: Vec<PolicySpec>,
}

/// How fwd removes a connection.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoveMode {
    /// `down`: delete the SAs; routed outbound policies turn into traps, so the conn's traffic is
    /// dropped (never sent in the clear) until `unroute`, as FreeS/WAN did.
    KeepRoute,
    /// `unroute` / conn deleted: remove SAs, policies and routes.
    Everything,
}

/// A packet flow, as in acquire events and listings.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowInfo {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

impl std::fmt::Display for FlowInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} -> {}:{} proto {}", self.src, self.src_port, self.dst, self.dst_port, self.proto)
    }
}

/// One SA as `ipsecctl look` shows it: no key bytes.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaInfo {
    pub id: SaId,
    pub conn: String,
    pub direction: Direction,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub mode: SaMode,
    pub encap: Option<UdpEncap>,
    pub encr: EncrAlg,
    pub integ: IntegAlg,
    pub esn: bool,
    pub replay_window: u32,
    pub packets: u64,
    pub bytes: u64,
    /// Inbound packets refused by this SA (ICV, replay, padding...).
    pub errors: u64,
    /// Outbound: last sequence number sent; inbound: highest accepted.
    pub seq: u64,
    pub age_secs: u64,
    /// "mature", "soft-expired" (rekey due) or "hard-expired".
    pub state: String,
}

/// One policy as `ipsecctl eroute` shows it.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    pub id: u64,
    pub conn: String,
    pub direction: Direction,
    pub selector: TrafficSelector,
    pub action: PolicyAction,
    pub priority: u32,
    pub routed: bool,
    pub packets: u64,
    pub bytes: u64,
}

/// Packets fwd dropped, by reason (`ipsecctl look` prints the non-zero ones).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCount {
    pub reason: String,
    pub packets: u64,
}

/// `ipsecctl look`: fwd's whole state, without keys.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Look {
    /// The tunnel device, e.g. `ipsec0`, and its MTU.
    pub tun: String,
    pub tun_mtu: u32,
    pub sas: Vec<SaInfo>,
    pub policies: Vec<PolicyInfo>,
    /// Routes fwd installed, as `ip route` prints them.
    pub routes: Vec<String>,
    pub drops: Vec<DropCount>,
}

/// One SA's keys for `ipsecctl sa --tcpdump-secrets` (root only; confd checks the caller).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaSecret {
    pub id: SaId,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: IpsecProto,
    pub encr: EncrAlg,
    pub enc_key: crate::sa::SecretBytes,
    pub integ: IntegAlg,
    pub auth_key: crate::sa::SecretBytes,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod net_tests {
    use super::Net;

    #[test]
    fn nets_parse_as_written() {
        let n: Net = "10.1.2.3/16".parse().unwrap();
        assert_eq!((n.addr.to_string(), n.prefix), ("10.1.2.3".into(), 16));
        assert_eq!("2001:db8::1".parse::<Net>().unwrap().prefix, 128);
        assert_eq!("192.0.2.1".parse::<Net>().unwrap(), Net::host("192.0.2.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0.0/", "x/8", "10.0.0.0/-1", ""] {
            assert!(bad.parse::<Net>().is_err(), "{bad}");
        }
    }
}
