"""The original's notebook results: ``Result`` (one tile's Summary as an astropy table, with
its cuts, PSF and image at hand for plots) and ``Results`` (every tile of a working
directory). Tables come from ``dre``'s own files: a Summary written by ``dre`` / ``fit_dir``,
or, with ``recompute=True``, one the Rust library recomputes from the chi files."""
import os
import tempfile

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from . import _dre_rs

_FIT_PARAMS = [('INDEX', r'$n$'), ('AX_RATIO', r'$b/a$'), ('ANGLE', r'$\theta$ (deg)'),
               ('LOGR', r'$\log_{10} R_e$ (pix)')]


def cat_to_table(cat_file):
    """A SExtractor FITS_LDAC catalogue (``sex_dre``'s ``NAME_cat.fits``) as an astropy
    table, without VIGNET (as the Summary joins it)."""
    with fits.open(cat_file) as hdul:
        hdus = [h for h in hdul if h.name == 'LDAC_OBJECTS'] or \
               [h for h in hdul if isinstance(h, fits.BinTableHDU)]
        if not hdus:
            raise OSError(f"{cat_file}: no catalogue table (LDAC_OBJECTS)")
        tables = []
        for ext, h in enumerate(hdus, start=1):
            t = Table(h.data)
            if 'EXT_NUMBER' not in t.colnames and len(hdus) > 1:
                t['EXT_NUMBER'] = ext
            tables.append(t)
    table = vstack(tables) if len(tables) > 1 else tables[0]
    if 'VIGNET' in table.colnames:
        table.remove_column('VIGNET')
    return table


def get_psf(filename):
    """The PSF ``dre`` uses (normalised, float32): a PSFEx ``.psf`` or a FITS image."""
    return _dre_rs.read_psf(filename)


def _percentiles(image, kwargs, low, high):
    """Default vmin/vmax (when not given) at percentiles of the finite pixels."""
    finite = image[np.isfinite(image)]
    if finite.size and 'norm' not in kwargs:
        kwargs.setdefault('vmin', float(np.percentile(finite, low)))
        kwargs.setdefault('vmax', float(np.percentile(finite, high)))


def _plt():
    import matplotlib.pyplot as plt
    return plt


