//! confd: loads and validates ipsec.conf, pushes connections to ikerd and fwd, serves the control
//! socket. The daemon wiring is in `daemon`; the config language in `conf` (sans-IO).
pub mod conf;
pub mod daemon;
