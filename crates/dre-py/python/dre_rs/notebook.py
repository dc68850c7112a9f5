"""The original's ``DRE.notebook``: ``from dre_rs import notebook as dre``."""
from . import misc
from .models import ModelCPU, ModelGPU, ModelNB, ModelsCube
from .results import Result, Results, cat_to_table, get_psf

__all__ = ["ModelCPU", "ModelGPU", "ModelNB", "ModelsCube", "Result", "Results",
           "cat_to_table", "get_psf", "misc"]
