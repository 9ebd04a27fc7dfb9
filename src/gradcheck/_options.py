"""Validate the options of a check once, at the public boundary, into one frozen object."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, TypeVar

import numpy as np

from ._engine import METHODS, MODES, SCHEMES, Method, Mode, Scheme
from ._errors import InvalidArgumentError, invalid_choice
from ._results import DEFAULT_THRESHOLDS, DEFAULT_WORST
from ._text import a_type

Eps = float | Literal["auto"] | None
"""The step: None (the default for the dtype), "auto" (per element), or a positive float."""

DEFAULT_MISS_PROBABILITY = 1e-6
DEFAULT_DETECTABLE = 1e-3


class CheckOptions(TypedDict, total=False):
    """The options of a check: every entry point takes exactly these, as keywords.

    ``gradcheck.check``, ``check_layer``, ``gradcheck.torch.check_module`` /
    ``check_function``, ``gradcheck.jax.check_function``,
    ``gradcheck.autograd.check_function`` and the ``gradcheck.testing`` assertions all
    accept ``**options: Unpack[CheckOptions]``; an option an entry point cannot honour is
    refused there with an `InvalidArgumentError` that says why.

    Attributes:
        eps: the step. None: the textbook 1e-7 for float64 and a step suited to lower
            precisions; "auto": chosen per element from dtype and magnitude; or a float.
        method: "central", "forward", "backward", "central4" (fourth order) or "complex"
            (complex step; the cost must accept complex parameters).
        mode: "full" checks every coordinate; "sample" a seeded sample of each array;
            "directional" each array along a few random directions (2 evaluations each)
            with a stated miss probability; "bisect" that, then the wrong elements of a
            failing array by halving it.
        samples: mode="sample": a count per array (int) or a fraction of each (float).
        seed: seeds every random choice, so a check can be repeated exactly.
        thresholds: the verdict thresholds (correct, acceptable, suspicious).
        worst: how many worst elements to list per parameter.
        batch_size: the number of examples m, if known: a gradient off by m or 1/m is
            then named as a missing or doubled 1/m.
        time_steps: the number of time steps T of a recurrent model, likewise.
        batched: True if the cost also accepts params in which one array carries an
            extra leading batch axis of B perturbed copies (and returns B costs); or a
            callable ``batched(params, name, indices, values)`` returning the B costs of
            setting coordinate ``indices[b]`` of array ``name`` to ``values[b]``.
        workers: evaluate in this many worker processes (each with one copy of params).
        executor: a ``concurrent.futures.Executor`` or a Dask ``distributed.Client``.
        progress: show a progress bar on a terminal when a check takes over a second.
        directions: directional modes: random directions per array (default: enough
            for ``miss_probability`` at ``detectable``).
        miss_probability: directional modes: the chance of missing an error of relative
            size ``detectable`` in an array (1e-6 by default).
        detectable: directional modes: ``||error|| / ||gradient||`` of an array that must
            be caught with that probability (1e-3 by default).
        timeout: seconds one evaluation of the cost may take; past it the check stops
            with `EvaluationTimeoutError` (arrays restored).
    """

    eps: Eps
    method: Method
    mode: Mode
    samples: int | float | None
    seed: int
    thresholds: Sequence[float]
    worst: int
    batch_size: int | None
    time_steps: int | None
    batched: bool | Callable[..., Any]
    workers: int | None
    executor: Any
    progress: bool
    directions: int | None
    miss_probability: float
    detectable: float
    timeout: float | None


OPTION_DEFAULTS: Mapping[str, Any] = {
    "eps": None,
    "method": "central",
    "mode": "full",
    "samples": None,
    "seed": 0,
    "thresholds": DEFAULT_THRESHOLDS,
    "worst": DEFAULT_WORST,
    "batch_size": None,
    "time_steps": None,
    "batched": False,
    "workers": None,
    "executor": None,
    "progress": True,
    "directions": None,
    "miss_probability": DEFAULT_MISS_PROBABILITY,
    "detectable": DEFAULT_DETECTABLE,
    "timeout": None,
}
"""Every option of `CheckOptions` with its default, in the order signatures list them."""

OPTION_NAMES: tuple[str, ...] = tuple(OPTION_DEFAULTS)

F = TypeVar("F", bound=Callable[..., Any])


def takes_options(function: F) -> F:
    """Give an entry point that takes ``**options: Unpack[CheckOptions]`` the full signature.

    ``inspect.signature`` and ``help()`` then list every option as a keyword-only parameter
    with its default, as if each were spelled out, while the list itself is written once.
    """
    signature = inspect.signature(function)
    kept = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    listed = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                          annotation=_spelled(CheckOptions.__annotations__[name]))
        for name, default in OPTION_DEFAULTS.items()
        if name not in {p.name for p in kept}
    ]  # fmt: skip
    function.__signature__ = signature.replace(parameters=[*kept, *listed])  # type: ignore[attr-defined]
    return function


@dataclass(frozen=True, slots=True, kw_only=True)
class Execution:
    """How the cost evaluations run (the estimate's stage): never what they compute."""

    batched: bool | Callable[..., Any] = False
    """True: f accepts params with one array stacked along a new first axis; a callable:
    ``batched(params, name, indices, values)`` gives the costs of single-coordinate changes."""
    workers: int | None = None
    executor: Any = None
    """A concurrent.futures.Executor (or a Dask client) to evaluate on."""
    progress: bool = True
    """Show a progress bar on a terminal for checks that take more than about a second."""
    timeout: float | None = None
    """Seconds one evaluation of the cost may take (None: no limit)."""

    @property
    def in_process(self) -> bool:
        """The evaluations run in this process (a loop or a batched cost)."""
        return self.workers is None and self.executor is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Directional:
    """What the directional modes promise: directions per tensor, or the miss they allow."""

    directions: int | None = None
    """Directions per tensor (None: from miss_probability)."""
    miss_probability: float = DEFAULT_MISS_PROBABILITY
    detectable: float = DEFAULT_DETECTABLE
    """The relative error size ||e|| / ||g|| for which miss_probability is guaranteed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Every option of a check, validated: what to compute, how to run it, what to promise."""

    scheme: Scheme
    mode: Mode
    eps: Eps
    samples: int | float | None
    seed: int
    thresholds: tuple[float, float, float]
    worst: int
    hints: Mapping[str, int]
    """Sizes that name scale factors in findings: "batch_size" (m), "time_steps" (T)."""
    execution: Execution = Execution()
    directional: Directional = Directional()


def _spelled(annotation: Any) -> Any:
    """A TypedDict field's annotation as written (its ForwardRef unwrapped)."""
    return getattr(annotation, "__forward_arg__", annotation)


def from_keywords(options: Mapping[str, Any]) -> Options:
    """Validate the ``**options`` an entry point received (`CheckOptions`) into `Options`.

    Raises:
        InvalidArgumentError: an unknown option (with the closest known one), or a value
            `validate` refuses.
    """
    for name in options:
        if name not in OPTION_NAMES:
            raise invalid_choice("option", name, OPTION_NAMES)
    return _validate(options)


def _validate(given: Mapping[str, Any]) -> Options:
    """Check every option (the defaults of `OPTION_DEFAULTS` for the ones not given).

    Raises:
        InvalidArgumentError: naming the argument, its value and what is valid.
    """
    o = {**OPTION_DEFAULTS, **given}
    method, mode, eps, samples, seed, thresholds, worst = (
        o["method"],
        o["mode"],
        o["eps"],
        o["samples"],
        o["seed"],
        o["thresholds"],
        o["worst"],
    )
    batched, workers, executor, progress, timeout = (
        o["batched"],
        o["workers"],
        o["executor"],
        o["progress"],
        o["timeout"],
    )
    directions, miss_probability, detectable = (
        o["directions"],
        o["miss_probability"],
        o["detectable"],
    )
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
        for name, value in (("batch_size", o["batch_size"]), ("time_steps", o["time_steps"]))
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
        execution=Execution(
            batched=batched,
            workers=None if workers is None else _positive_int("workers", workers),
            executor=executor,
            progress=bool(progress),
            timeout=_timeout(timeout, workers is None and executor is None),
        ),
        directional=Directional(
            directions=None if directions is None else _positive_int("directions", directions),
            miss_probability=_probability("miss_probability", miss_probability),
            detectable=_probability("detectable", detectable),
        ),
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
