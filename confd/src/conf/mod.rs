//! ipsec.conf: lexer, parser, typed connection model (owned by the config work).
