"""PyTorch adapter for functions of tensors: custom autograd Functions checked through a VJP.

Floating tensors among the inputs are copied (float64 by default) and mirrored as
NumPy arrays, as for modules (`torch_module.Mirror`); a fixed random upstream gradient per
floating output reduces the function to a scalar whose autograd gradient goes
through the function's ``backward``. Inputs are named after the function's
parameters (``forward``'s, less ``ctx``, for an autograd Function), else by position.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeGuard

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.func import vmap

from .._errors import InvalidArgumentError
from .bridge import BatchedCost, HostArrays
from .torch_module import Mirror, numpy_dtype, private_copy
from .vjp import FunctionAdapter

# --- functions -------------------------------------------------------------------------


class FunctionCheck(FunctionAdapter[torch.Tensor]):
    """A tensor-function check prepared for the core through a vector-Jacobian product.

    Floating tensors among ``inputs`` are copied in ``dtype``; those that require grad
    (all floating ones if none does) are checked, named after ``fn``'s parameters.
    A fixed random upstream gradient per floating output turns the outputs into the
    scalar ``sum_i sum(out_i * dout_i)`` (`vjp.FunctionAdapter`), whose gradient
    autograd gives through the function's backward.
    """

    noun = "tensor"
    where = "inputs"

    def __init__(
        self, fn: Callable[..., Any], inputs: Sequence[Any], dtype: torch.dtype | None, seed: int
    ) -> None:
        self._fn, names = _callable_and_names(fn, len(inputs))
        if isinstance(fn, nn.Module):  # its buffers and mode stay the user's; dtypes must match
            self._fn = private_copy(fn, dtype)
        self.args = [_copy_input(x, dtype) for x in inputs]
        floating = [i for i, x in enumerate(inputs) if _is_float_tensor(x)]
        wanted = [i for i in floating if inputs[i].requires_grad] or floating
        if not wanted:
            raise InvalidArgumentError(
                f"none of the {len(inputs)} inputs is a floating-point tensor: there is nothing "
                "to check. Pass the tensors to differentiate as inputs, e.g. "
                "check_function(fn, torch.randn(3, requires_grad=True))."
            )
        self.positions = wanted
        self.names = [names[i] for i in wanted]
        self.mirrors = [Mirror(self.args[i], f"input {names[i]!r}") for i in wanted]
        self.params: HostArrays = {n: m.host for n, m in zip(self.names, self.mirrors, strict=True)}
        self.prepare(seed)

    def vectorize(self) -> BatchedCost:
        """A `vmap` cost of many values of one input."""

        def cost(leaf_index: int, stack: NDArray[Any]) -> NDArray[np.float64]:
            rest = self.values(self.params)
            one = self.with_leaf(leaf_index)
            with torch.no_grad():
                out = vmap(lambda value: one(value, rest))(self.mirrors[leaf_index].stacked(stack))
            return out.detach().cpu().numpy().astype(np.float64)

        return cost

    # --- the primitives of FunctionAdapter ------------------------------------------------

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """Costs are evaluated without recording a graph (`vjp` turns it on)."""
        return torch.no_grad()

    def call(self, values: Sequence[torch.Tensor]) -> Any:
        """Fn of the inputs, the checked ones at ``values``."""
        args = list(self.args)
        for position, value in zip(self.positions, values, strict=True):
            args[position] = value
        return self._fn(*args)

    def leaves(self, output: Any) -> list[Any]:
        """What fn returned, tuples, lists and dicts flattened, in order."""
        if isinstance(output, tuple | list):
            return [leaf for value in output for leaf in self.leaves(value)]
        if isinstance(output, dict):
            return [leaf for value in output.values() for leaf in self.leaves(value)]
        return [output]

    def is_floating(self, leaf: Any) -> bool:
        """Whether an output is a floating tensor (Python numbers have no gradient)."""
        return _is_float_tensor(leaf)

    def from_host(self, index: int, array: NDArray[Any]) -> torch.Tensor:
        """Input ``index`` on its device (no copy of a writable CPU array)."""
        return self.mirrors[index].on_device(array)

    def to_host(self, value: torch.Tensor) -> NDArray[Any]:
        """A tensor as a float64 NumPy array (bfloat16 has no NumPy type)."""
        return value.detach().to("cpu", torch.float64).numpy()

    def cotangent(self, draw: NDArray[np.float64], output: torch.Tensor) -> torch.Tensor:
        """The draw in the output's dtype, on its device."""
        return torch.from_numpy(draw).to(output.device, output.dtype)

    def dtype_of(self, output: torch.Tensor) -> np.dtype[Any]:
        """The output's dtype as NumPy's (float16 for bfloat16)."""
        return numpy_dtype(output.dtype)

    def vdot(self, output: torch.Tensor, dout: torch.Tensor) -> torch.Tensor:
        """``sum(output * dout)`` in float64, whatever the output's dtype."""
        wide = output.to(torch.promote_types(output.dtype, torch.float64))
        return (wide * dout.to(wide.device, wide.dtype)).sum()

    def vjp(self, values: Sequence[torch.Tensor]) -> Sequence[torch.Tensor | None]:
        """``torch.autograd.grad`` of the projection, through fn's backward."""
        with torch.enable_grad():
            leaves = [value.detach().requires_grad_(True) for value in values]
            total = self.projected(leaves)
            if not total.requires_grad:  # no output depends on the inputs through autograd
                return [None] * len(leaves)
            return torch.autograd.grad(total, leaves, allow_unused=True)


def _callable_and_names(fn: Callable[..., Any], count: int) -> tuple[Callable[..., Any], list[str]]:
    """What to call, and a name per input: the parameter's name, or its position.

    For an ``autograd.Function`` (the class or its ``apply``) the names come from
    ``forward``, less ``ctx`` unless the class separates ``setup_context``; for a
    module, from its ``forward``.
    """
    owner = fn if isinstance(fn, type) else getattr(fn, "__self__", None)
    call, described, skip = fn, fn, 0
    if isinstance(fn, nn.Module):
        described = fn.forward
    if _is_function_class(owner) and (fn is owner or getattr(fn, "__name__", "") == "apply"):
        call, described = owner.apply, owner.forward
        skip = 0 if owner.setup_context is not torch.autograd.Function.setup_context else 1
    try:
        parameters = list(inspect.signature(described).parameters.values())[skip:]
    except (TypeError, ValueError):  # builtins and C functions without a signature
        parameters = []
    positional = [p.name for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]  # fmt: skip
    return call, [positional[i] if i < len(positional) else str(i) for i in range(count)]


def _is_function_class(value: object) -> TypeGuard[type[torch.autograd.Function]]:
    return isinstance(value, type) and issubclass(value, torch.autograd.Function)


def _is_float_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def _copy_input(value: Any, dtype: torch.dtype | None) -> Any:
    if not _is_float_tensor(value):
        return value
    return value.detach().to(dtype=dtype or value.dtype, copy=True)
