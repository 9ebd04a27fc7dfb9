"""The step primitive: values written for x ± h, the steps they realize, the steps requested."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck._engine._step import (
    FLOAT64_EPS,
    MAX_RELATIVE,
    MIN_ULPS,
    TEXTBOOK_EPS,
    TEXTBOOK_RELATIVE,
    auto_factor,
    describe,
    distinct,
    initial_steps,
    realize,
    scale_of,
    shift,
)

F16, F32, F64, LD = np.float16, np.float32, np.float64, np.longdouble
EXTENDED = np.finfo(LD).eps < FLOAT64_EPS
"""The platform's long double is wider than float64 (x86 80-bit, quad), not an alias."""


def exact(value) -> Fraction:
    """The exact rational value of a float of any NumPy precision."""
    return Fraction(*value.as_integer_ratio())


def below(x) -> float:
    """The spacing of x's dtype just below |x| (half the spacing above at a power of two)."""
    return float(abs(x - np.nextafter(x, x.dtype.type(0))))


# --- realize ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "h"), [(F16, 1e-2), (F32, 1e-4), (F64, 1e-7), (LD, 1e-9)], ids=str
)
def test_realize_writes_x_dtype_and_reports_the_exact_displacement(dtype, h):
    x = np.array([0.7, -3.3, 12.5], dtype=dtype)
    r = realize(x, h)
    assert r.high.dtype == dtype
    assert r.low.dtype == dtype
    assert r.up.dtype == np.float64
    assert r.down.dtype == np.float64
    for i in range(len(x)):
        # The reported step is what the written value actually moved, not the request.
        assert exact(r.high[i]) - exact(x[i]) == exact(r.up[i])
        assert exact(x[i]) - exact(r.low[i]) == exact(r.down[i])
    assert r.usable.all()


@pytest.mark.parametrize(("dtype", "h"), [(F16, 2e-4), (F32, 2e-8), (F64, 5e-17)], ids=str)
def test_a_step_below_half_an_ulp_vanishes(dtype, h):
    # At 1.0 the spacing below is half an ulp above: h is under half of the smaller one.
    x = np.array([1.0], dtype=dtype)
    assert h < 0.5 * below(x[0])
    r = realize(x, h)
    assert r.up[0] == 0
    assert r.down[0] == 0
    assert r.high[0] == x[0]
    assert r.low[0] == x[0]
    assert not r.usable[0]


def test_asymmetric_rounding_at_a_power_of_two():
    # float32 at 1.0: spacing 2**-23 above, 2**-24 below. A request of 1.25 * 2**-24 is
    # 0.625 ulp above (rounds up to one ulp) and 1.25 ulp below (rounds to one ulp there).
    r = realize(np.array([1.0], dtype=F32), 1.25 * 2.0**-24)
    assert r.up[0] == 2.0**-23
    assert r.down[0] == 2.0**-24
    assert r.usable[0]


def test_asymmetric_rounding_mirrors_for_negative_x():
    # At -1.0 the coarse side is further from zero, i.e. below.
    r = realize(np.array([-1.0], dtype=F32), 1.25 * 2.0**-24)
    assert r.up[0] == 2.0**-24
    assert r.down[0] == 2.0**-23
    assert r.high[0] == np.float32(-1.0) + np.float32(2.0**-24)


def test_one_side_vanishing_is_not_usable():
    # 0.75 * 2**-24 at float32 1.0: 0.375 ulp above (vanishes), 0.75 ulp below (one ulp).
    r = realize(np.array([1.0], dtype=F32), 0.75 * 2.0**-24)
    assert r.up[0] == 0
    assert r.down[0] == 2.0**-24
    assert not r.usable[0]  # a one-sided step is no evidence for a central difference


