"""Check JAX gradients, custom_vjp and custom_jvp rules included, leaf by leaf of a pytree.

Opt-in (``pip install 'gradcheck[jax]'``): importing this module imports jax;
``import gradcheck`` never does.

Unlike ``jax.test_util.check_grads``, which compares one random directional
derivative, a check here compares every element (or a seeded sample), names the
leaf that is wrong and its worst elements, and explains the mismatch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

import numpy as np
from numpy.typing import DTypeLike

from ._errors import MissingExtraError
from ._options import CheckOptions, takes_options
from ._results import Report

try:
    import jax  # noqa: F401  # imported here so that a missing JAX gives the install hint
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("gradcheck.jax needs JAX: pip install 'gradcheck[jax]'.") from exc

from ._adapters import check_pytree_function, jax_function

__all__ = ["check_function"]


@takes_options
def check_function(
    fn: Callable[[Any], Any],
    params: Any,
    *,
    dtype: DTypeLike | None = np.float64,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check ``jax.grad`` of a function of a pytree against finite differences.

    Every floating output (a scalar too, an array, or the leaves of a pytree) is
    projected on a fixed random cotangent seeded by ``seed``, and ``jax.grad`` of the
    projection, a vector-Jacobian product through the function's ``custom_vjp`` /
    ``custom_jvp`` rules, is compared with finite differences of the same projection.
    The check runs in float64 inside a ``jax.enable_x64`` context: the global
    ``jax_enable_x64`` setting is what it was afterwards.

    Args:
        fn: ``fn(params)`` returns a scalar, an array or a pytree of arrays.
        params: a pytree (dicts, lists, tuples, registered nodes) of arrays or floats;
            floating leaves are checked, other leaves passed through unchanged.
        dtype: the floating dtype of the check; None keeps each leaf's own (and the
            current x64 setting).
        **options: the options of `gradcheck.check` (`gradcheck.CheckOptions`); an
            option this framework cannot honour is refused with the reason.

    Returns:
        A Report with one entry per floating leaf, named by its path in dotted form
        (``"w"``, ``"layers.0.b"``), in JAX's leaf order (dict keys sorted).

    Example:
        >>> import jax.numpy as jnp, gradcheck.jax
        >>> params = {"w": jnp.array([0.5, -1.0]), "b": jnp.array(0.25)}
        >>> report = gradcheck.jax.check_function(
        ...     lambda p: jnp.sum(jnp.tanh(p["w"] * 2.0 + p["b"])), params)
        >>> list(report.params), report.passed
        (['b', 'w'], True)
    """
    return check_pytree_function("jax", jax_function.FunctionCheck, fn, params, dtype, options)


def __dir__() -> list[str]:
    """Only the public names: what ``__all__`` lists."""
    return sorted(__all__)
