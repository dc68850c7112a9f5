#!/usr/bin/env bash
# Runs the whole test suite: style (rustfmt, clippy with and without the `cuda` feature,
# the library's rustdoc), Rust unit and integration tests (golden comparisons against the
# original Python DRE, bad input, the real SExtractor/PSFEx), then the interoperability
# tests that open our files with the real astropy and h5py, and the Python package dre_rs
# (its golden comparisons, the original's notebook calls and the example notebook through
# a Jupyter kernel). The dre_survey tests run job arrays on a single-node Slurm cluster
# started here (and stopped after the Rust tests) with scripts/slurm-local.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# cargo in maturin's environment, so that it reuses the Python package's build.
. scripts/pyo3-env.sh
echo "== style: cargo fmt --check, cargo clippy -D warnings (default and cuda features)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy --workspace --all-targets --quiet --features dre-cli/cuda -- -D warnings
echo "== the library's API documentation: cargo doc, a broken link or private link refused"
RUSTDOCFLAGS="-D warnings" cargo doc -p dre-core --no-deps --quiet
echo "== a single-node Slurm cluster for the dre_survey tests (scripts/slurm-local.sh)"
if ! scripts/slurm-local.sh status >/dev/null 2>&1; then
  if scripts/slurm-local.sh start; then
    trap 'scripts/slurm-local.sh stop' EXIT
  else
    echo "test: Slurm could not be started: its tests say 'skipped'" >&2
  fi
fi
echo "== cargo test"
cargo test --release --workspace
if trap -p EXIT | grep -q slurm-local; then
  scripts/slurm-local.sh stop
  trap - EXIT
fi
echo "== the cuda feature: build, and its GPU tests (they say 'skipped' where there is no GPU)"
cargo test --release -p dre-core -p dre-cli --features dre-cli/cuda -- gpu
echo "== python tests: interoperability, and the Python package dre_rs with its notebook"
DRE_BIN_DIR="$PWD/target/release" target/pyenv/bin/python -m pytest -q tests/python
