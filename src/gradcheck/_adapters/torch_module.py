"""PyTorch adapter: a module checked on a private float copy, perturbed through NumPy views.

How a check reaches PyTorch without touching the user's objects:

1. The module (or each input tensor) is copied, in float64 by default, on its own
   device. The user's parameters, ``.grad`` fields, buffers and train/eval mode are
   never read after the copy, let alone written.
2. Each checked tensor of the copy gets a `Mirror`: a NumPy array the engine
   perturbs in place. On the CPU it is a view of the tensor's memory, so moving it
   moves the copy at no cost; on another device (CUDA) it is a host copy pushed to
   the device before each evaluation.
3. Costs are evaluated under ``torch.no_grad()``; the analytic gradient comes from
   ``torch.autograd.grad`` on the copy, so custom ``backward`` methods are what gets
   checked. The RNG state is forked for the whole check, so the user's random
   stream is where it was afterwards.
4. `batched` vectorizes the cost over many values of one leaf with
   ``torch.func.vmap`` (``functional_call`` for modules), on the tensors' device;
   `evaluate` uses it for a tree whose one leaf is a stack of values.

`Mirror`, `forked_rng`, `private_copy` and `numpy_dtype` here are shared with
`_torch_function`, which checks functions of tensors through `vjp.FunctionAdapter`.
A module's loss is its cost as it is (``loss_fn`` returns the scalar to minimize);
only functions are projected on upstream gradients.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.func import functional_call, vmap
from torch.nn.modules.batchnorm import _NormBase

from .._errors import CostFunctionError, InvalidArgumentError
from .._scalar import to_scalar
from .._text import a_type
from .bridge import Adapter, BatchedCost, HostArrays

_MSG_NO_COPY = (
    "gradcheck.torch could not copy the model ({error}); the check runs on a private copy "
    "so that your model is never modified. Make the module deep-copyable (copy.deepcopy)."
)
_MSG_LOSS = (
    "loss_fn(model) returned {what}; it must return the loss as a scalar tensor computed "
    "from the module it is given (e.g. lambda m: F.mse_loss(m(x), y))."
)
_MSG_DETACHED = (
    "loss_fn(model) returned a loss that does not depend on any parameter of the module "
    "it was given. It must use its argument, not the original model from a closure: "
    "gradcheck calls it with a private (float64) copy of the model."
)
_MSG_UNSUPPORTED_DTYPE = (
    "{where} has dtype {dtype}, which NumPy cannot hold; pass dtype=torch.float64 (the "
    "default) or torch.float32 to check a converted copy."
)

_AT_BASE = " at the given parameters"


class Mirror:
    """One checked tensor of the private copy and the NumPy array the engine perturbs for it."""

    def __init__(self, tensor: torch.Tensor, where: str) -> None:
        self.tensor = tensor.detach()
        """The copy's tensor, on its device; it shares memory with ``tensor``."""
        self.on_host = self.tensor.device.type == "cpu"
        source = self.tensor if self.on_host else self.tensor.cpu()
        try:
            self.host: NDArray[Any] = source.numpy()
        except TypeError as exc:  # bfloat16 and other dtypes NumPy has no type for
            raise InvalidArgumentError(
                _MSG_UNSUPPORTED_DTYPE.format(where=where, dtype=tensor.dtype)
            ) from exc

    def push(self) -> None:
        """Copy the host array to the device tensor (nothing to do on the CPU: it is a view)."""
        if not self.on_host:
            with torch.no_grad():
                self.tensor.copy_(torch.from_numpy(self.host))

    def on_device(self, array: NDArray[Any]) -> torch.Tensor:
        """A tensor on the copy's device holding ``array`` (no copy of a writable CPU array)."""
        if not array.flags.writeable:  # torch.from_numpy warns about read-only memory
            return torch.tensor(array, device=self.tensor.device)
        return torch.from_numpy(array).to(self.tensor.device)

    def stacked(self, stack: NDArray[Any]) -> torch.Tensor:
        """A batch of values for this tensor, on its device and in its dtype."""
        return torch.tensor(stack, dtype=self.tensor.dtype, device=self.tensor.device)


@contextmanager
def forked_rng(tensors: Iterable[torch.Tensor]) -> Iterator[None]:
    """Keep the user's random streams (CPU and the CUDA devices in use) where they were."""
    devices = sorted(
        {
            t.device.index if t.device.index is not None else torch.cuda.current_device()
            for t in tensors
            if t.device.type == "cuda"
        }
    )
    with torch.random.fork_rng(devices=devices):
        yield


