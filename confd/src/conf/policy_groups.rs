//! FreeS/WAN 2.x policy groups: `<configdir>/ipsec.d/policies/{clear, clear-or-private,
//! private-or-clear, private, block}`, one host or subnet per line. Without opportunistic
//! encryption, the first three pass traffic in the clear and the last two drop it.

use super::error::{Category, Diagnostics, Location};
use super::source::FileSource;
use super::values::{self, Subnet};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The group files, in the order FreeS/WAN reads them.
pub const GROUP_NAMES: [&str; 5] = ["clear", "clear-or-private", "private-or-clear", "private", "block"];
/// Most entries in one group file.
pub const MAX_GROUP_ENTRIES: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupAction {
    /// Pass in the clear.
    Clear,
    /// Drop.
    Drop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupMember {
    Subnet(Subnet),
    /// A DNS name, resolved by the daemon.
    Host(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyGroup {
    /// File name: `clear`, `private`, ...
    pub name: String,
    pub action: GroupAction,
    pub members: Vec<GroupMember>,
}

pub fn action_of(name: &str) -> Option<GroupAction> {
    match name {
        "clear" | "clear-or-private" | "private-or-clear" => Some(GroupAction::Clear),
        "private" | "block" => Some(GroupAction::Drop),
        _ => None,
    }
}

/// Parse one group file's text.
pub fn parse_group(name: &str, file: &str, text: &str, diags: &mut Diagnostics) -> Option<PolicyGroup> {
    let action = action_of(name)?;
    let mut members = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let loc = Location::new(file, u32::try_from(i.saturating_add(1)).unwrap_or(u32::MAX));
        if members.len() >= MAX_GROUP_ENTRIES {
            diags.error(&loc, Category::Limit, format!("more than {MAX_GROUP_ENTRIES} entries"));
            break;
        }
        let mut words = line.split_whitespace();
        let word = words.next().unwrap_or("");
        if words.next().is_some() {
            diags.error(&loc, Category::PolicyGroup, format!("`{line}`: one host or subnet per line"));
            continue;
        }
        if word.starts_with(|c: char| c.is_ascii_digit()) || word.contains(':') {
            match values::parse_subnet(word) {
                Ok(s) => members.push(GroupMember::Subnet(s)),
                Err(e) => diags.error(&loc, Category::PolicyGroup, e),
            }
        } else {
            match values::parse_host(word) {
                Ok(values::HostAddr::Name(n)) => members.push(GroupMember::Host(n)),
                _ => diags.error(&loc, Category::PolicyGroup, format!("`{word}` is not a host or subnet")),
            }
        }
    }
    Some(PolicyGroup { name: name.to_string(), action, members })
}

/// Read every group file under `<configdir>/ipsec.d/policies/`; a missing file is an empty group.
pub fn load_policy_groups(source: &dyn FileSource, configdir: &Path, diags: &mut Diagnostics) -> Vec<PolicyGroup> {
    let dir = configdir.join("ipsec.d").join("policies");
    let mut out = Vec::new();
    for name in GROUP_NAMES {
        let path = dir.join(name);
        let file = path.display().to_string();
        let Ok(bytes) = source.read(&path) else { continue };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            diags.error(&Location::new(file, 0), Category::PolicyGroup, "not valid UTF-8");
            continue;
        };
        if let Some(g) = parse_group(name, &file, text, diags) {
            if !g.members.is_empty() {
                out.push(g);
            }
        }
    }
    out
}
