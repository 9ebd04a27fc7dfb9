"""Findings for the directional modes: what k projections and bisection can tell."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from .._results import Finding, FindingKind
from ._elements import ParamData, describe_elements
from ._factors import name_factor
from ._mistakes import EXPLAINED
from ._rows import Rows

_MIN_DIRECTIONS = 3
"""A common ratio over fewer directions than this could be chance."""


def explain_directions(
    rows: Rows,
    elements: Rows | None,
    hints: Mapping[str, int],
    tolerance: float,
    *,
    stopped: bool = False,
    bisect: bool = False,
) -> Finding:
    """What a tensor that failed along its random directions looks like.

    Args:
        rows: its direction rows.
        elements: the coordinates bisection checked (None: mode="directional").
        hints: sizes that name scale factors.
        tolerance: the acceptable threshold.
        stopped: bisection stopped at its limit of wrong elements.
        bisect: the check ran in mode="bisect" (so it does not suggest it).
    """
    name = rows.leaf.name
    ok = rows.measured()
    a, n = rows.analytic[ok], rows.numeric[ok]
    k = len(a)
    detail = {"directions": k, "analytic": a.tolist(), "numeric": n.tolist()}
    if not np.any(a) and np.any(n):
        return Finding(
            kind=FindingKind.ZERO,
            param=name,
            message=(
                f"The analytic gradient of {name} is zero but its numeric directional "
                "derivatives are not: the gradient is never computed, overwritten, or detached."
            ),
            detail=detail,
        )
    mismatch = float(np.linalg.norm(a - n))
    if k >= _MIN_DIRECTIONS and float(n @ n) > 0:
        factor = float(a @ n) / float(n @ n)
        residual = a - factor * n
        within = np.all(np.abs(residual) <= 3 * rows.error[ok] * max(1.0, abs(factor))
                        + 2e-3 * np.abs(a))  # fmt: skip
        if np.linalg.norm(residual) <= EXPLAINED * mismatch and within:
            if abs(factor + 1) < 2e-3:
                return Finding(
                    kind=FindingKind.SIGN,
                    param=name,
                    message=(
                        f"Along {k} random directions the analytic derivative of {name} is the "
                        "numeric one with its sign flipped (factor -1): a subtraction written "
                        "the wrong way round, or a gradient ascent step."
                    ),
                    detail={**detail, "factor": factor},
                )
            named, cause = name_factor(abs(factor), hints)
            flipped = " with the sign flipped" if factor < 0 else ""
            return Finding(
                kind=FindingKind.SIGN if factor < 0 else FindingKind.SCALE,
                param=name,
                message=(
                    f"Along {k} random directions the analytic derivative of {name} is "
                    f"{named} the numeric one{flipped}: {cause}."
                ),
                detail={**detail, "factor": factor},
            )
    if elements is not None and elements.confirmed.any():
        found = elements.measured()
        data = ParamData(
            name=name,
            shape=rows.leaf.shape,
            local=elements.local[found],
            analytic=elements.analytic[found],
            numeric=elements.numeric[found],
            theta=np.zeros(int(found.sum())),
            scale=0.0,
            tolerance=tolerance,
            error=elements.error[found],
        )
        finding = describe_elements(data, among=rows.leaf.size)
        if stopped:
            finding = replace(finding, message=finding.message.rstrip(".")
                              + " (bisection stopped there; there may be more).")  # fmt: skip
        return replace(finding, detail={**finding.detail, **detail})
    if elements is not None:
        where = "bisection could not single out its wrong elements; mode='full' finds them"
    elif bisect:
        where = "bisection did not single it out; mode='full' finds the wrong elements"
    else:
        where = "mode='bisect' finds the wrong elements"
    return Finding(
        kind=FindingKind.LOCALIZED,
        param=name,
        message=(
            f"The gradient of {name} is wrong along random directions (difference "
            f"{rows.difference()[0]:.2g}) without a common factor; {where}."
        ),
        detail=detail,
    )


def unresolved_range(name: str, first: int, last: int) -> Finding:
    """Bisection found an error in a range but in neither of its halves."""
    return Finding(
        kind=FindingKind.LOCALIZED,
        param=name,
        message=(
            f"An error was detected among elements {first}..{last} (flat order) of {name}, but "
            "neither half of them failed on its own; check them with mode='full'."
        ),
        detail={"first": first, "last": last},
    )
