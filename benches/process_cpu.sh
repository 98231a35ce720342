#!/usr/bin/env bash
# What tagging and the analytics exporter add to fleetpipe's CPU time per span at 100k spans/s.
# Each comparison runs its two settings at the same time: two fleetpipe processes (batch, gzip),
# both pinned to core 0, each fed by its own load generator (1,000 requests/s of 100 spans,
# cycling through 1,000 distinct traces) and sending to its own sink, all four on core 1.
# Whatever the VM does to core 0 meanwhile (the hypervisor's steal time, other tenants) falls on
# both alike: run one after the other, minutes apart, the same setting measured a fifth to a
# half apart on this VM (benches/HISTORY.md). Sharing a core has a bias of its own: each
# process runs with the other's cache lines around, so the ratios may understate a difference
# a little.
#
# The comparisons (COMPARISONS, "baseline:setting" each): tagging, "plain" (no registry, no
# enrich processor) against "forwarding" (enrichment with the fixture registry); analytics,
# "forwarding" against "defaults" (the `queries/` pack, 10 s windows, the default
# `max_spans_per_second`), "sampling" (a fixed 10 % of traces, no cap) and "every-span" (no
# cap); the archive, "forwarding" against "archive" (every span to Parquet in a scratch
# folder; `COMPARISONS="forwarding:archive"`); the disk queue, "memory-direct" (forwarding
# without the batch step) against "disk-interval" and "disk-always" (the exporter's queue on
# disk, `fsync: interval` and `always`; `COMPARISONS="memory-direct:disk-interval"`); content
# redaction, "content-kept" (`redaction: {genai_content: keep}`) against "forwarding" (an otlp
# exporter's default: GenAI content removed; `SHAPE=content` puts 2 KiB of messages on every
# model span); the routing tier, "forwarding" against "routing" (a loadbalancing exporter by
# trace id, its one backend the same sink); Kafka, "forwarding" against "kafka" (the otlp
# exporter made a kafka exporter, one message per trace, lz4, to a tansu broker with memory
# storage started afresh for each run on core 1; `cargo install tansu --features dynostore`).
# Each pair warms up for WARM seconds (closed windows fill
# `max_windows_mib`, as in a long-running instance), then measures RUN seconds of load: the CPU
# time of each process's threads per accepted span, from the scheduler's own count in
# nanoseconds (/proc/<pid>/task/*/schedstat), whose user/kernel split in ticks
# (/proc/<pid>/stat) this VM does not give reliably. The summary gives, per comparison, the
# median and range of the rounds' ratios. SHAPE=semconv sends spans shaped as the semantic
# conventions (see benches/common.sh). Runs in about ROUNDS x 5 minutes once built.
#
#   benches/process_cpu.sh
#   ROUNDS=8 RUN=60 COMPARISONS="plain:forwarding" benches/process_cpu.sh
#   SHAPE=semconv COMPARISONS="plain:forwarding" benches/process_cpu.sh
#   BASELINE_BIN=/tmp/fleetpipe-before COMPARISONS="forwarding:forwarding" benches/process_cpu.sh
#
# BASELINE_BIN runs the baseline side of each comparison with another build of fleetpipe (one
# from before a change), so a change is measured against the code it replaces.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-4}
WARM=${WARM:-60}
RUN=${RUN:-30}
COMPARISONS=${COMPARISONS:-plain:forwarding forwarding:defaults forwarding:every-span}
# shellcheck source=benches/common.sh
source benches/common.sh
start_bench

