"""The one step primitive: the perturbed values a check writes, and the steps they realize.

Every perturbed value any mode writes into a parameter array (full, sample, directional,
bisect, a ladder of follow-up steps, a batched or parallel evaluation) is computed by
`realize`: ``x + h`` rounded once to the array's dtype, together with the displacement
that value actually takes from x, computed exactly. A requested step that rounds away
(``x + h == x``) realizes to 0: that coordinate then has no usable step, which yields no
evidence — it is never excluded silently and never read as a difference of 0.

The step a check *requests* is chosen here too (`initial_steps`): it follows the
parameters' precision (at least a few units in the last place, so it cannot vanish), their
magnitude (at most a fraction of the parameter's scale: a step bigger than the value is
not a derivative) and the noise of the cost measured by evaluation (`_noise`), not the
dtype the cost happens to return.

References:
    SciPy ``optimize._numdiff`` for dividing by the step actually realized,
    ``(x + h) - x``; Press et al., Numerical Recipes, 3rd ed., sec. 5.7 for the step that
    balances truncation against round-off, ``(noise)^(1/(p+1))`` times the scale of x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

TEXTBOOK_EPS = 1e-7
"""The textbook step for float64 parameters (deeplearning.ai, CS231n use 1e-7 / 1e-5)."""
MIN_ULPS = 4.0
"""A step chosen by gradcheck moves a coordinate by at least this many units in the last place."""
MAX_RELATIVE = 0.1
"""A step chosen by gradcheck is at most this fraction of the coordinate's scale."""
TEXTBOOK_RELATIVE = 1e-3
"""The textbook step is lowered to this fraction of the scale for tiny parameters."""
FLOAT64_EPS = float(np.finfo(np.float64).eps)

Eps = float | Literal["auto"] | None


@dataclass(frozen=True, slots=True)
class Realized:
    """The values written for ``x + h`` and ``x - h``, and the displacements they realize."""

    high: NDArray[Any]
    """``x + h`` in x's dtype: the value written for the upward step."""
    low: NDArray[Any]
    """``x - h`` in x's dtype."""
    up: NDArray[np.float64]
    """``high - x``, exact: the step actually taken upwards (0 where it vanished)."""
    down: NDArray[np.float64]
    """``x - low``, exact: the step actually taken downwards."""

    @property
    def usable(self) -> NDArray[np.bool_]:
        """Both steps moved the coordinate: the point yields evidence."""
        return (self.up > 0) & (self.down > 0)


def realize(x: NDArray[Any], h: NDArray[np.float64] | float) -> Realized:
    """Round ``x + h`` and ``x - h`` to x's dtype and measure the steps they take.

    Args:
        x: coordinate values, in the parameter's own dtype (any shape).
        h: positive steps, broadcastable to x.
    """
    x = np.asarray(x)
    dtype = x.dtype
    wide = _wide(dtype)
    exact = x.astype(wide)
    step = np.asarray(h, dtype=wide)
    high = (exact + step).astype(dtype)
    low = (exact - step).astype(dtype)
    up = (high.astype(wide) - exact).astype(np.float64)
    down = (exact - low.astype(wide)).astype(np.float64)
    return Realized(high=high, low=low, up=up, down=down)


