//! Error types shared across the crate.
