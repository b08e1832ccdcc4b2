//! fwd library
