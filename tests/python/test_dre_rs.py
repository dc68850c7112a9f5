"""The Python package dre_rs (crates/dre-py) against the golden data and against `dre`
itself: the same chi cubes (to the bit), the same parameters, the same files; and every
wrong argument a ValueError naming it, every bad file the binary's own one-line message."""
import shutil
import subprocess
import threading
import time

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import dre_rs
from conftest import bin_path


@pytest.fixture(scope="session")
def cube_file(golden):
    return golden / "cube_small.fits"


@pytest.fixture(scope="session")
def cuts(golden):
    """The golden cuts: name -> (obj, seg, rms), read with h5py."""
    out = {}
    with h5py.File(golden / "Cuts/gold_cuts.h5", "r") as f:
        for name in sorted(f):
            out[name] = (f[name]["obj"][()], f[name]["seg"][()], f[name]["rms"][()])
    return out


@pytest.fixture(scope="session")
def model(cube_file, golden):
    m = dre_rs.ModelsCube(cube_file)
    m.convolve(golden / "PSF/gold.psf")
    return m


def run_dre(workdir, cube_file, *args, ok=True):
    cmd = [str(bin_path("dre")), "-m", str(cube_file), "--quiet", *args]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if ok:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="session")
def dre_run(tmp_path_factory, golden, cube_file):
    """`dre` on the golden cuts (with mosaics), in its own working directory."""
    work = tmp_path_factory.mktemp("dre_run")
    for d in ["Cuts", "PSF", "Sextracted"]:
        shutil.copytree(golden / d, work / d)
    run_dre(work, cube_file, "--mosaics", "--cpu", "2")
    return work


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def read_chi_h5(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


# ---- chi cubes ----------------------------------------------------------------------------

def test_dre_fit_gives_the_golden_chi_and_dres_bits(model, cuts, golden, dre_run):
    theirs = read_chi_h5(golden / "Chi/gold_chi.h5")
    dres = read_chi_h5(dre_run / "Chi/gold_chi.h5")
    assert sorted(theirs) == sorted(dres) == sorted(cuts)
    for name, (obj, seg, rms) in cuts.items():
        chi = model.dre_fit(obj, seg, rms)
        assert chi.dtype == np.float32 and chi.shape == (2, 3, 5, 6) == model.grid_shape
        np.testing.assert_allclose(chi, theirs[name], rtol=1e-4, err_msg=name)
        np.testing.assert_array_equal(bits(chi), bits(dres[name]), err_msg=name)
        assert np.nanargmin(chi) == np.nanargmin(theirs[name])


def test_dre_fit_batch_equals_one_by_one(model, cuts):
    names = sorted(cuts)
    objs = np.stack([cuts[n][0] for n in names])
    segs = np.stack([cuts[n][1] for n in names])
    rmss = np.stack([cuts[n][2] for n in names])
    chis = model.dre_fit_batch(objs, segs, rmss)
    assert chis.shape == (len(names), 2, 3, 5, 6) and chis.dtype == np.float32
    for i, n in enumerate(names):
        np.testing.assert_array_equal(bits(chis[i]), bits(model.dre_fit(*cuts[n])))


def test_a_psf_array_convolves_as_its_file(cube_file, golden, cuts):
    truth = golden / "Truth/gold_truepsf.fits"
    by_file = dre_rs.ModelsCube(cube_file)
    by_file.convolve(truth)
    by_array = dre_rs.ModelsCube(cube_file, threads=1)
    image = fits.getdata(truth).astype(np.float32)
    # Any scale: the PSF is normalised as a file's is.
    assert by_array.convolve(3.0 * image) is True
    np.testing.assert_allclose(by_array.psf, by_file.psf, rtol=1e-6)
    assert by_array.convolve(image) is True
    np.testing.assert_array_equal(by_file.psf, by_array.psf)
    assert abs(float(by_array.psf.sum()) - 1.0) < 1e-5
    theirs = read_chi_h5(golden / "Chi_truepsf/gold_chi.h5")
    for name, c in cuts.items():
        a = by_array.dre_fit(*c)
        np.testing.assert_array_equal(bits(a), bits(by_file.dre_fit(*c)))
        np.testing.assert_allclose(a, theirs[name], rtol=1e-4, err_msg=name)


def test_convolving_again_with_the_same_psf_is_free(cube_file, golden):
    m = dre_rs.ModelsCube(cube_file)
    assert m.convolved_models is None and m.psf is None
    assert m.convolve(str(golden / "PSF/gold.psf")) is True
    assert m.convolve(golden / "PSF/gold.psf") is False
    conv = m.convolved_models
    assert conv.shape == m.shape and conv.dtype == np.float32 and not conv.flags.writeable
    # A convolved stamp keeps the flux of the raw one inside the box (to the PSF's spill).
    np.testing.assert_allclose(conv.sum(axis=(-2, -1)), m.models.sum(axis=(-2, -1)),
                               rtol=0.05)


# ---- parameters ---------------------------------------------------------------------------

FIT_KEYS = ["MODEL_IDX", "CHI", "CHI_STD", "LOGR_CHI", "LOGR_VAR", "LOGR_CHI_VAR", "LOGR_PARAB",
            "LOGR_STD", "INDEX", "LOGR", "AX_RATIO", "ANGLE"]


def test_get_parameters_equals_dres_summary_row(model, dre_run, cuts):
    summary = Table.read(dre_run / "Summary/gold_dre.fits")
    chis = read_chi_h5(dre_run / "Chi/gold_chi.h5")
    assert len(summary) == len(chis) == 30
    # dre's columns beyond the original's and the catalogue's: the off-grid values.
    extra = [c for c in summary.colnames if c.endswith(("_FIT", "_FIT_ERR"))
             or c in ("NPIX", "DRE_FLAGS")]
    native = {k: summary[k].dtype.newbyteorder("=") for k in summary.colnames}  # FITS: BE
    for row in summary:
        name = f"{row['EXT_NUMBER']:02d}_{row['NUMBER']:04d}"
        # From the chi cube alone, the original's values; with the object, dre's whole row.
        assert list(model.get_parameters(chis[name])) == FIT_KEYS
        p = model.get_parameters(chis[name], *cuts[name])
        assert list(p) == FIT_KEYS + extra
        assert p["MODEL_IDX"].dtype == native["MODEL_IDX"] == np.int64
        np.testing.assert_array_equal(p["MODEL_IDX"], row["MODEL_IDX"])
        for k in list(p)[1:]:
            assert np.asarray(p[k]).dtype == native[k], k
            np.testing.assert_array_equal(p[k], row[k], err_msg=f"{name} {k}")


def test_get_parameters_equals_the_golden_summary(model, golden, cuts):
    theirs = Table.read(golden / "Summary/gold_dre.fits")
    for row in theirs:
        name = f"{row['EXT_NUMBER']:02d}_{row['NUMBER']:04d}"
        p = model.get_parameters(model.dre_fit(*cuts[name]))
        np.testing.assert_array_equal(p["MODEL_IDX"], row["MODEL_IDX"])
        for k in ["INDEX", "LOGR", "AX_RATIO", "ANGLE"]:
            assert p[k] == row[k], (name, k)
        for k in ["CHI", "CHI_STD", "LOGR_CHI", "LOGR_PARAB"]:
            np.testing.assert_allclose(p[k], row[k], rtol=1e-4, equal_nan=True)


# ---- files ----------------------------------------------------------------------------------

def assert_same_chi_files(ours, theirs):
    with h5py.File(ours, "r") as a, h5py.File(theirs, "r") as b:
        assert sorted(a) == sorted(b)
        for k in b:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
            assert a[k].compression == b[k].compression
            assert a[k].compression_opts == b[k].compression_opts
            np.testing.assert_array_equal(bits(a[k][()]), bits(b[k][()]), err_msg=k)


def assert_same_tables(ours, theirs):
    a, b = Table.read(ours), Table.read(theirs)
    # Parameters recomputed from a chi file alone lack NPIX, hence the refined columns.
    refined = ["LOGR_FIT", "LOGR_FIT_ERR", "AX_RATIO_FIT", "AX_RATIO_FIT_ERR", "ANGLE_FIT",
               "ANGLE_FIT_ERR", "INDEX_FIT", "INDEX_FIT_ERR", "NPIX", "DRE_FLAGS"]
    assert a.colnames == b.colnames or a.colnames + refined == b.colnames
    assert len(a) == len(b)
    for c in a.colnames:
        assert a[c].dtype == b[c].dtype, c
        np.testing.assert_array_equal(np.asarray(a[c]), np.asarray(b[c]), err_msg=c)


def test_fit_dir_writes_dres_files(tmp_path, golden, cube_file, dre_run):
    for d in ["Cuts", "PSF", "Sextracted"]:
        shutil.copytree(golden / d, tmp_path / d)
    m = dre_rs.ModelsCube(cube_file, threads=2)
    r = m.fit_dir(tmp_path / "Cuts", tmp_path / "Chi", tmp_path / "PSF",
                  output_dir=tmp_path / "Summary", cats_dir=tmp_path / "Sextracted",
                  mosaics_dir=tmp_path / "Mosaics", progress=False)
    assert (r.tiles, r.tiles_failed, r.objects, r.fitted, r.failures) == (1, 0, 30, 30, [])
    assert r.ok and 0 < r.fit_seconds <= r.seconds
    assert_same_chi_files(tmp_path / "Chi/gold_chi.h5", dre_run / "Chi/gold_chi.h5")
    assert_same_tables(tmp_path / "Summary/gold_dre.fits", dre_run / "Summary/gold_dre.fits")
    ours = sorted(p.name for p in (tmp_path / "Mosaics/gold").iterdir())
    assert ours == sorted(p.name for p in (dre_run / "Mosaics/gold").iterdir())
    assert len(ours) == 30
    for n in ours:
        np.testing.assert_array_equal(fits.getdata(tmp_path / "Mosaics/gold" / n),
                                      fits.getdata(dre_run / "Mosaics/gold" / n))
    assert not list(tmp_path.rglob(".*.tmp"))


def test_fit_dir_png_writes_dres_pictures(tmp_path, golden, cube_file, monkeypatch):
    """fit_dir(png=True) is `dre --png`: the same pictures, byte for byte, in Mosaics/."""
    for work in ("py", "bin"):
        for d in ["Cuts", "PSF", "Sextracted"]:
            shutil.copytree(golden / d, tmp_path / work / d)
    run_dre(tmp_path / "bin", cube_file, "--png", "--cpu", "2")
    m = dre_rs.ModelsCube(cube_file, threads=2)
    w = tmp_path / "py"
    # Without mosaics_dir: Mosaics/ of the working directory, as `dre`.
    monkeypatch.chdir(w)
    r = m.fit_dir(w / "Cuts", w / "Chi", w / "PSF", output_dir=w / "Summary",
                  cats_dir=w / "Sextracted", progress=False, png=True)
    assert r.ok and r.fitted == 30
    ours = sorted((w / "Mosaics/gold").glob("*_mosaic.png"))
    theirs = sorted((tmp_path / "bin/Mosaics/gold").glob("*_mosaic.png"))
    assert [p.name for p in ours] == [p.name for p in theirs] and len(ours) == 30
    for a, b in zip(ours, theirs):
        assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert a.read_bytes() == b.read_bytes(), a.name
    assert len(list((w / "Mosaics/gold").glob("*_mosaic.fits"))) == 30


def test_fit_file_writes_dres_files_and_mosaics_match(tmp_path, golden, cube_file, dre_run,
                                                     cuts):
    m = dre_rs.ModelsCube(cube_file)
    bars = []

    class Bar:
        def __init__(self, total, desc, unit):
            self.total, self.desc, self.n = total, desc, 0
            bars.append(self)

        def update(self, k):
            self.n += k

        def close(self):
            self.closed = True

    cat = golden / "Sextracted/gold/gold_cat.fits"
    r = m.fit_file(golden / "Cuts/gold_cuts.h5", tmp_path / "gold_chi.h5",
                   golden / "PSF/gold.psf", summary_file=tmp_path / "gold_dre.fits",
                   catalog=cat, progress=Bar, progress_status="(1/1)")
    assert (r.objects, r.fitted, r.failures, r.warnings) == (30, 30, [], [])
    assert [(b.total, b.desc, b.n, b.closed) for b in bars] == [(30, "(1/1)", 30, True)]
    assert_same_chi_files(tmp_path / "gold_chi.h5", dre_run / "Chi/gold_chi.h5")
    assert_same_tables(tmp_path / "gold_dre.fits", dre_run / "Summary/gold_dre.fits")
    # make_mosaic gives dre's mosaic of the best model.
    row = Table.read(tmp_path / "gold_dre.fits")[3]
    name = f"{row['EXT_NUMBER']:02d}_{row['NUMBER']:04d}"
    obj, seg, _ = cuts[name]
    mosaic = m.make_mosaic(obj, seg, tuple(row["MODEL_IDX"]))
    np.testing.assert_array_equal(
        mosaic, fits.getdata(dre_run / f"Mosaics/gold/gold_{name}_mosaic.fits"))
    # The residual of the best model is the mosaic's last block.
    res = m.make_residual(obj, seg)
    assert res.shape == m.shape
    np.testing.assert_allclose(res[tuple(row["MODEL_IDX"])], mosaic[:, 3 * 128:],
                               atol=1e-5 * np.abs(obj).max())


def test_summarize_recomputes_dres_summary(tmp_path, model, golden, dre_run):
    cat = golden / "Sextracted/gold/gold_cat.fits"
    n = model.summarize(dre_run / "Chi/gold_chi.h5", tmp_path / "gold_dre.fits", cat,
                        golden / "Cuts/gold_cuts.h5")
    assert n == 30
    assert_same_tables(tmp_path / "gold_dre.fits", dre_run / "Summary/gold_dre.fits")
    # From the chi file alone: the same rows without the columns that need the pixels.
    model.summarize(dre_run / "Chi/gold_chi.h5", tmp_path / "alone.fits", cat)
    alone, full = Table.read(tmp_path / "alone.fits"), Table.read(tmp_path / "gold_dre.fits")
    assert alone.colnames == [c for c in full.colnames if c in alone.colnames]
    for c in alone.colnames:
        np.testing.assert_array_equal(np.asarray(alone[c]), np.asarray(full[c]), err_msg=c)


def test_reading_helpers(golden, cuts):
    assert dre_rs.cut_names(golden / "Cuts/gold_cuts.h5") == sorted(cuts)
    obj, seg, rms = dre_rs.read_cut(golden / "Cuts/gold_cuts.h5", "00_0004")
    for a, b in zip((obj, seg, rms), cuts["00_0004"]):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    chi = dre_rs.read_chi(golden / "Chi/gold_chi.h5", "00_0004")
    np.testing.assert_array_equal(chi, read_chi_h5(golden / "Chi/gold_chi.h5")["00_0004"])
    psf = dre_rs.read_psf(golden / "PSF/gold.psf")
    assert psf.shape == (25, 25) and psf.dtype == np.float32 and psf.min() >= 0
    assert abs(float(psf.sum()) - 1) < 1e-5


def test_models_are_a_read_only_view_of_the_cube_file(cube_file):
    m = dre_rs.ModelsCube(cube_file)
    a, b = m.models, m.models
    assert a.shape == m.shape == (2, 3, 5, 6, 128, 128) and a.dtype == np.float32
    assert np.shares_memory(a, b)  # both views of the one cube the backend holds
    assert not a.flags.writeable and not a.flags.owndata
    with pytest.raises(ValueError):
        a[0, 0, 0, 0, 0, 0] = 1.0
    # The file's layout: (NINDEX*NAXRAT, NPOSANG*BOX, NLOGH*BOX), one row of stamps per angle.
    raw = fits.getdata(cube_file).astype(np.float32)
    raw = raw.reshape(2, 3, 5, 128, 6, 128).transpose(0, 1, 2, 4, 3, 5)
    np.testing.assert_array_equal(a, raw)
    np.testing.assert_array_equal(m[1, 2, 3, 4], raw[1, 2, 3, 4])
    names = m.axes_names
    axes = dict(zip(names, m.axes))
    np.testing.assert_allclose(axes["src_index"], [3, 4])
    np.testing.assert_allclose(axes["ax_ratio"], [0.4, 0.7, 1.0])
    np.testing.assert_allclose(axes["angle"], [-90, -45, 0, 45, 90])
    np.testing.assert_allclose(axes["log_r"], 0.2 + 0.25 * np.arange(6))
    del m
    assert float(a[1, 2, 3, 4].sum()) > 0.5  # the view keeps the cube alive


def test_save_models_round_trips(tmp_path, cube_file):
    m = dre_rs.ModelsCube(cube_file)
    m.save_models(tmp_path / "copy.fits")
    again = dre_rs.ModelsCube(tmp_path / "copy.fits")
    np.testing.assert_array_equal(again.models, m.models)
    doubled = 2 * np.asarray(m.models)
    m.save_models(tmp_path / "doubled.fits", doubled)
    np.testing.assert_array_equal(dre_rs.ModelsCube(tmp_path / "doubled.fits").models, doubled)


def test_the_gil_is_released_while_rust_fits(cube_file, golden, cuts):
    m = dre_rs.ModelsCube(cube_file, threads=1)
    m.convolve(golden / "PSF/gold.psf")
    names = sorted(cuts)
    rep = 40
    objs = np.stack([cuts[n][0] for n in names] * rep)
    segs = np.stack([cuts[n][1] for n in names] * rep)
    rmss = np.stack([cuts[n][2] for n in names] * rep)
    beats = []
    done = threading.Event()

    def heartbeat():
        while not done.is_set():
            beats.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=heartbeat)
    t.start()
    time.sleep(0.05)
    # Calls in a row until the window is long enough to tell, however fast the machine: one
    # call took 0.1 s in CI and 0.25 s here.
    calls = []
    while sum(b - a for a, b in calls) < 0.5 and len(calls) < 50:
        a = time.perf_counter()
        m.dre_fit_batch(objs, segs, rmss)
        calls.append((a, time.perf_counter()))
    done.set()
    t.join()
    start, end = calls[0][0], calls[-1][1]
    during = [b for b in beats if start <= b <= end]
    gaps = np.diff([start, *during, end])
    shortest = min(b - a for a, b in calls)
    assert end - start > 0.1, "too short a fit to tell"
    # Holding the GIL would leave one gap as long as the part of a call that held it: before,
    # the copy of the stamps held it for half of each call.
    assert gaps.max() < 0.25 * shortest, (gaps.max(), shortest, len(calls))


