//! ipsec.secrets: parser, lookup, file checks (owned by the secrets work).
