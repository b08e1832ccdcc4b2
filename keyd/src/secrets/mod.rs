//! ipsec.secrets(5): parsing, include handling, file checks and PSK lookup.
//!
//! * [`load_secrets_file`]: the daemon's entry point (real files, owner/mode checked).
//! * [`load_secrets`] with a [`MemorySource`]: tests, corpus checks (no checks).
//! * [`parse_secrets_bytes`]: one in-memory file (fuzzing).
//! * [`Secrets::lookup_psk`]: the PSK for (local ID, remote ID); the rule is in [`lookup`].
//!
//! Secrets are zeroized on drop, shown as `<redacted>` by `Debug`, and
//! compared in constant time. Every error reads `file:line: message`.
//! RSA key formats live in the `keyfmt` crate.

pub mod error;
pub mod ids;
mod lexer;
pub mod load;
pub mod lookup;
mod parser;
pub mod perms;
pub mod source;

pub use error::{ErrorCategory, SecretsError, SecretsWarning};
pub use ids::IdSelector;
pub use load::{
    load_secrets, load_secrets_file, parse_secrets_bytes, MAX_FILES, MAX_FILE_BYTES,
    MAX_INCLUDE_DEPTH,
};
pub use lookup::{MatchRank, Origin, Psk, PskEntry, PskMatch, RsaEntry, Secrets};
pub use perms::{check_owner_and_mode, PermissionProblem};
pub use source::{FileSystemSource, MemorySource, SecretsSource};
