"""Detectors for the mistakes people make in backpropagation, as pure functions over arrays.

Each detector fits one pattern — analytic = c * numeric (scale, sign),
analytic = numeric + mu * theta (a missing or extra L2 term), analytic = 0,
analytic = numeric with axes swapped — and only claims it when the fit explains
the mismatch: the residual left after the fit must be a small fraction of
``||analytic - numeric||``. Anything else gets a localized description: how many
elements disagree, where, and their values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._compare import CONFIDENCE
from .._norms import stable_norm
from .._results import Finding, FindingKind
from .._tree import spell

EXPLAINED = 0.1
"""A pattern explains a mismatch when the residual after fitting it is below this fraction
of ``||analytic - numeric||`` (so it accounts for at least 99% of the squared mismatch)."""

_FACTOR_TOLERANCE = 2e-3
_MIN_ELEMENTS = 2
"""A one-number fit needs at least this many elements behind it."""
_NEGLIGIBLE = 1e-3
"""A fitted extra term smaller than this fraction of the mismatch is not worth naming."""
_MIN_ELEMENTS_TWO = 8
"""A two-number fit needs this many, or it fits a few elements by chance."""
_LISTED = 4
_COLLINEAR = 1 - 1e-9
"""|cos| between the numeric gradient and theta above which they are proportional."""


def _amplification(
    fitted: NDArray[np.float64], numeric: NDArray[np.float64]
) -> NDArray[np.float64]:
    """How much a fitted value moves per unit of numeric error (|c| for c * numeric)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(fitted / numeric)
    return np.where(np.isfinite(ratio), np.maximum(ratio, 1.0), 1.0)