class _LossModule(nn.Module):
    """Wrap ``loss_fn(model)`` as a module, so `functional_call` can swap parameters in."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module], Any]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self) -> Any:
        return self.loss_fn(self.model)


class ModuleCheck(Adapter):
    """A module check prepared for the core: host arrays, cost, analytic gradient, batching.

    Args:
        model: the user's module; only copied.
        loss_fn: ``loss_fn(module)`` returns the scalar loss.
        dtype: the floating dtype of the copy, or None to keep the model's own.
    """

    def __init__(
        self, model: nn.Module, loss_fn: Callable[[nn.Module], Any], dtype: torch.dtype | None
    ) -> None:
        self.module = private_copy(model, dtype)
        self._wrapper = _LossModule(self.module, loss_fn)
        named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        if not named:
            raise InvalidArgumentError(
                f"the model ({type(model).__name__}) has no parameter that requires grad: "
                "there is nothing to check."
            )
        self.names = [name for name, _ in named]
        self.mirrors = [Mirror(p, f"model.{name}") for name, p in named]
        self._leaves = [p for _, p in named]
        self.params: HostArrays = {n: m.host for n, m in zip(self.names, self.mirrors, strict=True)}
        self.grads, self.cost_dtype = self._gradient_and_dtype()

    def evaluate_point(self, tree: Mapping[str, NDArray[Any]]) -> Any:
        """The loss with the parameters set to ``tree`` (usually params itself: no copy)."""
        moved = [(host, tree[name]) for name, host in self.params.items() if tree[name] is not host]
        saved = [host.copy() for host, _ in moved]
        try:
            for host, value in moved:
                host[...] = value
            for mirror in self.mirrors:
                mirror.push()
            with torch.no_grad():
                return host_scalar(self._wrapper(), what="loss_fn(model)")
        finally:
            for (host, _), old in zip(moved, saved, strict=True):
                host[...] = old

    def gradient(self) -> HostArrays:
        """The analytic gradient at the current point, by parameter name."""
        return self._gradient_and_dtype()[0]

    def vectorize(self) -> BatchedCost:
        """A `vmap` + `functional_call` cost of many values of one parameter."""

        def cost(leaf_index: int, stack: NDArray[Any]) -> NDArray[np.float64]:
            for m in self.mirrors:
                m.push()
            key = f"model.{self.names[leaf_index]}"

            def one(value: torch.Tensor) -> torch.Tensor:
                return _as_tensor_loss(functional_call(self._wrapper, {key: value}, ()))

            with torch.no_grad():
                values = vmap(one)(self.mirrors[leaf_index].stacked(stack))
            return values.detach().cpu().numpy().astype(np.float64)

        return cost

    def _gradient_and_dtype(self) -> tuple[HostArrays, np.dtype[Any]]:
        for mirror in self.mirrors:
            mirror.push()
        with torch.enable_grad():
            loss = self._wrapper()
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                what = (
                    f"a tensor of shape {tuple(loss.shape)}"
                    if isinstance(loss, torch.Tensor)
                    else f"{a_type(loss)}"
                )
                raise CostFunctionError(_MSG_LOSS.format(what=what))
            if not loss.requires_grad:
                raise CostFunctionError(_MSG_DETACHED)
            grads = torch.autograd.grad(loss.reshape(()), self._leaves, allow_unused=True)
        if all(g is None for g in grads):
            raise CostFunctionError(_MSG_DETACHED)
        return host_grads(self.names, self.mirrors, grads), numpy_dtype(loss.dtype)


def private_copy(model: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """Deep-copy the model in ``dtype``, casting floating inputs of every submodule to it.

    Batch and instance normalization layers in training mode stop tracking running
    statistics in the copy: their output uses batch statistics either way, and
    without the in-place update they can be vectorized.
    """
    try:
        private = copy.deepcopy(model)
    except Exception as exc:  # any object a module may hold that refuses to be copied
        error = f"{type(exc).__name__}: {exc}"
        raise InvalidArgumentError(_MSG_NO_COPY.format(error=error)) from exc
    if dtype is not None:
        private = private.to(dtype)
        hook = _cast_inputs(dtype)
        for sub in private.modules():
            sub.register_forward_pre_hook(hook, with_kwargs=True)
    for sub in private.modules():
        if isinstance(sub, _NormBase) and sub.training and sub.track_running_stats:
            sub.track_running_stats = False
            sub.running_mean = sub.running_var = sub.num_batches_tracked = None
    return private


def _cast_inputs(dtype: torch.dtype) -> Callable[..., Any]:
    """A forward pre-hook: the user's float32 data meets the float64 copy in float64."""

    def hook(
        module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        return _cast(args, dtype), _cast(kwargs, dtype)

    return hook


def _cast(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, tuple | list):
        return type(value)(_cast(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    return value


# --- shared ----------------------------------------------------------------------------


def host_scalar(value: Any, *, what: str) -> Any:
    """A cost tensor as a Python number on the host, with gradcheck's error otherwise."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CostFunctionError(
                _MSG_LOSS.format(what=f"a tensor of shape {tuple(value.shape)}")
            )
        return to_scalar(value.detach().cpu().numpy(), where=_AT_BASE)
    return to_scalar(value, where=_AT_BASE)


def _as_tensor_loss(value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CostFunctionError(_MSG_LOSS.format(what=f"{a_type(value)}"))
    return value.reshape(()).to(torch.promote_types(value.dtype, torch.float64))


def host_grads(
    names: Sequence[str], mirrors: Sequence[Mirror], grads: Sequence[torch.Tensor | None]
) -> HostArrays:
    """Gradients as host float64 arrays; an unused input's missing gradient is zero."""
    out: HostArrays = {}
    for name, mirror, grad in zip(names, mirrors, grads, strict=True):
        if grad is None:
            out[name] = np.zeros(mirror.host.shape)
        else:
            out[name] = grad.detach().to("cpu", torch.float64).numpy()
    return out


def numpy_dtype(dtype: torch.dtype) -> np.dtype[Any]:
    try:
        return np.dtype(torch.empty((), dtype=dtype).numpy().dtype)
    except TypeError:  # bfloat16: no NumPy type; its precision is below float32's
        return np.dtype(np.float16)
