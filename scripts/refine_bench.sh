#!/usr/bin/env bash
# The off-grid values (LOGR_FIT, AX_RATIO_FIT, ANGLE_FIT) against the truth of two default
# simulated tiles (500 galaxies, n = 4): NMAD and median by S/N bin, pulls, flag counts.
# Needs the release binaries, SExtractor and PSFEx, and target/pyenv (astropy). About a minute.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=$root/target/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for s in 7 8; do "$B/dre_simulate" --name "sim$s" --seed "$s" --index 4 -q; done
"$B/sex_dre" --arg PIXEL_SCALE 1 -fwhm 3 >/dev/null
"$B/psfex_dre" >/dev/null
"$B/make_cuts" >/dev/null
"$B/dre" >/dev/null
"$root/target/pyenv/bin/python" "$root/scripts/refine_bench.py"
