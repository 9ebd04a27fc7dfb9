"""Findings for mismatches that are not mistakes: kinks, noise, precision, randomness, nan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._tree import FlatParams, Leaf, spell
from ._finding import Finding

_LISTED = 5


def nondeterministic(first: float, second: float, grads_differ: bool) -> Finding | None:
    """Compare two evaluations of the cost at the same point; differing ones mean randomness."""
    if first == second and not grads_differ:
        return None
    if first == second:
        message = (
            "The gradients differ between two calls at the same point (nondeterministic "
            "backpropagation: random sampling or dropout inside it?); fix the random seed "
            "so the check can give a verdict."
        )
    else:
        message = (
            f"The cost differs between two evaluations at the same point ({first:.10g} vs "
            f"{second:.10g}): dropout, random sampling or data shuffling inside the cost? "
            "Fix the random seed (or turn the randomness off) inside the cost and run again; "
            "a finite-difference check cannot give a verdict on a random cost."
        )
    return Finding(
        kind="nondeterministic",
        param=None,
        message=message,
        detail={"first": first, "second": second, "gap": abs(first - second),
                "grads_differ": grads_differ},
    )  # fmt: skip


def nonfinite(coordinates: NDArray[np.intp], side: str, flat: FlatParams) -> list[Finding]:
    """One finding per parameter listing the coordinates where ``side`` is nan or inf."""
    findings = []
    for leaf in flat.leaves:
        mine = coordinates[(coordinates >= leaf.offset) & (coordinates < leaf.offset + leaf.size)]
        if not len(mine):
            continue
        indices = [leaf.index_of(int(c) - leaf.offset) for c in mine]
        listed = _list(leaf.name, indices)
        if side == "numeric":
            message = (
                f"The cost was nan or inf when perturbing {listed}, so the numeric gradient "
                f"of {leaf.name} is unknown there: the cost may be undefined next to the point "
                "(log or sqrt of a value near 0?); try a smaller eps or a one-sided method."
            )
        else:
            message = (
                f"The analytic gradient of {leaf.name} is nan or inf at {listed}: "
                "look for a division by zero or an overflow in backpropagation."
            )
        findings.append(
            Finding(
                kind="nonfinite",
                param=leaf.name,
                message=message,
                detail={"side": side, "count": len(indices), "indices": [list(i) for i in indices]},
            )
        )
    return findings


def kinks(leaf: Leaf, found: Sequence[Any], *, everything: bool = False) -> Finding:
    """Elements whose mismatch is a kink the step crosses; left out of the verdict.

    Args:
        leaf: the parameter.
        found: the kinks (``local``, ``analytic``, ``left``, ``right``, ``within``).
        everything: every checked element of the parameter sits on a kink.
    """
    inside = [k for k in found if k.within]
    outside = [k for k in found if not k.within]
    parts = []
    if inside:
        spots = _list(leaf.name, [leaf.index_of(k.local) for k in inside])
        parts.append(
            f"The cost has a kink (not differentiable: ReLU at 0, a max tie, |x| at 0, a hinge "
            f"corner) at {spots}, and the analytic values lie between the left and right "
            "slopes, so these elements are left out of the verdict"
        )
    if outside:
        spots = _list(leaf.name, [leaf.index_of(k.local) for k in outside])
        parts.append(
            f"at the kinks at {spots} the analytic values lie outside the one-sided slopes "
            "along the coordinate: right for a nearby point (a tie broken one way) but "
            "not verifiable by perturbing one element, so they are left out too"
        )
    message = "; ".join(parts)
    message = message[:1].upper() + message[1:]
    if everything:
        message += f"; every checked element of {leaf.name} is at a kink, so none was verified"
    return Finding(
        kind="kink",
        param=leaf.name,
        message=message + ".",
        detail={
            "count": len(found),
            "indices": [list(leaf.index_of(k.local)) for k in found],
            "analytic": [k.analytic for k in found],
            "left_slope": [k.left for k in found],
            "right_slope": [k.right for k in found],
            "within": [k.within for k in found],
        },
    )


def noise(name: str, difference: float, error_bar: float, refined: int) -> Finding:
    """The parameter's mismatch is within the finite-difference error: not a bug."""
    if error_bar >= 0.5:
        message = (
            f"The gradient of {name} is too small for finite differences to resolve at this "
            f"cost (error bar {error_bar:.2g} against a difference of {difference:.2g}): "
            "no evidence of a bug, but no verification either; check again away from a "
            "minimum, or with a cost closer to 0."
        )
    else:
        confirmed = (
            f"; re-estimated at several steps, its {refined} worst elements agree"
            if refined
            else ""
        )
        message = (
            f"The difference {difference:.2g} of {name} is within the finite-difference error "
            f"bar {error_bar:.2g} (round-off and truncation){confirmed}, so it is noise, not a "
            "bug."
        )
    return Finding(
        kind="noise",
        param=name,
        message=message,
        detail={"difference": difference, "error_bar": error_bar, "refined": refined},
    )


def precision(
    flat: FlatParams, cost_dtype: np.dtype[Any] | None, step: str, error_bars: dict[str, float]
) -> Finding | None:
    """Say when parameters or the cost are in low precision, and what that does to the check."""
    low = [leaf for leaf in flat.leaves if np.finfo(leaf.dtype).eps > np.finfo(np.float64).eps]
    cost_low = cost_dtype is not None and np.finfo(cost_dtype).eps > np.finfo(np.float64).eps
    if not low and not cost_low:
        return None
    parts = []
    if low:
        dtypes = sorted({str(leaf.dtype) for leaf in low})
        names = ", ".join(leaf.name for leaf in low[:_LISTED]) + (
            " ..." if len(low) > _LISTED else ""
        )
        parts.append(f"{names} {'is' if len(low) == 1 else 'are'} {'/'.join(dtypes)}")
    if cost_low:
        parts.append(f"the cost is computed in {cost_dtype}")
    bar = max(error_bars.values(), default=float("nan"))
    return Finding(
        kind="precision",
        param=None,
        message=(
            f"{_capitalize(' and '.join(parts))}: steps suited to that precision were used "
            f"({step}), and differences up to about {bar:.1g} are round-off, not bugs."
        ),
        detail={
            "params": [leaf.name for leaf in low],
            "dtypes": {leaf.name: str(leaf.dtype) for leaf in low},
            "cost_dtype": str(cost_dtype),
            "step": step,
            "error_bars": error_bars,
        },
    )


def raised_steps(count: int) -> Finding:
    """Steps that vanished below the dtype's resolution and were raised to one ulp."""
    return Finding(
        kind="precision",
        param=None,
        message=(
            f"The step vanished below the resolution of the parameters' dtype at {count} "
            "coordinates and was raised to one unit in the last place; pass eps='auto' for "
            "steps suited to the precision."
        ),
        detail={"raised_steps": count},
    )


def unused(name: str) -> Finding:
    """Both gradients are exactly zero: the check cannot say anything about this parameter."""
    return Finding(
        kind="unused",
        param=name,
        message=(
            f"Both gradients of {name} are exactly zero: the cost does not depend on it at this "
            "point (dead ReLUs? an unused parameter?), so this check cannot tell whether its "
            "backpropagation is right; check again at another point."
        ),
        detail={},
    )


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _list(name: str, indices: Sequence[tuple[int, ...]]) -> str:
    listed = ", ".join(spell(name, i) for i in indices[:_LISTED])
    more = f" and {len(indices) - _LISTED} more" if len(indices) > _LISTED else ""
    return listed + more
