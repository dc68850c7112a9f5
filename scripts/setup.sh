#!/usr/bin/env bash
# Installs what DRE needs on Debian 12 (run by demo.sh and test.sh; safe to re-run):
# the C libraries the Rust crates link (HDF5, CFITSIO), SExtractor and PSFEx, Slurm and
# munge (the single-node cluster of the dre_survey tests, scripts/slurm-local.sh), and a Python
# virtual environment (target/pyenv) with the real astropy/h5py used to check our files and
# the Python package dre_rs with its notebook dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=0
for pkg in ca-certificates libhdf5-dev libcfitsio-dev pkg-config gcc source-extractor psfex python3-venv python3-pip xz-utils slurm-wlm munge; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
  echo "== installing Debian packages"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    ca-certificates libhdf5-dev libcfitsio-dev pkg-config gcc source-extractor psfex \
    python3-venv python3-pip xz-utils slurm-wlm munge >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

# rustfmt and clippy for the style checks of scripts/test.sh.
if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >/dev/null
  done
fi

if [ ! -x target/pyenv/bin/python ]; then
  echo "== creating the Python environment (target/pyenv)"
  mkdir -p target
  python3 -m venv target/pyenv
fi
target/pyenv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt

# The Python package dre_rs first, built by maturin in the workspace's target folder and
# installed into target/pyenv; then the workspace with maturin's environment (pyo3-env.sh),
# which finds dre-core, PyO3 and dre-py already built: nothing is compiled twice.
echo "== building the Python package dre_rs (crates/dre-py, release) into target/pyenv"
rm -rf target/wheels
target/pyenv/bin/maturin build --release --quiet -m crates/dre-py/Cargo.toml \
  -i target/pyenv/bin/python --target-dir "$PWD/target" -o target/wheels
target/pyenv/bin/pip install -q --disable-pip-version-check --force-reinstall --no-deps \
  target/wheels/dre_rs-*.whl

echo "== building (release)"
. scripts/pyo3-env.sh
cargo build --release --workspace --quiet
