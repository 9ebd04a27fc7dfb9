"""Parameter trees: flatten params into named leaves with offsets, and match grads to them.

A check works on one virtual vector theta of n coordinates, the concatenation of
every parameter array in the order the user wrote them (dict insertion order,
list order). Each array is a `Leaf` with a stable dotted name (``"W1"``,
``"layers.0.weight"``, ``"0"``) and the offset of its first element in theta.
Nothing is copied here except where asked (`FlatParams.vector`): the engine
perturbs the user's own arrays in place through the leaves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optree
from numpy.typing import NDArray

from ._errors import ParamTreeError
from ._frameworks import hint_for
from ._text import a_type

ParamTree = Any
"""A NumPy float array, or a dict / list / tuple (nested) of them; narrowed by `flatten`."""

ROOT_NAME = "theta"
"""Name of the parameter when params is a single array rather than a container."""

_NAMESPACE = "gradcheck"


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
    with optree.dict_insertion_ordered(True, namespace=_NAMESPACE):
        return optree.tree_leaves(params, none_is_leaf=True, namespace=_NAMESPACE)


def copy_arrays(params: ParamTree) -> ParamTree:
    """The same tree around copies of its arrays (a thread's private theta)."""
    with optree.dict_insertion_ordered(True, namespace=_NAMESPACE):
        leaves, spec = optree.tree_flatten(params, none_is_leaf=True, namespace=_NAMESPACE)
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in leaves]
    return optree.tree_unflatten(spec, copies)


def spell(name: str, index: tuple[int, ...]) -> str:
    """``name[3, 4]``, or just ``name`` for the element of a 0-d array."""
    return f"{name}[{', '.join(map(str, index))}]" if index else name


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
    with optree.dict_insertion_ordered(True, namespace=_NAMESPACE):
        arrays, spec = optree.tree_flatten(params, none_is_leaf=True, namespace=_NAMESPACE)
        accessors = optree.tree_accessors(params, none_is_leaf=True, namespace=_NAMESPACE)
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
        path = _path_text(accessor)
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


def flatten_grads(grads: object, flat: FlatParams) -> NDArray[np.float64]:
    """Match grads to the parameter leaves and return them as one float64 vector.

    grads has params' structure; for a dict, the textbook key ``"dW1"`` is accepted
    for ``"W1"`` (extra keys such as ``"dZ1"`` are ignored). A 1-D array of n
    elements is taken as the already concatenated gradient.

    Raises:
        ParamTreeError: a gradient is missing, not numeric, or has the wrong shape.
    """
    out = np.empty(flat.size, dtype=np.float64)
    if isinstance(grads, np.ndarray) and _is_concatenated(grads, flat):
        _store(out, grads.reshape(-1), "grads", flat.leaves[0] if len(flat.leaves) == 1 else None)
        return out
    if isinstance(grads, np.ndarray) and grads.ndim == 1 and flat.leaves[0].path:
        raise ParamTreeError(
            f"grads is a 1-D array of {grads.size:,} elements, but params holds "
            f"{flat.size:,} coordinates in {len(flat.leaves)} arrays: pass the concatenated "
            f"gradient ({flat.size:,} elements, in the order {', '.join(flat.names[:6])}"
            f"{', ...' if len(flat.leaves) > 6 else ''}) or grads with the structure of params."
        )
    for leaf in flat.leaves:
        grad, where = _find_grad(grads, leaf, flat.spec)
        if not isinstance(grad, np.ndarray | np.generic | float | int):
            raise ParamTreeError(
                f"{where} is {a_type(grad)}, but it should be the gradient of "
                f"{leaf.describe()}: an array of shape {leaf.shape}." + _framework_hint(grad)
            )
        grad = np.asarray(grad)
        if grad.shape != leaf.shape:
            raise ParamTreeError(_shape_message(where, grad.shape, leaf))
        _store(out[leaf.offset : leaf.offset + leaf.size], grad.reshape(-1), where, leaf)
    return out


