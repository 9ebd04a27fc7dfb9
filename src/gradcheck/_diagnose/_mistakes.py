"""Detectors for the mistakes people make in backpropagation, as pure functions over arrays.

Each detector fits one pattern — analytic = c * numeric (scale, sign),
analytic = numeric + mu * theta (a missing or extra L2 term), analytic = 0,
analytic = numeric with axes swapped — and only claims it when the fit explains
the mismatch: the residual left after the fit must be a small fraction of
``||analytic - numeric||``. Anything else gets a localized description: how many
elements disagree, where, and their values (`_elements.describe_elements`).
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
from ._elements import ParamData, describe_elements
from ._factors import FACTOR_TOLERANCE, is_named, name_factor

EXPLAINED = 0.1
"""A pattern explains a mismatch when the residual after fitting it is below this fraction
of ``||analytic - numeric||`` (so it accounts for at least 99% of the squared mismatch)."""

_MIN_ELEMENTS = 2
"""A one-number fit needs at least this many elements behind it."""
_NEGLIGIBLE = 1e-3
"""A fitted extra term smaller than this fraction of the mismatch is not worth naming."""
_MIN_ELEMENTS_TWO = 8
"""A two-number fit needs this many, or it fits a few elements by chance."""
_COLLINEAR = 1 - 1e-9
"""|cos| between the numeric gradient and theta above which they are proportional."""


def _collinear(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    """Whether two vectors are proportional (a least-squares fit on both is degenerate)."""
    norms = float(stable_norm(a) * stable_norm(b))
    return norms == 0 or abs(float(a @ b)) / norms > _COLLINEAR


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
    if abs(factor) < FACTOR_TOLERANCE:
        return None  # a factor 0 is a gradient that is not there: `_zero`, or within the bars
    a, n = data.analytic, data.numeric
    named, cause = name_factor(abs(factor), hints)
    if len(a) < _MIN_ELEMENTS and not (is_named(factor, hints)):
        return None  # one element fits any factor: only a recognizable one says something
    if not data.fits(factor * n):
        return None
    residual = float(stable_norm(a - factor * n))
    detail: dict[str, Any] = {"factor": factor, "explained": 1 - (residual / _mismatch(data)) ** 2}
    also = _l2_alternative(data, factor)
    if also:
        detail["alternative"] = "missing_l2"
    if abs(factor + 1) < FACTOR_TOLERANCE:
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
    if abs(factor - 1) < FACTOR_TOLERANCE:
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
