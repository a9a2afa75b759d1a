#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kestrel_fuzzing::masker(data));
