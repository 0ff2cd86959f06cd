//! Drop-in compatibility: recognising the scripts and commands that existing
//! Redis lock client libraries send (issue 3).
