//! RSA key formats (owned by the key-formats work).
