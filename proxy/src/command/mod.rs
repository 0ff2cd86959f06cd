//! Command classification: a client's argument vector becomes a typed request.
