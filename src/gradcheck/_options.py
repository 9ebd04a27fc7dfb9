"""Validate the options of a check once, at the public boundary, into one frozen object."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._engine import METHODS, MODES, SCHEMES, Mode, Scheme
from ._errors import InvalidArgumentError, invalid_choice
from ._results import DEFAULT_THRESHOLDS, DEFAULT_WORST
from ._text import a_type

Eps = float | Literal["auto"] | None

DEFAULT_MISS_PROBABILITY = 1e-6
DEFAULT_DETECTABLE = 1e-3


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Every option of a check, validated."""

    scheme: Scheme
    mode: Mode
    eps: Eps
    samples: int | float | None
    seed: int
    thresholds: tuple[float, float, float]
    worst: int
    hints: Mapping[str, int]
    """Sizes that name scale factors in findings: "batch_size" (m), "time_steps" (T)."""
    batched: bool | Callable[..., Any] = False
    """True: f accepts params with one array stacked along a new first axis; a callable:
    ``batched(params, name, indices, values)`` gives the costs of single-coordinate changes."""
    workers: int | None = None
    executor: Any = None
    """A concurrent.futures.Executor (or a Dask client) to evaluate on."""
    progress: bool = True
    """Show a progress bar on a terminal for checks that take more than about a second."""
    directions: int | None = None
    """Directions per tensor in the directional modes (None: from miss_probability)."""
    miss_probability: float = DEFAULT_MISS_PROBABILITY
    detectable: float = DEFAULT_DETECTABLE
    """The relative error size ||e|| / ||g|| for which miss_probability is guaranteed."""
    timeout: float | None = None
    """Seconds one evaluation of the cost may take (None: no limit)."""


def validate(
    *,
    method: Any = "central",
    mode: Any = "full",
    eps: Any = None,
    samples: Any = None,
    seed: Any = 0,
    thresholds: Any = DEFAULT_THRESHOLDS,
    worst: Any = DEFAULT_WORST,
    batch_size: Any = None,
    time_steps: Any = None,
    batched: Any = False,
    workers: Any = None,
    executor: Any = None,
    progress: Any = True,
    directions: Any = None,
    miss_probability: Any = DEFAULT_MISS_PROBABILITY,
    detectable: Any = DEFAULT_DETECTABLE,
    timeout: Any = None,
) -> Options:
    """Check every option and return them as `Options`.

    Raises:
        InvalidArgumentError: naming the argument, its value and what is valid.
    """
    scheme = SCHEMES[_choice("method", method, METHODS)]
    mode = _choice("mode", mode, MODES)
    if mode in ("directional", "bisect") and scheme.name != "central":
        raise InvalidArgumentError(
            f"method={scheme.name!r} with mode={mode!r}: the directional modes use central "
            "differences along random directions; leave method at 'central'."
        )
    if mode in ("directional", "bisect") and (
        batched is not False or workers is not None or executor is not None
    ):
        raise InvalidArgumentError(
            f"mode={mode!r} evaluates a few dozen directions one after another; batched=, "
            "workers= and executor= speed up mode='full' or 'sample' only. Drop them."
        )
    if directions is not None and mode not in ("directional", "bisect"):
        raise InvalidArgumentError(
            f"directions={directions!r} only applies to mode='directional' or 'bisect'."
        )
    if not (isinstance(batched, bool) or callable(batched)):
        raise InvalidArgumentError(
            f"batched={batched!r} must be True (f accepts a batch along a new first axis of "
            "one parameter), False, or a callable batched(params, name, indices, values)."
        )
    if batched is not False and (workers is not None or executor is not None):
        raise InvalidArgumentError(
            "batched= and workers= / executor= are alternatives: pick one way to speed up."
        )
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise InvalidArgumentError(
            f"executor={executor!r} has no submit(): pass a concurrent.futures.Executor "
            "(e.g. ProcessPoolExecutor, or a Dask client's get_executor()) or a Dask client."
        )
    if not _is_int(worst) or worst < 1:
        raise InvalidArgumentError(f"worst={worst!r} must be a positive int (elements listed).")
    hints = {
        name: _positive_int(name, value)
        for name, value in (("batch_size", batch_size), ("time_steps", time_steps))
        if value is not None
    }
    return Options(
        scheme=scheme,
        mode=mode,
        eps=_eps(eps),
        samples=_samples(samples, mode),
        seed=_seed(seed),
        thresholds=_thresholds(thresholds),
        worst=int(worst),
        hints=hints,
        batched=batched,
        workers=None if workers is None else _positive_int("workers", workers),
        executor=executor,
        progress=bool(progress),
        directions=None if directions is None else _positive_int("directions", directions),
        miss_probability=_probability("miss_probability", miss_probability),
        detectable=_probability("detectable", detectable),
        timeout=_timeout(timeout, workers is None and executor is None),
    )


