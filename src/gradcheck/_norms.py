"""A 2-norm that neither underflows nor overflows.

Gradients of 1e-200 or 1e200 are legal inputs; ``np.linalg.norm`` squares them and
returns 0 or inf, which would turn a measured disagreement into "no evidence".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def stable_norm(values: ArrayLike) -> float:
    """``||values||_2``, computed on values scaled by their largest magnitude (nan stays nan)."""
    magnitude = np.abs(
        np.asarray(values, dtype=np.complex128 if np.iscomplexobj(values) else np.float64)
    )
    if magnitude.size == 0:
        return 0.0
    largest: Any = magnitude.max()
    if not np.isfinite(largest) or largest == 0:
        return float(largest)
    return float(largest * np.sqrt(np.sum((magnitude / largest) ** 2)))
