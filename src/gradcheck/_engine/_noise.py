"""Measure the noise of the cost by evaluating it, not by guessing it from a dtype.

Every error bar of a check rests on one number: how much the computed cost wanders
around the smooth function it approximates (round-off, float32 arithmetic inside a
cost that returns float64, a large constant in the loss, a quantized cost). It is
measured once per check, along one coordinate of each of the largest arrays (`measure`)
and, for the directional modes, along a random direction (`measure_along_directions`).
The points are spaced by an odd number of the coordinate's units in the last place, so
they are exactly representable in its dtype: the parameters' own rounding never
masquerades as noise of the cost. The tables are read by ECnoise (`_ecnoise`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._tree import Leaf
from ._ecnoise import CENTRED, Noise, Tally, sweep
from ._estimate import failure_error
from ._perturb import CoordinateFailedError, evaluate_coordinates, flat_view
from ._probe import DirectionFailedError
from ._step import shift, ulp

LEAVES = 8
"""Arrays measured, largest first, one coordinate each; the others get the largest noise."""
COORDINATES = 3
"""Coordinates tried per array while the cost does not move along them at all (a max-pool's
inputs other than the maximum, a ReLU's dead units): such a line shows no noise."""


def measure(
    leaves: Sequence[Leaf],
    cost: Callable[[], float | complex],
    base_value: float,
    scales: Sequence[NDArray[np.float64]],
    seed: int,
    prefer: Sequence[NDArray[np.float64]] | None = None,
) -> Noise:
    """Measure the cost's noise along one coordinate of each array (ECnoise), restored after.

    This is the noise a coordinate's finite difference sees: moving one coordinate changes
    only the terms it enters, which differ from array to array (a normalization's inputs
    enter a whole row, a bias one unit), so one coordinate of each of the `LEAVES` largest
    arrays is measured and the largest noise found is kept. The coordinate is the one
    ``prefer`` rates highest (the largest analytic gradient: the cost should move along it),
    else a seeded one; where the cost does not move at all along it, up to `COORDINATES` are
    tried.

    Args:
        leaves: the parameter arrays (perturbed in place through their leaves).
        cost: evaluates the cost at the arrays' current values.
        base_value: the cost at the unperturbed point.
        scales: per leaf, the per-element scale of its values (`_step.scale_of`).
        seed: picks the coordinates.
        prefer: per leaf (flat), how surely the cost moves along each coordinate.
    """
    rng = np.random.default_rng([seed, 0x6E6F697365])  # "noise"
    first = Tally([], [], [], 0.5 * float(np.spacing(abs(base_value))))
    found: dict[int, Noise] = {}
    evaluations = 0
    still: list[Noise] = []  # arrays along whose coordinates the cost never moved
    for leaf_index, coordinates in _candidates(leaves, rng, prefer):
        for local in coordinates:
            tally = _line(leaves[leaf_index], local, cost, base_value, scales[leaf_index], first)
            evaluations += tally.evaluations
            if tally.moved:
                found[leaf_index] = tally.noise(_fallback(leaves, base_value))
                break
        else:
            still.append(tally.noise(_fallback(leaves, base_value)))
    if not found:
        noise = still[0] if still else first.noise(_fallback(leaves, base_value))
        return replace(noise, evaluations=evaluations)
    # A coordinate that hardly enters the cost shows little noise where another, entering many
    # terms, shows much: every array gets the largest noise measured (a safe upper bound).
    largest = max(noise.sigma for noise in found.values())
    per_leaf = (largest,) * len(leaves)
    return Noise(sigma=largest, per_leaf=per_leaf, evaluations=evaluations,
                 measured=any(noise.measured for noise in found.values()))  # fmt: skip


def _line(
    leaf: Leaf,
    local: int,
    cost: Callable[[], float | complex],
    base_value: float,
    scale: NDArray[np.float64],
    first: Tally,
) -> Tally:
    """ECnoise along one coordinate (restored after); the tally of what it found."""
    tally = first.fresh()
    x = complex(flat_view(leaf.array)[local]).real

    def values_at(target: float, offsets: tuple[int, ...]) -> list[float] | None:
        moved = _spacing(leaf.dtype, x, target, offsets)
        if moved is None:
            return None
        points = [[value] for value in moved.tolist()]
        try:
            values = evaluate_coordinates(leaf.array, [local], points, cost)
        except CoordinateFailedError as failure:
            shift_ = f"{float(moved[failure.offset]) - x:+.3g}"
            raise failure_error(failure, leaf, np.array([local]), shift_) from failure.__cause__
        return [float(np.real(v[0])) for v in values]

    sweep(tally, values_at, base_value, _spacing_for(leaf.dtype) * float(scale[local]))
    return tally


def measure_along_directions(
    leaves: Sequence[Leaf],
    cost: Callable[[], float | complex],
    base_value: float,
    scales: Sequence[NDArray[np.float64]],
    seed: int,
) -> Noise:
    """Measure the noise a random direction sees: every coordinate moves at once.

    Moving every coordinate changes the rounding of every term of the cost, so this noise
    can be far larger than a single coordinate's (a float32 sum of many terms). The
    direction moves each coordinate by a random odd number of its units in the last place,
    so that all nine points are exact in the parameters' dtypes.

    Args:
        leaves: the parameter arrays.
        cost: evaluates the cost at the arrays' current values.
        base_value: the cost at the unperturbed point.
        scales: per leaf, the per-element scale of its values.
        seed: draws the direction.

    Raises:
        DirectionFailedError: the cost raised with the direction applied.
    """
    rng = np.random.default_rng([seed, 0x6E6F697365, 1])
    tally = Tally([], [], [], 0.5 * float(np.spacing(abs(base_value))))
    originals = [np.array(flat_view(leaf.array)[:]).real for leaf in leaves]
    draws = [rng.standard_normal(leaf.size) for leaf in leaves]

    def values_at(target: float, offsets: tuple[int, ...]) -> list[float] | None:
        states = []
        for leaf, x, z, scale in zip(leaves, originals, draws, scales, strict=True):
            states.append(_exact_line(leaf.dtype, x, z * target * scale, offsets))
        if not any(np.any(step) for _, step in states):
            return None
        return [_evaluate_state(leaves, originals, states, i, cost) for i in offsets]

    target = max(_spacing_for(leaf.dtype) for leaf in leaves)
    sweep(tally, values_at, base_value, target)
    return tally.noise(_fallback(leaves, base_value))


def _exact_line(
    dtype: np.dtype[Any],
    x: NDArray[np.float64],
    wanted: NDArray[np.float64],
    offsets: tuple[int, ...] = CENTRED,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per element, an odd number of units in the last place near ``wanted``.

    A step is kept only where all of ``x + i * step`` (i in ``offsets``) are exact; returns
    (x, step).
    """
    real = np.dtype(np.finfo(dtype).dtype)
    values = x.astype(real)
    unit = ulp(values)
    tiny = ~(unit > 0) | (values == 0)
    unit = np.where(tiny, 2.0 ** np.floor(np.log2(np.maximum(np.abs(wanted), 1e-300))), unit)
    with np.errstate(over="ignore"):
        count = np.clip(np.abs(wanted) / unit, 1.0, 2.0**52).astype(np.int64) | 1
    step = np.sign(wanted) * count * unit
    ok = np.ones(len(x), dtype=bool)
    for i in offsets:
        _, moved = shift(values, i * step)
        ok &= moved == i * step
    return values, np.where(ok, step, 0.0)


def _evaluate_state(
    leaves: Sequence[Leaf],
    originals: Sequence[NDArray[np.float64]],
    states: Sequence[tuple[NDArray[np.float64], NDArray[np.float64]]],
    i: int,
    cost: Callable[[], float | complex],
) -> float:
    """The cost with every leaf moved to ``x + i * step``, restored however it ends."""
    views = [flat_view(leaf.array) for leaf in leaves]
    try:
        for view, (x, step) in zip(views, states, strict=True):
            moved, _ = shift(x, i * step)
            view[:] = moved
        try:
            return float(np.real(cost()))
        except Exception as exc:
            raise DirectionFailedError(leaves[0], 0, leaves[0].size) from exc
    finally:
        for view, original, leaf in zip(views, originals, leaves, strict=True):
            view[:] = original.astype(leaf.dtype) if not np.iscomplexobj(leaf.array) else original


def _spacing_for(dtype: np.dtype[Any]) -> float:
    """The first relative spacing tried: eps**(3/4) of the parameters' dtype.

    Small enough that the smooth part of the cost vanishes from the difference table and
    that a kink near x is rarely crossed (a crossed kink reads as noise of jump * spacing),
    large enough that the points differ by many units in the last place.
    """
    return float(float(np.finfo(dtype).eps) ** 0.75)


def _fallback(leaves: Sequence[Leaf], base_value: float) -> float:
    return float(max(float(np.finfo(leaf.dtype).eps) for leaf in leaves) * abs(base_value))


def _candidates(
    leaves: Sequence[Leaf],
    rng: np.random.Generator,
    prefer: Sequence[NDArray[np.float64]] | None,
) -> list[tuple[int, list[int]]]:
    """Up to `COORDINATES` coordinates to try in each of the largest arrays (up to `LEAVES`).

    First the one ``prefer`` rates highest (largest finite magnitude), then seeded ones.
    """
    order = sorted(range(len(leaves)), key=lambda i: -leaves[i].size)
    out = []
    for i in order[:LEAVES]:
        size = leaves[i].size
        if not size:
            continue
        picked: list[int] = []
        if prefer is not None:
            magnitude = np.abs(np.asarray(prefer[i], dtype=np.float64).reshape(-1))
            magnitude = np.where(np.isfinite(magnitude), magnitude, 0.0)
            if magnitude.size == size and magnitude.max() > 0:
                picked.append(int(np.argmax(magnitude)))
        for local in rng.integers(size, size=COORDINATES).tolist():
            if len(picked) < min(COORDINATES, size) and local not in picked:
                picked.append(int(local))
        out.append((i, picked))
    return out


def _spacing(
    dtype: np.dtype[Any], x: float, target: float, offsets: tuple[int, ...] = CENTRED
) -> NDArray[Any] | None:
    """Points ``x + i * spacing`` (i in ``offsets``), exact in ``dtype``.

    The spacing is an odd number of the dtype's ulps near ``target``. Exact points keep the
    parameters' own rounding out of the table. An odd multiple (rather than a power of two)
    keeps a coarsely rounded cost from changing by exactly whole quanta at every point,
    which would make its table look noiseless. Returns the perturbed values (x itself is
    not among them), or None if no spacing keeps the points exact (x at the edge of a
    binade with no room left).
    """
    real = np.dtype(np.finfo(dtype).dtype)
    value = np.array([x], dtype=real)
    unit = float(ulp(value)[0])
    if x == 0 or not unit > 0:  # at 0 any small power of two gives exact points
        unit = 2.0 ** (math.floor(math.log2(target)) - 2) if target > 0 else 1.0
    multiples = np.array(offsets, dtype=float)
    ratio = target / unit if unit > 0 else 1.0
    multiple = int(min(max(1.0, ratio), 2.0**52)) | 1
    while multiple >= 1:
        delta = multiple * unit
        points, moved = shift(np.repeat(value, len(multiples)), multiples * delta)
        if np.array_equal(moved, multiples * delta):
            return points
        multiple = (multiple // 2) | 1 if multiple > 1 else 0
    return None
