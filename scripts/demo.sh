#!/usr/bin/env bash
# Runs the whole pipeline on the embedded example tile (examples/Tiles/gold.fits.xz) in
# target/demo/: sex_dre -> psfex_dre -> make_cuts -> dre, with the default model cube.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BIN="$PWD/target/release"
WORK="$PWD/target/demo"
rm -rf "$WORK"
mkdir -p "$WORK/Tiles"
xz -dc examples/Tiles/gold.fits.xz > "$WORK/Tiles/gold.fits"
cd "$WORK"
echo "== sex_dre";   "$BIN/sex_dre"
echo "== psfex_dre"; "$BIN/psfex_dre"
echo "== make_cuts"; "$BIN/make_cuts"
echo "== dre";       "$BIN/dre" --mosaics
echo
echo "Summary: $WORK/Summary/gold_dre.fits"
echo "Chi:     $WORK/Chi/gold_chi.h5"
echo "Mosaics: $WORK/Mosaics/gold/"
