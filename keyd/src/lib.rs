//! keyd library
