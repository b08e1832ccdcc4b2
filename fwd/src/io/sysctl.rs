//! Per-interface `/proc/sys/net/{ipv4,ipv6}/conf/<ifname>/<key>` settings.
//!
//! `/proc/sys/net` shows the network namespace of the *thread* that opens the file, so these calls
//! act on the namespace the calling thread is in (tests rely on this after `setns`).
//! The interface name goes into a path: [`valid_ifname`] refuses anything that could leave the
//! directory (`/`, `..`, NUL) or that the kernel would refuse anyway (empty, ≥ 16 bytes).

use std::io;
use std::path::PathBuf;

/// `IFNAMSIZ - 1`: the longest interface name the kernel accepts.
pub const IFNAME_MAX: usize = 15;

/// Is `name` an interface name the kernel would accept and that is safe in a path?
/// Accepts ASCII letters, digits, `-`, `_`, `.` (not `.`/`..` alone), 1 to 15 bytes.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Address family directory under `/proc/sys/net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `ipv4`
    V4,
    /// `ipv6`
    V6,
}

fn conf_path(family: Family, ifname: &str, key: &str) -> io::Result<PathBuf> {
    if !valid_ifname(ifname) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {ifname:?}"),
        ));
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad sysctl key {key:?}"),
        ));
    }
    let fam = match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    };
    Ok(PathBuf::from(format!(
        "/proc/sys/net/{fam}/conf/{ifname}/{key}"
    )))
}

/// Write `value` to `net.<family>.conf.<ifname>.<key>`.
pub fn set_iface(family: Family, ifname: &str, key: &str, value: &str) -> io::Result<()> {
    let path = conf_path(family, ifname, key)?;
    std::fs::write(&path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Read `net.<family>.conf.<ifname>.<key>` (trimmed).
pub fn get_iface(family: Family, ifname: &str, key: &str) -> io::Result<String> {
    let path = conf_path(family, ifname, key)?;
    let s = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(s.trim().to_owned())
}

/// Is IPv6 available in this namespace at all (kernel booted without `ipv6.disable=1`)?
pub fn ipv6_available() -> bool {
    std::path::Path::new("/proc/sys/net/ipv6/conf").is_dir()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn ifname_rules() {
        for ok in ["ferro0", "ipsec0", "a", "x.y", "tun_1-2", "123456789012345"] {
            assert!(valid_ifname(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../all",
            "a/b",
            "a\0b",
            "1234567890123456",
            "tün",
            "a b",
        ] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
    }

    #[test]
    fn paths_are_confined() {
        assert_eq!(
            conf_path(Family::V4, "ferro0", "rp_filter").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/ferro0/rp_filter")
        );
        assert_eq!(
            conf_path(Family::V6, "ferro0", "addr_gen_mode").unwrap(),
            PathBuf::from("/proc/sys/net/ipv6/conf/ferro0/addr_gen_mode")
        );
        assert!(conf_path(Family::V4, "..", "rp_filter").is_err());
        assert!(conf_path(Family::V4, "lo", "../../x").is_err());
        assert!(conf_path(Family::V4, "lo", "").is_err());
    }

    #[test]
    fn reads_loopback_setting() {
        // Every Linux namespace has lo; reading needs no privilege.
        let v = get_iface(Family::V4, "lo", "forwarding").unwrap();
        assert!(v == "0" || v == "1", "{v}");
    }
}
