"""Estimate partial derivatives at many coordinates: the bulk pass of every check.

`estimate` writes each coordinate's stencil points (from the step primitive), has an
executor evaluate the cost there (a loop, a batched cost, a pool of workers), and
combines the values with weights built from the displacements actually realized. Each
estimate comes with its round-off error bar, from the cost's measured noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._errors import CostFunctionError, EvaluationTimeoutError
from .._tree import FlatParams, Leaf
from ._executors import Executor, LoopExecutor
from ._perturb import CoordinateFailedError, Guard, flat_view
from ._schemes import Scheme
from ._step import realize


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
class Estimates:
    """Finite-difference estimates at some coordinates of theta, with their error bars."""

    indices: NDArray[np.intp]
    """Coordinates of theta that were evaluated, ascending."""
    values: NDArray[np.float64]
    """Numeric partial derivative per coordinate (nan where it has no usable value)."""
    steps: NDArray[np.float64]
    """The step realized per coordinate (half the central span, or the one-sided step)."""
    noise: NDArray[np.float64]
    """Round-off error bar of each value, from the cost's measured noise."""
    truncation: NDArray[np.float64]
    """Truncation error bar of each value where the scheme measures one (central4: the gap
    between its two central differences); 0 otherwise."""
    usable: NDArray[np.bool_]
    """Every stencil point moved the coordinate (no step rounded away)."""
    nonfinite: NDArray[np.bool_]
    """The cost was nan or inf at one of the coordinate's stencil points."""
    flat: NDArray[np.bool_]
    """The cost came back bit for bit the same at every stencil point and the base point."""
    evaluations: int


def estimate(
    problem: Problem,
    scheme: Scheme,
    chosen: Sequence[NDArray[np.intp]],
    steps: Sequence[NDArray[np.float64]],
    sigma: Sequence[float],
    executor: Executor | None = None,
) -> Estimates:
    """Estimate the derivative at the chosen coordinates of each leaf, at the given steps.

    Args:
        problem: what to perturb and evaluate.
        scheme: the stencil.
        chosen: per leaf, flat indices inside it (ascending).
        steps: per leaf, the requested step for each chosen index.
        sigma: per leaf, the cost's measured noise along its coordinates (for the error bars).
        executor: computes the perturbed costs; by default a loop in this process.

    Raises:
        CostFunctionError: the cost raised at a perturbed point (arrays already restored).
    """
    if executor is None:
        executor = LoopExecutor([leaf.array for leaf in problem.flat], problem.cost, None)
    parts: list[dict[str, NDArray[Any]]] = []
    evaluations = 0
    with Guard(problem.flat.leaves):
        for leaf_index, (leaf, local, h) in enumerate(
            zip(problem.flat.leaves, chosen, steps, strict=True)
        ):
            if not len(local):
                continue
            part = _estimate_leaf(problem, scheme, executor, leaf_index, leaf, local, h,
                                  sigma[leaf_index])  # fmt: skip
            part["indices"] = local + leaf.offset
            parts.append(part)
            evaluations += len(local) * scheme.evaluations_per_coordinate
    fields = ("indices", "values", "steps", "noise", "truncation", "usable", "nonfinite", "flat")
    empty = {"indices": np.empty(0, np.intp), "usable": np.empty(0, bool),
             "nonfinite": np.empty(0, bool), "flat": np.empty(0, bool)}  # fmt: skip
    joined = {
        name: np.concatenate([p[name] for p in parts]) if parts else empty.get(name, np.empty(0))
        for name in fields
    }
    return Estimates(evaluations=evaluations, **joined)


def _estimate_leaf(
    problem: Problem,
    scheme: Scheme,
    executor: Executor,
    leaf_index: int,
    leaf: Leaf,
    local: NDArray[np.intp],
    h: NDArray[np.float64],
    sigma: float,
) -> dict[str, NDArray[Any]]:
    x = np.asarray(flat_view(leaf.array)[local])  # [k], the leaf's dtype
    points, displacements = stencil(scheme, x, h)
    try:
        values = executor.evaluate(leaf_index, local, points)  # [k, stencil points]
    except CoordinateFailedError as failure:
        position = failure.position
        moved = displacements[position, failure.offset]
        shift = f"+ {moved:.3g}i" if scheme.complex_step else f"{moved:+.3g}"
        raise failure_error(failure, leaf, local, shift) from failure.__cause__
    usable = np.all(displacements != 0, axis=1)
    nonfinite = ~np.isfinite(values).all(axis=1)
    flat = np.all(values == problem.base_value, axis=1) & usable
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        numeric = scheme.combine(values, problem.base_value, displacements)
        noise = scheme.noise(displacements, sigma)
        truncation = np.zeros(len(local))
        if scheme.name == "central4":  # the two central differences it extrapolates from
            real = np.real(values)
            inner = (real[:, 1] - real[:, 2]) / (displacements[:, 1] - displacements[:, 2])
            outer = (real[:, 0] - real[:, 3]) / (displacements[:, 0] - displacements[:, 3])
            truncation = np.abs(inner - outer) / 3
    numeric[~usable | nonfinite] = np.nan
    return {
        "values": numeric,
        "steps": scheme.step(displacements),
        "noise": noise,
        "truncation": truncation,
        "usable": usable,
        "nonfinite": nonfinite & usable,
        "flat": flat,
    }


def stencil(
    scheme: Scheme, x: NDArray[Any], h: NDArray[np.float64]
) -> tuple[list[NDArray[Any]], NDArray[np.float64]]:
    """The values to write for each stencil point, and the displacements they realize [k, P].

    Every value comes from the step primitive: ``x + c h`` rounded once to x's dtype.
    """
    if scheme.complex_step:
        real = x.real.dtype
        imaginary = np.asarray(h, dtype=np.float64).astype(real)
        point = (x.real + 1j * imaginary).astype(x.dtype)
        return [point], np.imag(point).astype(np.float64)[:, None]
    base = x.real if np.iscomplexobj(x) else x
    points: list[NDArray[Any]] = []
    columns = []
    for offset in scheme.offsets:
        realized = realize(base, abs(offset) * h)
        value, moved = (
            (realized.high, realized.up) if offset > 0 else (realized.low, -realized.down)
        )
        points.append(value.astype(x.dtype))
        columns.append(moved)
    return points, np.stack(columns, axis=1)


def failure_error(
    failure: CoordinateFailedError, leaf: Leaf, local: NDArray[np.intp], shift: str
) -> CostFunctionError:
    """The error for a cost that raised while one coordinate was moved."""
    coordinate = int(local[failure.position])
    index = leaf.index_of(coordinate)
    cause = failure.__cause__
    where = leaf.describe_element(index)
    if isinstance(cause, EvaluationTimeoutError):
        return EvaluationTimeoutError(
            f"{cause} while {where} was moved by {shift} (coordinate "
            f"{leaf.offset + coordinate} of theta). The check stopped; your arrays have been "
            "restored.",
            param=leaf.name,
            index=index,
        )
    return CostFunctionError(
        f"the cost function raised {type(cause).__name__}: {cause} "
        f"while {where} was moved by {shift} (coordinate {leaf.offset + coordinate} "
        "of theta). Your arrays have been restored. Fix the cost at that point, or choose "
        "a smaller eps or another method.",
        param=leaf.name,
        index=index,
    )
