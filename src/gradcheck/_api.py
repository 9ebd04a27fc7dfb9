"""Public entry points: validate arguments once, run the stages in order, return the result."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from ._compare import DEFAULT_THRESHOLDS, DEFAULT_WORST, compare, normalized_difference
from ._diagnose import diagnose
from ._engine import METHODS, MODES, SCHEMES, Method, Mode, Plan, Problem, estimate
from ._engine._schemes import describe_step, resolution_of
from ._errors import CostFunctionError, InvalidArgumentError, invalid_choice
from ._report import Report, Settings
from ._tree import FlatParams, ParamTree, flatten, flatten_grads

__all__ = ["check", "gradient_checking"]

Eps = float | Literal["auto"] | None

_MSG_NEEDS_PAIR = (
    "with grads=None, f(params) must return (loss, grads), but it returned {what}. "
    "Either return both, or pass the gradients: gradcheck.check(f, params, grads)."
)
_MSG_NOT_SCALAR = (
    "the cost function returned {what} instead of a scalar{where}; return one number "
    "(e.g. the mean of the per-example losses)."
)
_MSG_NOT_FINITE = (
    "the cost is {value} at the given parameters (before any perturbation); a gradient "
    "check needs a finite cost there. Check the inputs, the initialization, and for "
    "log(0) or division by zero in the cost."
)
_UNSUPPORTED_MODES = {"directional", "bisect"}


def check(
    f: Callable[[Any], Any],
    params: ParamTree,
    grads: Any = None,
    *,
    eps: Eps = None,
    method: Method = "central",
    mode: Mode = "full",
    samples: int | float | None = None,
    seed: int = 0,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    worst: int = DEFAULT_WORST,
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
        eps: the step. None: the textbook 1e-7 for float64 and a step suited to
            lower precisions; "auto": chosen per element from dtype and magnitude;
            or a float.
        method: "central", "forward", "backward", "central4" (fourth order) or
            "complex" (complex step; the cost must accept complex parameters).
        mode: "full" checks every coordinate; "sample" a seeded sample of each array.
        samples: for mode="sample": a count per array (int) or a fraction of each (float).
        seed: seeds every random choice, so a check can be repeated exactly.
        thresholds: the verdict thresholds (correct, acceptable, suspicious).
        worst: how many worst elements to list per parameter.

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
        >>> report.verdict, report.passed, report.evaluations
        (<Verdict.CORRECT: 'correct'>, True, 9)
    """
    started = time.perf_counter()
    _require_callable(f, "f")
    scheme = SCHEMES[_choice("method", method, METHODS)]
    mode = _choice("mode", mode, MODES)
    if mode in _UNSUPPORTED_MODES:
        raise InvalidArgumentError(
            f"mode={mode!r} is not available in this version; use mode='full' or mode='sample'."
        )
    eps = _validate_eps(eps)
    samples = _validate_samples(samples, mode)
    seed = _validate_seed(seed)
    limits = _validate_thresholds(thresholds)
    if not isinstance(worst, int) or isinstance(worst, bool) or worst < 1:
        raise InvalidArgumentError(f"worst={worst!r} must be a positive int (elements listed).")

    flat = flatten(params)
    wants_pair = grads is None
    base = f(params)
    if wants_pair:
        base, grads = _split_pair(base)
    base_value = to_scalar(base, where=" at the given parameters")
    if not math.isfinite(base_value):
        raise CostFunctionError(_MSG_NOT_FINITE.format(value=base_value))
    analytic = flatten_grads(grads, flat)

    cost_resolution = resolution_of(_float_dtype(base))
    problem = _problem(f, params, flat, wants_pair, base_value, complex_step=scheme.complex_step)
    plan = Plan(scheme=scheme, mode=mode, eps=eps, samples=samples, seed=seed,
                cost_resolution=cost_resolution)  # fmt: skip
    numeric = estimate(problem, plan)
    comparison = compare(numeric.indices, numeric.values, analytic, flat, limits, worst)
    findings = diagnose(comparison, numeric, analytic, flat)
    params_by_name = {p.name: p for p in comparison.params}
    return Report(
        difference=comparison.difference,
        verdict=comparison.verdict,
        passed=comparison.verdict.passes and all(p.passed for p in comparison.params),
        params=params_by_name,
        findings=findings,
        evaluations=1 + numeric.evaluations,
        settings=Settings(
            method=scheme.name,
            eps=eps,
            step=_describe_steps(flat, scheme, eps, cost_resolution),
            mode=mode,
            samples=samples,
            seed=seed,
            thresholds=limits,
        ),
        size=flat.size,
        checked=comparison.checked,
        elapsed=time.perf_counter() - started,
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
    _require_callable(cost_function, "cost_function")
    if not isinstance(epsilon, float | int) or isinstance(epsilon, bool) or not epsilon > 0:
        raise InvalidArgumentError(f"epsilon={epsilon!r} must be a positive float, e.g. 1e-7.")
    flat = flatten(list(params) if isinstance(params, tuple) else params)
    analytic = flatten_grads(grads, flat)
    theta = flat.vector()
    flat_theta = flatten(theta)
    base = to_scalar(cost_function(theta), where=" at the given parameters")
    plan = Plan(scheme=SCHEMES["central"], mode="full", eps=float(epsilon), samples=None,
                seed=0, cost_resolution=resolution_of(np.dtype(np.float64)),
                nominal_steps=True)  # fmt: skip
    problem = Problem(
        cost=lambda: to_scalar(cost_function(theta)), flat=flat_theta, base_value=base
    )
    numeric = estimate(problem, plan)
    return normalized_difference(numeric.values, analytic)


def to_scalar(value: Any, *, where: str = "") -> float:
    """Return the cost as a Python float, or complex for the complex step.

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
    scalar = array.reshape(()).item()
    return scalar  # type: ignore[no-any-return]


def _problem(
    f: Callable[[Any], Any],
    params: ParamTree,
    flat: FlatParams,
    wants_pair: bool,
    base_value: float,
    *,
    complex_step: bool,
) -> Problem:
    """Build the zero-argument cost the engine evaluates after each in-place perturbation."""
    if complex_step:
        # The user's float arrays cannot hold x + ih: perturb one complex copy of them instead.
        copies = [leaf.array.astype(np.result_type(leaf.dtype, np.complex64)) for leaf in flat]
        target = flat.unflatten(copies)
        flat = replace(
            flat, leaves=tuple(replace(leaf, array=c) for leaf, c in zip(flat, copies, strict=True))
        )
    else:
        target = params

    if wants_pair:

        def cost() -> float:
            return to_scalar(f(target)[0])

    else:

        def cost() -> float:
            return to_scalar(f(target))

    return Problem(cost=cost, flat=flat, base_value=base_value)


def _split_pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, tuple | list) and len(value) == 2:
        return value[0], value[1]
    what = f"a {type(value).__name__}"
    if isinstance(value, tuple | list):
        what += f" of {len(value)} items"
    raise CostFunctionError(_MSG_NEEDS_PAIR.format(what=what))


def _float_dtype(value: Any) -> np.dtype[Any]:
    """The precision the cost is computed in, judged from the type it returns."""
    dtype = np.asarray(value).dtype
    if dtype.kind == "c":
        return np.finfo(dtype).dtype
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _describe_steps(flat: FlatParams, scheme: Any, eps: Eps, cost_resolution: float) -> str:
    described: dict[str, list[str]] = {}
    for leaf in flat:
        resolution = max(resolution_of(leaf.dtype), cost_resolution)
        described.setdefault(describe_step(scheme, eps, resolution), []).append(str(leaf.dtype))
    if len(described) == 1:
        return next(iter(described))
    return ", ".join(f"{text} ({'/'.join(sorted(set(d)))})" for text, d in described.items())


def _choice(argument: str, value: Any, choices: Sequence[str]) -> Any:
    if value not in choices:
        raise invalid_choice(argument, value, choices)
    return value


def _require_callable(f: Any, argument: str) -> None:
    if not callable(f):
        raise InvalidArgumentError(
            f"{argument} must be callable (the cost function), but it is a {type(f).__name__}."
        )


def _validate_eps(eps: Any) -> Eps:
    if eps is None or eps == "auto":
        return eps  # type: ignore[no-any-return]
    if isinstance(eps, str):
        raise invalid_choice("eps", eps, ["auto"])
    if not isinstance(eps, float | int) or isinstance(eps, bool):
        raise InvalidArgumentError(
            f"eps={eps!r} must be a positive float, None (the default) or 'auto'."
        )
    if not (math.isfinite(eps) and eps > 0):
        raise InvalidArgumentError(
            f"eps={eps!r} must be positive; use a small positive float or eps='auto'."
        )
    return float(eps)


def _validate_samples(samples: Any, mode: str) -> int | float | None:
    if samples is None:
        return None
    if mode != "sample":
        raise InvalidArgumentError(
            f"samples={samples!r} only applies to mode='sample' (mode is {mode!r})."
        )
    if isinstance(samples, bool) or not isinstance(samples, int | float):
        raise InvalidArgumentError(
            f"samples={samples!r} must be a count per array (int >= 1) "
            "or a fraction of each array (0 < float <= 1)."
        )
    if isinstance(samples, int) and samples < 1:
        raise InvalidArgumentError(f"samples={samples!r} must be at least 1 per array.")
    if isinstance(samples, float) and not 0 < samples <= 1:
        raise InvalidArgumentError(
            f"samples={samples!r} as a float is a fraction of each array and must be in (0, 1]; "
            "pass an int for a count."
        )
    return samples


def _validate_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidArgumentError(f"seed={seed!r} must be a non-negative int.")
    return int(seed)


def _validate_thresholds(thresholds: Any) -> tuple[float, float, float]:
    try:
        values = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not 0 < values[0] < values[1] < values[2]:
        raise InvalidArgumentError(
            f"thresholds={thresholds!r} must be three increasing positive numbers "
            "(correct, acceptable, suspicious), e.g. (1e-7, 1e-5, 1e-3)."
        )
    return values
