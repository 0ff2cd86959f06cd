//! Master bytes: the bounded, resumable reply decoder. Masters (or whatever
//! answers on their address) are untrusted too. Defends against panics,
//! unbounded nesting (stack overflow), and verdicts that change with how the
//! bytes were split into reads. See `lockgate::fuzz::master_reply`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lockgate::fuzz::master_reply(data);
});
