//! Where the loader reads files from: the real file system (with the
//! owner/mode checks) or memory (tests, fuzzing, corpus checks; no checks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use glob::MatchOptions;
use zeroize::Zeroizing;

use super::perms::{self, ReadRefusal};

/// Shell-like include globbing: `*` does not cross `/`, and does not match a leading dot.
const GLOB_OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

/// A way to read secrets files.
pub trait SecretsSource {
    /// Read one file of at most `max_bytes`.
    fn read(&self, path: &Path, max_bytes: u64) -> Result<Zeroizing<Vec<u8>>, ReadRefusal>;
    /// Expand an include glob into the matching file names, sorted.
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String>;
}

/// The real file system. Every file read must be a regular file owned by
/// root with mode 0600 or 0400 (see [`perms::check_owner_and_mode`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct FileSystemSource;

impl SecretsSource for FileSystemSource {
    fn read(&self, path: &Path, max_bytes: u64) -> Result<Zeroizing<Vec<u8>>, ReadRefusal> {
        perms::read_checked(path, max_bytes)
    }

    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let paths = glob::glob_with(pattern, GLOB_OPTIONS)
            .map_err(|e| format!("bad include pattern: {e}"))?;
        let mut found = Vec::new();
        for entry in paths {
            found.push(
                entry.map_err(|e| format!("cannot read {}: {}", e.path().display(), e.error()))?,
            );
        }
        found.sort();
        Ok(found)
    }
}

/// Files held in memory, keyed by path. No ownership or mode checks.
#[derive(Default)]
pub struct MemorySource {
    files: BTreeMap<PathBuf, Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySource")
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) {
        self.files
            .insert(path.into(), Zeroizing::new(contents.into()));
    }

    pub fn with(mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        self.insert(path, contents);
        self
    }
}

impl SecretsSource for MemorySource {
    fn read(&self, path: &Path, max_bytes: u64) -> Result<Zeroizing<Vec<u8>>, ReadRefusal> {
        let contents = self.files.get(path).ok_or(ReadRefusal::NotFound)?;
        perms::read_bounded(contents.as_slice(), max_bytes)
    }

    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let pattern =
            glob::Pattern::new(pattern).map_err(|e| format!("bad include pattern: {e}"))?;
        Ok(self
            .files
            .keys()
            .filter(|path| pattern.matches_path_with(path, GLOB_OPTIONS))
            .cloned()
            .collect())
    }
}
