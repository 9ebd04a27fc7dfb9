"""Functions checked through a vector-Jacobian product: the part every framework shares.

A framework function ``fn`` (of tensors, of a pytree of arrays) is reduced to one
scalar cost, the projection ``sum_i sum(out_i * dout_i)`` of its floating outputs on
fixed random upstream gradients, and its analytic gradient is the framework's
gradient of that projection, which runs the function's custom backward rules with
``dout`` as the incoming cotangent. `FunctionAdapter` owns:

1. Output collection: the output structure is flattened to its leaves; the floating
   ones at the given point are projected, and every later point must give the same
   number of leaves.
2. Upstream drawing: one Gaussian ``dout`` per floating output from `upstream` (the
   stream of `gradcheck.check_layer`), rounded to the output's dtype, so that the cost
   and the gradient use the same numbers.
3. One scalar-output rule: a scalar output is projected on a random Gaussian upstream
   too, never on 1. A custom rule that forgets its incoming cotangent (``3 * x**2``
   where ``g * 3 * x**2`` belongs) is right for a cotangent of 1 and wrong for any
   other, so only a random one catches it; ``jax.test_util.check_grads`` draws random
   cotangents for scalar outputs as well. The report then shows the gradient of
   ``dout * fn``, a fixed multiple of fn's gradient: differences, verdicts and
   findings are unchanged by the factor.
4. The cost of one point, the analytic gradient, and the cost of many values of one
   leaf, in terms of a few framework primitives.

A framework subclass sets ``names`` and ``params`` (the host arrays the engine
perturbs), calls `prepare`, and supplies only the primitives: `call` (fn at given
leaf values), `leaves` and `is_floating` (its output structure), `from_host` /
`to_host` / `cotangent` / `dtype_of` (conversions), `vdot` (one output's projection),
`vjp` (the gradient of `projected`) and, optionally, `vectorize` (through `with_leaf`).
"""

from __future__ import annotations

import abc
import contextlib
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from .._errors import CostFunctionError
from .bridge import Adapter, BatchedCost, HostArrays, upstream

A = TypeVar("A")
"""The framework's array type (``torch.Tensor``, ``jax.Array``, ``numpy.ndarray``)."""

_MSG_NO_OUTPUT = (
    "fn returned no floating-point {noun}: a gradient check needs an output to "
    "differentiate (a scalar loss or {noun}s, not integers or booleans)."
)
_MSG_OUTPUT_COUNT = (
    "fn returned {now} outputs here but {then} at the given {where}; it must return the "
    "same outputs for nearby {where}."
)


