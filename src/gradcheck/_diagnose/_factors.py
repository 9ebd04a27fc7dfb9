"""Name a scale factor in words and guess its cause: 2, 1/2, the batch size m, 1/T, ...

A factor people make by mistake (a sum where a mean belongs, a derivative of x**2 without
its 2) is recognized within `FACTOR_TOLERANCE`; the batch size and the number of time
steps come from the user's ``hints``.
"""

from __future__ import annotations

from collections.abc import Mapping

FACTOR_TOLERANCE = 2e-3
"""Relative distance within which a fitted factor is taken to be a named one."""


def is_named(factor: float, hints: Mapping[str, int]) -> bool:
    """Whether a factor is one people make by mistake: -1, an integer, 1/integer, m or 1/m."""
    size = abs(factor)
    if size == 0:
        return False
    if any(v > 1 and (abs(size / v - 1) < FACTOR_TOLERANCE or abs(size * v - 1) <
                      FACTOR_TOLERANCE) for v in hints.values()):  # fmt: skip
        return True
    nearest, inverse = round(size), round(1 / size)
    return (nearest >= 1 and abs(size / nearest - 1) < FACTOR_TOLERANCE) or (
        inverse >= 2 and abs(size * inverse - 1) < FACTOR_TOLERANCE
    )


def name_factor(factor: float, hints: Mapping[str, int]) -> tuple[str, str]:
    """Describe a positive scale factor in words and guess its cause.

    Recognizes 2, 4, 1/2, 1/4, the batch size m and 1/m, the number of time steps T
    (from ``hints``), and other integers and their reciprocals.

    Returns:
        (how much, likely cause), e.g. ("4 times", "a factor 4 ...").
    """
    for label, value in hints.items():
        words, symbol = _HINTS[label]
        if value > 1 and abs(factor / value - 1) < FACTOR_TOLERANCE:
            return f"{value} times", (
                f"{value} is {words} {symbol}, so a sum where a mean belongs (the 1/{symbol} "
                "is missing)"
            )
        if value > 1 and abs(factor * value - 1) < FACTOR_TOLERANCE:
            return f"1/{value} of", (
                f"{value} is {words} {symbol}, so divided by {symbol} where it should not be "
                f"(a mean where a sum belongs, or 1/{symbol} applied twice)"
            )
    nearest = round(factor)
    if nearest >= 2 and abs(factor / nearest - 1) < FACTOR_TOLERANCE:
        return f"{nearest} times", _INTEGER_CAUSES.get(
            nearest,
            f"an integer factor {nearest}: a sum where a mean belongs (a batch of {nearest}?) "
            "or a term counted several times",
        )
    inverse = round(1 / factor) if factor > 0 else 0
    if inverse >= 2 and abs(factor * inverse - 1) < FACTOR_TOLERANCE:
        return f"1/{inverse} of", _INVERSE_CAUSES.get(
            inverse, f"divided by {inverse} once too often (a mean taken twice?)"
        )
    digits = 4 if abs(factor - 1) >= 0.01 else 6  # never "1 times"
    return (f"{factor:.{digits}g} times",
            f"a constant factor {factor:.{digits}g} on the whole gradient")  # fmt: skip


_INTEGER_CAUSES = {
    2: "a factor 2, e.g. the derivative of x**2 counted twice, or a term added twice",
    4: "a factor 4 (as in the classic db1 = 4/m * sum(dZ1) exercise bug)",
}
_INVERSE_CAUSES = {2: "a missing factor 2, e.g. the derivative of x**2 without its 2"}
_HINTS = {"batch_size": ("the batch size", "m"), "time_steps": ("the number of time steps", "T")}
