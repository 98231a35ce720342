#![no_main]
use std::sync::{Arc, LazyLock};

use fleetpipe::memory::MemoryBudget;

static MEMORY: LazyLock<Arc<MemoryBudget>> = LazyLock::new(MemoryBudget::unlimited);

libfuzzer_sys::fuzz_target!(|input: &[u8]| fleetpipe_fuzz::decompression(&MEMORY, input));
