#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kestrel_fuzzing::flow_yaml(data));