@pytest.mark.parametrize(
    ("dtype", "h", "up"),
    [
        (F64, 1e-320, float(np.float64(1e-320))),  # subnormal: exact as written
        (F32, 1e-45, 2.0**-149),  # rounds to the smallest subnormal float32
        (F32, 1e-46, 0.0),  # under half of it: vanishes even at 0
        (F16, 3e-8, 2.0**-24),  # the smallest subnormal float16
    ],
)
def test_steps_from_zero_reach_the_subnormals(dtype, h, up):
    r = realize(np.zeros(1, dtype=dtype), h)
    assert r.up[0] == up
    assert r.down[0] == up
    assert r.usable[0] == (up > 0)


@pytest.mark.skipif(not EXTENDED, reason="long double is float64 on this platform")
def test_longdouble_keeps_a_step_float64_would_lose():
    # 1e-18 is under half of float64's ulp at 1, but nine of long double's.
    x = np.array([1.0], dtype=LD)
    r = realize(x, 1e-18)
    assert r.usable[0]
    ulps = r.up[0] / float(np.spacing(LD(1.0)))
    assert ulps == round(ulps)
    assert ulps >= 1
    assert not realize(np.array([1.0]), 1e-18).usable[0]


def test_h_broadcasts_over_a_ladder():
    # [k, 1] coordinates against a [1, S] ladder of steps gives a [k, S] table.
    x = np.array([[1.0], [-2.0], [0.0]], dtype=F32)
    ladder = np.array([[1e-3, 1e-2, 1e-1]])
    r = realize(x, ladder)
    assert r.up.shape == r.down.shape == r.high.shape == (3, 3)
    assert (np.diff(r.up, axis=1) > 0).all()  # a growing ladder realizes growing steps
    np.testing.assert_array_equal(r.high, (x.astype(F64) + ladder).astype(F32))


@given(
    dtype=st.sampled_from([F16, F32, F64]),
    mantissa=st.floats(1.0, 2.0, exclude_max=True),
    exponent=st.integers(-12, 12),
    negative=st.booleans(),
    relative=st.floats(2.0**-60, 0.5),
)
def test_realized_steps_are_exact_multiples_of_the_spacing(
    dtype, mantissa, exponent, negative, relative
):
    x = np.array([(-1) ** negative * math.ldexp(mantissa, exponent)], dtype=dtype)
    h = relative * float(abs(x[0]))
    r = realize(x, h)
    unit = float(np.spacing(abs(x[0]) / 2))  # everything in [x/2, 2x] is a multiple of this
    for step, written in ((r.up[0], r.high[0]), (r.down[0], r.low[0])):
        assert step >= 0
        assert (step == 0) == (written == x[0])
        assert step / unit == round(step / unit)
        assert abs(step - h) <= float(np.spacing(abs(written)))  # rounded to nearest
    # Writing x + up in x's dtype lands exactly on the value realize wrote.
    assert (x + x.dtype.type(r.up[0]))[0] == r.high[0]
    assert (x - x.dtype.type(r.down[0]))[0] == r.low[0]


@pytest.mark.xfail(
    strict=True,
    reason="x + h goes through long double (float64) before x's dtype: rounded twice, so a "
    "request just over half an ulp can tie on the second rounding and vanish",
)
@pytest.mark.parametrize(
    ("dtype", "h", "correct"),
    [
        (F64, 2.0**-53 + 2.0**-105, 1.0 + 2.0**-52),
        (F32, 2.0**-24 + 2.0**-80, 1.0 + 2.0**-23),
    ],
    ids=["float64", "float32"],
)
def test_realize_rounds_once(dtype, h, correct):
    # 1 + h is just above the midpoint between 1 and the next value: one rounding goes up.
    if dtype is F64 and not EXTENDED:
        pytest.skip("no wider type: float64 rounds once here")
    r = realize(np.array([1.0], dtype=dtype), h)
    assert r.high[0] == correct


