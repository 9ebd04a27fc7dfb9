"""gradcheck: verify hand-written gradients, say where they are wrong and what kind of mistake.

Names are imported on first use (PEP 562), so ``import gradcheck`` — and the pytest
plugin, which pytest loads in every run where gradcheck is installed — costs nothing
until a check is made.

Example:
    >>> import numpy as np, gradcheck
    >>> params = {"w": np.array([1.0, -2.0, 3.0])}
    >>> report = gradcheck.check(lambda p: np.sum(p["w"] ** 2), params, {"dw": 2 * params["w"]})
    >>> report.passed
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._api import check as check
    from ._api import check_layer as check_layer
    from ._api import gradient_checking as gradient_checking
    from ._engine import Method as Method
    from ._engine import Mode as Mode
    from ._errors import CostFunctionError as CostFunctionError
    from ._errors import EvaluationTimeoutError as EvaluationTimeoutError
    from ._errors import GradcheckError as GradcheckError
    from ._errors import GradcheckWarning as GradcheckWarning
    from ._errors import GradientMismatchError as GradientMismatchError
    from ._errors import InvalidArgumentError as InvalidArgumentError
    from ._errors import MissingExtraError as MissingExtraError
    from ._errors import ParamTreeError as ParamTreeError
    from ._errors import WorkerError as WorkerError
    from ._options import CheckOptions as CheckOptions
    from ._options import Eps as Eps
    from ._results import ElementError as ElementError
    from ._results import Finding as Finding
    from ._results import FindingKind as FindingKind
    from ._results import ParamReport as ParamReport
    from ._results import Report as Report
    from ._results import Settings as Settings
    from ._results import Verdict as Verdict
    from ._version import __version__ as __version__

_WHERE = {
    "check": "._api",
    "check_layer": "._api",
    "gradient_checking": "._api",
    "ElementError": "._results",
    "FindingKind": "._results",
    "CheckOptions": "._options",
    "Eps": "._options",
    "Method": "._engine",
    "Mode": "._engine",
    "ParamReport": "._results",
    "Verdict": "._results",
    "Finding": "._results",
    "CostFunctionError": "._errors",
    "EvaluationTimeoutError": "._errors",
    "GradcheckError": "._errors",
    "GradcheckWarning": "._errors",
    "GradientMismatchError": "._errors",
    "InvalidArgumentError": "._errors",
    "MissingExtraError": "._errors",
    "ParamTreeError": "._errors",
    "WorkerError": "._errors",
    "Report": "._results",
    "Settings": "._results",
    "__version__": "._version",
}

__all__ = [
    "CheckOptions",
    "CostFunctionError",
    "ElementError",
    "Eps",
    "EvaluationTimeoutError",
    "Finding",
    "FindingKind",
    "GradcheckError",
    "GradcheckWarning",
    "GradientMismatchError",
    "InvalidArgumentError",
    "Method",
    "MissingExtraError",
    "Mode",
    "ParamReport",
    "ParamTreeError",
    "Report",
    "Settings",
    "Verdict",
    "WorkerError",
    "__version__",
    "check",
    "check_layer",
    "gradient_checking",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gradcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    """Only the public names: what ``__all__`` lists."""
    return sorted(__all__)
