"""The engine: evaluate the cost at perturbed points and turn the values into derivatives.

Every perturbed value comes from the step primitive (`_step`); the bulk pass over many
coordinates is `estimate` (through a loop, batched or parallel executor); the follow-ups
on a few rows are ladders (`_probe`); the directional modes measure random directions and
bisect (`_directional`); `_noise` measures how noisy the cost is (read by `_ecnoise`).
"""

from __future__ import annotations

from ._directional import (
    Bisection,
    Direction,
    bisect,
    directions_for,
    miss_probability,
    project,
)
from ._ecnoise import Noise
from ._estimate import Estimates, Problem, estimate, failure_error, stencil
from ._executors import BatchedCost, BatchedExecutor, Executor, LoopExecutor, Progress
from ._modes import MODES, Mode, samples_per_leaf, select_coordinates
from ._noise import measure, measure_along_directions
from ._perturb import CoordinateFailedError, Guard, evaluate_coordinates, flat_view
from ._pool import PoolExecutor, process_pool, terminate
from ._probe import DirectionFailedError, Ladder, coordinate_ladder, direction_ladder
from ._schemes import METHODS, SCHEMES, Method, Scheme
from ._step import (
    MAX_RELATIVE,
    MIN_ULPS,
    TEXTBOOK_EPS,
    describe,
    distinct,
    initial_steps,
    scale_of,
    shift,
    ulp,
)

__all__ = [
    "MAX_RELATIVE",
    "METHODS",
    "MIN_ULPS",
    "MODES",
    "SCHEMES",
    "TEXTBOOK_EPS",
    "BatchedCost",
    "BatchedExecutor",
    "Bisection",
    "CoordinateFailedError",
    "Direction",
    "DirectionFailedError",
    "Estimates",
    "Executor",
    "Guard",
    "Ladder",
    "LoopExecutor",
    "Method",
    "Mode",
    "Noise",
    "PoolExecutor",
    "Problem",
    "Progress",
    "Scheme",
    "bisect",
    "coordinate_ladder",
    "describe",
    "direction_ladder",
    "directions_for",
    "distinct",
    "estimate",
    "evaluate_coordinates",
    "failure_error",
    "flat_view",
    "initial_steps",
    "measure",
    "measure_along_directions",
    "miss_probability",
    "process_pool",
    "project",
    "samples_per_leaf",
    "scale_of",
    "select_coordinates",
    "shift",
    "stencil",
    "terminate",
    "ulp",
]
