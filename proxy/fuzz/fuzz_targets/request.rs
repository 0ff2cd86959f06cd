//! Client bytes: the request framer (RESP2 multibulk and inline commands,
//! under small limits so every limit branch is reachable), then the command
//! parser on every complete request. Defends against panics, reading past
//! what was parsed, and results that change with how the bytes were split
//! into reads. See `lockgate::fuzz::request`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lockgate::fuzz::request(data);
});
