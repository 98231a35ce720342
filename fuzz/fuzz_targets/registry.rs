#![no_main]
use std::sync::LazyLock;

use fleetpipe_fuzz::RegistryFile;

static REGISTRY: LazyLock<RegistryFile> = LazyLock::new(RegistryFile::default);

libfuzzer_sys::fuzz_target!(|input: &[u8]| REGISTRY.check(input));
