"""Finite-difference schemes: stencils, how to combine them, and the step sizes they need.

References:
    Press et al., Numerical Recipes, 3rd ed., sec. 5.7 (optimal step eps_mach^(1/(p+1))
    for a scheme of order p, scaled by max(1, |x|)); Fornberg (1988) for the central
    fourth-order weights (1, -8, 8, -1) / 12; Squire & Trapp (1998) for the complex step;
    SciPy ``optimize._numdiff`` for using the step actually realized in floating point,
    ``(x + h) - x``, rather than the one requested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Method = Literal["central", "forward", "backward", "central4", "complex"]
METHODS: tuple[Method, ...] = ("central", "forward", "backward", "central4", "complex")

TEXTBOOK_EPS = 1e-7
"""The textbook step for float64 parameters (deeplearning.ai, CS231n use 1e-7 / 1e-5)."""

Combine = Callable[[NDArray[Any], float | complex, NDArray[np.float64]], NDArray[np.float64]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scheme:
    """One finite-difference formula for a partial derivative.

    The cost is evaluated at ``x + c * h`` for each ``c`` in `offsets`; `combine`
    turns those values (one row per coordinate, one column per offset), the base
    value f(x) and the steps h into derivatives.
    """

    name: Method
    offsets: tuple[float, ...]
    order: int
    """Order of the truncation error: O(h**order)."""
    complex_step: bool
    combine: Combine

    @property
    def evaluations_per_coordinate(self) -> int:
        """Cost evaluations one coordinate needs (the base value is shared)."""
        return len(self.offsets)

    def auto_factor(self, resolution: float) -> float:
        """Relative step that balances truncation and round-off for this scheme.

        Args:
            resolution: machine epsilon of the precision the cost is computed in.
        """
        if self.complex_step:
            # No subtractive cancellation: any small step works; sqrt(eps) as SciPy's "cs".
            return float(np.sqrt(resolution))
        return float(resolution ** (1.0 / (self.order + 1)))

    def default_step(self, resolution: float) -> float:
        """The step used when eps is None: textbook 1e-7 in float64, else the auto rule."""
        float64 = resolution <= np.finfo(np.float64).eps
        if self.complex_step:
            return 1e-20 if float64 else 1e-8
        return TEXTBOOK_EPS if float64 else self.auto_factor(resolution)


def _central(values: NDArray[Any], base: float | complex, h: NDArray[np.float64]) -> Any:
    # Written exactly as the textbook does, so gradient_checking matches it bit for bit.
    return (values[:, 0] - values[:, 1]) / (2 * h)


def _forward(values: NDArray[Any], base: float | complex, h: NDArray[np.float64]) -> Any:
    return (values[:, 0] - base) / h


def _backward(values: NDArray[Any], base: float | complex, h: NDArray[np.float64]) -> Any:
    return (base - values[:, 0]) / h


def _central4(values: NDArray[Any], base: float | complex, h: NDArray[np.float64]) -> Any:
    plus2, plus1, minus1, minus2 = values.T
    return (-plus2 + 8 * plus1 - 8 * minus1 + minus2) / (12 * h)


def _complex(values: NDArray[Any], base: float | complex, h: NDArray[np.float64]) -> Any:
    return np.imag(values[:, 0]) / h


SCHEMES: dict[str, Scheme] = {
    "central": Scheme(name="central", offsets=(1.0, -1.0), order=2, complex_step=False,
                      combine=_central),
    "forward": Scheme(name="forward", offsets=(1.0,), order=1, complex_step=False,
                      combine=_forward),
    "backward": Scheme(name="backward", offsets=(-1.0,), order=1, complex_step=False,
                       combine=_backward),
    "central4": Scheme(name="central4", offsets=(2.0, 1.0, -1.0, -2.0), order=4,
                       complex_step=False, combine=_central4),
    "complex": Scheme(name="complex", offsets=(1.0,), order=2, complex_step=True,
                      combine=_complex),
}  # fmt: skip


def resolution_of(*dtypes: np.dtype[Any]) -> float:
    """Machine epsilon of the coarsest of the given float dtypes (the one that limits accuracy)."""
    return max(float(np.finfo(dt).eps) for dt in dtypes)


def precision_of(leaf_dtype: np.dtype[Any], cost_dtype: np.dtype[Any] | None) -> float:
    """The machine epsilon that limits a finite difference on one parameter array.

    The round-off that matters is the cost's: a float64 cost of float32 parameters is
    as exact as any float64 cost (the step actually taken in float32 is accounted for
    separately). When the cost's precision is unknown (it returned a Python float),
    assume it is computed in the parameter's precision.
    """
    if cost_dtype is None:
        return resolution_of(leaf_dtype)
    return resolution_of(cost_dtype)


def requested_steps(
    scheme: Scheme,
    x: NDArray[Any],
    eps: float | Literal["auto"] | None,
    resolution: float,
) -> NDArray[np.float64]:
    """Steps to request for the coordinates ``x`` (values of one parameter array).

    eps None gives the textbook 1e-7 for float64 and the auto rule for lower
    precisions; "auto" gives ``factor * max(1, |x|)`` per element; a float is
    used as is.
    """
    if eps is None:
        step = scheme.default_step(resolution)
        if scheme.complex_step or step == TEXTBOOK_EPS:
            return np.full(x.shape, step)
        eps = "auto"
    if eps == "auto":
        return scheme.auto_factor(resolution) * np.maximum(1.0, np.abs(x.astype(np.float64)))
    return np.full(x.shape, float(eps))


def realized_steps(x: NDArray[Any], h: NDArray[np.float64]) -> tuple[NDArray[np.float64], int]:
    """The steps that floating point actually takes from ``x``: ``(x + h) - x`` in x's dtype.

    Writing ``x + h`` into a float32 array rounds it, so the step taken differs
    from the one requested (1e-7 vanishes entirely next to 1.0). Dividing by the
    realized step removes that error. A step that rounds to zero is raised to
    one unit in the last place of x.

    Returns:
        The realized steps as float64, and how many had to be raised to one ulp.
    """
    dtype = x.dtype
    h_cast = h.astype(dtype)
    taken = (x + h_cast) - x
    too_small = taken == 0
    if too_small.any():
        taken = np.where(too_small, np.spacing(np.abs(x)).astype(dtype), taken)
    return taken.astype(np.float64), int(too_small.sum())


def describe_step(scheme: Scheme, eps: float | Literal["auto"] | None, resolution: float) -> str:
    """Say in words which step a check uses at a given precision (for the report)."""
    if isinstance(eps, float | int) and not isinstance(eps, bool):
        return f"{float(eps):.3g}"
    if eps is None:
        step = scheme.default_step(resolution)
        if scheme.complex_step or step == TEXTBOOK_EPS:
            return f"{step:.3g}"
    return f"{scheme.auto_factor(resolution):.2g}*max(1,|x|)"
