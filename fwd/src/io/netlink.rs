//! The policy-routing table that steers protected traffic into the TUN device.
//!
//! Layout (as strongSwan's charon does it, with fwd's mark):
//! ```text
//! ip rule:   220: not from all fwmark 0x5e5e lookup 220        (IPv4 and IPv6)
//! table 220: 10.2.0.0/16 dev ferro0 proto 94 scope link         (a tunnelled subnet)
//!            throw 10.2.9.0/24 proto 94                         (a hole: back to the main table)
//! ```
//! Every packet without `SO_MARK` = [`BYPASS_MARK`] consults table 220 first; a destination covered
//! by a tunnel policy is routed into the TUN device, where fwd encrypts it. fwd's own wire sockets
//! carry the mark, so the encrypted packets (and IKE) skip the table and leave by the main table.
//! A `throw` route ends the lookup in table 220 and lets the next rules decide (bypass policies).
//!
//! fwd's routes carry protocol [`ROUTE_PROTO`] (94 = 0x5e): [`Routes::reconcile`] and
//! [`Routes::del_route`] only touch routes with that protocol, so routes an operator put in the same
//! table are left alone, and routes left by a previous fwd are recognised as ours after a restart.
//!
//! Synchronous `netlink-packet-route` + `netlink-sys` rather than `rtnetlink`: route changes happen
//! when policies change (rarely, off the packet path), each one is a single request and
//! acknowledgement on a local socket (microseconds), and a blocking call is simplest to use from
//! the lead's control code (directly or in `spawn_blocking`) and from tests that switch a thread
//! into a network namespace. `rtnetlink` would add a tokio connection task per namespace for no
//! gain. The requests and replies are the crates' typed messages; nothing is hand-encoded.
//!
//! Replies are bounded: one 64 KiB receive buffer, a 5-second receive timeout, and a cap on the
//! number of messages a dump may return.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::time::Duration;

use ipc::policy::Net;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK,
    NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RoutePreference,
    RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr as NlAddr};

use super::sysctl;
use super::BYPASS_MARK;

/// fwd's routing table (strongSwan's number too).
pub const DEFAULT_TABLE: u32 = 220;
/// Priority of the `not fwmark` rule: before `main` (32766).
pub const RULE_PRIORITY: u32 = 220;
/// Route protocol marking fwd's routes (`proto 94` in `ip route`).
pub const ROUTE_PROTO: u8 = 0x5e;

const RECV_BUF: usize = 64 * 1024;
const RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// A dump returning more messages than this is refused (bounds memory on a table gone wild).
pub const MAX_DUMP_MESSAGES: usize = 1_000_000;
const RT_TABLE_COMPAT: u8 = 252;

/// What a route in fwd's table does. (The engine has its own `RouteKind`; the lead maps them.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// Into the TUN device: the destination is protected by a tunnel.
    Tunnel,
    /// `throw`: leave this table, the main table decides (a bypass hole in a tunnelled range).
    Throw,
}

/// One route of the table, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub net: Net,
    /// `Tunnel` for a unicast route through a device with no gateway, `Throw` for a throw route,
    /// `None` for anything else.
    pub kind: Option<RouteKind>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Route protocol ([`ROUTE_PROTO`] for fwd's).
    pub proto: u8,
    /// The line `ip route show table N` prints for it.
    pub line: String,
}

impl Route {
    /// Does this route belong to fwd?
    pub fn is_ours(&self) -> bool {
        self.proto == ROUTE_PROTO
    }
}

/// What [`Routes::reconcile`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Routes added or changed (kind or device), in the order of `wanted`.
    pub added: Vec<(Net, RouteKind)>,
    /// fwd's routes removed because nothing wants them any more.
    pub removed: Vec<Net>,
}

/// Clear the host bits of `net`; `InvalidInput` for a prefix longer than its family allows.
pub fn normalize(net: Net) -> io::Result<Net> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("prefix length of {net} too long"),
        )
    };
    let addr = match net.addr {
        IpAddr::V4(a) => {
            if net.prefix > 32 {
                return Err(bad());
            }
            let mask = if net.prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(net.prefix))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            if net.prefix > 128 {
                return Err(bad());
            }
            let mask = if net.prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(net.prefix))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    Ok(Net {
        addr,
        prefix: net.prefix,
    })
}

