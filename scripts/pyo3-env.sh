# Sourced by setup.sh and test.sh: the environment maturin builds the Python package dre_rs
# in (crates/dre-py), exported for cargo too, so that cargo and maturin share every artifact
# in target/ instead of rebuilding PyO3 and dre-py in turn. Build the wheel first: maturin
# writes the PyO3 configuration file named here. A different maturin only costs a rebuild.
PYO3_PY="$PWD/target/pyenv/bin/python"
if [ -x "$PYO3_PY" ]; then
  export PYO3_PYTHON="$PYO3_PY" PYTHON_SYS_EXECUTABLE="$PYO3_PY" PYO3_BUILD_EXTENSION_MODULE=1
  PYO3_ENVIRONMENT_SIGNATURE="$("$PYO3_PY" -c 'import platform, sys; print(f"cpython-{sys.version_info[0]}.{sys.version_info[1]}-{platform.architecture()[0]}")')"
  export PYO3_ENVIRONMENT_SIGNATURE
  for f in "$PWD"/target/maturin/pyo3-config-*-abi3.txt; do
    if [ -f "$f" ]; then export PYO3_CONFIG_FILE="$f"; fi
  done
fi
