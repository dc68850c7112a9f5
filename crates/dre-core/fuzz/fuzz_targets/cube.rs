//! The `cube` reader on arbitrary bytes (see dre::fuzzing): any error is fine, a panic,
//! abort, hang or runaway allocation is a bug.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = dre::fuzzing::read_bytes("cube", data);
});
