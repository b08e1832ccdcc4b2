//! Acceptance (a) and (b): the Libreswan secrets corpus loads or fails with
//! a clear `file:line` error of a listed category, never a panic; RSA blocks
//! whose modulus appears in a corpus ipsec.conf `*rsasigkey=0s…` line render
//! to exactly that public key.
//!
//! Corpus location: `$FERROSWAN_CORPUS`, else `../shared/corpus` beside the
//! repository root. Corpus files are not root-owned 0600, so they are read
//! into a `MemorySource` (no owner/mode check).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use keyd::secrets::{load_secrets, ErrorCategory, MemorySource, Secrets, SecretsError};

fn corpus_dir() -> PathBuf {
    match std::env::var_os("FERROSWAN_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    }
}

fn corpus_files(subdir: &str) -> Vec<PathBuf> {
    let dir = corpus_dir().join(subdir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "corpus directory {}: {e} (set FERROSWAN_CORPUS)",
                dir.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn load_in_memory(path: &Path) -> std::thread::Result<Result<Secrets, SecretsError>> {
    let contents = std::fs::read(path).unwrap();
    let source = MemorySource::new().with(path, contents);
    std::panic::catch_unwind(|| load_secrets(&source, path))
}

#[test]
fn libreswan_secrets_corpus_loads_or_fails_clearly() {
    let files = corpus_files("libreswan-secrets");
    assert!(
        files.len() > 1000,
        "expected the full corpus, found {} files",
        files.len()
    );
    let mut by_outcome: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut psks, mut rsa_keys, mut exponent_3_keys, mut warnings) = (0, 0, 0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let outcome = load_in_memory(path)
            .unwrap_or_else(|_| panic!("parser panicked on {}", path.display()));
        match outcome {
            Ok(secrets) => {
                psks += secrets.psk_count();
                rsa_keys += secrets.rsa_count();
                exponent_3_keys += secrets
                    .rsa_entries()
                    .iter()
                    .filter(|e| e.key.public_key().exponent() == [3])
                    .count();
                warnings += secrets.warnings().len();
                for warning in secrets.warnings() {
                    let text = warning.to_string();
                    assert!(text.starts_with(&format!("{}:", path.display())), "{text}");
                }
                by_outcome.entry("ok".into()).or_default().push(name);
            }
            Err(error) => {
                let text = error.to_string();
                assert!(
                    text.starts_with(&format!("{}:", error.file.display())),
                    "{text}"
                );
                assert!(
                    matches!(
                        error.category,
                        ErrorCategory::Syntax
                            | ErrorCategory::Id
                            | ErrorCategory::Unsupported
                            | ErrorCategory::Include
                            | ErrorCategory::RsaKey
                            | ErrorCategory::Psk
                    ),
                    "unexpected category for {text}"
                );
                by_outcome
                    .entry(error.category.name().into())
                    .or_default()
                    .push(text);
            }
        }
    }

    println!("\nlibreswan-secrets corpus: {} files", files.len());
    println!("{:<12} {:>6}", "outcome", "files");
    for (outcome, items) in &by_outcome {
        println!("{outcome:<12} {:>6}", items.len());
    }
    println!("loaded: {psks} PSK entries, {rsa_keys} RSA keys ({exponent_3_keys} with public exponent 3), {warnings} warnings");
    for (outcome, items) in &by_outcome {
        if outcome != "ok" {
            for item in items {
                println!("  [{outcome}] {item}");
            }
        }
    }

    let ok = by_outcome.get("ok").map_or(0, Vec::len);
    assert!(
        ok * 100 / files.len() >= 95,
        "only {ok} of {} files load",
        files.len()
    );
    assert!(psks > 1000);
    assert!(
        exponent_3_keys >= 1,
        "expected FreeS/WAN-made RSA blocks with e=3 to load"
    );
}

/// Specific corpus files with known outcomes.
#[test]
fn corpus_files_with_known_outcomes() {
    let dir = corpus_dir().join("libreswan-secrets");
    let load = |name: &str| load_in_memory(&dir.join(name)).unwrap();

    // `: RSA east` names an NSS key: refused, naming file and line.
    let error = load("pluto__ikev2-23-mixed__east.secrets").unwrap_err();
    assert_eq!(error.category, ErrorCategory::Unsupported);
    assert_eq!(error.line, 2);
    assert!(error.to_string().contains(
        "pluto__ikev2-23-mixed__east.secrets:2: RSA private keys by reference (\"east\""
    ));

    // A quoted IPv6 ID and an ID glued to the colon.
    let secrets = load("pluto__ikev2-61-any-psk__west.secrets").unwrap();
    assert_eq!(secrets.psk_count(), 1);
    assert_eq!(secrets.psk_entries()[0].ids.len(), 4);

    // Bare key files (rsasigkey output without `: RSA {`) are indented: a
    // syntax error at the first indented non-comment line.
    let error = load("hist-9426cddf__baseconfigs__east__etc__east.key").unwrap_err();
    assert_eq!((error.category, error.line), (ErrorCategory::Syntax, 6));

    // A complete FreeS/WAN block with public exponent 3 loads.
    let secrets = load("hist-9426cddf__baseconfigs__road__etc__road.key").unwrap();
    assert_eq!(secrets.rsa_count(), 1);
    assert_eq!(secrets.rsa_entries()[0].key.public_key().exponent(), [3]);

    // Libreswan 3 blocks hold only the public key.
    let error = load("pluto__ikev2-55-ipseckey-02__road.secrets").unwrap_err();
    assert_eq!((error.category, error.line), (ErrorCategory::RsaKey, 1));
    assert!(
        error
            .message
            .starts_with("RSA key block holds only the public key"),
        "{error}"
    );

    // XAUTH entries are skipped with a warning naming file:line.
    let path = dir.join("pluto__interop-ikev1-strongswan-01-xauth__west.secrets");
    let secrets = load("pluto__interop-ikev1-strongswan-01-xauth__west.secrets").unwrap();
    let warning = secrets
        .warnings()
        .iter()
        .find(|w| w.message.contains("XAUTH"))
        .unwrap()
        .to_string();
    assert!(
        warning.starts_with(&format!("{}:", path.display())),
        "{warning}"
    );
    assert!(
        warning.ends_with(": XAUTH secrets are not supported; entry skipped"),
        "{warning}"
    );

    // Libreswan NSS-era blocks hold a CKA_ID in the private fields: refused as inconsistent.
    let error = load("hist-5dd4a9db__baseconfigs__east__etc__ipsec.secrets").unwrap_err();
    assert_eq!(error.category, ErrorCategory::RsaKey);
    assert!(
        error.message.contains("Prime1 × Prime2 is not the Modulus"),
        "{error}"
    );
}

/// Acceptance (b).
#[test]
fn corpus_rsa_blocks_match_conf_rsasigkeys() {
    // Public keys from ipsec.conf lines `leftrsasigkey=0s…` / `rightrsasigkey=0s…`, by modulus.
    let mut conf_keys: HashMap<Vec<u8>, String> = HashMap::new();
    for path in corpus_files("libreswan-conf") {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let Some((_, value)) = line.split_once("rsasigkey=0s") else {
                continue;
            };
            let value = format!(
                "0s{}",
                value
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_matches('"')
            );
            if let Ok(key) = keyfmt::parse_rsasigkey(&value) {
                conf_keys.insert(key.modulus().to_vec(), value);
            }
        }
    }
    assert!(!conf_keys.is_empty());

    // RSA blocks of the secrets corpus, parsed as blocks (fields only, so
    // that NSS-era blocks with placeholder private fields still yield their public half).
    let mut blocks_seen = 0;
    let mut matches = 0;
    let mut stale_comments = 0;
    for path in corpus_files("libreswan-secrets") {
        let text = std::fs::read_to_string(&path).unwrap();
        for block in rsa_block_texts(&text) {
            let fields: Vec<(&str, &str)> = block
                .lines()
                .filter_map(|line| {
                    let mut words = line.split_whitespace();
                    match (words.next(), words.next()) {
                        (Some(name), Some(value)) if name.ends_with(':') => Some((name, value)),
                        _ => None,
                    }
                })
                .collect();
            let public = keyfmt::RsaPrivateKey::public_key_from_fields(&fields)
                .unwrap_or_else(|e| panic!("{}: RSA block: {e}", path.display()));
            blocks_seen += 1;
            if let Some(conf_value) = conf_keys.get(public.modulus()) {
                assert_eq!(
                    &public.to_rfc3110_base64(),
                    conf_value,
                    "{}",
                    path.display()
                );
                assert_eq!(keyfmt::parse_rsasigkey(conf_value).unwrap(), public);
                matches += 1;
            }
            // The `#pubkey=` comment is only a comment: report when it disagrees
            // (hist-9426cddf road.key carries a stale one; its `#IN KEY` line agrees with the Modulus).
            if let Some(comment) = block
                .lines()
                .find_map(|l| l.trim().strip_prefix("#pubkey="))
            {
                if public.to_rfc3110_base64() != comment {
                    println!(
                        "note: {}: #pubkey= comment is not the block's key",
                        path.display()
                    );
                    stale_comments += 1;
                }
            }
        }
    }
    println!(
        "RSA blocks in secrets corpus: {blocks_seen}; matching a conf rsasigkey by modulus: {matches}; \
         stale #pubkey comments: {stale_comments}"
    );
    assert!(matches > 0);
    assert!(stale_comments <= 1);
}

/// The texts between `: RSA {` and the closing `}` of each block in a file.
fn rsa_block_texts(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        match &mut current {
            None => {
                let head: Vec<&str> = trimmed.split_whitespace().collect();
                if head.len() >= 2
                    && head[head.len() - 1] == "{"
                    && head[head.len() - 2].eq_ignore_ascii_case("RSA")
                {
                    current = Some(String::new());
                }
            }
            Some(body) if trimmed == "}" => {
                blocks.push(std::mem::take(body));
                current = None;
            }
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    blocks
}

/// strongSwan's dialect is not ours; report only, but never panic.
#[test]
fn strongswan_secrets_never_panic() {
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for path in corpus_files("strongswan-ipsecsecrets") {
        let outcome = load_in_memory(&path)
            .unwrap_or_else(|_| panic!("parser panicked on {}", path.display()));
        *outcomes
            .entry(match outcome {
                Ok(_) => "ok",
                Err(e) => e.category.name(),
            })
            .or_default() += 1;
    }
    println!("strongswan-ipsecsecrets: {outcomes:?}");
}
