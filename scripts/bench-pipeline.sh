#!/usr/bin/env bash
# Whole-pipeline benchmark (issue 11): two simulated 2048 x 2048 tiles of 250 galaxies each,
# then sex_dre -> psfex_dre -> make_cuts -> dre, each stage timed with /usr/bin/time -v
# (wall, user + system CPU, peak resident memory), and the fit kernel's share of dre's
# samples under `perf record` (where perf is allowed).
#
#   scripts/bench-pipeline.sh [--cpu N] [--compression LEVEL] [--cube FILE] [--mosaics]
#                             [--no-perf] [--work DIR] [--bin DIR]
#
# Defaults: every core, the tools' default compression (medium), the default cube, work
# in target/bench-pipeline, the tools of target/release (built first unless SKIP_BUILD is
# set; --bin DIR: the tools of DIR, not built, e.g. a copy of an older build to compare).
# The tiles are made once and reused (same seeds: same tiles).
# Prints a Markdown table; the raw /usr/bin/time outputs stay in WORK/time/.
# Timings on a loaded machine are not worth quoting: run it on a quiet one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BIN="$ROOT/target/release"
WORK="$ROOT/target/bench-pipeline"
CPU=""
COMPRESSION=""
CUBE=""
MOSAICS=""
PERF=1
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu) CPU="$2"; shift 2 ;;
        --compression) COMPRESSION="$2"; shift 2 ;;
        --cube) CUBE="$(realpath "$2")"; shift 2 ;;
        --mosaics) MOSAICS="--mosaics"; shift ;;
        --no-perf) PERF=0; shift ;;
        --work) WORK="$(realpath -m "$2")"; shift 2 ;;
        --bin) BIN="$(realpath "$2")"; SKIP_BUILD=1; shift 2 ;;
        *) echo "bench-pipeline: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x /usr/bin/time ] || { echo "bench-pipeline: needs GNU time (/usr/bin/time)" >&2; exit 2; }
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -q -p dre-cli
fi

CPU_FLAG=()
[ -n "$CPU" ] && CPU_FLAG=(--cpu "$CPU")
COMP_FLAG=()
[ -n "$COMPRESSION" ] && COMP_FLAG=(--compression "$COMPRESSION")
CUBE_FLAG=()
[ -n "$CUBE" ] && CUBE_FLAG=(-m "$CUBE")

mkdir -p "$WORK"
cd "$WORK"
if [ ! -f Tiles/benchA.fits ] || [ ! -f Tiles/benchB.fits ]; then
    echo "== simulating two 2048 x 2048 tiles of 250 galaxies" >&2
    "$BIN/dre_simulate" --name benchA --size 2048 --galaxies 250 --seed 1 >/dev/null
    "$BIN/dre_simulate" --name benchB --size 2048 --galaxies 250 --seed 2 >/dev/null
fi
# Outputs of earlier runs go: every stage starts from its inputs.
rm -rf Catalogs PSF Cuts Chi Summary Mosaics time perf.data
mkdir -p time

# run NAME CMD...: one stage under /usr/bin/time -v.
run() {
    local name="$1"
    shift
    echo "== $name: $*" >&2
    /usr/bin/time -v -o "time/$name.txt" "$@" >"time/$name.log" 2>&1 || {
        echo "bench-pipeline: $name failed (see $WORK/time/$name.log)" >&2
        exit 1
    }
}
field() { grep -F "$2" "time/$1.txt" | sed 's/.*: //'; }
seconds() { # h:mm:ss or m:ss.ss -> seconds
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }'
}

run sex_dre "$BIN/sex_dre" "${CPU_FLAG[@]}"
run psfex_dre "$BIN/psfex_dre" "${CPU_FLAG[@]}"
run make_cuts "$BIN/make_cuts" "${CPU_FLAG[@]}" "${COMP_FLAG[@]}"
# The first dre run renders the default cube when the cache has none: run once untimed then.
if [ -z "$CUBE" ] && ! [ -f "${DRE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dre}/dre_default_cube_v1.fits" ]; then
    "$BIN/dre" "${CPU_FLAG[@]}" "${COMP_FLAG[@]}" >/dev/null 2>&1 || true
    rm -rf Chi Summary Mosaics
fi
run dre "$BIN/dre" "${CPU_FLAG[@]}" "${COMP_FLAG[@]}" "${CUBE_FLAG[@]}" $MOSAICS

KERNEL="n/a"
if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
    rm -rf Chi Summary Mosaics
    if perf record -q -F 999 -o perf.data "$BIN/dre" "${CPU_FLAG[@]}" "${COMP_FLAG[@]}" \
        "${CUBE_FLAG[@]}" $MOSAICS >/dev/null 2>&1; then
        # Share of the samples in the chi-square kernel (dre::fit::kernel, inlined callees
        # included), of all of dre's samples.
        KERNEL=$(perf report -q -i perf.data --stdio --sort symbol 2>/dev/null |
            awk '/fit::kernel/ { gsub("%", "", $1); s += $1 } END { printf "%.0f%%", s }')
    fi
fi

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(date -u +%F)"
echo "options: --cpu ${CPU:-all} --compression ${COMPRESSION:-default} cube ${CUBE:-default} $MOSAICS"
echo
echo "| stage | wall s | CPU s | peak MB |"
echo "|---|---|---|---|"
total_wall=0
total_cpu=0
peak=0
for s in sex_dre psfex_dre make_cuts dre; do
    wall=$(field "$s" "Elapsed (wall clock)" | seconds)
    cpu=$(awk -v u="$(field "$s" "User time")" -v k="$(field "$s" "System time")" \
        'BEGIN { printf "%.2f", u + k }')
    mb=$(awk -v k="$(field "$s" "Maximum resident")" 'BEGIN { printf "%.0f", k / 1024 }')
    echo "| $s | $wall | $cpu | $mb |"
    total_wall=$(awk -v a="$total_wall" -v b="$wall" 'BEGIN { printf "%.2f", a + b }')
    total_cpu=$(awk -v a="$total_cpu" -v b="$cpu" 'BEGIN { printf "%.2f", a + b }')
    peak=$(awk -v a="$peak" -v b="$mb" 'BEGIN { print (b > a ? b : a) }')
done
echo "| pipeline | $total_wall | $total_cpu | $peak |"
echo
echo "fit kernel share of dre's samples (perf): $KERNEL"
