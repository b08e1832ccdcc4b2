//! racoon (ipsec-tools) configurations converted to ipsec.conf and ipsec.secrets
//! (`ipsecctl import racoon --racoon-conf FILE --psk FILE [--setkey FILE]`), sans-IO.
//!
//! * [`parser`]: racoon.conf(5) into [`parser::RacoonConf`] (statements, blocks, comments,
//!   quoted strings; `file:line:` errors) and psk.txt into [`parser::PskEntry`]s.
//! * [`convert`]: [`import_racoon`] joins them with the setkey script's `spdadd` policies (parsed
//!   by [`crate::setkey`]) into one conn per outbound IPsec policy, and the PSKs into
//!   ipsec.secrets lines, with a `file:line:` note for everything racoon did that the result
//!   does not say. [`policies_from_setkey`] gives the policies a parsed setkey script leaves in
//!   the SPD (after `spdflush;`/`spddelete`), with notes for manual SAs it does not convert.

pub mod convert;
pub mod parser;

pub use convert::{import_racoon, policies_from_setkey, Imported};

#[cfg(test)]
mod tests;
