"""The original's ``DRE.misc`` helpers the notebooks use."""
from .results import cat_to_table, get_psf

__all__ = ["cat_to_table", "get_psf"]
