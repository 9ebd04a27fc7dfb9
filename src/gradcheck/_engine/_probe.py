"""Follow-up evaluations: the cost on a ladder of steps along a coordinate or a direction.

The diagnosis asks, for a few rows only (the elements or directions whose verdict is not
settled by the bulk pass), what the cost does as the step changes: a ladder of steps
``x +- s`` with s growing by 4. Both kinds of row are read the same way afterwards
(`_diagnose._steps`): a coordinate is the special case of a direction with one element.

For a coordinate the steps are the realized ones, so the comparison is with the analytic
partial derivative itself. For a direction ``x +- t D`` the step is the multiplier t and
the analytic side is ``a . (high - low) / 2t`` for the values actually written, so
rounding of individual components never biases the comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._tree import Leaf
from ._estimate import Problem, failure_error
from ._executors import Executor, LoopExecutor
from ._perturb import CoordinateFailedError, Guard, evaluate_slice, flat_view
from ._step import realize


@dataclass(frozen=True, slots=True, kw_only=True)
class Ladder:
    """The cost at ``x + s`` and ``x - s`` for several steps s per row (nan: not evaluated)."""

    plus: NDArray[np.float64]
    """[k, S] the cost with the row moved up by step s."""
    minus: NDArray[np.float64]
    """[k, S] the cost with the row moved down by step s."""
    up: NDArray[np.float64]
    """[k, S] the step actually taken upwards (0: it vanished, nothing evaluated)."""
    down: NDArray[np.float64]
    """[k, S] the step actually taken downwards."""
    analytic: NDArray[np.float64]
    """[k, S] what the analytic gradient predicts for the central difference at each step."""
    evaluations: int


def coordinate_ladder(
    problem: Problem,
    coordinates: NDArray[np.intp],
    steps: NDArray[np.float64],
    analytic: NDArray[np.float64],
    executor: Executor | None = None,
) -> Ladder:
    """Evaluate the cost at ``x +- s`` for each coordinate of theta and each of its steps.

    Args:
        problem: what to perturb and evaluate.
        coordinates: [k] coordinates of theta.
        steps: [k, S] requested steps per coordinate, ascending.
        analytic: [k] the analytic partial derivatives.
        executor: evaluates the points (the check's loop, batched cost or pool).
    """
    k, count = steps.shape
    plus, minus = np.full((k, count), np.nan), np.full((k, count), np.nan)
    up, down = np.zeros((k, count)), np.zeros((k, count))
    flat = problem.flat
    if executor is None:
        executor = LoopExecutor([leaf.array for leaf in flat], problem.cost, None)
    with Guard(flat.leaves):
        for leaf_index, leaf in enumerate(flat.leaves):
            mine = np.flatnonzero(
                (coordinates >= leaf.offset) & (coordinates < leaf.offset + leaf.size)
            )
            if not len(mine):
                continue
            local = coordinates[mine] - leaf.offset
            x = np.asarray(flat_view(leaf.array)[local])
            real = x.real if np.iscomplexobj(x) else x
            realized = realize(real[:, None], steps[mine])  # [m, S]
            points = [realized.high[:, j].astype(x.dtype) for j in range(count)] + [
                realized.low[:, j].astype(x.dtype) for j in range(count)
            ]
            try:
                values = np.real(executor.evaluate(leaf_index, local, points))  # [m, 2S]
            except CoordinateFailedError as failure:
                j = failure.offset
                moved = (
                    realized.up[failure.position, j]
                    if j < count
                    else -realized.down[failure.position, j - count]
                )
                raise failure_error(failure, leaf, local, f"{moved:+.3g}") from failure.__cause__
            plus[mine], minus[mine] = values[:, :count], values[:, count:]
            up[mine], down[mine] = realized.up, realized.down
    return Ladder(plus=plus, minus=minus, up=up, down=down,
                  analytic=np.repeat(analytic[:, None], count, axis=1),
                  evaluations=2 * k * count)  # fmt: skip


def direction_ladder(
    problem: Problem,
    leaf_index: int,
    lo: int,
    hi: int,
    displacement: NDArray[np.float64],
    multipliers: Sequence[float],
    analytic: NDArray[np.float64],
) -> Ladder:
    """Evaluate the cost at ``x +- t D`` over the flat range [lo, hi) of one leaf, per t.

    Args:
        problem: what to perturb and evaluate.
        leaf_index: the leaf.
        lo: first flat index of the range.
        hi: one past the last.
        displacement: [hi - lo] the direction D, scaled to the unit step.
        multipliers: the steps t, ascending.
        analytic: [hi - lo] the analytic gradient over the range.

    Raises:
        DirectionFailedError: the cost raised with the direction applied.
    """
    leaf = problem.flat.leaves[leaf_index]
    x = np.array(flat_view(leaf.array)[lo:hi])
    real = x.real if np.iscomplexobj(x) else x
    count = len(multipliers)
    plus, minus, predicted = np.full(count, np.nan), np.full(count, np.nan), np.zeros(count)
    usable = np.zeros(count, dtype=bool)
    highs, lows = [], []
    for j, t in enumerate(multipliers):
        realized = realize(real, np.abs(t * displacement))
        sign = displacement >= 0
        high = np.where(sign, realized.high, realized.low)
        low = np.where(sign, realized.low, realized.high)
        moved = (high.astype(np.float64) - low.astype(np.float64)) / 2
        usable[j] = bool(np.any(moved != 0)) and bool(np.all(np.isfinite(moved)))
        predicted[j] = float(analytic @ moved) / t
        highs.append(high.astype(x.dtype))
        lows.append(low.astype(x.dtype))
    chosen = [j for j in range(count) if usable[j]]
    with Guard([leaf]):
        try:
            values = evaluate_slice(
                leaf.array,
                lo,
                hi,
                [highs[j] for j in chosen] + [lows[j] for j in chosen],
                problem.cost,
            )
        except CoordinateFailedError as failure:
            raise DirectionFailedError(leaf, lo, hi) from failure.__cause__
    real_values = np.real(np.array(values, dtype=complex))
    plus[chosen] = real_values[: len(chosen)]
    minus[chosen] = real_values[len(chosen) :]
    steps = np.where(usable, np.asarray(multipliers, dtype=np.float64), 0.0)
    return Ladder(plus=plus[None], minus=minus[None], up=steps[None], down=steps[None],
                  analytic=predicted[None], evaluations=2 * len(chosen))  # fmt: skip


class DirectionFailedError(Exception):
    """The cost raised while a direction over coordinates [lo, hi) of a leaf was applied."""

    def __init__(self, leaf: Leaf, lo: int, hi: int) -> None:
        super().__init__(leaf.name, lo, hi)
        self.leaf, self.lo, self.hi = leaf, lo, hi
