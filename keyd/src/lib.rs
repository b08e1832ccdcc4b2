//! keyd: the only reader of ipsec.secrets; performs operations on secrets, never hands them out.
pub mod daemon;
pub mod ops;
pub mod secrets;
