"""Findings that describe how a check ran rather than a parameter's evidence.

Steps raised to move x, directions that could not reach the asked miss probability, inputs
held fixed, sample counts above an array's size: notes a reader needs to trust the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._results import Finding, FindingKind

_LISTED = 5


def reach(
    name: str, directions: int, missed: float, detectable: float, wanted: float, caught: float
) -> Finding:
    """The round-off of the cost kept the directions from the miss probability asked for."""
    return Finding(
        kind=FindingKind.PRECISION,
        param=name,
        message=(
            f"The cost's round-off widens what the {directions} random directions of {name} "
            f"must allow for: an error of {detectable:g} of its gradient norm escapes them "
            f"with probability {missed:.2g}, not the {wanted:g} asked for; errors of "
            f"{caught:.2g} of the norm and larger escape with probability at most {wanted:g}. "
            "Reduce the cost's round-off (float64 throughout, no large constant added to the "
            "loss), or use mode='full', to check smaller errors."
        ),
        detail={"directions": directions, "miss_probability": missed, "detectable": detectable,
                "requested": wanted, "caught_at": caught},
    )  # fmt: skip


def raised_steps(count: int, eps: float | None) -> Finding:
    """Requested steps below a few units in the last place, raised so that they move x."""
    asked = f"the step {eps:.3g}" if eps is not None else "the textbook step 1e-07"
    return Finding(
        kind=FindingKind.PRECISION,
        param=None,
        message=(
            f"At {count} coordinate{'s' if count != 1 else ''} {asked} was below a few units in "
            "the last place of the parameter's value and was raised so that the coordinate "
            "moves (large values, or a low-precision dtype)."
        ),
        detail={"raised_steps": count},
    )


def held(inputs: Sequence[tuple[str, str]]) -> Finding:
    """Inputs that are not floating point: passed through, never perturbed or checked."""
    listed = ", ".join(f"{name} ({dtype})" for name, dtype in inputs)
    verb = "is" if len(inputs) == 1 else "are"
    return Finding(
        kind=FindingKind.SKIPPED,
        param=None,
        message=(
            f"{listed} {verb} not floating point (indices, labels): held fixed and not "
            "checked, as torch.autograd.gradcheck does for non-float inputs."
        ),
        detail={"inputs": [name for name, _ in inputs],
                "dtypes": {name: dtype for name, dtype in inputs}},
    )  # fmt: skip


def whole_arrays(samples: int, small: Sequence[tuple[str, int]]) -> Finding:
    """A sample count at or above an array's size: that array was checked in full."""
    listed = ", ".join(f"{name} ({size:,})" for name, size in small[:_LISTED])
    more = f" and {len(small) - _LISTED} more" if len(small) > _LISTED else ""
    arrays = "array has" if len(small) == 1 else "arrays have"
    pronoun = "it was" if len(small) == 1 else "they were"
    return Finding(
        kind=FindingKind.SAMPLED,
        param=None,
        message=(
            f"samples={samples:,} asks for more elements than the {arrays}: {listed}{more}; "
            f"{pronoun} checked in full, every element once."
        ),
        detail={"samples": samples, "arrays": {name: size for name, size in small}},
    )
