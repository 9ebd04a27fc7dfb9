"""What the detectors see of one parameter (`ParamData`), and what to say when none fits.

`ParamData` holds the checked elements' analytic and numeric values with their error
bars; `describe_elements` is the finding when no pattern explains the mismatch: how many
elements disagree, where (rows, columns), and their values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._compare import CONFIDENCE
from .._results import Finding, FindingKind
from .._tree import spell
from ._factors import FACTOR_TOLERANCE

_LISTED = 4


def _amplification(
    fitted: NDArray[np.float64], numeric: NDArray[np.float64]
) -> NDArray[np.float64]:
    """How much a fitted value moves per unit of numeric error (|c| for c * numeric)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(fitted / numeric)
    return np.where(np.isfinite(ratio), np.maximum(ratio, 1.0), 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamData:
    """What the detectors see of one parameter: values at its checked elements."""

    name: str
    shape: tuple[int, ...]
    local: NDArray[np.intp]
    """[k] flat indices of the checked elements inside the parameter."""
    analytic: NDArray[np.float64]
    numeric: NDArray[np.float64]
    theta: NDArray[np.float64]
    """The parameter's values at those elements."""
    scale: float
    """Typical gradient magnitude, for judging which elements are off."""
    tolerance: float
    """Per-element relative error above which an element counts as off."""
    error: NDArray[np.float64] | None = None
    """[k] error bar of each numeric value (None: treat them as exact)."""

    def bars(self) -> NDArray[np.float64]:
        """The numeric values' error bars (zeros where unknown)."""
        return np.zeros(len(self.local)) if self.error is None else self.error

    def fits(self, fitted: NDArray[np.float64]) -> bool:
        """Whether a fitted pattern agrees with the analytic value at every element.

        Each element must match within its error bar (scaled by how much the pattern
        amplifies the numeric side) plus a small relative tolerance: a pattern that
        explains most of the squared mismatch but leaves one element far off is not the
        pattern of that gradient.
        """
        slack = CONFIDENCE * self.bars() * _amplification(fitted, self.numeric)
        slack = slack + FACTOR_TOLERANCE * (np.abs(self.analytic) + np.abs(fitted))
        return bool(np.all(np.abs(self.analytic - fitted) <= slack))

    @property
    def complete(self) -> bool:
        """Whether every element was checked (needed for the transpose test)."""
        return len(self.local) == math.prod(self.shape)

    def index(self, k: int) -> tuple[int, ...]:
        """Index into the parameter's shape of checked element k."""
        return tuple(int(i) for i in np.unravel_index(int(self.local[k]), self.shape))

    def off(self) -> NDArray[np.bool_]:
        """Elements whose error is large against their magnitude plus the typical magnitude."""
        error = np.abs(self.analytic - self.numeric)
        return error > self.tolerance * (np.abs(self.analytic) + np.abs(self.numeric) + self.scale)


def describe_elements(data: ParamData, among: int | None = None) -> Finding:
    """Say how many elements disagree, where (rows, columns), and their values.

    Args:
        data: the checked elements.
        among: the tensor's size when the elements were found by bisection.
    """
    off = data.off()
    if not off.any():  # the mismatch is spread thin: describe the worst elements
        order = np.argsort(-np.abs(data.analytic - data.numeric))[:_LISTED]
        off = np.zeros_like(off)
        off[order] = True
    positions = np.flatnonzero(off)
    count, checked = len(positions), len(data.local)
    worst = positions[np.argsort(-np.abs(data.analytic - data.numeric)[positions])]
    listed = "; ".join(
        f"{spell(data.name, data.index(int(k)))} analytic {data.analytic[k]:.4g}, "
        f"numeric {data.numeric[k]:.4g}"
        for k in worst[:_LISTED]
    )
    where = _where(data, positions)
    pattern = _common_ratio(data, positions)
    how_many = (
        f"{count} of {checked} checked elements of {data.name} disagree"
        if among is None
        else f"{count} of the {among:,} elements of {data.name} disagree (found by bisection)"
    )
    more = f" and {count - _LISTED:,} more" if count > _LISTED else ""
    message = f"{how_many}{where}{pattern}: {listed}{more}."
    detail: dict[str, Any] = {
        "count": count,
        "checked": checked,
        "indices": [list(data.index(int(k))) for k in worst[:50]],
        "analytic": [float(data.analytic[k]) for k in worst[:50]],
        "numeric": [float(data.numeric[k]) for k in worst[:50]],
    }
    return Finding(kind=FindingKind.LOCALIZED, param=data.name, message=message, detail=detail)


def _where(data: ParamData, positions: NDArray[np.intp]) -> str:
    """Rows or columns of a matrix where all the wrong elements lie, in words."""
    if len(data.shape) != 2 or len(positions) < 2:
        return ""
    rows, cols = np.unravel_index(data.local[positions], data.shape)
    unique_rows, unique_cols = np.unique(rows), np.unique(cols)
    if len(unique_rows) == 1:
        return f", all in row {unique_rows[0]}"
    if len(unique_cols) == 1:
        return f", all in column {unique_cols[0]}"
    if len(unique_rows) <= 3 and len(unique_rows) < len(unique_cols):
        return f", in rows {', '.join(map(str, unique_rows))}"
    if len(unique_cols) <= 3:
        return f", in columns {', '.join(map(str, unique_cols))}"
    return ""


def _common_ratio(data: ParamData, positions: NDArray[np.intp]) -> str:
    """If the wrong elements share one factor analytic/numeric, say so."""
    if len(positions) < 2:
        return ""
    n, a = data.numeric[positions], data.analytic[positions]
    if np.any(n == 0):
        return ""
    ratios = a / n
    common = float(np.median(ratios))
    if abs(common - 1) < 10 * FACTOR_TOLERANCE:
        return ""  # "1 times the numeric value" explains nothing
    if np.ptp(ratios) <= FACTOR_TOLERANCE * max(1.0, float(np.abs(ratios).max())):
        return f" (each is {common:.4g} times the numeric value)"
    return ""
