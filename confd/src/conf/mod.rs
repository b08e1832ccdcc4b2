//! ipsec.conf(5): lexer, parser, typed connection model (sans-IO).
//!
//! Entry points: [`load`] (real filesystem) and [`load_with`] (any [`FileSource`], e.g.
//! [`MemFs`]); [`checkconfig::render`] for `ipsecctl checkconfig`; [`diff::diff`] for
//! `ipsecctl reload`; [`orient::orient`] to decide which end is local.

pub mod checkconfig;
pub mod diff;
pub mod error;
pub mod keywords;
pub mod lexer;
pub mod model;
pub mod orient;
pub mod parser;
pub mod policy_groups;
pub mod source;
pub mod values;

pub use checkconfig::render as render_checkconfig;
pub use diff::{diff, ConfigDiff};
pub use error::{Category, ConfError, Location, Warning};
pub use model::{Config, Conn, End};
pub use orient::{orient, Orientation};
pub use policy_groups::{GroupAction, GroupMember, PolicyGroup};
pub use source::{FileSource, MemFs, RealFs};

use error::Diagnostics;
use std::path::Path;

/// Most errors returned (the rest are counted in a last error).
pub const MAX_ERRORS: usize = 1000;

fn dedup(list: Vec<ConfError>) -> Vec<ConfError> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter().filter(|e| seen.insert((e.file.clone(), e.line, e.message.clone()))).collect()
}

/// Load `path` (and its includes and policy groups) from `source`.
/// Policy groups are read from `<dir of path>/ipsec.d/policies/`.
pub fn load_with(source: &dyn FileSource, path: &Path) -> Result<(Config, Vec<Warning>), Vec<ConfError>> {
    let mut diags = Diagnostics::default();
    let raw = parser::read_config(source, path, &mut diags);
    let resolved = parser::resolve(&raw, &mut diags);
    let mut config = model::build_config(&raw, &resolved, &mut diags);
    let configdir = path.parent().unwrap_or(Path::new(""));
    config.policy_groups = policy_groups::load_policy_groups(source, configdir, &mut diags);
    let errors = dedup(diags.errors);
    let warnings = dedup(diags.warnings);
    if errors.is_empty() {
        Ok((config, warnings))
    } else {
        let mut errors = errors;
        if errors.len() > MAX_ERRORS {
            let extra = errors.len() - MAX_ERRORS;
            errors.truncate(MAX_ERRORS);
            if let Some(last) = errors.last().cloned() {
                errors.push(ConfError { message: format!("... and {extra} more errors"), ..last });
            }
        }
        Err(errors)
    }
}

/// Load from the real filesystem.
pub fn load(path: &Path) -> Result<(Config, Vec<Warning>), Vec<ConfError>> {
    load_with(&RealFs, path)
}

/// Load from text held in memory (one file named `name`, no includes resolvable).
pub fn load_str(name: &str, text: &str) -> Result<(Config, Vec<Warning>), Vec<ConfError>> {
    let fs = MemFs::new().with(name, text.as_bytes().to_vec());
    load_with(&fs, Path::new(name))
}
