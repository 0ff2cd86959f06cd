//! The quorum lock engine.
