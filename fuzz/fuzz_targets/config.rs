#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| fleetpipe_fuzz::config(input));
