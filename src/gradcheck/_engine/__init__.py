"""The engine: estimate partial derivatives of the cost by finite differences.

`estimate` is the only entry point the API calls. It picks the coordinates
(mode), the steps and stencil points (scheme), perturbs the parameter arrays in
place (`_perturb`) and combines the cost values into a `NumericGradient`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from .._errors import CostFunctionError
from .._tree import FlatParams, Leaf
from ._directional import (
    DirectionalResult,
    DirectionFailedError,
    Prober,
    Projection,
    check_directions,
    directions_for,
    miss_probability,
)
from ._executors import BatchedCost, BatchedExecutor, Executor, LoopExecutor, PoolExecutor
from ._modes import MODES, Mode, select_coordinates
from ._perturb import CoordinateFailedError, Guard, evaluate_coordinates, flat_view
from ._schemes import (
    METHODS,
    SCHEMES,
    Method,
    Scheme,
    precision_of,
    realized_steps,
    requested_steps,
    resolution_of,
)

__all__ = [
    "METHODS",
    "MODES",
    "SCHEMES",
    "BatchedCost",
    "BatchedExecutor",
    "DirectionalResult",
    "Executor",
    "Guard",
    "LoopExecutor",
    "Method",
    "Mode",
    "NumericGradient",
    "Plan",
    "PoolExecutor",
    "Problem",
    "Projection",
    "Scheme",
    "StepProbe",
    "directions_for",
    "estimate",
    "estimate_directional",
    "miss_probability",
    "precision_of",
    "probe_steps",
    "resolution_of",
]

Eps = float | Literal["auto"] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How to estimate: scheme, coordinates, step."""

    scheme: Scheme
    mode: Mode
    eps: Eps
    samples: int | float | None
    seed: int
    cost_dtype: np.dtype[Any] | None
    """The precision the cost is computed in, from the type it returns (None: unknown)."""
    nominal_steps: bool = False
    """Divide by the requested step instead of the realized one (the textbook's arithmetic)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """What the engine perturbs and evaluates."""

    cost: Callable[[], float | complex]
    """Evaluates the cost at the current values of the leaves' arrays."""
    flat: FlatParams
    """The arrays to perturb: the user's own, or complex copies for the complex step."""
    base_value: float | complex
    """The cost at the unperturbed point (reused by one-sided schemes)."""
    target: Any = None
    """The parameter tree the cost reads (holding the leaves' arrays), for batched and
    parallel evaluation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NumericGradient:
    """Finite-difference estimates for the coordinates a check evaluated."""

    indices: NDArray[np.intp]
    """Coordinates of theta that were evaluated, ascending."""
    values: NDArray[np.float64]
    """Numeric partial derivative per evaluated coordinate (nan where the cost was not finite)."""
    steps: NDArray[np.float64]
    """Step h used per evaluated coordinate (after rounding to the parameter's dtype)."""
    evaluations: int
    """Cost evaluations spent on the estimate (not counting the base point)."""
    nonfinite: NDArray[np.intp]
    """Coordinates where the cost returned nan or inf at a perturbed point."""
    raised_steps: int
    """Steps that vanished below the resolution of their dtype and were raised to one ulp."""


def estimate(problem: Problem, plan: Plan, executor: Executor | None = None) -> NumericGradient:
    """Estimate the gradient at the coordinates chosen by ``plan.mode`` ("full" or "sample").

    Args:
        problem: what to perturb and evaluate.
        plan: scheme, mode, steps.
        executor: computes the perturbed costs; by default a loop in this process.

    Raises:
        CostFunctionError: the cost raised at a perturbed point (arrays already restored).
    """
    if executor is None:
        executor = LoopExecutor([leaf.array for leaf in problem.flat], problem.cost, None)
    chosen = select_coordinates(problem.flat, plan.mode, plan.samples, plan.seed)
    parts: list[tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]] = []
    raised = evaluations = 0
    with Guard(problem.flat.leaves):
        for leaf_index, (leaf, local) in enumerate(zip(problem.flat.leaves, chosen, strict=True)):
            if not len(local):
                continue
            values, steps, raised_here = _estimate_leaf(
                problem, plan, executor, leaf_index, leaf, local
            )
            parts.append((local + leaf.offset, values, steps))
            raised += raised_here
            evaluations += len(local) * plan.scheme.evaluations_per_coordinate
    indices = np.concatenate([p[0] for p in parts])
    values = np.concatenate([p[1] for p in parts])
    return NumericGradient(
        indices=indices,
        values=values,
        steps=np.concatenate([p[2] for p in parts]),
        evaluations=evaluations,
        nonfinite=indices[~np.isfinite(values)],
        raised_steps=raised,
    )


