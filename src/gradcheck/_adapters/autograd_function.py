"""HIPS autograd adapter: a function of a pytree of NumPy arrays, custom ``defvjp`` rules.

1. The floating leaves of the params tree (dicts, lists, tuples, nested; NumPy arrays
   and Python floats) are copied, float64 by default, in the order gradcheck keeps
   everywhere (dict insertion order); other leaves are passed through unchanged. The
   user's arrays are never written: the engine perturbs the copies.
2. The cost is the projection of the floating outputs on fixed random upstreams and
   the analytic side is ``autograd.grad`` of it (`pytree_function.PytreeFunction`), so the
   ``autograd.extend.defvjp`` rules of ``fn``'s primitives are what gets checked.
3. Autograd has no vectorizing map: costs are evaluated one point at a time.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import optree
from numpy.typing import DTypeLike, NDArray

from .._tree import unique_names
from .pytree_function import PytreeFunction

_NAMESPACE = "gradcheck"


class FunctionCheck(PytreeFunction[Any]):
    """An autograd function check prepared for the core.

    Args:
        fn: ``fn(params)`` returns a scalar, an array, or a pytree of arrays.
        params: a pytree of NumPy arrays and Python floats.
        dtype: the floating dtype of the check (float64 by default), or None to keep
            each leaf's own.
        seed: seeds the upstreams of the outputs.
    """

    def __init__(
        self, fn: Callable[[Any], Any], params: Any, dtype: DTypeLike | None, seed: int
    ) -> None:
        with optree.dict_insertion_ordered(True, namespace=_NAMESPACE):
            leaves, self._spec = optree.tree_flatten(params, namespace=_NAMESPACE)
            accessors = optree.tree_accessors(params, namespace=_NAMESPACE)
        self.take_floating(fn, params, leaves, accessors, unique_names, dtype)
        self.prepare(seed)

    def rebuild(self, leaves: list[Any]) -> Any:
        """The params tree around new leaves."""
        return optree.tree_unflatten(self._spec, leaves)

    def leaves(self, output: Any) -> list[Any]:
        """The output tree's leaves (autograd's boxes while it traces)."""
        with optree.dict_insertion_ordered(True, namespace=_NAMESPACE):
            return optree.tree_leaves(output, namespace=_NAMESPACE)

    def is_floating(self, leaf: Any) -> bool:
        """A floating NumPy array or scalar, or a Python float (not an int or a bool)."""
        if isinstance(leaf, float):
            return True
        return isinstance(leaf, np.ndarray | np.generic) and leaf.dtype.kind == "f"

    def cotangent(self, draw: NDArray[np.float64], output: Any) -> NDArray[Any]:
        """The draw in the output's dtype."""
        return np.asarray(draw, dtype=self.dtype_of(output))

    def dtype_of(self, output: Any) -> np.dtype[Any]:
        """The output's dtype."""
        return np.result_type(output)

    def vdot(self, output: Any, dout: Any) -> Any:
        """``sum(output * dout)`` in the output's precision, traceable by autograd."""
        return anp.sum(output * dout)

    def vjp(self, values: Sequence[Any]) -> Sequence[Any]:
        """``autograd.grad`` of the projection: fn's ``defvjp`` rules get ``dout``."""
        with warnings.catch_warnings():
            # A projection that does not depend on the params has a zero gradient,
            # which is what autograd returns after this warning.
            warnings.filterwarnings("ignore", "Output seems independent of input")
            grads: list[Any] = autograd.grad(self.projected)(list(values))
        return grads
