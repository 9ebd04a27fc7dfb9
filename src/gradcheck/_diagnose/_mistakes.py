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

from ._finding import Finding

EXPLAINED = 0.1
"""A pattern explains a mismatch when the residual after fitting it is below this fraction
of ``||analytic - numeric||`` (so it accounts for at least 99% of the squared mismatch)."""

_FACTOR_TOLERANCE = 2e-3
_LISTED = 4


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


def explain(data: ParamData, hints: Mapping[str, int]) -> Finding:
    """Return the finding that best explains why this parameter's gradient is wrong."""
    if _mismatch(data) == 0:
        return _localized(data)
    for detector in (_zero, _scale_or_sign, _l2_term, _scaled_data_term, _transpose):
        finding = detector(data, hints)
        if finding is not None:
            return finding
    return _localized(data)


def _mismatch(data: ParamData) -> float:
    return float(np.linalg.norm(data.analytic - data.numeric))


def _zero(data: ParamData, hints: Mapping[str, int]) -> Finding | None:
    numeric_norm = float(np.linalg.norm(data.numeric))
    if numeric_norm == 0 or np.linalg.norm(data.analytic) > 1e-12 * numeric_norm:
        return None
    return Finding(
        kind="zero",
        param=data.name,
        message=(
            f"The analytic gradient of {data.name} is zero but the numeric one is not "
            f"(norm {numeric_norm:.3g}): the gradient is never computed, overwritten, "
            "or detached from the computation."
        ),
        detail={"numeric_norm": numeric_norm},
    )


def _scale_or_sign(data: ParamData, hints: Mapping[str, int]) -> Finding | None:
    a, n = data.analytic, data.numeric
    nn = float(n @ n)
    if nn == 0:
        return None
    factor = float(a @ n) / nn
    residual = float(np.linalg.norm(a - factor * n))
    if residual > EXPLAINED * _mismatch(data):
        return None
    explained = 1 - (residual / _mismatch(data)) ** 2
    detail = {"factor": factor, "explained": explained}
    if abs(factor + 1) < _FACTOR_TOLERANCE:
        return Finding(
            kind="sign",
            param=data.name,
            message=(
                f"The analytic gradient of {data.name} is the numeric one with its sign flipped "
                "(factor -1): a subtraction written the wrong way round, or a gradient ascent step."
            ),
            detail=detail,
        )
    named, cause = name_factor(abs(factor), hints)
    if factor < 0:
        message = (
            f"The analytic gradient of {data.name} is {named} the numeric one with the sign "
            f"flipped (factor {factor:.4g}): {cause}, and a sign error."
        )
        return Finding(kind="sign", param=data.name, message=message, detail=detail)
    message = f"The analytic gradient of {data.name} is {named} the numeric one: {cause}."
    return Finding(kind="scale", param=data.name, message=message, detail=detail)


def _l2_term(data: ParamData, hints: Mapping[str, int]) -> Finding | None:
    theta_norm2 = float(data.theta @ data.theta)
    if theta_norm2 == 0:
        return None
    gap = data.analytic - data.numeric
    mu = float(gap @ data.theta) / theta_norm2
    if np.linalg.norm(gap - mu * data.theta) > EXPLAINED * _mismatch(data):
        return None
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
    return Finding(kind="missing_l2", param=data.name, message=message, detail=detail)


def _scaled_data_term(data: ParamData, hints: Mapping[str, int]) -> Finding | None:
    """Fit analytic = c * numeric + mu * theta: the loss term scaled, the L2 term right."""
    a, n, t = data.analytic, data.numeric, data.theta
    if float(t @ t) == 0:
        return None
    basis = np.stack([n, t], axis=1)
    (factor, mu), *_ = np.linalg.lstsq(basis, a, rcond=None)
    if np.linalg.norm(a - basis @ np.array([factor, mu])) > EXPLAINED * _mismatch(data):
        return None
    if abs(factor - 1) < _FACTOR_TOLERANCE or abs(1 - factor) < 1e-12:
        return None
    l2 = float(mu / (1 - factor))  # a = c (n - l2 t) + l2 t
    named, cause = name_factor(abs(float(factor)), hints)
    message = (
        f"The loss part of the analytic gradient of {data.name} is {named} the numeric one "
        f"(its L2 part, {l2:.4g} * {data.name}, is right): {cause}."
    )
    detail = {"factor": float(factor), "l2_coefficient": l2}
    return Finding(
        kind="sign" if factor < 0 else "scale", param=data.name, message=message, detail=detail
    )


