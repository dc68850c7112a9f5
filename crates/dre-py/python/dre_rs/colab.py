"""The original's ``DRE.colab``: ``from dre_rs import colab as dre`` runs a notebook written
for ``from DRE import colab as dre`` unchanged (``ModelGPU`` needs a GPU build; ``ModelCPU``
runs anywhere)."""
from . import misc
from .models import ModelCPU, ModelGPU, ModelsCube
from .results import Result, Results, cat_to_table, get_psf

__all__ = ["ModelCPU", "ModelGPU", "ModelsCube", "Result", "Results", "cat_to_table",
           "get_psf", "misc"]
