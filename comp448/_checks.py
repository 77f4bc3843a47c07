"""Input checks shared by the whole package.

Every public function validates its arguments with these helpers, so that bad input
raises ``TypeError`` (wrong type/dtype) or ``ValueError`` (wrong shape, range, NaN,
unknown option) with a message that names the argument and says what was expected.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch


def check_choice(name: str, value, choices) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(map(str, choices))}, got {value!r}")


def check_tensor(name: str, x, *, floating: bool = False, min_ndim: int | None = None,
                 ndim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Check that ``x`` is a torch.Tensor (optionally floating, with a given rank)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                             f"got shape {tuple(x.shape)}")
    return x


def check_same_shape(name_a: str, a, name_b: str, b) -> None:
    """Raise ValueError unless ``a`` and ``b`` have the same shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_b} must have the same shape as {name_a}: "
                         f"{tuple(b.shape)} != {tuple(a.shape)}")


def check_range(name: str, x, lo: float, hi: float) -> None:
    """Raise ValueError if ``x`` (tensor or array) has NaN or values outside [lo, hi]."""
    t = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x
    if t.numel() == 0:
        return
    if t.is_floating_point() and bool(torch.isnan(t).any()):
        raise ValueError(f"{name} contains NaN")
    mn, mx = float(t.min()), float(t.max())
    if mn < lo or mx > hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got values in [{mn:g}, {mx:g}]")


def check_number(name: str, value, *, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, integer: bool = False) -> None:
    """Check a scalar hyper-parameter (e.g. gamma >= 0, 0 < sigma)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if integer and int(value) != value:
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value != value:  # NaN
        raise ValueError(f"{name} must not be NaN")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")


def check_labels(name: str, labels, *, ndim: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Check an instance label image: integer NumPy array (0 = background, 1..K objects).

    Bool arrays are accepted as a single-object mask. Returns the array (not copied).
    """
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array of integer labels, got {type(labels).__name__}")
    if labels.ndim not in ndim:
        raise ValueError(f"{name} must be {' or '.join(f'{d}D' for d in ndim)}, got shape {labels.shape}")
    if labels.dtype == bool:
        return labels.astype(np.int32)
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating):
            if np.isnan(labels).any():
                raise ValueError(f"{name} contains NaN")
            if np.any(labels != np.round(labels)):
                raise ValueError(f"{name} must hold integer labels, got non-integer values")
        raise TypeError(f"{name} must have an integer dtype, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} must be non-negative (0 = background), got minimum {labels.min()}")
    return labels
