//! Line lexer for ipsec.conf(5). Turns text into logical lines: section headers, `include`,
//! `version`, and indented `key=value` settings. Comments (`#` outside quotes) and blank lines
//! vanish. A line is "indented" when it starts with a space or a tab: such a line belongs to the
//! section opened by the last non-indented line.

use super::error::{Category, ConfError, Location};

/// Longest line accepted (the longest RSA keys in the wild are a few KiB).
pub const MAX_LINE_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `version 2` (or `version 2.0`).
    Version(String),
    /// `config setup`, `conn NAME`, `ca NAME`: kind and name.
    Section { kind: String, name: String },
    /// `include PATTERN`.
    Include(String),
    /// An indented `key=value` line. `quoted` tells whether the value was in double quotes.
    Setting { key: String, value: String, quoted: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexLine {
    pub line: u32,
    pub token: Token,
}

/// Lex a whole file. Errors do not stop the lexer: the bad line is skipped.
pub fn lex(file: &str, text: &str) -> (Vec<LexLine>, Vec<ConfError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(index.saturating_add(1)).unwrap_or(u32::MAX);
        let loc = Location::new(file, line_no);
        if raw.len() > MAX_LINE_LEN {
            errors.push(ConfError::new(
                &loc,
                Category::Limit,
                format!("line longer than {MAX_LINE_LEN} bytes"),
            ));
            continue;
        }
        match lex_line(raw) {
            Ok(Some(token)) => out.push(LexLine { line: line_no, token }),
            Ok(None) => {}
            Err(msg) => errors.push(ConfError::new(&loc, Category::Syntax, msg)),
        }
    }
    (out, errors)
}

fn strip_comment(s: &str) -> &str {
    // Only for lines without quotes; quoted values are handled by `split_value`.
    match s.find('#') {
        Some(pos) => s.get(..pos).unwrap_or(s),
        None => s,
    }
}

/// Lex one physical line. `Ok(None)`: blank or comment.
pub fn lex_line(raw: &str) -> Result<Option<Token>, String> {
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let indented = raw.starts_with([' ', '\t']);
    let trimmed = raw.trim_start_matches([' ', '\t']);
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    if indented {
        return lex_setting(trimmed).map(Some);
    }
    let body = strip_comment(trimmed).trim_end();
    let mut words = body.split_whitespace();
    let first = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    match first {
        "version" => match rest.as_slice() {
            [v] => Ok(Some(Token::Version((*v).to_string()))),
            _ => Err("`version` takes exactly one value, e.g. `version 2`".to_string()),
        },
        "include" => match rest.as_slice() {
            [p] => Ok(Some(Token::Include(unquote_word(p)))),
            [] => Err("`include` needs a file name".to_string()),
            _ => Err("`include` takes one file name or pattern".to_string()),
        },
        "config" | "conn" | "ca" => match rest.as_slice() {
            [name] => Ok(Some(Token::Section { kind: first.to_string(), name: (*name).to_string() })),
            [] => Err(format!("`{first}` needs a name")),
            _ => Err(format!("`{first} {}`: a section name is one word", rest.join(" "))),
        },
        _ if first.contains('=') => Err(format!(
            "`{}` is not indented: settings belong in a section and must start with a space or tab",
            first
        )),
        _ => Err(format!(
            "unexpected `{first}` at the start of a line: expected `config setup`, `conn NAME`, `include FILE` or `version 2`"
        )),
    }
}

fn unquote_word(w: &str) -> String {
    w.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(w).to_string()
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

fn lex_setting(s: &str) -> Result<Token, String> {
    let Some(eq) = s.find('=') else {
        let word = strip_comment(s).trim();
        return Err(format!("`{word}`: expected `keyword=value`"));
    };
    let key = s.get(..eq).unwrap_or("").trim_end();
    if key.is_empty() {
        return Err("missing keyword before `=`".to_string());
    }
    if !key.chars().all(is_key_char) {
        return Err(format!("`{key}` is not a valid keyword"));
    }
    let after = s.get(eq.saturating_add(1)..).unwrap_or("").trim_start_matches([' ', '\t']);
    let (value, quoted) = split_value(after).map_err(|m| format!("{key}: {m}"))?;
    Ok(Token::Setting { key: key.to_string(), value, quoted })
}

/// The value after `=`: a double-quoted string (with `\"` and `\\` escapes) or one word;
/// then only a comment may follow.
fn split_value(s: &str) -> Result<(String, bool), String> {
    if let Some(inner) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) => value.push(e),
                    None => return Err("backslash at end of line".to_string()),
                },
                '"' => {
                    let tail = inner.get(i.saturating_add(1)..).unwrap_or("").trim();
                    if !tail.is_empty() && !tail.starts_with('#') {
                        return Err(format!("unexpected `{tail}` after the closing quote"));
                    }
                    return Ok((value, true));
                }
                _ => value.push(c),
            }
        }
        return Err("unterminated quoted value".to_string());
    }
    if s.starts_with('{') {
        // Libreswan list: `{a, b}` may contain spaces without quotes
        let body = strip_comment(s).trim_end();
        return match body.find('}') {
            Some(end) => {
                let tail = body.get(end.saturating_add(1)..).unwrap_or("").trim();
                if !tail.is_empty() {
                    return Err(format!("unexpected `{tail}` after `}}`"));
                }
                Ok((body.get(..=end).unwrap_or(body).to_string(), false))
            }
            None => Err("`{` without a closing `}`".to_string()),
        };
    }
    let body = strip_comment(s).trim_end();
    let mut words = body.split_whitespace();
    let value = words.next().unwrap_or("").to_string();
    if let Some(extra) = words.next() {
        return Err(format!(
            "unexpected `{extra}` after the value `{value}`: put values that contain spaces in double quotes"
        ));
    }
    Ok((value, false))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_sections() {
        let text = "version 2\nconfig setup\n\tinterfaces=%defaultroute # c\n# x\nconn a\n  left = 1.2.3.4\n  leftid=\"@a b\" # q\ninclude /x/*.conf\n";
        let (lines, errs) = lex("f", text);
        assert!(errs.is_empty(), "{errs:?}");
        let toks: Vec<Token> = lines.into_iter().map(|l| l.token).collect();
        assert_eq!(
            toks,
            vec![
                Token::Version("2".into()),
                Token::Section { kind: "config".into(), name: "setup".into() },
                Token::Setting { key: "interfaces".into(), value: "%defaultroute".into(), quoted: false },
                Token::Section { kind: "conn".into(), name: "a".into() },
                Token::Setting { key: "left".into(), value: "1.2.3.4".into(), quoted: false },
                Token::Setting { key: "leftid".into(), value: "@a b".into(), quoted: true },
                Token::Include("/x/*.conf".into()),
            ]
        );
    }

    #[test]
    fn syntax_errors_have_lines() {
        let (_, errs) = lex("f", "conn a\n\tleft\n\tx=\"open\n\ty=a b\nleft=1\n");
        let lines: Vec<u32> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
        assert!(errs.iter().all(|e| e.category == Category::Syntax));
    }
}
