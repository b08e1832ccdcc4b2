//! Errors and warnings of the secrets loader. Every message names the file
//! and, where there is one, the line: `file:line: message`.

use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of problem an error is, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorCategory {
    /// Grammar: bad quoting, missing `:`, stray indentation, missing `}`.
    Syntax,
    /// An ID selector that cannot be understood.
    Id,
    /// A PSK that is empty or whose `0x`/`0s` encoding is bad.
    Psk,
    /// An RSA block that is malformed or whose numbers do not belong together.
    RsaKey,
    /// A secret form this implementation refuses (RSA key by file/NSS reference, unknown type).
    Unsupported,
    /// An include that is missing, loops, or nests too deep.
    Include,
    /// The file is not root-owned 0600 (or is not a regular file).
    Permission,
    /// The file is too large, or the entries too many.
    Limit,
    /// The file could not be read, or is not UTF-8.
    Io,
}

impl ErrorCategory {
    pub fn name(self) -> &'static str {
        match self {
            ErrorCategory::Syntax => "syntax",
            ErrorCategory::Id => "id",
            ErrorCategory::Psk => "psk",
            ErrorCategory::RsaKey => "rsa-key",
            ErrorCategory::Unsupported => "unsupported",
            ErrorCategory::Include => "include",
            ErrorCategory::Permission => "permission",
            ErrorCategory::Limit => "limit",
            ErrorCategory::Io => "io",
        }
    }
}

/// A load failure. `line` is 0 when the problem concerns the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsError {
    pub file: PathBuf,
    pub line: usize,
    pub category: ErrorCategory,
    pub message: String,
}

impl SecretsError {
    pub(crate) fn new(
        file: &Path,
        line: usize,
        category: ErrorCategory,
        message: impl Into<String>,
    ) -> Self {
        SecretsError {
            file: file.to_path_buf(),
            line,
            category,
            message: message.into(),
        }
    }
}

impl fmt::Display for SecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for SecretsError {}

/// Something skipped while loading (an unsupported secret type, an include
/// glob that matched nothing). Loading went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsWarning {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SecretsWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}
