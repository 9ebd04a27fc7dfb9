"""Perturb parameter arrays in place and restore them bit for bit; nothing else writes to them.

Two layers of protection keep the user's arrays intact:

1. Each coordinate is written, the cost evaluated, and the original value put
   back in a ``finally`` block, so no exception or Ctrl-C leaves a coordinate
   perturbed. No copy of theta is made per coordinate.
2. `Guard` keeps one backup of every array for the whole check and, on the way
   out (however the check ends), compares each array with its backup byte for
   byte and restores any that differ. That also catches a cost function that
   modifies its parameters, which would make the check meaningless.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._errors import CostFunctionError
from .._tree import Leaf


class CoordinateFailedError(Exception):
    """The cost raised while coordinate number `position` of a batch was perturbed."""

    def __init__(self, position: int, offset: int) -> None:
        super().__init__(position, offset)
        self.position = position
        self.offset = offset


def flat_view(array: NDArray[Any]) -> Any:
    """A writable flat (C-order) window onto ``array``: a view, or ``array.flat`` if strided."""
    return array.reshape(-1) if array.flags.c_contiguous else array.flat


def evaluate_coordinates(
    array: NDArray[Any],
    indices: Sequence[int],
    points: Sequence[Sequence[float | complex]],
    cost: Callable[[], float | complex],
) -> list[list[float | complex]]:
    """Evaluate the cost with each coordinate moved to each of its stencil points in turn.

    Args:
        array: the parameter array to perturb in place.
        indices: flat indices of the coordinates to perturb.
        points: ``points[j][k]`` is the value coordinate ``indices[k]`` takes for stencil point j.
        cost: evaluates the cost at the arrays' current values.

    Returns:
        ``values[j][k]``, the cost with coordinate k at stencil point j.

    Raises:
        CoordinateFailedError: from the cost's own exception, after the coordinate is restored.
    """
    view = flat_view(array)
    original = view[list(indices)].tolist() if len(indices) else []
    values: list[list[float | complex]] = [[0.0] * len(indices) for _ in points]
    position = offset = 0
    try:
        for position, i in enumerate(indices):
            try:
                for offset, column in enumerate(points):
                    view[i] = column[position]
                    values[offset][position] = cost()
            finally:
                view[i] = original[position]
    except Exception as exc:
        raise CoordinateFailedError(position, offset) from exc
    return values


def evaluate_slice(
    array: NDArray[Any],
    lo: int,
    hi: int,
    values: Sequence[NDArray[Any]],
    cost: Callable[[], float | complex],
) -> list[float | complex]:
    """Evaluate the cost with the flat range [lo, hi) of ``array`` set to each of ``values``.

    Raises:
        CoordinateFailedError: position is the index into ``values`` that failed.
    """
    view = flat_view(array)
    original = np.array(view[lo:hi])
    out: list[float | complex] = []
    try:
        for target in values:
            view[lo:hi] = target
            out.append(cost())
    except Exception as exc:
        raise CoordinateFailedError(len(out), 0) from exc
    finally:
        view[lo:hi] = original
    return out


class Guard:
    """Back up the parameter arrays for the duration of a check and restore them on exit."""

    def __init__(self, leaves: Sequence[Leaf]) -> None:
        self._leaves = leaves
        self._backups = [leaf.array.copy() for leaf in leaves]

    def __enter__(self) -> Guard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        changed = []
        for leaf, backup in zip(self._leaves, self._backups, strict=True):
            if leaf.array.tobytes() != backup.tobytes():
                np.copyto(leaf.array, backup, casting="no")
                changed.append(leaf)
        if changed and exc_type is None:
            names = ", ".join(leaf.describe() for leaf in changed)
            raise CostFunctionError(
                f"the cost function modified {names} in place during the check. A gradient "
                "check needs a cost that only reads its parameters; your arrays have been "
                "restored to their original values.",
                param=changed[0].name,
            )
