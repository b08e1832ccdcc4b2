//! ikerd: the unprivileged IKE daemon.
pub mod daemon;
pub mod msgs;
