#!/usr/bin/env bash
# `reel media vmaf` vs libvmaf (the static ffmpeg in PyPI's imageio-ffmpeg,
# libvmaf with its SIMD paths) on the same 1080p pairs: frames per second of
# each with 1 and 2 threads, and the ratio. Both read the same raw YUV files
# and compute the vmaf_v0.6.1 model (we skip SSIM, which libvmaf does not run
# by default). The pairs are made once with Debian's ffmpeg (testsrc2 and
# mandelbrot, x264 at CRF 30) and kept in $CARGO_TARGET_DIR/bench-vmaf.
# Usage: bench/vmaf-vs-libvmaf/run.sh   (env: FRAMES=60 RUNS=3)
set -euo pipefail
FRAMES=${FRAMES:-60}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
REEL=${REEL_BIN:-$CARGO_TARGET_DIR/release/reel}
[ -n "${REEL_BIN:-}" ] || (cd "$ROOT" && cargo build --release -q -p reel)
if ! python3 -c "import imageio_ffmpeg" 2>/dev/null; then
    echo "installing imageio-ffmpeg (the libvmaf peer) from PyPI..." >&2
    python3 -m pip install -q imageio-ffmpeg 2>/dev/null || python3 -m pip install -q --break-system-packages imageio-ffmpeg
fi
ORACLE=$(python3 -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())")
DATA=$CARGO_TARGET_DIR/bench-vmaf
mkdir -p "$DATA"

make_pair() { # name pattern pix_fmt
    local name=$1 pattern=$2 fmt=$3
    [ -s "$DATA/$name-dis.yuv" ] && return
    echo "making $name ($FRAMES frames, 1920x1080 $fmt)..." >&2
    ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "$pattern=s=1920x1080:r=25" -frames:v "$FRAMES" \
        -pix_fmt "$fmt" -f rawvideo "$DATA/$name-ref.yuv"
    ffmpeg -nostdin -hide_banner -loglevel error -y -f rawvideo -pix_fmt "$fmt" -s 1920x1080 -i "$DATA/$name-ref.yuv" \
        -c:v libx264 -preset veryfast -crf 30 -pix_fmt "$fmt" "$DATA/$name.mp4"
    ffmpeg -nostdin -hide_banner -loglevel error -y -i "$DATA/$name.mp4" -pix_fmt "$fmt" -f rawvideo "$DATA/$name-dis.yuv"
}
make_pair testsrc2-8bit-$FRAMES testsrc2 yuv420p
make_pair mandelbrot-10bit-$FRAMES mandelbrot yuv420p10le

best_of() { # command...: best wall seconds of RUNS
    python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time
runs = int(sys.argv[1]); cmd = sys.argv[2:]
best = None
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t
    best = dt if best is None or dt < best else best
print(f"{best:.4f}")
PY
}

printf "%-22s %7s %12s %14s %7s %10s\n" pair threads "reel fps" "libvmaf fps" ratio "vmaf diff"
for pair in testsrc2-8bit-$FRAMES:yuv420p mandelbrot-10bit-$FRAMES:yuv420p10le; do
    name=${pair%%:*}; fmt=${pair##*:}
    ref=$DATA/$name-ref.yuv; dis=$DATA/$name-dis.yuv
    ours_score=$("$REEL" media vmaf --ref "$ref" --dist "$dis" --width 1920 --height 1080 --pix-fmt "$fmt" --no-ssim --json \
        | python3 -c 'import sys,json; print(json.load(sys.stdin)["pooled"]["mean"])')
    "$ORACLE" -nostdin -hide_banner -loglevel error -f rawvideo -pix_fmt "$fmt" -s 1920x1080 -i "$dis" \
        -f rawvideo -pix_fmt "$fmt" -s 1920x1080 -i "$ref" -lavfi "libvmaf=log_path=$DATA/log.json:log_fmt=json:n_threads=2" -f null -
    their_score=$(python3 -c 'import sys,json; print(json.load(open(sys.argv[1]))["pooled_metrics"]["vmaf"]["mean"])' "$DATA/log.json")
    diff=$(python3 -c "print(f'{abs($ours_score-$their_score):.6f}')")
    for threads in 1 2; do
        ours=$(best_of "$REEL" media vmaf --ref "$ref" --dist "$dis" --width 1920 --height 1080 --pix-fmt "$fmt" --no-ssim --threads "$threads" --json)
        theirs=$(best_of "$ORACLE" -nostdin -hide_banner -loglevel error -f rawvideo -pix_fmt "$fmt" -s 1920x1080 -i "$dis" \
            -f rawvideo -pix_fmt "$fmt" -s 1920x1080 -i "$ref" -lavfi "libvmaf=n_threads=$threads" -f null -)
        python3 - "$name" "$threads" "$FRAMES" "$ours" "$theirs" "$diff" <<'PY'
import sys
name, threads, frames, ours, theirs, diff = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
a, b = frames / ours, frames / theirs
print(f"{name:<22} {threads:>7} {a:>12.1f} {b:>14.1f} {a/b:>6.2f}x {diff:>10}")
PY
    done
done
