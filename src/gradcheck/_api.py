"""Public entry points: validate arguments once, build the subject of the check, run it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Unpack

import numpy as np
from numpy.typing import NDArray

from ._compare import normalized_difference
from ._engine import Guard, evaluate_coordinates
from ._errors import CostFunctionError, InvalidArgumentError
from ._options import CheckOptions, from_keywords, require_callable, takes_options
from ._pipeline import Subject, run
from ._results import Report
from ._scalar import AT_BASE, at_base, finite_at_base, to_scalar
from ._text import a_type
from ._tree import ParamTree, flatten, flatten_grads, select_present

__all__ = ["check", "check_layer", "gradient_checking"]

_MSG_NEEDS_PAIR = (
    "with grads=None, f(params) must return (loss, grads), but it returned {what}. "
    "Either return both, or pass the gradients: gradcheck.check(f, params, grads)."
)


@takes_options
def check(
    f: Callable[[Any], Any],
    params: ParamTree,
    grads: Any = None,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check analytic gradients against finite differences and explain any mismatch.

    Args:
        f: the cost. With ``grads`` given, ``f(params)`` returns the loss; with
            ``grads=None``, it returns ``(loss, grads)``.
        params: a float array, or a dict / list / tuple (nested) of float arrays.
            They are perturbed in place during the check and are bit-for-bit
            unchanged afterwards, however the check ends.
        grads: the analytic gradients, with params' structure (for a dict, the
            textbook key ``"dW1"`` is accepted for ``"W1"``).
        **options: the options of a check, `CheckOptions`: ``eps``, ``method``, ``mode``,
            ``samples``, ``seed``, ``thresholds``, ``worst``, ``batch_size``, ``time_steps``,
            ``batched``, ``workers``, ``executor``, ``progress``, ``directions``,
            ``miss_probability``, ``detectable``, ``timeout`` (each documented there).

    Returns:
        A Report: ``difference``, ``verdict``, ``passed``, per-parameter results in
        ``params``, ``findings`` and the number of ``evaluations``.

    Raises:
        InvalidArgumentError: an option has an invalid value.
        ParamTreeError: params or grads are malformed or do not match.
        CostFunctionError: the cost raised, returned a non-scalar, or is not finite
            at the given point.

    Example:
        >>> import numpy as np, gradcheck
        >>> W = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> report = gradcheck.check(lambda p: np.sum(p["W"] ** 2), {"W": W}, {"dW": 2 * W})
        >>> report.verdict, report.passed
        (<Verdict.CORRECT: 'correct'>, True)
    """
    started = time.perf_counter()
    require_callable(f, "f")
    validated = from_keywords(options)
    flat = flatten(params)
    wants_pair = grads is None

    def evaluate(tree: Any) -> Any:
        return f(tree)[0] if wants_pair else f(tree)

    def repeat() -> tuple[float, bool]:
        again = at_base(lambda: f(params))
        if not wants_pair:
            return to_scalar(again, where=AT_BASE), False
        value, grads_again = _split_pair(again)
        changed = not np.array_equal(flatten_grads(grads_again, flat), analytic, equal_nan=True)
        return to_scalar(value, where=AT_BASE), changed

    def recompute() -> NDArray[np.float64]:
        return flatten_grads(_split_pair(f(params))[1], flat)

    with Guard(flat.leaves, params):  # also restores params a cost modifies at the base point
        first = at_base(lambda: f(params))
        if wants_pair:
            first, grads = _split_pair(first)
        base_value = finite_at_base(first)
        analytic = flatten_grads(grads, flat)
        subject = Subject(evaluate=evaluate, params=params, flat=flat, analytic=analytic,
                          base_value=base_value, repeat=repeat,
                          recompute=recompute if wants_pair else None)  # fmt: skip
        return run(subject, validated, started)


