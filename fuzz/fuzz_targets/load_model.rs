//! Fuzzes `seqnn::load_model_from_bytes` with arbitrary bytes: it must return, with `Ok` or
//! `Err`, and never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = seqnn::load_model_from_bytes(data) {
        let _ = model.summary();
    }
});
