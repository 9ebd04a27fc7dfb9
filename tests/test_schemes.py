"""Finite-difference schemes: each stencil has its order, and steps are the ones realized."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradcheck
from gradcheck._engine._schemes import (
    SCHEMES,
    TEXTBOOK_EPS,
    realized_steps,
    requested_steps,
    resolution_of,
)

FLOAT64_EPS = float(np.finfo(np.float64).eps)
FLOAT32_EPS = float(np.finfo(np.float32).eps)

# (name, f, f') with f written in NumPy operations that accept complex input.
FUNCTIONS = [
    ("exp", np.exp, np.exp, 0.5),
    ("sin", np.sin, np.cos, 0.7),
    ("x**5", lambda x: x**5, lambda x: 5 * x**4, 1.3),
    ("exp*sin/x**3", lambda x: np.exp(x) * np.sin(x) / x**3,
     lambda x: np.exp(x) * (np.sin(x) + np.cos(x)) / x**3 - 3 * np.exp(x) * np.sin(x) / x**4,
     1.5),
]  # fmt: skip

# Step pairs (h, h/2) where truncation dominates round-off by several orders.
ORDERS = [
    ("forward", 1, 1e-3),
    ("backward", 1, 1e-3),
    ("central", 2, 1e-2),
    ("central4", 4, 1e-1),
]


def numeric_derivative(f, x0: float, method: str, eps) -> float:
    """The numeric derivative gradcheck computes for f at x0 (through the public API)."""
    report = gradcheck.check(
        lambda theta: f(theta[0]), np.array([x0]), np.array([0.0]), method=method, eps=eps
    )
    return report.params["theta"].worst[0].numeric


@pytest.mark.parametrize(("method", "order", "h"), ORDERS)
@pytest.mark.parametrize(("name", "f", "df", "x0"), FUNCTIONS)
def test_error_shrinks_with_the_order_of_the_scheme(method, order, h, name, f, df, x0):
    exact = df(x0)
    errors = [abs(numeric_derivative(f, x0, method, step) - exact) for step in (h, h / 2)]
    observed = math.log2(errors[0] / errors[1])
    assert observed == pytest.approx(order, abs=0.25), (
        f"{method} on {name}: error {errors[0]:.3g} -> {errors[1]:.3g} when h halves "
        f"(observed order {observed:.2f}, expected {order})"
    )


@pytest.mark.parametrize(("method", "order", "h"), ORDERS)
def test_truncation_error_matches_the_leading_term(method, order, h):
    # exp at 0: every derivative is 1, so the leading error term is known exactly:
    # forward +h/2, backward -h/2, central +h^2/6, central4 -h^4/30.
    leading = {"forward": h / 2, "backward": -h / 2, "central": h**2 / 6, "central4": -(h**4) / 30}
    error = numeric_derivative(np.exp, 0.0, method, h) - 1.0
    assert error == pytest.approx(leading[method], rel=0.2)


@pytest.mark.parametrize(("name", "f", "df", "x0"), FUNCTIONS)
def test_complex_step_is_accurate_to_round_off(name, f, df, x0):
    exact = df(x0)
    numeric = numeric_derivative(f, x0, "complex", None)
    assert numeric == pytest.approx(exact, rel=1e-14, abs=0)


@pytest.mark.parametrize("h", [1e-10, 1e-20, 1e-100])
def test_complex_step_has_no_cancellation_at_tiny_steps(h):
    assert numeric_derivative(np.exp, 0.5, "complex", h) == pytest.approx(np.exp(0.5), rel=1e-14)


@pytest.mark.parametrize(
    ("method", "eps", "rtol"),
    [
        ("central", None, 1e-6),
        ("central", "auto", 1e-9),
        ("central4", "auto", 1e-11),
        ("forward", "auto", 1e-6),
        ("backward", "auto", 1e-6),
    ],
)
@pytest.mark.parametrize(("name", "f", "df", "x0"), FUNCTIONS)
def test_default_and_auto_steps_are_accurate(method, eps, rtol, name, f, df, x0):
    assert numeric_derivative(f, x0, method, eps) == pytest.approx(df(x0), rel=rtol)


def test_schemes_declare_their_order_and_evaluations():
    assert {name: s.order for name, s in SCHEMES.items() if not s.complex_step} == {
        "central": 2,
        "forward": 1,
        "backward": 1,
        "central4": 4,
    }
    assert {name: s.evaluations_per_coordinate for name, s in SCHEMES.items()} == {
        "central": 2,
        "forward": 1,
        "backward": 1,
        "central4": 4,
        "complex": 1,
    }


@pytest.mark.parametrize("name", ["central", "forward", "backward", "central4"])
def test_stencils_are_exact_on_a_linear_function(name):
    scheme = SCHEMES[name]
    h = np.array([0.25])
    values = np.array([[3.0 * (1.0 + c * 0.25) + 2.0 for c in scheme.offsets]])
    assert scheme.combine(values, 5.0, h)[0] == 3.0


# --- steps -----------------------------------------------------------------------------


def test_default_step_is_the_textbook_1e7_in_float64():
    x = np.array([0.0, 1.0, -3.0, 1e6])
    steps = requested_steps(SCHEMES["central"], x, None, FLOAT64_EPS)
    np.testing.assert_array_equal(steps, np.full(4, 1e-7))
    assert TEXTBOOK_EPS == 1e-7


@pytest.mark.parametrize("method", ["central", "forward", "central4"])
def test_auto_step_scales_with_magnitude(method):
    scheme = SCHEMES[method]
    x = np.array([0.0, 0.5, -1.0, 4.0, -250.0])
    factor = FLOAT64_EPS ** (1.0 / (scheme.order + 1))
    expected = factor * np.array([1.0, 1.0, 1.0, 4.0, 250.0])
    np.testing.assert_allclose(
        requested_steps(scheme, x, "auto", FLOAT64_EPS), expected, rtol=1e-15
    )


def test_float_eps_is_used_as_given():
    steps = requested_steps(SCHEMES["central"], np.array([1.0, 100.0]), 1e-4, FLOAT64_EPS)
    np.testing.assert_array_equal(steps, [1e-4, 1e-4])


@pytest.mark.parametrize("method", ["central", "forward", "backward", "central4"])
def test_float32_default_step_is_larger_than_float64s(method):
    scheme = SCHEMES[method]
    x = np.array([0.5, -2.0])
    float32 = requested_steps(scheme, x, None, resolution_of(np.dtype(np.float32)))
    float64 = requested_steps(scheme, x, None, resolution_of(np.dtype(np.float64)))
    assert (float32 > float64).all()
    assert (float32 >= FLOAT32_EPS ** (1.0 / (scheme.order + 1))).all()


def test_resolution_is_the_coarsest_dtype():
    assert resolution_of(np.dtype(np.float32), np.dtype(np.float64)) == FLOAT32_EPS
    assert resolution_of(np.dtype(np.float16)) == float(np.finfo(np.float16).eps)


def test_float32_step_next_to_one_is_rounded_to_one_ulp():
    # 1e-7 is more than half the float32 spacing at 1.0 (1.19e-7), so x + h rounds
    # up to the next float: the step taken is exactly one ulp, not 1e-7.
    x = np.array([1.0], dtype=np.float32)
    taken, raised = realized_steps(x, np.array([1e-7]))
    assert taken[0] == np.spacing(np.float32(1.0))
    assert raised == 0


def test_float32_step_that_vanishes_is_raised_to_one_ulp_and_counted():
    # At 2.0 and 3.0 the float32 spacing is 2.4e-7: x + 1e-7 rounds back to x, the step
    # vanishes. At 1.0 it rounds up to the next float instead (one ulp, not raised).
    x = np.array([2.0, -3.0, 1.0], dtype=np.float32)
    taken, raised = realized_steps(x, np.array([1e-7, 1e-7, 1e-7]))
    assert taken[0] == np.spacing(np.float32(2.0))
    assert taken[1] == np.spacing(np.float32(3.0))
    assert taken[2] == np.spacing(np.float32(1.0))
    assert raised == 2
    assert taken.dtype == np.float64


def test_float64_steps_are_what_floating_point_realizes():
    x = np.array([0.1, 1.0, 3.7, -12345.678, 1e8])
    h = np.full(5, 1e-7)
    taken, raised = realized_steps(x, h)
    np.testing.assert_array_equal(taken, (x + h) - x)
    assert raised == 0
    assert not np.array_equal(taken, h)  # rounding changes most of them


def test_vanished_float32_steps_give_a_precision_finding():
    x = np.array([2.0, 3.0], dtype=np.float32)
    report = gradcheck.check(lambda t: float(np.sum(t.astype(np.float64) ** 2)), x, 2 * x, eps=1e-7)
    raised = [f for f in report.findings if f.kind == "precision" and "raised_steps" in f.detail]
    assert len(raised) == 1
    assert raised[0].detail["raised_steps"] == 2
    assert report.passed
