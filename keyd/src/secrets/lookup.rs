//! The loaded secrets and the choice of a PSK for a pair of IDs.
//!
//! # Which PSK is chosen
//!
//! An entry lists a set of ID selectors; it applies to a connection when the
//! local ID and the remote ID are both in the set, directly or through a
//! wildcard. Among applicable entries the best rank wins:
//!
//! 1. [`MatchRank::Exact`]: both IDs are named in the entry (`@west @east : PSK`).
//! 2. [`MatchRank::OneSideWildcard`]: one ID is named, the other is covered
//!    by `%any`/`%any6` (`@east %any : PSK`, `%any 192.0.2.7 : PSK`).
//! 3. [`MatchRank::LocalOnly`]: the entry names exactly one ID, the local one
//!    (`@east : PSK`), so it serves any peer of that local ID.
//! 4. [`MatchRank::WildcardOnly`]: both IDs are covered only by wildcards
//!    (`%any %any : PSK`, `%any : PSK`).
//! 5. [`MatchRank::Default`]: an entry without IDs (`: PSK "…"`).
//!
//! Selectors of an entry that match neither ID do not disqualify it (an
//! entry `@a @b @c` serves a–b, a–c and b–c). On a tie the entry loaded
//! first wins (file order, included files in place of their `include`);
//! if a tied entry holds a different secret the match is flagged
//! `ambiguous` (compared in constant time) so the caller can warn, as pluto
//! does. This follows pluto's rule (exact pair > one side + default peer >
//! default) with wildcards ranked below named IDs rather than equal to them.

use std::path::PathBuf;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::error::SecretsWarning;
use super::ids::IdSelector;

/// A pre-shared key: zeroized on drop, compared in constant time, never printed.
#[derive(Clone)]
pub struct Psk(Zeroizing<Vec<u8>>);

impl Psk {
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        Psk(bytes)
    }

    /// The secret bytes, for the key derivation that needs them.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for Psk {
    /// Constant time in the contents for equal lengths (the length itself is not hidden).
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Eq for Psk {}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where an entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone)]
pub struct PskEntry {
    pub ids: Vec<IdSelector>,
    pub secret: Psk,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct RsaEntry {
    pub ids: Vec<IdSelector>,
    pub key: keyfmt::RsaPrivateKey,
    pub origin: Origin,
}

/// How well an entry matched; greater is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchRank {
    Default,
    WildcardOnly,
    LocalOnly,
    OneSideWildcard,
    Exact,
}

#[derive(Debug, Clone, Copy)]
pub struct PskMatch<'a> {
    pub entry: &'a PskEntry,
    pub rank: MatchRank,
    /// Another entry of the same rank holds a different secret.
    pub ambiguous: bool,
}

/// Everything loaded from ipsec.secrets and its includes.
#[derive(Debug, Default)]
pub struct Secrets {
    pub(crate) psks: Vec<PskEntry>,
    pub(crate) rsa_keys: Vec<RsaEntry>,
    pub(crate) warnings: Vec<SecretsWarning>,
}

impl Secrets {
    pub fn psk_count(&self) -> usize {
        self.psks.len()
    }

    pub fn rsa_count(&self) -> usize {
        self.rsa_keys.len()
    }

    pub fn psk_entries(&self) -> &[PskEntry] {
        &self.psks
    }

    pub fn rsa_entries(&self) -> &[RsaEntry] {
        &self.rsa_keys
    }

    /// Entries skipped while loading, with file:line.
    pub fn warnings(&self) -> &[SecretsWarning] {
        &self.warnings
    }

