"""JAX adapter: a function of a pytree of arrays, checked leaf by leaf in float64.

1. The floating leaves are copied into writable NumPy arrays (float64 by default)
   that the engine perturbs in place; other leaves (integers, booleans) are passed
   through unchanged. JAX arrays are immutable, so the user's pytree cannot change.
2. The cost is ``fn`` itself for a scalar output, else the projection
   ``sum_i sum(out_i * cot_i)`` of every floating output on a fixed random
   cotangent. It is compiled with ``jax.jit`` where ``fn`` can be traced.
3. The analytic side is ``jax.grad`` (scalar output) or ``jax.vjp`` with the same
   cotangents, so ``custom_vjp`` and ``custom_jvp`` rules are what gets checked.
4. float64 is switched on with the ``jax.enable_x64`` context around each call into
   JAX, never globally: the user's configuration is what it was afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._errors import CostFunctionError, InvalidArgumentError
from .._tree import ROOT_NAME
from ._bridge import Adapter, BatchedCost, HostArrays, upstream

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


class FunctionCheck(Adapter):
    """A JAX function check prepared for the core.

    Args:
        fn: ``fn(params)`` returns a scalar, an array, or a pytree of arrays.
        params: a pytree of arrays (JAX or NumPy) and Python floats.
        dtype: the floating dtype of the check (float64 by default), or None to
            keep each leaf's own.
        seed: seeds the cotangents of array outputs.
    """

    def __init__(
        self, fn: Callable[[Any], Any], params: Any, dtype: DTypeLike | None, seed: int
    ) -> None:
        self._fn = fn
        self._x64 = dtype is not None and np.dtype(dtype) == np.float64
        with self.precision():
            with_paths, self._treedef = jax.tree_util.tree_flatten_with_path(params)
            self._fixed = [leaf for _, leaf in with_paths]
            self._positions = [i for i, (_, leaf) in enumerate(with_paths) if _is_floating(leaf)]
            if not self._positions:
                raise InvalidArgumentError(
                    f"params ({type(params).__name__}) holds no floating-point array: there "
                    "is nothing to check. Pass the arrays to differentiate, e.g. {'w': w}."
                )
            self.names = _unique_names([with_paths[i][0] for i in self._positions])
            self.params: HostArrays = {
                name: np.array(self._fixed[i], dtype=dtype, copy=True)
                for name, i in zip(self.names, self._positions, strict=True)
            }
            self._out_count = 0
            self._out_positions: list[int] = []
            self._scalar, self._cotangents = self._output_structure(seed)
            self._cost = self._compiled()
            self.grads = self._gradient()
            self.cost_dtype = np.dtype(jnp.result_type(*self._cotangent_dtypes()))

    @contextlib.contextmanager
    def precision(self) -> Iterator[None]:
        """Switch float64 on for the duration of a call into JAX, where the check needs it."""
        if self._x64:
            with _enable_x64():
                yield
        else:
            yield

    def evaluate_point(self, tree: Mapping[str, NDArray[Any]]) -> Any:
        """The cost with the checked leaves set to ``tree`` (params, or complex copies)."""
        with self.precision():
            return np.asarray(self._cost([tree[name] for name in self.names]))

    def gradient(self) -> HostArrays:
        """The analytic gradient at the current point, by leaf name."""
        with self.precision():
            return self._gradient()

    def vectorize(self) -> BatchedCost:
        """A ``jit(vmap(cost))`` of many values of one leaf, compiled once per leaf."""
        compiled: dict[int, Callable[..., Any]] = {}

        def cost(leaf_index: int, stack: NDArray[Any]) -> NDArray[np.float64]:
            with self.precision():
                vectorized = compiled.get(leaf_index)
                if vectorized is None:

                    def one(value: jax.Array, rest: list[jax.Array]) -> jax.Array:
                        values = list(rest)
                        values[leaf_index] = value
                        return self._projected(values)

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

    def _call(self, values: Sequence[Any]) -> Any:
        leaves = list(self._fixed)
        for position, value in zip(self._positions, values, strict=True):
            leaves[position] = value
        return self._fn(jax.tree_util.tree_unflatten(self._treedef, leaves))

    def _floating_outputs(self, values: Sequence[Any]) -> list[jax.Array]:
        """The outputs that were floating at the given params (complex under the complex step)."""
        leaves = jax.tree_util.tree_leaves(self._call(values))
        if len(leaves) != self._out_count:
            raise CostFunctionError(
                f"fn returned {len(leaves)} arrays here but {self._out_count} at the given "
                "params; it must return the same outputs for nearby params."
            )
        return [jnp.asarray(leaves[i]) for i in self._out_positions]

    def _output_structure(self, seed: int) -> tuple[bool, list[jax.Array]]:
        """Whether fn returns one scalar, and a fixed random cotangent per floating output."""
        leaves = jax.tree_util.tree_leaves(self._call(list(self.params.values())))
        self._out_count = len(leaves)
        self._out_positions = [i for i, leaf in enumerate(leaves) if _is_floating(leaf)]
        outputs = [jnp.asarray(leaves[i]) for i in self._out_positions]
        if not outputs:
            raise CostFunctionError(
                "fn returned no floating-point array: a gradient check needs an output to "
                "differentiate (a scalar loss, or arrays)."
            )
        if len(leaves) == 1 and outputs[0].shape == ():
            return True, [jnp.ones((), dtype=outputs[0].dtype)]
        draws = upstream(seed, [tuple(o.shape) for o in outputs])
        return False, [jnp.asarray(d, dtype=o.dtype) for d, o in zip(draws, outputs, strict=True)]

    def _cotangent_dtypes(self) -> list[np.dtype[Any]]:
        return [np.dtype(c.dtype) for c in self._cotangents]

    def _projected(self, values: Sequence[Any]) -> jax.Array:
        outputs = self._floating_outputs(values)
        if self._scalar:
            return outputs[0]
        total = jnp.zeros((), dtype=jnp.result_type(*self._cotangent_dtypes()))
        for out, cotangent in zip(outputs, self._cotangents, strict=True):
            total = total + jnp.sum(out * cotangent)
        return total

    def _compiled(self) -> Callable[[Sequence[Any]], Any]:
        jitted = jax.jit(self._projected)
        try:
            jitted(list(self.params.values()))
        except _NOT_TRACEABLE:
            return self._projected
        return jitted

    def _gradient(self) -> HostArrays:
        values = [jnp.asarray(a) for a in self.params.values()]
        if self._scalar:
            grads = jax.grad(lambda v: self._floating_outputs(v)[0])(values)
        else:
            _, pullback = jax.vjp(self._floating_outputs, values)
            (grads,) = pullback(self._cotangents)
        return {name: np.asarray(g, dtype=np.float64)
                for name, g in zip(self.names, grads, strict=True)}  # fmt: skip


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


def _is_floating(leaf: Any) -> bool:
    return bool(jnp.issubdtype(jnp.result_type(leaf), jnp.floating))


def _unique_names(paths: Sequence[Sequence[Any]]) -> list[str]:
    """Dotted names, falling back to JAX's ``keystr`` where two would collide."""
    names = [leaf_name(path) for path in paths]
    return [
        name if names.count(name) == 1 else jax.tree_util.keystr(tuple(path))
        for name, path in zip(names, paths, strict=True)
    ]