fn family_of(addr: &IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_address(addr: IpAddr) -> RouteAddress {
    match addr {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn nl_err(e: netlink_packet_core::DecodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {e}"))
}

/// A NETLINK_ROUTE socket with the request/acknowledge and dump loops.
struct Nl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// Manager of one routing table and its `not fwmark` rules, in the network namespace of the thread
/// that created it.
pub struct Routes {
    nl: Nl,
    table: u32,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("table", &self.table)
            .finish()
    }
}

impl Nl {
    fn open() -> io::Result<Nl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&NlAddr::new(0, 0))?;
        nix::sys::socket::setsockopt(
            &sock.as_fd(),
            nix::sys::socket::sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0),
        )?;
        // Lets a dump request filter by table in the kernel (Linux ≥ 4.20; older kernels ignore
        // the filter and the table is checked here anyway).
        let _ = sock.set_netlink_get_strict_chk(true);
        Ok(Nl {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut bytes = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut bytes);
        self.sock.send(&bytes, 0)?;
        Ok(self.seq)
    }

    /// Receive the replies to request `seq`, handing each inner message to `each`, until the ACK
    /// (or error) for a request, or `NLMSG_DONE` for a dump.
    fn receive(
        &mut self,
        seq: u32,
        mut each: impl FnMut(RouteNetlinkMessage) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut messages = 0usize;
        loop {
            self.buf.clear();
            let n = match self.sock.recv(&mut self.buf, 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "netlink: no answer from the kernel",
                    ))
                }
                Err(e) => return Err(e),
            };
            let data = self.buf.get(..n.min(self.buf.len())).unwrap_or(&[]);
            let mut off = 0usize;
            while let Some(rest) = data.get(off..) {
                if rest.len() < 16 {
                    break;
                }
                let len = rest
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_ne_bytes)
                    .map(|l| l as usize)
                    .unwrap_or(0);
                if len < 16 || len > rest.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink: bad message length",
                    ));
                }
                let one = rest.get(..len).unwrap_or(&[]);
                off += (len + 3) & !3;
                let ty = one
                    .get(4..6)
                    .and_then(|b| <[u8; 2]>::try_from(b).ok())
                    .map(u16::from_ne_bytes);
                let msg_seq = one
                    .get(8..12)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_ne_bytes);
                if msg_seq != Some(seq) {
                    continue; // a late reply to an earlier request
                }
                let ty = ty.unwrap_or(0);
                let msg = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(one) {
                    Ok(m) => m,
                    // A route or rule this crate cannot parse (some attribute of another
                    // table's route) is not one of ours: skip it rather than fail the dump.
                    Err(_) if ty != NLMSG_ERROR && ty != NLMSG_DONE => continue,
                    Err(e) => return Err(nl_err(e)),
                };
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(()),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        }
                    }
                    NetlinkPayload::InnerMessage(inner) => {
                        messages += 1;
                        if messages > MAX_DUMP_MESSAGES {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "netlink: dump too long",
                            ));
                        }
                        each(inner)?;
                    }
                    _ => {}
                }
            }
        }
    }

    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        self.receive(seq, |_| Ok(()))
    }

    fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        mut each: impl FnMut(RouteNetlinkMessage),
    ) -> io::Result<()> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        self.receive(seq, |m| {
            each(m);
            Ok(())
        })
    }
}

impl Routes {
    /// Table [`DEFAULT_TABLE`].
    pub fn new() -> io::Result<Routes> {
        Routes::with_table(DEFAULT_TABLE)
    }