class Result:
    """One tile's results: ``table`` (an astropy Table of its Summary, indexed by ROW,
    EXT_NUMBER and NUMBER), and where its cuts (``cuts``), PSF (``psf``) and image
    (``image``) are."""

    def __init__(self, model=None, output_dir=None, result_id=0):
        self.model = model
        self.output_dir = output_dir
        self.result_id = result_id
        self.table = Table()
        self.name = None
        self.image = None
        self.cuts = None
        self.psf = None

    def __getitem__(self, key):
        return self.table[key]

    def __setitem__(self, key, value):
        self.table[key] = value

    def __repr__(self):
        return f"<Result {self.name}: {len(self)} objects>\n{self.table!r}"

    def _repr_html_(self):
        return f"<p><b>{self.name}</b>: {len(self)} objects</p>" + self.table._repr_html_()

    def __len__(self):
        return len(self.table)

    def __bool__(self):
        return len(self.table) > 0

    def show(self):
        """The table, for display in a notebook."""
        return self.table

    def colnames(self):
        return self.table.colnames

    def _index(self):
        if len(self.table) == 0:
            return
        if 'ROW' not in self.table.colnames:
            self.table['ROW'] = np.arange(len(self.table), dtype=np.int64)
        self.table['RESULT_ID'] = np.full(len(self.table), self.result_id, dtype=np.int64)
        indexed = {c.info.name for i in self.table.indices for c in i.columns}
        for key in ('ROW', 'EXT_NUMBER', 'NUMBER'):
            if key in self.table.colnames and key not in indexed:
                self.table.add_index(key)

    def loc(self, cat_number, ext_number=0):
        """The row of catalogue object NUMBER ``cat_number`` in extension ``ext_number``."""
        t = self.table
        match = (t['NUMBER'] == cat_number) & (t['EXT_NUMBER'] == ext_number)
        rows = np.flatnonzero(match)
        if len(rows) == 0:
            raise KeyError(f"{self.name}: no object NUMBER {cat_number} in extension "
                           f"{ext_number}")
        return t[rows[0]]

    def row(self, i):
        """The row whose ROW is ``i`` (the Summary's order)."""
        rows = np.flatnonzero(self.table['ROW'] == i)
        if len(rows) == 0:
            raise KeyError(f"{self.name}: no ROW {i} (the table has {len(self)} rows)")
        return self.table[rows[0]]

    def save(self):
        """Writes the table as ``output_dir/NAME_dre.fits``."""
        os.makedirs(self.output_dir, exist_ok=True)
        t = self.table.copy(copy_data=False)
        if 'RESULT_ID' in t.colnames:
            t.remove_column('RESULT_ID')
        t.write(os.path.join(self.output_dir, f"{self.name}_dre.fits"), overwrite=True)

    def load_summary(self, summary):
        """Reads a Summary (``NAME_dre.fits``)."""
        self.name = os.path.basename(summary).replace('_dre.fits', '')
        self.table = Table.read(summary)
        self._index()

    def load_chi(self, chi_file, catalog=None, cuts_file=None):
        """Recomputes the Summary of a chi file with the model (the Rust library computes
        and joins it exactly as ``dre`` does), joined with ``catalog`` when given; with the
        tile's ``cuts_file``, the off-grid columns (``LOGR_FIT`` ...) too."""
        if self.model is None:
            raise ValueError("load_chi needs a model to compute the parameters")
        self.name = os.path.basename(chi_file).replace('_chi.h5', '')
        with tempfile.TemporaryDirectory() as tmp:
            summary = os.path.join(tmp, f"{self.name}_dre.fits")
            self.model.summarize(chi_file, summary, catalog, cuts_file)
            self.table = Table.read(summary)
            self.table = Table(self.table, copy=True)
        self._index()

    def join_catalog(self, cat_table, keys=None, table_names=('1', '2')):
        """Inner-joins the table with a catalogue (an astropy table) on EXT_NUMBER and
        NUMBER, or ``keys``."""
        from astropy.table import join
        cat = Table(cat_table)
        if keys is None:
            keys = [k for k in ('EXT_NUMBER', 'NUMBER') if k in cat.colnames]
        self.table = join(self.table, cat, join_type='inner', keys=keys,
                          table_names=table_names)
        self.table.sort([k for k in ('EXT_NUMBER', 'NUMBER') if k in self.table.colnames])
        self.table['ROW'] = np.arange(len(self.table), dtype=np.int64)
        self._index()

    def visualize_detections(self, figsize=(10, 10), cmap='gray', **kwargs):
        """The tile with each fitted object's best model drawn as its half-light ellipse, and
        its NUMBER."""
        plt = _plt()
        if not self.image or not os.path.isfile(self.image):
            raise FileNotFoundError(f"{self.image}: no such tile image")
        from astropy.visualization import ImageNormalize, ZScaleInterval
        with fits.open(self.image) as hdul:
            data = next(h.data for h in hdul if h.data is not None and h.data.ndim == 2)
            data = np.asarray(data, dtype=np.float32)
        _, ax = plt.subplots(figsize=figsize)
        norm = ImageNormalize(data, interval=ZScaleInterval())
        ax.imshow(data, cmap=cmap, norm=norm, origin='lower', **kwargs)
        if 'X_IMAGE' in self.table.colnames:
            from matplotlib.patches import Ellipse
            for r in self.table:
                x, y = float(r['X_IMAGE']) - 1, float(r['Y_IMAGE']) - 1  # FITS 1-based
                a = max(2.0, 10 ** float(r['LOGR']))  # the best model's R_e
                ax.add_patch(Ellipse((x, y), 2 * a, 2 * a * float(r['AX_RATIO']),
                                     angle=float(r['ANGLE']), fill=False, color='tab:red',
                                     lw=1))
                ax.annotate(str(r['NUMBER']), (x, y), color='tab:orange', fontsize=7,
                            xytext=(4, 4), textcoords='offset points')
        ax.set_title(f"{self.name}: {len(self)} fitted objects")
        plt.show()

    def hist(self, key=None, **kwargs):
        """Histogram of column ``key``; without one, of the four fitted parameters (one bin
        per grid value)."""
        plt = _plt()
        if key:
            plt.figure(figsize=(6, 6))
            plt.hist(np.asarray(self.table[key]), **kwargs)
            plt.xlabel(key, fontsize=14)
        else:
            plt.figure(figsize=(8, 8))
            for i, (k, label) in enumerate(_FIT_PARAMS):
                plt.subplot(2, 2, i + 1)
                plt.hist(np.asarray(self.table[k]), bins=self._grid_bins(i), **kwargs)
                plt.xlabel(label, fontsize=14)
            plt.tight_layout()
        plt.show()

    def _grid_bins(self, axis):
        """One bin per grid value of the cube's axis (centred on it), or 10 without a cube."""
        if self.model is None:
            return 10
        values = np.asarray(self.model.axes[axis], dtype=float)
        step = float(values[1] - values[0]) if len(values) > 1 else 1.0
        return np.sort(np.append(values - step / 2, values[-1] + step / 2))

    def plot(self, x_key=None, y_key=None, c=None, s=5, **kwargs):
        """Scatter of ``y_key`` against ``x_key``; without them, the radius estimates."""
        plt = _plt()
        t = self.table
        if c is not None and isinstance(c, str):
            c = np.asarray(t[c])
        if x_key is not None and y_key is not None:
            plt.figure(figsize=(6, 6))
            plt.scatter(np.asarray(t[x_key]), np.asarray(t[y_key]), c=c, s=s, **kwargs)
            plt.xlabel(x_key, fontsize=14)
            plt.ylabel(y_key, fontsize=14)
        else:
            plt.figure(figsize=(12, 6))
            plt.subplot(1, 2, 1)
            plt.scatter(np.asarray(t['LOGR']), np.asarray(t['LOGR_CHI']), c=c, s=s, **kwargs)
            plt.xlabel(r'$\log_{10} R_e$ (best model)', fontsize=14)
            plt.ylabel(r'$\log_{10} R_\chi$', fontsize=14)
            plt.subplot(1, 2, 2)
            plt.scatter(np.asarray(t['LOGR_VAR']), np.asarray(t['LOGR_CHI_VAR']), c=c, s=s,
                        **kwargs)
            plt.xlabel(r'$\log_{10} \Delta^2 R$', fontsize=14)
            plt.ylabel(r'$\log_{10} \Delta^2 R_\chi$', fontsize=14)
            plt.tight_layout()
        plt.show()

    def _object(self, i):
        row = self.row(i)
        ext, number = int(row['EXT_NUMBER']), int(row['NUMBER'])
        return row, ext, number, f"{ext:02d}_{number:04d}"

    def get_data(self, i):
        """(obj, seg, rms) of the object in row ``i``, from the tile's cut file."""
        if not self.cuts:
            raise FileNotFoundError(f"{self.name}: no cuts folder set (set_cuts)")
        _, _, _, name = self._object(i)
        return _dre_rs.read_cut(os.path.join(self.cuts, f"{self.name}_cuts.h5"), name)

    def _convolved(self):
        if self.model is None:
            raise ValueError("this Result has no model")
        if self.psf and os.path.isfile(self.psf):
            self.model.convolve(self.psf)
        elif self.model.psf is None:
            raise FileNotFoundError(f"{self.psf}: no PSF to convolve the models with")
        return self.model

    def make_mosaic(self, i, save=False, mosaics_dir='Mosaics', cmap='gray', figsize=(15, 5),
                    **kwargs):
        """The mosaic of row ``i`` (data | segment | best model | residual, as ``dre
        --mosaics`` writes it): shown, or with ``save`` written to
        ``mosaics_dir/NAME_EE_NNNN_mosaic.fits``."""
        row, _, _, name = self._object(i)
        data, segment, _ = self.get_data(i)
        mosaic = self._convolved().make_mosaic(data, segment, tuple(int(v) for v in
                                                                    row['MODEL_IDX']))
        if save:
            os.makedirs(mosaics_dir, exist_ok=True)
            path = os.path.join(mosaics_dir, f"{self.name}_{name}_mosaic.fits")
            _dre_rs.write_mosaic(path, mosaic)
            return path
        plt = _plt()
        _percentiles(mosaic, kwargs, 0.5, 99.5)
        plt.figure(figsize=figsize)
        plt.imshow(mosaic, cmap=cmap, origin='lower', **kwargs)
        plt.title(f"{self.name} {name}: data | segment | model | residual")
        plt.axis('off')
        plt.tight_layout()
        plt.show()

    def make_residuals(self, i, src_index_idx=-1, ax_ratio_idx=-1, save=False,
                       residuals_dir='Residuals', cmap='plasma', figsize=(20, 15), **kwargs):
        """The residual of row ``i`` against every (theta, log r) model at one n and q
        (default: the last), or with ``save`` the residual of every model written as a cube
        file ``residuals_dir/NAME_EE_NNNN_residual.fits``."""
        _, _, _, name = self._object(i)
        data, segment, _ = self.get_data(i)
        model = self._convolved()
        residual = model.make_residual(data, segment)
        if save:
            os.makedirs(residuals_dir, exist_ok=True)
            path = os.path.join(residuals_dir, f"{self.name}_{name}_residual.fits")
            model.save_models(path, residual)
            return path
        s = residual[src_index_idx, ax_ratio_idx]
        nt, nr, b, _ = s.shape
        image = s.transpose(0, 2, 1, 3).reshape(nt * b, nr * b)
        plt = _plt()
        # The residual of a poor model is mostly its peak: scale on the bulk.
        _percentiles(image, kwargs, 1, 99)
        plt.figure(figsize=figsize)
        q = model.ax_ratio[ax_ratio_idx]
        n = model.src_index[src_index_idx]
        plt.title(f"{self.name} {name}: residuals at b/a = {q:.2f}, n = {n:.1f} "
                  "(rows: angle, columns: radius)", fontsize=16)
        plt.imshow(image, cmap=cmap, origin='lower', **kwargs)
        plt.axis('off')
        plt.tight_layout()
        plt.show()