def _estimate_leaf(
    problem: Problem,
    plan: Plan,
    executor: Executor,
    leaf_index: int,
    leaf: Leaf,
    local: NDArray[np.intp],
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    scheme = plan.scheme
    x = np.asarray(flat_view(leaf.array)[local])  # [k], the leaf's dtype
    real_dtype = x.real.dtype
    resolution = precision_of(real_dtype, plan.cost_dtype)
    h = requested_steps(scheme, x.real, plan.eps, resolution)
    raised = 0
    if scheme.complex_step:
        points = [x + 1j * h.astype(real_dtype)]
    else:
        if not plan.nominal_steps:
            h, raised = realized_steps(x, h)
        step = h.astype(x.dtype) if not plan.nominal_steps else h
        points = [(x + c * step).astype(x.dtype) for c in scheme.offsets]
    try:
        values = executor.evaluate(leaf_index, local, points)  # [k, stencil points]
    except CoordinateFailedError as failure:
        position, offset = failure.position, scheme.offsets[failure.offset]
        shift = f"+ {h[position]:.3g}i" if scheme.complex_step else f"{offset * h[position]:+.3g}"
        raise _failure_error(failure, leaf, local, shift) from failure.__cause__
    with np.errstate(invalid="ignore", over="ignore"):
        numeric = np.asarray(scheme.combine(values, problem.base_value, h), dtype=np.float64)
    numeric[~np.isfinite(values).all(axis=1)] = np.nan
    return numeric, h, raised


def _failure_error(
    failure: CoordinateFailedError, leaf: Leaf, local: NDArray[np.intp], shift: str
) -> CostFunctionError:
    coordinate = int(local[failure.position])
    index = leaf.index_of(coordinate)
    cause = failure.__cause__
    where = leaf.describe_element(index)
    return CostFunctionError(
        f"the cost function raised {type(cause).__name__}: {cause} "
        f"while {where} was moved by {shift} (coordinate {leaf.offset + coordinate} "
        "of theta). Your arrays have been restored. Fix the cost at that point, or choose "
        "a smaller eps or another method.",
        param=leaf.name,
        index=index,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StepProbe:
    """The cost at ``x + s`` and ``x - s`` for several steps s per coordinate."""

    coordinates: NDArray[np.intp]
    """Coordinates of theta probed, as given."""
    plus: NDArray[np.float64]
    """[k, S]: the cost with coordinate k moved up by step s."""
    minus: NDArray[np.float64]
    """[k, S]: the cost with coordinate k moved down by step s."""
    up: NDArray[np.float64]
    """[k, S]: the step actually taken upwards, ``fl(x + s) - x``."""
    down: NDArray[np.float64]
    """[k, S]: the step actually taken downwards, ``x - fl(x - s)``."""
    evaluations: int


def probe_steps(
    problem: Problem, coordinates: NDArray[np.intp], steps: NDArray[np.float64]
) -> StepProbe:
    """Evaluate the cost at ``x +- s`` for each coordinate and each of its steps.

    The follow-up evaluations of the diagnosis (error bars, convergence and kink
    tests) go through here, on the few coordinates that need them.

    Args:
        problem: what to perturb and evaluate.
        coordinates: [k] coordinates of theta.
        steps: [k, S] positive steps per coordinate.
    """
    k, count = steps.shape
    plus = np.empty((k, count))
    minus = np.empty((k, count))
    up = np.empty((k, count))
    down = np.empty((k, count))
    flat = problem.flat
    with Guard(flat.leaves):
        for leaf in flat.leaves:
            mine = np.flatnonzero(
                (coordinates >= leaf.offset) & (coordinates < leaf.offset + leaf.size)
            )
            if not len(mine):
                continue
            local = coordinates[mine] - leaf.offset
            x = np.asarray(flat_view(leaf.array)[local])  # [m]
            s = steps[mine].astype(x.real.dtype)  # [m, S]
            high = (x[:, None] + s).astype(x.dtype)
            low = (x[:, None] - s).astype(x.dtype)
            if x.dtype.kind == "f":  # a step below the resolution would vanish: take one ulp
                high = np.where(high == x[:, None], np.nextafter(x, np.inf)[:, None], high)
                low = np.where(low == x[:, None], np.nextafter(x, -np.inf)[:, None], low)
            points = [high[:, j].tolist() for j in range(count)] + [
                low[:, j].tolist() for j in range(count)
            ]
            try:
                columns = evaluate_coordinates(leaf.array, local.tolist(), points, problem.cost)
            except CoordinateFailedError as failure:
                shift = points[failure.offset][failure.position] - x[failure.position]
                raise _failure_error(failure, leaf, local, f"{shift.real:+.3g}") from (
                    failure.__cause__
                )
            values = np.real(np.array(columns)).T  # [m, 2S]
            plus[mine], minus[mine] = values[:, :count], values[:, count:]
            up[mine] = np.real(high - x[:, None]).astype(np.float64)
            down[mine] = np.real(x[:, None] - low).astype(np.float64)
    return StepProbe(coordinates=coordinates, plus=plus, minus=minus, up=up, down=down,
                     evaluations=2 * k * count)  # fmt: skip


def estimate_directional(
    problem: Problem,
    analytic: NDArray[np.float64],
    *,
    eps: Eps,
    cost_dtype: np.dtype[Any] | None,
    directions: int,
    tolerance: float,
    bisect: bool,
    seed: int,
) -> DirectionalResult:
    """Check each tensor along random directions; with ``bisect``, localize failures.

    Args:
        problem: what to perturb and evaluate.
        analytic: the analytic gradient over all of theta.
        eps: the step per coordinate (a direction moves every coordinate by about it).
        cost_dtype: the cost's precision.
        directions: k, directions per tensor.
        tolerance: the per-direction threshold relative to twice the analytic norm.
        bisect: halve failing tensors down to the wrong elements.
        seed: seeds the directions.

    Raises:
        CostFunctionError: the cost raised while a direction was applied.
    """
    probers: list[Prober | None] = []
    base = abs(float(np.real(problem.base_value)))
    for leaf_index, leaf in enumerate(problem.flat.leaves):
        if leaf.size == 0:
            probers.append(None)
            continue
        resolution = precision_of(leaf.dtype, cost_dtype)
        x = np.asarray(leaf.array.real, dtype=np.float64).reshape(-1)
        step = float(np.median(requested_steps(SCHEMES["central"], x, eps, resolution)))
        part = analytic[leaf.offset : leaf.offset + leaf.size]
        probers.append(Prober(leaf, part, problem.cost, step, resolution * base / step, seed,
                              leaf_index))  # fmt: skip
    try:
        return check_directions(probers, directions, tolerance, bisect)
    except DirectionFailedError as failure:
        leaf, cause = failure.leaf, failure.__cause__
        if failure.hi - failure.lo == 1:
            index = leaf.index_of(failure.lo)
            where = leaf.describe_element(index)
        else:
            span = f"{failure.lo}..{failure.hi - 1}"
            where = f"a random direction over elements {span} of {leaf.describe()}"
        raise CostFunctionError(
            f"the cost function raised {type(cause).__name__}: {cause} while {where} was "
            "perturbed. Your arrays have been restored.",
            param=leaf.name,
        ) from cause
