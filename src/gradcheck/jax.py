"""Check JAX gradients, custom_vjp and custom_jvp rules included, leaf by leaf of a pytree.

Opt-in (``pip install 'gradcheck[jax]'``): importing this module imports jax;
``import gradcheck`` never does.

Unlike ``jax.test_util.check_grads``, which compares one random directional
derivative, a check here compares every element (or a seeded sample), names the
leaf that is wrong and its worst elements, and explains the mismatch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import DTypeLike

from ._engine import Method, Mode
from ._errors import InvalidArgumentError, MissingExtraError
from ._options import require_callable, validate
from ._results import DEFAULT_THRESHOLDS, DEFAULT_WORST, Report

try:
    import jax  # noqa: F401  # imported here so that a missing JAX gives the install hint
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("gradcheck.jax needs JAX: pip install 'gradcheck[jax]'.") from exc

from ._adapters import _jax
from ._adapters._bridge import at_base, run_check

__all__ = ["check_function"]

Eps = float | Literal["auto"] | None


def check_function(
    fn: Callable[[Any], Any],
    params: Any,
    *,
    dtype: DTypeLike | None = np.float64,
    seed: int = 0,
    eps: Eps = None,
    method: Method = "central",
    mode: Mode = "full",
    samples: int | float | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    worst: int = DEFAULT_WORST,
    batch_size: int | None = None,
    time_steps: int | None = None,
    progress: bool = True,
    timeout: float | None = None,
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
        seed: seeds the cotangents and every other random choice.
        eps: as for `gradcheck.check`.
        method: as for `gradcheck.check` ("complex" needs ``fn`` to accept complex input).
        mode: as for `gradcheck.check`.
        samples: as for `gradcheck.check`.
        thresholds: as for `gradcheck.check`.
        worst: as for `gradcheck.check`.
        batch_size: as for `gradcheck.check`.
        time_steps: as for `gradcheck.check`.
        progress: as for `gradcheck.check`.
        timeout: as for `gradcheck.check`.

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
    started = time.perf_counter()
    require_callable(fn, "fn")
    options = validate(method=method, mode=mode, eps=eps, samples=samples, seed=seed,
                       thresholds=thresholds, worst=worst, batch_size=batch_size,
                       time_steps=time_steps, progress=progress,
                       timeout=timeout)  # fmt: skip
    if dtype is not None:
        try:
            floating = np.dtype(dtype).kind == "f"
        except TypeError:
            floating = False
        if not floating:
            raise InvalidArgumentError(
                f"dtype={dtype!r} must be a floating dtype (np.float64, the default, or "
                "np.float32) or None to keep the leaves' own."
            )
    check = at_base(lambda: _jax.FunctionCheck(fn, params, dtype, options.seed), "fn")
    with check.precision():
        return run_check(check, options, started)