    /// Manage table `table` (not 0, nor the kernel's `default`/`main`/`local` 253–255).
    pub fn with_table(table: u32) -> io::Result<Routes> {
        if table == 0 || (253..=255).contains(&table) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("table {table} is reserved"),
            ));
        }
        Ok(Routes {
            nl: Nl::open()?,
            table,
        })
    }

    /// The table managed.
    pub fn table(&self) -> u32 {
        self.table
    }

    fn header_table(&self) -> u8 {
        u8::try_from(self.table).unwrap_or(RT_TABLE_COMPAT)
    }

    // ---- rules ----

    fn rule_msg(&self, family: AddressFamily) -> RuleMessage {
        let mut m = RuleMessage::default();
        m.header.family = family;
        m.header.table = self.header_table();
        m.header.action = RuleAction::ToTable;
        m.header.flags = RuleFlags::Invert;
        m.attributes = vec![
            RuleAttribute::Priority(RULE_PRIORITY),
            RuleAttribute::FwMark(BYPASS_MARK),
            RuleAttribute::FwMask(u32::MAX),
            RuleAttribute::Table(self.table),
        ];
        m
    }

    fn is_our_rule(&self, r: &RuleMessage) -> bool {
        let mut prio = None;
        let mut mark = None;
        let mut mask = u32::MAX;
        let mut table = u32::from(r.header.table);
        let mut other_selector = false;
        for a in &r.attributes {
            match a {
                RuleAttribute::Priority(p) => prio = Some(*p),
                RuleAttribute::FwMark(m) => mark = Some(*m),
                RuleAttribute::FwMask(m) => mask = *m,
                RuleAttribute::Table(t) => table = *t,
                RuleAttribute::Protocol(_) => {}
                RuleAttribute::Destination(_)
                | RuleAttribute::Source(_)
                | RuleAttribute::Iifname(_)
                | RuleAttribute::Oifname(_)
                | RuleAttribute::UidRange(_)
                | RuleAttribute::IpProtocol(_)
                | RuleAttribute::SourcePortRange(_)
                | RuleAttribute::DestinationPortRange(_) => other_selector = true,
                _ => {}
            }
        }
        prio == Some(RULE_PRIORITY)
            && mark == Some(BYPASS_MARK)
            && mask == u32::MAX
            && table == self.table
            && r.header.action == RuleAction::ToTable
            && r.header.flags.contains(RuleFlags::Invert)
            && r.header.dst_len == 0
            && r.header.src_len == 0
            && !other_selector
    }

    fn families() -> Vec<AddressFamily> {
        if sysctl::ipv6_available() {
            vec![AddressFamily::Inet, AddressFamily::Inet6]
        } else {
            vec![AddressFamily::Inet]
        }
    }

    /// How many copies of fwd's rule exist for `family`.
    fn count_rules(&mut self, family: AddressFamily) -> io::Result<usize> {
        let mut q = RuleMessage::default();
        q.header.family = family;
        let mut found = Vec::new();
        self.nl.dump(RouteNetlinkMessage::GetRule(q), |m| {
            if let RouteNetlinkMessage::NewRule(r) = m {
                found.push(r);
            }
        })?;
        Ok(found.iter().filter(|r| self.is_our_rule(r)).count())
    }

    /// Make sure the `not fwmark BYPASS_MARK lookup TABLE` rule at priority [`RULE_PRIORITY`]
    /// exists for IPv4 and for IPv6 (IPv6 skipped when the kernel has none). Idempotent: the rule
    /// is added only when absent, with `NLM_F_EXCL` (the kernel refuses an identical second rule,
    /// so two racing calls cannot make two).
    pub fn ensure_rules(&mut self) -> io::Result<()> {
        for family in Routes::families() {
            let n = self.count_rules(family)?;
            if n == 0 {
                let msg = RouteNetlinkMessage::NewRule(self.rule_msg(family));
                match self.nl.request(msg, NLM_F_CREATE | NLM_F_EXCL) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("adding ip rule ({family:?}): {e}"),
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    /// Remove fwd's rules (every copy), IPv4 and IPv6.
    pub fn remove_rules(&mut self) -> io::Result<()> {
        for family in Routes::families() {
            for _ in 0..64 {
                match self
                    .nl
                    .request(RouteNetlinkMessage::DelRule(self.rule_msg(family)), 0)
                {
                    Ok(()) => continue,
                    Err(e)
                        if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH)) =>
                    {
                        break
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    // ---- routes ----

    fn route_msg(&self, net: Net) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = family_of(&net.addr);
        m.header.destination_prefix_length = net.prefix;
        m.header.table = self.header_table();
        m.header.protocol = RouteProtocol::from(ROUTE_PROTO);
        m.attributes
            .push(RouteAttribute::Destination(route_address(net.addr)));
        m.attributes.push(RouteAttribute::Table(self.table));
        m
    }

    fn add(&mut self, net: Net, kind: RouteKind, ifindex: u32) -> io::Result<()> {
        let net = normalize(net)?;
        let mut m = self.route_msg(net);
        match kind {
            RouteKind::Tunnel => {
                m.header.kind = RouteType::Unicast;
                // IPv4 routes through a device with no gateway are link-scoped (as `ip route add`
                // makes them); IPv6 has no route scopes.
                m.header.scope = if net.addr.is_ipv4() {
                    RouteScope::Link
                } else {
                    RouteScope::Universe
                };
                m.attributes.push(RouteAttribute::Oif(ifindex));
            }
            RouteKind::Throw => {
                m.header.kind = RouteType::Throw;
                m.header.scope = RouteScope::Universe;
            }
        }
        self.nl
            .request(
                RouteNetlinkMessage::NewRoute(m),
                NLM_F_CREATE | NLM_F_REPLACE,
            )
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("route {kind:?} {net} table {}: {e}", self.table),
                )
            })
    }

    /// Route `net` into the TUN device with index `tun_ifindex` (replacing whatever route for
    /// exactly `net` the table had). Host bits of `net` are cleared.
    pub fn add_tunnel_route(&mut self, net: Net, tun_ifindex: u32) -> io::Result<()> {
        self.add(net, RouteKind::Tunnel, tun_ifindex)
    }

    /// A `throw` route for `net` (replacing whatever route for exactly `net` the table had).
    pub fn add_throw_route(&mut self, net: Net) -> io::Result<()> {
        self.add(net, RouteKind::Throw, 0)
    }

    /// Delete fwd's route for exactly `net`; `Ok(false)` if there was none (routes with another
    /// protocol are never deleted).
    pub fn del_route(&mut self, net: Net) -> io::Result<bool> {
        let net = normalize(net)?;
        let mut m = self.route_msg(net);
        m.header.scope = RouteScope::NoWhere; // any scope
        match self.nl.request(RouteNetlinkMessage::DelRoute(m), 0) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ESRCH) | Some(libc::ENOENT)) => {
                Ok(false)
            }
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("delete route {net} table {}: {e}", self.table),
            )),
        }
    }

    /// Every route of the table (IPv4 first, then IPv6, in the kernel's order), fwd's or not.
    pub fn routes(&mut self) -> io::Result<Vec<Route>> {
        let mut out = Vec::new();
        for family in Routes::families() {
            let mut q = RouteMessage::default();
            q.header.address_family = family;
            q.header.table = self.header_table();
            q.attributes.push(RouteAttribute::Table(self.table));
            let table = self.table;
            self.nl.dump(RouteNetlinkMessage::GetRoute(q), |m| {
                if let RouteNetlinkMessage::NewRoute(r) = m {
                    if route_table(&r) == table {
                        if let Some(route) = parse_route(&r) {
                            out.push(route);
                        }
                    }
                }
            })?;
        }
        Ok(out)
    }

    /// The table as `ip route show table N` and `ip -6 route show table N` print it (one line per
    /// route, trailing blanks trimmed), for `ipsecctl look`.
    pub fn list(&mut self) -> io::Result<Vec<String>> {
        Ok(self.routes()?.into_iter().map(|r| r.line).collect())
    }

    /// Make fwd's routes in the table exactly `wanted` (tunnel routes through `tun_ifindex`):
    /// add what is missing or different, delete fwd's routes nobody wants, leave the rest (and
    /// other protocols' routes) untouched. Idempotent; after a restart, routes already right stay
    /// in place (no window without them). For a net listed twice, the last entry wins.
    pub fn reconcile(
        &mut self,
        wanted: &[(Net, RouteKind)],
        tun_ifindex: u32,
    ) -> io::Result<Reconciled> {
        let mut want: HashMap<Net, RouteKind> = HashMap::with_capacity(wanted.len());
        let mut order: Vec<Net> = Vec::with_capacity(wanted.len());
        for (net, kind) in wanted {
            let net = normalize(*net)?;
            if want.insert(net, *kind).is_none() {
                order.push(net);
            }
        }
        let have: HashMap<Net, (Option<RouteKind>, Option<u32>)> = self
            .routes()?
            .into_iter()
            .filter(Route::is_ours)
            .map(|r| (r.net, (r.kind, r.oif)))
            .collect();
        let mut done = Reconciled::default();
        for net in order {
            let Some(&kind) = want.get(&net) else {
                continue;
            };
            let right = match (kind, have.get(&net)) {
                (RouteKind::Tunnel, Some((Some(RouteKind::Tunnel), oif))) => {
                    *oif == Some(tun_ifindex)
                }
                (RouteKind::Throw, Some((Some(RouteKind::Throw), _))) => true,
                _ => false,
            };
            if !right {
                self.add(net, kind, tun_ifindex)?;
                done.added.push((net, kind));
            }
        }
        for net in have.keys() {
            if !want.contains_key(net) && self.del_route(*net)? {
                done.removed.push(*net);
            }
        }
        done.removed.sort_by_key(|n| (n.addr, n.prefix));
        Ok(done)
    }
}

