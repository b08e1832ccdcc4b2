//! The keyword table: every keyword ferroswan knows, where it may appear, and whether it is
//! implemented, obsolete or unsupported. One table, looked up by name; side keywords (`left...`
//! and `right...`) are listed once by their suffix with `sided: true`.

/// Which section a keyword belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `config setup`.
    Setup,
    /// `conn NAME` and `conn %default`.
    Conn,
}

/// How a recognised keyword is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Implemented: parsed into the typed model.
    Supported,
    /// Accepted with a warning: it has no effect in ferroswan (the reason says why).
    IgnoredWarn(&'static str),
    /// An old FreeS/WAN keyword with no effect any more: warning.
    Obsolete(&'static str),
    /// Known (Libreswan or strongSwan) but not implemented, and ignoring it would change what
    /// the connection does: error.
    Unsupported(&'static str),
}

/// What kind of value a keyword takes (documentation, and the typed parser's dispatch key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Bool,
    Duration,
    Number,
    Percent,
    Addr,
    Subnet,
    SubnetList,
    Id,
    RsaKey,
    ProtoPort,
    Enum,
    NameList,
    Key,
    Spi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyword {
    pub name: &'static str,
    pub section: Section,
    /// `true` when the keyword exists as `left<name>` and `right<name>` (`name` may be empty for
    /// `left=`/`right=` themselves).
    pub sided: bool,
    pub kind: Kind,
    pub status: Status,
}

const fn kw(name: &'static str, section: Section, sided: bool, kind: Kind, status: Status) -> Keyword {
    Keyword { name, section, sided, kind, status }
}

use Kind as K;
use Section::{Conn as C, Setup as S};
use Status::{IgnoredWarn as W, Obsolete as O, Supported as Y, Unsupported as U};

const NO_CERTS: &str = "certificates are not supported yet";
const NO_CERTS_WARN: &str = "ignored: certificates are not supported yet";
const LOGGING: &str = "ignored: ferroswan daemons log through the service manager";
const NO_NATT: &str = "not supported: NAT traversal (RFC 3947) is automatic; this setting has no equivalent";
const NATT_AUTO: &str = "ignored: NAT traversal (RFC 3947) is always on and detected per peer";
const NO_XAUTH: &str = "XAUTH and mode-config are not supported";
const NO_DNSSEC: &str = "ignored: DNSSEC lookups are not supported";
const NO_OCSP: &str = "ignored: OCSP and CRLs need certificates, which are not supported yet";
const TUNING: &str = "ignored: ferroswan uses fixed values for this";
const STRONGSWAN: &str = "this is strongSwan's ipsec.conf dialect, which ferroswan does not read";
const KERNEL: &str = "kernel interface options (XFRM/VTI/marks) are not supported";
const LIBRESWAN_ONLY: &str = "this Libreswan feature is not implemented";

/// The table. Order does not matter; names are unique per (section, sided).
pub static KEYWORDS: &[Keyword] = &[
    // ----- config setup: implemented
    kw("interfaces", S, false, K::Text, Y),
    kw("plutodebug", S, false, K::NameList, Y),
    kw("klipsdebug", S, false, K::NameList, Y),
    kw("plutoload", S, false, K::NameList, Y),
    kw("plutostart", S, false, K::NameList, Y),
    kw("manualstart", S, false, K::NameList, Y),
    kw("uniqueids", S, false, K::Bool, Y),
    // ferroswan: who may use the control socket (`ipsecctl`).
    kw("ctlgroup", S, false, K::Text, Y),
    kw("ctlstatus", S, false, K::Text, Y),
    // ----- config setup: FreeS/WAN obsolete
    kw("forwardcontrol", S, false, K::Bool, O("IP forwarding is the system's business")),
    kw("rp_filter", S, false, K::Text, O("reverse-path filtering is the system's business")),
    kw("pluto", S, false, K::Bool, O("pluto is always run")),
    kw("plutowait", S, false, K::Bool, O("connections are always loaded in the background")),
    kw("prepluto", S, false, K::Text, O("no hook scripts around the daemons")),
    kw("postpluto", S, false, K::Text, O("no hook scripts around the daemons")),
    kw("fragicmp", S, false, K::Bool, O("KLIPS is gone")),
    kw("hidetos", S, false, K::Bool, O("KLIPS is gone")),
    kw("overridemtu", S, false, K::Number, O("KLIPS is gone")),
    kw("packetdefault", S, false, K::Text, O("use policy groups instead")),
    kw("dump", S, false, K::Text, O("core dumps are the service manager's business")),
    kw("dumpdir", S, false, K::Text, W("ignored: core dumps are the service manager's business")),
    kw("no_eroute_pass", S, false, K::Bool, O("KLIPS is gone")),
    kw("opportunistic", S, false, K::Text, O("use policy groups")),
    kw("syslog", S, false, K::Text, W(LOGGING)),
    kw("myid", S, false, K::Id, U("set leftid/rightid in each conn")),
    kw("nocrsend", S, false, K::Bool, W(NO_CERTS_WARN)),
    kw("strictcrlpolicy", S, false, K::Bool, W(NO_OCSP)),
    kw("crlcheckinterval", S, false, K::Duration, W(NO_OCSP)),
    kw("nat_traversal", S, false, K::Bool, W(NATT_AUTO)),
    kw("keep_alive", S, false, K::Duration, W(NATT_AUTO)),
    kw("force_keepalive", S, false, K::Bool, W(NATT_AUTO)),
    kw("disable_port_floating", S, false, K::Bool, W(NATT_AUTO)),
    kw("virtual_private", S, false, K::Text, W(NATT_AUTO)),
    // ----- config setup: Libreswan
    kw("logfile", S, false, K::Text, W(LOGGING)),
    kw("logappend", S, false, K::Bool, W(LOGGING)),
    kw("logtime", S, false, K::Bool, W(LOGGING)),
    kw("logip", S, false, K::Bool, W(LOGGING)),
    kw("logstderr", S, false, K::Bool, W(LOGGING)),
    kw("plutostderrlog", S, false, K::Text, W(LOGGING)),
    kw("audit-log", S, false, K::Bool, W(LOGGING)),
    kw("protostack", S, false, K::Text, W("ignored: the kernel interface is always XFRM")),
    kw("nhelpers", S, false, K::Number, W(TUNING)),
    kw("seedbits", S, false, K::Number, W(TUNING)),
    kw("seccomp", S, false, K::Text, W("ignored: the daemons are always sandboxed")),
    kw("ipsecdir", S, false, K::Text, W("ignored: the configuration directory is fixed")),
    kw("secretsfile", S, false, K::Text, W("ignored: the secrets file is fixed")),
    kw("nssdir", S, false, K::Text, W("ignored: NSS is not used")),
    kw("statsbin", S, false, K::Text, W(TUNING)),
    kw("ikev1-policy", S, false, K::Text, W("ignored: use keyexchange= per conn")),
    kw("listen", S, false, K::Addr, W("ignored: the daemons listen on all interfaces")),
    kw("listen-tcp", S, false, K::Bool, U("IKE over TCP is not supported")),
    kw("listen-udp", S, false, K::Bool, W(TUNING)),
    kw("ike-socket-errqueue", S, false, K::Bool, W(TUNING)),
    kw("ike-socket-bufsize", S, false, K::Number, W(TUNING)),
    kw("ddos-mode", S, false, K::Text, W(TUNING)),
    kw("ddos-ike-threshold", S, false, K::Number, W(TUNING)),
    kw("max-halfopen-ike", S, false, K::Number, W(TUNING)),
    kw("shuntlifetime", S, false, K::Duration, W(TUNING)),
    kw("expire-shunt-interval", S, false, K::Duration, W(TUNING)),
    kw("nflog-all", S, false, K::Number, W(TUNING)),
    kw("myvendorid", S, false, K::Text, W(TUNING)),
    kw("keep-alive", S, false, K::Duration, W(NATT_AUTO)),
    kw("virtual-private", S, false, K::Text, W(NATT_AUTO)),
    kw("global-redirect", S, false, K::Text, U(LIBRESWAN_ONLY)),
    kw("global-redirect-to", S, false, K::Text, U(LIBRESWAN_ONLY)),
    kw("dnssec-enable", S, false, K::Bool, W(NO_DNSSEC)),
    kw("dnssec-anchors", S, false, K::Text, W(NO_DNSSEC)),
    kw("dnssec-rootkey-file", S, false, K::Text, W(NO_DNSSEC)),
    kw("ocsp-enable", S, false, K::Bool, W(NO_OCSP)),
    kw("ocsp-strict", S, false, K::Bool, W(NO_OCSP)),
    kw("ocsp-uri", S, false, K::Text, W(NO_OCSP)),
    kw("ocsp-timeout", S, false, K::Duration, W(NO_OCSP)),
    kw("ocsp-trustname", S, false, K::Text, W(NO_OCSP)),
    kw("ocsp-method", S, false, K::Text, W(NO_OCSP)),
    kw("ocsp-cache-size", S, false, K::Number, W(NO_OCSP)),
    kw("ocsp-cache-min-age", S, false, K::Duration, W(NO_OCSP)),
    kw("ocsp-cache-max-age", S, false, K::Duration, W(NO_OCSP)),
    kw("crl-strict", S, false, K::Bool, W(NO_OCSP)),
    kw("crl-timeout", S, false, K::Duration, W(NO_OCSP)),
    kw("curl-iface", S, false, K::Text, W(NO_OCSP)),
    kw("curl-timeout", S, false, K::Duration, W(NO_OCSP)),
    kw("fipscheck", S, false, K::Bool, W(TUNING)),
    kw("debug", S, false, K::NameList, W("ignored: use plutodebug=")),
    kw("xfrmlifetime", S, false, K::Duration, W(TUNING)),
    kw("dns-resolver", S, false, K::Text, U(NO_XAUTH)),
    // ----- strongSwan config setup
    kw("charondebug", S, false, K::Text, U(STRONGSWAN)),
    kw("charonstart", S, false, K::Bool, U(STRONGSWAN)),
    kw("cachecrls", S, false, K::Bool, U(STRONGSWAN)),

    // ----- conn: per side, implemented
    kw("", C, true, K::Addr, Y),
    kw("subnet", C, true, K::Subnet, Y),
    kw("subnets", C, true, K::SubnetList, Y),
    kw("nexthop", C, true, K::Addr, Y),
    kw("id", C, true, K::Id, Y),
    kw("rsasigkey", C, true, K::RsaKey, Y),
    kw("rsasigkey2", C, true, K::RsaKey, Y),
    kw("protoport", C, true, K::ProtoPort, Y),
    kw("sourceip", C, true, K::Addr, Y),
    kw("firewall", C, true, K::Bool, Y),
    kw("updown", C, true, K::Text, Y),
    kw("espspi", C, true, K::Spi, Y),
    kw("ahspi", C, true, K::Spi, Y),
    kw("espenckey", C, true, K::Key, Y),
    kw("espauthkey", C, true, K::Key, Y),
    kw("ahkey", C, true, K::Key, Y),
    // ----- conn: per side, not implemented
    kw("cert", C, true, K::Text, U(NO_CERTS)),
    kw("ca", C, true, K::Text, U(NO_CERTS)),
    kw("certfile", C, true, K::Text, U(NO_CERTS)),
    kw("ckaid", C, true, K::Text, U("NSS key identifiers are not supported; use rsasigkey=")),
    kw("pubkey", C, true, K::Text, U("use rsasigkey=")),
    kw("sendcert", C, true, K::Text, W(NO_CERTS_WARN)),
    kw("groups", C, true, K::Text, U(NO_CERTS)),
    kw("auth", C, true, K::Enum, Y),
    kw("auth2", C, true, K::Text, U(STRONGSWAN)),
    kw("autheap", C, true, K::Text, U("EAP is not supported")),
    kw("hostaccess", C, true, K::Bool, U(STRONGSWAN)),
    kw("allowany", C, true, K::Bool, U(STRONGSWAN)),
    kw("dns", C, true, K::Text, U(STRONGSWAN)),
    kw("modecfgserver", C, true, K::Bool, U(NO_XAUTH)),
    kw("modecfgclient", C, true, K::Bool, U(NO_XAUTH)),
    kw("xauthserver", C, true, K::Bool, U(NO_XAUTH)),
    kw("xauthclient", C, true, K::Bool, U(NO_XAUTH)),
    kw("xauthusername", C, true, K::Text, U(NO_XAUTH)),
    kw("username", C, true, K::Text, U(NO_XAUTH)),
    kw("addresspool", C, true, K::Text, U(NO_XAUTH)),
    kw("cat", C, true, K::Bool, U(LIBRESWAN_ONLY)),
    kw("vti", C, true, K::Subnet, U(KERNEL)),
    kw("interface-ip", C, true, K::Subnet, U(KERNEL)),
    kw("ikeport", C, true, K::Number, U("IKE on a port other than 500 is not supported")),
    kw("groundhog", C, true, K::Text, U(LIBRESWAN_ONLY)),
    kw("natip", C, true, K::Addr, U(NO_NATT)),
    kw("sigkey", C, true, K::Text, U("use rsasigkey=")),
    kw("ecdsakey", C, true, K::Text, U("ECDSA keys are not supported")),
    kw("eddsakey", C, true, K::Text, U("EdDSA keys are not supported")),
    // ----- conn: implemented
    kw("also", C, false, K::NameList, Y),
    kw("alsoflip", C, false, K::NameList, U("alsoflip= is not supported; write the sides out")),
    kw("authby", C, false, K::Enum, Y),
    kw("auto", C, false, K::Enum, Y),
    kw("type", C, false, K::Enum, Y),
    kw("keyexchange", C, false, K::Enum, Y),
    kw("ikev2", C, false, K::Enum, Y),
    kw("ike", C, false, K::Text, Y),
    kw("esp", C, false, K::Text, Y),
    kw("phase2alg", C, false, K::Text, Y),
    kw("ah", C, false, K::Text, Y),
    kw("phase2", C, false, K::Enum, Y),
    kw("auth", C, false, K::Enum, Y),
    kw("pfs", C, false, K::Bool, Y),
    kw("ikelifetime", C, false, K::Duration, Y),
    kw("keylife", C, false, K::Duration, Y),
    kw("salifetime", C, false, K::Duration, Y),
    kw("rekey", C, false, K::Bool, Y),
    kw("rekeymargin", C, false, K::Duration, Y),
    kw("rekeyfuzz", C, false, K::Percent, Y),
    kw("keyingtries", C, false, K::Number, Y),
    kw("dpddelay", C, false, K::Duration, Y),
    kw("dpdtimeout", C, false, K::Duration, Y),
    kw("dpdaction", C, false, K::Enum, Y),
    kw("spi", C, false, K::Spi, Y),
    kw("spibase", C, false, K::Spi, Y),
    kw("espenckey", C, false, K::Key, Y),
    kw("espauthkey", C, false, K::Key, Y),
    kw("ahkey", C, false, K::Key, Y),
    kw("espreplay_window", C, false, K::Number, Y),
    kw("ahreplay_window", C, false, K::Number, Y),
    kw("compress", C, false, K::Bool, W("ignored: IPComp is not supported")),
    // ----- conn: obsolete FreeS/WAN
    kw("pfsgroup", C, false, K::Text, O("the PFS group follows the IKE proposal")),
    kw("disablearrivalcheck", C, false, K::Bool, O("arrival checks are always done by the kernel")),
    kw("failureshunt", C, false, K::Enum, W("ignored: failed negotiations always drop")),
    kw("negotiationshunt", C, false, K::Enum, W("ignored: packets are held during negotiation")),
    kw("ikelifetime_margin", C, false, K::Duration, O("use rekeymargin=")),
    // ----- conn: Libreswan, not implemented
    kw("aggressive", C, false, K::Bool, U("IKEv1 aggressive mode is not supported")),
    kw("aggrmode", C, false, K::Bool, U("IKEv1 aggressive mode is not supported")),
    kw("narrowing", C, false, K::Bool, W("ignored: traffic selectors are never narrowed")),
    kw("fragmentation", C, false, K::Text, W(TUNING)),
    kw("mobike", C, false, K::Bool, U("MOBIKE is not supported")),
    kw("esn", C, false, K::Text, W(TUNING)),
    kw("replay-window", C, false, K::Number, W(TUNING)),
    kw("retransmit-timeout", C, false, K::Duration, W(TUNING)),
    kw("retransmit-interval", C, false, K::Duration, W(TUNING)),
    kw("sendca", C, false, K::Text, W(NO_CERTS_WARN)),
    kw("require-id-on-certificate", C, false, K::Bool, W(NO_CERTS_WARN)),
    kw("ipsec-interface", C, false, K::Text, U(KERNEL)),
    kw("xfrmlifetime", C, false, K::Duration, W(TUNING)),
    kw("priority", C, false, K::Number, W(TUNING)),
    kw("mark", C, false, K::Text, U(KERNEL)),
    kw("mark-in", C, false, K::Text, U(KERNEL)),
    kw("mark-out", C, false, K::Text, U(KERNEL)),
    kw("vti-interface", C, false, K::Text, U(KERNEL)),
    kw("vti-routing", C, false, K::Bool, U(KERNEL)),
    kw("vti-shared", C, false, K::Bool, U(KERNEL)),
    kw("encapsulation", C, false, K::Text, U(NO_NATT)),
    kw("nat-keepalive", C, false, K::Bool, W(NATT_AUTO)),
    kw("nat-ikev1-method", C, false, K::Text, W(NATT_AUTO)),
    kw("tfc", C, false, K::Number, U("ESP traffic flow confidentiality padding is not supported")),
    kw("send-no-esp-tfc", C, false, K::Bool, W(TUNING)),
    kw("nic-offload", C, false, K::Text, W(TUNING)),
    kw("policy-label", C, false, K::Text, U("labelled IPsec is not supported")),
    kw("sha2-truncbug", C, false, K::Bool, U(LIBRESWAN_ONLY)),
    kw("send-vendorid", C, false, K::Bool, W(TUNING)),
    kw("reqid", C, false, K::Number, W(TUNING)),
    kw("metric", C, false, K::Number, W(TUNING)),
    kw("overlapip", C, false, K::Bool, U(LIBRESWAN_ONLY)),
    kw("connalias", C, false, K::Text, W("ignored: connection aliases are not supported")),
    kw("nflog", C, false, K::Number, W(TUNING)),
    kw("iptfs", C, false, K::Bool, U(KERNEL)),
    kw("iptfs-fragmentation", C, false, K::Bool, U(KERNEL)),
    kw("iptfs-packet-size", C, false, K::Number, U(KERNEL)),
    kw("iptfs-max-queue-size", C, false, K::Number, U(KERNEL)),
    kw("iptfs-reorder-window", C, false, K::Number, U(KERNEL)),
    kw("iptfs-init-delay", C, false, K::Duration, U(KERNEL)),
    kw("iptfs-drop-time", C, false, K::Duration, U(KERNEL)),
    kw("ppk", C, false, K::Text, U("post-quantum preshared keys are not supported")),
    kw("ppk-ids", C, false, K::Text, U("post-quantum preshared keys are not supported")),
    kw("intermediate", C, false, K::Bool, U("IKE_INTERMEDIATE is not supported")),
    kw("session-resumption", C, false, K::Bool, U(LIBRESWAN_ONLY)),
    kw("hostaddrfamily", C, false, K::Text, W("ignored: the family follows the addresses")),
    kw("clientaddrfamily", C, false, K::Text, W("ignored: the family follows the addresses")),
    kw("ikepad", C, false, K::Bool, W(TUNING)),
    kw("cisco-unity", C, false, K::Bool, U(NO_XAUTH)),
    kw("cisco-split", C, false, K::Bool, U(NO_XAUTH)),
    kw("remote-peer-type", C, false, K::Text, U(NO_XAUTH)),
    kw("nm-configured", C, false, K::Bool, W(TUNING)),
    kw("modecfgdns", C, false, K::Text, U(NO_XAUTH)),
    kw("modecfgdomains", C, false, K::Text, U(NO_XAUTH)),
    kw("modecfgbanner", C, false, K::Text, U(NO_XAUTH)),
    kw("modecfgpull", C, false, K::Bool, U(NO_XAUTH)),
    kw("xauthby", C, false, K::Text, U(NO_XAUTH)),
    kw("xauthfail", C, false, K::Text, U(NO_XAUTH)),
    kw("pam-authorize", C, false, K::Bool, U(NO_XAUTH)),
    kw("ignore-peer-dns", C, false, K::Bool, U(NO_XAUTH)),
    kw("share-lease", C, false, K::Bool, U(NO_XAUTH)),
    kw("ms-dh-downgrade", C, false, K::Bool, W(TUNING)),
    kw("dns-resolver", C, false, K::Text, U(NO_XAUTH)),
    kw("initial-contact", C, false, K::Bool, W(TUNING)),
    kw("send-redirect", C, false, K::Text, U(LIBRESWAN_ONLY)),
    kw("accept-redirect", C, false, K::Text, U(LIBRESWAN_ONLY)),
    kw("accept-redirect-to", C, false, K::Text, U(LIBRESWAN_ONLY)),
    kw("redirect-to", C, false, K::Text, U(LIBRESWAN_ONLY)),
    kw("ipsec-max-bytes", C, false, K::Number, W(TUNING)),
    kw("ipsec-max-packets", C, false, K::Number, W(TUNING)),
    kw("enable-tcp", C, false, K::Text, U("IKE over TCP is not supported")),
    kw("tcp-remoteport", C, false, K::Number, U("IKE over TCP is not supported")),
    kw("decap-dscp", C, false, K::Bool, W(TUNING)),
    kw("encap-dscp", C, false, K::Bool, W(TUNING)),
    kw("nopmtudisc", C, false, K::Bool, W(TUNING)),
    kw("reject-simultaneous-ike-auth", C, false, K::Bool, W(TUNING)),
    kw("send-supported-auth-methods", C, false, K::Bool, W(TUNING)),
    kw("clones", C, false, K::Number, U(LIBRESWAN_ONLY)),
    kw("ikev1-natt", C, false, K::Text, W(NATT_AUTO)),
    kw("nat-traversal", C, false, K::Bool, W(NATT_AUTO)),
    kw("sareftrack", C, false, K::Text, W(TUNING)),
    kw("dpdaction_restart_by_peer", C, false, K::Text, W(TUNING)),
    kw("keyingtries_retransmit", C, false, K::Number, W(TUNING)),
    kw("reauth", C, false, K::Bool, W("ignored: IKE SAs are rekeyed, not re-authenticated")),
    kw("debug", C, false, K::NameList, W("ignored: use plutodebug= in config setup")),
    // ----- strongSwan conn
    kw("keylife_margin", C, false, K::Duration, U(STRONGSWAN)),
    kw("lifetime", C, false, K::Duration, U("strongSwan's name: use keylife= or salifetime=")),
    kw("margintime", C, false, K::Duration, U("strongSwan's name: use rekeymargin=")),
    kw("lifebytes", C, false, K::Number, U(STRONGSWAN)),
    kw("lifepackets", C, false, K::Number, U(STRONGSWAN)),
    kw("marginbytes", C, false, K::Number, U(STRONGSWAN)),
    kw("marginpackets", C, false, K::Number, U(STRONGSWAN)),
    kw("closeaction", C, false, K::Text, U(STRONGSWAN)),
    kw("inactivity", C, false, K::Duration, U(STRONGSWAN)),
    kw("installpolicy", C, false, K::Bool, U(STRONGSWAN)),
    kw("eap", C, false, K::Text, U(STRONGSWAN)),
    kw("eap_identity", C, false, K::Text, U(STRONGSWAN)),
    kw("aaa_identity", C, false, K::Text, U(STRONGSWAN)),
    kw("xauth", C, false, K::Text, U(STRONGSWAN)),
    kw("xauth_identity", C, false, K::Text, U(STRONGSWAN)),
    kw("modeconfig", C, false, K::Text, U(STRONGSWAN)),
    kw("forceencaps", C, false, K::Bool, U(STRONGSWAN)),
    kw("mediation", C, false, K::Bool, U(STRONGSWAN)),
    kw("mediated_by", C, false, K::Text, U(STRONGSWAN)),
    kw("me_peerid", C, false, K::Text, U(STRONGSWAN)),
    kw("certuribase", C, false, K::Text, U(STRONGSWAN)),
    kw("crluri", C, false, K::Text, U(STRONGSWAN)),
    kw("crluri2", C, false, K::Text, U(STRONGSWAN)),
    kw("cacert", C, false, K::Text, U(STRONGSWAN)),
    kw("ocspuri", C, false, K::Text, U(STRONGSWAN)),
    kw("ocspuri2", C, false, K::Text, U(STRONGSWAN)),
];

/// The table entry for `key` used in `section`. A `left`/`right` prefix is tried for side
/// keywords. Returns the entry whatever its section (the caller checks it).
pub fn lookup(key: &str, section: Section) -> Option<&'static Keyword> {
    let key_lc = key.to_ascii_lowercase();
    let key = key_lc.as_str();
    let find = |name: &str, sided: bool| {
        let mut hits = KEYWORDS.iter().filter(|k| k.name == name && k.sided == sided);
        let first = hits.clone().find(|k| k.section == section);
        first.or_else(|| hits.next())
    };
    if let Some(k) = find(key, false) {
        return Some(k);
    }
    for prefix in ["left", "right"] {
        if let Some(rest) = key.strip_prefix(prefix) {
            if let Some(k) = find(rest, true) {
                return Some(k);
            }
        }
    }
    None
}

/// Every spelling of every keyword that is valid in `section`, for suggestions.
pub fn spellings(section: Section) -> Vec<String> {
    let mut out = Vec::new();
    for k in KEYWORDS.iter().filter(|k| k.section == section) {
        if k.sided {
            out.push(format!("left{}", k.name));
            out.push(format!("right{}", k.name));
        } else {
            out.push(k.name.to_string());
        }
    }
    out
}

/// Levenshtein distance (small strings only; callers bound the length).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len().saturating_add(1)];
    for (i, ca) in a.iter().enumerate() {
        if let Some(c0) = cur.first_mut() {
            *c0 = i.saturating_add(1);
        }
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let del = prev.get(j.saturating_add(1)).copied().unwrap_or(usize::MAX).saturating_add(1);
            let ins = cur.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            let sub = prev.get(j).copied().unwrap_or(usize::MAX).saturating_add(cost);
            if let Some(slot) = cur.get_mut(j.saturating_add(1)) {
                *slot = del.min(ins).min(sub);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

/// The closest candidate within a distance that grows with the word's length.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if word.len() > 64 {
        return None;
    }
    let limit = if word.len() <= 4 { 1 } else if word.len() <= 8 { 2 } else { 3 };
    let word_lc = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word_lc, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(lookup("leftsubnet", Section::Conn).map(|k| k.name), Some("subnet"));
        assert_eq!(lookup("right", Section::Conn).map(|k| k.name), Some(""));
        assert_eq!(lookup("esp", Section::Conn).map(|k| k.sided), Some(false));
        assert!(lookup("rightsubnett", Section::Conn).is_none());
        assert_eq!(lookup("leftcert", Section::Conn).map(|k| k.status), Some(Status::Unsupported(NO_CERTS)));
    }

    #[test]
    fn suggestions() {
        let sp = spellings(Section::Conn);
        assert_eq!(suggest("rightsubnett", sp.iter().map(String::as_str)), Some("rightsubnet"));
        assert_eq!(suggest("zzzzzzzzzzzz", sp.iter().map(String::as_str)), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
