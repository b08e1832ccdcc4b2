//! Errors and warnings of the ipsec.conf language. Every one names a file and a line.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of problem a diagnostic reports; tests and tools tabulate these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    /// Malformed line: no `=`, bad section header, bad quoting, bad indentation.
    Syntax,
    /// A keyword nobody knows (maybe misspelt).
    UnknownKeyword,
    /// A keyword of Libreswan or strongSwan that ferroswan does not implement.
    UnsupportedKeyword,
    /// A keyword that older FreeS/WAN versions had and that no longer has an effect.
    ObsoleteKeyword,
    /// A known keyword in a section where it does not belong.
    WrongSection,
    /// A value that does not parse or is out of range.
    BadValue,
    /// The same keyword twice in one section.
    Duplicate,
    /// `also=` names a conn that does not exist.
    MissingAlso,
    /// `also=` chains that loop.
    AlsoCycle,
    /// `include` of a file that does not exist or cannot be read.
    MissingInclude,
    /// include nesting, also nesting, file size or count limits exceeded.
    Limit,
    /// A connection that is incomplete or contradictory as a whole.
    BadConn,
    /// Orientation: both ends are local.
    Orientation,
    /// Policy group files.
    PolicyGroup,
    /// A feature that is recognised but not available yet (certificates, DNS keys, ...).
    Unsupported,
    /// The main configuration file cannot be read.
    Io,
}

impl Category {
    /// Every category, for tables.
    pub const ALL: [Category; 16] = [
        Category::Syntax,
        Category::UnknownKeyword,
        Category::UnsupportedKeyword,
        Category::ObsoleteKeyword,
        Category::WrongSection,
        Category::BadValue,
        Category::Duplicate,
        Category::MissingAlso,
        Category::AlsoCycle,
        Category::MissingInclude,
        Category::Limit,
        Category::BadConn,
        Category::Orientation,
        Category::PolicyGroup,
        Category::Unsupported,
        Category::Io,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Syntax => "Syntax",
            Category::UnknownKeyword => "UnknownKeyword",
            Category::UnsupportedKeyword => "UnsupportedKeyword",
            Category::ObsoleteKeyword => "ObsoleteKeyword",
            Category::WrongSection => "WrongSection",
            Category::BadValue => "BadValue",
            Category::Duplicate => "Duplicate",
            Category::MissingAlso => "MissingAlso",
            Category::AlsoCycle => "AlsoCycle",
            Category::MissingInclude => "MissingInclude",
            Category::Limit => "Limit",
            Category::BadConn => "BadConn",
            Category::Orientation => "Orientation",
            Category::PolicyGroup => "PolicyGroup",
            Category::Unsupported => "Unsupported",
            Category::Io => "Io",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A place in a configuration file (1-based line; 0 when the whole file is meant).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
}

impl Location {
    pub fn new(file: impl Into<String>, line: u32) -> Self {
        Location { file: file.into(), line }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A configuration error. Displays as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfError {
    pub file: String,
    pub line: u32,
    pub category: Category,
    pub message: String,
}

impl ConfError {
    pub fn new(loc: &Location, category: Category, message: impl Into<String>) -> Self {
        ConfError { file: loc.file.clone(), line: loc.line, category, message: message.into() }
    }

    pub fn location(&self) -> Location {
        Location::new(self.file.clone(), self.line)
    }
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ConfError {}

/// A warning has the same shape as an error; it does not stop the load.
pub type Warning = ConfError;

/// Errors and warnings gathered while loading.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub errors: Vec<ConfError>,
    pub warnings: Vec<Warning>,
}

impl Diagnostics {
    pub fn error(&mut self, loc: &Location, category: Category, message: impl Into<String>) {
        self.errors.push(ConfError::new(loc, category, message));
    }
    pub fn warn(&mut self, loc: &Location, category: Category, message: impl Into<String>) {
        self.warnings.push(ConfError::new(loc, category, message));
    }
}