    /// The PSK for a connection between `local` and `remote` (rule in the module docs).
    pub fn lookup_psk(&self, local: &IdSelector, remote: &IdSelector) -> Option<PskMatch<'_>> {
        let mut best: Option<PskMatch<'_>> = None;
        for entry in &self.psks {
            let Some(rank) = rank_entry(&entry.ids, local, remote) else {
                continue;
            };
            match &mut best {
                Some(current) if rank < current.rank => {}
                Some(current) if rank == current.rank => {
                    if current.entry.secret != entry.secret {
                        current.ambiguous = true;
                    }
                }
                _ => {
                    best = Some(PskMatch {
                        entry,
                        rank,
                        ambiguous: false,
                    })
                }
            }
        }
        best
    }

    /// The RSA key to sign with as `local`: the first entry naming `local`,
    /// else the first entry without IDs (pluto lets the local side alone
    /// pick a private key).
    pub fn rsa_key_for_local_id(&self, local: &IdSelector) -> Option<&RsaEntry> {
        self.rsa_keys
            .iter()
            .find(|entry| entry.ids.iter().any(|s| s.matches_exactly(local)))
            .or_else(|| self.rsa_keys.iter().find(|entry| entry.ids.is_empty()))
    }

    /// The private key whose public half is `public`.
    pub fn rsa_key_for(&self, public: &keyfmt::RsaPublicKey) -> Option<&RsaEntry> {
        self.rsa_keys
            .iter()
            .find(|entry| entry.key.public_key() == public)
    }
}

/// Rank one entry for (`local`, `remote`), or `None` if it does not apply.
pub fn rank_entry(
    ids: &[IdSelector],
    local: &IdSelector,
    remote: &IdSelector,
) -> Option<MatchRank> {
    if ids.is_empty() {
        return Some(MatchRank::Default);
    }
    let local_named = ids.iter().any(|s| s.matches_exactly(local));
    let remote_named = ids.iter().any(|s| s.matches_exactly(remote));
    let local_wild = ids.iter().any(|s| s.covers_as_wildcard(local));
    let remote_wild = ids.iter().any(|s| s.covers_as_wildcard(remote));
    if local_named && remote_named {
        Some(MatchRank::Exact)
    } else if (local_named && remote_wild) || (remote_named && local_wild) {
        Some(MatchRank::OneSideWildcard)
    } else if local_named && ids.len() == 1 {
        Some(MatchRank::LocalOnly)
    } else if local_wild && remote_wild {
        Some(MatchRank::WildcardOnly)
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<IdSelector> {
        text.split_whitespace()
            .map(|t| IdSelector::parse(t).unwrap())
            .collect()
    }
    fn id(text: &str) -> IdSelector {
        IdSelector::parse(text).unwrap()
    }

    #[test]
    fn ranks() {
        let (east, west) = (id("@east"), id("@west"));
        assert_eq!(
            rank_entry(&ids("@west @east"), &east, &west),
            Some(MatchRank::Exact)
        );
        assert_eq!(
            rank_entry(&ids("@east %any"), &east, &west),
            Some(MatchRank::OneSideWildcard)
        );
        assert_eq!(
            rank_entry(&ids("%any @west"), &east, &west),
            Some(MatchRank::OneSideWildcard)
        );
        assert_eq!(
            rank_entry(&ids("@east"), &east, &west),
            Some(MatchRank::LocalOnly)
        );
        assert_eq!(rank_entry(&ids("@west"), &east, &west), None);
        assert_eq!(
            rank_entry(&ids("%any %any"), &east, &west),
            Some(MatchRank::WildcardOnly)
        );
        assert_eq!(rank_entry(&[], &east, &west), Some(MatchRank::Default));
        assert_eq!(rank_entry(&ids("@east @road"), &east, &west), None);
        assert_eq!(
            rank_entry(&ids("@east @road @west"), &east, &west),
            Some(MatchRank::Exact)
        );
        let v6 = id("2001:db8::2");
        assert_eq!(rank_entry(&ids("@east %any"), &east, &v6), None);
        assert_eq!(
            rank_entry(&ids("@east %any6"), &east, &v6),
            Some(MatchRank::OneSideWildcard)
        );
    }

    #[test]
    fn psk_debug_and_eq() {
        let a = Psk::new(Zeroizing::new(b"secret".to_vec()));
        let b = Psk::new(Zeroizing::new(b"secret".to_vec()));
        let c = Psk::new(Zeroizing::new(b"secreT".to_vec()));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(format!("{a:?}"), "<redacted>");
    }
}