def _collinear(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    """Whether two vectors are proportional (a least-squares fit on both is degenerate)."""
    norms = float(stable_norm(a) * stable_norm(b))
    return norms == 0 or abs(float(a @ b)) / norms > _COLLINEAR


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
        slack = slack + _FACTOR_TOLERANCE * (np.abs(self.analytic) + np.abs(fitted))
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


@dataclass(frozen=True, slots=True)
class _Fit:
    """A pattern fitted to the mismatch: the finding it would make, and what it leaves over."""

    finding: Finding
    residual: float
    """``||analytic - fitted||``: the part of the mismatch the pattern does not explain."""
    parameters: int
    """Numbers fitted (a factor, an L2 strength): fewer is simpler."""


def explain(data: ParamData, hints: Mapping[str, int]) -> Finding:
    """Return the finding that best explains why this parameter's gradient is wrong.

    Every pattern is fitted; a pattern counts only if it explains the mismatch (the
    residual is a small fraction of it) and agrees at every element within its error bar
    (`ParamData.fits`). Among those, the simplest wins unless a richer one leaves less than
    a tenth of its residual (a missing 1/m next to a correct L2 term looks like a plain
    factor 5.7 until both terms are fitted).
    """
    mismatch = _mismatch(data)
    if mismatch == 0:
        return describe_elements(data)
    zero = _zero(data)
    if zero is not None:
        return zero
    fits = [
        fit
        for detector in (_scale_or_sign, _l2_term, _scaled_data_term, _transpose)
        if (fit := detector(data, hints)) is not None and fit.residual <= EXPLAINED * mismatch
    ]
    if not fits:
        return describe_elements(data)
    best = min(fit.residual for fit in fits)
    good_enough = [fit for fit in fits if fit.residual <= 10 * best + 1e-9 * mismatch]
    return min(good_enough, key=lambda fit: (fit.parameters, fit.residual)).finding


def _mismatch(data: ParamData) -> float:
    gap = data.analytic - data.numeric
    size = float(np.max(np.abs(gap), initial=0.0))
    return size * float(stable_norm(gap / size)) if size > 0 else 0.0  # no underflow


def _zero(data: ParamData) -> Finding | None:
    numeric_norm = float(stable_norm(data.numeric))
    bars = float(stable_norm(data.bars()))
    if numeric_norm <= CONFIDENCE * bars or stable_norm(data.analytic) > 1e-12 * numeric_norm:
        return None
    return Finding(
        kind=FindingKind.ZERO,
        param=data.name,
        message=(
            f"The analytic gradient of {data.name} is zero but the numeric one is not "
            f"(norm {numeric_norm:.3g}): the gradient is never computed, overwritten, "
            "or detached from the computation."
        ),
        detail={"numeric_norm": numeric_norm},
    )


def _scale_or_sign(data: ParamData, hints: Mapping[str, int]) -> _Fit | None:
    """Fit analytic = c * numeric; a single element only for a factor with a name."""
    size = float(np.max(np.abs(data.numeric), initial=0.0))
    if not size > 0:
        return None
    a, n = data.analytic / size, data.numeric / size  # no underflow for tiny gradients
    factor = float(a @ n) / float(n @ n)
    if abs(factor) < _FACTOR_TOLERANCE:
        return None  # a factor 0 is a gradient that is not there: `_zero`, or within the bars
    a, n = data.analytic, data.numeric
    named, cause = name_factor(abs(factor), hints)
    if len(a) < _MIN_ELEMENTS and not (_is_named(factor, hints)):
        return None  # one element fits any factor: only a recognizable one says something
    if not data.fits(factor * n):
        return None
    residual = float(stable_norm(a - factor * n))
    detail: dict[str, Any] = {"factor": factor, "explained": 1 - (residual / _mismatch(data)) ** 2}
    also = _l2_alternative(data, factor)
    if also:
        detail["alternative"] = "missing_l2"
    if abs(factor + 1) < _FACTOR_TOLERANCE:
        message = (
            f"The analytic gradient of {data.name} is the numeric one with its sign flipped "
            "(factor -1): a subtraction written the wrong way round, or a gradient ascent step"
            f"{also}."
        )
        return _Fit(Finding(kind=FindingKind.SIGN, param=data.name, message=message, detail=detail),
                    residual, 1)  # fmt: skip
    if factor < 0:
        message = (
            f"The analytic gradient of {data.name} is {named} the numeric one with the sign "
            f"flipped (factor {factor:.4g}): {cause}, and a sign error{also}."
        )
        return _Fit(Finding(kind=FindingKind.SIGN, param=data.name, message=message, detail=detail),
                    residual, 1)  # fmt: skip
    message = f"The analytic gradient of {data.name} is {named} the numeric one: {cause}{also}."
    return _Fit(Finding(kind=FindingKind.SCALE, param=data.name, message=message, detail=detail),
                residual, 1)  # fmt: skip


def _l2_alternative(data: ParamData, factor: float) -> str:
    """Name the other reading of a scale factor when it is also an L2 term.

    When the numeric gradient is proportional to theta, a factor and an L2 term are the
    same fit.
    """
    if len(data.theta) < _MIN_ELEMENTS or not _collinear(data.numeric, data.theta):
        return ""
    theta2 = float(data.theta @ data.theta)
    if theta2 == 0:
        return ""
    mu = float((data.analytic - data.numeric) @ data.theta) / theta2
    side = "an extra" if mu > 0 else "a missing"
    return (
        f" (here the numeric gradient is proportional to {data.name}, so this is also what "
        f"{side} L2 term {abs(mu):.4g} * {data.name} would give)"
    )


def _is_named(factor: float, hints: Mapping[str, int]) -> bool:
    """Whether a factor is one people make by mistake: -1, an integer, 1/integer, m or 1/m."""
    size = abs(factor)
    if size == 0:
        return False
    if any(v > 1 and (abs(size / v - 1) < _FACTOR_TOLERANCE or abs(size * v - 1) <
                      _FACTOR_TOLERANCE) for v in hints.values()):  # fmt: skip
        return True
    nearest, inverse = round(size), round(1 / size)
    return (nearest >= 1 and abs(size / nearest - 1) < _FACTOR_TOLERANCE) or (
        inverse >= 2 and abs(size * inverse - 1) < _FACTOR_TOLERANCE
    )


def _l2_term(data: ParamData, hints: Mapping[str, int]) -> _Fit | None:
    """Fit analytic = numeric - lambda * theta (missing L2) or + lambda * theta (one extra).

    Only claimed when theta is not proportional to the numeric gradient (then a plain scale
    factor says the same with one idea less) and the fit holds at every element.
    """
    theta_norm2 = float(data.theta @ data.theta)
    if theta_norm2 == 0 or len(data.theta) < _MIN_ELEMENTS:
        return None
    if _collinear(data.numeric, data.theta):
        return None
    gap = data.analytic - data.numeric
    mu = float(gap @ data.theta) / theta_norm2
    if not data.fits(data.numeric + mu * data.theta):
        return None
    residual = float(stable_norm(gap - mu * data.theta))
    strength = abs(mu)
    detail = {"lambda": strength, "coefficient": mu}
    if mu < 0:
        message = (
            f"The analytic gradient of {data.name} lacks a term {strength:.4g} * {data.name}: "
            f"the L2 regularization gradient (lambda/m * {data.name}) is missing from "
            f"d{data.name} (lambda/m = {strength:.4g})."
        )
    else:
        message = (
            f"The analytic gradient of {data.name} has an extra term {strength:.4g} * "
            f"{data.name}: an L2 gradient that the cost does not have, or one added twice "
            f"(lambda/m = {strength:.4g})."
        )
    finding = Finding(kind=FindingKind.MISSING_L2, param=data.name, message=message,
                      detail=detail)  # fmt: skip
    return _Fit(finding, residual, 1)


def _scaled_data_term(data: ParamData, hints: Mapping[str, int]) -> _Fit | None:
    """Fit analytic = c * numeric + mu * theta: the loss term scaled, a positive L2 term right.

    The numeric gradient is ``g + l2 theta`` with l2 > 0 (an L2 term the cost has); the
    analytic one ``c g + l2 theta``. The fit needs theta and the numeric gradient to be
    independent (else it is degenerate) and a positive L2 strength.
    """
    a, n, t = data.analytic, data.numeric, data.theta
    if float(t @ t) == 0 or len(a) < _MIN_ELEMENTS_TWO or _collinear(n, t):
        return None
    basis = np.stack([n, t], axis=1)
    (factor, mu), *_ = np.linalg.lstsq(basis, a, rcond=None)
    if abs(factor - 1) < _FACTOR_TOLERANCE:
        return None
    l2 = float(mu / (1 - factor))  # a = c (n - l2 t) + l2 t
    if not l2 > 0 or not data.fits(basis @ np.array([factor, mu])):
        return None
    residual = float(stable_norm(a - basis @ np.array([factor, mu])))
    named, cause = name_factor(abs(float(factor)), hints)
    flipped = " with the sign flipped" if factor < 0 else ""
    message = (
        f"The loss part of the analytic gradient of {data.name} is {named} the numeric "
        f"one{flipped} (its L2 part, {l2:.4g} * {data.name}, is right): {cause}."
    )
    detail = {"factor": float(factor), "l2_coefficient": l2}
    kind = FindingKind.SIGN if factor < 0 else FindingKind.SCALE
    return _Fit(Finding(kind=kind, param=data.name, message=message, detail=detail), residual, 2)


def _transpose(data: ParamData, hints: Mapping[str, int]) -> _Fit | None:
    """Fit analytic = numeric with axes permuted, allowing a correct L2 term on top.

    With weight decay, analytic = P(data) + mu theta while P(numeric) = P(data) + mu P(theta),
    so the two differ by mu (theta - P(theta)); that difference is fitted too.
    """
    if not data.complete or len(data.shape) < 2 or len(data.shape) > 4:
        return None
    numeric, analytic, theta = (_full(data, values) for values in
                                (data.numeric, data.analytic, data.theta))  # fmt: skip
    fits = []
    for axes in itertools.permutations(range(len(data.shape))):
        if list(axes) == sorted(axes):
            continue
        swapped = np.transpose(numeric, axes)
        reshaped = swapped.shape != data.shape
        gap = (analytic - swapped.reshape(data.shape)).reshape(-1)
        spread = (theta - np.transpose(theta, axes).reshape(data.shape)).reshape(-1)
        mu = float(gap @ spread) / float(spread @ spread) if np.any(spread) else 0.0
        if abs(mu) * float(stable_norm(spread)) < _NEGLIGIBLE * _mismatch(data):
            mu = 0.0  # no L2 term to speak of: fit the plain transpose
        residual = float(stable_norm(gap - mu * spread))
        how = "laid out in the shape of the transpose and reshaped" if reshaped else "transposed"
        l2 = f" (its L2 part, {mu:.4g} * {data.name}, is right)" if mu else ""
        message = (
            f"The analytic gradient of {data.name} is the numeric one {how}{l2} (axes "
            f"{axes}): e.g. dW = A.T @ dZ where dZ @ A.T belongs."
        )
        finding = Finding(kind=FindingKind.TRANSPOSE, param=data.name, message=message,
                          detail={"axes": list(axes), "reshaped": reshaped, "l2": mu})  # fmt: skip
        fits.append(_Fit(finding, residual, 1 if l2 else 0))
    return min(fits, key=lambda fit: fit.residual, default=None)


def _full(data: ParamData, values: NDArray[np.float64]) -> NDArray[np.float64]:
    full = np.empty(math.prod(data.shape))
    full[data.local] = values
    return full.reshape(data.shape)


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
    message = f"{how_many}{where}{pattern}: {listed}{' ...' if count > _LISTED else ''}."
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
    if abs(common - 1) < 10 * _FACTOR_TOLERANCE:
        return ""  # "1 times the numeric value" explains nothing
    if np.ptp(ratios) <= _FACTOR_TOLERANCE * max(1.0, float(np.abs(ratios).max())):
        return f" (each is {common:.4g} times the numeric value)"
    return ""


def name_factor(factor: float, hints: Mapping[str, int]) -> tuple[str, str]:
    """Describe a positive scale factor in words and guess its cause.

    Recognizes 2, 4, 1/2, 1/4, the batch size m and 1/m, the number of time steps T
    (from ``hints``), and other integers and their reciprocals.

    Returns:
        (how much, likely cause), e.g. ("4 times", "a factor 4 ...").
    """
    for label, value in hints.items():
        words, symbol = _HINTS[label]
        if value > 1 and abs(factor / value - 1) < _FACTOR_TOLERANCE:
            return f"{value} times", (
                f"{value} is {words} {symbol}, so a sum where a mean belongs (the 1/{symbol} "
                "is missing)"
            )
        if value > 1 and abs(factor * value - 1) < _FACTOR_TOLERANCE:
            return f"1/{value} of", (
                f"{value} is {words} {symbol}, so divided by {symbol} where it should not be "
                f"(a mean where a sum belongs, or 1/{symbol} applied twice)"
            )
    nearest = round(factor)
    if nearest >= 2 and abs(factor / nearest - 1) < _FACTOR_TOLERANCE:
        return f"{nearest} times", _INTEGER_CAUSES.get(
            nearest,
            f"an integer factor {nearest}: a sum where a mean belongs (a batch of {nearest}?) "
            "or a term counted several times",
        )
    inverse = round(1 / factor) if factor > 0 else 0
    if inverse >= 2 and abs(factor * inverse - 1) < _FACTOR_TOLERANCE:
        return f"1/{inverse} of", _INVERSE_CAUSES.get(
            inverse, f"divided by {inverse} once too often (a mean taken twice?)"
        )
    digits = 4 if abs(factor - 1) >= 0.01 else 6  # never "1 times"
    return (f"{factor:.{digits}g} times",
            f"a constant factor {factor:.{digits}g} on the whole gradient")  # fmt: skip


_INTEGER_CAUSES = {
    2: "a factor 2, e.g. the derivative of x**2 counted twice, or a term added twice",
    4: "a factor 4 (as in the classic db1 = 4/m * sum(dZ1) exercise bug)",
}
_INVERSE_CAUSES = {2: "a missing factor 2, e.g. the derivative of x**2 without its 2"}
_HINTS = {"batch_size": ("the batch size", "m"), "time_steps": ("the number of time steps", "T")}