def select_present(grads: object, flat: FlatParams) -> FlatParams:
    """Keep the leaves that ``grads`` has a gradient for (missing key or None: left out).

    For layer checks, where backward returns gradients for a subset of the inputs.

    Raises:
        ParamTreeError: grads holds no gradient for any leaf.
    """
    kept = []
    for leaf in flat.leaves:
        try:
            grad, _ = _find_grad(grads, leaf, flat.spec)
        except ParamTreeError:
            continue
        if grad is not None:
            kept.append(leaf)
    if not kept:
        raise ParamTreeError(
            f"backward returned {type(grads).__name__} with no gradient for any input "
            f"({', '.join(flat.names)}); return gradients with the structure of the inputs, "
            "with None (or a missing key) for inputs it does not differentiate."
        )
    leaves, offset = [], 0
    for leaf in kept:
        leaves.append(replace(leaf, offset=offset))
        offset += leaf.size
    return FlatParams(leaves=tuple(leaves), spec=flat.spec, size=offset, held=flat.held)


def _is_concatenated(grads: NDArray[Any], flat: FlatParams) -> bool:
    single = len(flat.leaves) == 1 and flat.leaves[0].path == ""
    if single:
        return grads.size == flat.size and grads.shape != flat.leaves[0].shape
    return grads.size == flat.size and (grads.ndim == 1 or grads.shape == (flat.size, 1))


def _store(out: NDArray[np.float64], values: NDArray[Any], where: str, leaf: Leaf | None) -> None:
    if values.dtype.kind not in "fiu":
        what = f"the gradient of {leaf.describe()}" if leaf else "the gradient"
        raise ParamTreeError(
            f"{where} has dtype {values.dtype}, but {what} must be real numbers (a float array)."
        )
    out[...] = values


def _find_grad(grads: object, leaf: Leaf, spec: optree.PyTreeSpec) -> tuple[object, str]:
    """Walk grads along the leaf's path; accept "dW1" for "W1" in mappings."""
    node = grads
    where = "grads"
    for entry in leaf.accessor:
        if isinstance(entry, optree.MappingEntry):
            if not isinstance(node, Mapping):
                raise _structure_error(where, node, leaf, "a dict")
            key = entry.entry
            alias = "d" + key if isinstance(key, str) else None
            if (
                key in node
                and alias in node
                and alias not in spec.entries()
                and node[key] is not node[alias]
            ):
                raise ParamTreeError(
                    f'{where} has both "{key}" and "{alias}": which one is the gradient of '
                    f"{leaf.describe()} is ambiguous. Keep one of them (or pass grads with "
                    "exactly the keys of params)."
                )
            if key in node:
                chosen = key
            elif isinstance(key, str) and "d" + key in node:
                chosen = "d" + key
            else:
                raise ParamTreeError(_missing_key_message(where, key, node, leaf))
            node = node[chosen]
            where += f'["{chosen}"]' if isinstance(chosen, str) else f"[{chosen!r}]"
        elif isinstance(entry, optree.SequenceEntry | optree.NamedTupleEntry):
            if not isinstance(node, Sequence) or isinstance(node, str):
                raise _structure_error(where, node, leaf, "a list or tuple")
            if len(node) != spec.num_children:
                raise ParamTreeError(
                    f"{where} has {len(node)} entries but the matching part of params has "
                    f"{spec.num_children}; pass one gradient per parameter, in the same order."
                )
            node = node[int(entry.entry)]
            where += f"[{entry.entry}]"
        else:
            try:
                node = entry(node)
            except Exception as exc:
                raise _structure_error(where, node, leaf, f"a {entry.type.__name__}") from exc
            where += entry.codify("")
        spec = spec.child(list(spec.entries()).index(entry.entry))
    return node, where


def _structure_error(where: str, node: object, leaf: Leaf, expected: str) -> ParamTreeError:
    return ParamTreeError(
        f"{where} is {a_type(node)}, but params has {expected} there (on the way to "
        f"{leaf.describe()}); grads must have the same structure as params."
    )


