#!/usr/bin/env bash
# What the analytics exporter adds to fleetpipe's CPU time per span at 100k spans/s, in rounds:
# each round runs fleetpipe (enrichment on, the fixture registry, batch, gzip) pinned to core 0
# without analytics, with it sampling 10 % of traces, and with it on every span (the `queries/`
# pack, 10 s windows), one after the other, while the load generator and the sink share core 1.
# Each run warms up for WARM seconds (closed windows fill `max_windows_mib`, as in a
# long-running instance), then measures RUN seconds of load: the CPU time of the process's
# threads per accepted span, from the scheduler's own count in nanoseconds
# (/proc/<pid>/task/*/schedstat). The user and kernel times of /proc/<pid>/stat are ticks
# charged to whichever side a timer interrupt finds running: on this VM they put the same run's
# time on one side or the other, so they are not used.
#
# On a shared VM one run can be a fifth off the next, on a bad day half; the ratios are therefore taken within a
# round, and the summary gives their median and range over the rounds. Runs in about
# ROUNDS x 5 minutes once built.
#
#   benches/analytics_cpu.sh
#   ROUNDS=8 RUN=60 benches/analytics_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
WARM=${WARM:-60}
RUN=${RUN:-30}
# shellcheck source=benches/common.sh
source benches/common.sh
start_bench
bench_config "compression: gzip" > "$work/forwarding.yaml"
bench_config "compression: gzip" "queries: queries, window: 10s, sampling_percentage: 10" > "$work/sampling.yaml"
bench_config "compression: gzip" "queries: queries, window: 10s" > "$work/every-span.yaml"

# 1,000 requests/s of 100 spans, cycling through 1,000 distinct traces so that sampling by trace
# id keeps close to its share of them.
load() {
  taskset -c 1 target/release/fleetpipe-load --endpoint "http://127.0.0.1:$IN_PORT" --connections 4 \
    --distinct 1000 --rate 1000 --seconds "$@"
}

# Nanoseconds the threads of process $1 have run.
cpu_nanos() { cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {printf "%.0f\n", ns}'; }
# A thread that ends takes its count with it; say so rather than report too little.
warn_if_threads_ended() {
  local ended
  ended=$(comm -23 <(echo "$2" | sort) <(ls /proc/"$1"/task | sort) | wc -l)
  if [ "$ended" -gt 0 ]; then echo "warning: $ended thread(s) ended while counting; this run's CPU is too low" >&2; fi
}

# run ROUND SETTING: one measured run; appends "round setting spans cpu_nanos".
run() {
  local round=$1 setting=$2
  taskset -c 1 target/release/fleetpipe-sink --listen "127.0.0.1:$SINK_PORT" > /dev/null &
  local sink=$!
  wait_for_port "$SINK_PORT"
  taskset -c 0 target/release/fleetpipe run --config "$work/$setting.yaml" > "$work/$setting.log" 2>&1 &
  local pid=$!
  wait_for_port "$IN_PORT"
  load "$WARM" > /dev/null
  local before after threads
  threads=$(ls /proc/"$pid"/task)
  before=$(cpu_nanos "$pid")
  load "$RUN" > "$work/load.json"
  after=$(cpu_nanos "$pid")
  warn_if_threads_ended "$pid" "$threads"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  kill -TERM "$sink"
  wait "$sink" 2>/dev/null || true
  local spans
  spans=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accepted_spans"])' "$work/load.json")
  echo "$round $setting $spans $((after - before))" | tee -a "$work/runs"
}

echo "# round setting spans cpu_nanos"
for round in $(seq 1 "$ROUNDS"); do
  for setting in forwarding sampling every-span; do
    run "$round" "$setting"
  done
done

python3 - "$work/runs" <<'PY'
import statistics, sys
per_span = {}  # (round, setting) -> CPU µs per span
for line in open(sys.argv[1]):
    round_, setting, spans, nanos = line.split()
    per_span[(round_, setting)] = int(nanos) / 1000 / int(spans)
rounds = sorted({r for r, _ in per_span}, key=int)
for setting in ("forwarding", "sampling", "every-span"):
    line = f"{setting}: CPU per span, median {statistics.median(per_span[(r, setting)] for r in rounds):.3f} µs"
    if setting != "forwarding":
        ratios = [per_span[(r, setting)] / per_span[(r, "forwarding")] for r in rounds]
        line += (f"; ratio to forwarding in the same round, median {statistics.median(ratios):.3f}"
                 f" (range {min(ratios):.3f}-{max(ratios):.3f}: {', '.join(f'{x:.2f}' for x in ratios)})")
    print(line)
PY
