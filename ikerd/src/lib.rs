//! ikerd: the unprivileged IKE daemon.
pub mod msgs;
