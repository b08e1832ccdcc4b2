//! ipsec.secrets grammar, includes, bounds and PSK lookup, on in-memory files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use keyd::secrets::{
    load_secrets, parse_secrets_bytes, ErrorCategory, IdSelector, MatchRank, MemorySource, Secrets,
    SecretsError, MAX_FILE_BYTES,
};

const FILE: &str = "/etc/ipsec.secrets";

fn parse(text: &str) -> Result<Secrets, SecretsError> {
    parse_secrets_bytes(Path::new(FILE), text.as_bytes())
}

fn id(text: &str) -> IdSelector {
    IdSelector::parse(text).unwrap()
}

fn psk_for(secrets: &Secrets, local: &str, remote: &str) -> Option<Vec<u8>> {
    secrets
        .lookup_psk(&id(local), &id(remote))
        .map(|m| m.entry.secret.expose_bytes().to_vec())
}

fn err(text: &str) -> (usize, ErrorCategory, String) {
    let error = parse(text).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!("{FILE}:")),
        "{error}"
    );
    (error.line, error.category, error.to_string())
}

#[test]
fn psk_forms() {
    let secrets = parse(concat!(
        "# comment\n",
        "@west @east : PSK \"double quoted\"\n",
        "192.0.2.1 192.0.2.2 : PSK 'single quoted'\n",
        "@a @b : psk 0x73656372_6574\n",
        "@c @d : PSK 0sc2VjcmV0\n",
        "@e @f : PSK unquoted-word\n",
        "@g @h : PSK 0tplain\n",
        "10.0.0.1 10.0.0.2: PSK \"glued colon\"\n",
        "10.0.0.3 10.0.0.4 \"old form without colon\"\n",
        "@i @j : \"no type\"\n",
        ": PSK \"default\"\n",
    ))
    .unwrap();
    assert_eq!(secrets.psk_count(), 10);
    assert_eq!(secrets.rsa_count(), 0);
    assert_eq!(
        psk_for(&secrets, "@east", "@west").unwrap(),
        b"double quoted"
    );
    assert_eq!(
        psk_for(&secrets, "192.0.2.1", "192.0.2.2").unwrap(),
        b"single quoted"
    );
    assert_eq!(psk_for(&secrets, "@a", "@b").unwrap(), b"secret");
    assert_eq!(psk_for(&secrets, "@c", "@d").unwrap(), b"secret");
    assert_eq!(psk_for(&secrets, "@e", "@f").unwrap(), b"unquoted-word");
    assert_eq!(psk_for(&secrets, "@g", "@h").unwrap(), b"plain");
    assert_eq!(
        psk_for(&secrets, "10.0.0.2", "10.0.0.1").unwrap(),
        b"glued colon"
    );
    assert_eq!(
        psk_for(&secrets, "10.0.0.3", "10.0.0.4").unwrap(),
        b"old form without colon"
    );
    assert_eq!(psk_for(&secrets, "@i", "@j").unwrap(), b"no type");
    assert_eq!(psk_for(&secrets, "@x", "@y").unwrap(), b"default");
    assert_eq!(
        secrets.psk_entries()[1].origin.to_string(),
        "/etc/ipsec.secrets:3"
    );
}

#[test]
fn continuation_lines_and_comments() {
    let secrets = parse(concat!(
        "@east @west\n",
        "    # a comment inside the entry\n",
        "\t@road\n",
        "  : PSK \"spans lines\" # trailing comment\n",
    ))
    .unwrap();
    assert_eq!(secrets.psk_count(), 1);
    assert_eq!(secrets.psk_entries()[0].ids.len(), 3);
    assert_eq!(psk_for(&secrets, "@road", "@west").unwrap(), b"spans lines");
}