class FunctionAdapter(Adapter, Generic[A]):
    """A function of framework arrays, checked through its projection on fixed upstreams."""

    noun: ClassVar[str] = "array"
    """What the framework's arrays are called in messages ("tensor" for PyTorch)."""
    where: ClassVar[str] = "params"
    """What the checked values are called in messages ("inputs" for PyTorch)."""

    names: list[str]
    """The checked leaves' names, in the order of ``params`` and of `call`'s values."""
    douts: list[A]
    """One upstream gradient per floating output, in the output's dtype."""
    _out_count: int
    _out_positions: list[int]
    _cost: Callable[[Sequence[A]], A]

    def prepare(self, seed: int) -> None:
        """Collect the outputs at the given point, draw the upstreams, compute the gradient.

        Subclasses call it at the end of ``__init__``, once ``names`` and ``params`` are set.
        """
        with self.context():
            leaves = self.leaves(self.call(self.values(self.params)))
        self._out_count = len(leaves)
        self._out_positions = [i for i, leaf in enumerate(leaves) if self.is_floating(leaf)]
        outputs = [leaves[i] for i in self._out_positions]
        if not outputs:
            raise CostFunctionError(_MSG_NO_OUTPUT.format(noun=self.noun))
        draws = upstream(seed, [tuple(np.shape(out)) for out in outputs])
        with self.context():
            self.douts = [self.cotangent(d, o) for d, o in zip(draws, outputs, strict=True)]
            self._cost = self.compile()
        self.cost_dtype = np.result_type(*[self.dtype_of(out) for out in outputs])
        self.grads = self.gradient()

    # --- what every framework shares ---------------------------------------------------

    def values(self, tree: Mapping[str, NDArray[Any]]) -> list[A]:
        """The checked leaves' values in the framework, read from host arrays."""
        return [self.from_host(i, tree[name]) for i, name in enumerate(self.names)]

    def outputs(self, values: Sequence[A]) -> list[A]:
        """Fn's floating outputs at ``values`` (those that were floating at the given point)."""
        leaves = self.leaves(self.call(values))
        if len(leaves) != self._out_count:
            raise CostFunctionError(
                _MSG_OUTPUT_COUNT.format(now=len(leaves), then=self._out_count, where=self.where)
            )
        return [leaves[i] for i in self._out_positions]

    def projected(self, values: Sequence[A]) -> A:
        """The cost: ``sum_i sum(out_i * dout_i)`` over the floating outputs at ``values``."""
        outputs = self.outputs(values)
        parts = [self.vdot(out, dout) for out, dout in zip(outputs, self.douts, strict=True)]
        return functools.reduce(operator.add, parts)

    def with_leaf(self, leaf_index: int) -> Callable[[A, Sequence[A]], A]:
        """``one(value, rest)``: the cost with leaf ``leaf_index`` at ``value``, the others at rest.

        What a framework's `vectorize` maps over a stack of values.
        """

        def one(value: A, rest: Sequence[A]) -> A:
            values = list(rest)
            values[leaf_index] = value
            return self.projected(values)

        return one

    def evaluate_point(self, tree: Mapping[str, NDArray[Any]]) -> Any:
        """The projected outputs with the checked leaves set to ``tree``, as a host 0-d array."""
        with self.context():
            return self.to_host(self._cost(self.values(tree)))

    def gradient(self) -> HostArrays:
        """The analytic gradient of the projection at the current point, by leaf name.

        A leaf that no output depends on (the framework gives no gradient) gets zeros.
        """
        with self.context():
            grads = self.vjp(self.values(self.params))
            return {
                name: np.zeros(host.shape)
                if grad is None
                else np.asarray(self.to_host(grad), dtype=np.float64)
                for (name, host), grad in zip(self.params.items(), grads, strict=True)
            }

    def vectorize(self) -> BatchedCost | None:
        """No vectorized cost unless the framework provides one (see `with_leaf`)."""
        return None

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """Wrapped around every call into the framework (JAX: its float64 switch)."""
        return contextlib.nullcontext()

    def compile(self) -> Callable[[Sequence[A]], A]:
        """The cost of one point as `evaluate_point` runs it: `projected`, or a compiled form."""
        return self.projected

    # --- what each framework supplies --------------------------------------------------

    @abc.abstractmethod
    def call(self, values: Sequence[A]) -> Any:
        """Fn's output with the checked leaves at ``values``, the other inputs as given."""

    @abc.abstractmethod
    def leaves(self, output: Any) -> list[Any]:
        """The output structure flattened to its leaves, in a fixed order."""

    @abc.abstractmethod
    def is_floating(self, leaf: Any) -> bool:
        """Whether an output leaf is a floating-point array (or number) to project."""

    @abc.abstractmethod
    def from_host(self, index: int, array: NDArray[Any]) -> A:
        """Leaf ``index``'s value in the framework, from a host array (in its own dtype)."""

    @abc.abstractmethod
    def to_host(self, value: A) -> NDArray[Any]:
        """A framework array as a NumPy array on the host."""

    @abc.abstractmethod
    def cotangent(self, draw: NDArray[np.float64], output: A) -> A:
        """The upstream for ``output``: ``draw`` rounded to its dtype, on its device."""

    @abc.abstractmethod
    def dtype_of(self, output: A) -> np.dtype[Any]:
        """The NumPy dtype of an output (the precision the cost is computed in)."""

    @abc.abstractmethod
    def vdot(self, output: A, dout: A) -> A:
        """``sum(output * dout)`` as a framework scalar, in the framework's cost precision."""

    @abc.abstractmethod
    def vjp(self, values: Sequence[A]) -> Sequence[A | None]:
        """The gradient of `projected` at ``values``, per leaf (None: no dependence)."""
