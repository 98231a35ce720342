#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after another, coverage-guided
# (libFuzzer through `cargo fuzz`, installed when missing; the stable toolchain with
# RUSTC_BOOTSTRAP=1). Each starts from the seeds the mutation fuzzers of
# tests/bad_input/fuzz.rs write to fuzz/corpus/ and keeps what it finds there. A crash stops the
# run, its input saved under fuzz/artifacts/TARGET/; it becomes a regression test.
#   fuzz/run.sh 60
#   fuzz/run.sh 60 wire_walker otlp_json
# The first build compiles fleetpipe and its dependencies instrumented (about 20 minutes on 2
# cores); later ones reuse fuzz/target/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=${*:-wire_walker governance_and_routing otlp_json decompression config registry disk_queue http_and_grpc}

command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked
# The seeds, from the test fixtures.
FUZZ_CORPUS="$PWD/fuzz/corpus" FUZZ_SECONDS=0 cargo test --test bad_input fuzz:: -- --test-threads 1 > /dev/null
export RUSTC_BOOTSTRAP=1
# No sanitizer: fleetpipe has no unsafe code of its own to check, and an address-sanitized
# build of its dependencies would take twice as long; debug assertions and overflow checks are on.
cargo fuzz build --sanitizer none
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in $targets; do
  echo "fuzz $target: ${seconds} s"
  status=0
  cargo fuzz run --sanitizer none "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 > "$log" 2>&1 || status=$?
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)|^Done [0-9]+ runs|^==[0-9]+== ERROR|panicked|^SUMMARY' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -30 "$log" >&2
    echo "fuzz $target: crashed (exit $status); input in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
