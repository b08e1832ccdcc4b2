//! setkey(8) scripts (KAME / ipsec-tools): parsed sans-IO into [`model::Statement`]s, applied to the
//! SAs and policies confd keeps for them in fwd, rendered back in setkey's `dump`/`spddump` layout,
//! and converted to ipsec.conf manual conns (`ipsecctl import setkey`).

pub mod model;
pub mod apply;
pub mod import;
pub mod parser;
pub mod render;

#[cfg(test)]
mod tests;
