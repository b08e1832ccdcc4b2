//! Reads every ipsec.conf of the shared corpus (Libreswan's and strongSwan's test
//! configurations): each file parses, or fails with `file:line:` errors of a category.
//! Prints a table per category; the measured table is kept in CORPUS-RESULTS.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use confd::conf::{self, Category, FileSource, RealFs};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus_root() -> PathBuf {
    match std::env::var_os("FERROSWAN_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    }
}

/// The real corpus files, plus Libreswan's absolute include paths mapped onto the flattened
/// corpus names (`/testing/a/b` → `a__b`, `/etc/ipsec.d/x` → `baseconfigs__all__etc__ipsec.d__x`).
/// Other absolute paths are "not found": the host's own /etc is never read.
struct CorpusFs {
    dir: PathBuf,
}

impl CorpusFs {
    fn map(&self, path: &Path) -> Option<PathBuf> {
        if path.starts_with(&self.dir) {
            return Some(path.to_path_buf());
        }
        let s = path.to_str()?;
        let flat = if let Some(rest) = s.strip_prefix("/testing/") {
            rest.replace('/', "__")
        } else if let Some(rest) = s.strip_prefix("/etc/ipsec.d/") {
            format!("baseconfigs__all__etc__ipsec.d__{}", rest.replace('/', "__"))
        } else {
            return None;
        };
        Some(self.dir.join(flat))
    }
}

impl FileSource for CorpusFs {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        match self.map(path) {
            Some(p) => RealFs.read(&p),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory")),
        }
    }
    fn glob(&self, pattern: &str) -> std::io::Result<Vec<PathBuf>> {
        match self.map(Path::new(pattern)) {
            Some(p) if p.starts_with(&self.dir) => RealFs.glob(&p.display().to_string()),
            _ => Ok(Vec::new()),
        }
    }
}

#[derive(Default)]
struct Tally {
    files: usize,
    parsed: usize,
    /// Files whose first error is of this category.
    first: BTreeMap<Category, usize>,
    /// All errors, by category.
    errors: BTreeMap<Category, usize>,
    warnings: BTreeMap<Category, usize>,
}

fn run_dir(dir: &Path) -> Option<Tally> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    let mut t = Tally::default();
    for path in entries.iter().filter(|p| p.is_file()) {
        t.files += 1;
        let fs = CorpusFs { dir: dir.to_path_buf() };
        let result = std::panic::catch_unwind(|| conf::load_with(&fs, path));
        let Ok(result) = result else { panic!("parser panicked on {}", path.display()) };
        match result {
            Ok((_cfg, warnings)) => {
                t.parsed += 1;
                for w in warnings {
                    assert!(w.line > 0 || w.category == Category::MissingInclude, "warning without line: {w}");
                    *t.warnings.entry(w.category).or_default() += 1;
                }
            }
            Err(errors) => {
                assert!(!errors.is_empty());
                *t.first.entry(errors[0].category).or_default() += 1;
                for e in &errors {
                    let text = e.to_string();
                    if let Some(dump) = std::env::var_os("CONF_CORPUS_DUMP") {
                        use std::io::Write as _;
                        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dump) {
                            let _ = writeln!(f, "{:?}\t{text}", e.category);
                        }
                    }
                    assert!(!e.file.is_empty(), "error without a file: {text}");
                    let prefix = format!("{}:{}: ", e.file, e.line);
                    assert!(text.starts_with(&prefix) && text.len() > prefix.len(), "not file:line: message: {text}");
                    *t.errors.entry(e.category).or_default() += 1;
                }
            }
        }
    }
    Some(t)
}

#[test]
fn corpus_files_parse_or_fail_with_categorised_errors() {
    let root = corpus_root();
    let dirs = ["libreswan-conf", "strongswan-ipsecconf"];
    let mut tallies = Vec::new();
    for d in dirs {
        match run_dir(&root.join(d)) {
            Some(t) => tallies.push((d, t)),
            None => {
                eprintln!("corpus dir {} not found: skipping", root.join(d).display());
                return;
            }
        }
    }
    let mut table = String::new();
    table.push_str("| | ");
    table.push_str(&dirs.join(" | "));
    table.push_str(" |\n|---|");
    table.push_str(&"---|".repeat(dirs.len()));
    table.push('\n');
    let row = |table: &mut String, label: &str, f: &dyn Fn(&Tally) -> usize| {
        table.push_str(&format!("| {label} |"));
        for (_, t) in &tallies {
            table.push_str(&format!(" {} |", f(t)));
        }
        table.push('\n');
    };
    row(&mut table, "files", &|t| t.files);
    row(&mut table, "parse (maybe with warnings)", &|t| t.parsed);
    row(&mut table, "fail", &|t| t.files - t.parsed);
    for c in Category::ALL {
        if tallies.iter().any(|(_, t)| t.first.contains_key(&c)) {
            row(&mut table, &format!("fail, first error {c}"), &|t| t.first.get(&c).copied().unwrap_or(0));
        }
    }
    for c in Category::ALL {
        if tallies.iter().any(|(_, t)| t.errors.contains_key(&c)) {
            row(&mut table, &format!("errors {c}"), &|t| t.errors.get(&c).copied().unwrap_or(0));
        }
    }
    for c in Category::ALL {
        if tallies.iter().any(|(_, t)| t.warnings.contains_key(&c)) {
            row(&mut table, &format!("warnings {c} (in files that parse)"), &|t| t.warnings.get(&c).copied().unwrap_or(0));
        }
    }
    println!("{table}");

    let (_, libreswan) = &tallies[0];
    assert_eq!(libreswan.files, 2459);
    // Measured: see CORPUS-RESULTS.md. A regression in the parser shows here.
    assert!(
        libreswan.parsed * 100 >= libreswan.files * 50,
        "only {} of {} Libreswan files parse",
        libreswan.parsed,
        libreswan.files
    );
}
