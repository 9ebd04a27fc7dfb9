"""Read what a cost function returns as one number, with a clear error otherwise."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from ._errors import CostFunctionError, GradcheckError
from ._text import a_type

AT_BASE = " at the given parameters"

T = TypeVar("T")

_MSG_NOT_FINITE = (
    "the {what} is {value} at the given parameters (before any perturbation); a gradient "
    "check needs a finite {what} there. Check the inputs, the initialization, and for "
    "log(0) or division by zero in the {what}."
)
_MSG_WRONG_TYPE = (
    "the cost function returned {what} instead of a float{where}: an integer-valued cost (a "
    "count, a rounded loss, a comparison) has no derivative to check. Return the loss as a "
    "float."
)
_MSG_COMPLEX = (
    "the cost function returned a complex number ({value}){where}; return a real float (the "
    "complex step, method='complex', is the only check that evaluates complex costs)."
)
_MSG_NOT_SCALAR = (
    "the cost function returned {what} instead of a scalar{where}; return one number "
    "(e.g. the mean of the per-example losses)."
)


def to_scalar(value: Any, *, where: str = "", complex_ok: bool = False) -> Any:
    """Return the cost as a Python float (complex for the complex step).

    Accepts Python floats and NumPy float scalars and size-1 float arrays. Anything else
    raises a CostFunctionError that says what came back: an int or a bool (an integer-valued
    cost, such as a count or a rounded loss, has no derivative to check), a complex number
    outside the complex step, an array, or an object.
    """
    if isinstance(value, float):
        return value
    if getattr(value, "requires_grad", False) is True:
        raise CostFunctionError(
            f"the cost function returned {a_type(value)} that requires grad{where}; "
            "return a Python float: loss.item() (or loss.detach())."
        )
    if isinstance(value, bool | np.bool_):
        raise CostFunctionError(_MSG_WRONG_TYPE.format(what=f"a bool ({value})", where=where))
    try:
        array = np.asarray(value)
    except Exception as exc:  # objects NumPy cannot read at all
        raise CostFunctionError(
            _MSG_NOT_SCALAR.format(what=f"{a_type(value)}", where=where)
        ) from exc
    kind = array.dtype.kind
    if array.size != 1 or kind not in "fiubc":
        what = f"an array of shape {array.shape}" if kind in "fiubc" else a_type(value)
        raise CostFunctionError(_MSG_NOT_SCALAR.format(what=what, where=where))
    scalar = array.reshape(()).item()
    if kind in "iub":
        what = f"an integer ({scalar!r}, {a_type(value)})" if kind != "b" else f"a bool ({scalar})"
        raise CostFunctionError(_MSG_WRONG_TYPE.format(what=what, where=where))
    if kind == "c" and not complex_ok:
        raise CostFunctionError(_MSG_COMPLEX.format(value=scalar, where=where))
    return scalar


def at_base(call: Callable[[], T], what: str = "the cost function") -> T:
    """Run the user's function at the given point; its own failure becomes a named error.

    A gradcheck error raised on the way (a framework adapter refusing a dtype) is already
    named and passes through as it is.
    """
    try:
        return call()
    except GradcheckError:
        raise
    except Exception as exc:
        raise CostFunctionError(
            f"{what} raised {type(exc).__name__}: {exc} at the given parameters, before any "
            "perturbation; fix it there first (the traceback above shows where)."
        ) from exc


def finite_at_base(value: Any, what: str = "cost") -> float:
    """Read the cost at the unperturbed point as a finite float, or raise CostFunctionError."""
    scalar = to_scalar(value, where=AT_BASE)
    if not math.isfinite(scalar):
        raise CostFunctionError(_MSG_NOT_FINITE.format(what=what, value=scalar))
    return float(scalar)
