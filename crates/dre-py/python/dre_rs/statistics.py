"""The original's ``DRE.core.statistics``, computed by the Rust library: the numerical
gradient and Hessian of a chi cube at its minimum, and ``params_std``, the uncertainty of
each parameter in grid units (``steps``). ``chi_cube`` is float32 (a chi cube as ``dre_fit``
gives it), ``idx_min`` one index per axis, ``steps`` one step per axis."""
from ._dre_rs import cube_gradient, cube_hessian, gradient_norm, params_std

__all__ = ["cube_gradient", "cube_hessian", "gradient_norm", "params_std"]
