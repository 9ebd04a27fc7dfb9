"""Functions of a pytree of host arrays (JAX, autograd): what their two adapters share.

Both frameworks differentiate NumPy arrays as they are, so a check of ``fn(params)``
copies the floating leaves of ``params`` into host arrays the engine perturbs in place,
holds the other leaves fixed, and rebuilds the tree around new leaf values for every
call (`PytreeFunction`). The public entry points (`gradcheck.jax.check_function`,
`gradcheck.autograd.check_function`) share one body too (`check_pytree_function`).
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._errors import InvalidArgumentError
from .._options import require_callable
from .._results import Report
from .._scalar import at_base
from .bridge import HostArrays, framework_options, require_float_dtype, run_check
from .vjp import FunctionAdapter

A = TypeVar("A")
"""The framework's array type."""

_MSG_NOTHING_FLOATING = (
    "params ({kind}) holds no floating-point array: there is nothing to check. Pass the "
    "arrays to differentiate, e.g. {{'w': w}}."
)


class PytreeFunction(FunctionAdapter[A]):
    """A function of a pytree whose floating leaves are checked; other leaves are held.

    A subclass flattens ``params`` with its framework's tree functions, calls
    `take_floating` and then `prepare`, and supplies `rebuild` and `is_floating` besides
    the other primitives of `FunctionAdapter`.
    """

    def take_floating(
        self,
        fn: Callable[[Any], Any],
        params: Any,
        leaves: Sequence[Any],
        paths: Sequence[Any],
        name: Callable[[list[Any]], list[str]],
        dtype: DTypeLike | None,
    ) -> None:
        """Copy the floating leaves into host arrays; keep the others to pass through.

        Args:
            fn: the function checked.
            params: the pytree (for the message when nothing in it is floating).
            leaves: its leaves, in the framework's order.
            paths: each leaf's path in the framework's terms.
            name: one unique name per path, for the paths of the floating leaves.
            dtype: the floating dtype of the copies (None: each leaf's own).

        Raises:
            InvalidArgumentError: no leaf is floating.
        """
        self._fn = fn
        self._fixed = list(leaves)
        self._positions = [i for i, leaf in enumerate(self._fixed) if self.is_floating(leaf)]
        if not self._positions:
            raise InvalidArgumentError(_MSG_NOTHING_FLOATING.format(kind=type(params).__name__))
        self.names = name([paths[i] for i in self._positions])
        self.params: HostArrays = {
            name: np.array(self._fixed[i], dtype=dtype, copy=True)
            for name, i in zip(self.names, self._positions, strict=True)
        }

    def call(self, values: Sequence[Any]) -> Any:
        """Fn of the params tree with the floating leaves at ``values``."""
        leaves = list(self._fixed)
        for position, value in zip(self._positions, values, strict=True):
            leaves[position] = value
        return self._fn(self.rebuild(leaves))

    def from_host(self, index: int, array: NDArray[Any]) -> Any:
        """The host array itself: both frameworks take NumPy arrays as they are."""
        return array

    def to_host(self, value: Any) -> NDArray[Any]:
        """A value as a NumPy array."""
        return np.asarray(value)

    def precision(self) -> contextlib.AbstractContextManager[Any]:
        """Held around a whole check (JAX: its float64 switch); nothing by default."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def rebuild(self, leaves: list[Any]) -> Any:
        """The params tree's structure around new leaves (in the order it was flattened)."""


def check_pytree_function(
    framework: str,
    build: Callable[[Callable[[Any], Any], Any, DTypeLike | None, int], PytreeFunction[Any]],
    fn: Callable[[Any], Any],
    params: Any,
    dtype: DTypeLike | None,
    options: Mapping[str, Any],
) -> Report:
    """Validate, prepare the check at the given point, and run it: a public entry's body.

    Args:
        framework: the framework's name in messages (``"jax"``, ``"autograd"``).
        build: ``build(fn, params, dtype, seed)``, the framework's `PytreeFunction`.
        fn: the user's function.
        params: the user's pytree.
        dtype: the floating dtype of the check (None: each leaf's own).
        options: the options of `gradcheck.check`.
    """
    started = time.perf_counter()
    require_callable(fn, "fn")
    validated = framework_options(options, framework, complex_ok=True)
    require_float_dtype(dtype)
    check = at_base(lambda: build(fn, params, dtype, validated.seed), "fn")
    with check.precision():
        return run_check(check, validated, started)
