"""Which coordinates a check evaluates: every one ("full") or a seeded stratified sample."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .._tree import FlatParams

Mode = Literal["full", "sample", "directional", "bisect"]
MODES: tuple[Mode, ...] = ("full", "sample", "directional", "bisect")

DEFAULT_SAMPLES = 10
"""Coordinates per parameter array in mode="sample" when samples is None (CS231n's num_checks)."""


def samples_per_leaf(size: int, samples: int | float | None) -> int:
    """How many coordinates of an array of ``size`` elements a sample checks (at least one).

    An int is a count per array, a float in (0, 1] a fraction of each array.
    """
    if size == 0:
        return 0
    if samples is None:
        samples = DEFAULT_SAMPLES
    if isinstance(samples, float):
        return min(size, max(1, math.ceil(samples * size)))
    return min(size, samples)


def select_coordinates(
    flat: FlatParams, mode: Mode, samples: int | float | None, seed: int
) -> list[NDArray[np.intp]]:
    """Pick the flat indices to check inside each leaf, in the leaves' order.

    mode="sample" is stratified: every parameter array gets its own draw, so a
    small bias vector is never skipped in favour of a large weight matrix. The
    draw depends only on ``seed`` and the leaf sizes.
    """
    if mode == "full":
        return [np.arange(leaf.size, dtype=np.intp) for leaf in flat.leaves]
    rng = np.random.default_rng(seed)
    chosen = []
    for leaf in flat.leaves:
        count = samples_per_leaf(leaf.size, samples)
        picked = rng.choice(leaf.size, size=count, replace=False)
        chosen.append(np.sort(picked.astype(np.intp)))
    return chosen
