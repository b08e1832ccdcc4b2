//! Turns the records of one file into entries. The grammar (ipsec.secrets(5)):
//!
//! ```text
//! entry    = [ids] ":" type value…        (ids may end in a colon: "10.0.0.1: PSK …")
//!          | [ids] quoted-string           (old form: a PSK without ": PSK")
//!          | "include" pattern
//! ids      = id { id }                     (see ids.rs)
//! type     = PSK value | RSA "{" { Name: value } "}" | XAUTH … | PIN … | PPKS … | EAP … | …
//! value    = "double quoted" | 'single quoted' | 0x<hex> | 0s<base64> | 0t<text> | word
//! ```
//!
//! A word ending in `:` ends the IDs (the colon is stripped), unless the
//! word is itself an IP address (e.g. `fe80::`); a lone `:` does too.
//! `PSK`, `RSA` and the other types are matched without regard to case.
//! `: RSA` followed by a file name, NSS nickname or CKAID is refused.
//! XAUTH, PIN, PPKS, EAP, NTLM and ECDSA entries are skipped with a warning.
//! Error messages never repeat secret values.

use std::path::Path;

use zeroize::Zeroizing;

use super::error::{ErrorCategory, SecretsError, SecretsWarning};
use super::ids::IdSelector;
use super::lexer::{Record, Token, TokenKind};
use super::lookup::{Origin, Psk, PskEntry, RsaEntry};

/// One parsed record.
#[derive(Debug)]
pub(crate) enum Item {
    Include { pattern: String, line: usize },
    Psk(PskEntry),
    Rsa(Box<RsaEntry>),
    Skipped(SecretsWarning),
}

/// Secret types that are recognised but not handled: skipped with a warning.
const SKIPPED_TYPES: [&str; 7] = ["XAUTH", "PIN", "PPKS", "EAP", "NTLM", "ECDSA", "P12"];

pub(crate) fn parse_record(file: &Path, record: &Record<'_>) -> Result<Item, SecretsError> {
    let tokens = record.tokens.as_slice();
    let error = |line: usize, category: ErrorCategory, message: String| {
        SecretsError::new(file, line, category, message)
    };

    if let Some((first, rest)) = tokens.split_first() {
        if first.is_word("include") {
            return match rest {
                [pattern] => Ok(Item::Include {
                    pattern: pattern.text.to_string(),
                    line: first.line,
                }),
                [] => Err(error(
                    first.line,
                    ErrorCategory::Syntax,
                    "include needs a file name or pattern".into(),
                )),
                _ => Err(error(
                    first.line,
                    ErrorCategory::Syntax,
                    "include takes exactly one file name or pattern".into(),
                )),
            };
        }
    }

    let (id_tokens, trailing_id, after_separator) = match split_at_separator(tokens) {
        Some(split) => split,
        None => match tokens.split_last() {
            // Old form: IDs then a quoted PSK, without the colon.
            Some((last, ids)) if last.kind == TokenKind::Quoted => {
                (ids, None, tokens.get(tokens.len() - 1..).unwrap_or(&[]))
            }
            _ => {
                return Err(error(
                    record.line,
                    ErrorCategory::Syntax,
                    "expected `:` (followed by white space) between the IDs and the secret".into(),
                ))
            }
        },
    };

    let mut ids = Vec::with_capacity(id_tokens.len() + 1);
    for token in id_tokens {
        ids.push(
            IdSelector::parse_token(token.text, token.kind == TokenKind::Quoted)
                .map_err(|message| error(token.line, ErrorCategory::Id, message))?,
        );
    }
    if let Some((text, line)) = trailing_id {
        ids.push(
            IdSelector::parse_token(text, false)
                .map_err(|message| error(line, ErrorCategory::Id, message))?,
        );
    }
    let origin = Origin {
        file: file.to_path_buf(),
        line: record.line,
    };

    let Some((kind, values)) = after_separator.split_first() else {
        return Err(error(
            record.line,
            ErrorCategory::Syntax,
            "missing secret after `:`".into(),
        ));
    };
    if kind.kind == TokenKind::Quoted {
        // `ids : "secret"` and the colon-less old form: a PSK.
        let secret =
            psk_value(kind).map_err(|message| error(kind.line, ErrorCategory::Psk, message))?;
        if let Some(extra) = values.first() {
            return Err(error(
                extra.line,
                ErrorCategory::Syntax,
                "unexpected text after the PSK".into(),
            ));
        }
        return Ok(Item::Psk(PskEntry {
            ids,
            secret,
            origin,
        }));
    }

    let kind_name = kind.text.to_ascii_uppercase();
    match kind_name.as_str() {
        "PSK" => {
            let Some((value, extra)) = values.split_first() else {
                return Err(error(
                    kind.line,
                    ErrorCategory::Psk,
                    "PSK without a value".into(),
                ));
            };
            let secret = psk_value(value)
                .map_err(|message| error(value.line, ErrorCategory::Psk, message))?;
            if let Some(extra) = extra.first() {
                return Err(error(
                    extra.line,
                    ErrorCategory::Syntax,
                    "unexpected text after the PSK".into(),
                ));
            }
            Ok(Item::Psk(PskEntry {
                ids,
                secret,
                origin,
            }))
        }
        "RSA" => {
            let key = rsa_block(file, kind, values)?;
            Ok(Item::Rsa(Box::new(RsaEntry { ids, key, origin })))
        }
        name if SKIPPED_TYPES.contains(&name) => Ok(Item::Skipped(SecretsWarning {
            file: file.to_path_buf(),
            line: kind.line,
            message: format!("{name} secrets are not supported; entry skipped"),
        })),
        _ => Err(error(
            kind.line,
            ErrorCategory::Unsupported,
            format!("unknown secret type {:?} (expected PSK or RSA)", kind.text),
        )),
    }
}

