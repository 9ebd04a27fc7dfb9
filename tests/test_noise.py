"""Measured noise: ECnoise on exact tables, along coordinates and along random directions."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from gradcheck._engine._ecnoise import MARGIN, POINTS, TRIES, ecnoise, kinked
from gradcheck._engine._noise import (
    COORDINATES,
    _exact_line,
    _spacing,
    measure,
    measure_along_directions,
)
from gradcheck._engine._probe import DirectionFailedError
from gradcheck._engine._step import scale_of, shift, ulp
from gradcheck._errors import CostFunctionError
from gradcheck._tree import flatten

F16, F32, F64 = np.float16, np.float32, np.float64
EPS32 = float(np.finfo(F32).eps)
EPS64 = float(np.finfo(F64).eps)
OFFSETS = [i for i in range(-(POINTS // 2), POINTS // 2 + 1) if i != 0]


def exact(value) -> Fraction:
    return Fraction(*value.as_integer_ratio())


class Counted:
    """A cost that counts its calls."""

    def __init__(self, cost):
        self.cost, self.calls = cost, 0

    def __call__(self):
        self.calls += 1
        return self.cost()


def run(params, cost, *, along=False, seed=0, prefer=None):
    """Measure the noise of ``cost`` at ``params``; returns (noise, base value, cost calls)."""
    leaves = flatten(params).leaves
    scales = [scale_of(leaf.array.reshape(-1)) for leaf in leaves]
    counted = Counted(cost)
    base = float(cost())
    if along:
        return measure_along_directions(leaves, counted, base, scales, seed), base, counted.calls
    return measure(leaves, counted, base, scales, seed, prefer), base, counted.calls


def network(seed=0):
    rng = np.random.default_rng(seed)
    return {"W": rng.standard_normal((20, 10)), "b": rng.standard_normal(10)}


def tanh_layer(p, dtype=F64):
    return lambda: float(np.sum(np.tanh(p["W"].astype(dtype) @ p["b"].astype(dtype))))


def levels(values):
    """ECnoise's noise level of each difference order, from its definition: the j-th
    differences of pure noise have variance C(2j, j) sigma**2."""
    return [
        math.sqrt(float(np.mean(np.diff(values, j) ** 2)) / math.comb(2 * j, j))
        for j in range(1, len(values))
    ]


# --- ecnoise ---------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [1e-3, 1e-6, 1e-9])
def test_ecnoise_finds_gaussian_noise_on_a_smooth_function(sigma):
    for seed in range(5):
        rng = np.random.default_rng(seed)
        values = np.sin(0.3 + 1e-4 * np.arange(POINTS)) + sigma * rng.standard_normal(POINTS)
        noise, inform = ecnoise(values)
        assert inform == 1
        # Nine values give a rough estimate: the order of magnitude is what matters.
        assert sigma / 3 <= noise <= 3 * sigma, (seed, noise / sigma)


def test_ecnoise_by_hand_on_alternating_values():
    # +-1: j-th differences are +-2**j, levels sqrt(4**j / C(2j, j)) = 1.41, 1.63, 1.79, ...
    # first order changes sign and the first three levels agree within 4x: that level.
    values = np.array([(-1.0) ** i for i in range(POINTS)])
    assert ecnoise(values) == (pytest.approx(math.sqrt(2)), 1)


def test_ecnoise_detects_noise_on_a_cost_crossing_zero():
    # Moré & Wild's relative-range test (span > a tenth of the magnitude) called this
    # "spacing too large"; the values span zero, the noise is there all the same.
    for seed in range(5):
        rng = np.random.default_rng(seed)
        values = 1e-6 * (np.arange(POINTS) - 4) + 1e-8 * rng.standard_normal(POINTS)
        noise, inform = ecnoise(values)
        assert inform == 1
        assert 1e-8 / 3 <= noise <= 3e-8


@pytest.mark.parametrize(
    "values",
    [
        np.full(POINTS, 2.5),  # a constant
        np.round(np.sin(0.3 + 1e-5 * np.arange(POINTS)), 3),  # quantized: mostly equal
        np.array([0.0, 0, 0, 0, 0, 0, 1, 2, 3]),  # five of eight differences are 0
    ],
    ids=["constant", "quantized", "five-equal"],
)
def test_ecnoise_says_the_spacing_is_too_small(values):
    assert ecnoise(values) == (0.0, 2)


def test_four_equal_differences_are_not_too_small():
    # Half of nine values is 4.5: four zero differences out of eight do not trigger inform 2.
    _, inform = ecnoise(np.array([0.0, 0, 0, 0, 0, 1, 2, 3, 4]))
    assert inform != 2


def test_ecnoise_on_a_smooth_table_returns_the_smallest_level_as_a_bound():
    # sin at spacing 0.1: the smooth part dominates every order, no noise is seen.
    values = np.sin(0.3 + 0.1 * np.arange(POINTS))
    noise, inform = ecnoise(values)
    assert inform == 3
    assert noise == pytest.approx(min(levels(values)), rel=1e-9)
    assert noise > 100 * EPS64  # an upper bound, far above sin's real round-off


@pytest.mark.parametrize(
    "values",
    [0.5 + 0.25 * np.arange(POINTS), np.arange(POINTS) ** 2.0, -3.0 * np.arange(POINTS) ** 3.0],
    ids=["linear", "quadratic", "cubic"],
)
def test_ecnoise_on_an_exact_polynomial_is_zero(values):
    # Every value exact, so the differences past the degree are exactly 0: no noise at all.
    assert ecnoise(values) == (0.0, 3)


# --- measure ---------------------------------------------------------------------------


def test_a_float64_cost_has_float64_round_off():
    p = network()
    noise, base, _ = run(p, tanh_layer(p))
    assert noise.measured
    assert 0.5 * np.spacing(abs(base)) <= noise.sigma <= 100 * EPS64 * abs(base)


@pytest.mark.parametrize("seed", range(5))
def test_a_float32_cost_returned_as_float_has_float32_round_off(seed):
    # The cost returns a Python float: its dtype says float64, the measurement says float32.
    p = network(seed)
    noise64, _, _ = run(p, tanh_layer(p))
    noise, base, _ = run(p, tanh_layer(p, F32))
    assert 0.25 * EPS32 * abs(base) <= noise.sigma <= 100 * EPS32 * abs(base)
    assert noise.sigma > 1e6 * noise64.sigma


def test_a_large_constant_in_the_cost_raises_its_noise():
    p = network()
    layer = tanh_layer(p)
    noise, base, _ = run(p, lambda: layer() + 1e8)
    # Rounded at least once at 1e8: half an ulp there, and not much more.
    assert 0.5 * np.spacing(base) <= noise.sigma <= 10 * EPS64 * 1e8


@pytest.mark.parametrize("x0", [0.25, 0.7, 3.0])
def test_a_cost_that_jumps_by_one_quantum_has_the_noise_of_its_quanta(x0):
    # x0 sits on a rounding boundary of a cost rounded to 1e-3: the first table moves by one
    # quantum and is otherwise flat. Uniform rounding error has deviation q / sqrt(12).
    p = {"x": np.array([x0])}
    noise, _, _ = run(p, lambda: float(np.round(p["x"][0] - x0 + 0.0005, 3)))
    quanta = 1e-3 / math.sqrt(12)
    # Error bars use MARGIN times ECnoise's estimate, which nine points pin down within ~2.
    assert quanta * (1 - 1e-9) <= noise.sigma <= 2 * MARGIN * quanta


def test_a_quantized_cost_has_the_noise_of_its_quanta():
    # Rounded to 1e-3: uniform rounding error, standard deviation q / sqrt(12).
    found = {}
    for seed in range(6):
        p = network(seed)
        layer = tanh_layer(p)
        noise, _, _ = run(p, lambda layer=layer: float(np.round(layer(), 3)))
        found[seed] = noise.sigma / (1e-3 / math.sqrt(12))
    assert all(0.5 <= ratio <= 3 for ratio in found.values()), found


def test_a_constant_cost_has_half_an_ulp_of_noise():
    p = network()
    noise, _, calls = run(p, lambda: 3.0)
    assert noise.sigma == 0.5 * np.spacing(3.0)
    assert not noise.measured
    # Every spacing tried at COORDINATES coordinates of both arrays.
    assert calls == 2 * COORDINATES * TRIES * (POINTS - 1)


def test_an_array_the_cost_ignores_gets_the_noise_of_the_others():
    p = network()
    alone, _, _ = run({"W": p["W"]}, lambda: float(np.sum(np.tanh(p["W"]))))
    both, _, _ = run({"W": p["W"], "unused": np.ones(5)}, lambda: float(np.sum(np.tanh(p["W"]))))
    # Its own coordinate shows nothing; it still gets the largest noise measured.
    assert both.sigma == alone.sigma
    assert both.per_leaf == (alone.sigma, alone.sigma)


@pytest.mark.parametrize("along", [False, True], ids=["coordinates", "directions"])
@pytest.mark.parametrize(
    "cost",
    [
        lambda p: float(np.sum(np.tanh(p["W"] @ p["b"]))),
        lambda p: float(np.round(np.sum(np.tanh(p["W"] @ p["b"])), 3)),
        lambda p: 3.0,
    ],
    ids=["smooth", "quantized", "constant"],
)
def test_evaluations_are_counted(cost, along):
    p = network()
    noise, _, calls = run(p, lambda: cost(p), along=along)
    assert noise.evaluations == calls > 0


def snapshot(p):
    return {name: (a.tobytes(), a.dtype, a.shape, a.strides) for name, a in p.items()}


def odd_params():
    # float32 in Fortran order (flat_view goes through .flat), a negative zero, a 0-d array.
    W = np.asfortranarray(np.arange(12, dtype=F32).reshape(3, 4) / 7 - 0.8)
    W[1, 2] = -0.0
    return {"W": W, "b": np.array([-0.0, 1e-300, 2.5]), "s": np.array(1.25)}


@pytest.mark.parametrize("along", [False, True], ids=["coordinates", "directions"])
def test_arrays_are_restored_bit_for_bit(along):
    p = odd_params()
    before, ids = snapshot(p), {name: id(a) for name, a in p.items()}
    seen = set()

    def cost():
        seen.add(tuple(a.tobytes() for a in p.values()))
        return float(np.sum(p["W"].astype(F64) ** 2) + np.sum(np.sin(p["b"])) + p["s"] ** 3)

    run(p, cost, along=along)
    assert len(seen) > 1  # the arrays were moved in between
    assert snapshot(p) == before
    assert {name: id(a) for name, a in p.items()} == ids


def failing_cost(p):
    """Raises as soon as any array differs from its value at the start, naming it."""
    start = {name: a.copy() for name, a in p.items()}
    moved = []

    def cost():
        for name, a in p.items():
            changed = np.argwhere(a != start[name])
            if len(changed):
                moved.append((name, tuple(int(i) for i in changed[0])))
                raise ValueError("boom")
        return float(np.sum(p["W"].astype(F64) ** 2) + np.sum(p["b"]))

    return cost, moved


def test_a_cost_raising_on_a_coordinate_names_it_and_restores():
    p = odd_params()
    before = snapshot(p)
    cost, moved = failing_cost(p)
    with pytest.raises(CostFunctionError) as caught:
        run(p, cost)
    name, index = moved[0]
    assert (caught.value.param, caught.value.index) == (name, index)
    leaf = next(leaf for leaf in flatten(p).leaves if leaf.name == name)
    coordinate = leaf.offset + (int(np.ravel_multi_index(index, leaf.shape)) if index else 0)
    assert f"(coordinate {coordinate} of theta)" in str(caught.value)
    assert isinstance(caught.value.__cause__, ValueError)
    assert snapshot(p) == before


def test_a_cost_raising_along_a_direction_restores():
    p = odd_params()
    before = snapshot(p)
    cost, moved = failing_cost(p)
    with pytest.raises(DirectionFailedError) as caught:
        run(p, cost, along=True)
    assert moved
    assert isinstance(caught.value.__cause__, ValueError)
    assert snapshot(p) == before


def test_directions_see_more_noise_than_coordinates_in_a_float32_sum():
    # A sequential float32 sum: one coordinate changes the rounding of the partial sums after
    # it; a direction changes every term's rounding at once.
    x = np.random.default_rng(1).standard_normal(1000).astype(F32)
    p = {"x": x}

    def cost():
        return float(np.cumsum(np.sin(p["x"]))[-1])

    for seed in range(3):
        coordinate, _, _ = run(p, cost, seed=seed)
        direction, _, _ = run(p, cost, along=True, seed=seed)
        assert direction.sigma >= 4 * coordinate.sigma, seed


def test_direction_noise_of_a_float64_cost_is_float64_round_off():
    p = network()
    noise, base, _ = run(p, tanh_layer(p), along=True)
    assert noise.measured
    assert 0.5 * np.spacing(abs(base)) <= noise.sigma <= 100 * EPS64 * abs(base)


# --- the exact points ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "x", "target"),
    [
        (F64, 1.0, 1e-8),
        (F64, -3.0, 1e-8),
        (F32, 1.0, 1e-4),
        (F32, 0.3, 3e-4),
        (F16, 1.0, 1e-2),
        (F16, -700.0, 5.0),
        (F64, 1.5, 1e-300),  # below an ulp: one ulp
    ],
)
def test_spacing_gives_exact_points_an_odd_number_of_ulps_apart(dtype, x, target):
    points = _spacing(np.dtype(dtype), x, target)
    assert points.dtype == dtype
    center = dtype(x)
    delta = exact(points[POINTS // 2]) - exact(center)
    for offset, point in zip(OFFSETS, points, strict=True):
        assert exact(point) - exact(center) == offset * delta  # exactly as intended
    count = delta / exact(ulp(np.array([center]))[0])
    assert count.denominator == 1
    assert count.numerator % 2 == 1
    assert float(delta) <= max(target, float(ulp(np.array([center]))[0])) * 1.5


@pytest.mark.parametrize(("dtype", "target"), [(F64, 1e-8), (F32, 1e-30), (F16, 1e-3)])
def test_spacing_at_zero_uses_a_power_of_two_near_the_target(dtype, target):
    points = _spacing(np.dtype(dtype), 0.0, target)
    delta = float(points[POINTS // 2])
    np.testing.assert_array_equal(points.astype(F64), np.array(OFFSETS) * delta)
    assert target / 2 <= delta <= 2 * target


@pytest.mark.parametrize(
    ("dtype", "x"),
    [(F64, float(np.nextafter(2.0, 0.0))), (F32, float(np.nextafter(F32(2), F32(0))))],
)
def test_spacing_at_the_top_of_a_binade_has_no_exact_points(dtype, x):
    # x + 2 * delta is above 2, where the odd multiple of x's ulp cannot be written.
    assert _spacing(np.dtype(dtype), x, 1e-6) is None


def test_spacing_below_the_subnormals_has_no_exact_points():
    assert _spacing(np.dtype(F32), 0.0, 1e-50) is None


def test_exact_line_moves_by_odd_ulps_or_not_at_all():
    x = np.array([1.0, -5.0, 0.3, 0.0, float(np.nextafter(F32(2), F32(0)))])
    wanted = np.array([1e-4, -1e-4, 2e-5, 1e-4, 1e-4])
    values, step = _exact_line(np.dtype(F32), x, wanted)
    assert values.dtype == F32
    assert step[-1] == 0  # no room at the top of the binade: left out
    for i in range(4):
        assert step[i] != 0
        assert np.sign(step[i]) == np.sign(wanted[i])
        for k in range(-(POINTS // 2), POINTS // 2 + 1):
            _, moved = shift(values[i : i + 1], np.array([k * step[i]]))
            assert moved[0] == k * step[i]
    count = step[:3] / ulp(values[:3])
    np.testing.assert_array_equal(count % 2, [1, 1, 1])


@pytest.mark.parametrize(
    ("dtype", "wanted"), [(F32, 1.5), (F16, 0.5), (F64, 1.0)], ids=["float32", "float16", "float64"]
)
def test_exact_line_keeps_a_step_only_if_all_nine_points_are_exact(dtype, wanted):
    values, step = _exact_line(np.dtype(dtype), np.array([1.0]), np.array([wanted]))
    if step[0] != 0:
        for k in range(-(POINTS // 2), POINTS // 2 + 1):
            _, moved = shift(values, np.array([k * step[0]]))
            assert moved[0] == k * step[0], k


# --- kinks and coordinates the cost ignores ----------------------------------------------


def test_a_kink_at_x_is_a_kink():
    offsets = np.arange(-4, 5, dtype=float)
    assert kinked(np.abs(offsets) * 1e-12 + 3.0 * offsets * 1e-12)  # a max-pool tie
    assert kinked(np.maximum(offsets, 0.0) * 1e-9)  # a ReLU at 0


@pytest.mark.parametrize(
    "table",
    [
        np.zeros(9),  # flat
        np.arange(9.0),  # straight
        (np.arange(9.0) - 4) ** 2,  # smooth
        np.array([0, 0, 0, 0, 0, 1, 1, 1, 1.0]),  # one quantum's jump next to x
        np.array([0, 0, 0, 0, 1, 1, 1, 1, 1.0]),  # one quantum's jump at x
    ],
    ids=["flat", "straight", "smooth", "jump-after", "jump-at"],
)
def test_flat_smooth_and_quantized_tables_are_not_kinks(table):
    assert not kinked(table)


def test_noise_is_not_a_kink():
    rng = np.random.default_rng(0)
    flagged = sum(kinked(1.0 + 1e-9 * rng.standard_normal(9)) for _ in range(10_000))
    assert flagged <= 2  # about 4e-6 per table in theory


@pytest.mark.parametrize("along", [False, True], ids=["coordinate", "direction"])
def test_the_noise_at_a_max_tie_is_round_off_not_the_kink(along):
    # Every coordinate sits on a tie: a centred table of max(x) has a jump of slope at x.
    p = {"x": np.full(6, 0.3)}
    noise, base, _ = run(p, lambda: float(np.max(p["x"]) * 2.0 + 1.0), along=along)
    assert noise.sigma <= 10 * EPS64 * abs(base)


def test_a_coordinate_the_cost_ignores_is_passed_over_for_one_it_depends_on():
    p = {"x": np.linspace(0.1, 0.9, 50)}
    noise, base, _ = run(p, lambda: float(np.tanh(p["x"][17]) * 3.0), seed=4)
    # No seeded coordinate is 17; the cost is flat along them all.
    assert not noise.measured
    preferred = np.zeros(50)
    preferred[17] = 1.0
    noise, base, _ = run(p, lambda: float(np.tanh(p["x"][17]) * 3.0), seed=4,
                             prefer=[preferred])  # fmt: skip
    assert noise.measured
    assert 0.1 * EPS64 * abs(base) <= noise.sigma <= 10 * EPS64 * abs(base)
