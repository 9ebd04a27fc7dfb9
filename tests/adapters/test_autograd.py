"""gradcheck.autograd: HIPS autograd functions of pytrees, custom defvjp rules right and wrong."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("autograd")

import autograd.numpy as anp
from autograd.extend import defvjp, primitive

import gradcheck.autograd as ga
from gradcheck import CostFunctionError, InvalidArgumentError, Verdict
from gradcheck.testing import assert_function_gradients_correct

# --- custom rules ----------------------------------------------------------------------


def affine_with(weight_rule):
    """``affine(W, x) = tanh(W @ x)`` as a primitive whose W-gradient ``weight_rule`` gives."""

    @primitive
    def affine(W, x):
        return np.tanh(W @ x)

    def vjp_weight(ans, W, x):
        return lambda g: weight_rule(g * (1 - ans**2), x)

    def vjp_input(ans, W, x):
        return lambda g: W.T @ (g * (1 - ans**2))

    defvjp(affine, vjp_weight, vjp_input)
    return affine


good_affine = affine_with(lambda d, x: np.outer(d, x))
twice_affine = affine_with(lambda d, x: 2.0 * np.outer(d, x))
negated_affine = affine_with(lambda d, x: -np.outer(d, x))
transposed_affine = affine_with(lambda d, x: np.outer(d, x).T)


def square_params():
    rng = np.random.default_rng(3)
    return {"W": rng.standard_normal((4, 4)) * 0.5, "x": rng.standard_normal(4)}


def loss_of(affine):
    return lambda p: anp.sum(affine(p["W"], p["x"]) ** 2)


# --- results ----------------------------------------------------------------------------


def test_correct_custom_rule_passes():
    report = ga.check_function(loss_of(good_affine), square_params())
    assert report.passed
    assert list(report.params) == ["W", "x"]
    assert report.verdict in (Verdict.CORRECT, Verdict.ACCEPTABLE)


@pytest.mark.parametrize(
    ("affine", "kind"),
    [(twice_affine, "scale"), (negated_affine, "sign"), (transposed_affine, "transpose")],
    ids=["scale", "sign", "transpose"],
)
def test_wrong_rule_is_named_and_diagnosed(affine, kind):
    report = ga.check_function(loss_of(affine), square_params())
    assert not report.passed
    assert [p.name for p in report.failing] == ["W"]
    assert report.params["x"].passed
    assert any(f.kind == kind and f.param == "W" for f in report.findings), report.findings


def test_rule_that_forgets_the_incoming_gradient_is_caught_for_a_scalar_output():
    @primitive
    def cube_sum(x):
        return np.sum(x**3)

    defvjp(cube_sum, lambda ans, x: lambda g: 3 * x**2)  # bug: should be g * 3 * x**2
    report = ga.check_function(lambda p: cube_sum(p["x"]), {"x": np.array([0.5, -1.0, 2.0])})
    assert [p.name for p in report.failing] == ["x"]


def test_array_output_is_checked_through_its_projection():
    params = square_params()
    assert ga.check_function(lambda p: good_affine(p["W"], p["x"]), params).passed
    report = ga.check_function(lambda p: negated_affine(p["W"], p["x"]), params)
    assert [p.name for p in report.failing] == ["W"]


def test_pytree_output_is_checked():
    def two(p):
        return {"a": good_affine(p["W"], p["x"]), "b": (anp.sin(p["x"]), 3)}

    assert ga.check_function(two, square_params()).passed


def test_nested_pytree_params_are_named_by_path_in_insertion_order():
    rng = np.random.default_rng(0)
    params = {
        "layers": [{"w": rng.standard_normal((3, 3)), "b": np.zeros(3)}],
        "scale": 1.5,
        "steps": np.arange(3),  # an integer leaf: passed through, not checked
    }

    def fn(p):
        layer = p["layers"][0]
        return p["scale"] * anp.sum(anp.tanh(layer["w"] @ np.ones(3) + layer["b"]) * p["steps"])

    report = ga.check_function(fn, params)
    assert list(report.params) == ["layers.0.w", "layers.0.b", "scale"]
    assert report.passed


def test_user_arrays_are_untouched_bit_for_bit():
    params = square_params()
    saved = {k: v.copy() for k, v in params.items()}
    ga.check_function(loss_of(transposed_affine), params)
    for name, before in saved.items():
        assert params[name].dtype == before.dtype
        assert params[name].tobytes() == before.tobytes()


def test_float32_dtype_checks_a_float32_copy():
    params = square_params()
    report = ga.check_function(loss_of(good_affine), params, dtype=np.float32)
    assert report.params["W"].dtype == "float32"
    assert report.passed
    assert params["W"].dtype == np.float64
    report = ga.check_function(loss_of(twice_affine), params, dtype=np.float32)
    assert [p.name for p in report.failing] == ["W"]


def test_testing_helper_takes_autograd_by_name():
    params = square_params()
    assert assert_function_gradients_correct(loss_of(good_affine), params, framework="autograd")
    with pytest.raises(InvalidArgumentError, match="found no torch tensor or JAX array"):
        assert_function_gradients_correct(loss_of(good_affine), params)
    with pytest.raises(InvalidArgumentError, match=r"framework='autogard'.*'autograd'"):
        assert_function_gradients_correct(loss_of(good_affine), params, framework="autogard")


# --- bad input --------------------------------------------------------------------------


def test_params_without_floating_leaves_are_rejected():
    with pytest.raises(InvalidArgumentError, match="holds no floating-point array"):
        ga.check_function(lambda p: p["n"] * 1.0, {"n": np.arange(3)})


def test_function_without_floating_output_is_rejected():
    with pytest.raises(CostFunctionError, match="fn returned no floating-point array"):
        ga.check_function(lambda p: anp.argmax(p["x"]), {"x": np.array([1.0, 2.0])})


def test_bad_dtype_is_rejected():
    with pytest.raises(InvalidArgumentError, match="must be a floating dtype"):
        ga.check_function(lambda p: anp.sum(p), np.ones(2), dtype=np.int32)


def test_failing_function_is_named():
    def fn(p):
        raise ValueError("bad leaf")

    with pytest.raises(CostFunctionError, match="fn raised ValueError: bad leaf"):
        ga.check_function(fn, {"w": np.ones(3)}, progress=False)