def shift(
    x: NDArray[Any], displacement: NDArray[np.float64]
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """Round ``x + displacement`` (any signs) to x's dtype.

    Returns the values and the displacement they realize from x, exact.
    """
    x = np.asarray(x)
    wide = _wide(x.dtype)
    exact = x.astype(wide)
    moved = (exact + np.asarray(displacement, dtype=wide)).astype(x.dtype)
    return moved, (moved.astype(wide) - exact).astype(np.float64)


def distinct(up: NDArray[np.float64], down: NDArray[np.float64]) -> NDArray[np.bool_]:
    """[k, S] which steps of an ascending ladder realize to a usable, new displacement.

    Steps that round to the same values as the next smaller one add nothing (a ladder of
    "different" steps that all collapsed to one ulp would otherwise look steady); steps
    that vanished add nothing either.
    """
    usable = (up > 0) & (down > 0)
    new = np.ones_like(usable)
    new[:, 1:] = (up[:, 1:] != up[:, :-1]) | (down[:, 1:] != down[:, :-1])
    # Realized steps grow with the requested ones, so a repeat can only repeat its neighbour.
    return usable & new


def ulp(x: NDArray[Any]) -> NDArray[np.float64]:
    """The spacing of x's dtype at each value, as float64."""
    spacing: NDArray[np.float64] = np.spacing(np.abs(np.asarray(x))).astype(np.float64)
    return spacing


def scale_of(values: NDArray[Any]) -> NDArray[np.float64]:
    """Per-element scale of one parameter array: ``max(|x|, rms(array))``, 1 for an all-zero array.

    The RMS stands for the magnitude of the array's typical element, so a bias that
    happens to be 0 is perturbed like its neighbours; an array of zeros (a fresh bias
    vector) has no magnitude of its own and gets the textbook's unit scale. So does an array
    whose values are all negligible (`_negligible`): zeros that did not quite round to 0
    (1e-200 says nothing about how fast the cost varies, and a step of 1e-203 would vanish
    in the cost).
    """
    values = np.asarray(values)
    magnitude = np.abs(values.astype(np.float64))
    negligible = _negligible(values.dtype)
    magnitude = np.where(magnitude < negligible, 0.0, magnitude)
    largest = float(magnitude.max()) if magnitude.size else 0.0
    if not largest > 0 or not math.isfinite(largest):
        return np.ones(magnitude.shape)
    rms = largest * float(np.sqrt(np.mean((magnitude / largest) ** 2)))  # no under/overflow
    return np.maximum(magnitude, rms)


def _negligible(dtype: np.dtype[Any]) -> float:
    """Magnitudes that carry no scale: subnormals, and anything below eps**4 of the dtype.

    eps**4 is 2e-63 in float64 and 2e-28 in float32: far below any value a model holds on
    purpose (a float32 weight of 1e-7 is an ordinary small weight and keeps its scale).
    """
    if dtype.kind not in "fc":
        return 0.0
    info = np.finfo(dtype)
    return max(float(info.tiny), float(info.eps) ** 4)


def auto_factor(noise: float, order: int) -> float:
    """Relative step that balances truncation (order p) against a relative noise level.

    Args:
        noise: the cost's noise relative to its variation over one scale length of x
            (``sigma / (|gradient| * scale)``); at least float64's epsilon.
        order: the scheme's order p.
    """
    if not math.isfinite(noise):
        noise = 1.0  # no noise level known: the largest step the rule allows
    return float(min(max(noise, FLOAT64_EPS), 1.0) ** (1.0 / (order + 1)))


def initial_steps(
    x: NDArray[Any],
    eps: Eps,
    *,
    order: int,
    scale: NDArray[np.float64],
    noise: float,
) -> tuple[NDArray[np.float64], int]:
    """The steps to request for the coordinates ``x`` (values of one parameter array).

    A float ``eps`` is the user's and is used as is, even where it vanishes (that is then
    reported, and the coordinate is inconclusive). ``None`` gives the textbook 1e-7 for
    float64 parameters (at most a thousandth of a tiny parameter's scale) and, for lower
    precisions, the "auto" rule: ``auto_factor(noise) * scale``, where the cost's noise is
    measured rather than assumed from a dtype. Steps gradcheck chooses move each coordinate
    by at least `MIN_ULPS` units in the last place and at most `MAX_RELATIVE` of its scale.

    Args:
        x: the coordinates, in the parameter's dtype.
        eps: the user's option.
        order: the scheme's order (for the "auto" rule).
        scale: per-coordinate scale (`scale_of`).
        noise: the cost's relative noise (see `auto_factor`).

    Returns:
        The steps (float64), and how many were raised to `MIN_ULPS` units in the last place.
    """
    if isinstance(eps, float | int) and not isinstance(eps, bool):
        return np.full(np.shape(x), float(eps)), 0
    if eps is None and _is_double(np.asarray(x).dtype):
        h = np.minimum(TEXTBOOK_EPS, TEXTBOOK_RELATIVE * scale)
    else:
        h = auto_factor(noise, order) * scale
    h = np.minimum(h, MAX_RELATIVE * scale)
    floor = MIN_ULPS * ulp(x)
    raised = h < floor
    return np.where(raised, floor, h), int(np.count_nonzero(raised))


def describe(eps: Eps, order: int, dtype: np.dtype[Any], noise: float) -> str:
    """Say in words which step a check requests for one dtype (for the report)."""
    if isinstance(eps, float | int) and not isinstance(eps, bool):
        return f"{float(eps):.3g}"
    if eps is None and _is_double(dtype):
        return f"{TEXTBOOK_EPS:.3g}"
    return f"{auto_factor(noise, order):.2g}*scale"


def _is_double(dtype: np.dtype[Any]) -> bool:
    return bool(np.finfo(dtype).eps <= FLOAT64_EPS)


def _wide(dtype: np.dtype[Any]) -> Any:
    """A float type in which the difference of two values of ``dtype`` is exact (or nearly)."""
    if np.finfo(dtype).eps < FLOAT64_EPS or (
        _is_double(dtype) and np.finfo(np.longdouble).eps < FLOAT64_EPS
    ):
        return np.longdouble
    return np.float64