@takes_options
def check_layer(
    forward: Callable[[Any], Any],
    backward: Callable[[Any, Any], Any],
    inputs: ParamTree,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check one layer, or any array-valued function, through a vector-Jacobian product.

    A fixed random Gaussian upstream gradient ``dout`` (never all ones: ones cancel
    in normalization layers) turns the layer into the scalar
    ``sum(forward(inputs) * dout)``, whose gradient is what ``backward(inputs, dout)``
    must return. ``dout`` is drawn from its own stream, ``SeedSequence([seed, SALT])``,
    so it never equals an input drawn with ``default_rng(seed)`` (which would hide a
    transposed gradient in a square layer). Inputs that backward returns no gradient for
    (None, or a missing key) are held fixed and left out of the report; so are inputs
    that are not floating point (indices, labels), which are passed through untouched
    and listed as not checked.

    Args:
        forward: ``forward(inputs)`` returns an array of any shape.
        backward: ``backward(inputs, dout)`` returns gradients for (a subset of) the
            inputs, with the inputs' structure (``"dx"`` is accepted for ``"x"``).
        inputs: a float array, or a dict / list / tuple (nested) of float arrays.
        **options: as for `check` (`CheckOptions`); ``seed`` also seeds ``dout``.

    Example:
        >>> import numpy as np, gradcheck
        >>> inputs = {"x": np.array([[1.0, -2.0]]), "w": np.array([[0.5], [3.0]])}
        >>> forward = lambda p: np.tanh(p["x"] @ p["w"])
        >>> def backward(p, dout):
        ...     dz = dout * (1 - np.tanh(p["x"] @ p["w"]) ** 2)
        ...     return {"dx": dz @ p["w"].T, "dw": p["x"].T @ dz}
        >>> gradcheck.check_layer(forward, backward, inputs).passed
        True
    """
    started = time.perf_counter()
    require_callable(forward, "forward")
    require_callable(backward, "backward")
    validated = from_keywords(options)
    everything = flatten(inputs, hold_integers=True)

    def evaluate(tree: Any) -> Any:
        # Sum over the output's own axes only, so a batched forward gives one cost each.
        axes = tuple(range(-dout.ndim, 0)) or None
        return np.sum(_layer_output(forward(tree)) * dout, axis=axes)

    def repeat() -> tuple[float, bool]:
        return to_scalar(at_base(lambda: evaluate(inputs)), where=AT_BASE), False

    def recompute() -> NDArray[np.float64]:
        return flatten_grads(backward(inputs, dout.copy()), flat)

    with Guard(everything.leaves, inputs):
        out = _layer_output(at_base(lambda: forward(inputs)))
        dout = upstream_gradient(validated.seed, out.shape)
        grads = at_base(lambda: backward(inputs, dout.copy()), "backward")
        flat = select_present(grads, everything)
        analytic = flatten_grads(grads, flat)
        subject = Subject(evaluate=evaluate, params=inputs, flat=flat, analytic=analytic,
                          base_value=finite_at_base(np.sum(out * dout)), repeat=repeat,
                          recompute=recompute, held=everything.held)  # fmt: skip
        return run(subject, validated, started)


UPSTREAM_SALT = 0x75707374  # "upst"
"""Mixed into the seed of the upstream gradient, so that it is not the stream a user's own
``default_rng(seed)`` draws inputs from."""


def upstream_gradient(seed: int, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """The fixed random upstream gradient of a layer check (Gaussian, never all ones)."""
    return np.random.default_rng(np.random.SeedSequence([seed, UPSTREAM_SALT])).standard_normal(
        shape
    )


def gradient_checking(
    params: Sequence[Any],
    grads: Sequence[Any],
    cost_function: Callable[[Any], Any],
    epsilon: float = 1e-7,
) -> float:
    """Drop-in for the textbook gradient check: return the normalized difference.

    Same signature and number as the classic loop (central differences with step
    ``epsilon`` on theta, the concatenation of params, compared by
    ``||num - ana|| / (||num|| + ||ana||)``), but perturbing theta in place instead
    of copying it twice per coordinate. Below 1e-7 is correct, around 1e-5 worth
    inspecting, above 1e-3 a bug; `check` says where and why.

    Args:
        params: the parameter arrays (W1, b1, ..., WL, bL).
        grads: their gradients (dW1, db1, ...), same order and shapes.
        cost_function: ``cost_function(theta)`` with theta the 1-D concatenation of params.
        epsilon: the step.

    Example:
        >>> import numpy as np, gradcheck
        >>> W, b = np.array([[1.0, -2.0]]), np.array([0.5])
        >>> cost = lambda theta: float(np.sum(theta ** 3))
        >>> diff = gradcheck.gradient_checking([W, b], [3 * W**2, 3 * b**2], cost)
        >>> diff < 1e-7
        True
    """
    require_callable(cost_function, "cost_function")
    if (
        not isinstance(epsilon, float | int)
        or isinstance(epsilon, bool)
        or not (math.isfinite(epsilon) and epsilon > 0)
    ):
        raise InvalidArgumentError(f"epsilon={epsilon!r} must be a positive float, e.g. 1e-7.")
    flat = flatten(list(params) if isinstance(params, tuple) else params)
    analytic = flatten_grads(grads, flat)
    theta = flat.vector()
    to_scalar(cost_function(theta), where=AT_BASE)  # a cost that fails at theta fails clearly
    # The textbook's own arithmetic, bit for bit: theta[i] +- epsilon in float64, divided by
    # the nominal 2 * epsilon (check() divides by the steps actually realized instead).
    points = [(theta + epsilon).tolist(), (theta - epsilon).tolist()]
    values = evaluate_coordinates(theta, range(flat.size), points,
                                  lambda: to_scalar(cost_function(theta)))  # fmt: skip
    numeric = (np.array(values[0]) - np.array(values[1])) / (2 * epsilon)
    return normalized_difference(numeric, analytic)


def _layer_output(out: Any) -> Any:
    array = np.asarray(out)
    if array.dtype.kind not in "fc":
        raise CostFunctionError(
            f"forward returned {type(out).__name__} of dtype {array.dtype}; it must return "
            "a float array (the layer's output)."
        )
    return array


def _split_pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, tuple | list) and len(value) == 2:
        return value[0], value[1]
    what = f"{a_type(value)}"
    if isinstance(value, tuple | list):
        what += f" of {len(value)} items"
    raise CostFunctionError(_MSG_NEEDS_PAIR.format(what=what))
