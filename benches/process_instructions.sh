#!/usr/bin/env bash
# What tagging and the analytics exporter add to fleetpipe's work per span, in instructions: the
# whole process runs under valgrind's callgrind (batch, gzip) without enrichment ("plain"), with
# it ("forwarding": the fixture registry), then with enrichment and the analytics exporter (the
# `queries/` pack) on every span and sampling 10 % of traces. Each run warms up, then counts
# from zero over RUN seconds of load and divides by the spans accepted. Tagging is compared with
# plain forwarding, analytics with forwarding. Unlike CPU time on a shared VM, the counts hardly
# move between runs; they are not times (a cache miss counts nothing, a large copy one
# instruction per byte) and leave out the kernel's share.
#
# callgrind runs the process about 50 times slower, so the load is 5,000 spans/s rather than
# 100,000, and the windows are 100 s rather than 10 s: each holds the rows of a 10 s window at
# half of 100k spans/s, so the detectors' and the rollup's work per span is about twice theirs
# at full rate. SHAPE=semconv sends spans shaped as the semantic conventions (see
# benches/common.sh). Needs valgrind; runs in about 27 minutes once built.
#
#   benches/process_instructions.sh
#   WARM=60 RUN=120 WINDOW=50s benches/process_instructions.sh   # shorter, one window close
set -euo pipefail
cd "$(dirname "$0")/.."

WARM=${WARM:-120}
RUN=${RUN:-220}
WINDOW=${WINDOW:-100s}
if [[ ! $WINDOW =~ ^[0-9]+s$ ]]; then
  echo "WINDOW must be whole seconds, such as 100s (got $WINDOW)" >&2
  exit 2
fi
RATE=50 # requests/s of 100 spans
# shellcheck source=benches/common.sh
source benches/common.sh
start_bench
bench_config "compression: gzip" > "$work/forwarding.yaml"
without_enrichment < "$work/forwarding.yaml" > "$work/plain.yaml"
analytics="queries: queries, window: $WINDOW, queue_size: 2048, max_spans_per_second: 0"
bench_config "compression: gzip" "$analytics" > "$work/analytics.yaml"
bench_config "compression: gzip" "$analytics, sampling_percentage: 10" > "$work/sampled.yaml"

load() {
  target/release/fleetpipe-load --endpoint "http://127.0.0.1:$IN_PORT" --connections 4 --distinct 1000 --rate "$RATE" --shape "$SHAPE" "$@"
}

# Seconds of warm-up: at least WARM, ending 5 s after windows close (they close when the clock
# passes a multiple of WINDOW). Each close runs the rollup and the detectors over a whole
# window; without this, a run counted one close or two depending on the clock.
warm_until_after_a_close() {
  local window=${WINDOW%s} now
  now=$(date +%s)
  echo $((WARM + window - (now + WARM) % window + 5))
}

# Instructions per accepted span of one configuration.
per_span() {
  local name=$1
  target/release/fleetpipe-sink --listen "127.0.0.1:$SINK_PORT" > /dev/null &
  local sink=$!
  wait_for_port "$SINK_PORT"
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" \
    target/release/fleetpipe run --config "$work/$name.yaml" > "$work/$name.log" 2>&1 &
  local fleetpipe=$!
  wait_for_port "$IN_PORT"
  load --seconds "$(warm_until_after_a_close)" > /dev/null
  callgrind_control --zero "$fleetpipe" > /dev/null 2>&1
  load --seconds "$RUN" > "$work/$name.load"
  sleep 2
  callgrind_control --dump "$fleetpipe" > /dev/null 2>&1
  kill -TERM "$fleetpipe"
  wait "$fleetpipe" 2>/dev/null || true
  kill -TERM "$sink"
  wait "$sink" 2>/dev/null || true
  python3 - "$work/$name.out.1" "$work/$name.load" <<'PY'
import json, sys
dump, load = sys.argv[1:]
total = next(int(line.split()[1]) for line in open(dump) if line.startswith(("summary:", "totals:")))
print(total // json.load(open(load))["accepted_spans"])
PY
}

plain=$(per_span plain)
forwarding=$(per_span forwarding)
analytics=$(per_span analytics)
sampled=$(per_span sampled)
python3 -c "print(f'instructions per span: plain {$plain:,}; forwarding (tagging) {$forwarding:,} (ratio to plain {$forwarding / $plain:.3f}); with analytics {$analytics:,} (ratio to forwarding {$analytics / $forwarding:.3f}); sampling 10 % of traces {$sampled:,} (ratio {$sampled / $forwarding:.3f})')"
