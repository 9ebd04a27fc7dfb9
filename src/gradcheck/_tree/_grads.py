"""Match grads to the parameter leaves: the structure walk, dW1 for W1, and what is wrong.

The analytic gradient arrives with params' structure (or already concatenated); each
leaf's gradient is found along the leaf's path (`flatten_grads`), or left out where a
layer's backward returns none for it (`select_present`). A mismatch is a `ParamTreeError`
naming the place in grads, what params has there, and what to pass instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import optree
from numpy.typing import NDArray

from .._errors import ParamTreeError
from .._text import a_type
from ._flat import FlatParams, Leaf, framework_hint


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
                f"{leaf.describe()}: an array of shape {leaf.shape}." + framework_hint(grad)
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
