"""Flatten a parameter tree into named leaves laid end to end in one virtual vector theta.

A check works on one virtual vector theta of n coordinates, the concatenation of
every parameter array in the order the user wrote them (dict insertion order,
list order). Each array is a `Leaf` with a stable dotted name (``"W1"``,
``"layers.0.weight"``, ``"0"``; see `_names`) and the offset of its first element in
theta. Nothing is copied here except where asked (`FlatParams.vector`): the engine
perturbs the user's own arrays in place through the leaves, so `flatten` rejects
anything that cannot be perturbed and restored safely.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optree
from numpy.typing import NDArray

from .._errors import ParamTreeError
from .._frameworks import hint_for
from .._text import a_type
from ._names import path_text, spell, unique_names

ParamTree = Any
"""A NumPy float array, or a dict / list / tuple (nested) of them; narrowed by `flatten`."""

NAMESPACE = "gradcheck"
"""optree's namespace for gradcheck's tree order (dicts in insertion order)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Leaf:
    """One parameter array: where it sits in the tree and in the flat vector theta."""

    name: str
    """Dotted name: ``"W1"``, ``"layers.0.weight"``, ``"0"``; ``"theta"`` for a bare array."""
    path: str
    """How to reach it from the root, e.g. ``'["layers"][0]["weight"]'``; empty for a bare array."""
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    offset: int
    """Index of this leaf's first element in theta."""
    size: int
    array: NDArray[np.floating[Any]] = field(repr=False, compare=False)
    """The user's own array (perturbed in place by the engine, never replaced)."""
    accessor: optree.PyTreeAccessor = field(repr=False, compare=False)

    def describe(self, root: str = "params") -> str:
        """Spell the leaf as the user would index it, e.g. ``params["W1"]``."""
        return f"{root}{self.path}"

    def describe_element(self, index: tuple[int, ...], root: str = "params") -> str:
        """Spell one element as the user would index it, e.g. ``params["W1"][3, 4]``."""
        return spell(self.describe(root), index)

    def index_of(self, flat_index: int) -> tuple[int, ...]:
        """Turn a flat (C-order) index inside this leaf into an index into its shape."""
        return tuple(int(i) for i in np.unravel_index(flat_index, self.shape)) if self.shape else ()


@dataclass(frozen=True, slots=True)
class FlatParams:
    """The parameters as named leaves laid end to end in one virtual float vector theta."""

    leaves: tuple[Leaf, ...]
    spec: optree.PyTreeSpec = field(repr=False)
    size: int
    held: tuple[tuple[str, str], ...] = ()
    """(name, dtype) of arrays in the tree that are not floating point and are held fixed
    (a layer's indices or labels), never perturbed nor checked."""

    def __iter__(self) -> Iterator[Leaf]:
        return iter(self.leaves)

    @property
    def names(self) -> tuple[str, ...]:
        """Leaf names in the user's order."""
        return tuple(leaf.name for leaf in self.leaves)

    def vector(self) -> NDArray[np.float64]:
        """Return a new float64 copy of theta (the concatenated parameters)."""
        out = np.empty(self.size, dtype=np.float64)
        for leaf in self.leaves:
            out[leaf.offset : leaf.offset + leaf.size] = leaf.array.reshape(-1)
        return out

    def leaf_at(self, i: int) -> Leaf:
        """Return the leaf that holds coordinate ``i`` of theta."""
        if not 0 <= i < self.size:
            raise IndexError(f"coordinate {i} is outside theta, which has {self.size} elements")
        offsets = [leaf.offset for leaf in self.leaves if leaf.size]
        sized = [leaf for leaf in self.leaves if leaf.size]
        return sized[int(np.searchsorted(offsets, i, side="right")) - 1]

    def locate(self, i: int) -> tuple[str, tuple[int, ...]]:
        """Name the parameter and element of coordinate ``i``: ``locate(17) == ("W1", (3, 4))``."""
        leaf = self.leaf_at(i)
        return leaf.name, leaf.index_of(i - leaf.offset)

    def unflatten(self, leaves: Sequence[object]) -> ParamTree:
        """Rebuild a tree with the user's structure around new leaves (one per parameter)."""
        return optree.tree_unflatten(self.spec, list(leaves))


def tree_arrays(params: ParamTree) -> list[Any]:
    """The leaves of a parameter tree in gradcheck's order, unvalidated."""
    with optree.dict_insertion_ordered(True, namespace=NAMESPACE):
        return optree.tree_leaves(params, none_is_leaf=True, namespace=NAMESPACE)


