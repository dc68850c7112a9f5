"""Our `dre` outputs opened with the real astropy and h5py, compared with the original's."""
import subprocess

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from conftest import bin_path


def run_dre(workdir, golden, *args):
    cmd = [str(bin_path("dre")), "-m", str(golden / "cube_small.fits"), "--quiet", *args]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res


def test_chi_file_opens_in_h5py_and_matches_the_original(workdir, golden):
    run_dre(workdir, golden, "--compression", "high")
    with h5py.File(workdir / "Chi/gold_chi.h5", "r") as ours, h5py.File(golden / "Chi/gold_chi.h5", "r") as theirs:
        assert sorted(ours) == sorted(theirs)
        for name in theirs:
            a, b = ours[name], theirs[name]
            assert a.dtype == np.float32 and a.shape == b.shape == (2, 3, 5, 6)
            assert a.compression == "gzip" and a.compression_opts == 9
            np.testing.assert_allclose(a[()], b[()], rtol=1e-4)
            assert np.nanargmin(a[()]) == np.nanargmin(b[()])


def test_low_compression_is_h5py_lzf(workdir, golden):
    run_dre(workdir, golden, "--compression", "low")
    with h5py.File(workdir / "Chi/gold_chi.h5", "r") as f:
        assert f["00_0002"].compression == "lzf"


def test_summary_opens_in_astropy_with_the_original_columns(workdir, golden):
    run_dre(workdir, golden)
    ours = Table.read(workdir / "Summary/gold_dre.fits")
    theirs = Table.read(golden / "Summary/gold_dre.fits")
    n = len(theirs.colnames)
    assert ours.colnames[:n] == theirs.colnames
    # The off-grid values, their errors and the flags come after the original's columns.
    # (INDEX_FIT: the golden cube has several n.)
    assert ours.colnames[n:] == ["LOGR_FIT", "LOGR_FIT_ERR", "AX_RATIO_FIT", "AX_RATIO_FIT_ERR",
                                 "ANGLE_FIT", "ANGLE_FIT_ERR", "INDEX_FIT", "INDEX_FIT_ERR",
                                 "NPIX", "DRE_FLAGS"]
    for c in ["DRE_FLAGS", "NPIX"]:
        assert ours[c].dtype.kind == "i" and ours[c].dtype.itemsize == 4, c
    assert (ours["NPIX"] > 0).all()
    assert ours.meta["DREFLG0"] == "LOGR_EDGE" and ours.meta["DREFLG6"] == "SEGMENT_AT_EDGE"
    assert np.isfinite(ours["LOGR_FIT"]).all()
    # Within the 3-point window around the grid value (log r steps of 0.25 in this cube).
    assert (np.abs(ours["LOGR_FIT"] - ours["LOGR"]) <= 0.5 + 1e-6).all()
    assert (np.abs(ours["LOGR_FIT"] - ours["LOGR"]) > 1e-3).sum() > 20
    for c in theirs.colnames:
        assert ours[c].dtype == theirs[c].dtype, c
        assert ours[c].shape == theirs[c].shape, c
    np.testing.assert_array_equal(ours["MODEL_IDX"], theirs["MODEL_IDX"])
    np.testing.assert_array_equal(ours["NUMBER"], theirs["NUMBER"])
    for c in ["CHI", "CHI_STD", "LOGR_CHI", "LOGR_VAR", "LOGR_CHI_VAR", "LOGR_PARAB", "LOGR_STD"]:
        np.testing.assert_allclose(ours[c], theirs[c], rtol=1e-4, equal_nan=True, err_msg=c)
    for c in ["INDEX", "LOGR", "AX_RATIO", "ANGLE", "X_IMAGE", "Y_IMAGE", "FLUX_AUTO", "CLASS_STAR"]:
        np.testing.assert_array_equal(ours[c], theirs[c], err_msg=c)


def test_mosaics_open_in_astropy_in_the_tile_orientation(workdir, golden):
    run_dre(workdir, golden, "--mosaics")
    ours = fits.getdata(workdir / "Mosaics/gold/gold_00_0004_mosaic.fits")
    theirs = fits.getdata(golden / "Mosaics/gold/gold_00_0004_mosaic.fits")
    assert ours.shape == theirs.shape == (128, 512)
    # The original transposes each 128x128 block; ours keeps the tile's orientation.
    for b in range(4):
        block = slice(128 * b, 128 * (b + 1))
        np.testing.assert_allclose(ours[:, block], theirs[:, block].T, atol=1e-4 * np.abs(theirs).max())
    with h5py.File(golden / "Cuts/gold_cuts.h5", "r") as f:
        np.testing.assert_array_equal(ours[:, :128], f["00_0004/obj"][()])


def test_pictures_open_in_matplotlib(workdir, golden):
    """dre --png and dre_score --plot write PNGs that another reader (matplotlib, Pillow)
    opens at the size the README states."""
    mpimg = pytest.importorskip("matplotlib.image")
    run_dre(workdir, golden, "--png")
    pngs = sorted((workdir / "Mosaics/gold").glob("*_mosaic.png"))
    assert len(pngs) == len(list((workdir / "Mosaics/gold").glob("*_mosaic.fits"))) > 0
    img = mpimg.imread(pngs[0])
    assert img.shape == (338, 1160, 3)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50
    res = subprocess.run([str(bin_path("dre_score")), "Summary/gold_dre.fits", "Truth/gold_truth.csv",
                          "--radius-column", "A_HLR", "--plot", "score.png"],
                         cwd=workdir, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "log_re_fit" in res.stdout
    plot = mpimg.imread(workdir / "score.png")
    assert plot.shape == (800, 1200, 3)
    assert len(np.unique(plot.reshape(-1, 3), axis=0)) > 50