/// Give interface `ifindex` the IPv4 address `addr`/32 with host scope (idempotent: an existing
/// identical address is replaced). Used on the TUN device so that reverse-path filtering has an
/// address to work with (see [`super::tun`]); host scope keeps the kernel from choosing it as the
/// source of packets routed into the device.
pub fn ensure_host_address(ifindex: u32, addr: Ipv4Addr) -> io::Result<()> {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = 32;
    m.header.scope = AddressScope::Host;
    m.header.index = ifindex;
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
    m.attributes
        .push(AddressAttribute::Address(IpAddr::V4(addr)));
    Nl::open()?
        .request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("address {addr} on interface {ifindex}: {e}"),
            )
        })
}

fn route_table(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table))
}

fn proto_name(p: u8) -> String {
    let name = match p {
        0 => "unspec",
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        8 => "gated",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        18 => "keepalived",
        42 => "babel",
        99 => "openr",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
        _ => return p.to_string(),
    };
    name.to_owned()
}

fn scope_name(s: u8) -> String {
    match s {
        0 => "global".to_owned(),
        200 => "site".to_owned(),
        253 => "link".to_owned(),
        254 => "host".to_owned(),
        255 => "nowhere".to_owned(),
        n => n.to_string(),
    }
}

fn type_prefix(t: RouteType) -> Option<&'static str> {
    Some(match t {
        RouteType::Unicast => return None,
        RouteType::Local => "local",
        RouteType::Broadcast => "broadcast",
        RouteType::Anycast => "anycast",
        RouteType::Multicast => "multicast",
        RouteType::BlackHole => "blackhole",
        RouteType::Unreachable => "unreachable",
        RouteType::Prohibit => "prohibit",
        RouteType::Throw => "throw",
        RouteType::Nat => "nat",
        _ => "unspec",
    })
}

