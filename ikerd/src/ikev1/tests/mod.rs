//! Tests of the engine: two engines wired in memory, with a fake keyd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod harness;

mod corpus;
mod crypto_kat;
mod exchanges;
mod failures;
mod lifecycle;
mod robustness;
mod updown;