/// Find the `:` that ends the IDs. Returns the ID tokens, an ID glued to
/// the colon (`10.0.0.1:`) and the tokens after the colon.
#[allow(clippy::type_complexity)]
fn split_at_separator<'t, 'a>(
    tokens: &'t [Token<'a>],
) -> Option<(&'t [Token<'a>], Option<(&'a str, usize)>, &'t [Token<'a>])> {
    for (index, token) in tokens.iter().enumerate() {
        if token.kind != TokenKind::Word {
            continue;
        }
        let before = tokens.get(..index).unwrap_or(&[]);
        let after = tokens.get(index + 1..).unwrap_or(&[]);
        if token.text == ":" {
            return Some((before, None, after));
        }
        if let Some(id_text) = token.text.strip_suffix(':') {
            if token.text.parse::<std::net::IpAddr>().is_err() {
                return Some((before, Some((id_text, token.line)), after));
            }
        }
    }
    None
}

fn psk_value(token: &Token<'_>) -> Result<Psk, String> {
    let bytes: Zeroizing<Vec<u8>> = if token.kind == TokenKind::Quoted {
        Zeroizing::new(token.text.as_bytes().to_vec())
    } else {
        let prefix = token.text.get(..2).map(str::to_ascii_lowercase);
        match prefix.as_deref() {
            Some("0t") => Zeroizing::new(token.text.get(2..).unwrap_or("").as_bytes().to_vec()),
            Some("0x") | Some("0s") => {
                keyfmt::encoding::decode_prefixed(token.text).map_err(|e| format!("PSK: {e}"))?
            }
            _ => Zeroizing::new(token.text.as_bytes().to_vec()),
        }
    };
    if bytes.is_empty() {
        return Err("empty PSK".to_string());
    }
    Ok(Psk::new(bytes))
}

fn rsa_block(
    file: &Path,
    kind: &Token<'_>,
    values: &[Token<'_>],
) -> Result<keyfmt::RsaPrivateKey, SecretsError> {
    let error = |line: usize, category: ErrorCategory, message: String| {
        SecretsError::new(file, line, category, message)
    };
    let Some((open, body)) = values.split_first() else {
        return Err(error(
            kind.line,
            ErrorCategory::RsaKey,
            "RSA needs a `{ … }` key block".into(),
        ));
    };
    if !open.is_word("{") {
        return Err(error(
            open.line,
            ErrorCategory::Unsupported,
            format!(
                "RSA private keys by reference ({:?}: a key file, NSS nickname or CKAID) are not supported; \
                 put the key in an `: RSA {{ … }}` block (ipsec rsasigkey)",
                open.text
            ),
        ));
    }
    let mut fields: Vec<(&str, &str)> = Vec::new();
    let mut field_lines: Vec<usize> = Vec::new();
    let mut remaining = body;
    let mut closed = false;
    while let Some((name, rest)) = remaining.split_first() {
        if name.is_word("}") {
            if let Some(extra) = rest.first() {
                return Err(error(
                    extra.line,
                    ErrorCategory::Syntax,
                    "unexpected text after the `}` of the RSA block".into(),
                ));
            }
            closed = true;
            break;
        }
        if name.kind != TokenKind::Word || !name.text.ends_with(':') || name.text.len() < 2 {
            return Err(error(
                name.line,
                ErrorCategory::RsaKey,
                "expected a field name ending in `:` (such as `Modulus:`) in the RSA key block"
                    .into(),
            ));
        }
        let Some((value, rest)) = rest.split_first() else {
            return Err(error(
                name.line,
                ErrorCategory::RsaKey,
                format!("RSA key field {} has no value", name.text),
            ));
        };
        fields.push((name.text, value.text));
        field_lines.push(name.line);
        remaining = rest;
    }
    if !closed {
        return Err(error(
            open.line,
            ErrorCategory::Syntax,
            "RSA key block is not closed by `}` (the `}` must be indented: one in column 1 starts a new entry)".into(),
        ));
    }
    let key = keyfmt::RsaPrivateKey::from_fields(&fields).map_err(|e| {
        let line = e
            .field_index
            .and_then(|i| field_lines.get(i).copied())
            .unwrap_or(kind.line);
        error(line, ErrorCategory::RsaKey, e.message)
    })?;
    key.check_consistency()
        .map_err(|e| error(kind.line, ErrorCategory::RsaKey, e.message))?;
    Ok(key)
}
