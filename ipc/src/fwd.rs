//! Channel `fwd.sock`: ikerd and confd ask fwd (the privileged datapath daemon).

use crate::channel::Channel;
use crate::hello::Role;
use crate::policy::{ConnState, FlowInfo, Look, PolicySpec, RemoveMode, SaSecret};
use crate::sa::{SaId, SaSpec};
use crate::status::DaemonStatus;
use serde::{Deserialize, Serialize};

pub struct FwdChannel;

impl Channel for FwdChannel {
    const SOCKET: &'static str = "fwd.sock";
    const SERVER: Role = Role::Fwd;
    const CLIENTS: &'static [Role] = &[Role::Ikerd, Role::Confd];
    const MAX_FRAME: usize = 256 * 1024;
    /// fwd hands ikerd its bound UDP port-500 socket.
    const PASSES_FDS: bool = true;
    const MODE: u32 = 0o660;
    type Request = FwdRequest;
    type Response = FwdResponse;
    type Event = FwdEvent;
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FwdRequest {
    Ping,
    Status,
    /// ikerd only: pass me the bound IKE socket (UDP port 500). The answer carries one fd.
    IkeSocket,
    /// Install an SA (confd: manual keying, setkey; ikerd: negotiated).
    AddSa(SaSpec),
    DeleteSa(SaId),
    /// Install one policy (setkey's `spdadd`).
    AddPolicy(PolicySpec),
    /// Install or replace everything of one connection at once (checked whole before any change).
    InstallConn(ConnState),
    /// Take a connection down (`KeepRoute`) or remove it entirely (`Everything`).
    RemoveConn {
        conn: String,
        mode: RemoveMode,
    },
    /// Remove every SA (`Sa`) or every policy (`Policy`) that `by` installed: setkey's `flush` and
    /// `spdflush`. Nothing another client installed is touched.
    Flush(FlushWhat),
    /// SAs, policies, routes and counters, without keys.
    Look,
    /// The keys of every SA, for `ipsecctl sa --tcpdump-secrets`. confd only (it checks that its caller
    /// is root); refused to ikerd.
    Secrets,
    /// ikerd only: send an IKE message from fwd's NAT-T socket (UDP 4500, RFC 3948); fwd puts the
    /// 4-byte non-ESP marker in front. `local` must be an address of fwd's NAT-T socket.
    SendIke {
        local: crate::ike::Endpoint,
        remote: crate::ike::Endpoint,
        bytes: Vec<u8>,
    },
    /// confd only: the `leftupdown=`/`leftfirewall=` of every conn (the whole set, replacing the
    /// previous one). fwd runs only these scripts, never a command ikerd names.
    SetUpdowns(Vec<UpdownConfig>),
    /// ikerd only: run conn `conn`'s updown script (as configured by confd) with FreeS/WAN's
    /// `PLUTO_*` environment, which fwd builds from these typed values.
    Updown {
        conn: String,
        verb: UpdownVerb,
        env: UpdownEnv,
    },
    /// confd only: which IKE conns ikerd may install SAs and policies for, and the subnets of this
    /// host's end of each (the whole set, replacing the previous one). fwd refuses from ikerd
    /// anything outside them, and any cleartext (`Pass`) policy.
    SetIkeScopes(Vec<IkeScope>),
}

/// One IKE conn as fwd lets ikerd use it: the traffic of this host's side must be within `local`.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeScope {
    pub conn: String,
    pub local: Vec<crate::policy::Net>,
}

/// One conn's updown configuration, from ipsec.conf.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdownConfig {
    pub conn: String,
    /// `leftupdown=`: a shell command, run with `/bin/sh -c`.
    pub script: Option<String>,
    /// `leftfirewall=yes`: with no script of its own, the conn gets ferroswan's default updown,
    /// which opens the firewall's FORWARD chain for the tunnelled subnets, as FreeS/WAN's did.
    pub firewall: bool,
}

/// FreeS/WAN's `PLUTO_VERB`s. `-host` when this end protects only itself, `-client` for a subnet.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdownVerb {
    PrepareHost,
    PrepareClient,
    RouteHost,
    RouteClient,
    UnrouteHost,
    UnrouteClient,
    UpHost,
    UpClient,
    DownHost,
    DownClient,
}

impl UpdownVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdownVerb::PrepareHost => "prepare-host",
            UpdownVerb::PrepareClient => "prepare-client",
            UpdownVerb::RouteHost => "route-host",
            UpdownVerb::RouteClient => "route-client",
            UpdownVerb::UnrouteHost => "unroute-host",
            UpdownVerb::UnrouteClient => "unroute-client",
            UpdownVerb::UpHost => "up-host",
            UpdownVerb::UpClient => "up-client",
            UpdownVerb::DownHost => "down-host",
            UpdownVerb::DownClient => "down-client",
        }
    }
}

/// The values of the `PLUTO_*` environment (FreeS/WAN 2.x `_updown` interface).
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdownEnv {
    /// PLUTO_CONNECTION: the conn or instance name (`rw[1]`).
    pub instance: String,
    pub me: std::net::IpAddr,
    pub my_id: String,
    pub my_client: crate::policy::Net,
    pub my_protocol: u8,
    pub my_port: u16,
    pub my_sourceip: Option<std::net::IpAddr>,
    pub peer: std::net::IpAddr,
    pub peer_id: String,
    pub peer_client: crate::policy::Net,
    pub peer_protocol: u8,
    pub peer_port: u16,
    pub next_hop: Option<std::net::IpAddr>,
}

/// The largest IKE message relayed over port 4500 either way.
pub const MAX_IKE_RELAY: usize = 64 * 1024;

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlushWhat {
    Sas,
    Policies,
}

/// What fwd tells ikerd without being asked.
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FwdEvent {
    /// A packet hit a routed policy with no SA (rate-limited per policy): negotiate one.
    Acquire { conn: String, flow: FlowInfo },
    /// An SA reached its soft (rekey due) or hard (deleted) lifetime.
    Expire { conn: String, id: SaId, hard: bool },
    /// An IKE message arrived on fwd's NAT-T socket (UDP 4500) with the non-ESP marker; `bytes`
    /// is what follows the marker.
    IkePacket {
        local: crate::ike::Endpoint,
        remote: crate::ike::Endpoint,
        bytes: Vec<u8>,
    },
}

#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FwdResponse {
    Pong,
    Status(DaemonStatus),
    /// The fd travels with this frame (SCM_RIGHTS); `port` is the port it is bound to.
    IkeSocket {
        port: u16,
        /// fwd's NAT-T port (IKE on it is relayed with `SendIke` / `IkePacket`), if it has one.
        natt_port: Option<u16>,
    },
    /// `SendIke` was handed to the socket.
    IkeSent,
    /// `SetUpdowns` stored; `Updown` started (the script's outcome is logged by fwd).
    UpdownsSet {
        conns: u32,
    },
    UpdownStarted,
    SaAdded(SaId),
    SaDeleted(SaId),
    PolicyAdded {
        id: u64,
    },
    ConnInstalled {
        conn: String,
        sas: u32,
        policies: u32,
    },
    ConnRemoved {
        conn: String,
        sas: u32,
        policies: u32,
    },
    Flushed {
        removed: u32,
    },
    Look(Look),
    Secrets(Vec<SaSecret>),
    Denied(String),
    Error(String),
    /// `SetIkeScopes` stored.
    IkeScopesSet {
        conns: u32,
    },
}
