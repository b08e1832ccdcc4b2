//! fwd: the privileged datapath daemon (TUN, UDP 500/4500, raw ESP/AH, SPD/SAD).
pub mod daemon;
pub mod ike_scope;
pub mod datapath;
pub mod esp;
pub mod io;
pub mod pump;
pub mod sad;
pub mod spd;
pub mod sa_request;
pub mod updown;
