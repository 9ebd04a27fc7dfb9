"""gradcheck.jax: pytrees, custom_vjp / custom_jvp rules, the x64 setting left alone,
side by side with jax.test_util.check_grads, and the vectorized (jit + vmap) cost."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import gradcheck.jax as gj  # noqa: E402
from gradcheck import CostFunctionError, InvalidArgumentError, Verdict  # noqa: E402
from gradcheck._adapters.jax_function import FunctionCheck, leaf_name  # noqa: E402

# --- custom rules ----------------------------------------------------------------------


def scaled_tanh_with(bwd_scale):
    """scale * tanh(x) with a hand-written VJP; ``bwd_scale`` computes the scale's cotangent."""

    @jax.custom_vjp
    def scaled_tanh(x, scale):
        return scale * jnp.tanh(x)

    def fwd(x, scale):
        t = jnp.tanh(x)
        return scale * t, (t, scale)

    def bwd(residuals, g):
        t, scale = residuals
        return g * scale * (1 - t**2), bwd_scale(g, t)

    scaled_tanh.defvjp(fwd, bwd)
    return scaled_tanh


good_scaled_tanh = scaled_tanh_with(lambda g, t: jnp.sum(g * t))
# The wrong cotangent: the incoming g is forgotten.
broken_scaled_tanh = scaled_tanh_with(lambda g, t: jnp.sum(t))


def softplus_with(derivative):
    @jax.custom_jvp
    def softplus(x):
        return jnp.logaddexp(x, 0.0)

    @softplus.defjvp
    def softplus_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return softplus(x), derivative(x) * t

    return softplus


good_softplus = softplus_with(jax.nn.sigmoid)
broken_softplus = softplus_with(lambda x: jax.nn.sigmoid(-x))


X = np.array([0.5, -1.0, 2.0, 0.1])


def tanh_params():
    return {"x": jnp.asarray(X), "scale": jnp.asarray(1.5)}


# --- names and structure ---------------------------------------------------------------


class Pair(NamedTuple):
    weight: object
    bias: object


