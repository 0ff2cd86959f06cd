//! The `lockgate` binary (thin main: parse flags, load config, run).
fn main() {}
