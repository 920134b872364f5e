//! libFuzzer target (`cargo +nightly fuzz run request`); the checks are in `rollback_fuzz::targets`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rollback_fuzz::targets::request(data);
});
