"""PyTorch adapter for functions of tensors: custom autograd Functions checked through a VJP.

Floating tensors among the inputs are copied (float64 by default) and mirrored as
NumPy arrays, as for modules (`_torch.Mirror`); a fixed random upstream gradient per
floating output reduces the function to a scalar whose autograd gradient goes
through the function's ``backward``. Inputs are named after the function's
parameters (``forward``'s, less ``ctx``, for an autograd Function), else by position.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.func import vmap

from .._errors import CostFunctionError, InvalidArgumentError
from ._bridge import Adapter, BatchedCost, HostArrays, upstream
from ._torch import Mirror, host_grads, host_scalar, numpy_dtype, private_copy

# --- functions -------------------------------------------------------------------------


class FunctionCheck(Adapter):
    """A tensor-function check prepared for the core through a vector-Jacobian product.

    Floating tensors among ``inputs`` are copied in ``dtype``; those that require grad
    (all floating ones if none does) are checked, named after ``fn``'s parameters.
    A fixed random upstream gradient per floating output turns the outputs into the
    scalar ``sum_i sum(out_i * dout_i)``, whose gradient autograd gives through the
    function's backward.
    """

    def __init__(
        self, fn: Callable[..., Any], inputs: Sequence[Any], dtype: torch.dtype | None, seed: int
    ) -> None:
        self.call, names = _callable_and_names(fn, len(inputs))
        if isinstance(fn, nn.Module):  # its buffers and mode stay the user's; dtypes must match
            self.call = private_copy(fn, dtype)
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
        self._douts: list[torch.Tensor] | None = None
        self._seed = seed
        self.grads, self.cost_dtype = self._gradient_and_dtype()

    def evaluate_point(self, tree: Mapping[str, NDArray[Any]]) -> Any:
        """The projected outputs ``sum_i sum(out_i * dout_i)`` with the inputs set to ``tree``."""
        values = [m.on_device(tree[n]) for n, m in zip(self.names, self.mirrors, strict=True)]
        with torch.no_grad():
            return host_scalar(self._projected(values), what="the projected output")

    def gradient(self) -> HostArrays:
        """The analytic vector-Jacobian product at the current point, by input name."""
        return self._gradient_and_dtype()[0]

    def vectorize(self) -> BatchedCost:
        """A `vmap` cost of many values of one input."""

        def cost(leaf_index: int, stack: NDArray[Any]) -> NDArray[np.float64]:
            current = [m.on_device(m.host) for m in self.mirrors]

            def one(value: torch.Tensor) -> torch.Tensor:
                values = list(current)
                values[leaf_index] = value
                return self._projected(values)

            with torch.no_grad():
                out = vmap(one)(self.mirrors[leaf_index].stacked(stack))
            return out.detach().cpu().numpy().astype(np.float64)

        return cost

    def _arguments(self, values: Sequence[torch.Tensor]) -> list[Any]:
        args = list(self.args)
        for position, value in zip(self.positions, values, strict=True):
            args[position] = value
        return args

    def _outputs(self, values: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        outputs = floating_outputs(self.call(*self._arguments(values)))
        if not outputs:
            raise CostFunctionError(
                "fn returned no floating-point tensor: a gradient check needs outputs to "
                "differentiate (return the tensors, not Python numbers or integer tensors)."
            )
        return outputs

    def _projected(self, values: Sequence[torch.Tensor]) -> torch.Tensor:
        outputs = self._outputs(values)
        douts = self._douts
        assert douts is not None  # drawn by the first gradient pass, in __init__
        if len(outputs) != len(douts):
            raise CostFunctionError(
                f"fn returned {len(outputs)} floating-point outputs here but {len(douts)} at "
                "the given inputs; it must return the same outputs for nearby inputs."
            )
        total = torch.zeros((), dtype=torch.float64, device=douts[0].device)
        for out, dout in zip(outputs, douts, strict=True):
            wide = out.to(torch.promote_types(out.dtype, torch.float64))
            total = total + (wide * dout.to(wide.device)).sum()
        return total

    def _gradient_and_dtype(self) -> tuple[HostArrays, np.dtype[Any]]:
        with torch.enable_grad():
            leaves = [m.on_device(m.host).requires_grad_(True) for m in self.mirrors]
            outputs = self._outputs(leaves)
            if self._douts is None:
                draws = upstream(self._seed, [tuple(o.shape) for o in outputs])
                # Rounded to each output's dtype, so autograd and the cost use the same dout.
                rounded = [
                    torch.from_numpy(d).to(o.device, o.dtype)
                    for d, o in zip(draws, outputs, strict=True)
                ]
                self._douts = [d.to(torch.float64) for d in rounded]
            differentiable = [(o, d) for o, d in zip(outputs, self._douts, strict=True)
                              if o.requires_grad]  # fmt: skip
            if differentiable:
                grads: Sequence[torch.Tensor | None] = torch.autograd.grad(
                    [o for o, _ in differentiable],
                    leaves,
                    grad_outputs=[d.to(o.dtype) for o, d in differentiable],
                    allow_unused=True,
                )
            else:  # no output depends on the inputs through autograd: its gradient is zero
                grads = [None] * len(leaves)
        dtype = np.result_type(*[numpy_dtype(o.dtype) for o in outputs])
        return host_grads(self.names, self.mirrors, grads), dtype


def floating_outputs(value: Any) -> list[torch.Tensor]:
    """The floating-point tensors in what a function returned (tuples, lists, dicts), in order."""
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, tuple | list):
        return [t for v in value for t in floating_outputs(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in floating_outputs(v)]
    return []


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
