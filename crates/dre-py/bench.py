"""Benchmark of the Python package against `dre` (not a test: prints a table).

    target/pyenv/bin/python crates/dre-py/bench.py [--threads 1 2] [--tiles 8] [--repeat 3]

1. `fit_dir` against `dre` on the same cuts (the 30 golden cuts, copied into --tiles tiles),
   the default cube (2730 models: the reference size), one PSF, the same threads: objects/s
   of the fit (reading, fitting and writing each tile, as `dre` reports it; the convolution
   and the cube's read are left out of both), and of fit_dir's whole call.
2. The per-call cost of `dre_fit`: on the default cube beside the per-object time of a
   batch; and its overhead beyond the library's own work for the object (packing the
   segment and fitting it, timed inside Rust by `_kernel_seconds`), measured on a one-model
   cube where that work is small and the difference stands out of the noise.

Needs the release binaries (cargo build --release) and dre_rs installed (scripts/setup.sh).
"""
import argparse
import datetime
import lzma
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import dre_rs

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("DRE_BIN_DIR", ROOT / "target" / "release"))
GOLDEN = ROOT / "tests" / "golden"


def unxz(src, dst):
    with lzma.open(src) as f, open(dst, "wb") as g:
        shutil.copyfileobj(f, g)


def workdir(base, tiles):
    """`tiles` copies of the golden cut file with their catalogue, and the golden PSF."""
    (base / "Cuts").mkdir(parents=True)
    (base / "Sextracted").mkdir()
    unxz(GOLDEN / "Cuts/gold_cuts.h5.xz", base / "gold_cuts.h5")
    for i in range(tiles):
        shutil.copy(base / "gold_cuts.h5", base / f"Cuts/t{i:02d}_cuts.h5")
        shutil.copy(GOLDEN / "Sextracted/gold/gold_cat.fits",
                    base / f"Sextracted/t{i:02d}_cat.fits")
    shutil.copy(GOLDEN / "PSF/gold.psf", base / "gold.psf")
    return base


def run_dre(work, cube, threads):
    """Objects/s of `dre` from its per-tile lines (fit time without the convolution)."""
    for d in ("Chi", "Summary"):
        shutil.rmtree(work / d, ignore_errors=True)
    res = subprocess.run([str(BIN / "dre"), "-m", str(cube), "--psf", "gold.psf",
                          "--cpu", str(threads)], cwd=work, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"dre failed:\n{res.stderr}")
    objects = seconds = 0.0
    for m in re.finditer(r"(\d+) fitted.*?([\d.]+) objects/s", res.stdout + res.stderr):
        n, rate = int(m.group(1)), float(m.group(2))
        objects += n
        seconds += n / rate
    if not objects:
        raise SystemExit(f"no per-tile rate in dre's output:\n{res.stderr}")
    return objects / seconds


def run_fit_dir(work, model):
    """Objects/s of fit_dir: by the tiles' own times (what dre's objects/s are of), and by
    the wall time of the whole call."""
    for d in ("Chi", "Summary"):
        shutil.rmtree(work / d, ignore_errors=True)
    start = time.perf_counter()
    r = model.fit_dir(work / "Cuts", work / "Chi", work / "gold.psf",
                      output_dir=work / "Summary", cats_dir=work / "Sextracted",
                      progress=False)
    wall = time.perf_counter() - start
    assert r.ok and r.fitted == r.objects, r
    return r.fitted / r.fit_seconds, r.fitted / wall


def per_call(f, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--tiles", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()

    cube = dre_rs.default_cube_path()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        work = workdir(tmp / "work", args.tiles)
        one = tmp / "one_model.fits"
        subprocess.run([str(BIN / "make_cube"), "-q", "--naxrat", "1", "--axrat0", "0.5",
                        "--nposang", "1", "--posang0", "0", "--nlogh", "1", "--logh0", "0.5",
                        "-o", str(one)], check=True)
        names = dre_rs.cut_names(work / "gold_cuts.h5")
        cuts = [dre_rs.read_cut(work / "gold_cuts.h5", n) for n in names]
        objs, segs, rmss = (np.stack([c[i] for c in cuts]) for i in range(3))
        n_obj = args.tiles * len(names)

        print(f"machine: {cpu_name()}, {os.cpu_count()} cores; {platform.platform()}")
        print(f"date: {datetime.date.today().isoformat()}; dre_rs {dre_rs.__version__}; "
              f"command: python crates/dre-py/bench.py --threads "
              f"{' '.join(map(str, args.threads))} --tiles {args.tiles} --repeat {args.repeat}")
        print(f"cuts: the {len(names)} golden objects x {args.tiles} tiles = {n_obj}; "
              f"cube: the default ({cube})\n")
        print("| threads | dre (objects/s) | fit_dir (objects/s) | fit_dir / dre |"
              " fit_dir, whole call (objects/s) | dre_fit per call (ms) |"
              " batch, per object (ms) | dre_fit overhead (us) |")
        print("|---|---|---|---|---|---|---|---|")
        for threads in args.threads:
            model = dre_rs.ModelsCube(cube, threads=threads)
            model.convolve(work / "gold.psf")
            # Interleaved, best of each: a busy machine slows both alike.
            runs = [(run_dre(work, cube, threads), run_fit_dir(work, model))
                    for _ in range(args.repeat)]
            dre = max(r[0] for r in runs)
            py, py_wall = max(r[1] for r in runs)
            # Mean over the 30 objects (they differ in segment size) of each one's median.
            single = statistics.mean(per_call(lambda c=c: model.dre_fit(*c), 3) for c in cuts)
            batch = per_call(lambda: model.dre_fit_batch(objs, segs, rmss), 3) / len(cuts)
            tiny = dre_rs.ModelsCube(one, threads=threads)
            tiny.convolve(work / "gold.psf")
            reps = max(5, args.calls // len(cuts))
            overhead = statistics.median(
                per_call(lambda c=c: tiny.dre_fit(*c), reps) - tiny._kernel_seconds(*c, reps)
                for c in cuts)
            print(f"| {threads} | {dre:,.0f} | {py:,.0f} | {py / dre:.3f} | {py_wall:,.0f} | "
                  f"{single * 1e3:.3f} | {batch * 1e3:.3f} | {overhead * 1e6:.1f} |")


if __name__ == "__main__":
    main()
