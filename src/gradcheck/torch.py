"""Check PyTorch gradients: every named parameter of a module, or a custom autograd Function.

Opt-in (``pip install 'gradcheck[torch]'``), like ``einops.layers.torch``: importing
this module imports torch; ``import gradcheck`` never does.

Unlike ``torch.autograd.gradcheck``, a check runs on a float64 copy (so float32
models give no false alarms and nothing of yours is touched), names the parameter
or input that is wrong and its worst elements, and explains the mismatch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Unpack

from ._errors import InvalidArgumentError, MissingExtraError
from ._options import CheckOptions, require_callable, takes_options
from ._results import Report

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError(
        "gradcheck.torch needs PyTorch: pip install 'gradcheck[torch]' "
        "(or install a torch build for your platform first)."
    ) from exc

from ._adapters import at_base, framework_options, run_check, torch_function, torch_module
from ._text import a_type

__all__ = ["check_function", "check_module"]


@takes_options
def check_module(
    model: nn.Module,
    loss_fn: Callable[[nn.Module], torch.Tensor],
    *,
    dtype: torch.dtype | None = torch.float64,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check the gradients autograd gives for every parameter of a module.

    The check runs on a private copy of the model (float64 unless ``dtype`` says
    otherwise, on the model's device), so the model, its parameters, ``.grad``
    fields, buffers (batch-norm running statistics), train/eval mode and the global
    RNG state are exactly as they were afterwards. Floating tensors passed to any
    submodule are cast to ``dtype``, so ``loss_fn`` can feed the copy the float32
    data it feeds the model. The copy keeps the model's train/eval mode: dropout in
    training mode is reported as ``nondeterministic`` unless ``loss_fn`` seeds it.

    Args:
        model: the module; parameters with ``requires_grad=False`` are left out.
        loss_fn: ``loss_fn(module)`` returns the scalar loss computed with the module
            it is given (a copy of ``model``), e.g. ``lambda m: F.mse_loss(m(x), y)``.
        dtype: the floating dtype of the copy; None keeps the model's own.
        **options: the options of `gradcheck.check` (`gradcheck.CheckOptions`); an
            option this framework cannot honour is refused with the reason.

    Returns:
        A Report with one entry per parameter, named as in ``model.named_parameters()``.

    Raises:
        InvalidArgumentError: an option is invalid, or the model cannot be copied.
        CostFunctionError: ``loss_fn`` does not return a scalar tensor that depends on
            the module's parameters.

    Example:
        >>> import torch, gradcheck.torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
        >>> x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
        >>> report = gradcheck.torch.check_module(model, lambda m: m(x).square().mean())
        >>> list(report.params), report.passed
        (['0.weight', '0.bias'], True)
    """
    started = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(
            f"model must be a torch.nn.Module, but it is {a_type(model)}; "
            "for a function of tensors use gradcheck.torch.check_function(fn, *inputs)."
        )
    require_callable(loss_fn, "loss_fn")
    validated = framework_options(options, "torch")
    if not validated.execution.in_process:
        raise InvalidArgumentError(
            "workers= and executor= are not available for a module check: it evaluates one "
            "private copy of the model in place, which workers would not see. batched=True "
            "(vmap over functional_call) is the fast path for modules; or check the layer as "
            "a function with gradcheck.torch.check_function, which accepts workers."
        )
    _require_float_dtype(dtype)
    with torch_module.forked_rng([*model.parameters(), *model.buffers()]):
        adapted = at_base(lambda: torch_module.ModuleCheck(model, loss_fn, dtype), "loss_fn")
        return run_check(adapted, validated, started)


@takes_options
def check_function(
    fn: Callable[..., Any],
    *inputs: Any,
    dtype: torch.dtype | None = torch.float64,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check a custom autograd Function, or any function of tensors, input by input.

    A fixed random upstream gradient per floating output (seeded by ``seed``)
    reduces ``fn`` to the scalar ``sum_i sum(out_i * dout_i)``, a vector-Jacobian
    product check as in `gradcheck.check_layer`: autograd's gradient of it goes
    through ``fn``'s backward. The inputs are copied (in ``dtype``) and never changed.

    Args:
        fn: a function of tensors, an ``autograd.Function`` subclass, or its ``apply``.
        *inputs: the arguments of ``fn``. Floating tensors that require grad are
            checked (every floating tensor, if none requires grad); other arguments
            are passed through unchanged.
        dtype: the floating dtype of the copies; None keeps each input's own.
        **options: the options of `gradcheck.check` (`gradcheck.CheckOptions`); an
            option this framework cannot honour is refused with the reason.

    Returns:
        A Report with one entry per checked input, in argument order, named after
        ``fn``'s parameter (``forward``'s, less ``ctx``, for an autograd Function)
        or by position ("0", "1", ...) where it has no name.

    Example:
        >>> import torch, gradcheck.torch
        >>> x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
        >>> w = torch.tensor([1.5, 0.25, -3.0], requires_grad=True)
        >>> report = gradcheck.torch.check_function(lambda x, w: torch.sin(x) * w, x, w)
        >>> list(report.params), report.passed
        (['x', 'w'], True)
    """
    started = time.perf_counter()
    require_callable(fn, "fn")
    validated = framework_options(options, "torch")
    _require_float_dtype(dtype)
    tensors = [x for x in inputs if isinstance(x, torch.Tensor)]
    with torch_module.forked_rng(tensors):
        check = at_base(lambda: torch_function.FunctionCheck(fn, inputs, dtype, validated.seed),
                        "fn")  # fmt: skip
        return run_check(check, validated, started)


def _require_float_dtype(dtype: Any) -> None:
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise InvalidArgumentError(
            f"dtype={dtype!r} must be a floating torch dtype (torch.float64, the default, "
            "or torch.float32) or None to keep the tensors' own."
        )


def __dir__() -> list[str]:
    """Only the public names: what ``__all__`` lists."""
    return sorted(__all__)
