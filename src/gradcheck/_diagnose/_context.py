"""What the diagnosis needs to evaluate the cost again (`Context`), built once per check."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._engine import Executor, Problem
from ._rows import Rows


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What the diagnosis needs to evaluate the cost again."""

    problem: Problem
    executor: Executor | None
    """Evaluates coordinate ladders (the check's loop, batched cost or pool)."""
    sigmas: Sequence[float]
    """Per leaf, the cost's measured noise along one of its coordinates."""
    direction_sigma: float
    """Its noise along a random direction (every coordinate moved: every term re-rounded)."""
    thresholds: tuple[float, float, float]
    pinned: bool
    """The user chose the step (a float eps): it is not widened."""
    scales: Sequence[NDArray[np.float64]]
    """Per leaf, the per-element scale of its values."""
    recompute: Callable[[], NDArray[np.float64]] | None
    """The analytic gradient over theta at the arrays' current values, where it can be had."""
    seed: int
    gradient_scale: float
    """The typical analytic gradient element of the whole check (RMS), for what is negligible."""
    noise_measured: bool = True
    """The cost's noise was measured (ECnoise saw it), not only bounded: a cost that does not
    move at any step is then a measured zero derivative."""

    def noise_along(self, leaf_index: int, moved: int) -> float:
        """The noise a direction over ``moved`` elements of a leaf sees.

        A direction that moves one element is that element's coordinate: it sees the
        coordinate's noise, not that of a direction moving every array at once.
        """
        return self.sigmas[leaf_index] if moved == 1 else self.direction_sigma

    def noise_of(self, rows: Rows) -> float:
        """The noise a row of this parameter sees: along a direction, or along its coordinates."""
        if rows.directions:
            first = rows.directions[0]
            return self.noise_along(rows.leaf_index, first.hi - first.lo)
        return self.sigmas[rows.leaf_index]
