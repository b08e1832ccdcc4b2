//! Orientation as pluto does it: which end of a conn is this host?

use super::error::{Category, ConfError};
use super::model::Conn;
use super::values::HostAddr;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    /// `left` is this host.
    LeftIsLocal,
    /// `right` is this host.
    RightIsLocal,
    /// Neither end is a local address: the conn is kept but cannot be used (log one line).
    Unoriented,
}

fn is_local(host: &HostAddr, local_addrs: &[IpAddr]) -> bool {
    match host {
        HostAddr::Ip(ip) => local_addrs.contains(ip),
        // pluto resolves %defaultroute to the address of the default-route interface
        HostAddr::DefaultRoute => true,
        HostAddr::Any | HostAddr::Opportunistic | HostAddr::Group | HostAddr::Name(_) => false,
    }
}

/// Decide which end is local, given this host's interface addresses. DNS names must be resolved
/// by the caller first (they never count as local here). Both ends local is an error.
pub fn orient(conn: &Conn, local_addrs: &[IpAddr]) -> Result<Orientation, ConfError> {
    match (is_local(&conn.left.host, local_addrs), is_local(&conn.right.host, local_addrs)) {
        (true, true) => Err(ConfError::new(
            &conn.location,
            Category::Orientation,
            format!(
                "conn `{}`: both left={} and right={} are addresses of this host",
                conn.name, conn.left.host, conn.right.host
            ),
        )),
        (true, false) => Ok(Orientation::LeftIsLocal),
        (false, true) => Ok(Orientation::RightIsLocal),
        (false, false) => Ok(Orientation::Unoriented),
    }
}
