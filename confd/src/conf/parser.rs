//! Sections, `include` and `also=`: turns files into raw sections of `key=value` settings, checks
//! every keyword against the table once, then merges `also=` chains and `conn %default` into
//! one flat list of settings per conn.

use super::error::{Category, Diagnostics, Location};
use super::keywords::{self, Section, Status};
use super::lexer::{self, Token};
use super::source::FileSource;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Deepest include nesting.
pub const MAX_INCLUDE_DEPTH: usize = 10;
/// Most files read for one configuration.
pub const MAX_FILES: usize = 256;
/// Deepest `also=` chain.
pub const MAX_ALSO_DEPTH: usize = 32;
/// Most sections in one configuration.
pub const MAX_SECTIONS: usize = 10_000;

/// One `key=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub loc: Location,
}

/// A `conn` section as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawConn {
    pub name: String,
    pub loc: Location,
    pub settings: Vec<Setting>,
}

/// All sections of a configuration, includes expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawConfig {
    pub version: Option<(String, Location)>,
    pub setup: Vec<Setting>,
    /// Every `conn %default` section, concatenated in file order.
    pub defaults: Vec<Setting>,
    pub conns: Vec<RawConn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Current {
    None,
    Setup,
    Default,
    Conn(usize),
    Skipped,
}

struct Reader<'a> {
    source: &'a dyn FileSource,
    raw: RawConfig,
    files_read: usize,
    stack: Vec<PathBuf>,
    diags: &'a mut Diagnostics,
    conn_index: HashMap<String, usize>,
}

