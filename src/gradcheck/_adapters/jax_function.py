"""JAX adapter: a function of a pytree of arrays, checked leaf by leaf in float64.

1. The floating leaves are copied into writable NumPy arrays (float64 by default)
   that the engine perturbs in place; other leaves (integers, booleans) are passed
   through unchanged. JAX arrays are immutable, so the user's pytree cannot change.
2. The cost is the projection ``sum_i sum(out_i * cot_i)`` of every floating output
   (a scalar one too) on a fixed random cotangent (`vjp.FunctionAdapter`, through
   `pytree_function.PytreeFunction`). It is
   compiled with ``jax.jit`` where ``fn`` can be traced.
3. The analytic side is ``jax.grad`` of the projection, which hands each output's
   cotangent to fn's ``custom_vjp`` and ``custom_jvp`` rules: they are what gets checked.
4. float64 is switched on with the ``jax.enable_x64`` context around each call into
   JAX, never globally: the user's configuration is what it was afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._tree import ROOT_NAME
from .bridge import BatchedCost
from .pytree_function import PytreeFunction

_NOT_TRACEABLE = (
    jax.errors.ConcretizationTypeError,
    jax.errors.NonConcreteBooleanIndexError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)
"""What ``jax.jit`` raises for Python control flow on values: evaluate without jit then."""


def leaf_name(path: Sequence[Any]) -> str:
    """A pytree key path in gradcheck's dotted style: ``"w"``, ``"layers.0.b"``."""
    if not path:
        return ROOT_NAME
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            parts.append(str(key.key))
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
        elif isinstance(key, jax.tree_util.GetAttrKey):
            parts.append(key.name)
        elif isinstance(key, jax.tree_util.FlattenedIndexKey):
            parts.append(str(key.key))
        else:
            parts.append(str(key).strip(".[]'\""))
    return ".".join(parts)


class FunctionCheck(PytreeFunction[Any]):
    """A JAX function check prepared for the core.

    Args:
        fn: ``fn(params)`` returns a scalar, an array, or a pytree of arrays.
        params: a pytree of arrays (JAX or NumPy) and Python floats.
        dtype: the floating dtype of the check (float64 by default), or None to
            keep each leaf's own.
        seed: seeds the cotangents of the outputs.
    """

    def __init__(
        self, fn: Callable[[Any], Any], params: Any, dtype: DTypeLike | None, seed: int
    ) -> None:
        self._x64 = dtype is not None and np.dtype(dtype) == np.float64
        with self.context():
            with_paths, self._treedef = jax.tree_util.tree_flatten_with_path(params)
            paths = [path for path, _ in with_paths]
            leaves = [leaf for _, leaf in with_paths]
            self.take_floating(fn, params, leaves, paths, _unique_names, dtype)
        self.prepare(seed)

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """Switch float64 on for the duration of a call into JAX, where the check needs it."""
        return _enable_x64() if self._x64 else contextlib.nullcontext()

    def precision(self) -> contextlib.AbstractContextManager[Any]:
        """The float64 switch of `context`, for `gradcheck.jax` to hold around a whole check."""
        return self.context()

    def vectorize(self) -> BatchedCost:
        """A ``jit(vmap(cost))`` of many values of one leaf, compiled once per leaf."""
        compiled: dict[int, Callable[..., Any]] = {}

        def cost(leaf_index: int, stack: NDArray[Any]) -> NDArray[np.float64]:
            with self.precision():
                vectorized = compiled.get(leaf_index)
                if vectorized is None:
                    one = self.with_leaf(leaf_index)
                    vectorized = compiled[leaf_index] = jax.jit(jax.vmap(one, in_axes=(0, None)))
                # Pad B to a power of two: jit compiles once per shape, and the engine's
                # batches come in many sizes (calibration, the last batch of a leaf).
                count = len(stack)
                if not count:
                    return np.empty(0)
                padded = np.concatenate([stack, np.repeat(stack[:1], _bucket(count) - count, 0)])
                values = vectorized(padded, list(self.params.values()))
                return np.asarray(values, dtype=np.float64)[:count]

        return cost

    # --- the primitives of FunctionAdapter ------------------------------------------------

    def rebuild(self, leaves: list[Any]) -> Any:
        """The params pytree around new leaves."""
        return jax.tree_util.tree_unflatten(self._treedef, leaves)

    def leaves(self, output: Any) -> list[Any]:
        """The output pytree's leaves; floating ones as JAX arrays (a Python float too)."""
        return [jnp.asarray(leaf) if self.is_floating(leaf) else leaf
                for leaf in jax.tree_util.tree_leaves(output)]  # fmt: skip

    def is_floating(self, leaf: Any) -> bool:
        """Whether a leaf is a floating array or number."""
        return bool(jnp.issubdtype(jnp.result_type(leaf), jnp.floating))

    def cotangent(self, draw: NDArray[np.float64], output: Any) -> jax.Array:
        """The draw in the output's dtype."""
        return jnp.asarray(draw, dtype=output.dtype)

    def dtype_of(self, output: Any) -> np.dtype[Any]:
        """The output's dtype."""
        return np.dtype(jnp.result_type(output))

    def vdot(self, output: Any, dout: Any) -> Any:
        """``sum(output * dout)`` in the output's precision."""
        return jnp.sum(output * dout)

    def vjp(self, values: Sequence[Any]) -> Sequence[Any]:
        """``jax.grad`` of the projection: the custom rules get ``dout`` as their cotangent."""
        grads: list[jax.Array] = jax.grad(self.projected)([jnp.asarray(v) for v in values])
        return grads

    def compile(self) -> Callable[[Sequence[Any]], Any]:
        """``jax.jit`` of the projection, or the projection itself where fn cannot be traced."""
        jitted = jax.jit(self.projected)
        try:
            jitted(list(self.params.values()))
        except _NOT_TRACEABLE:
            return self.projected
        return jitted


def _enable_x64() -> contextlib.AbstractContextManager[Any]:
    """JAX's thread-local x64 switch: ``jax.enable_x64`` (JAX 0.8+), or its experimental form."""
    enable: Callable[[bool], contextlib.AbstractContextManager[Any]] | None
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # pragma: no cover - JAX before 0.8
        enable = importlib.import_module("jax.experimental").enable_x64
    assert enable is not None
    return enable(True)


def _bucket(count: int) -> int:
    """The smallest power of two >= count (at least 1)."""
    return 1 << max(0, count - 1).bit_length()


def _unique_names(paths: Sequence[Sequence[Any]]) -> list[str]:
    """Dotted names, falling back to JAX's ``keystr`` where two would collide."""
    names = [leaf_name(path) for path in paths]
    return [
        name if names.count(name) == 1 else jax.tree_util.keystr(tuple(path))
        for name, path in zip(names, paths, strict=True)
    ]
