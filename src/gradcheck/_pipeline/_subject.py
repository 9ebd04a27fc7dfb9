"""What a check is about (`Subject`) and the zero-argument cost the engine evaluates of it.

The pipeline's modes perturb the parameters in place and call the cost with no arguments;
`build_problem` turns a Subject into that cost, on complex copies of the arrays for the
complex step (the user's float arrays cannot hold x + ih).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._engine import Problem
from .._errors import CostFunctionError
from .._scalar import to_scalar
from .._timeout import limited
from .._tree import FlatParams, ParamTree, tree_arrays

_MSG_DROPS_IMAGINARY = (
    "method='complex' evaluates the cost at complex parameters and reads the derivative "
    "from the imaginary part, but the cost returned a real number there: something in it "
    "drops the imaginary part (float(), np.real, abs, np.maximum, comparisons). Make those "
    "steps complex-safe, or use method='central'."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Subject:
    """What a check is about: a cost of the parameter tree and the gradient to verify."""

    evaluate: Callable[[Any], Any]
    """Cost of a parameter tree (the user's, or a complex copy of it for the complex step)."""
    params: ParamTree
    flat: FlatParams
    """The leaves to check (all of params', or those the user gave gradients for)."""
    analytic: NDArray[np.float64]
    base_value: float
    repeat: Callable[[], tuple[float, bool]]
    """Evaluate again at the base point: (cost, whether the analytic gradient changed)."""
    recompute: Callable[[], NDArray[np.float64]] | None = None
    """The analytic gradient over theta at the arrays' current values (None: not available,
    the user passed the gradient itself)."""
    held: tuple[tuple[str, str], ...] = ()
    """(name, dtype) of inputs that are not floating point: held fixed, not checked."""


def build_problem(subject: Subject, *, complex_step: bool, timeout: float | None = None) -> Problem:
    """The zero-argument cost the engine evaluates after each in-place perturbation."""
    flat, target = subject.flat, subject.params
    if complex_step:
        # The user's float arrays cannot hold x + ih: perturb complex copies of them instead.
        checked = {id(leaf.array) for leaf in flat}
        arrays = tree_arrays(target)
        copies = [a.astype(np.result_type(a.dtype, np.complex64)) if id(a) in checked else a
                  for a in arrays]  # fmt: skip
        target = flat.unflatten(copies)
        by_id = {id(a): c for a, c in zip(arrays, copies, strict=True)}
        flat = replace(flat, leaves=tuple(replace(leaf, array=by_id[id(leaf.array)])
                                          for leaf in flat))  # fmt: skip
        if not np.iscomplexobj(subject.evaluate(target)):
            raise CostFunctionError(_MSG_DROPS_IMAGINARY)
    evaluate = subject.evaluate

    def cost() -> float | complex:
        value: float | complex = to_scalar(evaluate(target), complex_ok=complex_step)
        return value

    if timeout is not None:
        cost = limited(cost, timeout)
    return Problem(cost=cost, flat=flat, base_value=subject.base_value, target=target)