/// Read `path` and everything it includes.
pub fn read_config(source: &dyn FileSource, path: &Path, diags: &mut Diagnostics) -> RawConfig {
    let mut reader = Reader {
        source,
        raw: RawConfig::default(),
        files_read: 0,
        stack: Vec::new(),
        diags,
        conn_index: HashMap::new(),
    };
    let top = Location::new(path.display().to_string(), 0);
    reader.read_file(path, &top, true);
    reader.raw
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Reader<'_> {
    fn read_file(&mut self, path: &Path, from: &Location, top: bool) {
        if self.stack.iter().any(|p| p == path) {
            self.diags.error(from, Category::Limit, format!("include loop: `{}` includes itself", path.display()));
            return;
        }
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            self.diags.error(from, Category::Limit, format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"));
            return;
        }
        if self.files_read >= MAX_FILES {
            self.diags.error(from, Category::Limit, format!("more than {MAX_FILES} files included"));
            return;
        }
        self.files_read = self.files_read.saturating_add(1);
        let bytes = match self.source.read(path) {
            Ok(b) => b,
            Err(e) => {
                let what = if top { "cannot read" } else { "cannot read include file" };
                let cat = if top { Category::Io } else { Category::MissingInclude };
                let cat = if e.kind() == std::io::ErrorKind::InvalidData { Category::Limit } else { cat };
                let msg = e.to_string();
                self.diags.error(from, cat, format!("{what} `{}`: {msg}", path.display()));
                return;
            }
        };
        let name = path.display().to_string();
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t.to_string(),
            Err(e) => {
                let upto = bytes.get(..e.valid_up_to()).unwrap_or(&[]);
                let line = upto.iter().filter(|b| **b == b'\n').count().saturating_add(1);
                let line = u32::try_from(line).unwrap_or(u32::MAX);
                self.diags.error(&Location::new(name.clone(), line), Category::Syntax, "not valid UTF-8");
                return;
            }
        };
        let (lines, errors) = lexer::lex(&name, &text);
        self.diags.errors.extend(errors);
        self.stack.push(path.to_path_buf());
        let mut current = Current::None;
        for l in lines {
            let loc = Location::new(name.clone(), l.line);
            match l.token {
                Token::Version(v) => {
                    current = Current::None;
                    if !matches!(v.as_str(), "2" | "2.0") {
                        self.diags.error(&loc, Category::BadValue, format!("unsupported `version {v}`: expected `version 2`"));
                    }
                    if self.raw.version.is_none() {
                        self.raw.version = Some((v, loc));
                    }
                }
                Token::Include(pattern) => {
                    current = Current::None;
                    self.include(path, &pattern, &loc);
                }
                Token::Section { kind, name: sname } => {
                    current = self.open_section(&kind, &sname, &loc);
                }
                Token::Setting { key, value, .. } => {
                    let setting = Setting { key, value, loc };
                    self.add_setting(current, setting);
                }
            }
        }
        self.stack.pop();
    }

    fn include(&mut self, including: &Path, pattern: &str, loc: &Location) {
        let base = including.parent().unwrap_or(Path::new(""));
        let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
        if has_glob_chars(pattern) {
            let pat = full.display().to_string();
            match self.source.glob(&pat) {
                Ok(paths) if paths.is_empty() => {
                    self.diags.warn(loc, Category::MissingInclude, format!("include pattern `{pattern}` matched no file"));
                }
                Ok(paths) => {
                    for p in paths {
                        self.read_file(&p, loc, false);
                    }
                }
                Err(e) => self.diags.error(loc, Category::Syntax, format!("bad include pattern `{pattern}`: {e}")),
            }
        } else {
            self.read_file(&full, loc, false);
        }
    }

    fn open_section(&mut self, kind: &str, name: &str, loc: &Location) -> Current {
        let count = self.raw.conns.len();
        match kind {
            "config" if name == "setup" => Current::Setup,
            "config" => {
                self.diags.error(loc, Category::Syntax, format!("unknown section `config {name}`: expected `config setup`"));
                Current::Skipped
            }
            "ca" => {
                self.diags.error(
                    loc,
                    Category::UnsupportedKeyword,
                    format!("`ca {name}` sections are strongSwan's; certificates are not supported yet"),
                );
                Current::Skipped
            }
            _ if name == "%default" => Current::Default,
            _ if name.starts_with('%') => {
                self.diags.error(loc, Category::Syntax, format!("`conn {name}`: only `%default` may start with `%`"));
                Current::Skipped
            }
            _ if count >= MAX_SECTIONS => {
                self.diags.error(loc, Category::Limit, format!("more than {MAX_SECTIONS} conn sections"));
                Current::Skipped
            }
            _ => {
                if let Some(first) = self.conn_index.get(name).and_then(|i| self.raw.conns.get(*i)) {
                    let msg = format!("conn `{name}` is already defined at {}", first.loc);
                    self.diags.error(loc, Category::Duplicate, msg);
                    return Current::Skipped;
                }
                self.conn_index.insert(name.to_string(), count);
                self.raw.conns.push(RawConn { name: name.to_string(), loc: loc.clone(), settings: Vec::new() });
                Current::Conn(count)
            }
        }
    }

    fn add_setting(&mut self, current: Current, setting: Setting) {
        let section = match current {
            Current::None => {
                self.diags.error(
                    &setting.loc,
                    Category::Syntax,
                    format!("`{}=` outside a section: indented lines belong to the `conn` or `config setup` above", setting.key),
                );
                return;
            }
            Current::Skipped => return,
            Current::Setup => Section::Setup,
            Current::Default | Current::Conn(_) => Section::Conn,
        };
        let section_name = match current {
            Current::Setup => "config setup".to_string(),
            Current::Default => "conn %default".to_string(),
            Current::Conn(i) => format!("conn {}", self.raw.conns.get(i).map_or("", |c| c.name.as_str())),
            _ => String::new(),
        };
        if !check_keyword(&setting, section, &section_name, self.diags) {
            return;
        }
        let key = setting.key.to_ascii_lowercase();
        let list = match current {
            Current::Setup => &mut self.raw.setup,
            Current::Default => &mut self.raw.defaults,
            Current::Conn(i) => match self.raw.conns.get_mut(i) {
                Some(c) => &mut c.settings,
                None => return,
            },
            _ => return,
        };
        if key != "also" && !matches!(current, Current::Default) {
            if let Some(first) = list.iter().find(|s| s.key.eq_ignore_ascii_case(&key)) {
                let msg = format!("duplicate keyword `{}` (first set at line {})", setting.key, first.loc.line);
                self.diags.error(&setting.loc, Category::Duplicate, msg);
                return;
            }
        }
        if key == "also" && matches!(current, Current::Default) {
            self.diags.error(&setting.loc, Category::WrongSection, "`also=` is not allowed in `conn %default`");
            return;
        }
        list.push(setting);
    }
}