class Results:
    """Every tile's ``Result``: from the Summaries in ``output_dir``, or with ``recompute``
    (or without Summaries) recomputed from the chi files of ``chi_dir`` with ``model``."""

    def __init__(self, model=None, output_dir='Summary', chi_dir='Chi', images_dir='Tiles',
                 cuts_dir='Cuts', psf_dir='PSF', catalogs_dir='Sextracted', recompute=False):
        self.output_dir = output_dir
        self.results = []
        self.all_ = Result(model)
        self.all_.name = "all tiles"
        self.load_results(model, chi_dir, images_dir, cuts_dir, psf_dir, catalogs_dir,
                          recompute)

    def __getitem__(self, item):
        return self.results[item]

    def __len__(self):
        return len(self.results)

    def __iter__(self):
        return iter(self.results)

    def __repr__(self):
        return f"<Results: {len(self)} tiles, {sum(len(r) for r in self)} objects>"

    def save(self):
        for result in self.results:
            result.save()

    def load_results(self, model, chi_dir, images_dir, cuts_dir, psf_dir, catalogs_dir,
                     recompute):
        have_summaries = os.path.isdir(self.output_dir) and any(
            f.endswith('_dre.fits') for f in os.listdir(self.output_dir))
        if have_summaries and not recompute:
            files = sorted(f for f in os.listdir(self.output_dir) if f.endswith('_dre.fits'))
            for i, f in enumerate(files):
                result = Result(model, self.output_dir, result_id=i)
                result.load_summary(os.path.join(self.output_dir, f))
                self.results.append(result)
        elif model is not None:
            if not os.path.isdir(chi_dir):
                raise FileNotFoundError(f"{chi_dir}: no such folder of chi files")
            files = sorted(f for f in os.listdir(chi_dir) if f.endswith('_chi.h5'))
            for i, f in enumerate(files):
                name = f[:-len('_chi.h5')]
                result = Result(model, self.output_dir, result_id=i)
                cuts = os.path.join(cuts_dir, f"{name}_cuts.h5")
                result.load_chi(os.path.join(chi_dir, f), _catalog(catalogs_dir, name),
                                cuts if os.path.isfile(cuts) else None)
                self.results.append(result)
        else:
            raise FileNotFoundError(f"{self.output_dir}: no Summaries; give a model to "
                                    f"compute them from {chi_dir}")
        self.set_images(images_dir)
        self.set_cuts(cuts_dir)
        self.set_psf(psf_dir)

    def updated(self):
        return self.all

    @property
    def all(self):
        """Every tile's rows in one Result."""
        tables = [r.table for r in self.results if r]
        self.all_.table = vstack(tables) if tables else Table()
        return self.all_

    def set_images(self, images_dir):
        for r in self.results:
            r.image = os.path.join(images_dir, f"{r.name}.fits")

    def set_cuts(self, cuts_dir):
        for r in self.results:
            r.cuts = cuts_dir

    def set_psf(self, psf_dir):
        for r in self.results:
            r.psf = psf_dir if os.path.isfile(psf_dir) else os.path.join(psf_dir,
                                                                         f"{r.name}.psf")

    def set_catalogs(self, catalogs_dir):
        """Joins each tile's table with its catalogue."""
        for r in self.results:
            cat = _catalog(catalogs_dir, r.name)
            if cat:
                r.join_catalog(cat_to_table(cat))

    def hist(self, key=None, **kwargs):
        return self.all.hist(key, **kwargs)

    def plot(self, x_key=None, y_key=None, s=5, **kwargs):
        return self.all.plot(x_key, y_key, s=s, **kwargs)

    def show(self):
        return self.all.show()


def _catalog(catalogs_dir, name):
    """The tile's catalogue where ``dre`` looks for it, or None."""
    for p in (os.path.join(catalogs_dir, name, f"{name}_cat.fits"),
              os.path.join(catalogs_dir, f"{name}_cat.fits")):
        if os.path.isfile(p):
            return p
    return None
