//! ikerd library
