"""The notebook way of working: the original's notebook calls with only the import line
changed, and examples/DRE_Example.ipynb executed headless through a real Jupyter kernel."""
import base64
import io
import lzma
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import matplotlib

matplotlib.use("Agg")  # before pyplot: figures stay open for the test to look at

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.table import Table  # noqa: E402

import dre_rs  # noqa: E402
from conftest import ROOT, bin_path  # noqa: E402

EXAMPLE = ROOT / "examples"

# The original's Colab notebook (the snippet), with its import line changed; the tile
# is the embedded example's and `i` an object of it.
ORIGINAL_CALLS = """
from dre_rs import colab as dre
model = dre.{model}('modelbulge.fits')
model.visualize_model(1)
model.visualize_model(1, psf="PSF/gold.psf")
model.fit_dir('Cuts', 'Chi', 'PSF')
results = dre.Results(model, recompute=True)
results[0]; results[0].make_mosaic(i, vmin=-0.01, vmax=0.02)
results.hist(); results.plot(); results[0].plot('LOGR', 'LOGR_CHI')
"""


@pytest.fixture(scope="session")
def example_tile(tmp_path_factory):
    """The embedded tile through the three preprocessing binaries."""
    work = tmp_path_factory.mktemp("example")
    (work / "Tiles").mkdir()
    with lzma.open(EXAMPLE / "Tiles/gold.fits.xz") as f, open(work / "Tiles/gold.fits", "wb") as g:
        shutil.copyfileobj(f, g)
    for cmd in (["sex_dre", "--arg", "PIXEL_SCALE", "1", "-fwhm", "3"], ["psfex_dre"],
                ["make_cuts"]):
        res = subprocess.run([str(bin_path(cmd[0])), "--quiet", *cmd[1:]], cwd=work,
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    return work


@pytest.fixture
def tile_dir(tmp_path, example_tile, golden):
    for d in ["Tiles", "Sextracted", "PSF", "Cuts"]:
        shutil.copytree(example_tile / d, tmp_path / d)
    # A cube with two Sérsic indices, so that `visualize_model(1)` has an index 1.
    shutil.copy(golden / "cube_small.fits", tmp_path / "modelbulge.fits")
    return tmp_path


def test_the_original_notebook_calls_run_on_the_cpu(tile_dir, monkeypatch):
    monkeypatch.chdir(tile_dir)
    plt.close("all")
    scope = {"i": 0}
    exec(ORIGINAL_CALLS.format(model="ModelCPU"), scope)
    model, results = scope["model"], scope["results"]
    assert isinstance(model, dre_rs.ModelsCube) and model.device == "cpu"
    with h5py.File("Chi/gold_chi.h5", "r") as f:
        names = sorted(f)
    assert len(names) >= 25  # SExtractor finds the 30 galaxies; a few may touch the margin
    # recompute=True: the Summary recomputed from the chi files is dre's Summary.
    assert len(results) == 1 and results[0].name == "gold"
    table = results[0].table
    written = Table.read("Summary/gold_dre.fits")
    assert isinstance(table, Table) and len(table) == len(written) == len(names)
    for c in written.colnames:
        np.testing.assert_array_equal(np.asarray(table[c]), np.asarray(written[c]), err_msg=c)
    assert results[0].row(0)["ROW"] == 0
    first = results[0].row(0)
    assert results[0].loc(first["NUMBER"], first["EXT_NUMBER"])["ROW"] == 0
    # Two cube slices, the mosaic, the four histograms, the two scatter plots, one plot.
    figs = [plt.figure(n) for n in plt.get_fignums()]
    assert len(figs) == 6
    for fig in figs:
        drawn = [a for a in fig.axes if a.images or a.collections or a.patches]
        assert drawn, fig
    assert len(figs[3].axes) == 4  # hist(): INDEX, AX_RATIO, ANGLE, LOGR
    mosaic = figs[2].axes[0].images[0].get_array()
    assert mosaic.shape == (128, 512)
    assert figs[2].axes[0].images[0].get_clim() == (-0.01, 0.02)
    plt.close("all")


def test_the_original_notebook_calls_on_model_gpu(tile_dir, monkeypatch):
    monkeypatch.chdir(tile_dir)
    plt.close("all")
    scope = {"i": 0}
    if not dre_rs.CUDA_BUILT:
        with pytest.raises(RuntimeError, match="built without the `cuda` feature"):
            exec(ORIGINAL_CALLS.format(model="ModelGPU"), scope)
        assert not (tile_dir / "Chi").exists()
        return
    try:
        exec(ORIGINAL_CALLS.format(model="ModelGPU"), scope)
    except RuntimeError as e:
        # A GPU build on a machine without a device: one clear line, no crash.
        assert "cuda" in str(e).lower() and "\n" not in str(e)
        pytest.skip(f"no CUDA device here: {e}")
    assert scope["model"].device == "cuda:0"
    assert len(scope["results"][0]) > 0


def png_outputs(nb):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                yield base64.b64decode(png)


def test_the_example_notebook_runs_headless(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(EXAMPLE / "DRE_Example.ipynb", as_version=4)
    os.environ["DRE_EXAMPLE_DIR"] = str(tmp_path / "work")
    os.environ.setdefault("DRE_BIN_DIR", str(ROOT / "target" / "release"))
    bin_path("dre")
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(EXAMPLE)}}).execute()
    finally:
        del os.environ["DRE_EXAMPLE_DIR"]
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    stderr = [o.text for c in nb.cells for o in c.get("outputs", [])
              if o.output_type == "stream" and o.name == "stderr"]
    assert not [s for s in stderr if "Error" in s or "Traceback" in s], stderr
    pngs = list(png_outputs(nb))
    assert len(pngs) >= 4, len(pngs)
    for png in pngs:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(io.BytesIO(png), format="png")
        assert img.shape[0] >= 200 and img.shape[1] >= 200, img.shape
        assert float(np.std(img[..., :3])) > 0.01  # not a blank canvas
    # The fit wrote dre's outputs in the working folder.
    work = tmp_path / "work"
    assert (work / "Chi/gold_chi.h5").is_file() and (work / "Summary/gold_dre.fits").is_file()
    assert len(list((work / "Mosaics/gold").iterdir())) == len(Table.read(work / "Summary/gold_dre.fits"))
    assert Path(work / "Tiles/gold.fits").is_file()
