#!/usr/bin/env bash
# Side-by-side CPU, throughput, memory and latency of fleetpipe (registry enrichment on, the
# shared fixture registry) and rotel (OTLP in -> OTLP out) under the same load. Each system runs
# pinned to core 0; the load generator and the counting sink share core 1. Prints one line per
# measurement and the fleetpipe/rotel ratios, then fleetpipe's CPU per span with and without
# the analytics exporter (all spans, and 10% of traces) at 100k spans/s. Runs in about 7 minutes on a 2-core machine.
#
#   benches/compare.sh                  # defaults below; override with environment variables
#   SECONDS_RUN=30 CONNECTIONS=8 benches/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_RUN=${SECONDS_RUN:-15}
warmup_seconds=2
CONNECTIONS=${CONNECTIONS:-4}
COMPRESSION=${COMPRESSION:-gzip}
# fleetpipe's compression level; empty for its default (1). rotel (tonic) always uses gzip 6.
LEVEL=${LEVEL:-}
# shellcheck source=benches/common.sh
source benches/common.sh
start_bench
venv=target/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import rotel" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check rotel
fi
rotel=$(find "$venv" -name rotel-agent -type f | head -n 1)
chmod +x "$rotel"
exporter_settings="compression: $COMPRESSION${LEVEL:+, compression_params: {level: $LEVEL\}}"
bench_config "$exporter_settings" > "$work/fleetpipe.yaml"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# DISTINCT: distinct pre-encoded requests (one trace each) the load generator cycles through.
DISTINCT=64
load() { taskset -c 1 target/release/fleetpipe-load --endpoint "http://127.0.0.1:$1" --connections "$CONNECTIONS" --distinct "$DISTINCT" --shape "$SHAPE" "${@:2}"; }

# measure NAME RATE CORES COMMAND...: starts the sink and the system (pinned to CORES), warms
# up for $warmup_seconds at RATE (0: flat out), loads, prints JSON.
measure() {
  local name=$1 rate=$2 cores=$3
  shift 3
  taskset -c 1 target/release/fleetpipe-sink --listen "127.0.0.1:$SINK_PORT" > "$work/$name.sink" &
  local sink=$!
  wait_for_port "$SINK_PORT"
  taskset -c "$cores" "$@" > "$work/$name.log" 2>&1 &
  local pid=$!
  wait_for_port "$IN_PORT"
  load "$IN_PORT" --seconds "$warmup_seconds" --rate "$rate" > /dev/null
  local before
  before=$(cpu_ticks "$pid")
  load "$IN_PORT" --seconds "$SECONDS_RUN" --rate "$rate" > "$work/$name.load"
  sleep 1
  local after rss
  after=$(cpu_ticks "$pid")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  kill -TERM "$sink"
  wait "$sink" 2>/dev/null || true
  python3 - "$name" "$work/$name.load" "$((after - before))" "$(getconf CLK_TCK)" "$rss" "$work/$name.sink" <<'PY'
import json, sys
name, load_file, ticks, hz, rss, sink_file = sys.argv[1:]
load = json.load(open(load_file))
sink = json.loads(open(sink_file).read() or "{}")
cpu = int(ticks) / int(hz)
spans = load["accepted_spans"]
print(json.dumps({"system": name, "spans_per_second": round(load["spans_per_second"]),
                  "cpu_seconds": cpu, "cpu_us_per_span": round(cpu / spans * 1e6, 3) if spans else None,
                  "peak_rss_mib": round(int(rss) / 1024, 1), "p50_ms": load["p50_ms"], "p99_ms": load["p99_ms"],
                  "delivered_spans": sink.get("traces")}))
PY
}

without_enrichment < "$work/fleetpipe.yaml" > "$work/fleetpipe-plain.yaml"
fleetpipe=(target/release/fleetpipe run --config "$work/fleetpipe.yaml")
fleetpipe_plain=(target/release/fleetpipe run --config "$work/fleetpipe-plain.yaml")
bench_config "$exporter_settings" "queries: queries, window: 10s, max_spans_per_second: 0" > "$work/fleetpipe-analytics.yaml"
fleetpipe_analytics=(target/release/fleetpipe run --config "$work/fleetpipe-analytics.yaml")
bench_config "$exporter_settings" "queries: queries, window: 10s, max_spans_per_second: 0, sampling_percentage: 10" > "$work/fleetpipe-sampled.yaml"
fleetpipe_sampled=(target/release/fleetpipe run --config "$work/fleetpipe-sampled.yaml")
rotel_cmd=("$rotel" start --otlp-grpc-endpoint "127.0.0.1:$IN_PORT" --exporter otlp
           --otlp-exporter-endpoint "http://127.0.0.1:$SINK_PORT" --otlp-exporter-compression "$COMPRESSION"
           --pid-file "$work/rotel.pid")