def copy_arrays(params: ParamTree) -> ParamTree:
    """The same tree around copies of its arrays (a thread's private theta)."""
    with optree.dict_insertion_ordered(True, namespace=NAMESPACE):
        leaves, spec = optree.tree_flatten(params, none_is_leaf=True, namespace=NAMESPACE)
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in leaves]
    return optree.tree_unflatten(spec, copies)


def flatten(params: ParamTree, *, hold_integers: bool = False) -> FlatParams:
    """Flatten a parameter tree into named leaves, rejecting anything a check cannot perturb.

    Args:
        params: the tree.
        hold_integers: keep integer and boolean arrays (a layer's indices, labels) in the
            tree, unperturbed and unchecked, instead of rejecting them.

    Raises:
        ParamTreeError: params is empty, a leaf is not a writeable finite float array,
            or two leaves share memory.
    """
    with optree.dict_insertion_ordered(True, namespace=NAMESPACE):
        arrays, spec = optree.tree_flatten(params, none_is_leaf=True, namespace=NAMESPACE)
        accessors = optree.tree_accessors(params, none_is_leaf=True, namespace=NAMESPACE)
    if not arrays:
        raise ParamTreeError(
            f"params is an empty {type(params).__name__}: there is nothing to check. "
            "Pass a float array, or a dict / list / tuple of float arrays."
        )
    leaves: list[Leaf] = []
    held: list[tuple[str, str]] = []
    offset = 0
    names = unique_names(accessors)
    for array, accessor, name in zip(arrays, accessors, names, strict=True):
        path = path_text(accessor)
        if hold_integers and isinstance(array, np.ndarray) and array.dtype.kind in "iub":
            held.append((name, str(array.dtype)))
            continue
        _validate_array(array, f"params{path}")
        size = math.prod(array.shape)
        leaves.append(
            Leaf(
                name=name,
                path=path,
                shape=tuple(array.shape),
                dtype=array.dtype,
                offset=offset,
                size=size,
                array=array,
                accessor=accessor,
            )
        )
        offset += size
    if offset == 0:
        what = "floating-point array" if held else "array"
        raise ParamTreeError(
            f"every {what} in params has zero elements: there is nothing to check."
        )
    _reject_shared_memory(leaves)
    return FlatParams(leaves=tuple(leaves), spec=spec, size=offset, held=tuple(held))


def _validate_array(array: object, where: str) -> None:
    if not isinstance(array, np.ndarray):
        kind = "None" if array is None else f"{a_type(array)}"
        hint = framework_hint(array) or (
            f" Wrap it as np.array({array!r}, dtype=float) so it can be perturbed in place."
            if isinstance(array, float | int)
            else " Every parameter must be a NumPy float array."
        )
        raise ParamTreeError(f"{where} is {kind}, not a NumPy array.{hint}")
    if type(array) is not np.ndarray and not isinstance(array, np.memmap):
        raise ParamTreeError(
            f"{where} is a {type(array).__module__}.{type(array).__name__}, an ndarray "
            "subclass whose indexing or arithmetic differs from a plain array's (a mask, "
            "matrix products, units), so perturbing and restoring it is not safe. Pass "
            f"np.asarray({where}) (a plain view of the same memory) and make the cost work "
            "on plain arrays."
        )
    if array.dtype.kind != "f":
        hint = (
            "complex parameters are not supported"
            if array.dtype.kind == "c"
            else f"pass it as {where}.astype(np.float64)"
        )
        raise ParamTreeError(
            f"{where} has dtype {array.dtype}; gradient checks need floating-point arrays: {hint}."
        )
    if not array.flags.writeable:
        raise ParamTreeError(
            f"{where} is read-only; gradcheck perturbs parameters in place and restores them. "
            f"Pass a writeable array, e.g. {where}.copy()."
        )
    if array.size and not np.isfinite(array).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        value = array[bad] if bad else array[()]
        raise ParamTreeError(
            f"{where} holds {value} at {bad}; a gradient check needs finite parameters."
        )


def _reject_shared_memory(leaves: list[Leaf]) -> None:
    for i, first in enumerate(leaves):
        for second in leaves[i + 1 :]:
            if np.may_share_memory(first.array, second.array) and np.shares_memory(
                first.array, second.array, max_work=-1
            ):
                raise ParamTreeError(
                    f"{first.describe()} and {second.describe()} share memory (one is a view "
                    "of the other, or the same array appears twice). Perturbing one would "
                    "move both. Pass each parameter once, as its own array."
                )


def framework_hint(value: object) -> str:
    hint = hint_for(value)
    return f" {hint}" if hint else ""
