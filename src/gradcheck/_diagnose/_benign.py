"""Findings for what is not a mistake, and for what could not be settled.

Kinks, noise, precision, randomness and nan are not backpropagation mistakes; an
inconclusive parameter is not a pass, and its finding says what to do about it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._compare import CONFIDENCE
from .._results import Finding, FindingKind
from .._tree import Leaf, spell

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
        a, b = distinct_digits(first, second)
        message = (
            f"The cost differs between two evaluations at the same point ({a} vs {b}): "
            "dropout, random sampling or data shuffling inside the cost? Fix the random seed "
            "(or turn the randomness off) inside the cost and run again; a finite-difference "
            "check cannot give a verdict on a random cost."
        )
    return Finding(
        kind=FindingKind.NONDETERMINISTIC,
        param=None,
        message=message,
        detail={"first": first, "second": second, "gap": abs(first - second),
                "grads_differ": grads_differ},
    )  # fmt: skip


def changed_during(first: float, last: float, sigma: float) -> Finding:
    """The cost at the base point moved during the check by more than its noise."""
    a, b = distinct_digits(first, last)
    return Finding(
        kind=FindingKind.NONDETERMINISTIC,
        param=None,
        message=(
            f"The cost at the given parameters changed during the check ({a} at the start, "
            f"{b} at the end; its measured noise is {sigma:.2g}): randomness that starts "
            "after the first calls (a random stream, dropout in training mode), or state the "
            "cost keeps between calls. No verdict: fix the randomness and run again."
        ),
        detail={"first": first, "last": last, "gap": abs(first - last), "noise": sigma},
    )


def distinct_digits(first: float, second: float) -> tuple[str, str]:
    """Format two numbers with just enough significant digits to tell them apart."""
    for digits in range(4, 18):
        a, b = f"{first:.{digits}g}", f"{second:.{digits}g}"
        if a != b:
            return a, b
    return repr(first), repr(second)


_MSG_NONFINITE_ANALYTIC = (
    "The analytic gradient of {name} is nan or inf at {where}: look for a division by zero "
    "or an overflow in backpropagation."
)
_MSG_NONFINITE_NUMERIC = (
    "The cost was nan or inf when perturbing {where}, on both sides and at every smaller step "
    "tried, so the numeric gradient of {name} is unknown there: the point may sit outside "
    "the cost's domain (log or sqrt of a value at 0?)."
)
_MSG_DOMAIN_EDGE = (
    "The cost is nan or inf on one side of {where} (the edge of its domain: log or sqrt of a "
    "value near 0?); those elements were checked with one-sided differences that stay inside "
    "the domain."
)


def nonfinite_analytic(leaf: Leaf, locals_: Sequence[int]) -> Finding:
    """Elements whose analytic gradient is nan or inf: a bug in backpropagation."""
    return _nonfinite(leaf, locals_, _MSG_NONFINITE_ANALYTIC, side="analytic")


def nonfinite_numeric(leaf: Leaf, locals_: Sequence[int]) -> Finding:
    """Elements where the cost was nan or inf on both sides at every step tried."""
    return _nonfinite(leaf, locals_, _MSG_NONFINITE_NUMERIC, side="numeric", resolved=False)


def domain_edge(leaf: Leaf, locals_: Sequence[int]) -> Finding:
    """Elements next to the edge of the cost's domain, checked with one-sided differences."""
    return _nonfinite(leaf, locals_, _MSG_DOMAIN_EDGE, side="numeric", resolved=True)


def _nonfinite(leaf: Leaf, locals_: Sequence[int], message: str, **detail: Any) -> Finding:
    """A "nonfinite" finding at the given elements of a leaf (``message`` names them)."""
    indices = [leaf.index_of(int(i)) for i in locals_]
    return Finding(
        kind=FindingKind.NONFINITE,
        param=leaf.name,
        message=message.format(name=leaf.name, where=_list(leaf.name, indices)),
        detail={**detail, "count": len(indices), "indices": [list(i) for i in indices]},
    )


