#!/usr/bin/env bash
# reel-tsdb vs Prometheus (Debian package) on the same synthetic data:
# SERIES counters at a 10 s interval over MINUTES, ending now.
#   ingest      reel-tsdb: Tsdb::append from 2 threads (WAL fsync per batch);
#               Prometheus: remote write (protobuf+snappy, pre-encoded) from 2 senders.
#   bytes/sample reel-tsdb: block (chunks + index) after compaction;
#               Prometheus: chunks_head/ (its full, mmapped 120-sample chunks) — Prometheus
#               only cuts blocks after ~3 h of data, so this is its closest on-disk figure.
#   mem/series  RSS growth during ingest / series.
#   query       p50/p99 of `sum by (tag) (rate(bench_requests_total[5m]))` over the hour at
#               a 60 s step (Prometheus timed over HTTP incl. JSON; ours incl. JSON encoding).
# Usage: bench/tsdb-vs-prometheus/run.sh   (env: SERIES=100000 MINUTES=60)
set -euo pipefail
SERIES=${SERIES:-100000}
MINUTES=${MINUTES:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release/examples/tsdb_bench

if ! [ -x /usr/bin/prometheus ]; then
    echo "installing Debian's prometheus..." >&2
    apt-get install -y --no-install-recommends prometheus >&2
fi
(cd "$ROOT" && nice -n 19 cargo build --release -q -p reel-tsdb --example tsdb_bench)

WORK=$(mktemp -d /tmp/tsdb-vs-prometheus.XXXXXX)
PROM_PID=
cleanup() {
    if [ -n "$PROM_PID" ]; then kill "$PROM_PID" 2>/dev/null || true; wait "$PROM_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "reel-tsdb: $SERIES series x $MINUTES min..." >&2
OURS=$("$BIN" ours "$WORK/ours" "$SERIES" "$MINUTES")

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/prom"
printf 'global:\n  scrape_interval: 1h\n' > "$WORK/prom/prometheus.yml"
/usr/bin/prometheus --config.file="$WORK/prom/prometheus.yml" --storage.tsdb.path="$WORK/prom/data" \
    --web.listen-address="127.0.0.1:$PORT" --web.enable-remote-write-receiver \
    --query.max-samples=200000000 >"$WORK/prom/log" 2>&1 &
PROM_PID=$!
python3 - "$PORT" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/-/ready", timeout=1).status == 200:
            sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("prometheus did not become ready")
PY
echo "prometheus $(/usr/bin/prometheus --version 2>&1 | head -1 | awk '{print $3}'): same data via remote write..." >&2
PROM=$("$BIN" prometheus "127.0.0.1:$PORT" "$PROM_PID" "$WORK/prom/data" "$SERIES" "$MINUTES")

python3 - "$OURS" "$PROM" <<'PY'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rows = [
    ("ingest samples/s", "ingest_samples_per_s", "{:,.0f}", True, "target >= 2x"),
    ("bytes/sample on disk", "bytes_per_sample", "{:.3f}", False, "target <= 1.5"),
    ("memory bytes/series", "mem_bytes_per_series", "{:,.0f}", False, ""),
    ("query p50 ms", "query_p50_ms", "{:.1f}", False, ""),
    ("query p99 ms", "query_p99_ms", "{:.1f}", False, "target <= prometheus"),
]
print(f"{o['samples']:,} samples; query: sum by (tag) (rate(bench_requests_total[5m])) over 1h, step 60s")
print(f"{'metric':<22}{'reel-tsdb':>16}{'prometheus':>16}{'ours/prom':>11}  note")
for name, key, fmt, higher, note in rows:
    a, b = o[key], p[key]
    ratio = a / b if b else float("nan")
    print(f"{name:<22}{fmt.format(a):>16}{fmt.format(b):>16}{ratio:>10.2f}x  {note}")
print(f"sanity (tag t0 at step 10): reel-tsdb {o['check']}  prometheus {p['check']}")
print(f"reel-tsdb compaction took {o['compact_s']:.1f}s")
PY
