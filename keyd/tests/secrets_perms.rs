//! Acceptance (d): secrets files must be root-owned 0600 (or 0400).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use keyd::secrets::{check_owner_and_mode, load_secrets_file, ErrorCategory};

#[test]
fn mode_and_owner_rules_exact_text() {
    let path = Path::new("/etc/ipsec.secrets");
    assert_eq!(
        check_owner_and_mode(path, 0, 0o100644)
            .unwrap_err()
            .to_string(),
        "/etc/ipsec.secrets: mode 0644 is group/world readable; must be 0600 and owned by root"
    );
    assert_eq!(
        check_owner_and_mode(path, 0, 0o100640)
            .unwrap_err()
            .to_string(),
        "/etc/ipsec.secrets: mode 0640 is group/world readable; must be 0600 and owned by root"
    );
    assert_eq!(
        check_owner_and_mode(path, 0, 0o100620).unwrap_err().to_string(),
        "/etc/ipsec.secrets: mode 0620 is group/world writable or executable; must be 0600 and owned by root"
    );
    assert_eq!(
        check_owner_and_mode(path, 1000, 0o100600)
            .unwrap_err()
            .to_string(),
        "/etc/ipsec.secrets: owned by uid 1000, not root; must be 0600 and owned by root"
    );
    assert!(check_owner_and_mode(path, 0, 0o100600).is_ok());
    assert!(check_owner_and_mode(path, 0, 0o100400).is_ok());
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ferroswan-secrets-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn running_as_root() -> bool {
    // The owner of a file we just created is our effective uid.
    let probe = std::env::temp_dir().join(format!("ferroswan-uid-probe-{}", std::process::id()));
    fs::write(&probe, "").unwrap();
    let uid = std::os::unix::fs::MetadataExt::uid(&fs::metadata(&probe).unwrap());
    let _ = fs::remove_file(&probe);
    uid == 0
}

#[test]
fn real_files_are_checked() {
    let dir = TempDir::new("real");
    let good = dir.write(
        "ipsec.secrets",
        "@a @b : PSK \"x\"\ninclude ipsec.d/*.secrets\n",
        0o600,
    );
    fs::create_dir_all(dir.0.join("ipsec.d")).unwrap();

    if !running_as_root() {
        // Owned by us, not root: refused whatever the mode.
        let error = load_secrets_file(&good).unwrap_err();
        assert_eq!(error.category, ErrorCategory::Permission);
        assert!(error.message.starts_with("owned by uid "), "{error}");
        eprintln!("not root: only the owner refusal was checked on real files");
        return;
    }

    let secrets = load_secrets_file(&good).unwrap();
    assert_eq!(secrets.psk_count(), 1);

    // 0644 refused, with file and mode.
    let loose = dir.write("loose.secrets", "@a @b : PSK \"x\"\n", 0o644);
    let error = load_secrets_file(&loose).unwrap_err();
    assert_eq!(error.category, ErrorCategory::Permission);
    assert_eq!(
        error.to_string(),
        format!(
            "{}: mode 0644 is group/world readable; must be 0600 and owned by root",
            loose.display()
        )
    );

    // Non-root owner refused.
    let foreign = dir.write("foreign.secrets", "@a @b : PSK \"x\"\n", 0o600);
    std::os::unix::fs::chown(&foreign, Some(1000), Some(1000)).unwrap();
    let error = load_secrets_file(&foreign).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: owned by uid 1000, not root; must be 0600 and owned by root",
            foreign.display()
        )
    );

    // An included file is checked too; the error points at the include line.
    let included = dir.write("ipsec.d/bad.secrets", "@c @d : PSK \"y\"\n", 0o640);
    let error = load_secrets_file(&good).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:2: included file {}: mode 0640 is group/world readable; must be 0600 and owned by root",
            good.display(),
            included.display()
        )
    );
    fs::set_permissions(&included, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(load_secrets_file(&good).unwrap().psk_count(), 2);

    // Not a regular file.
    let error = load_secrets_file(&dir.0.join("ipsec.d")).unwrap_err();
    assert_eq!(error.category, ErrorCategory::Permission);
    assert!(
        error.to_string().ends_with(": not a regular file"),
        "{error}"
    );

    // Missing.
    let error = load_secrets_file(&dir.0.join("absent")).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("{}: not found", dir.0.join("absent").display())
    );
}
