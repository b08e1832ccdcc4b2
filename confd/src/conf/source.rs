//! Where configuration files come from: a small trait so the parser is testable without a
//! filesystem, an in-memory implementation (tests, fuzzing) and the real filesystem.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest configuration file read (4 MiB).
pub const MAX_FILE_SIZE: u64 = 4 * 1024 * 1024;

/// Reads files and expands glob patterns.
pub trait FileSource {
    /// The whole file. Must refuse files larger than [`MAX_FILE_SIZE`].
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Files matching `pattern` (shell glob), sorted.
    fn glob(&self, pattern: &str) -> io::Result<Vec<PathBuf>>;
}

fn too_big() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("file larger than {MAX_FILE_SIZE} bytes"))
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl FileSource for RealFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory"));
        }
        let mut buf = Vec::new();
        file.take(MAX_FILE_SIZE.saturating_add(1)).read_to_end(&mut buf)?;
        if buf.len() as u64 > MAX_FILE_SIZE {
            return Err(too_big());
        }
        Ok(buf)
    }

    fn glob(&self, pattern: &str) -> io::Result<Vec<PathBuf>> {
        let paths = glob::glob(pattern).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut out: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| p.is_file()).collect();
        out.sort();
        Ok(out)
    }
}

/// Files held in memory, by path.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemFs {
    pub fn new() -> Self {
        MemFs::default()
    }
    /// Add or replace a file.
    pub fn insert(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> &mut Self {
        self.files.insert(path.into(), contents.into());
        self
    }
    /// Builder form of [`MemFs::insert`].
    pub fn with(mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        self.insert(path, contents);
        self
    }
}

impl FileSource for MemFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.files.get(path) {
            Some(data) if data.len() as u64 > MAX_FILE_SIZE => Err(too_big()),
            Some(data) => Ok(data.clone()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "No such file or directory")),
        }
    }

    fn glob(&self, pattern: &str) -> io::Result<Vec<PathBuf>> {
        let pat = glob::Pattern::new(pattern).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let opts = glob::MatchOptions { require_literal_separator: true, ..glob::MatchOptions::new() };
        Ok(self.files.keys().filter(|p| pat.matches_path_with(p, opts)).cloned().collect())
    }
}