@pytest.mark.xfail(
    strict=True,
    reason="up/down are stored as float64, which cannot hold every displacement exactly: a "
    "step much larger than |x| (float32) or any long double displacement over 53 bits",
)
@pytest.mark.parametrize(
    ("x", "h"),
    [
        (np.array([1e-30], dtype=F32), 1e-3),
        (np.array([2.0], dtype=LD) - LD(2.0) ** -63, 0.1),
    ],
    ids=["float32-tiny-x", "longdouble"],
)
def test_realize_up_is_exact_even_far_from_x(x, h):
    if x.dtype == LD and not EXTENDED:
        pytest.skip("long double is float64 on this platform")
    r = realize(x, h)
    assert exact(r.high[0]) - exact(x[0]) == exact(r.up[0])


# --- shift -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=str)
def test_shift_any_sign_reports_the_exact_displacement(dtype):
    x = np.array([1.0, -1.0, 0.0, 3.5, 1.0], dtype=dtype)
    wanted = np.array([0.3, 0.3, -1e-3, -7.25, 1e-20])
    moved, realized = shift(x, wanted)
    assert moved.dtype == dtype
    assert realized.dtype == np.float64
    for i in range(len(x)):
        assert exact(moved[i]) - exact(x[i]) == exact(realized[i])
        assert np.sign(realized[i]) in (0.0, np.sign(wanted[i]))
    assert realized[-1] == 0  # vanished, and reported as such
    assert realized[3] == -7.25  # representable: taken exactly


# --- distinct --------------------------------------------------------------------------


def test_a_ladder_collapsed_to_one_ulp_is_one_distinct_step():
    # The old bug: five "different" requests that all realize to one ulp read as a steady kink.
    x = np.array([[1.5]])
    ladder = np.array([[0.6, 0.8, 1.0, 1.2, 1.4]]) * 2.0**-52
    r = realize(x, ladder)
    assert (r.up == 2.0**-52).all()
    assert (r.down == 2.0**-52).all()
    np.testing.assert_array_equal(distinct(r.up, r.down), [[True, False, False, False, False]])


def test_a_growing_ladder_is_all_distinct():
    x = np.array([[1.5], [-0.25]])
    r = realize(x, np.array([[1e-8, 1e-6, 1e-4, 1e-2]]))
    assert distinct(r.up, r.down).all()


def test_vanished_steps_are_not_distinct():
    # Steps under half an ulp vanish; the first that moves counts, and its repeats do not.
    x = np.array([[1.5]])
    r = realize(x, np.array([[0.1, 0.3, 1.0, 1.2, 2.0]]) * 2.0**-52)
    np.testing.assert_array_equal(distinct(r.up, r.down), [[False, False, True, False, True]])


def test_distinct_by_hand():
    up = np.array([[0.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 2.0, 2.0]])
    down = np.array([[1.0, 1.0, 2.0, 2.0], [1.0, 2.0, 3.0, 3.0], [0.0, 1.0, 1.0, 1.0]])
    expected = [
        [False, True, True, True],  # one-sided first step is no evidence; the others each move
        [True, True, True, False],  # a change on one side alone is a new step
        [False, True, True, False],
    ]
    np.testing.assert_array_equal(distinct(up, down), expected)


# --- scale_of --------------------------------------------------------------------------


def test_scale_is_the_larger_of_magnitude_and_rms():
    # rms(3, -4) = sqrt(12.5)
    np.testing.assert_array_equal(scale_of(np.array([3.0, -4.0])), [math.sqrt(12.5), 4.0])


def test_a_zero_next_to_nonzeros_gets_the_arrays_rms():
    # A bias element that happens to be 0 is perturbed like its neighbours.
    np.testing.assert_array_equal(
        scale_of(np.array([0.0, 0.0, 2.0])), [math.sqrt(4 / 3), math.sqrt(4 / 3), 2.0]
    )


@pytest.mark.parametrize("shape", [(1,), (5,), (2, 3)])
def test_an_all_zero_array_gets_unit_scale(shape):
    scale = scale_of(np.zeros(shape, dtype=F32))
    assert scale.shape == shape
    assert scale.dtype == np.float64
    assert (scale == 1.0).all()


@pytest.mark.parametrize("value", [-7.0, 0.5, 1e-6, 3e20])
def test_a_single_elements_scale_is_its_magnitude(value):
    assert scale_of(np.array([value]))[0] == abs(value)