# ---- wrong arguments ------------------------------------------------------------------------

def obj_seg_rms(cuts):
    return cuts["00_0004"]


@pytest.mark.parametrize("which, make, message", [
    ("obj", lambda o: o.astype(np.float64),
     "obj: expected dtype float32, got float64 (convert with obj.astype(np.float32))"),
    ("obj", lambda o: o.astype(">f4"), "obj: expected dtype float32, got >f4"),
    ("obj", lambda o: o.tolist(), "obj: expected a numpy array of float32, got list"),
    ("obj", lambda o: o[:64, :64].copy(),
     "obj: expected shape (128, 128) like the cube's stamps, got (64, 64)"),
    ("obj", lambda o: o[None], "obj: expected shape (128, 128) like the cube's stamps, "
                               "got (1, 128, 128)"),
    ("obj", lambda o: np.asfortranarray(o.T), "obj: expected a C-contiguous, aligned array"),
    ("obj", lambda o: o[:, ::-1], "obj: expected a C-contiguous, aligned array"),
    ("seg", lambda s: s.astype(np.int32),
     "seg: expected dtype bool, got int32 (convert with seg.astype(bool))"),
    ("rms", lambda r: r[:, :100].copy(),
     "rms: expected shape (128, 128) like the cube's stamps, got (128, 100)"),
    ("rms", lambda r: None, "rms: expected a numpy array of float32, got NoneType"),
])
def test_dre_fit_refuses_wrong_arrays(model, cuts, which, make, message):
    args = dict(zip(["obj", "seg", "rms"], obj_seg_rms(cuts)))
    args[which] = make(args[which])
    with pytest.raises(ValueError) as e:
        model.dre_fit(**args)
    assert str(e.value).startswith(message), str(e.value)


