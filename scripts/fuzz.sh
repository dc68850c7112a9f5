#!/usr/bin/env bash
# Fuzzes every reader with cargo-fuzz (crates/dre-core/fuzz; README "Fuzzing"): each target
# runs SECONDS (default 540) on one core, from its committed corpus and seeds, and prints
# libFuzzer's final statistics (executions, new coverage). A crash, abort, hang (10 s),
# or a run past 2 GB stops that target: its input is in fuzz/artifacts/TARGET/ and the
# script exits 1 after the other targets ran.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   scripts/fuzz.sh --cmin [TARGET...]     # minimise the corpora (keep one input per feature)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Logs in
# crates/dre-core/fuzz/target/fuzz-TARGET.log.
set -uo pipefail
cd "$(dirname "$0")/../crates/dre-core/fuzz"
# A C library's calloc of more than the address space (cfitsio sizing a table from a corrupt
# header) returns NULL outside the sanitizer, and cfitsio reports it: let it here too.
# Allocations above 2 GB (-rss_limit_mb, libFuzzer's malloc limit) still stop the run.
# Leaks are not looked for: cfitsio leaks a buffer of about 1 KB on some error paths of
# tile-compressed images (imcomp_decompress_tile), which no caller can free.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1:detect_leaks=0"
all="fits_image fits_table ldac psf cube cuts chi"
if [ "${1:-}" = "--cmin" ]; then
    shift
    for t in ${*:-$all}; do
        cargo +nightly fuzz cmin "$t" "corpus/$t" -- -rss_limit_mb=2048 -timeout=10 \
            >"target/cmin-$t.log" 2>&1 || { echo "$t: cmin failed (target/cmin-$t.log)" >&2; exit 1; }
        echo "$t: $(ls "corpus/$t" | wc -l) inputs, $(du -sh "corpus/$t" | cut -f1)"
    done
    exit 0
fi
secs=540
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then secs=$1; shift; fi
status=0
mkdir -p target
for t in ${*:-$all}; do
    mkdir -p "corpus/$t"
    start=$(date +%s)
    if cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" \
        -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 \
        >"target/fuzz-$t.log" 2>&1; then
        verdict=ok
    else
        verdict="FAILED (see target/fuzz-$t.log, artifacts/$t)"
        status=1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "target/fuzz-$t.log" | grep -o '[0-9]*$')
    echo "$t: $verdict, ${runs:-?} executions in $(( $(date +%s) - start )) s, $(ls "corpus/$t" | wc -l) corpus inputs"
done
exit $status
