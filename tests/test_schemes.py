"""Finite-difference schemes: each stencil has its order, and steps are the ones realized."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradcheck._engine import SCHEMES, estimate
from gradcheck._engine._step import FLOAT64_EPS, TEXTBOOK_EPS, initial_steps, scale_of
from gradcheck._pipeline import Subject
from gradcheck._pipeline._subject import build_problem
from gradcheck._tree import flatten

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
    """The bulk estimate the engine makes for f at x0 with one scheme and step (no follow-up)."""
    x = np.array([x0])
    scheme = SCHEMES[method]
    subject = Subject(evaluate=lambda t: f(t[0]), params=x, flat=flatten(x),
                      analytic=np.zeros(1), base_value=float(np.real(f(x0))),
                      repeat=lambda: (0.0, False))  # fmt: skip
    problem = build_problem(subject, complex_step=scheme.complex_step)
    if scheme.complex_step:
        h = np.array([1e-20 if eps is None else float(eps)])
    else:
        h, _ = initial_steps(x, eps, order=scheme.order, scale=scale_of(x), noise=FLOAT64_EPS)
    return float(estimate(problem, scheme, [np.array([0])], [h], sigma=[0.0]).values[0])


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
    displacements = np.array([[c * 0.25 for c in scheme.offsets]])
    values = 3.0 * (1.0 + displacements) + 2.0
    assert scheme.combine(values, 5.0, displacements)[0] == 3.0


@pytest.mark.parametrize("name", ["central", "forward", "backward", "central4"])
def test_noise_bars_follow_the_stencil_weights(name):
    # sigma * ||weights||: central sqrt(2) / (2h), one-sided sqrt(2) / h, central4 ~0.95 / h.
    scheme = SCHEMES[name]
    displacements = np.array([[c * 0.5 for c in scheme.offsets]])
    bar = scheme.noise(displacements, 1.0)[0]
    expected = {
        "central": math.sqrt(2) / 1.0,
        "forward": math.sqrt(2) / 0.5,
        "backward": math.sqrt(2) / 0.5,
        "central4": math.hypot(4 / 3 * math.sqrt(2) / 1.0, 1 / 3 * math.sqrt(2) / 2.0),
    }
    assert bar == pytest.approx(expected[name])  # fmt: skip


# --- steps (the policy itself is tested in test_step.py) ---------------------------------


def test_default_step_is_the_textbook_1e7_in_float64():
    x = np.array([0.0, 1.0, -3.0, 1e6])
    steps, raised = initial_steps(x, None, order=2, scale=scale_of(x), noise=FLOAT64_EPS)
    np.testing.assert_array_equal(steps, np.full(4, 1e-7))
    assert raised == 0
    assert TEXTBOOK_EPS == 1e-7
