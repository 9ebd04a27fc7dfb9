"""gradcheck.gradient_checking gives the textbook loop's number, without its copies."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradcheck
from gradcheck import InvalidArgumentError, ParamTreeError
from gradcheck.demo import BUGS, load_bug, make_network


def textbook_gradient_check(theta, grad, cost_function, epsilon=1e-7):
    """The classic loop, exactly as the course writes it: two copies of theta per coordinate."""
    num_parameters = theta.shape[0]
    J_plus = np.zeros((num_parameters, 1))
    J_minus = np.zeros((num_parameters, 1))
    gradapprox = np.zeros((num_parameters, 1))
    for i in range(num_parameters):
        thetaplus = np.copy(theta)
        thetaplus[i] = thetaplus[i] + epsilon
        J_plus[i] = cost_function(thetaplus)
        thetaminus = np.copy(theta)
        thetaminus[i] = thetaminus[i] - epsilon
        J_minus[i] = cost_function(thetaminus)
        gradapprox[i] = (J_plus[i] - J_minus[i]) / (2 * epsilon)
    grad = grad.reshape(-1, 1)
    numerator = np.linalg.norm(grad - gradapprox)
    denominator = np.linalg.norm(grad) + np.linalg.norm(gradapprox)
    return numerator / denominator


def side_by_side(params, grads, cost_function, epsilon=1e-7):
    theta = np.concatenate([p.reshape(-1) for p in params])
    grad = np.concatenate([g.reshape(-1) for g in grads])
    expected = textbook_gradient_check(theta, grad, cost_function, epsilon)
    actual = gradcheck.gradient_checking(params, grads, cost_function, epsilon)
    return expected, actual


@pytest.fixture(scope="module")
def network():
    return make_network((2, 5, 5, 1), m=16)


def test_matches_the_textbook_on_the_demo_network(network):
    grads = network.gradients()
    expected, actual = side_by_side(list(network.params.values()), list(grads.values()),
                                    network.vector_cost)  # fmt: skip
    assert actual == pytest.approx(expected, rel=1e-12)
    assert actual < 1e-7


@pytest.mark.parametrize("bug", list(BUGS))
def test_matches_the_textbook_with_broken_grads(network, bug):
    grads = load_bug(bug).apply(network.gradients(), network)
    expected, actual = side_by_side(list(network.params.values()), list(grads.values()),
                                    network.vector_cost)  # fmt: skip
    assert actual == pytest.approx(expected, rel=1e-12)
    assert actual > 1e-5


@pytest.mark.parametrize("epsilon", [1e-4, 1e-5, 1e-7, 1e-9])
def test_matches_the_textbook_at_other_steps(network, epsilon):
    grads = network.gradients()
    expected, actual = side_by_side(list(network.params.values()), list(grads.values()),
                                    network.vector_cost, epsilon)  # fmt: skip
    assert actual == pytest.approx(expected, rel=1e-12)


def test_matches_the_textbook_on_the_default_demo_network():
    net = make_network()
    expected, actual = side_by_side(list(net.params.values()), list(net.gradients().values()),
                                    net.vector_cost)  # fmt: skip
    assert actual == pytest.approx(expected, rel=1e-12)


def cubic(theta):
    return float(np.sum(theta**3) + np.prod(theta[:2]))


@pytest.mark.parametrize(
    ("params", "grads"),
    [
        pytest.param([np.array([[1.0, -2.0]]), np.array([0.5])],
                     [np.array([[3.0 - 2.0, 12.0 + 1.0]]), np.array([0.75])], id="correct"),
        pytest.param([np.array([[1.0, -2.0]]), np.array([0.5])],
                     [np.array([[1.0, 13.0]]), np.array([1.5])], id="wrong-bias"),
        pytest.param([np.array([0.1, 0.2, 0.3, 0.4])], [np.zeros(4)], id="zero-grads"),
    ],
)  # fmt: skip
def test_matches_the_textbook_on_small_functions(params, grads):
    expected, actual = side_by_side(params, grads, cubic)
    assert actual == pytest.approx(expected, rel=1e-12)


def test_returns_a_python_float():
    W = np.array([[1.0, 2.0]])
    result = gradcheck.gradient_checking([W], [2 * W], lambda t: float(np.sum(t**2)))
    assert type(result) is float
    assert result < 1e-7


def test_tuple_params_and_grads_are_accepted():
    W, b = np.array([[1.0, 2.0]]), np.array([3.0])
    result = gradcheck.gradient_checking((W, b), (2 * W, 2 * b), lambda t: float(np.sum(t**2)))
    assert result < 1e-7


def test_cost_function_receives_the_concatenated_vector():
    W, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([5.0])
    shapes = []

    def cost(theta):
        shapes.append(theta.shape)
        return float(np.sum(theta))

    gradcheck.gradient_checking([W, b], [np.ones((2, 2)), np.ones(1)], cost)
    assert set(shapes) == {(5,)}
    assert len(shapes) == 1 + 2 * 5


def test_params_are_not_modified():
    W, b = np.array([[1.0, -0.0]]), np.array([3.0])
    before = W.tobytes(), b.tobytes()
    gradcheck.gradient_checking([W, b], [2 * W, 2 * b], lambda t: float(np.sum(t**2)))
    assert (W.tobytes(), b.tobytes()) == before


@pytest.mark.parametrize(
    ("epsilon", "match"),
    [
        (0, r"epsilon=0 must be a positive float, e\.g\. 1e-7"),
        (-1e-7, r"epsilon=-1e-07 must be a positive float"),
        ("1e-7", r"epsilon='1e-7' must be a positive float"),
        (None, r"epsilon=None must be a positive float"),
        (True, r"epsilon=True must be a positive float"),
        (math.nan, r"epsilon=nan must be a positive float"),
        (math.inf, r"epsilon=inf must be a positive float"),
    ],
)
def test_bad_epsilon_raises(epsilon, match):
    W = np.array([1.0, 2.0])
    with pytest.raises(InvalidArgumentError, match=match):
        gradcheck.gradient_checking([W], [2 * W], lambda t: float(np.sum(t**2)), epsilon)


def test_cost_function_not_callable_raises():
    W = np.array([1.0, 2.0])
    with pytest.raises(InvalidArgumentError, match=r"cost_function must be callable"):
        gradcheck.gradient_checking([W], [2 * W], "J")


def test_grads_of_the_wrong_shape_raise():
    W = np.array([[1.0, 2.0]])
    with pytest.raises(ParamTreeError, match=r"grads\[0\] has shape \(2, 1\) but params\[0\]"):
        gradcheck.gradient_checking([W], [W.T], lambda t: float(np.sum(t**2)))
