"""Validate the options of a check once, at the public boundary, into one frozen object."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._compare import DEFAULT_THRESHOLDS, DEFAULT_WORST
from ._engine import METHODS, MODES, SCHEMES, Mode, Scheme
from ._errors import InvalidArgumentError, invalid_choice

Eps = float | Literal["auto"] | None

_UNSUPPORTED_MODES = {"directional", "bisect"}


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
) -> Options:
    """Check every option and return them as `Options`.

    Raises:
        InvalidArgumentError: naming the argument, its value and what is valid.
    """
    scheme = SCHEMES[_choice("method", method, METHODS)]
    mode = _choice("mode", mode, MODES)
    if mode in _UNSUPPORTED_MODES:
        raise InvalidArgumentError(
            f"mode={mode!r} is not available in this version; use mode='full' or mode='sample'."
        )
    if isinstance(worst, bool) or not isinstance(worst, int) or worst < 1:
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
        worst=worst,
        hints=hints,
    )


def require_callable(f: Any, argument: str) -> None:
    """Raise unless ``f`` can be called."""
    if not callable(f):
        raise InvalidArgumentError(
            f"{argument} must be callable (the cost function), but it is a {type(f).__name__}."
        )


def _choice(argument: str, value: Any, choices: Sequence[str]) -> Any:
    if value not in choices:
        raise invalid_choice(argument, value, choices)
    return value


def _positive_int(argument: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidArgumentError(f"{argument}={value!r} must be a positive int or None.")
    return int(value)


def _eps(eps: Any) -> Eps:
    if eps is None or eps == "auto":
        return eps  # type: ignore[no-any-return]
    if isinstance(eps, str):
        raise invalid_choice("eps", eps, ["auto"])
    if not isinstance(eps, float | int) or isinstance(eps, bool):
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
    if isinstance(samples, bool) or not isinstance(samples, int | float):
        raise InvalidArgumentError(
            f"samples={samples!r} must be a count per array (int >= 1) "
            "or a fraction of each array (0 < float <= 1)."
        )
    if isinstance(samples, int) and samples < 1:
        raise InvalidArgumentError(f"samples={samples!r} must be at least 1 per array.")
    if isinstance(samples, float) and not 0 < samples <= 1:
        raise InvalidArgumentError(
            f"samples={samples!r} as a float is a fraction of each array and must be in (0, 1]; "
            "pass an int for a count."
        )
    return samples


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidArgumentError(f"seed={seed!r} must be a non-negative int.")
    return int(seed)


def _thresholds(thresholds: Any) -> tuple[float, float, float]:
    try:
        values = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not 0 < values[0] < values[1] < values[2]:
        raise InvalidArgumentError(
            f"thresholds={thresholds!r} must be three increasing positive numbers "
            "(correct, acceptable, suspicious), e.g. (1e-7, 1e-5, 1e-3)."
        )
    return values[0], values[1], values[2]