/// Check one setting against the keyword table. Reports unknown, unsupported, obsolete and
/// misplaced keywords; returns whether the setting is kept for the typed model.
pub fn check_keyword(setting: &Setting, section: Section, section_name: &str, diags: &mut Diagnostics) -> bool {
    let key = setting.key.as_str();
    let loc = &setting.loc;
    let lc = key.to_ascii_lowercase();
    if lc.starts_with("x-") || lc.starts_with("x_") {
        diags.warn(loc, Category::UnsupportedKeyword, format!("user extension keyword `{key}` ignored"));
        return false;
    }
    let Some(entry) = keywords::lookup(key, section) else {
        let spellings = keywords::spellings(section);
        let hint = keywords::suggest(key, spellings.iter().map(String::as_str))
            .map(|s| format!(": did you mean `{s}`?"))
            .unwrap_or_default();
        diags.error(loc, Category::UnknownKeyword, format!("unknown keyword `{key}` in {section_name}{hint}"));
        return false;
    };
    if entry.section != section {
        let belongs = match entry.section {
            Section::Setup => "config setup",
            Section::Conn => "a conn section",
        };
        diags.error(loc, Category::WrongSection, format!("keyword `{key}` belongs in {belongs}, not in {section_name}"));
        return false;
    }
    match entry.status {
        Status::Supported => true,
        Status::IgnoredWarn(reason) => {
            diags.warn(loc, Category::UnsupportedKeyword, format!("unsupported keyword `{key}` {reason}"));
            false
        }
        Status::Obsolete(reason) => {
            diags.warn(loc, Category::ObsoleteKeyword, format!("obsolete keyword `{key}` ignored: {reason}"));
            false
        }
        Status::Unsupported(reason) => {
            diags.error(loc, Category::UnsupportedKeyword, format!("unsupported keyword `{key}`: {reason}"));
            false
        }
    }
}

/// A conn with `also=` and `%default` folded in: every key once, nearest definition first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedConn {
    pub name: String,
    pub loc: Location,
    /// Key (lower case) → setting.
    pub settings: BTreeMap<String, Setting>,
    /// Only used through another conn's `also=` (and not started by `auto=` itself).
    pub fragment: bool,
}

fn also_targets(conn: &RawConn) -> impl Iterator<Item = (&str, &Location)> {
    conn.settings
        .iter()
        .filter(|s| s.key.eq_ignore_ascii_case("also"))
        .flat_map(|s| s.value.split([' ', ',', '\t']).filter(|n| !n.is_empty()).map(move |n| (n, &s.loc)))
}

