"""The original's model classes: ``ModelCPU``, ``ModelGPU`` and ``ModelNB`` are
``ModelsCube`` on a device, with the original's constructor arguments, plus
``visualize_model``."""
import numpy as np

from ._dre_rs import ModelsCube


def _stretch(image, vmin, vmax):
    # Models are normalised to sum 1 (the original's cube was not): by default show up to
    # the 99.5th percentile, so that the large, faint models are visible beside the small.
    if vmin is None:
        vmin = 0.0
    if vmax is None:
        finite = image[np.isfinite(image)]
        vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    return vmin, vmax


def model_slice(cube, src_index_idx=-1, ax_ratio_idx=-1, psf=None):
    """All (theta, log r) stamps of one (n, q) slice as one image: a row of stamps per
    angle, a column per radius (the cube file's layout). ``psf``: convolve with it first
    (a path or a 2-D float32 array) and show the convolved models."""
    if psf is not None:
        cube.convolve(psf)
        models = cube.convolved_models
    else:
        models = cube.models
    s = models[src_index_idx, ax_ratio_idx]  # (theta, logr, y, x)
    nt, nr, b, _ = s.shape
    return s.transpose(0, 2, 1, 3).reshape(nt * b, nr * b)


def visualize_model(cube, src_index_idx=-1, ax_ratio_idx=-1, psf=None, figsize=(20, 15),
                    vmin=None, vmax=None, cmap='gray'):
    """Shows one (n, q) slice of the cube: rows are angles, columns radii."""
    import matplotlib.pyplot as plt

    image = model_slice(cube, src_index_idx, ax_ratio_idx, psf)
    vmin, vmax = _stretch(image, vmin, vmax)
    fig, ax = plt.subplots(figsize=figsize)
    n = cube.src_index[src_index_idx]
    q = cube.ax_ratio[ax_ratio_idx]
    title = f'b/a = {q:.2f}, n = {n:.1f}' + (', convolved with the PSF' if psf is not None
                                              else '')
    ax.set_title(title, fontsize=18)
    ax.imshow(image, vmin=vmin, vmax=vmax, cmap=cmap, origin='lower')
    b = cube.boxsize
    ax.set_xticks(np.arange(len(cube.log_r)) * b + b / 2,
                  [f'{v:.2f}' for v in cube.log_r], rotation=90)
    ax.set_yticks(np.arange(len(cube.angle)) * b + b / 2, [f'{v:g}' for v in cube.angle])
    ax.set_xlabel(r'$\log_{10} R_e$ (pixels)')
    ax.set_ylabel(r'$\theta$ (degrees)')
    fig.tight_layout()
    plt.show()


class _Notebook:
    """The methods the original's Colab/notebook classes add to ModelsCube."""

    def visualize_model(self, src_index_idx=-1, ax_ratio_idx=-1, psf=None, figsize=(20, 15),
                        vmin=None, vmax=None, cmap='gray'):
        """Shows the (theta, log r) stamps of Sérsic index ``src_index_idx`` and axis ratio
        ``ax_ratio_idx``, convolved with ``psf`` when given."""
        visualize_model(self, src_index_idx, ax_ratio_idx, psf, figsize, vmin, vmax, cmap)

    def to_cpu(self, array):
        """The original's cupy -> numpy: our arrays are always numpy."""
        return np.asarray(array)


class ModelCPU(_Notebook, ModelsCube):
    """``ModelsCube`` on the CPU with the original's arguments. ``save_mosaics``:
    ``fit_dir`` writes the mosaics (into ``Mosaics/``) unless told otherwise."""

    def __new__(cls, models_file=None, out_compression='none', save_mosaics=False,
                threads=None):
        self = super().__new__(cls, models_file, device='cpu', compression=out_compression,
                               threads=threads)
        self.save_mosaics = save_mosaics
        return self

    def fit_dir(self, input_dir='Cuts', chi_dir='Chi', psf_dir='PSF', convolve=True,
                output_dir='Summary', cats_dir='Sextracted', mosaics_dir=None, chunk=None,
                progress=None, resume=False, png=False):
        if mosaics_dir is None and self.save_mosaics:
            mosaics_dir = 'Mosaics'
        return super().fit_dir(input_dir, chi_dir, psf_dir, convolve, output_dir, cats_dir,
                               mosaics_dir, chunk, progress, resume, png)

    fit_dir.__doc__ = ModelsCube.fit_dir.__doc__


class ModelGPU(_Notebook, ModelsCube):
    """``ModelsCube`` on CUDA device ``device`` (default 0). Without a GPU, or in a
    ``dre_rs`` built without the ``cuda`` feature, it raises RuntimeError saying which."""

    def __new__(cls, models_file=None, out_compression='none', device=0):
        return super().__new__(cls, models_file, device=f'cuda:{device}',
                               compression=out_compression)

    def to_gpu(self):
        """The original's host -> device copy: the models are on the device already."""


class ModelNB(ModelCPU):
    """The original's notebook model (``DRE.notebook``): the CPU model with
    ``visualize_model``."""

    def __new__(cls, models_file=None, out_compression='none', threads=None):
        return super().__new__(cls, models_file, out_compression, False, threads)
