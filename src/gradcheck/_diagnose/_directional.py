"""Findings for the directional modes: what k projections and bisection can tell."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from .._compare import Comparison, ParamReport
from .._engine import DirectionalResult, Projection
from ._finding import Finding
from ._mistakes import EXPLAINED, ParamData, describe_elements, name_factor

_MIN_DIRECTIONS = 3
"""A common ratio over fewer directions than this could be chance."""


def diagnose_directional(
    comparison: Comparison,
    result: DirectionalResult,
    hints: Mapping[str, int],
    tolerance: float,
) -> list[Finding]:
    """Findings for tensors that failed along their directions, worst first."""
    failing = sorted(
        (
            (param, projection)
            for param, projection in zip(comparison.params, result.projections, strict=True)
            if projection is not None and not param.verdict.passes
        ),
        key=lambda pair: pair[0].difference,
        reverse=True,
    )
    findings = [_explain(param, p, result, hints, tolerance) for param, p in failing]
    for name, first, last in result.unresolved:
        findings.append(
            Finding(
                kind="localized",
                param=name,
                message=(
                    f"An error was detected among elements {first}..{last} (flat order) of "
                    f"{name}, but neither half of them failed on its own; check them with "
                    "mode='full'."
                ),
                detail={"first": first, "last": last},
            )
        )
    return findings


def _explain(
    param: ParamReport,
    projection: Projection,
    result: DirectionalResult,
    hints: Mapping[str, int],
    tolerance: float,
) -> Finding:
    a, n = projection.analytic, projection.numeric
    k = len(a)
    detail = {"directions": k, "analytic": a.tolist(), "numeric": n.tolist()}
    if not np.any(a) and np.any(n):
        return Finding(
            kind="zero",
            param=param.name,
            message=(
                f"The analytic gradient of {param.name} is zero but its numeric directional "
                "derivatives are not: the gradient is never computed, overwritten, or detached."
            ),
            detail=detail,
        )
    mismatch = float(np.linalg.norm(a - n))
    if k >= _MIN_DIRECTIONS and float(n @ n) > 0:
        factor = float(a @ n) / float(n @ n)
        if np.linalg.norm(a - factor * n) <= EXPLAINED * mismatch:
            named, cause = name_factor(abs(factor), hints)
            flipped = " with the sign flipped" if factor < 0 else ""
            return Finding(
                kind="sign" if factor < 0 else "scale",
                param=param.name,
                message=(
                    f"Along {k} random directions the analytic derivative of {param.name} is "
                    f"{named} the numeric one{flipped}: {cause}."
                ),
                detail={**detail, "factor": factor},
            )
    if param.mismatches and param.elements is not None:
        elements = param.elements
        data = ParamData(
            name=param.name,
            shape=param.shape,
            local=elements.local,
            analytic=elements.analytic,
            numeric=elements.numeric,
            theta=np.zeros(len(elements.local)),
            scale=0.0,
            tolerance=tolerance,
        )
        finding = describe_elements(data, among=param.size)
        if param.name in result.stopped:
            message = finding.message.rstrip(".") + " (bisection stopped there; there may be more)."
            finding = replace(finding, message=message)
        return replace(finding, detail={**finding.detail, **detail})
    return Finding(
        kind="localized",
        param=param.name,
        message=(
            f"The gradient of {param.name} is wrong along random directions (difference "
            f"{param.difference:.2g}) without a common factor; mode='bisect' finds the "
            "wrong elements."
        ),
        detail=detail,
    )
