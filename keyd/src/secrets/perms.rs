//! Ownership and mode checks of secrets files: a secrets file (and every
//! file it includes) must be a regular file owned by root with no access
//! for group or others (0600 or 0400). There is deliberately no switch to
//! relax this.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

const REQUIREMENT: &str = "must be 0600 and owned by root";

/// A file that failed the checks. `Display` is `path: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionProblem {
    pub path: PathBuf,
    /// The reason without the path, e.g. `mode 0644 is group/world readable; must be 0600 and owned by root`.
    pub reason: String,
}

impl std::fmt::Display for PermissionProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Check an owner and a mode (as from `stat`). The error text names the
/// file and its mode, e.g.
/// `/etc/ipsec.secrets: mode 0644 is group/world readable; must be 0600 and owned by root`.
pub fn check_owner_and_mode(
    path: &Path,
    owner_uid: u32,
    mode: u32,
) -> Result<(), PermissionProblem> {
    let permissions = mode & 0o7777;
    let problem = |reason: String| {
        Err(PermissionProblem {
            path: path.to_path_buf(),
            reason,
        })
    };
    if owner_uid != 0 {
        return problem(format!("owned by uid {owner_uid}, not root; {REQUIREMENT}"));
    }
    if permissions & 0o044 != 0 {
        return problem(format!(
            "mode {permissions:04o} is group/world readable; {REQUIREMENT}"
        ));
    }
    if permissions & 0o033 != 0 {
        return problem(format!(
            "mode {permissions:04o} is group/world writable or executable; {REQUIREMENT}"
        ));
    }
    Ok(())
}

/// Why [`read_checked`] refused.
#[derive(Debug)]
pub enum ReadRefusal {
    NotFound,
    /// Owner, mode or file type wrong.
    Permission(PermissionProblem),
    TooLarge {
        size: u64,
    },
    Io(String),
}

/// Open `path`, check the opened file (fstat, so no race with a rename)
/// for type, owner and mode, then read at most `max_bytes`.
pub fn read_checked(path: &Path, max_bytes: u64) -> Result<Zeroizing<Vec<u8>>, ReadRefusal> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReadRefusal::NotFound,
        _ => ReadRefusal::Io(e.to_string()),
    })?;
    let metadata = file
        .metadata()
        .map_err(|e| ReadRefusal::Io(e.to_string()))?;
    if !metadata.is_file() {
        return Err(ReadRefusal::Permission(PermissionProblem {
            path: path.to_path_buf(),
            reason: "not a regular file".to_string(),
        }));
    }
    check_owner_and_mode(path, metadata.uid(), metadata.mode()).map_err(ReadRefusal::Permission)?;
    if metadata.len() > max_bytes {
        return Err(ReadRefusal::TooLarge {
            size: metadata.len(),
        });
    }
    read_bounded(file, max_bytes)
}

/// Read at most `max_bytes` from `reader` into zeroizing memory.
pub(crate) fn read_bounded(
    reader: impl Read,
    max_bytes: u64,
) -> Result<Zeroizing<Vec<u8>>, ReadRefusal> {
    let mut contents = Zeroizing::new(Vec::new());
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(|e| ReadRefusal::Io(e.to_string()))?;
    let size = contents.len() as u64;
    if size > max_bytes {
        return Err(ReadRefusal::TooLarge { size });
    }
    Ok(contents)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let path = Path::new("/etc/ipsec.secrets");
        assert_eq!(check_owner_and_mode(path, 0, 0o100600), Ok(()));
        assert_eq!(check_owner_and_mode(path, 0, 0o400), Ok(()));
        let problem = check_owner_and_mode(path, 0, 0o640).unwrap_err();
        assert_eq!(
            problem.reason,
            "mode 0640 is group/world readable; must be 0600 and owned by root"
        );
        assert_eq!(
            check_owner_and_mode(path, 0, 0o100644)
                .unwrap_err()
                .to_string(),
            "/etc/ipsec.secrets: mode 0644 is group/world readable; must be 0600 and owned by root"
        );
        assert_eq!(
            check_owner_and_mode(path, 0, 0o602).unwrap_err().to_string(),
            "/etc/ipsec.secrets: mode 0602 is group/world writable or executable; must be 0600 and owned by root"
        );
        assert_eq!(
            check_owner_and_mode(path, 1000, 0o600)
                .unwrap_err()
                .to_string(),
            "/etc/ipsec.secrets: owned by uid 1000, not root; must be 0600 and owned by root"
        );
    }
}
