#!/usr/bin/env bash
# Benchmark of dre_survey (not a test): 16 simulated tiles (dre_simulate's defaults: 2048 x
# 2048 pixels, 250 galaxies, 40 stars) through sex_dre, psfex_dre, make_cuts and dre with
# the default cube (2730 models, rendered once before the first run), one tile per task:
#
#   local --jobs 1     one task at a time on this machine (dre on every core)
#   local --jobs 2     two tasks at a time (dre on cores / 2 threads each)
#   slurm --jobs 2     one job array on the single-node cluster of scripts/slurm-local.sh
#                      (started here if it is not up), 2 tasks at a time, 1 CPU each
#
# Each run starts from the tiles alone. Prints a Markdown table: seconds, tiles per minute,
# and the Slurm path's overhead per task: (slurm seconds - local --jobs 2 seconds) x 2 / 16,
# the wall time each task costs beyond the same work run by local processes.
#
#   scripts/bench-survey.sh [WORKDIR]     (default target/bench-survey)
set -euo pipefail
cd "$(dirname "$0")/.."
W=$(realpath -m "${1:-target/bench-survey}")
N=${BENCH_TILES:-16}
# dre_simulate's options (none: its defaults); a quick try: BENCH_TILES=2 BENCH_SIM="--size 400"
read -r -a SIM <<<"${BENCH_SIM:-}"
cargo build --release -p dre-cli --quiet
B=$PWD/target/release

rm -rf "$W"
mkdir -p "$W"
echo "== simulating $N tiles in $W" >&2
for i in $(seq 1 $N); do
  "$B/dre_simulate" -q -o "$W" --name "t$(printf %02d "$i")" --seed "$i" "${SIM[@]}"
done
"$B/dre_survey" init -d "$W" >/dev/null
sed -i -e 's/^arg = \[\]/arg = [["PIXEL_SCALE", "1"]]/' -e 's/^# fwhm = 3.0/fwhm = 3.0/' "$W/survey.toml"

if ! scripts/slurm-local.sh status >/dev/null 2>&1; then
  scripts/slurm-local.sh start >&2
fi

now() { date +%s.%N; }
clean() { rm -rf "$W"/{Sextracted,PSF,Cuts,Chi,Summary} "$W/.survey/state" "$W/.survey/runs"; }

# The default cube, once: a first run on one tile renders it.
echo "== rendering the default cube" >&2
"$B/dre_survey" run -d "$W" -q --jobs 1 --tiles t01 >/dev/null

declare -A secs
for case in "local --jobs 1" "local --jobs 2" "slurm --jobs 2"; do
  clean
  set -- $case
  extra=()
  if [ "$1" = slurm ]; then extra=(--wait); fi
  echo "== $case" >&2
  t0=$(now)
  "$B/dre_survey" run -d "$W" -q --executor "$1" "$2" "$3" "${extra[@]}" >/dev/null
  t1=$(now)
  json=$("$B/dre_survey" status -d "$W" --json)
  done=$(awk -F': ' '/^  "done"/ {gsub(",", "", $2); print $2}' <<<"$json")
  if [ "$done" != "$N" ]; then
    echo "bench: $case: $done of $N tiles done" >&2
    exit 1
  fi
  secs[$case]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
done

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "$N tiles (dre_simulate ${SIM[*]:-defaults}), default cube; $(nproc) cores ($cpu), $(date -u +%Y-%m-%d)"
echo
echo "| executor | command | seconds | tiles per minute | overhead per task |"
echo "|---|---|---|---|---|"
for case in "local --jobs 1" "local --jobs 2" "slurm --jobs 2"; do
  s=${secs[$case]}
  rate=$(awk -v s="$s" -v n=$N 'BEGIN {printf "%.1f", n * 60 / s}')
  over=""
  if [ "${case%% *}" = slurm ]; then
    over=$(awk -v s="$s" -v l="${secs["local --jobs 2"]}" -v n=$N 'BEGIN {printf "%.2f s", (s - l) * 2 / n}')
  fi
  set -- $case
  cmd="dre_survey run --executor $1 $2 $3"
  if [ "$1" = slurm ]; then cmd="$cmd --wait"; fi
  echo "| $1 | \`$cmd\` | $s | $rate | $over |"
done
