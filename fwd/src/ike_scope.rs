//! What fwd lets ikerd install. ikerd parses packets from the Internet and may be compromised; confd
//! speaks for the administrator and tells fwd which IKE conns exist and which subnets this host's
//! end of each protects (`SetIkeScopes`). From ikerd, fwd accepts only SAs and policies of those
//! conns (or their road-warrior instances, `name[N]`), only policies whose local side lies within
//! the conn's subnets, and never a cleartext (`Pass`) policy: a compromised ikerd cannot make fwd
//! send in the clear, nor claim traffic no configured conn names.

use ipc::fwd::IkeScope;
use ipc::policy::{ConnState, Net, PolicyAction, PolicySpec};
use ipc::sa::Direction;
use std::collections::HashMap;

/// The most conns in one `SetIkeScopes`, and subnets per conn.
pub const MAX_CONNS: usize = 10_000;
pub const MAX_NETS: usize = 64;

#[derive(Debug, Default)]
pub struct IkeScopes {
    conns: HashMap<String, Vec<Net>>,
}

/// `rw[3]` → `rw`: an instance of a `%any` conn belongs to its conn.
pub fn base_name(conn: &str) -> &str {
    match conn.strip_suffix(']').and_then(|s| s.rsplit_once('[')) {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => conn,
    }
}

/// Does `outer` contain all of `inner`?
pub fn contains(outer: &Net, inner: &Net) -> bool {
    if outer.prefix > inner.prefix {
        return false;
    }
    match (outer.addr, inner.addr) {
        (std::net::IpAddr::V4(o), std::net::IpAddr::V4(i)) if outer.prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(outer.prefix)).unwrap_or(0);
            u32::from(o) & mask == u32::from(i) & mask
        }
        (std::net::IpAddr::V6(o), std::net::IpAddr::V6(i)) if outer.prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(outer.prefix)).unwrap_or(0);
            u128::from(o) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

impl IkeScopes {
    /// The whole set from confd, checked before it replaces the old one.
    pub fn new(list: Vec<IkeScope>) -> Result<IkeScopes, String> {
        if list.len() > MAX_CONNS {
            return Err(format!("{} conns, at most {MAX_CONNS}", list.len()));
        }
        let mut conns = HashMap::with_capacity(list.len());
        for s in list {
            if s.local.len() > MAX_NETS {
                return Err(format!(
                    "conn {:?}: {} subnets, at most {MAX_NETS}",
                    s.conn,
                    s.local.len()
                ));
            }
            conns.insert(s.conn, s.local);
        }
        Ok(IkeScopes { conns })
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The conn (or the conn of an instance) is a configured IKE conn.
    pub fn check_conn(&self, conn: &str) -> Result<&[Net], String> {
        self.conns
            .get(base_name(conn))
            .map(Vec::as_slice)
            .ok_or_else(|| format!("{conn:?} is not an IKE conn of the configuration"))
    }

    pub fn check_policy(&self, p: &PolicySpec) -> Result<(), String> {
        let local = self.check_conn(&p.conn)?;
        if matches!(p.action, PolicyAction::Pass) {
            return Err(format!(
                "conn {:?}: a cleartext (pass) policy for {} -> {}: ikerd may not install one",
                p.conn, p.selector.src, p.selector.dst
            ));
        }
        let ours = match p.direction {
            Direction::Out => p.selector.src,
            Direction::In => p.selector.dst,
        };
        if !local.iter().any(|n| contains(n, &ours)) {
            return Err(format!(
                "conn {:?}: {ours} is not within this host's side of the conn ({})",
                p.conn,
                local.iter().map(Net::to_string).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(())
    }

    pub fn check_state(&self, st: &ConnState) -> Result<(), String> {
        self.check_conn(&st.conn)?;
        for sa in &st.sas {
            self.check_conn(&sa.conn)?;
        }
        for p in &st.policies {
            self.check_policy(p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ipc::policy::TrafficSelector;

    fn net(s: &str) -> Net {
        s.parse().unwrap()
    }

    fn policy(conn: &str, dir: Direction, src: &str, dst: &str, action: PolicyAction) -> PolicySpec {
        PolicySpec {
            conn: conn.into(),
            direction: dir,
            selector: TrafficSelector::subnets(net(src), net(dst)),
            action,
            priority: 0,
            route: true,
        }
    }

    fn scopes() -> IkeScopes {
        IkeScopes::new(vec![
            IkeScope { conn: "net".into(), local: vec![net("10.1.0.0/16")] },
            IkeScope { conn: "rw".into(), local: vec![net("192.0.2.1/32"), net("2001:db8::/64")] },
        ])
        .unwrap()
    }

    #[test]
    fn instances_belong_to_their_conn() {
        assert_eq!(base_name("rw[12]"), "rw");
        assert_eq!(base_name("rw"), "rw");
        assert_eq!(base_name("odd[x]"), "odd[x]");
        assert_eq!(base_name("[1]"), "");
        assert!(scopes().check_conn("rw[3]").is_ok());
        assert!(scopes().check_conn("other").unwrap_err().contains("not an IKE conn"));
    }

    #[test]
    fn subnet_containment() {
        assert!(contains(&net("10.1.0.0/16"), &net("10.1.2.0/24")));
        assert!(contains(&net("0.0.0.0/0"), &net("10.1.2.3/32")));
        assert!(!contains(&net("10.1.0.0/16"), &net("10.0.0.0/8")));
        assert!(!contains(&net("10.1.0.0/16"), &net("10.2.0.0/24")));
        assert!(!contains(&net("10.1.0.0/16"), &net("::/0")));
        assert!(contains(&net("2001:db8::/64"), &net("2001:db8::5/128")));
    }

    #[test]
    fn ikerd_may_protect_its_conns_subnets_and_nothing_else() {
        let s = scopes();
        let protect = || PolicyAction::Protect { sas: vec![] };
        assert!(s.check_policy(&policy("net", Direction::Out, "10.1.0.0/24", "10.2.0.0/16", protect())).is_ok());
        assert!(s.check_policy(&policy("net", Direction::In, "10.2.0.0/16", "10.1.0.0/24", protect())).is_ok());
        assert!(s.check_policy(&policy("rw[1]", Direction::Out, "192.0.2.1/32", "0.0.0.0/0", protect())).is_ok());
        let e = s.check_policy(&policy("net", Direction::Out, "10.9.0.0/16", "10.2.0.0/16", protect())).unwrap_err();
        assert!(e.contains("10.9.0.0/16 is not within"), "{e}");
        let e = s.check_policy(&policy("net", Direction::In, "10.2.0.0/16", "10.9.0.0/16", protect())).unwrap_err();
        assert!(e.contains("10.9.0.0/16 is not within"), "{e}");
        let e = s.check_policy(&policy("net", Direction::Out, "10.1.0.0/24", "10.2.0.0/16", PolicyAction::Pass)).unwrap_err();
        assert!(e.contains("cleartext"), "{e}");
        let e = s.check_policy(&policy("manual", Direction::Out, "10.1.0.0/24", "10.2.0.0/16", protect())).unwrap_err();
        assert!(e.contains("not an IKE conn"), "{e}");
    }

    #[test]
    fn oversized_sets_are_refused() {
        let many = (0..=MAX_CONNS).map(|i| IkeScope { conn: format!("c{i}"), local: vec![] }).collect();
        assert!(IkeScopes::new(many).is_err());
        let nets = vec![net("10.0.0.0/8"); MAX_NETS + 1];
        assert!(IkeScopes::new(vec![IkeScope { conn: "c".into(), local: nets }]).is_err());
    }
}