#[test]
fn lookup_prefers_exact_then_wildcard_then_default() {
    let secrets = parse(concat!(
        ": PSK \"default\"\n",
        "%any %any : PSK \"any-any\"\n",
        "@east : PSK \"east-alone\"\n",
        "@east %any : PSK \"east-any\"\n",
        "@east @west : PSK \"east-west\"\n",
        "@east @west : PSK \"second east-west\"\n",
        "%any6 @east : PSK \"east-any6\"\n",
    ))
    .unwrap();
    let best = secrets.lookup_psk(&id("@east"), &id("@west")).unwrap();
    assert_eq!(
        (best.rank, best.entry.secret.expose_bytes()),
        (MatchRank::Exact, &b"east-west"[..])
    );
    assert!(
        best.ambiguous,
        "a tied entry with a different secret is flagged"
    );
    let best = secrets.lookup_psk(&id("@east"), &id("@road")).unwrap();
    assert_eq!(best.rank, MatchRank::OneSideWildcard);
    assert_eq!(best.entry.secret.expose_bytes(), b"east-any");
    let best = secrets.lookup_psk(&id("@east"), &id("192.0.2.9")).unwrap();
    assert_eq!(best.entry.secret.expose_bytes(), b"east-any");
    let best = secrets
        .lookup_psk(&id("@east"), &id("2001:db8::9"))
        .unwrap();
    assert_eq!(
        best.entry.secret.expose_bytes(),
        b"east-any6",
        "%any covers IPv4 only, %any6 IPv6"
    );
    let best = secrets.lookup_psk(&id("@north"), &id("@south")).unwrap();
    assert_eq!(
        (best.rank, best.entry.secret.expose_bytes()),
        (MatchRank::WildcardOnly, &b"any-any"[..])
    );

    let only_named = parse("@east : PSK \"east-alone\"\n: PSK \"default\"\n").unwrap();
    let best = only_named.lookup_psk(&id("@east"), &id("@west")).unwrap();
    assert_eq!(
        (best.rank, best.entry.secret.expose_bytes()),
        (MatchRank::LocalOnly, &b"east-alone"[..])
    );
    let best = only_named.lookup_psk(&id("@west"), &id("@east")).unwrap();
    assert_eq!(best.rank, MatchRank::Default);

    let none = parse("@a @b : PSK \"x\"\n").unwrap();
    assert!(none.lookup_psk(&id("@a"), &id("@c")).is_none());
}

#[test]
fn rsa_block_loads_and_is_indexed_by_public_key() {
    let body = include_str!("../../keyfmt/testdata/cassidy-e3.block");
    let text =
        format!("@cassidy : RSA {{\n{body}\t}}\n# do not change the indenting of that \"}}\"\n");
    let secrets = parse(&text).unwrap();
    assert_eq!(secrets.rsa_count(), 1);
    let entry = &secrets.rsa_entries()[0];
    assert_eq!(entry.ids, vec![id("@cassidy")]);
    assert_eq!(entry.key.public_key().exponent(), [3]);
    let public = keyfmt::parse_rsasigkey(&entry.key.public_key().to_rfc3110_base64()).unwrap();
    assert!(secrets.rsa_key_for(&public).is_some());
    assert!(secrets.rsa_key_for_local_id(&id("@cassidy")).is_some());
    assert!(secrets.rsa_key_for_local_id(&id("@other")).is_none());

    // A generated-looking block written by our renderer loads back.
    let rendered = keyfmt::render_rsa_block(&entry.key, "cassidy", "date");
    assert_eq!(parse(&rendered).unwrap().rsa_entries()[0].key, entry.key);

    // `}` in column 1 starts a new record: the block is not closed.
    let unindented = format!(": RSA {{\n{body}}}\n");
    let (line, category, text) = err(&unindented);
    assert_eq!((line, category), (1, ErrorCategory::Syntax));
    assert!(text.contains("the `}` must be indented"), "{text}");

    // A field error names the field's line; secrets are not echoed.
    let broken = format!(
        ": RSA {{\n{}\tPrime1: 0xZZhunterZZ\n\t}}\n",
        body.replace("Prime1:", "#Prime1:")
    );
    let (line, category, text) = err(&broken);
    assert_eq!((line, category), (16, ErrorCategory::RsaKey));
    assert!(!text.contains("hunter"), "{text}");
}

