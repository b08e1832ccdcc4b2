//! `ipsecctl setkey` input and the `ipsecctl import setkey|racoon` converters: read the files, call
//! confd's pure converters (`confd::setkey`, `confd::racoon`), write the result to standard output or
//! into a directory. Nothing here talks to a daemon.

use std::path::Path;

/// Largest script or configuration file read.
const MAX_INPUT: u64 = 1024 * 1024;

fn read(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_INPUT {
        return Err(format!("{}: larger than {MAX_INPUT} bytes", path.display()));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The script of `setkey -f FILE` or `-c` (standard input), with the name errors give.
pub fn read_input(file: Option<&Path>, stdin: bool) -> Result<(String, String), String> {
    match (file, stdin) {
        (Some(f), _) => Ok((f.display().to_string(), read(f)?)),
        (None, true) => {
            use std::io::Read;
            let mut s = String::new();
            std::io::stdin()
                .take(MAX_INPUT + 1)
                .read_to_string(&mut s)
                .map_err(|e| format!("standard input: {e}"))?;
            if s.len() as u64 > MAX_INPUT {
                return Err(format!("standard input: larger than {MAX_INPUT} bytes"));
            }
            Ok(("(stdin)".to_string(), s))
        }
        (None, false) => Err("setkey needs -f FILE or -c".into()),
    }
}

fn write_out(dir: &Path, name: &str, text: &str, mode: u32) -> Result<String, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(&path)
        .map_err(|e| format!("{}: {e} (ferroswan does not overwrite a configuration)", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!("wrote {}", path.display()))
}

/// `ipsecctl import setkey FILE [-o DIR]`.
pub fn setkey(file: &Path, output: Option<&Path>) -> Result<String, String> {
    let name = file.display().to_string();
    let text = read(file)?;
    let stmts = confd::setkey::parser::parse(&text, &name).map_err(join)?;
    let conf = confd::setkey::import::import_setkey(&stmts, &name).map_err(join)?;
    match output {
        None => Ok(conf),
        Some(dir) => write_out(dir, "ipsec.conf", &conf, 0o644),
    }
}

fn join<E: std::fmt::Display>(errs: Vec<E>) -> String {
    errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

/// `ipsecctl import racoon --racoon-conf F --psk F [--setkey F] [-o DIR]`.
pub fn racoon(conf: &Path, psk: &Path, setkey: Option<&Path>, output: Option<&Path>) -> Result<String, String> {
    let conf_name = conf.display().to_string();
    let psk_name = psk.display().to_string();
    let conf_text = read(conf)?;
    let psk_text = read(psk)?;
    // The policies the setkey script leaves in place (after its spdflush;/spddelete), with a note
    // for each statement the import does not carry over (manual SAs, for instance).
    let (policies, spd_name, mut notes) = match setkey {
        None => (Vec::new(), String::new(), Vec::new()),
        Some(f) => {
            let name = f.display().to_string();
            let stmts = confd::setkey::parser::parse(&read(f)?, &name).map_err(join)?;
            let (policies, notes) = confd::racoon::convert::policies_from_setkey(&stmts, &name);
            (policies, name, notes)
        }
    };
    let imported = confd::racoon::convert::import_racoon(
        &conf_text, &conf_name, &psk_text, &psk_name, &policies, &spd_name,
    )
    .map_err(|errs| errs.join("\n"))?;
    notes.extend(imported.notes.iter().cloned());
    for n in &notes {
        eprintln!("note: {n}");
    }
    match output {
        None => Ok(format!(
            "# ---- ipsec.conf\n{}\n# ---- ipsec.secrets (keep it root-only, mode 0600)\n{}",
            imported.ipsec_conf, imported.ipsec_secrets
        )),
        Some(dir) => {
            let a = write_out(dir, "ipsec.conf", &imported.ipsec_conf, 0o644)?;
            let b = write_out(dir, "ipsec.secrets", &imported.ipsec_secrets, 0o600)?;
            Ok(format!("{a}\n{b}"))
        }
    }
}
