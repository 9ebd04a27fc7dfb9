"""Read what a cost function returns as one number, with a clear error otherwise."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ._errors import CostFunctionError

_ROUND_NUMBER_BITS = 12

AT_BASE = " at the given parameters"

_MSG_NOT_FINITE = (
    "the {what} is {value} at the given parameters (before any perturbation); a gradient "
    "check needs a finite {what} there. Check the inputs, the initialization, and for "
    "log(0) or division by zero in the {what}."
)
_MSG_NOT_SCALAR = (
    "the cost function returned {what} instead of a scalar{where}; return one number "
    "(e.g. the mean of the per-example losses)."
)


def to_scalar(value: Any, *, where: str = "") -> Any:
    """Return the cost as a Python float (complex for the complex step).

    Accepts Python and NumPy scalars and size-1 arrays; anything else raises a
    CostFunctionError that says what came back.
    """
    if isinstance(value, float):
        return value
    try:
        array = np.asarray(value)
    except Exception as exc:  # objects NumPy cannot read at all
        raise CostFunctionError(
            _MSG_NOT_SCALAR.format(what=f"a {type(value).__name__}", where=where)
        ) from exc
    if array.size != 1 or array.dtype.kind not in "fiubc":
        what = (
            f"an array of shape {array.shape}"
            if array.dtype.kind in "fiubc"
            else f"a {type(value).__name__}"
        )
        raise CostFunctionError(_MSG_NOT_SCALAR.format(what=what, where=where))
    return array.reshape(()).item()


def finite_at_base(value: Any, what: str = "cost") -> float:
    """Read the cost at the unperturbed point as a finite float, or raise CostFunctionError."""
    scalar = to_scalar(value, where=AT_BASE)
    if not math.isfinite(scalar):
        raise CostFunctionError(_MSG_NOT_FINITE.format(what=what, value=scalar))
    return float(scalar)


def float_dtype(value: Any) -> np.dtype[Any] | None:
    """The precision a cost value carries; None for Python numbers (precision unknown)."""
    if isinstance(value, int | float | complex) and not isinstance(value, np.generic):
        return None
    dtype = np.asarray(value).dtype
    if dtype.kind == "c":
        return np.finfo(dtype).dtype
    return dtype if dtype.kind == "f" else None


def cost_precision(value: Any, leaf_dtypes: Iterable[np.dtype[Any]]) -> np.dtype[Any]:
    """The precision the cost is computed in, judged from the value it returned.

    A NumPy value says it directly. A Python float could hide a float32 computation:
    if the parameters are in a lower precision and the value is exactly representable
    there (a float64 result is so by chance with probability 2**-29), assume that
    precision; otherwise float64. Round numbers (few significant bits, like 15.5) are
    representable in any precision and prove nothing: they count as float64.
    """
    known = float_dtype(value)
    if known is not None:
        return known
    coarsest = max(leaf_dtypes, key=lambda dt: np.finfo(dt).eps, default=np.dtype(np.float64))
    if np.finfo(coarsest).eps <= np.finfo(np.float64).eps:
        return np.dtype(np.float64)
    real = float(np.real(value))
    mantissa = int(abs(math.frexp(real)[0]) * 2**53)
    significant = 53 - ((mantissa & -mantissa).bit_length() - 1) if mantissa else 0
    exact = float(coarsest.type(real)) == real
    return coarsest if exact and significant > _ROUND_NUMBER_BITS else np.dtype(np.float64)
