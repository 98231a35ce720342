#![no_main]
use std::sync::{LazyLock, Mutex};

use fleetpipe_fuzz::DiskQueue;

static QUEUE: LazyLock<Mutex<DiskQueue>> = LazyLock::new(Mutex::default);

libfuzzer_sys::fuzz_target!(|input: &[u8]| QUEUE.lock().expect("one thread").check(input));