def _missing_key_message(where: str, key: object, node: Mapping[Any, Any], leaf: Leaf) -> str:
    tried = (
        f'{where}["{key}"] or {where}["d{key}"]' if isinstance(key, str) else f"{where}[{key!r}]"
    )
    keys = ", ".join(f'"{k}"' if isinstance(k, str) else repr(k) for k in list(node)[:12])
    return (
        f"grads has no gradient for {leaf.describe()}: looked for {tried}. "
        f"The keys there are: {keys or 'none'}."
    )


def _shape_message(where: str, shape: tuple[int, ...], leaf: Leaf) -> str:
    message = f"{where} has shape {shape} but {leaf.describe()} has shape {leaf.shape}; "
    if len(shape) == 2 and shape == leaf.shape[::-1]:
        message += "a transposed gradient? "
    elif math.prod(shape) == leaf.size:
        message += "same number of elements, different layout; "
    return message + "pass grads with the same shapes as params."


def _validate_array(array: object, where: str) -> None:
    if not isinstance(array, np.ndarray):
        kind = "None" if array is None else f"{a_type(array)}"
        hint = _framework_hint(array) or (
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


def _framework_hint(value: object) -> str:
    hint = hint_for(value)
    return f" {hint}" if hint else ""


def _path_text(accessor: optree.PyTreeAccessor, key: Callable[[object], str] | None = None) -> str:
    """The path as Python indexes it: ``["layers"][0]``; ``key`` spells dict keys."""
    spell_key = key or _key_text
    parts = []
    for entry in accessor:
        if isinstance(entry, optree.MappingEntry):
            parts.append(f"[{spell_key(entry.entry)}]")
        elif isinstance(entry, optree.SequenceEntry):
            parts.append(f"[{entry.entry}]")
        else:
            parts.append(entry.codify(""))
    return "".join(parts)


def _key_text(key: object) -> str:
    """A dict key as Python spells it: ``"W1"`` in double quotes where that is exact."""
    if isinstance(key, str) and key.isprintable() and '"' not in key and "\\" not in key:
        return f'"{key}"'
    return repr(key)


def unique_names(accessors: Sequence[optree.PyTreeAccessor]) -> list[str]:
    """One printable name per leaf, never two alike.

    The dotted name (``"layers.0.weight"``) where it is unambiguous; where two leaves would
    print the same (keys ``1`` and ``"1"``, ``"a.b"`` and ``{"a": {"b": ...}}``) or a key is
    empty or unprintable, the Python path with each key's repr (``[1]``, ``['1']``), which
    tells any two keys apart.
    """
    dotted = [_dotted_name(accessor) for accessor in accessors]
    counts: dict[str, int] = {}
    for name in dotted:
        counts[name] = counts.get(name, 0) + 1
    names = [
        name if counts[name] == 1 and _plain(accessor) else _repr_path(accessor)
        for name, accessor in zip(dotted, accessors, strict=True)
    ]
    seen: dict[str, int] = {}
    out = []
    for name in names:  # two different keys with the same repr (custom key types)
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def _plain(accessor: optree.PyTreeAccessor) -> bool:
    """Every key prints as itself: non-empty and printable."""
    for entry in accessor:
        if isinstance(entry, optree.MappingEntry):
            key = entry.entry
            text = str(key)
            if not text or not text.isprintable():
                return False
    return True


def _repr_path(accessor: optree.PyTreeAccessor) -> str:
    return _path_text(accessor, repr) if len(accessor) else ROOT_NAME


def _dotted_name(accessor: optree.PyTreeAccessor) -> str:
    if not len(accessor):
        return ROOT_NAME
    parts = []
    for entry in accessor:
        if isinstance(entry, optree.NamedTupleEntry):
            parts.append(str(entry.field))
        elif isinstance(entry, optree.GetAttrEntry):
            parts.append(str(entry.name))
        else:
            parts.append(str(entry.entry))
    return ".".join(parts)