def test_dre_fit_refuses_empty_and_all_nan_segments(model, cuts):
    obj, seg, rms = obj_seg_rms(cuts)
    with pytest.raises(ValueError, match=r"^dre_fit: segment is empty$"):
        model.dre_fit(obj, np.zeros_like(seg), rms)
    with pytest.raises(ValueError, match=r"^dre_fit: no pixel of its segment has finite data"):
        model.dre_fit(np.full_like(obj, np.nan), seg, rms)


def test_dre_fit_batch_refuses_mismatched_batches(model, cuts):
    obj, seg, rms = obj_seg_rms(cuts)
    objs, segs, rmss = np.stack([obj] * 3), np.stack([seg] * 3), np.stack([rms] * 3)
    with pytest.raises(ValueError, match=r"^segs: expected shape \(3, 128, 128\) like objs, "
                                         r"got \(2, 128, 128\)$"):
        model.dre_fit_batch(objs, segs[:2], rmss)
    with pytest.raises(ValueError, match=r"^objs: expected shape \(N, 128, 128\), got \(128, 128\)"):
        model.dre_fit_batch(obj, seg, rms)
    segs = segs.copy()
    segs[1] = False
    with pytest.raises(ValueError, match=r"^dre_fit_batch: object 1: segment is empty$"):
        model.dre_fit_batch(objs, segs, rmss)