def test_empty_array_has_empty_scale():
    assert scale_of(np.empty(0)).shape == (0,)


def test_the_scale_of_huge_magnitudes_is_their_magnitude():
    with np.errstate(over="ignore"):
        assert scale_of(np.array([1e200, -1e200]))[0] == 1e200


@pytest.mark.parametrize(
    ("dtype", "value"), [(F64, 1e-200), (F64, 1e-70), (F64, 1e-310), (F32, 1e-30), (F16, 1e-5)]
)
def test_an_array_of_negligible_values_is_zero_and_gets_unit_scale(dtype, value):
    scale = scale_of(np.array([value, -value, 0.0], dtype=dtype))
    assert (scale == 1.0).all()


@pytest.mark.parametrize(("dtype", "value"), [(F64, 1e-17), (F64, 1e-60), (F32, 1e-8), (F16, 1e-4)])
def test_small_but_ordinary_values_keep_their_scale(dtype, value):
    # A float32 weight of 1e-8 is small, not zero: a cost may vary on that scale.
    x = np.array([value], dtype=dtype)
    assert scale_of(x)[0] == pytest.approx(float(x[0]))


def test_a_tiny_element_next_to_normal_ones_gets_the_arrays_rms():
    scale = scale_of(np.array([1e-200, 3.0, -4.0]))
    assert scale[0] == pytest.approx(np.sqrt(25 / 3))


# --- auto_factor -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("noise", "order", "expected"),
    [(1e-6, 2, 1e-2), (1e-8, 1, 1e-4), (1e-10, 4, 1e-2), (8.0, 2, 1.0)],
)
def test_auto_factor_is_the_p_plus_first_root_of_the_noise(noise, order, expected):
    # Noise above the cost's whole variation (8.0) gives the largest factor, 1: no larger.
    assert auto_factor(noise, order) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("noise", [0.0, 1e-30, FLOAT64_EPS])
@pytest.mark.parametrize("order", [1, 2, 4])
def test_auto_factor_is_floored_at_float64_eps(noise, order):
    # A cost with no measurable noise still has float64 round-off.
    assert auto_factor(noise, order) == FLOAT64_EPS ** (1.0 / (order + 1))


# --- initial_steps ---------------------------------------------------------------------


def steps(x, eps, *, order=2, noise=FLOAT64_EPS):
    return initial_steps(x, eps, order=order, scale=scale_of(x), noise=noise)


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=str)
def test_a_float_eps_is_used_as_given_even_if_it_vanishes(dtype):
    x = np.array([1.0, 1000.0], dtype=dtype)
    h, raised = steps(x, 1e-20)
    np.testing.assert_array_equal(h, [1e-20, 1e-20])
    assert raised == 0  # the user's step is never raised
    assert not realize(x, h).usable.any()  # and it is then reported as vanished


def test_an_int_eps_is_a_float_eps():
    h, raised = steps(np.array([1.0, 2.0]), 1)
    assert h.dtype == np.float64
    assert (h == 1.0).all()
    assert raised == 0


def test_default_float64_step_is_the_textbook_one():
    h, raised = steps(np.array([0.5, -2.0, 0.0]), None)
    np.testing.assert_array_equal(h, [TEXTBOOK_EPS] * 3)
    assert raised == 0


def test_default_float64_step_shrinks_for_tiny_parameters():
    # 1e-7 would be ten times these values: capped at a thousandth of the scale.
    x = np.array([1e-6, -2e-6])
    scale = scale_of(x)
    h, raised = steps(x, None)
    np.testing.assert_array_equal(h, TEXTBOOK_RELATIVE * scale)
    assert raised == 0


