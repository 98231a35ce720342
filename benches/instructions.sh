#!/usr/bin/env bash
# Instructions per 100-span request of the `enrich` bench with and without gzip: plain, plain of
# a request that already carries the tags (what the tags' bytes cost, whoever wrote them), and
# enriched (100 registered integrations), counted by valgrind's callgrind, for each request
# shape (BENCH_GROUPS: the minimal fixture, and spans shaped as the semantic conventions).
# Unlike criterion's times, the counts do not move with other tenants of a shared VM, so they
# tell small changes apart. They are not times: a copy counts one instruction per byte, and
# cache misses count nothing. Needs valgrind; runs in about 3 minutes once the bench is built.
#
#   benches/instructions.sh
#   BENCH_GROUPS=enrich_100_semconv_spans benches/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bench=$(cargo bench --bench enrich --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "enrich" and m.get("executable"):
        print(m["executable"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Instructions inside criterion's timing loop, divided by the loop's requests.
per_request() {
  valgrind --tool=callgrind --callgrind-out-file="$work/out" \
    --toggle-collect='criterion::bencher::Bencher<M>::iter*' \
    "$bench" --bench --profile-time 2 "^$group/$1\$" > /dev/null 2> "$work/log"
  local total requests
  total=$(awk '/^summary:/ {print $2}' "$work/out")
  requests=$(callgrind_annotate --inclusive=yes --tree=caller --auto=no "$work/out" 2> /dev/null |
    grep -B1 '\*  .*Request::from_protobuf' | grep -m1 -o 'Bencher<M>::iter ([0-9,]*x)' | tr -dc '0-9')
  echo $((total / requests))
}

for group in ${BENCH_GROUPS:-enrich_100_spans enrich_100_semconv_spans}; do
  for encoding in codec gzip; do
    plain=$(per_request "plain_$encoding")
    tagged=$(per_request "plain_${encoding}_of_tagged")
    enriched=$(per_request "enriched_$encoding/100")
    python3 -c "print(f'$group, $encoding: plain {$plain:,}, plain of the tagged request {$tagged:,} (ratio {$tagged / $plain:.3f}), enriched {$enriched:,} (ratio {$enriched / $plain:.3f}) instructions per request')"
  done
done
