#![no_main]
use std::sync::LazyLock;

use fleetpipe_fuzz::Governance;

static GOVERNANCE: LazyLock<Governance> = LazyLock::new(Governance::default);

libfuzzer_sys::fuzz_target!(|input: &[u8]| GOVERNANCE.check(input));
