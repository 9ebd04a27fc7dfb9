"""Check HIPS autograd gradients, custom ``defvjp`` rules included, leaf by leaf of a pytree.

Opt-in (``pip install 'gradcheck[autograd]'``): importing this module imports
autograd; ``import gradcheck`` never does.

Autograd differentiates plain NumPy arrays, so its inputs cannot be told apart from
a NumPy check's: `gradcheck.testing.assert_function_gradients_correct` needs
``framework="autograd"``, and `check_function` here is called directly.
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
    import autograd  # noqa: F401  # imported here so that a missing autograd gives the hint
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError(
        "gradcheck.autograd needs HIPS autograd: pip install 'gradcheck[autograd]'."
    ) from exc

from ._adapters import _autograd
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
    """Check ``autograd.grad`` of a function of a pytree of arrays against finite differences.

    Every floating output (a scalar too) is projected on a fixed random upstream
    gradient seeded by ``seed``, and ``autograd.grad`` of the projection, which runs
    the ``defvjp`` rules of the primitives ``fn`` calls with that upstream as their
    incoming gradient, is compared with finite differences of the same projection.

    Args:
        fn: ``fn(params)`` returns a scalar, an array or a pytree of arrays, computed
            with ``autograd.numpy`` and primitives (``autograd.extend.primitive``).
        params: a pytree (dicts, lists, tuples, nested) of NumPy arrays or floats;
            floating leaves are checked (on copies), other leaves passed unchanged.
        dtype: the floating dtype of the check; None keeps each leaf's own.
        seed: seeds the upstream gradients and every other random choice.
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
        (``"w"``, ``"layers.0.b"``), in the order of ``params`` (dict insertion order).

    Example:
        >>> import autograd.numpy as anp, numpy as np, gradcheck.autograd
        >>> params = {"w": np.array([0.5, -1.0]), "b": np.array(0.25)}
        >>> report = gradcheck.autograd.check_function(
        ...     lambda p: anp.sum(anp.tanh(p["w"] * 2.0 + p["b"])), params)
        >>> list(report.params), report.passed
        (['w', 'b'], True)
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
    check = at_base(lambda: _autograd.FunctionCheck(fn, params, dtype, options.seed), "fn")
    return run_check(check, options, started)