def test_get_parameters_refuses_wrong_chi(model):
    with pytest.raises(ValueError, match=r"^chi: expected shape \(2, 3, 5, 6\) like the cube's "
                                         r"grid, got \(180,\)$"):
        model.get_parameters(np.ones(180, np.float32))
    with pytest.raises(ValueError, match=r"^chi: expected dtype float32, got float64"):
        model.get_parameters(np.ones((2, 3, 5, 6)))
    with pytest.raises(ValueError, match=r"^chi: every value is NaN"):
        model.get_parameters(np.full((2, 3, 5, 6), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"^get_parameters: give the object's obj, seg and rms"):
        model.get_parameters(np.ones((2, 3, 5, 6), np.float32), np.ones((128, 128), np.float32))


def test_fit_before_any_psf_is_refused(cube_file, cuts):
    m = dre_rs.ModelsCube(cube_file)
    with pytest.raises(ValueError, match="^the models are not convolved with a PSF yet$"):
        m.dre_fit(*obj_seg_rms(cuts))


@pytest.mark.parametrize("psf, message", [
    (np.ones((3, 25, 25), np.float32), r"^psf: expected a 2-D array \(height, width\), got shape "
                                       r"\(3, 25, 25\)$"),
    (np.ones((25, 25)), r"^psf: expected dtype float32, got float64"),
    (np.full((25, 25), np.nan, np.float32), r"^psf: PSF has 625 non-finite pixels"),
    (-np.ones((25, 25), np.float32), r"^psf: PSF pixels sum to"),
    (np.ones((200, 200), np.float32), r"larger than"),
    (3, r"^psf: expected a PSF file \(.psf or FITS image\) or a 2-D float32 array, got int$"),
])
def test_convolve_refuses_bad_psfs(cube_file, psf, message):
    m = dre_rs.ModelsCube(cube_file)
    with pytest.raises(ValueError, match=message):
        m.convolve(psf)
    assert m.psf is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(device="tpu"), r"^device: expected 'cpu' or 'cuda' \(or 'cuda:N'\), got \"tpu\"$"),
    (dict(compression="max"), r"^compression: compression must be none, low, medium or high"),
    (dict(threads=0), r"^threads: must be at least 1$"),
])
def test_constructor_refuses_bad_options(cube_file, kwargs, message):
    with pytest.raises(ValueError, match=message):
        dre_rs.ModelsCube(cube_file, **kwargs)