def kinks(leaf: Leaf, found: Sequence[Any], *, moved: Sequence[int] = ()) -> Finding:
    """Elements where the step crosses a kink of the cost.

    Args:
        leaf: the parameter.
        found: the kinks (``row``, ``analytic``, ``left``, ``right``, ``within``, ``local``).
        moved: local indices of tied elements that were settled at a nearby point.
    """
    inside = [k for k in found if k.within]
    outside = [k for k in found if not k.within and k.local not in moved]
    settled = [k for k in found if not k.within and k.local in moved]
    parts = []
    if inside:
        spots = _list(leaf.name, [leaf.index_of(k.local) for k in inside])
        parts.append(
            f"The cost has a kink (not differentiable: ReLU at 0, a max tie, |x| at 0, a hinge "
            f"corner) at {spots}; the analytic values lie between the left and right slopes "
            "measured there, so they are valid subgradients (left out of the difference)"
        )
    if settled:
        spots = _list(leaf.name, [leaf.index_of(k.local) for k in settled])
        parts.append(
            f"at {spots} the analytic values lay outside the one-sided slopes of a kink; the "
            "gradient was recomputed a small step off the kink and checked there"
        )
    if outside:
        spots = _list(leaf.name, [leaf.index_of(k.local) for k in outside])
        parts.append(
            f"at {spots} the analytic values lie outside the one-sided slopes of a kink: "
            "possibly a tie broken the other way (right at a nearby point), but not "
            "verifiable here, so not verified"
        )
    message = "; ".join(parts)
    message = message[:1].upper() + message[1:]
    return Finding(
        kind=FindingKind.KINK,
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


def _times(difference: float, error_bar: float) -> str:
    """``0.4 times``, ``1.7 times``: a difference in units of its error bar."""
    if error_bar <= 0 or not math.isfinite(error_bar):
        return "within"
    return f"{difference / error_bar:.2g} times"


def noise(name: str, difference: float, error_bar: float, steps: Sequence[float]) -> Finding:
    """The parameter passes within its error bar, and the bar is narrow enough to rule out a bug."""
    used = ""
    if steps:
        low, high = min(steps), max(steps)
        span = f"{low:.2g}" if high <= 1.5 * low else f"{low:.2g} to {high:.2g}"
        used = f"; its elements were re-estimated at steps {span}, chosen for the cost's noise"
    return Finding(
        kind=FindingKind.NOISE,
        param=name,
        message=(
            f"The difference {difference:.2g} of {name} is {_times(difference, error_bar)} its "
            f"finite-difference error bar {error_bar:.2g} (round-off of the cost's measured "
            f"noise and truncation; up to {CONFIDENCE:g} bars is what they alone give){used}, "
            "and that bar is narrow enough to exclude a bug: round-off, not a mistake."
        ),
        detail={"difference": difference, "error_bar": error_bar, "steps": list(steps)},
    )


_WHY = {
    "no_step": "no step moved {where}: x + h rounds back to x in {dtype}, so there is no "
    "numeric derivative there",
    "nonfinite": "the cost is nan or inf on both sides of {where} at every step tried, so no "
    "finite difference could be taken there",
    "tie": "at {where} the cost has a kink and the analytic value lies outside the one-sided "
    "slopes: possibly a tie broken the other way, not verifiable at this point",
    "flat": "the cost did not change at all when {where} moved, at any step tried, while the "
    "analytic gradient says it should: it is rounded more coarsely than these steps show",
    "noise": "the cost's measured noise ({sigma:.2g}) leaves an error bar of {bar:.2g} on its "
    "difference {difference:.2g} even at the best steps tried, too wide to tell a right "
    "gradient from a wrong one",
    "edge": "the cost is nan or inf on one side of {where} (the edge of its domain), and the "
    "one-sided differences there do not settle as a smooth function's do (a derivative that "
    "is infinite or not smooth at the edge, like sqrt at 0), so they cannot confirm it",
}
_WHAT = {
    "no_step": "pass a larger eps, or leave eps=None so that gradcheck picks steps of at least "
    "a few units in the last place",
    "nonfinite": "check at a point inside the cost's domain",
    "tie": "check at a point without ties, or pass grads=None (f returns the gradient too) so "
    "that gradcheck can recompute the gradient just off the kink",
    "flat": "return the cost without rounding (no round(), float16 or integer steps in it)",
    "noise": "remove large constants from the loss, compute the cost in float64, or check at "
    "a point where the gradient is larger",
    "edge": "check at a point inside the cost's domain, away from its edge",
}


def inconclusive(
    leaf: Leaf,
    reason: str,
    *,
    where: Sequence[int],
    difference: float,
    error_bar: float,
    sigma: float,
    eps: float | None,
    suggested: float | None,
) -> Finding:
    """The evidence about a parameter could not settle its verdict: say why and what to do."""
    indices = [leaf.index_of(int(i)) for i in where]
    why = _WHY.get(reason, _WHY["noise"]).format(
        where=_list(leaf.name, indices),
        dtype=leaf.dtype,
        sigma=sigma,
        bar=error_bar,
        difference=difference,
    )
    what = _WHAT.get(reason, _WHAT["noise"])
    if eps is not None and reason in ("no_step", "noise"):
        hint = f" (the measured noise calls for steps near {suggested:.2g})" if suggested else ""
        what = f"eps={eps:.3g} was kept as given{hint}: pass eps=None to let gradcheck choose"
    return Finding(
        kind=FindingKind.INCONCLUSIVE,
        param=leaf.name,
        message=f"No verdict for {leaf.name}: {why}. To settle it, {what}.",
        detail={"reason": reason, "count": len(indices),
                "indices": [list(i) for i in indices[:50]], "difference": difference,
                "error_bar": error_bar, "noise": sigma, "eps": eps,
                "suggested_eps": suggested},
    )  # fmt: skip


def precision(
    leaves: Sequence[Leaf], sigma: float, relative: float, steps: str, bars: dict[str, float]
) -> Finding | None:
    """Say when parameters are in low precision and what that does to the check."""
    low = [leaf for leaf in leaves if np.finfo(leaf.dtype).eps > np.finfo(np.float64).eps]
    if not low:
        return None
    dtypes = sorted({str(leaf.dtype) for leaf in low})
    names = ", ".join(leaf.name for leaf in low[:_LISTED]) + (" ..." if len(low) > _LISTED else "")
    verb = "is" if len(low) == 1 else "are"
    finite = [b for b in bars.values() if np.isfinite(b)]
    bar = f"; differences up to about {max(finite):.1g} are round-off" if finite else ""
    return Finding(
        kind=FindingKind.PRECISION,
        param=None,
        message=(
            f"{names} {verb} {'/'.join(dtypes)}: the steps ({steps}) follow that precision and "
            f"the cost's measured noise ({sigma:.2g}, {relative:.1g} of its variation){bar}, "
            "not bugs."
        ),
        detail={
            "params": [leaf.name for leaf in low],
            "dtypes": {leaf.name: str(leaf.dtype) for leaf in low},
            "noise": sigma,
            "relative_noise": relative,
            "step": steps,
            "error_bars": bars,
        },
    )


def negligible(name: str, bar: float, *, measured: int = 0, at_kinks: int = 0) -> Finding:
    """The gradient is zero to within round-off that is negligible for the whole check.

    Where other elements sat on kinks (verified as subgradients) the parameter is not unused:
    only the elements measured by value have a zero gradient there.
    """
    if at_kinks:
        what = "element" if measured == 1 else "elements"
        return Finding(
            kind=FindingKind.NOISE,
            param=name,
            message=(
                f"The {measured} {what} of {name} checked by value have a zero gradient to "
                f"within round-off (both sides below the error bar {bar:.2g}, negligible next "
                f"to the check's other gradients), and the analytic gradient agrees; the other "
                f"{at_kinks} sit on kinks, where the analytic values are valid subgradients."
            ),
            detail={"error_bar": bar, "measured": measured, "at_kinks": at_kinks},
        )
    return Finding(
        kind=FindingKind.UNUSED,
        param=name,
        message=(
            f"The gradient of {name} is zero to within round-off (both sides below the error "
            f"bar {bar:.2g}, negligible next to the check's other gradients): the cost does not "
            "depend on it at this point (a bias before a normalization layer? dead units?), "
            "and the analytic gradient agrees."
        ),
        detail={"error_bar": bar},
    )


def unused(name: str) -> Finding:
    """Both gradients are exactly zero: the cost does not depend on this parameter here."""
    return Finding(
        kind=FindingKind.UNUSED,
        param=name,
        message=(
            f"Both gradients of {name} are exactly zero: the cost does not depend on it at this "
            "point (dead ReLUs? an unused parameter?). Zero agrees with zero, but a mistake "
            "in code that is not reached here would not show; check again at another point."
        ),
        detail={},
    )


def _list(name: str, indices: Sequence[tuple[int, ...]]) -> str:
    listed = ", ".join(spell(name, i) for i in indices[:_LISTED])
    more = f" and {len(indices) - _LISTED} more" if len(indices) > _LISTED else ""
    return listed + more
