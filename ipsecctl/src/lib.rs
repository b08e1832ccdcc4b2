//! ipsecctl: the operator's client (it talks to nothing but confd's ctl.sock and the supervisor),
//! and the supervisor itself (`ipsecctl start` forks it).
pub mod commands;
pub mod compat;
pub mod config;
pub mod ike_view;
pub mod keys;
pub mod sa_view;
pub mod status_view;
pub mod supervisor;
pub mod updown_runner;
pub mod import;
