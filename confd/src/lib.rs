//! confd library
