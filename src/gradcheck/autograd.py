"""Check HIPS autograd gradients, custom ``defvjp`` rules included, leaf by leaf of a pytree.

Opt-in (``pip install 'gradcheck[autograd]'``): importing this module imports
autograd; ``import gradcheck`` never does.

Autograd differentiates plain NumPy arrays, so its inputs cannot be told apart from
a NumPy check's: `gradcheck.testing.assert_function_gradients_correct` needs
``framework="autograd"``, and `check_function` here is called directly.
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
    import autograd  # noqa: F401  # imported here so that a missing autograd gives the hint
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError(
        "gradcheck.autograd needs HIPS autograd: pip install 'gradcheck[autograd]'."
    ) from exc

from ._adapters import autograd_function, check_pytree_function

__all__ = ["check_function"]


@takes_options
def check_function(
    fn: Callable[[Any], Any],
    params: Any,
    *,
    dtype: DTypeLike | None = np.float64,
    **options: Unpack[CheckOptions],
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
        **options: the options of `gradcheck.check` (`gradcheck.CheckOptions`); an
            option this framework cannot honour is refused with the reason.

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
    return check_pytree_function(
        "autograd", autograd_function.FunctionCheck, fn, params, dtype, options
    )


def __dir__() -> list[str]:
    """Only the public names: what ``__all__`` lists."""
    return sorted(__all__)
