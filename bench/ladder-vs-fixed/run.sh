#!/usr/bin/env bash
# The per-title (per-shot) ladder against the classic fixed ladder at equal
# VMAF, on two titles: Seeking (../shared/data/video, one continuous shot)
# and a title of three unlike shots made with Debian's ffmpeg (a test card,
# a fractal zoom, cellular life; 3 s each, 720x480). Each is ingested with
# the default candidate grid (4 heights x 7 CRFs), then
# `reel media ladder --compare-fixed` encodes and scores the fixed ladder.
# Prints each title's savings with per-shot CRFs and with one CRF per rung.
# Usage: bench/ladder-vs-fixed/run.sh   (about 6 minutes on 2 cores)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
REEL=${REEL_BIN:-$CARGO_TARGET_DIR/release/reel}
[ -n "${REEL_BIN:-}" ] || (cd "$ROOT" && cargo build --release -q -p reel)
DATA=$CARGO_TARGET_DIR/bench-ladder
mkdir -p "$DATA"
SHOTS=$DATA/three-shots.mp4
if [ ! -s "$SHOTS" ]; then
    shot() { echo "$1=s=720x480:r=25$2,trim=duration=3,setpts=PTS-STARTPTS,format=yuv420p"; }
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -filter_complex "$(shot testsrc2 '')[a];$(shot mandelbrot '')[b];$(shot life ':mold=10:ratio=0.5:seed=7:death_color=#C83232:life_color=#00ff00')[c];[a][b][c]concat=n=3:v=1[v]" \
        -map "[v]" -c:v libx264 -crf 8 -preset veryfast "$SHOTS"
fi
printf "%-16s %8s %22s %26s\n" title rungs "per-shot ladder saves" "constant-CRF ladder saves"
for pair in "seeking:$ROOT/../shared/data/video/Seeking_30_480_1050.mp4" "three-shots:$SHOTS"; do
    title=${pair%%:*}; file=${pair#*:}
    rm -rf "$DATA/store-$title"
    "$REEL" media ingest "$file" --title "$title" --data-dir "$DATA/store-$title" --json >/dev/null
    "$REEL" media ladder --title "$title" --data-dir "$DATA/store-$title" --compare-fixed --json |
        python3 "$ROOT/bench/ladder-vs-fixed/summary.py" "$title"
done
