//! ikerd: the unprivileged IKE daemon.
pub mod daemon;
pub mod io;
pub mod msgs;
pub mod actions;
pub mod crypto;
pub mod ikev1;
