"""Assertions for test suites: raise GradientMismatchError, carrying the rendered report.

Each helper runs a check and returns its Report when the gradients pass; otherwise
it raises `gradcheck.GradientMismatchError` (an AssertionError, so pytest shows a
failure, not an error) whose message is the terminal report: which tensor is wrong,
its worst elements, and the findings.

- `assert_gradients_correct`: NumPy, same arguments as `gradcheck.check`.
- `assert_layer_gradients_correct`: same arguments as `gradcheck.check_layer`.
- `assert_module_gradients_correct`: a PyTorch module, as `gradcheck.torch.check_module`.
- `assert_function_gradients_correct`: a function of any registered framework
  (`gradcheck._frameworks`). The framework is read from the inputs: torch tensors go
  to `gradcheck.torch.check_function` (``fn, *inputs``), a pytree holding JAX arrays
  to `gradcheck.jax.check_function` (``fn, params``). Frameworks are found in
  ``sys.modules``, never imported here. HIPS autograd differentiates plain NumPy
  arrays, which cannot be told from NumPy's: name it, ``framework="autograd"``.

With the pytest plugin's ``--gradcheck-report=DIR``, every report these helpers
produce is also written to DIR.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Unpack

from ._api import check, check_layer
from ._errors import GradientMismatchError, InvalidArgumentError, invalid_choice
from ._frameworks import FRAMEWORKS, Framework, detect
from ._options import CheckOptions, takes_options
from ._results import Report
from ._tree import ParamTree

__all__ = [
    "assert_function_gradients_correct",
    "assert_gradients_correct",
    "assert_layer_gradients_correct",
    "assert_module_gradients_correct",
]


_listeners: list[Callable[[Report], object]] = []

_MSG_NO_FRAMEWORK = (
    "assert_function_gradients_correct found no {arrays} among the inputs; it checks "
    "framework functions. For a NumPy function use assert_gradients_correct(f, params, "
    "grads) or assert_layer_gradients_correct(forward, backward, inputs); for JAX, pass "
    "the params as JAX arrays (jnp.asarray); for {undetectable}, whose arrays are NumPy's, "
    "name it: framework={names}."
)
_MSG_ONE_PYTREE = (
    "a {title} function is checked as fn(params) with one pytree of params, but {count} "
    "inputs were given; pack them into one tuple or dict."
)


@takes_options
def assert_gradients_correct(
    f: Callable[[Any], Any],
    params: ParamTree,
    grads: Any = None,
    **options: Unpack[CheckOptions],
) -> Report:
    """Assert that analytic gradients match finite differences; see `gradcheck.check`.

    Takes the arguments and options of `gradcheck.check` (`gradcheck.CheckOptions`).

    Returns:
        The Report, when the gradients pass.

    Raises:
        GradientMismatchError: they do not; the message is the rendered report.

    Example:
        >>> import numpy as np
        >>> from gradcheck.testing import assert_gradients_correct
        >>> w = np.array([1.0, -2.0])
        >>> report = assert_gradients_correct(lambda p: np.sum(p["w"] ** 3), {"w": w},
        ...                                   {"dw": 3 * w**2})
        >>> report.passed
        True
    """
    __tracebackhide__ = True
    return _verdict(check(f, params, grads, **options))


@takes_options
def assert_layer_gradients_correct(
    forward: Callable[[Any], Any],
    backward: Callable[[Any, Any], Any],
    inputs: ParamTree,
    **options: Unpack[CheckOptions],
) -> Report:
    """Assert that a layer's backward matches finite differences; see `gradcheck.check_layer`.

    Raises:
        GradientMismatchError: the gradients do not pass; the message is the rendered report.
    """
    __tracebackhide__ = True
    return _verdict(check_layer(forward, backward, inputs, **options))


def assert_module_gradients_correct(
    model: Any, loss_fn: Callable[[Any], Any], **options: Any
) -> Report:
    """Assert that autograd's gradients of a PyTorch module are right.

    Same arguments as `gradcheck.torch.check_module` (which needs torch installed).

    Raises:
        GradientMismatchError: the gradients do not pass; the message is the rendered report.
    """
    __tracebackhide__ = True
    from .torch import check_module

    return _verdict(check_module(model, loss_fn, **options))


def assert_function_gradients_correct(
    fn: Callable[..., Any], *inputs: Any, framework: str | None = None, **options: Any
) -> Report:
    """Assert that a framework function's gradients are right (framework read from inputs).

    PyTorch: ``assert_function_gradients_correct(fn, *tensors, **options)`` as
    `gradcheck.torch.check_function`. JAX: ``assert_function_gradients_correct(fn,
    params, **options)`` as `gradcheck.jax.check_function`. HIPS autograd, whose
    inputs are plain NumPy arrays: ``assert_function_gradients_correct(fn, params,
    framework="autograd", **options)`` as `gradcheck.autograd.check_function`.

    Args:
        fn: the function to check.
        *inputs: its inputs (PyTorch), or its one pytree of params (JAX, autograd).
        framework: the framework's name ("torch", "jax", "autograd"); None reads it
            from the inputs.
        **options: the options of the framework's ``check_function``.

    Raises:
        GradientMismatchError: the gradients do not pass; the message is the rendered report.
        InvalidArgumentError: no framework is named and none is found in the inputs.
    """
    __tracebackhide__ = True
    chosen = _framework(inputs, framework)
    if chosen.pytree_params and len(inputs) != 1:
        raise InvalidArgumentError(_MSG_ONE_PYTREE.format(title=chosen.title, count=len(inputs)))
    return _verdict(chosen.checker()(fn, *inputs, **options))


@contextmanager
def _listening(listener: Callable[[Report], object]) -> Iterator[None]:
    """Call ``listener(report)`` for every report the helpers here produce, while inside.

    For the pytest plugin (``--gradcheck-report`` and the ``gradcheck_report`` fixture).
    """
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def _verdict(report: Report) -> Report:
    __tracebackhide__ = True
    for listener in list(_listeners):
        listener(report)
    if not report.passed:
        raise GradientMismatchError(report)
    return report


def _framework(inputs: Sequence[Any], name: str | None) -> Framework:
    """The framework named, or the one whose arrays are among the inputs."""
    if name is not None:
        named = next((f for f in FRAMEWORKS if f.name == name), None)
        if named is None:
            raise invalid_choice("framework", name, [f.name for f in FRAMEWORKS])
        return named
    found = detect(inputs)
    if found is None:
        detectable = [f for f in FRAMEWORKS if f.array_type is not None]
        undetectable = [f for f in FRAMEWORKS if f.array_type is None]
        raise InvalidArgumentError(
            _MSG_NO_FRAMEWORK.format(
                arrays=" or ".join(f.array_noun for f in detectable),
                undetectable=" or ".join(f.title for f in undetectable),
                names=" or ".join(repr(f.name) for f in undetectable),
            )
        )
    return found


def __dir__() -> list[str]:
    """Only the public names: what ``__all__`` lists."""
    return sorted(__all__)