#[test]
fn errors_name_file_and_line() {
    let cases: &[(&str, usize, ErrorCategory, &str)] = &[
        ("@a @b PSK x\n", 1, ErrorCategory::Syntax, "expected `:`"),
        (
            "\n\n@a : PSK \"x\n",
            3,
            ErrorCategory::Syntax,
            "unterminated",
        ),
        (
            "  @a : PSK \"x\"\n",
            1,
            ErrorCategory::Syntax,
            "indented line outside an entry",
        ),
        (
            "@a @b :\n",
            1,
            ErrorCategory::Syntax,
            "missing secret after `:`",
        ),
        (
            "@a @b : PSK\n",
            1,
            ErrorCategory::Psk,
            "PSK without a value",
        ),
        ("@a @b : PSK \"\"\n", 1, ErrorCategory::Psk, "empty PSK"),
        (
            "@a @b : PSK 0xabc\n",
            1,
            ErrorCategory::Psk,
            "PSK: not valid hex",
        ),
        (
            "@a @b : PSK 0s!!!!\n",
            1,
            ErrorCategory::Psk,
            "PSK: not valid base64",
        ),
        (
            "@a @b : PSK \"x\" \"y\"\n",
            1,
            ErrorCategory::Syntax,
            "unexpected text after the PSK",
        ),
        (
            "east west : PSK \"x\"\n",
            1,
            ErrorCategory::Id,
            "host names are not looked up",
        ),
        (
            "@a : FOO \"x\"\n",
            1,
            ErrorCategory::Unsupported,
            "unknown secret type \"FOO\"",
        ),
        (
            ": RSA /etc/ipsec.d/private/key.pem\n",
            1,
            ErrorCategory::Unsupported,
            "by reference",
        ),
        (
            ": RSA \"nickname\"\n",
            1,
            ErrorCategory::Unsupported,
            "by reference",
        ),
        (
            ": RSA\n",
            1,
            ErrorCategory::RsaKey,
            "needs a `{ … }` key block",
        ),
        (
            "include\n",
            1,
            ErrorCategory::Syntax,
            "include needs a file name",
        ),
        ("include a b\n", 1, ErrorCategory::Syntax, "exactly one"),
        (
            "@a @b : PSK \"x\"\ninclude missing.secrets\n",
            2,
            ErrorCategory::Include,
            "included file /etc/missing.secrets not found",
        ),
    ];
    for (text, line, category, needle) in cases {
        let (got_line, got_category, message) = err(text);
        assert_eq!(
            (got_line, got_category),
            (*line, *category),
            "{text:?} → {message}"
        );
        assert!(message.contains(needle), "{text:?} → {message}");
        assert!(
            message.starts_with(&format!("{FILE}:{line}: ")),
            "{message}"
        );
    }
}

#[test]
fn unsupported_types_are_skipped_with_warning() {
    let secrets = parse("@user : XAUTH \"pw\"\n: PIN %smartcard \"1234\"\n@a @b : PPKS \"id\" \"ppk\"\n@a @b : PSK \"x\"\n").unwrap();
    assert_eq!(secrets.psk_count(), 1);
    let warnings: Vec<String> = secrets.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "/etc/ipsec.secrets:1: XAUTH secrets are not supported; entry skipped",
            "/etc/ipsec.secrets:2: PIN secrets are not supported; entry skipped",
            "/etc/ipsec.secrets:3: PPKS secrets are not supported; entry skipped",
        ]
    );
}