echo "# flat out, $CONNECTIONS connections, ${SECONDS_RUN}s, 100-span agent requests, compression $COMPRESSION ${LEVEL:+(fleetpipe level $LEVEL)}"
measure fleetpipe 0 0 "${fleetpipe[@]}" | tee "$work/fleetpipe.json"
measure rotel 0 0 "${rotel_cmd[@]}" | tee "$work/rotel.json"
echo "# fleetpipe on both cores (shared with the load and the sink)"
measure fleetpipe-2-cores 0 0,1 "${fleetpipe[@]}" | tee "$work/fleetpipe-2-cores.json"

half=$(python3 -c "import json; print(json.load(open('$work/fleetpipe.json'))['spans_per_second'] / 200)")
echo "# latency at half of fleetpipe's maximum ($half requests/s); baseline: straight to the sink"
taskset -c 1 target/release/fleetpipe-sink --listen "127.0.0.1:$IN_PORT" > /dev/null &
direct_sink=$!
wait_for_port "$IN_PORT"
load "$IN_PORT" --seconds "$SECONDS_RUN" --rate "$half" | tee "$work/direct.load"
kill -TERM "$direct_sink"
wait "$direct_sink" 2>/dev/null || true
measure fleetpipe-half "$half" 0 "${fleetpipe[@]}" | tee "$work/fleetpipe-half.json"
echo "# fleetpipe without enrichment (no registry, processors: [batch]), the same rate"
measure fleetpipe-plain "$half" 0 "${fleetpipe_plain[@]}" | tee "$work/fleetpipe-plain.json"
# Analytics holds closed windows up to max_windows_mib (1 GiB: about four 10 s windows of the
# columns the shipped detectors read, at this rate). Until that fills, every window is fresh
# memory the kernel must zero (a quarter of the CPU); measured after it, the figure is the
# steady state a long-running instance sees.
# 1,000 distinct traces, so that sampling by trace id keeps close to its share of them.
warmup_seconds=60
DISTINCT=1000
echo "# analytics at 100k spans/s (1000 requests/s), after ${warmup_seconds}s of warm-up: fleetpipe without the analytics exporter, with it, and with it sampling 10% of traces"
measure fleetpipe-100k 1000 0 "${fleetpipe[@]}" | tee "$work/fleetpipe-100k.json"
measure fleetpipe-analytics-100k 1000 0 "${fleetpipe_analytics[@]}" | tee "$work/fleetpipe-analytics-100k.json"
measure fleetpipe-sampled-100k 1000 0 "${fleetpipe_sampled[@]}" | tee "$work/fleetpipe-sampled-100k.json"

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
f = json.load(open(f"{work}/fleetpipe.json"))
r = json.load(open(f"{work}/rotel.json"))
h = json.load(open(f"{work}/fleetpipe-half.json"))
p = json.load(open(f"{work}/fleetpipe-plain.json"))
two = json.load(open(f"{work}/fleetpipe-2-cores.json"))
d = json.load(open(f"{work}/direct.load"))
print("# ratios fleetpipe/rotel")
print(f"cpu_per_span {f['cpu_us_per_span'] / r['cpu_us_per_span']:.3f}  (target <= 0.25)")
print(f"spans_per_second {f['spans_per_second'] / r['spans_per_second']:.3f}")
print(f"peak_rss {f['peak_rss_mib'] / r['peak_rss_mib']:.3f}  (target <= 1)")
print(f"p50 {f['p50_ms'] / r['p50_ms']:.3f}  p99 {f['p99_ms'] / r['p99_ms']:.3f}")
print(f"# added p99 latency at half load: {h['p99_ms'] - d['p99_ms']:.3f} ms (target < 5)")
print(f"# enrichment at half load: CPU per span with / without {h['cpu_us_per_span'] / p['cpu_us_per_span']:.3f}")
a = json.load(open(f"{work}/fleetpipe-analytics-100k.json"))
b = json.load(open(f"{work}/fleetpipe-100k.json"))
print(f"# analytics at 100k spans/s: CPU per span with / without {a['cpu_us_per_span'] / b['cpu_us_per_span']:.3f}, "
      f"one core's share {b['cpu_us_per_span'] * 10:.1f}% -> {a['cpu_us_per_span'] * 10:.1f}%")
s = json.load(open(f"{work}/fleetpipe-sampled-100k.json"))
print(f"# analytics sampling 10% of traces at 100k spans/s: CPU per span with / without {s['cpu_us_per_span'] / b['cpu_us_per_span']:.3f}")
print(f"# 2 cores / 1 core: spans/s {two['spans_per_second'] / f['spans_per_second']:.3f}, "
      f"CPU per span {two['cpu_us_per_span'] / f['cpu_us_per_span']:.3f} (the load and sink share the second core)")
PY
