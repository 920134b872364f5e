//! libFuzzer target (`cargo +nightly fuzz run plan`); the checks are in `rollback_fuzz::targets`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rollback_fuzz::targets::plan(data);
});
