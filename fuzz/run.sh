#!/usr/bin/env bash
# Runs every fuzz target (tests/bad_input/fuzz.rs) for SECONDS each (default 60), one after
# another, in the test profile (debug assertions and overflow checks on). A crash saves its
# input under target/fuzz-crashes/ and fails naming it; FUZZ_SEED=N replays a run.
#   fuzz/run.sh 60
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
FUZZ_SECONDS=$seconds cargo test --test bad_input fuzz:: -- --test-threads 1 --nocapture 2>&1 \
  | grep -E '^fuzz |^test |panicked|test result'
