#!/usr/bin/env bash
# `fleetpipe report` over an archive of SPANS spans (default 10 million). Builds the archive as
# a fleet would: fresh GenAI-convention traces of four agents (`fleetpipe-load --fresh --shape
# semconv`, ids never repeated) through a release fleetpipe that enriches them with the fixture
# registry and archives them (`block_on_overflow`, so none is shed). Then times the report in
# each format (wall time and peak memory, by /usr/bin/time) and states the archive's size on
# disk and bytes per span. KEEP=DIR keeps (or reuses) the archive there.
#
#   benches/report.sh
#   SPANS=1000000 benches/report.sh
#   KEEP=/tmp/archive-10m benches/report.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SPANS=${SPANS:-10000000}
# shellcheck source=benches/common.sh
source benches/common.sh
start_bench
archive=${KEEP:-$work/archive}

accepted() {
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk '/^fleetpipe_receiver_accepted_items_total/ {sum += $2} END {printf "%d", sum}'
}

if [ ! -d "$archive/table=spans" ]; then
  bench_config - "" "path: \"$archive\", block_on_overflow: true" >"$work/fleetpipe.yaml"
  target/release/fleetpipe run --config "$work/fleetpipe.yaml" &
  fleetpipe=$!
  wait_for_port "$IN_PORT"
  started=$(date +%s)
  while [ "$(accepted)" -lt "$SPANS" ]; do
    target/release/fleetpipe-load --endpoint "http://127.0.0.1:$IN_PORT" --connections 2 \
      --seconds 5 --fresh --shape semconv >/dev/null
  done
  echo "archived $(accepted) spans in $(($(date +%s) - started)) s"
  kill -TERM "$fleetpipe"
  wait "$fleetpipe"
fi

rows=$(target/release/fleetpipe query --archive "$archive" --format csv "SELECT count(*) FROM spans" | tail -1)
bytes=$(du -sb "$archive/table=spans" | cut -f1)
echo "archive: $rows spans, $((bytes / 1024 / 1024)) MiB of span files, $((bytes / rows)) bytes per span"
for format in json md html; do
  /usr/bin/time -f "report --format $format: %e s wall, %U s user, %M KiB peak" \
    target/release/fleetpipe report --archive "$archive" --format "$format" --out "$work/report.$format"
done
