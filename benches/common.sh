# Shared by the bench scripts (sourced): the ports, the release build and scratch folder they
# start from, the fleetpipe configuration they run and how they wait for a port.

IN_PORT=14317
SINK_PORT=15317
HEALTH_PORT=23133
METRICS_PORT=28888
KAFKA_PORT=19092
# How the load generator's spans look: "minimal" (the default, as in every earlier figure) or
# "semconv" (the attributes the GenAI and MCP conventions recommend); see `fleetpipe-load --help`.
SHAPE=${SHAPE:-minimal}
if [[ ! $SHAPE =~ ^(minimal|semconv|content)$ ]]; then
  echo "SHAPE must be minimal, semconv or content (got $SHAPE)" >&2
  exit 2
fi

# Builds the release binaries and makes $work, a scratch folder that goes, with any process the
# script left running, when the script exits.
start_bench() {
  cargo build --release --quiet --bins
  work=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
}

# Prints fleetpipe's configuration: OTLP/gRPC in on IN_PORT, enrichment with the fixture
# registry, batch, OTLP/gRPC out to the sink on SINK_PORT with the exporter settings $1 (e.g.
# "compression: gzip"; "-": no OTLP exporter), when $2 is given the analytics exporter with the
# settings $2, and when $3 is given the archive exporter with the settings $3; health and
# metrics on HEALTH_PORT and METRICS_PORT.
bench_config() {
  local exporters="otlp" otlp="  otlp: {endpoint: \"http://127.0.0.1:$SINK_PORT\", integration: fleet-telemetry, $1}" analytics=""
  if [ "$1" = "-" ]; then
    exporters="" otlp=""
  fi
  if [ -n "${2:-}" ]; then
    exporters="${exporters:+$exporters, }analytics"
    analytics="  analytics: {$2}"
  fi
  if [ -n "${3:-}" ]; then
    exporters="${exporters:+$exporters, }archive"
    analytics="$analytics
  archive: {$3}"
  fi
  cat <<YAML
registry:
  path: tests/fixtures/operating-model/CONFIG.yaml
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:$IN_PORT"}
processors:
  enrich: {}
  batch: {send_batch_size: 8192, timeout: 200ms}
exporters:
$otlp
$analytics
service:
  pipelines:
    traces: {receivers: [otlp], processors: [enrich, batch], exporters: [$exporters]}
  health: {endpoint: "127.0.0.1:$HEALTH_PORT"}
  telemetry:
    logs: {level: warn}
    metrics: {endpoint: "127.0.0.1:$METRICS_PORT"}
YAML
}

# Reads a configuration of bench_config on stdin and prints it without the registry and the
# enrich processor: plain forwarding, what tagging is measured against.
without_enrichment() {
  sed -e '/^registry:/,/^receivers:/{/^receivers:/!d}' -e 's/\[enrich, batch\]/[batch]/' -e '/^  enrich:/d'
}

# Reads a configuration of bench_config on stdin and prints it with the otlp exporter made a
# loadbalancing exporter (routing by trace id) whose one backend is the same sink: the routing
# tier's own work, the split on the wire and a queue per backend, against plain forwarding.
as_routing() {
  sed -E -e 's|^  otlp: \{endpoint: "http://([0-9.:]+)", integration: fleet-telemetry, (.*)\}$|  loadbalancing: {routing_key: traceID, protocol: {otlp: {\2}}, resolver: {static: {hostnames: ["\1"]}}}|' \
    -e 's/exporters: \[otlp/exporters: [loadbalancing/'
}

# Reads a configuration of bench_config on stdin and prints it with the otlp exporter made a
# kafka exporter (one message per trace, lz4, to the broker on KAFKA_PORT plus $1): producing
# to Kafka against sending OTLP/gRPC.
as_kafka() {
  sed -E -e "s|^  otlp: \{endpoint: \"http://[0-9.:]+\", integration: fleet-telemetry, .*\}$|  kafka: {brokers: [\"127.0.0.1:$((KAFKA_PORT + $1))\"], integration: fleet-telemetry, compression: lz4}|" \
    -e 's/exporters: \[otlp/exporters: [kafka/'
}

# Reads a configuration of bench_config on stdin and prints it without the batch step.
without_batch() {
  sed -e 's/\[enrich, batch\]/[enrich]/' -e '/^  batch:/d'
}

# Waits up to 2 minutes for something to listen on port $1 (a process under valgrind starts slowly).
wait_for_port() {
  for _ in $(seq 1 1200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 never opened" >&2
  return 1
}
