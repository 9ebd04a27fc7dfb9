"""What every mode hands the report: one parameter's settled evidence (`Checked`).

Also the status code of each bulk estimate (`estimate_status`), which the coordinate modes and
bisection both read off the engine's estimates the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._compare import Judgement
from .._diagnose import Rows, Status


@dataclass(slots=True, kw_only=True)
class Checked:
    """One parameter's settled evidence."""

    rows: Rows
    judgement: Judgement
    elements: Rows | None = None
    """Directional modes: the coordinates bisection checked."""
    stopped: bool = False
    """Bisection stopped at its limit of wrong elements."""
    ranges: list[tuple[int, int]] | None = None
    """Bisection: ranges [lo, hi) that failed but whose halves did not."""
    miss: float = 0.0
    """Directional modes: the chance that the directions miss an error of the detectable size,
    with the round-off allowance the measured noise forced."""


def estimate_status(
    usable: NDArray[np.bool_], nonfinite: NDArray[np.bool_], flat: NDArray[np.bool_]
) -> NDArray[np.int8]:
    """Each estimate's status.

    No step moved it, the cost was not finite, the cost did not move where the analytic
    gradient says it should have, or measured.
    """
    codes = np.where(nonfinite, Status.NONFINITE, np.where(flat, Status.FLAT, Status.MEASURED))
    return np.where(usable, codes, Status.NO_STEP).astype(np.int8)