def test_make_mosaic_refuses_bad_indices(model, cuts):
    obj, seg, _ = obj_seg_rms(cuts)
    with pytest.raises(IndexError, match=r"^model_index: index 3 is out of range for axis 1 "
                                         r"of size 3$"):
        model.make_mosaic(obj, seg, (0, 3, 0, 0))
    with pytest.raises(ValueError, match=r"^model_index: expected 4 indices"):
        model.make_mosaic(obj, seg, (0, 0))
    # Negative indices count from the end, as numpy's.
    np.testing.assert_array_equal(model.make_mosaic(obj, seg, (-1, -1, -1, -1)),
                                  model.make_mosaic(obj, seg, (1, 2, 4, 5)))


# ---- bad files: the binaries' one-line messages -------------------------------------------

def dre_line(res):
    """`dre`'s stderr lines, without the `dre: ` prefix."""
    return [line[len("dre: "):] for line in res.stderr.splitlines() if line.startswith("dre: ")]


def test_a_missing_cube_is_file_not_found_with_dres_message(tmp_path, golden):
    res = run_dre(tmp_path, tmp_path / "missing.fits", ok=False)
    with pytest.raises(FileNotFoundError) as e:
        dre_rs.ModelsCube(tmp_path / "missing.fits")
    assert str(e.value) in dre_line(res), (str(e.value), res.stderr)


