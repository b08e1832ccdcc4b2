//! ipsecctl library
