"""Shared fixtures: where our binaries and the golden data are."""
import lzma
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_SRC = ROOT / "tests" / "golden"


def bin_path(name):
    d = Path(os.environ.get("DRE_BIN_DIR", ROOT / "target" / "release"))
    p = d / name
    if not p.exists():
        pytest.fail(f"{p} not built: run scripts/test.sh (or cargo build --release)")
    return p


@pytest.fixture(scope="session")
def golden(tmp_path_factory):
    """The golden folder, unpacked (.xz files decompressed)."""
    out = tmp_path_factory.mktemp("golden")
    for src in GOLDEN_SRC.rglob("*"):
        if src.is_dir():
            continue
        rel = src.relative_to(GOLDEN_SRC)
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".xz":
            with lzma.open(src) as f, open(dst.with_suffix(""), "wb") as g:
                shutil.copyfileobj(f, g)
        else:
            shutil.copy(src, dst)
    return out


@pytest.fixture
def workdir(tmp_path, golden):
    """A working directory with copies of the golden Cuts, PSF, Sextracted and Truth."""
    for d in ["Cuts", "PSF", "Sextracted", "Truth"]:
        shutil.copytree(golden / d, tmp_path / d)
    return tmp_path