# Each side of a comparison, 0 and 1, has ports of its own: the defaults plus the side.
write_configs() {
  local side=$1
  local IN_PORT=$((IN_PORT + side)) SINK_PORT=$((SINK_PORT + side))
  local HEALTH_PORT=$((HEALTH_PORT + side)) METRICS_PORT=$((METRICS_PORT + side))
  bench_config "compression: gzip" > "$work/forwarding-$side.yaml"
  # GenAI content kept: no redaction before the exporter, what the default is measured against.
  bench_config "compression: gzip, redaction: {genai_content: keep}" > "$work/content-kept-$side.yaml"
  bench_config "compression: gzip" | as_routing > "$work/routing-$side.yaml"
  bench_config "compression: gzip" | as_kafka "$side" > "$work/kafka-$side.yaml"
  without_enrichment < "$work/forwarding-$side.yaml" > "$work/plain-$side.yaml"
  bench_config "compression: gzip" "queries: queries, window: 10s" > "$work/defaults-$side.yaml"
  bench_config "compression: gzip" "queries: queries, window: 10s, max_spans_per_second: 0, sampling_percentage: 10" > "$work/sampling-$side.yaml"
  bench_config "compression: gzip" "queries: queries, window: 10s, max_spans_per_second: 0" > "$work/every-span-$side.yaml"
  bench_config "compression: gzip" "" "path: $work/archive-$side" > "$work/archive-$side.yaml"
  # The disk queue, against the memory queue, both without the batch step (a durable pipeline
  # answers each client once its request is queued, so a batch timeout would be its latency).
  bench_config "compression: gzip" | without_batch > "$work/memory-direct-$side.yaml"
  bench_config "compression: gzip, sending_queue: {storage: disk, directory: \"$work/queue-interval-$side\"}" | without_batch > "$work/disk-interval-$side.yaml"
  bench_config "compression: gzip, sending_queue: {storage: disk, fsync: always, directory: \"$work/queue-always-$side\"}" | without_batch > "$work/disk-always-$side.yaml"
}
write_configs 0
write_configs 1
for comparison in $COMPARISONS; do
  for setting in ${comparison%%:*} ${comparison##*:}; do
    [ -f "$work/$setting-0.yaml" ] || { echo "COMPARISONS: no setting '$setting' (plain, forwarding, content-kept, routing, kafka, defaults, sampling, every-span, archive, memory-direct, disk-interval, disk-always)" >&2; exit 2; }
  done
done

# Nanoseconds the threads of process $1 have run.
cpu_nanos() { cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {printf "%.0f\n", ns}'; }
# A thread that ends takes its count with it; say so rather than report too little.
warn_if_threads_ended() {
  local ended
  ended=$(comm -23 <(echo "$2" | sort) <(ls /proc/"$1"/task | sort) | wc -l)
  if [ "$ended" -gt 0 ]; then echo "warning: $ended thread(s) ended while counting; this run's CPU is too low" >&2; fi
}

# start SIDE SETTING BINARY: the sink (for kafka, a broker with the topic), then fleetpipe, of
# one side.
sinks=() pids=()
start() {
  local side=$1 setting=$2 binary=$3
  if [ "$setting" = kafka ]; then
    local broker="tcp://127.0.0.1:$((KAFKA_PORT + side))"
    taskset -c 1 tansu broker --listener-url "$broker" --advertised-listener-url "$broker" \
      --storage-engine memory://tansu/ --silent > /dev/null 2>&1 &
    sinks[side]=$!
    wait_for_port $((KAFKA_PORT + side))
    tansu topic create otlp_spans --broker "$broker" --partitions 3 > /dev/null
  else
    taskset -c 1 target/release/fleetpipe-sink --listen "127.0.0.1:$((SINK_PORT + side))" > /dev/null &
    sinks[side]=$!
    wait_for_port $((SINK_PORT + side))
  fi
  taskset -c 0 "$binary" run --config "$work/$setting-$side.yaml" > "$work/$setting-$side.log" 2>&1 &
  pids[side]=$!
  wait_for_port $((IN_PORT + side))
}

# load_both SECONDS: loads both sides at once for SECONDS; side N's report goes to $work/load-N.json.
load_both() {
  local loads=()
  for side in 0 1; do
    taskset -c 1 target/release/fleetpipe-load --endpoint "http://127.0.0.1:$((IN_PORT + side))" --connections 4 \
      --distinct 1000 --rate 1000 --seconds "$1" --shape "$SHAPE" > "$work/load-$side.json" &
    loads+=($!)
  done
  wait "${loads[@]}"
}

accepted() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accepted_spans"])' "$1"; }

# pair ROUND BASELINE SETTING: one measured run of both; appends
# "round baseline setting baseline_spans baseline_nanos setting_spans setting_nanos". The sides
# swap from one round to the next: in runs of one setting against itself, the second side had
# cost up to a tenth more in some runs.
pair() {
  local round=$1 baseline=$2 setting=$3
  local b=$((round % 2)) s=$(((round + 1) % 2))
  start "$b" "$baseline" "${BASELINE_BIN:-target/release/fleetpipe}"
  start "$s" "$setting" target/release/fleetpipe
  load_both "$WARM"
  local threads=() before=() after=()
  for side in 0 1; do
    threads[side]=$(ls /proc/"${pids[side]}"/task)
    before[side]=$(cpu_nanos "${pids[side]}")
  done
  load_both "$RUN"
  for side in 0 1; do
    after[side]=$(cpu_nanos "${pids[side]}")
    warn_if_threads_ended "${pids[side]}" "${threads[side]}"
  done
  for side in 0 1; do
    kill -TERM "${pids[side]}" "${sinks[side]}"
    wait "${pids[side]}" "${sinks[side]}" 2>/dev/null || true
  done
  echo "$round $baseline $setting $(accepted "$work/load-$b.json") $((after[b] - before[b]))" \
    "$(accepted "$work/load-$s.json") $((after[s] - before[s]))" | tee -a "$work/runs"
}

echo "# round baseline setting baseline_spans baseline_cpu_nanos setting_spans setting_cpu_nanos"
for round in $(seq 1 "$ROUNDS"); do
  for comparison in $COMPARISONS; do
    pair "$round" "${comparison%%:*}" "${comparison##*:}"
  done
done

python3 - "$work/runs" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)  # (baseline, setting) -> [(baseline µs/span, setting µs/span)]
for line in open(sys.argv[1]):
    _, baseline, setting, b_spans, b_nanos, s_spans, s_nanos = line.split()
    runs[(baseline, setting)].append((int(b_nanos) / 1000 / int(b_spans), int(s_nanos) / 1000 / int(s_spans)))
for (baseline, setting), pairs in runs.items():
    ratios = [s / b for b, s in pairs]
    print(f"{setting} against {baseline}: CPU per span, medians {statistics.median(s for _, s in pairs):.3f}"
          f" and {statistics.median(b for b, _ in pairs):.3f} µs; ratio in the same run, median"
          f" {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}:"
          f" {', '.join(f'{x:.2f}' for x in ratios)})")
PY