def test_a_cube_without_boxsize_is_oserror_with_dres_message(tmp_path, cube_file):
    hdul = fits.open(cube_file)
    del hdul[0].header["BOXSIZE"]
    bad = tmp_path / "nobox.fits"
    hdul.writeto(bad)
    shutil.copytree(cube_file.parent / "Cuts", tmp_path / "Cuts")
    res = run_dre(tmp_path, bad, ok=False)
    assert res.returncode == 1
    with pytest.raises(OSError) as e:
        dre_rs.ModelsCube(bad)
    assert "BOXSIZE" in str(e.value)
    assert str(e.value) in dre_line(res), (str(e.value), res.stderr)


def test_a_bad_psf_file_is_oserror_with_dres_message(tmp_path, cube_file, golden, monkeypatch):
    shutil.copytree(golden / "Cuts", tmp_path / "Cuts")
    (tmp_path / "PSF").mkdir()
    (tmp_path / "PSF/gold.psf").write_bytes(b"not a FITS file at all")
    res = run_dre(tmp_path, cube_file, ok=False)
    assert res.returncode == 1
    m = dre_rs.ModelsCube(cube_file)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OSError) as e:
        m.convolve("PSF/gold.psf")
    assert str(e.value) in dre_line(res), (str(e.value), res.stderr)


