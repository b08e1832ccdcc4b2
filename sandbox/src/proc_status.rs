//! The kernel's own account of a process's privileges, from /proc/PID/status: what the privilege
//! tests assert and what `ipsecctl status --daemons` shows.

/// The privilege lines of /proc/PID/status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcPrivileges {
    /// Real, effective, saved and filesystem uid.
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    pub groups: Vec<u32>,
    pub cap_inh: u64,
    pub cap_prm: u64,
    pub cap_eff: u64,
    pub cap_bnd: u64,
    pub cap_amb: u64,
    pub no_new_privs: bool,
    /// 0 none, 1 strict, 2 filter.
    pub seccomp: u8,
    pub threads: u32,
}

fn ids(v: &str) -> Option<[u32; 4]> {
    let mut it = v.split_whitespace().map(|x| x.parse::<u32>().ok());
    Some([it.next()??, it.next()??, it.next()??, it.next()??])
}

fn hex(v: &str) -> Option<u64> {
    u64::from_str_radix(v.trim(), 16).ok()
}

impl ProcPrivileges {
    /// Parse the text of a status file; a line it needs that is missing or malformed is an error.
    pub fn parse(text: &str) -> Result<ProcPrivileges, String> {
        let mut p = ProcPrivileges::default();
        let mut seen = 0u32;
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            let bad = || format!("malformed {k} line: {v:?}");
            match k {
                "Uid" => p.uids = ids(v).ok_or_else(bad)?,
                "Gid" => p.gids = ids(v).ok_or_else(bad)?,
                "Groups" => {
                    p.groups = v
                        .split_whitespace()
                        .map(|g| g.parse().map_err(|_| bad()))
                        .collect::<Result<_, _>>()?
                }
                "CapInh" => p.cap_inh = hex(v).ok_or_else(bad)?,
                "CapPrm" => p.cap_prm = hex(v).ok_or_else(bad)?,
                "CapEff" => p.cap_eff = hex(v).ok_or_else(bad)?,
                "CapBnd" => p.cap_bnd = hex(v).ok_or_else(bad)?,
                "CapAmb" => p.cap_amb = hex(v).ok_or_else(bad)?,
                "NoNewPrivs" => p.no_new_privs = v == "1",
                "Seccomp" => p.seccomp = v.parse().map_err(|_| bad())?,
                "Threads" => p.threads = v.parse().map_err(|_| bad())?,
                _ => continue,
            }
            seen += 1;
        }
        if seen < 9 {
            return Err("not a /proc/PID/status file (privilege lines missing)".into());
        }
        Ok(p)
    }

    pub fn of_pid(pid: u32) -> Result<ProcPrivileges, String> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        Self::parse(&text)
    }

    pub fn of_self() -> Result<ProcPrivileges, String> {
        let text = std::fs::read_to_string("/proc/self/status")
            .map_err(|e| format!("/proc/self/status: {e}"))?;
        Self::parse(&text)
    }

    /// One line for logs and status: `uid=996 caps=0x3000 no_new_privs=1 seccomp=filter`.
    pub fn summary(&self) -> String {
        format!(
            "uid={} gid={} caps={:#x} bounding={:#x} no_new_privs={} seccomp={}",
            self.uids[0],
            self.gids[0],
            self.cap_eff,
            self.cap_bnd,
            u8::from(self.no_new_privs),
            match self.seccomp {
                0 => "off",
                1 => "strict",
                _ => "filter",
            }
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Name:\tfwd\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t996\t996\t996\t996\nGid:\t995\t995\t995\t995\nGroups:\t994 \nThreads:\t3\nCapInh:\t0000000000000000\nCapPrm:\t0000000000003000\nCapEff:\t0000000000003000\nCapBnd:\t0000000000003000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";

    #[test]
    fn parses_the_privilege_lines() {
        let p = ProcPrivileges::parse(SAMPLE).unwrap();
        assert_eq!(p.uids, [996; 4]);
        assert_eq!(p.gids, [995; 4]);
        assert_eq!(p.groups, vec![994]);
        assert_eq!((p.cap_prm, p.cap_eff, p.cap_bnd, p.cap_amb), (0x3000, 0x3000, 0x3000, 0));
        assert!(p.no_new_privs);
        assert_eq!((p.seccomp, p.threads), (2, 3));
        assert_eq!(
            p.summary(),
            "uid=996 gid=995 caps=0x3000 bounding=0x3000 no_new_privs=1 seccomp=filter"
        );
    }

    #[test]
    fn refuses_text_that_is_not_a_status_file() {
        assert!(ProcPrivileges::parse("Name:\tx\n").is_err());
        assert!(ProcPrivileges::parse(&SAMPLE.replace("996\t996\t996\t996", "996 x")).is_err());
    }

    #[test]
    fn reads_its_own_status() {
        let p = ProcPrivileges::of_self().unwrap();
        assert_eq!(p.uids[0], nix::unistd::getuid().as_raw());
        assert!(p.threads >= 1);
    }
}
