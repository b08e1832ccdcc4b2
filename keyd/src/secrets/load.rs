//! Loading a secrets file and its includes, with bounds.

use std::path::{Path, PathBuf};

use super::error::{ErrorCategory, SecretsError, SecretsWarning};
use super::lexer;
use super::lookup::Secrets;
use super::parser::{self, Item};
use super::perms::ReadRefusal;
use super::source::{FileSystemSource, MemorySource, SecretsSource};

/// Largest secrets file read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Deepest include nesting (the top file is depth 0).
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Most files read in one load, includes counted.
pub const MAX_FILES: usize = 256;

/// Load `path` and its includes from the real file system, refusing any
/// file that is not a root-owned regular file of mode 0600 (or 0400).
pub fn load_secrets_file(path: &Path) -> Result<Secrets, SecretsError> {
    load_secrets(&FileSystemSource, path)
}

/// Load `path` and its includes from `source`.
pub fn load_secrets(source: &dyn SecretsSource, path: &Path) -> Result<Secrets, SecretsError> {
    let mut loader = Loader {
        source,
        secrets: Secrets::default(),
        files_read: 0,
        stack: Vec::new(),
    };
    loader.load_file(path, None)?;
    Ok(loader.secrets)
}

/// Parse one file's contents held in memory, named `path` in messages;
/// includes resolve to nothing (globs) or fail (plain names). For fuzzing
/// and tools that hold the text already.
pub fn parse_secrets_bytes(path: &Path, contents: &[u8]) -> Result<Secrets, SecretsError> {
    let source = MemorySource::new().with(path, contents);
    load_secrets(&source, path)
}

struct Loader<'s> {
    source: &'s dyn SecretsSource,
    secrets: Secrets,
    files_read: usize,
    /// Files being loaded, outermost first (for loops and depth).
    stack: Vec<PathBuf>,
}

/// The include directive that led to a file: (including file, line).
type IncludedFrom<'p> = Option<(&'p Path, usize)>;

impl Loader<'_> {
    fn load_file(
        &mut self,
        path: &Path,
        included_from: IncludedFrom<'_>,
    ) -> Result<(), SecretsError> {
        // Errors about reaching a file are reported at the include line when there is one.
        let (where_file, where_line) = included_from.unwrap_or((path, 0));
        let fail = |category: ErrorCategory, message: String| {
            SecretsError::new(where_file, where_line, category, message)
        };
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err(fail(
                ErrorCategory::Include,
                format!(
                    "includes nest deeper than {MAX_INCLUDE_DEPTH} levels at {}",
                    path.display()
                ),
            ));
        }
        if self.stack.iter().any(|open| open == path) {
            return Err(fail(
                ErrorCategory::Include,
                format!("include loop: {} includes itself", path.display()),
            ));
        }
        if self.files_read >= MAX_FILES {
            return Err(fail(
                ErrorCategory::Limit,
                format!("more than {MAX_FILES} secrets files"),
            ));
        }
        self.files_read += 1;
        // At an include line the message names the included file; for the
        // top file the location prefix already names it.
        let subject = match included_from {
            Some(_) => format!("included file {} ", path.display()),
            None => String::new(),
        };
        let contents = self
            .source
            .read(path, MAX_FILE_BYTES)
            .map_err(|refusal| match refusal {
                ReadRefusal::NotFound if included_from.is_some() => {
                    fail(ErrorCategory::Include, format!("{subject}not found"))
                }
                ReadRefusal::NotFound => fail(ErrorCategory::Io, "not found".to_string()),
                ReadRefusal::Permission(problem) if included_from.is_some() => fail(
                    ErrorCategory::Permission,
                    format!("included file {problem}"),
                ),
                ReadRefusal::Permission(problem) => fail(ErrorCategory::Permission, problem.reason),
                ReadRefusal::TooLarge { size } => fail(
                    ErrorCategory::Limit,
                    format!("{subject}is larger than {MAX_FILE_BYTES} bytes ({size} or more)"),
                ),
                ReadRefusal::Io(detail) => fail(
                    ErrorCategory::Io,
                    format!("{subject}cannot be read: {detail}"),
                ),
            })?;
        let text = std::str::from_utf8(&contents).map_err(|e| {
            let line = contents
                .get(..e.valid_up_to())
                .map_or(0, |valid| valid.iter().filter(|&&b| b == b'\n').count())
                + 1;
            SecretsError::new(path, line, ErrorCategory::Io, "not valid UTF-8")
        })?;
        let records = lexer::split_records(text).map_err(|(line, message)| {
            SecretsError::new(path, line, ErrorCategory::Syntax, message)
        })?;

        self.stack.push(path.to_path_buf());
        for record in &records {
            match parser::parse_record(path, record)? {
                Item::Psk(entry) => self.secrets.psks.push(entry),
                Item::Rsa(entry) => self.secrets.rsa_keys.push(*entry),
                Item::Skipped(warning) => self.secrets.warnings.push(warning),
                Item::Include { pattern, line } => self.include(path, line, &pattern)?,
            }
        }
        self.stack.pop();
        Ok(())
    }

    fn include(
        &mut self,
        including: &Path,
        line: usize,
        pattern: &str,
    ) -> Result<(), SecretsError> {
        let target = match including.parent() {
            Some(dir) if !Path::new(pattern).is_absolute() => dir.join(pattern),
            _ => PathBuf::from(pattern),
        };
        if !pattern.contains(['*', '?', '[']) {
            return self.load_file(&target, Some((including, line)));
        }
        let Some(target_text) = target.to_str() else {
            return Err(SecretsError::new(
                including,
                line,
                ErrorCategory::Include,
                "include pattern is not UTF-8",
            ));
        };
        let matches = self.source.glob(target_text).map_err(|message| {
            SecretsError::new(including, line, ErrorCategory::Include, message)
        })?;
        if matches.is_empty() {
            self.secrets.warnings.push(SecretsWarning {
                file: including.to_path_buf(),
                line,
                message: format!("include {target_text} matched no files"),
            });
        }
        for matched in matches {
            self.load_file(&matched, Some((including, line)))?;
        }
        Ok(())
    }
}
