"""gradcheck.testing: assertion helpers that raise GradientMismatchError with the report."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gradcheck import GradientMismatchError, InvalidArgumentError, ParamTreeError, Report
from gradcheck.testing import (
    _listening,
    assert_function_gradients_correct,
    assert_gradients_correct,
    assert_layer_gradients_correct,
    assert_module_gradients_correct,
)

W = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])
B = np.array([0.3, -0.7])


def cost(p):
    return np.sum(np.sin(p["W1"])) + np.sum(p["b1"] ** 2)


def params():
    return {"W1": W.copy(), "b1": B.copy()}


def right_grads(p):
    return {"dW1": np.cos(p["W1"]), "db1": 2 * p["b1"]}


def wrong_grads(p):
    return {"dW1": np.cos(p["W1"]), "db1": -2 * p["b1"]}


def test_passing_check_returns_the_report():
    p = params()
    report = assert_gradients_correct(cost, p, right_grads(p))
    assert isinstance(report, Report)
    assert report.passed


def test_mismatch_raises_an_assertion_error_whose_message_is_the_report():
    p = params()
    seen = []
    with _listening(seen.append), pytest.raises(GradientMismatchError) as excinfo:
        assert_gradients_correct(cost, p, wrong_grads(p))
    assert isinstance(excinfo.value, AssertionError)
    assert str(excinfo.value) == str(seen[0])
    message = str(excinfo.value)
    assert "b1" in message
    assert "bug" in message
    assert seen[0].findings
    assert all(f"[{finding.kind}]" in message for finding in seen[0].findings)


def test_options_are_those_of_check():
    p = params()
    report = assert_gradients_correct(cost, p, right_grads(p), method="central4", mode="sample",
                                      samples=2, seed=3)  # fmt: skip
    assert report.settings.method == "central4"
    assert report.settings.seed == 3
    assert report.checked == 4


def test_bad_input_is_an_error_not_a_mismatch():
    p = params()
    with pytest.raises(InvalidArgumentError, match="eps=-1"):
        assert_gradients_correct(cost, p, right_grads(p), eps=-1.0)
    with pytest.raises(ParamTreeError, match="has no gradient for"):
        assert_gradients_correct(cost, p, {"dW1": np.cos(W)})


def test_layer_helper_passes_and_fails():
    inputs = {"x": np.array([[1.0, -2.0]]), "w": np.array([[0.5], [3.0]])}

    def forward(q):
        return np.tanh(q["x"] @ q["w"])

    def backward(q, dout, sign=1.0):
        dz = dout * (1 - np.tanh(q["x"] @ q["w"]) ** 2)
        return {"dx": dz @ q["w"].T, "dw": sign * q["x"].T @ dz}

    assert assert_layer_gradients_correct(forward, backward, inputs).passed
    with pytest.raises(GradientMismatchError, match=r"(?s)w .*bug"):
        assert_layer_gradients_correct(forward, lambda q, d: backward(q, d, -1.0), inputs)


def test_listeners_see_every_report_and_are_removed():
    p = params()
    seen = []
    with _listening(seen.append):
        assert_gradients_correct(cost, p, right_grads(p))
    assert_gradients_correct(cost, p, right_grads(p))
    assert len(seen) == 1


def test_function_helper_needs_torch_or_jax_inputs():
    with pytest.raises(InvalidArgumentError, match="found no torch tensor"):
        assert_function_gradients_correct(np.sin, np.ones(3))


def test_testing_module_imports_no_framework():
    code = "import sys, gradcheck.testing; print(sorted({'torch', 'jax'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


# --- PyTorch and JAX variants ------------------------------------------------------------


def test_module_helper():
    torch = pytest.importorskip("torch")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    report = assert_module_gradients_correct(model, lambda m: m(x).square().mean())
    assert list(report.params) == ["0.weight", "0.bias"]


def test_function_helper_dispatches_torch():
    torch = pytest.importorskip("torch")

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x  # should be 3 x**2

    x = torch.tensor([0.5, -1.5, 2.0], requires_grad=True)
    assert assert_function_gradients_correct(lambda x: x**3, x).passed
    with pytest.raises(GradientMismatchError, match=r"(?s)x .*bug"):
        assert_function_gradients_correct(Cube.apply, x)


def test_function_helper_dispatches_jax():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    params = {"w": jnp.asarray([0.5, -1.0])}
    assert assert_function_gradients_correct(lambda p: jnp.sum(jnp.sin(p["w"])), params).passed
    with pytest.raises(InvalidArgumentError, match="one pytree of params, but 2 inputs"):
        assert_function_gradients_correct(lambda a, b: a, params, params)