def test_default_float64_step_is_raised_to_min_ulps_for_huge_values():
    # ulp(5e9) ~ 9.5e-7: 1e-7 would round away; the step becomes 4 ulps, and is counted.
    x = np.array([5e9, 1.0, -6e9, 0.0])
    h, raised = steps(x, None)
    assert raised == 2
    assert h[0] == MIN_ULPS * np.spacing(5e9)
    assert h[2] == MIN_ULPS * np.spacing(6e9)
    assert h[1] == h[3] == TEXTBOOK_EPS
    assert realize(x, h).usable.all()


@pytest.mark.parametrize(
    ("dtype", "eps"), [(F32, None), (F16, None), (F64, "auto"), (F32, "auto")], ids=str
)
def test_auto_step_follows_the_measured_noise(dtype, eps):
    x = np.array([1.0, -2.0], dtype=dtype)
    scale = scale_of(x)
    for noise, order in [(1e-6, 2), (2.7e-5, 2), (1e-4, 1)]:  # all above 4 ulps of float16
        h, raised = steps(x, eps, order=order, noise=noise)
        np.testing.assert_array_equal(h, auto_factor(noise, order) * scale)
        assert raised == 0


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=str)
def test_auto_step_is_at_most_max_relative_of_the_scale(dtype):
    # Noise of the order of the variation would ask for a step as large as the value.
    x = np.array([1.0, -4.0, 0.0], dtype=dtype)
    h, raised = steps(x, "auto", order=1, noise=0.5)
    np.testing.assert_array_equal(h, MAX_RELATIVE * scale_of(x))
    assert raised == 0


def test_auto_step_is_raised_to_min_ulps_in_float16():
    # A quiet float64 cost asks for ~6e-6 of the scale (~577 here): 4e-3 at every element.
    # That is under 4 ulps of float16 at 1000 (ulp 0.5) and at 1 (ulp 2**-10), not at 0.
    x = np.array([1000.0, 1.0, 0.0], dtype=F16)
    h, raised = steps(x, None, order=2, noise=FLOAT64_EPS)
    assert h[0] == MIN_ULPS * 0.5
    assert h[1] == MIN_ULPS * 2.0**-10
    assert h[2] == auto_factor(FLOAT64_EPS, 2) * scale_of(x)[2]
    assert raised == 2


@given(
    dtype=st.sampled_from([F16, F32, F64]),
    eps=st.sampled_from([None, "auto"]),
    values=st.lists(st.floats(-1e4, 1e4, allow_subnormal=False), min_size=1, max_size=6),
    noise=st.floats(0.0, 1.0),
    order=st.sampled_from([1, 2, 4]),
)
def test_chosen_steps_are_within_bounds_and_the_raised_count_is_exact(
    dtype, eps, values, noise, order
):
    x = np.array(values, dtype=dtype)
    scale = scale_of(x)
    h, raised = steps(x, eps, order=order, noise=noise)
    # The rule, spelled out: the textbook or the auto request, capped, then floored.
    if eps is None and dtype is F64:
        request = np.minimum(TEXTBOOK_EPS, TEXTBOOK_RELATIVE * scale)
    else:
        request = auto_factor(noise, order) * scale
    request = np.minimum(request, MAX_RELATIVE * scale)
    floor = MIN_ULPS * np.spacing(np.abs(x)).astype(np.float64)
    np.testing.assert_array_equal(h, np.maximum(request, floor))
    assert raised == np.count_nonzero(request < floor)
    assert realize(x, h).usable.all()  # a step gradcheck chooses never vanishes


# --- describe --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eps", "dtype", "noise", "expected"),
    [
        (1e-5, F64, 1e-6, "1e-05"),
        (1, F32, 1e-6, "1"),
        (None, F64, 1e-6, "1e-07"),
        (None, LD, 1e-6, "1e-07"),  # at least double precision: the textbook step
        (None, F32, 1e-6, "0.01*scale"),
        (None, F16, 1e-6, "0.01*scale"),
        ("auto", F64, 1e-6, "0.01*scale"),
        ("auto", F64, 0.0, "6.1e-06*scale"),  # floored at float64's eps
    ],
)
def test_describe(eps, dtype, noise, expected):
    assert describe(eps, 2, np.dtype(dtype), noise) == expected