fn ifname(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .ok()
        .and_then(|c| c.into_string().ok())
        .unwrap_or_else(|| format!("if{index}"))
}

/// A route message as [`Route`], with the line `ip route` prints for it.
fn parse_route(r: &RouteMessage) -> Option<Route> {
    let h: &RouteHeader = &r.header;
    let host_len = match h.address_family {
        AddressFamily::Inet => 32,
        AddressFamily::Inet6 => 128,
        _ => return None,
    };
    let mut dst = None;
    let mut gateway = None;
    let mut oif = None;
    let mut prefsrc = None;
    let mut metric = None;
    let mut pref = None;
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = ip_of(d),
            RouteAttribute::Gateway(g) => gateway = ip_of(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::PrefSource(s) => prefsrc = ip_of(s),
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::Preference(p) => pref = Some(*p),
            _ => {}
        }
    }
    let addr = dst.unwrap_or(if host_len == 32 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    });
    let net = Net {
        addr,
        prefix: h.destination_prefix_length,
    };
    let proto = u8::from(h.protocol);
    let kind = match h.kind {
        RouteType::Throw => Some(RouteKind::Throw),
        RouteType::Unicast if gateway.is_none() && oif.is_some() => Some(RouteKind::Tunnel),
        _ => None,
    };

    let mut line = String::new();
    if let Some(t) = type_prefix(h.kind) {
        line.push_str(t);
        line.push(' ');
    }
    if h.destination_prefix_length == 0 {
        line.push_str("default ");
    } else if h.destination_prefix_length == host_len {
        line.push_str(&format!("{addr} "));
    } else {
        line.push_str(&format!("{addr}/{} ", h.destination_prefix_length));
    }
    if let Some(g) = gateway {
        line.push_str(&format!("via {g} "));
    }
    if let Some(i) = oif {
        line.push_str(&format!("dev {} ", ifname(i)));
    }
    if proto != 3 {
        line.push_str(&format!("proto {} ", proto_name(proto)));
    }
    let scope = u8::from(h.scope);
    if scope != 0 {
        line.push_str(&format!("scope {} ", scope_name(scope)));
    }
    if let Some(s) = prefsrc {
        line.push_str(&format!("src {s} "));
    }
    if let Some(m) = metric {
        line.push_str(&format!("metric {m} "));
    }
    for (flag, name) in [
        (RouteFlags::Dead, "dead"),
        (RouteFlags::Onlink, "onlink"),
        (RouteFlags::Pervasive, "pervasive"),
        (RouteFlags::Offload, "offload"),
        (RouteFlags::Trap, "trap"),
        (RouteFlags::Notify, "notify"),
        (RouteFlags::Linkdown, "linkdown"),
        (RouteFlags::Unresolved, "unresolved"),
    ] {
        if h.flags.contains(flag) {
            line.push_str(name);
            line.push(' ');
        }
    }
    if let Some(p) = pref {
        let p = match p {
            RoutePreference::Low => "low",
            RoutePreference::Medium => "medium",
            RoutePreference::High => "high",
            _ => "unknown",
        };
        line.push_str(&format!("pref {p}"));
    }
    Some(Route {
        net,
        kind,
        oif,
        proto,
        line: line.trim_end().to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn net(s: &str) -> Net {
        s.parse().unwrap()
    }

    #[test]
    fn normalize_clears_host_bits() {
        assert_eq!(normalize(net("10.1.2.3/16")).unwrap(), net("10.1.0.0/16"));
        assert_eq!(normalize(net("10.1.2.3/32")).unwrap(), net("10.1.2.3/32"));
        assert_eq!(normalize(net("10.1.2.3/0")).unwrap(), net("0.0.0.0/0"));
        assert_eq!(
            normalize(net("2001:db8:1:2::5/48")).unwrap(),
            net("2001:db8:1::/48")
        );
        assert_eq!(normalize(net("2001:db8::5/0")).unwrap(), net("::/0"));
        // Net's parser refuses /33 itself; normalize must too, for a Net that arrives over IPC.
        let too_long = Net { addr: "10.0.0.0".parse().unwrap(), prefix: 33 };
        assert!(normalize(too_long).is_err());
        assert!(normalize(Net { addr: "::".parse().unwrap(), prefix: 129 }).is_err());
    }

    #[test]
    fn reserved_tables_refused() {
        for t in [0, 253, 254, 255] {
            assert_eq!(
                Routes::with_table(t).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
    }

    fn msg(family: AddressFamily, dst: &str, kind: RouteType, oif: Option<u32>) -> RouteMessage {
        let n = net(dst);
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        m.header.destination_prefix_length = n.prefix;
        m.header.table = 220;
        m.header.protocol = RouteProtocol::from(ROUTE_PROTO);
        m.header.kind = kind;
        m.attributes
            .push(RouteAttribute::Destination(route_address(n.addr)));
        m.attributes.push(RouteAttribute::Table(220));
        if let Some(i) = oif {
            m.attributes.push(RouteAttribute::Oif(i));
        }
        m
    }

    #[test]
    fn lines_as_ip_prints_them() {
        // lo is index 1 in every namespace.
        let mut m = msg(
            AddressFamily::Inet,
            "10.50.0.0/16",
            RouteType::Unicast,
            Some(1),
        );
        m.header.scope = RouteScope::Link;
        m.header.flags = RouteFlags::Linkdown;
        let r = parse_route(&m).unwrap();
        assert_eq!(r.line, "10.50.0.0/16 dev lo proto 94 scope link linkdown");
        assert_eq!(
            (r.kind, r.oif, r.is_ours()),
            (Some(RouteKind::Tunnel), Some(1), true)
        );

        let r = parse_route(&msg(
            AddressFamily::Inet,
            "10.50.9.9/32",
            RouteType::Throw,
            None,
        ))
        .unwrap();
        assert_eq!(r.line, "throw 10.50.9.9 proto 94");
        assert_eq!(r.kind, Some(RouteKind::Throw));

        let mut m = msg(
            AddressFamily::Inet6,
            "fd50::/64",
            RouteType::Unicast,
            Some(1),
        );
        m.attributes.push(RouteAttribute::Priority(1024));
        m.attributes
            .push(RouteAttribute::Preference(RoutePreference::Medium));
        assert_eq!(
            parse_route(&m).unwrap().line,
            "fd50::/64 dev lo proto 94 metric 1024 pref medium"
        );

        let mut m = msg(
            AddressFamily::Inet,
            "0.0.0.0/0",
            RouteType::Unicast,
            Some(1),
        );
        m.header.protocol = RouteProtocol::from(4);
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(
                "192.0.2.1".parse().unwrap(),
            )));
        let r = parse_route(&m).unwrap();
        assert_eq!(r.line, "default via 192.0.2.1 dev lo proto static");
        assert_eq!((r.kind, r.is_ours()), (None, false));

        assert!(parse_route(&RouteMessage::default()).is_none());
    }
}
