"""Exceptions and warnings raised by gradcheck.

Every error gradcheck raises derives from `GradcheckError`, and also from the
builtin that carries the same meaning, so existing ``except ValueError`` or
``except AssertionError`` clauses keep working::

    GradcheckError(Exception)
    ├── InvalidArgumentError(GradcheckError, ValueError)    an option has a bad value
    ├── ParamTreeError(GradcheckError, ValueError)          params / grads are malformed
    ├── CostFunctionError(GradcheckError, RuntimeError)     the user's cost misbehaved
    │   └── WorkerError(CostFunctionError)                   a worker died, exited or was lost
    ├── EvaluationTimeoutError(CostFunctionError, TimeoutError)  an evaluation ran past timeout=
    ├── MissingExtraError(GradcheckError, ImportError)      an optional extra is not installed
    └── GradientMismatchError(GradcheckError, AssertionError)   raised by gradcheck.testing

    GradcheckWarning(UserWarning)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class GradcheckError(Exception):
    """Base class of every error gradcheck raises."""


class InvalidArgumentError(GradcheckError, ValueError):
    """An argument of a public function has a value gradcheck cannot use."""


class ParamTreeError(GradcheckError, ValueError):
    """The parameters or gradients are malformed or do not match each other."""


class CostFunctionError(GradcheckError, RuntimeError):
    """The user's cost function raised, returned a non-scalar, or misbehaved.

    Attributes:
        param: name of the parameter being perturbed when it happened, or None at the base point.
        index: index of the perturbed element inside that parameter, or None.
    """

    def __init__(
        self, message: str, *, param: str | None = None, index: tuple[int, ...] | None = None
    ) -> None:
        super().__init__(message)
        self.param = param
        self.index = index


class WorkerError(CostFunctionError):
    """A worker process died, exited or was lost while it evaluated the cost.

    The check stops; the caller's arrays were never touched by the worker (each worker
    perturbs its own copy) and are intact.

    Attributes:
        coordinates: how many coordinates were in flight when it happened.
    """

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        index: tuple[int, ...] | None = None,
        coordinates: int = 0,
    ) -> None:
        super().__init__(message, param=param, index=index)
        self.coordinates = coordinates


class EvaluationTimeoutError(CostFunctionError, TimeoutError):
    """One evaluation of the cost took longer than the ``timeout=`` option allows."""


class MissingExtraError(GradcheckError, ImportError):
    """An optional dependency needed for this feature is not installed."""


class GradientMismatchError(GradcheckError, AssertionError):
    """Gradients do not match; raised only by `gradcheck.testing`, so pytest reports a failure.

    Attributes:
        report: the `Report` of the failed check (its rendering is the message).
    """

    def __init__(self, report: Any) -> None:
        super().__init__(str(report))
        self.report = report


class GradcheckWarning(UserWarning):
    """Something worth knowing about a check that does not stop it."""


def invalid_choice(argument: str, value: object, choices: Iterable[str]) -> InvalidArgumentError:
    """Build the error for an unknown option value: list the valid ones, suggest the closest."""
    valid = sorted(choices)
    message = f"{argument}={value!r} is not one of {', '.join(repr(c) for c in valid)}."
    if isinstance(value, str):
        close = difflib.get_close_matches(value, valid, n=1)
        if close:
            message += f" Did you mean {argument}={close[0]!r}?"
    return InvalidArgumentError(message)