def _transpose(data: ParamData, hints: Mapping[str, int]) -> Finding | None:
    if not data.complete or len(data.shape) < 2 or len(data.shape) > 4:
        return None
    full_n = np.empty(math.prod(data.shape))
    full_n[data.local] = data.numeric
    full_a = np.empty_like(full_n)
    full_a[data.local] = data.analytic
    numeric, analytic = full_n.reshape(data.shape), full_a.reshape(data.shape)
    limit = EXPLAINED * _mismatch(data)
    for axes in itertools.permutations(range(len(data.shape))):
        if list(axes) == sorted(axes):
            continue
        swapped = np.transpose(numeric, axes)
        reshaped = swapped.shape != data.shape
        candidate = swapped.reshape(data.shape)
        if np.linalg.norm(analytic - candidate) <= limit:
            how = (
                "laid out in the shape of the transpose and reshaped" if reshaped else "transposed"
            )
            return Finding(
                kind="transpose",
                param=data.name,
                message=(
                    f"The analytic gradient of {data.name} is the numeric one {how} "
                    f"(axes {axes}): e.g. dW = A.T @ dZ where dZ @ A.T belongs."
                ),
                detail={"axes": list(axes), "reshaped": reshaped},
            )
    return None


def _localized(data: ParamData) -> Finding:
    off = data.off()
    if not off.any():  # the mismatch is spread thin: describe the worst elements
        order = np.argsort(-np.abs(data.analytic - data.numeric))[:_LISTED]
        off = np.zeros_like(off)
        off[order] = True
    positions = np.flatnonzero(off)
    count, checked = len(positions), len(data.local)
    worst = positions[np.argsort(-np.abs(data.analytic - data.numeric)[positions])]
    listed = "; ".join(
        f"{_spell(data.name, data.index(int(k)))} analytic {data.analytic[k]:.4g}, "
        f"numeric {data.numeric[k]:.4g}"
        for k in worst[:_LISTED]
    )
    where = _where(data, positions)
    pattern = _common_ratio(data, positions)
    message = (
        f"{count} of {checked} checked elements of {data.name} disagree{where}{pattern}: "
        f"{listed}{' ...' if count > _LISTED else ''}."
    )
    detail: dict[str, Any] = {
        "count": count,
        "checked": checked,
        "indices": [list(data.index(int(k))) for k in worst[:50]],
        "analytic": [float(data.analytic[k]) for k in worst[:50]],
        "numeric": [float(data.numeric[k]) for k in worst[:50]],
    }
    return Finding(kind="localized", param=data.name, message=message, detail=detail)


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
    if np.ptp(ratios) <= _FACTOR_TOLERANCE * max(1.0, float(np.abs(ratios).max())):
        return f" (each is {float(np.median(ratios)):.4g} times the numeric value)"
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
                f"{words} {value}: a sum where a mean belongs (a missing 1/{symbol})"
            )
        if value > 1 and abs(factor * value - 1) < _FACTOR_TOLERANCE:
            return f"1/{value} of", f"divided by {words} {value} once too often (1/{symbol} twice)"
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
    return f"{factor:.4g} times", f"a constant factor {factor:.4g} on the whole gradient"


_INTEGER_CAUSES = {
    2: "a factor 2, e.g. the derivative of x**2 counted twice, or a term added twice",
    4: "a factor 4 (as in the classic db1 = 4/m * sum(dZ1) exercise bug)",
}
_INVERSE_CAUSES = {2: "a missing factor 2, e.g. the derivative of x**2 without its 2"}
_HINTS = {"batch_size": ("the batch size", "m"), "time_steps": ("the number of time steps", "T")}


def _spell(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(map(str, index))}]" if index else name