/// Report missing `also=` targets and cycles, each once.
fn check_also_graph(raw: &RawConfig, index: &HashMap<&str, usize>, diags: &mut Diagnostics) {
    // 0 = unvisited, 1 = on stack, 2 = done
    let mut state = vec![0u8; raw.conns.len()];
    for start in 0..raw.conns.len() {
        if state.get(start).copied() != Some(0) {
            continue;
        }
        // iterative DFS: (node, next edge index)
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        if let Some(s) = state.get_mut(start) {
            *s = 1;
        }
        while let Some((node, edge)) = stack.last().copied() {
            let Some(conn) = raw.conns.get(node) else { break };
            let target = also_targets(conn).nth(edge);
            if let Some(top) = stack.last_mut() {
                top.1 = edge.saturating_add(1);
            }
            match target {
                None => {
                    if let Some(s) = state.get_mut(node) {
                        *s = 2;
                    }
                    stack.pop();
                }
                Some((name, loc)) => match index.get(name).copied() {
                    None => {
                        let hint = keywords::suggest(name, raw.conns.iter().map(|c| c.name.as_str()))
                            .map(|s| format!(": did you mean `{s}`?"))
                            .unwrap_or_default();
                        diags.error(loc, Category::MissingAlso, format!("also={name}: no conn `{name}`{hint}"));
                    }
                    Some(t) => match state.get(t).copied() {
                        Some(1) => {
                            let mut path: Vec<&str> = stack
                                .iter()
                                .skip_while(|(n, _)| *n != t)
                                .filter_map(|(n, _)| raw.conns.get(*n).map(|c| c.name.as_str()))
                                .collect();
                            path.push(name);
                            diags.error(loc, Category::AlsoCycle, format!("also={name} makes a cycle: {}", path.join(" -> ")));
                        }
                        Some(0) => {
                            if stack.len() > MAX_ALSO_DEPTH {
                                diags.error(loc, Category::Limit, format!("also= chain deeper than {MAX_ALSO_DEPTH}"));
                            } else {
                                if let Some(s) = state.get_mut(t) {
                                    *s = 1;
                                }
                                stack.push((t, 0));
                            }
                        }
                        _ => {}
                    },
                },
            }
        }
    }
}

/// Fold `also=` and `conn %default` into each conn.
pub fn resolve(raw: &RawConfig, diags: &mut Diagnostics) -> Vec<ResolvedConn> {
    let index: HashMap<&str, usize> = raw.conns.iter().enumerate().map(|(i, c)| (c.name.as_str(), i)).collect();
    check_also_graph(raw, &index, diags);
    let referenced: BTreeSet<&str> = raw.conns.iter().flat_map(|c| also_targets(c).map(|(n, _)| n)).collect();
    let mut out = Vec::with_capacity(raw.conns.len());
    for (i, conn) in raw.conns.iter().enumerate() {
        let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
        let mut visited: BTreeSet<usize> = BTreeSet::new();
        fold(raw, &index, i, 0, &mut visited, &mut settings);
        for s in &raw.defaults {
            // later %default sections override earlier ones
            let key = s.key.to_ascii_lowercase();
            let from_default = settings.get(&key).is_none_or(|cur| raw.defaults.iter().any(|d| d.loc == cur.loc));
            if from_default {
                settings.insert(key, s.clone());
            }
        }
        settings.remove("also");
        let has_auto = conn.settings.iter().any(|s| s.key.eq_ignore_ascii_case("auto"));
        let fragment = referenced.contains(conn.name.as_str()) && !has_auto;
        out.push(ResolvedConn { name: conn.name.clone(), loc: conn.loc.clone(), settings, fragment });
    }
    out
}

fn fold(
    raw: &RawConfig,
    index: &HashMap<&str, usize>,
    node: usize,
    depth: usize,
    visited: &mut BTreeSet<usize>,
    settings: &mut BTreeMap<String, Setting>,
) {
    if depth > MAX_ALSO_DEPTH || !visited.insert(node) {
        return; // reported by check_also_graph
    }
    let Some(conn) = raw.conns.get(node) else { return };
    for s in conn.settings.iter().filter(|s| !s.key.eq_ignore_ascii_case("also")) {
        settings.entry(s.key.to_ascii_lowercase()).or_insert_with(|| s.clone());
    }
    let targets: Vec<usize> = also_targets(conn).filter_map(|(n, _)| index.get(n).copied()).collect();
    for t in targets {
        fold(raw, index, t, depth.saturating_add(1), visited, settings);
    }
}