def require_callable(f: Any, argument: str) -> None:
    """Raise unless ``f`` can be called."""
    if not callable(f):
        raise InvalidArgumentError(
            f"{argument} must be callable (the cost function), but it is {a_type(f)}."
        )


def _choice(argument: str, value: Any, choices: Sequence[str]) -> Any:
    if value not in choices:
        raise invalid_choice(argument, value, choices)
    return value


def _is_int(value: Any) -> bool:
    """A Python or NumPy integer, not a bool: the one rule for every count option."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_real(value: Any) -> bool:
    """A Python or NumPy integer or float, not a bool: the one rule for every number option."""
    return _is_int(value) or isinstance(value, float | np.floating)


def _positive_int(argument: str, value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise InvalidArgumentError(f"{argument}={value!r} must be a positive int or None.")
    return int(value)


def _probability(argument: str, value: Any) -> float:
    if not _is_real(value) or not 0 < value < 1:
        raise InvalidArgumentError(f"{argument}={value!r} must be a number between 0 and 1.")
    return float(value)


def _timeout(timeout: Any, in_process: bool) -> float | None:
    if timeout is None:
        return None
    if not _is_real(timeout) or not (math.isfinite(timeout) and timeout > 0):
        raise InvalidArgumentError(
            f"timeout={timeout!r} must be a positive number of seconds per evaluation, or None."
        )
    if in_process:
        from ._timeout import require_timer

        require_timer()
    return float(timeout)


def _eps(eps: Any) -> Eps:
    if eps is None:
        return None
    if isinstance(eps, str) and eps == "auto":
        return "auto"
    if isinstance(eps, str):
        raise invalid_choice("eps", eps, ["auto"])
    if not _is_real(eps):
        raise InvalidArgumentError(
            f"eps={eps!r} must be a positive float, None (the default) or 'auto'."
        )
    if not (math.isfinite(eps) and eps > 0):
        raise InvalidArgumentError(
            f"eps={eps!r} must be positive; use a small positive float or eps='auto'."
        )
    return float(eps)


def _samples(samples: Any, mode: str) -> int | float | None:
    if samples is None:
        return None
    if mode != "sample":
        raise InvalidArgumentError(
            f"samples={samples!r} only applies to mode='sample' (mode is {mode!r})."
        )
    if not _is_real(samples):
        raise InvalidArgumentError(
            f"samples={samples!r} must be a count per array (int >= 1) "
            "or a fraction of each array (0 < float <= 1)."
        )
    count: int | float = int(samples) if _is_int(samples) else float(samples)
    if isinstance(count, int) and count < 1:
        raise InvalidArgumentError(f"samples={samples!r} must be at least 1 per array.")
    if isinstance(count, float) and not 0 < count <= 1:
        raise InvalidArgumentError(
            f"samples={samples!r} as a float is a fraction of each array and must be in (0, 1]; "
            "pass an int for a count."
        )
    return count


def _seed(seed: Any) -> int:
    if not _is_int(seed) or seed < 0:
        raise InvalidArgumentError(f"seed={seed!r} must be a non-negative int.")
    return int(seed)


def _thresholds(thresholds: Any) -> tuple[float, float, float]:
    ordered = isinstance(thresholds, Sequence | np.ndarray) and not isinstance(thresholds, str)
    values = (
        tuple(float(t) for t in thresholds)
        if ordered and all(_is_real(t) for t in thresholds)
        else ()
    )
    if len(values) != 3 or not 0 < values[0] < values[1] < values[2]:
        raise InvalidArgumentError(
            f"thresholds={thresholds!r} must be three increasing positive numbers "
            "(correct, acceptable, suspicious), e.g. (1e-7, 1e-5, 1e-3)."
        )
    return values[0], values[1], values[2]
