//! Key tools: `rsasigkey` (a new RSA key as an ipsec.secrets block), `showhostkey` (the public half as an
//! ipsec.conf line, from keyd through confd), `ranbits`.

use ipc::keyd::HostKey;

/// Below this many bits `rsasigkey` refuses unless told `--insecure`.
pub const MIN_BITS: usize = keyfmt::MIN_SECURE_BITS;

pub fn rsasigkey(bits: usize, insecure: bool) -> Result<String, String> {
    if bits < MIN_BITS && !insecure {
        return Err(format!(
            "{bits}-bit RSA keys are too weak; use at least {MIN_BITS} (or --insecure for tests)"
        ));
    }
    let key = keyfmt::generate(bits).map_err(|e| e.to_string())?;
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into());
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    Ok(keyfmt::render_rsa_block(&key, &host, &date).to_string())
}

/// Pick the key to show: the one whose IDs include `id`, or the only key there is.
pub fn choose<'a>(keys: &'a [HostKey], id: Option<&str>) -> Result<&'a HostKey, String> {
    match id {
        Some(id) => keys
            .iter()
            .find(|k| k.ids.iter().any(|i| i == id) || k.keyid == id)
            .ok_or_else(|| format!("no RSA key in ipsec.secrets for {id}")),
        None => match keys {
            [] => Err("ipsec.secrets holds no RSA key (make one with `ipsecctl rsasigkey`)".into()),
            [only] => Ok(only),
            many => Err(format!(
                "ipsec.secrets holds {} RSA keys; choose one with --id (key ids: {})",
                many.len(),
                many.iter()
                    .map(|k| k.keyid.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
    }
}

/// The lines `ipsec showhostkey --left` prints: a comment with the key id, then the ipsec.conf line.
pub fn showhostkey(key: &HostKey, side: &str) -> Result<String, String> {
    let pk = keyfmt::parse_rsasigkey(&key.pubkey)
        .map_err(|e| format!("keyd sent a bad public key: {e}"))?;
    Ok(format!(
        "\t# rsakey {}\n{}",
        key.keyid,
        keyfmt::showhostkey_line(side, &pk)
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn hk(ids: &[&str], keyid: &str) -> HostKey {
        HostKey {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            pubkey: String::new(),
            keyid: keyid.into(),
            bits: 2048,
        }
    }

    #[test]
    fn choosing_a_key() {
        let keys = [hk(&["@west"], "AQOa"), hk(&["@east"], "AQOb")];
        assert_eq!(
            choose(&keys, Some("@east")).map(|k| k.keyid.as_str()),
            Ok("AQOb")
        );
        assert_eq!(
            choose(&keys, Some("AQOa")).map(|k| k.keyid.as_str()),
            Ok("AQOa")
        );
        assert!(choose(&keys, None)
            .unwrap_err()
            .contains("choose one with --id (key ids: AQOa, AQOb)"));
        assert!(choose(&[], None).unwrap_err().contains("holds no RSA key"));
        assert_eq!(
            choose(&keys[..1], None).map(|k| k.keyid.as_str()),
            Ok("AQOa")
        );
    }

    #[test]
    fn weak_keys_need_insecure() {
        assert!(rsasigkey(1024, false).unwrap_err().contains("too weak"));
    }
}
