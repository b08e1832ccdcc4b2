//! confd: loads and validates ipsec.conf, pushes connections to ikerd and fwd, serves the control
//! socket. The daemon wiring is in `daemon`; the config language in `conf` (sans-IO); manual keying
//! and routing, translated into what fwd installs, in `manual` (sans-IO); IKE conns for ikerd,
//! with their `ike=`/`esp=` proposals, in `ike_conn` (sans-IO); `ipsecctl barf`'s dump in `barf`.
pub mod barf;
pub mod conf;
pub mod daemon;
pub mod ike_conn;
pub mod manual;
pub mod racoon;
pub mod setkey;
