"""Cut files and model cubes written by our tools, opened with the real h5py and astropy."""
import subprocess

import h5py
import numpy as np
from astropy.io import fits

from conftest import bin_path


def test_cut_files_open_in_h5py_like_the_originals(tmp_path, golden):
    """make_cuts on the golden SExtractor outputs: the same groups, datasets, types and
    compression as the original's Cuts/gold_cuts.h5, and the same pixels."""
    import shutil

    shutil.copytree(golden / "Sextracted", tmp_path / "Sextracted")
    shutil.copytree(golden / "Tiles", tmp_path / "Tiles")
    res = subprocess.run([str(bin_path("make_cuts")), "--quiet"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    with h5py.File(tmp_path / "Cuts/gold_cuts.h5", "r") as ours, h5py.File(golden / "Cuts/gold_cuts.h5", "r") as theirs:
        assert list(ours) == list(theirs)
        for name in theirs:
            assert sorted(ours[name]) == ["obj", "rms", "seg"]
            for ds in ["obj", "rms", "seg"]:
                a, b = ours[name][ds], theirs[name][ds]
                assert a.dtype == b.dtype, (name, ds, a.dtype)
                assert a.shape == b.shape == (128, 128)
                assert a.compression == b.compression == "gzip"
                assert a.compression_opts == b.compression_opts == 4
                np.testing.assert_array_equal(a[()], b[()])
            assert ours[name]["seg"].dtype == np.bool_


def test_model_cube_opens_in_astropy_and_reshapes_like_the_original(tmp_path):
    """A make_cube cube read the way the original's ModelsCube.load_models reads it."""
    out = tmp_path / "cube.fits"
    cmd = [str(bin_path("make_cube")), "--quiet", "-o", str(out), "--index", "2", "4",
           "--axrat0", "0.5", "--daxrat", "0.5", "--naxrat", "2",
           "--posang0", "-90", "--dposang", "90", "--nposang", "3",
           "--logh0", "0.2", "--dlogh", "0.3", "--nlogh", "2", "--boxsize", "16"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    h = fits.getheader(out)
    data = fits.getdata(out)
    assert data.dtype == np.dtype(">f4") and data.shape == (2 * 2, 3 * 16, 2 * 16)
    assert (h["NINDEX"], h["INDEX0"], h["DINDEX"]) == (2, 2.0, 2.0)
    assert (h["NAXRAT"], h["NPOSANG"], h["NLOGH"], h["BOXSIZE"]) == (2, 3, 2, 16)
    assert h["RADTYPE"] == "HLR_MAJOR" and h["ANGCONV"] == "THETA_IMAGE"
    # The original's load_models: reshape, then swap the log-radius and x axes.
    cube = data.astype(float).reshape(h["NINDEX"], h["NAXRAT"], h["NPOSANG"], h["BOXSIZE"], h["NLOGH"], h["BOXSIZE"])
    cube = cube.swapaxes(3, 4)
    assert cube.shape == (2, 2, 3, 2, 16, 16)
    np.testing.assert_allclose(cube.sum(axis=(-1, -2)), 1.0, rtol=1e-5)
    # theta = -90 and +90 are the same image; larger radii spread the light.
    np.testing.assert_array_equal(cube[:, :, 0], cube[:, :, 2])
    assert (cube[..., 1, 7:9, 7:9].sum(axis=(-1, -2)) < cube[..., 0, 7:9, 7:9].sum(axis=(-1, -2))).all()
    # At q = 0.5, theta = 0 puts the major axis along x (columns): more light along the row.
    stamp = cube[1, 0, 1, 1]
    assert stamp[7:9, :].sum() > stamp[:, 7:9].sum()