#[test]
fn includes_relative_globs_loops_and_depth() {
    let source = MemorySource::new()
        .with(
            "/etc/ipsec.secrets",
            "include ipsec.d/*.secrets\n: PSK \"top default\"\n",
        )
        .with(
            "/etc/ipsec.d/a.secrets",
            "@a @b : PSK \"from a\"\ninclude \"more/c.secrets\"\n",
        )
        .with("/etc/ipsec.d/b.secrets", "@b @c : PSK \"from b\"\n")
        .with("/etc/ipsec.d/.hidden.secrets", "@h @i : PSK \"hidden\"\n")
        .with(
            "/etc/ipsec.d/sub/d.secrets",
            "@d @e : PSK \"not matched: * does not cross /\"\n",
        )
        .with(
            "/etc/ipsec.d/more/c.secrets",
            "@c @d : PSK \"from c\"\ninclude /nowhere/*.secrets\n",
        );
    let secrets = load_secrets(&source, Path::new("/etc/ipsec.secrets")).unwrap();
    let order: Vec<&[u8]> = secrets
        .psk_entries()
        .iter()
        .map(|e| e.secret.expose_bytes())
        .collect();
    assert_eq!(
        order,
        [&b"from a"[..], b"from c", b"from b", b"top default"]
    );
    assert_eq!(
        secrets.psk_entries()[1].origin.to_string(),
        "/etc/ipsec.d/more/c.secrets:1"
    );
    assert_eq!(
        secrets.warnings()[0].to_string(),
        "/etc/ipsec.d/more/c.secrets:2: include /nowhere/*.secrets matched no files"
    );

    // An error inside an included file names that file.
    let source = MemorySource::new()
        .with("/etc/ipsec.secrets", "include x.secrets\n")
        .with("/etc/x.secrets", "\n@a @b : PSK 0xq\n");
    let error = load_secrets(&source, Path::new("/etc/ipsec.secrets")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/etc/x.secrets:2: PSK: not valid hex: character 3 is not a hex digit"
    );

    // Loops.
    let source = MemorySource::new()
        .with("/etc/ipsec.secrets", "include x.secrets\n")
        .with(
            "/etc/x.secrets",
            "@a @b : PSK \"x\"\ninclude ipsec.secrets\n",
        );
    let error = load_secrets(&source, Path::new("/etc/ipsec.secrets")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "/etc/x.secrets:2: include loop: /etc/ipsec.secrets includes itself"
    );

    // Depth: a chain of distinct files.
    let mut source = MemorySource::new();
    for level in 0..20 {
        source.insert(
            format!("/etc/s{level}"),
            format!("include s{}\n", level + 1),
        );
    }
    let error = load_secrets(&source, Path::new("/etc/s0")).unwrap_err();
    assert_eq!(error.category, ErrorCategory::Include);
    assert!(error.message.contains("nest deeper than"), "{error}");
}

#[test]
fn size_and_encoding_bounds() {
    let big = "#".repeat(MAX_FILE_BYTES as usize + 1);
    let error = parse(&big).unwrap_err();
    assert_eq!(error.category, ErrorCategory::Limit);
    assert_eq!(error.line, 0);
    let error = parse_secrets_bytes(Path::new(FILE), b"@a @b : PSK \"x\"\n@c \xff\n").unwrap_err();
    assert_eq!((error.line, error.category), (2, ErrorCategory::Io));
    assert_eq!(error.to_string(), "/etc/ipsec.secrets:2: not valid UTF-8");
}

#[test]
fn debug_output_never_shows_secrets() {
    let body = include_str!("../../keyfmt/testdata/cassidy-e3.block");
    let text = format!("@a @b : PSK \"hunter2-very-secret\"\n: RSA {{\n{body}\t}}\n");
    let secrets = parse(&text).unwrap();
    let shown = format!("{secrets:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("<redacted>"));
    // Prime1 of the test key begins e9980c43.
    assert!(!shown.to_lowercase().contains("e9980c43"), "{shown}");
    let source = MemorySource::new().with("/x", "@a @b : PSK \"hunter2\"\n");
    assert!(!format!("{source:?}").contains("hunter2"));
}
