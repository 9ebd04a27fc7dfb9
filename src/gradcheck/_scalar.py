"""Read what a cost function returns as one number, with a clear error otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._errors import CostFunctionError

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


def float_dtype(value: Any) -> np.dtype[Any]:
    """The precision a cost value carries (Python floats and ints count as float64)."""
    dtype = np.asarray(value).dtype
    if dtype.kind == "c":
        return np.finfo(dtype).dtype
    return dtype if dtype.kind == "f" else np.dtype(np.float64)
