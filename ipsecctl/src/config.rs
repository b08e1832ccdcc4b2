//! `ipsecctl checkconfig`: parse ipsec.conf locally (no daemon needed) and print the normalised
//! connections, like `ipsec addconn --checkconfig`.

use std::path::Path;

/// Ok(normalised text, warnings) or Err(errors), each `file:line: message`.
pub fn checkconfig(path: &Path, orient: bool) -> Result<(String, Vec<String>), Vec<String>> {
    let (cfg, warnings) = confd::daemon::load_config(path)
        .map_err(|es| es.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    let mut out = confd::conf::render_checkconfig(&cfg);
    if orient {
        let addrs = confd::daemon::local_addrs();
        for c in &cfg.conns {
            let o = match confd::conf::orient(c, &addrs) {
                Ok(confd::conf::Orientation::LeftIsLocal) => "left is this host".to_string(),
                Ok(confd::conf::Orientation::RightIsLocal) => "right is this host".to_string(),
                Ok(confd::conf::Orientation::Unoriented) => {
                    "not oriented: neither end is an address of this host".to_string()
                }
                Err(e) => format!("error: {e}"),
            };
            out.push_str(&format!("# conn {}: {o}\n", c.name));
        }
    }
    Ok((out, warnings.iter().map(|w| w.to_string()).collect()))
}
