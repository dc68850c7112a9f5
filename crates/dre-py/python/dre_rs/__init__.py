"""DRE (Discrete Radius Ellipticals) in Rust, from Python.

The original DRE's Python API over the Rust library: ``ModelsCube`` (and ``ModelCPU``,
``ModelGPU``, ``ModelNB``) convolve and fit in Rust with the GIL released; the notebook layer
(``dre_rs.colab``, ``dre_rs.notebook``: ``Results``, ``Result``, plots) is pure Python on
matplotlib and astropy::

    from dre_rs import colab as dre
    model = dre.ModelCPU('modelbulge.fits')
    model.fit_dir('Cuts', 'Chi', 'PSF')
    results = dre.Results(model, recompute=True)
"""
from ._dre_rs import (
    CUDA_BUILT,
    DreWarning,
    FitReport,
    ModelsCube,
    __version__,
    cut_names,
    default_cube_path,
    read_chi,
    read_cut,
    read_psf,
    write_mosaic,
)
from . import statistics
from .models import ModelCPU, ModelGPU, ModelNB, visualize_model

# The original's name for read_psf.
get_psf = read_psf

__all__ = [
    "CUDA_BUILT",
    "DreWarning",
    "FitReport",
    "ModelCPU",
    "ModelGPU",
    "ModelNB",
    "ModelsCube",
    "__version__",
    "cut_names",
    "default_cube_path",
    "get_psf",
    "read_chi",
    "read_cut",
    "read_psf",
    "statistics",
    "visualize_model",
    "write_mosaic",
]
