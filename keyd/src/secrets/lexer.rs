//! Splits an ipsec.secrets file into records and tokens.
//!
//! * A record starts on a line whose first character is not white space;
//!   every following line that starts with white space continues it.
//! * Blank lines and lines whose first non-blank character is `#` are
//!   skipped anywhere; a token starting with `#` ends the line (comment).
//! * A token is a run of non-blank characters, or a string quoted with `"`
//!   or `'` (no escapes; it ends at the same quote on the same line and must
//!   be followed by white space or the end of the line).

/// How a token was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Word,
    Quoted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: TokenKind,
    /// The text, without quotes.
    pub text: &'a str,
    /// 1-based line number.
    pub line: usize,
}

impl Token<'_> {
    pub fn is_word(&self, word: &str) -> bool {
        self.kind == TokenKind::Word && self.text == word
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    /// Line of the record's first token.
    pub line: usize,
    pub tokens: Vec<Token<'a>>,
}

/// A lexical error: line and message.
pub(crate) type LexError = (usize, String);

pub(crate) fn split_records(text: &str) -> Result<Vec<Record<'_>>, LexError> {
    let mut records: Vec<Record<'_>> = Vec::new();
    for (index, raw_line) in text.split('\n').enumerate() {
        let line_number = index + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let tokens = tokenize_line(line, line_number)?;
        if tokens.is_empty() {
            continue;
        }
        let starts_in_column_one = line.chars().next().is_some_and(|c| !c.is_whitespace());
        if starts_in_column_one {
            records.push(Record {
                line: line_number,
                tokens,
            });
        } else {
            match records.last_mut() {
                Some(record) => record.tokens.extend(tokens),
                None => {
                    return Err((
                        line_number,
                        "indented line outside an entry (entries start in column 1; only continuation lines are indented)"
                            .to_string(),
                    ))
                }
            }
        }
    }
    Ok(records)
}

fn tokenize_line(line: &str, line_number: usize) -> Result<Vec<Token<'_>>, LexError> {
    let mut tokens = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start();
        let Some(first) = rest.chars().next() else {
            break;
        };
        if first == '#' {
            break;
        }
        if first == '"' || first == '\'' {
            let after_open = rest.get(1..).unwrap_or("");
            let Some(close) = after_open.find(first) else {
                return Err((line_number, format!("unterminated {first}quoted string")));
            };
            let text = after_open.get(..close).unwrap_or("");
            let after_close = after_open.get(close + 1..).unwrap_or("");
            if after_close
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace())
            {
                return Err((
                    line_number,
                    format!("unexpected text right after the closing {first}"),
                ));
            }
            tokens.push(Token {
                kind: TokenKind::Quoted,
                text,
                line: line_number,
            });
            rest = after_close;
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let text = rest.get(..end).unwrap_or("");
            tokens.push(Token {
                kind: TokenKind::Word,
                text,
                line: line_number,
            });
            rest = rest.get(end..).unwrap_or("");
        }
    }
    Ok(tokens)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn records_and_continuations() {
        let text = "# c\n@a @b : PSK \"x y\" # trailing\n\n@c\n   @d : PSK 'q'\r\n";
        let records = split_records(text).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].line, 2);
        assert_eq!(records[0].tokens[4].text, "x y");
        assert_eq!(records[0].tokens[4].kind, TokenKind::Quoted);
        assert_eq!(records[0].tokens.len(), 5);
        assert_eq!(records[1].tokens.len(), 5);
        assert_eq!(records[1].tokens[1].line, 5);
        assert_eq!(records[1].tokens[4].text, "q");
    }

    #[test]
    fn errors() {
        assert_eq!(split_records("  @a : PSK \"x\"").unwrap_err().0, 1);
        assert_eq!(
            split_records("@a : PSK \"x").unwrap_err().1,
            "unterminated \"quoted string"
        );
        assert_eq!(
            split_records("@a : PSK \"x\"y").unwrap_err().1,
            "unexpected text right after the closing \""
        );
    }

    #[test]
    fn hash_inside_word_is_kept() {
        let records = split_records("@#0a01 : PSK \"x\"").unwrap();
        assert_eq!(records[0].tokens[0].text, "@#0a01");
    }
}
