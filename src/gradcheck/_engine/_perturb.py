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
    original = np.array(view[list(indices)]) if len(indices) else np.empty(0, array.dtype)
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
    except BaseException as exc:  # Ctrl-C, sys.exit: re-raised as they are, located
        exc.gradcheck_at = (position, offset)  # type: ignore[attr-defined]
        raise
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
    """Back up the parameter arrays for the duration of a check and restore them on exit.

    Values are compared bit for bit; each array's shape, strides and writeable flag, and
    (given the tree) every dict and list of the tree — which arrays it holds under which
    keys — are compared by identity. Whatever a cost changed is put back, and a check that
    would otherwise succeed raises a `CostFunctionError` that names it.
    """

    def __init__(self, leaves: Sequence[Leaf], tree: Any = None) -> None:
        self._leaves = leaves
        self._backups = [leaf.array.copy() for leaf in leaves]
        self._layouts = [_layout(leaf.array) for leaf in leaves]
        self._containers = _containers(tree, "params") if tree is not None else []

    def __enter__(self) -> Guard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        changed = [f"the members of {where} (a key or item rebound, added or removed)"
                   for container, snapshot, where in self._containers
                   if _restore_container(container, snapshot)]  # fmt: skip
        modified = []
        for leaf, backup, layout in zip(self._leaves, self._backups, self._layouts, strict=True):
            if _layout(leaf.array) != layout:
                _restore_layout(leaf.array, layout)
                changed.append(f"the shape, strides or writeable flag of {leaf.describe()}")
            if not _same_bits(leaf.array, backup):
                np.copyto(leaf.array, backup, casting="no")
                modified.append(leaf)
        if exc_type is not None:
            return
        if changed:
            raise CostFunctionError(
                f"the cost function changed {'; '.join(changed)} during the check. A gradient "
                "check needs a cost that only reads its parameters; gradcheck has put back "
                "every array and container as it was.",
                param=modified[0].name if modified else None,
            )
        if modified:
            names = ", ".join(leaf.describe() for leaf in modified)
            raise CostFunctionError(
                f"the cost function modified {names} in place during the check. A gradient "
                "check needs a cost that only reads its parameters; your arrays have been "
                "restored to their original values.",
                param=modified[0].name,
            )


_Layout = tuple[tuple[int, ...], tuple[int, ...], bool]


def _layout(array: NDArray[Any]) -> _Layout:
    return array.shape, array.strides, bool(array.flags.writeable)


def _restore_layout(array: NDArray[Any], layout: _Layout) -> None:
    shape, strides, writeable = layout
    if writeable:
        array.flags.writeable = True
    if (array.shape, array.strides) != (shape, strides):
        array.shape = shape  # the same memory, so the original shape always fits
    if not writeable:
        array.flags.writeable = False


def _same_bits(array: NDArray[Any], backup: NDArray[Any]) -> bool:
    """Bit-for-bit equality; extended precision compares values (its padding bytes are noise)."""
    if array.dtype.itemsize > 8 and array.dtype.kind == "f":
        return bool(
            np.array_equal(array, backup, equal_nan=True)
            and np.array_equal(np.signbit(array), np.signbit(backup))
        )
    return array.tobytes() == backup.tobytes()


_Snapshot = list[tuple[Any, Any]]


def _containers(tree: Any, where: str) -> list[tuple[Any, _Snapshot, str]]:
    """Every dict and list of the tree with a snapshot of what it holds (by identity)."""
    if isinstance(tree, dict):
        items = list(tree.items())
        out: list[tuple[Any, _Snapshot, str]] = [(tree, items, where)]
        for key, value in items:
            out += _containers(value, f"{where}[{key!r}]")
        return out
    if isinstance(tree, list):
        items = list(enumerate(tree))
        out = [(tree, list(items), where)]
        for index, value in items:
            out += _containers(value, f"{where}[{index}]")
        return out
    if isinstance(tree, tuple):
        return [c for i, value in enumerate(tree) for c in _containers(value, f"{where}[{i}]")]
    return []


def _restore_container(container: Any, snapshot: _Snapshot) -> bool:
    """Put a dict's or list's original members back; say whether anything had changed."""
    now = list(container.items()) if isinstance(container, dict) else list(enumerate(container))
    if len(now) == len(snapshot) and all(
        k == k0 and v is v0 for (k, v), (k0, v0) in zip(now, snapshot, strict=True)
    ):
        return False
    if isinstance(container, dict):
        container.clear()
        container.update(snapshot)
    else:
        container[:] = [value for _, value in snapshot]
    return True