def test_leaf_names_are_dotted_paths():
    params = {"layers": [{"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}], "scale": jnp.asarray(2.0)}
    report = gj.check_function(
        lambda p: (
            jnp.sum(jnp.tanh(p["layers"][0]["w"] @ jnp.ones(2) + p["layers"][0]["b"])) * p["scale"]
        ),
        params,
    )
    assert list(report.params) == ["layers.0.b", "layers.0.w", "scale"]
    assert report.passed


def test_namedtuple_and_bare_array_names():
    names = [
        leaf_name(path)
        for path, _ in jax.tree_util.tree_flatten_with_path(Pair(jnp.ones(1), jnp.ones(1)))[0]
    ]
    assert names == ["weight", "bias"]
    report = gj.check_function(lambda x: jnp.sum(x**2), jnp.asarray([1.0, 2.0]))
    assert list(report.params) == ["theta"]


def test_integer_leaves_pass_through_unchecked():
    params = {"x": jnp.asarray(X), "index": jnp.asarray(2)}
    report = gj.check_function(lambda p: jnp.sin(p["x"][p["index"]]) * jnp.sum(p["x"]), params)
    assert list(report.params) == ["x"]
    assert report.passed


# --- results, side by side with check_grads ---------------------------------------------


def test_scalar_output_is_compared_with_grad():
    params = {"w": jnp.asarray([[0.5, -1.0], [2.0, 0.3]]), "b": jnp.asarray([0.1, -0.2])}
    report = gj.check_function(lambda p: jnp.mean(good_softplus(X[:2] @ p["w"] + p["b"])), params)
    assert report.passed
    assert report.verdict is Verdict.CORRECT


def test_scalar_output_rule_that_forgets_its_cotangent_is_caught_as_check_grads_does():
    # One rule for every framework: a scalar output gets a random upstream too, never 1.
    @jax.custom_vjp
    def cube_sum(x):
        return jnp.sum(x**3)

    cube_sum.defvjp(lambda x: (cube_sum(x), x), lambda x, g: (3 * x**2,))  # bug: g forgotten
    with pytest.raises(AssertionError, match="VJP"):
        check_grads(cube_sum, (jnp.asarray(X),), order=1, modes=["rev"])
    report = gj.check_function(lambda p: cube_sum(p["x"]), {"x": jnp.asarray(X)})
    assert [p.name for p in report.failing] == ["x"]


def test_correct_custom_vjp_agrees_with_check_grads():
    check_grads(good_scaled_tanh, (jnp.asarray(X), jnp.asarray(1.5)), order=1, modes=["rev"])
    report = gj.check_function(lambda p: good_scaled_tanh(p["x"], p["scale"]), tanh_params())
    assert report.passed


def test_wrong_custom_vjp_cotangent_agrees_with_check_grads_and_names_the_input():
    with pytest.raises(AssertionError, match="VJP"):
        check_grads(broken_scaled_tanh, (jnp.asarray(X), jnp.asarray(1.5)), order=1, modes=["rev"])
    report = gj.check_function(lambda p: broken_scaled_tanh(p["x"], p["scale"]), tanh_params())
    assert not report.passed
    assert [p.name for p in report.failing] == ["scale"]
    assert report.params["x"].passed


def test_wrong_custom_jvp_rule_agrees_with_check_grads():
    with pytest.raises(AssertionError, match=r"JVP|VJP"):
        check_grads(broken_softplus, (jnp.asarray(X),), order=1)
    check_grads(good_softplus, (jnp.asarray(X),), order=1)
    params = {"a": jnp.asarray(X), "b": jnp.asarray(X[::-1].copy())}
    report = gj.check_function(lambda p: jnp.sum(broken_softplus(p["a"]) * p["b"]), params)
    assert [p.name for p in report.failing] == ["a"]
    assert gj.check_function(lambda p: jnp.sum(good_softplus(p["a"]) * p["b"]), params).passed


def test_pytree_output_is_checked_through_a_vjp():
    def two_outputs(p):
        return {"product": p["x"] * p["scale"], "sine": jnp.sin(p["x"])}

    assert gj.check_function(two_outputs, tanh_params()).passed


def test_python_control_flow_on_values_falls_back_to_no_jit():
    def piecewise(p):
        if p["x"][0] > 0:  # fine for jax.grad, not traceable by jit
            return jnp.sum(p["x"] ** 2)
        return jnp.sum(p["x"])

    def positive_part(p):
        return jnp.sum(p["x"][p["x"] > 0] ** 3)  # a shape that depends on values

    assert gj.check_function(piecewise, {"x": jnp.asarray(X)}).passed
    assert gj.check_function(positive_part, {"x": jnp.asarray(X)}).passed


def test_complex_step_works_for_analytic_functions():
    report = gj.check_function(lambda p: jnp.sum(jnp.exp(p["x"]) * p["scale"]), tanh_params(),
                               method="complex")  # fmt: skip
    assert report.passed
    assert report.settings.method == "complex"


def test_dtype_none_keeps_float32():
    report = gj.check_function(lambda p: good_scaled_tanh(p["x"], p["scale"]), tanh_params(),
                               dtype=None)  # fmt: skip
    assert report.params["x"].dtype == "float32"
    assert report.params["x"].verdict in (Verdict.CORRECT, Verdict.ACCEPTABLE)


def test_float64_is_the_default_dtype():
    report = gj.check_function(lambda p: good_scaled_tanh(p["x"], p["scale"]), tanh_params())
    assert report.params["x"].dtype == "float64"


# --- the user's configuration and arrays are untouched ----------------------------------


@pytest.fixture(params=[False, True], ids=["x64-off", "x64-on"])
def x64(request):
    """Run the test with jax_enable_x64 set as the user might have it; restore it after."""
    original = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", request.param)
    try:
        yield request.param
    finally:
        jax.config.update("jax_enable_x64", original)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, None])
def test_x64_setting_is_what_it_was(x64, dtype):
    report = gj.check_function(lambda p: broken_scaled_tanh(p["x"], p["scale"]), tanh_params(),
                               dtype=dtype)  # fmt: skip
    assert [p.name for p in report.failing] == ["scale"]
    assert jax.config.jax_enable_x64 is x64
    assert jnp.asarray(1.0).dtype == (jnp.float64 if x64 else jnp.float32)


def test_x64_setting_is_restored_when_the_check_raises(x64):
    with pytest.raises(CostFunctionError, match="no floating-point array"):
        gj.check_function(lambda p: jnp.argmax(p["x"]), {"x": jnp.asarray(X)})
    assert jax.config.jax_enable_x64 is x64


def test_numpy_params_are_untouched():
    params = {"x": X.copy(), "scale": np.array(1.5)}
    gj.check_function(lambda p: broken_scaled_tanh(p["x"], p["scale"]), params)
    assert np.array_equal(params["x"], X)
    assert params["scale"] == 1.5


# --- bad input --------------------------------------------------------------------------


def test_params_without_floating_leaves_are_rejected():
    with pytest.raises(InvalidArgumentError, match="holds no floating-point array"):
        gj.check_function(lambda p: p["n"] * 1.0, {"n": jnp.asarray(3)})


def test_bad_dtype_is_rejected():
    with pytest.raises(InvalidArgumentError, match="must be a floating dtype"):
        gj.check_function(lambda p: jnp.sum(p), jnp.ones(2), dtype=np.int32)


def test_function_must_be_callable():
    with pytest.raises(InvalidArgumentError, match="fn must be callable"):
        gj.check_function(None, jnp.ones(2))


# --- vectorized cost --------------------------------------------------------------------


def loop_costs(check, leaf_index, stack):
    host = list(check.params.values())[leaf_index]
    saved = host.copy()
    try:
        values = []
        for row in stack:
            host[...] = row
            values.append(float(check.evaluate(check.params)))
    finally:
        host[...] = saved
    return np.array(values)


def test_batched_cost_matches_the_loop():
    def fn(p):
        return {"a": good_scaled_tanh(p["x"], p["scale"]), "b": jnp.cos(p["x"]) * p["scale"] ** 2}

    check = FunctionCheck(fn, tanh_params(), np.float64, seed=0)
    batched = check.batched()
    assert batched is not None
    rng = np.random.default_rng(0)
    for index, host in enumerate(check.params.values()):
        stack = host[None] + 1e-3 * rng.standard_normal((6, *host.shape))
        np.testing.assert_allclose(batched(index, stack), loop_costs(check, index, stack),
                                   rtol=1e-12, atol=1e-14)  # fmt: skip
    assert not jax.config.jax_enable_x64


def test_batched_cost_is_none_where_jax_cannot_trace_and_stacks_go_one_by_one():
    def piecewise(p):
        return jnp.sum(p["x"] ** 2) if p["x"][0] > 0 else jnp.sum(p["x"])

    check = FunctionCheck(piecewise, {"x": jnp.asarray(X)}, np.float64, seed=0)
    assert check.batched() is None
    stack = X[None] + np.array([[0.0], [-1.0]])  # the second row takes the other branch
    np.testing.assert_allclose(check.evaluate({"x": stack}), loop_costs(check, 0, stack))


def test_stacked_tree_is_evaluated_as_a_batch():
    check = FunctionCheck(lambda p: good_scaled_tanh(p["x"], p["scale"]), tanh_params(),
                          np.float64, seed=0)  # fmt: skip
    stack = np.linspace(0.5, 2.0, 7)[:, None]
    costs = check.evaluate({**check.params, "scale": stack.reshape(7)})
    np.testing.assert_allclose(costs, loop_costs(check, 0, stack.reshape(7)), rtol=1e-12)
