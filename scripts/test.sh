#!/usr/bin/env bash
# Runs the whole test suite: Rust unit and integration tests (golden comparisons against the
# original Python DRE, bad input, the real SExtractor/PSFEx), then the interoperability
# tests that open our files with the real astropy and h5py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== cargo test"
cargo test --release --workspace
echo "== the cuda feature: build, and its tests (they say 'skipped' where there is no GPU)"
cargo test --release -p dre-core -p dre-cli --features dre-cli/cuda --test gpu
echo "== python interoperability tests"
DRE_BIN_DIR="$PWD/target/release" target/pyenv/bin/python -m pytest -q tests/python