def test_fit_dir_reports_what_dre_reports(tmp_path, cube_file, golden):
    """A truncated cut file and an object with an empty segment: the same lines as `dre`,
    as DreWarnings and in the report; the rest is fitted and written."""
    for work in ("py", "bin"):
        w = tmp_path / work
        shutil.copytree(golden / "PSF", w / "PSF")
        (w / "Cuts").mkdir()
        shutil.copy(golden / "Cuts/gold_cuts.h5", w / "Cuts/good_cuts.h5")
        shutil.copy(golden / "PSF/gold.psf", w / "PSF/good.psf")
        shutil.copy(golden / "PSF/gold.psf", w / "PSF/cut.psf")
        data = (golden / "Cuts/gold_cuts.h5").read_bytes()
        (w / "Cuts/cut_cuts.h5").write_bytes(data[: len(data) // 2])
        with h5py.File(w / "Cuts/good_cuts.h5", "a") as f:
            f["00_0004/seg"][...] = False
    res = run_dre(tmp_path / "bin", cube_file, ok=False)
    assert res.returncode == 1
    m = dre_rs.ModelsCube(cube_file)
    w = tmp_path / "py"
    with pytest.warns(dre_rs.DreWarning) as caught:
        r = m.fit_dir(w / "Cuts", w / "Chi", w / "PSF", output_dir=w / "Summary",
                      cats_dir=w / "Sextracted", progress=False)
    assert (r.tiles, r.tiles_failed, r.objects, r.fitted) == (2, 1, 30, 29)
    assert not r.ok
    relative = [line.replace(str(w) + "/", "") for line in r.failures]
    expected = [line for line in dre_line(res) if not line.startswith("warning:")]
    assert sorted(relative) == sorted(expected), (relative, res.stderr)
    assert len(expected) == 2
    assert [str(c.message) for c in caught if c.category is dre_rs.DreWarning][:2] == r.failures
    assert (w / "Chi/good_chi.h5").is_file() and not (w / "Chi/cut_chi.h5").exists()
    assert_same_chi_files(w / "Chi/good_chi.h5", tmp_path / "bin/Chi/good_chi.h5")
    assert not list(tmp_path.rglob(".*.tmp"))


def test_fit_dir_without_a_cut_folder_raises(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="no such folder of cut files"):
        model.fit_dir(tmp_path / "Cuts", progress=False)


def test_fit_file_of_a_truncated_cut_file_raises_dres_line(tmp_path, cube_file, model, golden,
                                                           monkeypatch):
    data = (golden / "Cuts/gold_cuts.h5").read_bytes()
    (tmp_path / "Cuts").mkdir()
    (tmp_path / "Cuts/bad_cuts.h5").write_bytes(data[:1000])
    shutil.copytree(golden / "PSF", tmp_path / "PSF")
    shutil.copy(golden / "PSF/gold.psf", tmp_path / "PSF/bad.psf")
    res = run_dre(tmp_path, cube_file, ok=False)
    assert res.returncode == 1
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OSError) as e:
        model.fit_file("Cuts/bad_cuts.h5", "Chi/bad_chi.h5", progress=False)
    assert str(e.value).startswith("Cuts/bad_cuts.h5: ")
    assert str(e.value) in dre_line(res), (str(e.value), res.stderr)
    assert not (tmp_path / "Chi/bad_chi.h5").exists()
    assert not list(tmp_path.rglob(".*.tmp"))


def test_model_gpu_says_why_it_cannot_run(cube_file):
    if dre_rs.CUDA_BUILT:
        pytest.skip("this dre_rs has the cuda feature: test_notebook runs ModelGPU")
    with pytest.raises(RuntimeError, match=r"^device 'cuda:0': dre_rs was built without the "
                                           r"`cuda` feature"):
        dre_rs.ModelGPU(cube_file)
    with pytest.raises(RuntimeError, match="without the `cuda` feature"):
        dre_rs.ModelsCube(cube_file, device="cuda:1")


def test_ctrl_c_stops_fit_dir_with_nothing_half_written(tmp_path, golden):
    import os
    import signal

    (tmp_path / "Cuts").mkdir()
    # 40 tiles: long enough that Ctrl-C lands mid-run even when the test machine is loaded
    # and the thread sending it is scheduled late.
    for i in range(40):
        shutil.copy(golden / "Cuts/gold_cuts.h5", tmp_path / f"Cuts/t{i:02d}_cuts.h5")
    m = dre_rs.ModelsCube()  # the default cube: several seconds of work for 40 tiles
    m.convolve(golden / "PSF/gold.psf")

    # Ctrl-C as soon as the first tile is written: the run is then well before its end.
    def interrupt_after_first_tile():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if list((tmp_path / "Chi").glob("*_chi.h5")):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=interrupt_after_first_tile, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        m.fit_dir(tmp_path / "Cuts", tmp_path / "Chi", golden / "PSF/gold.psf",
                  output_dir=tmp_path / "Summary", cats_dir=tmp_path / "Sextracted",
                  chunk=8, progress=False)
    watcher.join()
    chi = sorted(p.name for p in (tmp_path / "Chi").glob("*_chi.h5"))
    assert len(chi) < 40
    # Every file there is whole: each tile's chi file holds its 30 objects.
    for name in chi:
        with h5py.File(tmp_path / "Chi" / name, "r") as f:
            assert len(f) == 30
    assert not list(tmp_path.rglob(".*.tmp"))
    # The cube is still usable.
    obj, seg, rms = dre_rs.read_cut(golden / "Cuts/gold_cuts.h5", "00_0004")
    assert np.isfinite(m.dre_fit(obj, seg, rms)).all()


def test_statistics_on_a_quadratic_cube():
    """Central differences are exact on a quadratic: the gradient, the Hessian (with a cross
    term) and params_std of exp(quadratic) (whose ln is the quadratic) are known."""
    from dre_rs import statistics

    shape = (2, 5, 7, 6)
    a = np.array([0.0, 1.5, 0.5, 2.0])  # axis 0 has 2 values: no curvature there
    c = np.array([0, 2, 3, 2])
    grid = np.indices(shape).astype(float)
    q = sum(a[i] * (grid[i] - c[i]) ** 2 for i in range(4)) + 0.25 * (grid[1] - 2) * (grid[2] - 3)
    steps = [1.0, 0.1, 15.0, 0.1]
    cube = (q + 1).astype(np.float32)
    idx = (0, 3, 4, 2)
    g = statistics.cube_gradient(cube, idx, steps)
    expect = [0.0] + [(2 * a[i] * (idx[i] - c[i]) + (0.25 * (idx[3 - i] - c[3 - i]) if i in (1, 2)
                                                        else 0)) / steps[i] for i in (1, 2, 3)]
    np.testing.assert_allclose(g, expect, rtol=1e-5, atol=1e-6)
    assert statistics.gradient_norm(cube, idx, steps) == pytest.approx(np.linalg.norm(g))
    h = statistics.cube_hessian(cube, idx, steps)
    assert h.shape == (4, 4)
    np.testing.assert_allclose(np.diag(h)[1:], [2 * a[i] / steps[i] ** 2 for i in (1, 2, 3)],
                               rtol=1e-5)
    assert h[1, 2] == pytest.approx(0.25 / (steps[1] * steps[2]), rel=1e-5) == h[2, 1]
    # ln(chi) quadratic and separable: params_std = sqrt(1 / (2 a)) in grid steps.
    sep = sum(a[i] * (grid[i] - c[i]) ** 2 for i in range(4))
    std = statistics.params_std(np.exp(sep).astype(np.float32), c, [1.0] * 4)
    assert np.isnan(std[0])  # an axis of two values has no curvature
    np.testing.assert_allclose(std[1:], np.sqrt(1 / (2 * a[1:])), rtol=1e-4)
    # Wrong arguments are refused by name, never a crash.
    with pytest.raises(ValueError, match=r"^idx_min and steps: expected 4 values each"):
        statistics.params_std(cube, (0, 1), steps)
    with pytest.raises(IndexError, match=r"^idx_min: index 5 is out of range for axis 1"):
        statistics.cube_gradient(cube, (0, 5, 0, 0), steps)
    with pytest.raises(ValueError, match=r"^chi_cube: expected dtype float32, got float64"):
        statistics.cube_hessian(cube.astype(float), idx, steps)
