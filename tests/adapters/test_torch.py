"""gradcheck.torch: modules and custom autograd Functions, the untouched-model guarantees,
side by side with torch.autograd.gradcheck, and the vectorized (vmap) cost."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import gradcheck  # noqa: E402
import gradcheck.torch as gt  # noqa: E402
from gradcheck import CostFunctionError, InvalidArgumentError, Verdict  # noqa: E402
from gradcheck._adapters.torch_function import FunctionCheck  # noqa: E402
from gradcheck._adapters.torch_module import ModuleCheck  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: one intra-op thread is faster, and with JAX's threads in the same
    process on a small machine torch's thread pool oversubscribes the cores (3x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def seeded(build, seed=0):
    """Build a module from a seed without moving the global RNG of the test session."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def data(rows=8, features=3, outputs=2, seed=0):
    g = generator(seed)
    return torch.randn(rows, features, generator=g), torch.randn(rows, outputs, generator=g)


# --- custom autograd Functions ---------------------------------------------------------


class LinearFn(torch.autograd.Function):
    """y = x @ weight.T + bias, backward by hand (old style: forward takes ctx)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return x @ weight.T + bias

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        return grad_out @ weight, grad_out.T @ x, grad_out.sum(0)


class BrokenWeightFn(LinearFn):
    """The weight gradient is doubled; x and bias are right."""

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        return grad_out @ weight, 2 * grad_out.T @ x, grad_out.sum(0)


class SplitFn(torch.autograd.Function):
    """Two outputs, (x * w, sin(x)); the gradient through the second output forgets cos."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w, torch.sin(x)

    @staticmethod
    def backward(ctx, grad_product, grad_sine):
        x, w = ctx.saved_tensors
        return grad_product * w + grad_sine, grad_product * x


class NewStyleFn(torch.autograd.Function):
    """forward without ctx, setup_context apart, vmap rule generated."""

    generate_vmap_rule = True

    @staticmethod
    def forward(inputs, gain):
        return torch.tanh(inputs) * gain

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad):
        inputs, gain = ctx.saved_tensors
        return grad * gain * (1 - torch.tanh(inputs) ** 2), grad * torch.tanh(inputs)


def linear_inputs(dtype=torch.float64, seed=0):
    g = generator(seed)
    x = torch.randn(5, 3, generator=g, dtype=dtype).requires_grad_()
    weight = torch.randn(2, 3, generator=g, dtype=dtype).requires_grad_()
    bias = torch.randn(2, generator=g, dtype=dtype).requires_grad_()
    return x, weight, bias


class FnLinear(nn.Module):
    """A module whose forward goes through a custom autograd Function."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.weight = nn.Parameter(torch.randn(2, 3, generator=generator(1)))
        self.bias = nn.Parameter(torch.randn(2, generator=generator(2)))

    def forward(self, x):
        return self.fn.apply(x, self.weight, self.bias)


def mlp(*, batch_norm=False, dropout=0.0):
    layers = [nn.Linear(3, 4)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(4))
    layers.append(nn.Tanh())
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(4, 2))
    return seeded(lambda: nn.Sequential(*layers))


def mse(x, y):
    return lambda m: F.mse_loss(m(x), y)


# --- modules: results ------------------------------------------------------------------


def test_module_names_follow_named_parameters():
    model = mlp(batch_norm=True)
    x, y = data()
    report = gt.check_module(model, mse(x, y))
    assert list(report.params) == [name for name, _ in model.named_parameters()]
    assert report.params["0.weight"].shape == (4, 3)


def test_float32_module_passes_on_its_float64_copy():
    model = mlp()
    x, y = data()
    report = gt.check_module(model, mse(x, y))
    assert report.passed
    assert report.verdict is Verdict.CORRECT
    assert report.difference < 1e-7


def test_broken_backward_inside_a_module_names_the_parameter():
    model = FnLinear(BrokenWeightFn)
    x, _ = data()
    report = gt.check_module(model, lambda m: m(x).square().sum())
    assert not report.passed
    assert [p.name for p in report.failing] == ["weight"]
    assert report.params["bias"].passed
    assert any(f.kind == "scale" and f.param == "weight" for f in report.findings)


def test_frozen_parameters_are_left_out():
    model = mlp()
    model[0].weight.requires_grad_(False)
    x, y = data()
    report = gt.check_module(model, mse(x, y))
    assert list(report.params) == ["0.bias", "2.weight", "2.bias"]
    assert report.passed


def test_tied_weights_are_checked_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.encode = nn.Linear(3, 4, bias=False)
            self.decode = nn.Linear(4, 3, bias=False)
            self.decode.weight = self.encode.weight  # same Parameter, transposed use below

        def forward(self, x):
            return F.linear(torch.tanh(self.encode(x)), self.encode.weight.T)

    model = seeded(Tied)
    x, _ = data()
    report = gt.check_module(model, lambda m: m(x).square().mean())
    assert list(report.params) == ["encode.weight"]
    assert report.passed


def test_batch_norm_in_training_mode_passes():
    model = mlp(batch_norm=True).train()
    x, y = data()
    assert gt.check_module(model, mse(x, y)).passed


def test_batch_norm_in_eval_mode_passes():
    model = mlp(batch_norm=True).eval()
    x, y = data()
    assert gt.check_module(model, mse(x, y)).passed


def test_dropout_in_training_mode_is_reported_as_nondeterministic():
    model = mlp(dropout=0.5).train()
    x, y = data()
    report = gt.check_module(model, mse(x, y))
    assert not report.passed
    assert [f.kind for f in report.findings] == ["nondeterministic"]


def test_dropout_seeded_inside_the_loss_passes():
    model = mlp(dropout=0.5).train()
    x, y = data()

    def loss(m):
        torch.manual_seed(0)  # the same mask at every evaluation
        return F.mse_loss(m(x), y)

    report = gt.check_module(model, loss)
    assert report.passed
    assert not any(f.kind == "nondeterministic" for f in report.findings)


def test_dropout_in_eval_mode_passes():
    model = mlp(dropout=0.5).eval()
    x, y = data()
    assert gt.check_module(model, mse(x, y)).passed


def test_dtype_none_checks_the_model_in_its_own_precision():
    model = mlp()
    x, y = data()
    report = gt.check_module(model, mse(x, y), dtype=None)
    assert report.passed
    assert report.params["0.weight"].verdict in (Verdict.CORRECT, Verdict.ACCEPTABLE)
    assert report.settings.step != gt.check_module(model, mse(x, y)).settings.step


def test_options_reach_the_engine():
    model = mlp()
    x, y = data()
    report = gt.check_module(model, mse(x, y), mode="sample", samples=2, method="central4")
    assert report.settings.method == "central4"
    assert report.checked == 2 * len(report.params)


def test_float32_data_meets_the_float64_copy_through_submodules():
    class TwoPart(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Linear(3, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(torch.tanh(self.encoder(x)))

    model = seeded(TwoPart)
    x, y = data()
    report = gt.check_module(model, lambda m: F.mse_loss(m.head(m.encoder(x)), y))
    assert report.passed


# --- modules: the user's model is untouched --------------------------------------------


def snapshot(model):
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "dtypes": {k: v.dtype for k, v in model.state_dict().items()},
        "grads": {
            n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()
        },
        "grad_ids": {n: id(p.grad) for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "training": {n: m.training for n, m in model.named_modules()},
        "param_ids": {n: id(p) for n, p in model.named_parameters()},
    }


def assert_same(model, before):
    after = snapshot(model)
    assert after["dtypes"] == before["dtypes"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["training"] == before["training"]
    assert after["param_ids"] == before["param_ids"]
    assert after["grad_ids"] == before["grad_ids"]
    for name, value in before["state"].items():
        assert torch.equal(after["state"][name], value), name
    for name, grad in before["grads"].items():
        if grad is None:
            assert after["grads"][name] is None, name
        else:
            assert torch.equal(after["grads"][name], grad), name


def busy_model():
    """BatchNorm (running stats), dropout, a submodule in eval mode, a .grad already set."""
    model = mlp(batch_norm=True, dropout=0.25).train()
    model[1].eval()  # the batch norm alone in eval mode: the copy must keep that too
    model[0].weight.grad = torch.full_like(model[0].weight, 0.5)
    return model


def test_model_parameters_grads_buffers_and_modes_are_untouched():
    model = busy_model()
    model[1].train()
    x, y = data()

    def loss(m):
        torch.manual_seed(0)  # a fixed dropout mask, so that the whole check runs
        return F.mse_loss(m(x), y)

    before = snapshot(model)
    assert gt.check_module(model, loss).passed
    assert_same(model, before)
    assert int(model[1].num_batches_tracked) == 0


def test_model_untouched_after_a_failing_check():
    model = FnLinear(BrokenWeightFn)
    model.weight.grad = torch.ones_like(model.weight)
    x, _ = data()
    before = snapshot(model)
    assert not gt.check_module(model, lambda m: m(x).square().sum()).passed
    assert_same(model, before)


def test_model_untouched_when_the_loss_raises_mid_check():
    model = busy_model()
    x, y = data()
    calls = []

    def loss(m):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("boom")
        torch.manual_seed(0)
        return F.mse_loss(m(x), y)

    before = snapshot(model)
    with pytest.raises(CostFunctionError, match="raised RuntimeError: boom"):
        gt.check_module(model, loss)
    assert_same(model, before)


def test_eval_submodule_keeps_its_mode_in_the_copy():
    model = busy_model()
    x, y = data()
    seen = []

    def loss(m):
        seen.append((m.training, m[1].training))
        torch.manual_seed(0)
        return F.mse_loss(m(x), y)

    gt.check_module(model, loss)
    assert set(seen) == {(True, False)}


def test_global_rng_state_is_untouched():
    model = mlp(dropout=0.5).train()
    x, y = data()
    state = torch.get_rng_state()
    gt.check_module(model, mse(x, y))
    assert torch.equal(torch.get_rng_state(), state)


# --- modules: bad input ----------------------------------------------------------------


def test_not_a_module_is_rejected():
    with pytest.raises(InvalidArgumentError, match=r"model must be a torch\.nn\.Module"):
        gt.check_module(lambda x: x, lambda m: m)


def test_loss_must_be_a_scalar_tensor():
    model = mlp()
    x, _ = data()
    with pytest.raises(CostFunctionError, match=r"returned a tensor of shape \(8, 2\)"):
        gt.check_module(model, lambda m: m(x))


def test_loss_that_ignores_its_argument_is_rejected():
    model = mlp()
    x, y = data()
    with pytest.raises(CostFunctionError, match="must use its argument"):
        gt.check_module(model, lambda m: F.mse_loss(model(x), y) + 0 * m[0].bias.sum().detach())


def test_complex_step_is_rejected_for_modules():
    model = mlp()
    x, y = data()
    with pytest.raises(InvalidArgumentError, match="method='complex' is not available"):
        gt.check_module(model, mse(x, y), method="complex")


def test_bad_dtype_is_rejected():
    model = mlp()
    x, y = data()
    with pytest.raises(InvalidArgumentError, match=r"dtype=torch\.int64 must be a floating"):
        gt.check_module(model, mse(x, y), dtype=torch.int64)


def test_model_that_cannot_be_copied_is_rejected():
    import threading

    model = mlp()
    model.lock = threading.Lock()
    x, y = data()
    with pytest.raises(InvalidArgumentError, match="could not copy the model"):
        gt.check_module(model, mse(x, y))


def test_module_without_parameters_is_rejected():
    with pytest.raises(InvalidArgumentError, match="no parameter that requires grad"):
        gt.check_module(nn.Tanh(), lambda m: m(torch.ones(2)).sum())


def test_bfloat16_model_needs_a_numpy_dtype():
    model = mlp().to(torch.bfloat16)
    x, y = data()
    with pytest.raises(InvalidArgumentError, match=r"has dtype torch\.bfloat16"):
        gt.check_module(model, lambda m: F.mse_loss(m(x.bfloat16()), y.bfloat16()), dtype=None)


def test_invalid_option_is_rejected_before_any_work():
    with pytest.raises(InvalidArgumentError, match="Did you mean method='central'"):
        gt.check_module(mlp(), lambda m: m[0].weight.sum(), method="centrl")


# --- functions: naming -----------------------------------------------------------------


def test_function_names_come_from_forward_less_ctx():
    report = gt.check_function(LinearFn.apply, *linear_inputs())
    assert list(report.params) == ["x", "weight", "bias"]
    assert report.passed


def test_function_class_is_accepted_for_its_apply():
    report = gt.check_function(LinearFn, *linear_inputs())
    assert list(report.params) == ["x", "weight", "bias"]


def test_new_style_function_names_have_no_ctx_to_drop():
    g = generator()
    a, b = torch.randn(4, generator=g), torch.randn(4, generator=g)
    report = gt.check_function(NewStyleFn.apply, a, b)
    assert list(report.params) == ["inputs", "gain"]
    assert report.passed


def test_plain_function_and_lambda_names():
    def scaled(value, gain):
        return torch.sin(value) * gain

    a, b = torch.randn(3, generator=generator()), torch.randn(3, generator=generator(1))
    assert list(gt.check_function(scaled, a, b).params) == ["value", "gain"]
    assert list(gt.check_function(lambda p, q: p * q, a, b).params) == ["p", "q"]


def test_unnamed_inputs_are_named_by_position():
    a, b = torch.randn(3, generator=generator()), torch.randn(3, generator=generator(1))
    assert list(gt.check_function(torch.mul, a, b).params) == ["0", "1"]

    def variadic(first, *rest):
        return first * sum(rest)

    report = gt.check_function(variadic, a, b, b.clone())
    assert list(report.params) == ["first", "1", "2"]


def test_module_as_function_is_checked_on_a_copy_for_its_inputs():
    layer = mlp(batch_norm=True).train()
    before = snapshot(layer)
    x, _ = data()
    report = gt.check_function(layer, x)
    assert list(report.params) == ["input"]  # nn.Sequential.forward(self, input)
    assert report.passed
    assert_same(layer, before)


def test_only_inputs_that_require_grad_are_checked():
    x, weight, bias = linear_inputs()
    report = gt.check_function(LinearFn.apply, x.detach(), weight, bias)
    assert list(report.params) == ["weight", "bias"]


def test_non_tensor_and_integer_arguments_pass_through():
    def pick(x, index, scale):
        return x[index] * scale

    x = torch.randn(5, generator=generator(), requires_grad=True)
    report = gt.check_function(pick, x, torch.tensor([0, 3]), 2.5)
    assert list(report.params) == ["x"]
    assert report.passed


# --- functions: results, side by side with torch.autograd.gradcheck ---------------------


def test_correct_function_agrees_with_torch_gradcheck():
    inputs = linear_inputs()
    assert torch.autograd.gradcheck(LinearFn.apply, inputs, raise_exception=False)
    report = gt.check_function(LinearFn.apply, *inputs)
    assert report.passed


def test_broken_backward_agrees_with_torch_gradcheck_and_names_the_input():
    inputs = linear_inputs()
    assert not torch.autograd.gradcheck(BrokenWeightFn.apply, inputs, raise_exception=False)
    report = gt.check_function(BrokenWeightFn.apply, *inputs)
    assert not report.passed
    assert [p.name for p in report.failing] == ["weight"]
    assert report.params["x"].passed
    assert report.params["bias"].passed
    assert "weight" in str(report)


def test_float32_inputs_are_no_false_alarm_unlike_torch_gradcheck():
    inputs = linear_inputs(dtype=torch.float32)
    with pytest.warns(UserWarning, match="double precision"):
        torch_ok = torch.autograd.gradcheck(LinearFn.apply, inputs, raise_exception=False)
    assert not torch_ok  # float32 differences with eps=1e-6 are noise
    assert gt.check_function(LinearFn.apply, *inputs).passed


def test_wrong_gradient_through_one_output_of_several_is_found():
    g = generator()
    x = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(SplitFn.apply, (x, w), raise_exception=False)
    report = gt.check_function(SplitFn.apply, x, w)
    assert [p.name for p in report.failing] == ["x"]
    assert report.params["w"].passed


def test_output_cut_from_autograd_shows_a_zero_gradient():
    def detached(x):
        return torch.sin(x).detach()

    report = gt.check_function(detached, torch.randn(3, generator=generator()))
    assert not report.passed
    assert any(f.kind == "zero" for f in report.findings)


def test_upstream_gradient_is_check_layers_dout():
    x = torch.randn(2, 3, generator=generator(), dtype=torch.float64)
    w = torch.randn(3, 4, generator=generator(1), dtype=torch.float64)
    ours = gt.check_function(lambda x, w: torch.tanh(x @ w), x, w, seed=7)
    theirs = gradcheck.check_layer(
        lambda p: np.tanh(p["x"] @ p["w"]),
        lambda p, dout: {
            "x": (dout * (1 - np.tanh(p["x"] @ p["w"]) ** 2)) @ p["w"].T,
            "w": p["x"].T @ (dout * (1 - np.tanh(p["x"] @ p["w"]) ** 2)),
        },
        {"x": x.numpy().copy(), "w": w.numpy().copy()},
        seed=7,
    )
    for name in ("x", "w"):
        assert ours.params[name].norm_analytic == pytest.approx(
            theirs.params[name].norm_analytic, rel=1e-12
        )
        assert ours.params[name].norm_numeric == pytest.approx(
            theirs.params[name].norm_numeric, rel=1e-7
        )


# --- functions: the user's inputs are untouched, bad input ------------------------------


def test_inputs_are_untouched():
    x, weight, bias = linear_inputs(dtype=torch.float32)
    weight.grad = torch.ones_like(weight)
    saved = [t.detach().clone() for t in (x, weight, bias)]
    gt.check_function(BrokenWeightFn.apply, x, weight, bias)
    for before, after in zip(saved, (x, weight, bias), strict=True):
        assert after.dtype == torch.float32
        assert after.requires_grad
        assert torch.equal(after.detach(), before)
    assert x.grad is None
    assert torch.equal(weight.grad, torch.ones_like(weight))


def test_no_floating_input_is_rejected():
    with pytest.raises(InvalidArgumentError, match="none of the 2 inputs is a floating-point"):
        gt.check_function(torch.add, torch.tensor([1, 2]), 3)


def test_function_without_floating_output_is_rejected():
    with pytest.raises(CostFunctionError, match="fn returned no floating-point tensor"):
        gt.check_function(lambda x: torch.argmax(x), torch.randn(3, generator=generator()))


def test_complex_step_is_rejected_for_functions():
    with pytest.raises(InvalidArgumentError, match="not available for torch checks"):
        gt.check_function(torch.sin, torch.randn(3, generator=generator()), method="complex")


def test_function_must_be_callable():
    with pytest.raises(InvalidArgumentError, match="fn must be callable"):
        gt.check_function(3, torch.randn(3, generator=generator()))


# --- vectorized cost --------------------------------------------------------------------


def loop_costs(check, leaf_index, stack):
    """The reference: move one leaf to each value in turn and evaluate the cost."""
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


def stack_around(host, count=5, seed=0):
    rng = np.random.default_rng(seed)
    return host[None] + 1e-3 * rng.standard_normal((count, *host.shape))


@pytest.mark.parametrize("training", [True, False])
def test_module_batched_cost_matches_the_loop(training):
    model = mlp(batch_norm=True).train(training)
    x, y = data()
    check = ModuleCheck(model, mse(x, y), torch.float64)
    batched = check.batched()
    assert batched is not None
    for index, host in enumerate(check.params.values()):
        stack = stack_around(host, seed=index)
        before = host.copy()
        np.testing.assert_allclose(batched(index, stack), loop_costs(check, index, stack),
                                   rtol=1e-12, atol=1e-14)  # fmt: skip
        assert np.array_equal(host, before)


def test_function_batched_cost_matches_the_loop():
    g = generator()
    a, b = torch.randn(4, generator=g), torch.randn(4, generator=g)
    for fn in (NewStyleFn.apply, lambda x, w: torch.tanh(x) * w.sum()):
        check = FunctionCheck(fn, (a, b), torch.float64, seed=0)
        batched = check.batched()
        assert batched is not None
        for index, host in enumerate(check.params.values()):
            stack = stack_around(host, seed=index)
            np.testing.assert_allclose(batched(index, stack), loop_costs(check, index, stack),
                                       rtol=1e-12, atol=1e-14)  # fmt: skip


def test_stacked_tree_is_evaluated_as_a_batch_with_or_without_vmap():
    x, y = data()
    vectorizable = ModuleCheck(mlp(), mse(x, y), torch.float64)
    module_old_style = ModuleCheck(FnLinear(LinearFn), lambda m: m(x).square().sum(), None)
    old_style = FunctionCheck(LinearFn.apply, linear_inputs(), torch.float64, seed=0)
    assert module_old_style.batched() is None
    assert old_style.batched() is None
    for check in (vectorizable, module_old_style, old_style):
        name, host = next(iter(check.params.items()))
        before = host.copy()
        stack = stack_around(host)
        costs = check.evaluate({**check.params, name: stack})
        np.testing.assert_allclose(costs, loop_costs(check, 0, stack), rtol=1e-12, atol=1e-14)
        assert np.array_equal(host, before)


def test_module_cost_of_another_tree_leaves_the_host_arrays_as_they_were():
    x, y = data()
    check = ModuleCheck(mlp(), mse(x, y), torch.float64)
    host = check.params["0.bias"]
    before = host.copy()
    moved = check.evaluate({**check.params, "0.bias": before + 1.0})
    assert moved != check.evaluate(check.params)
    assert np.array_equal(host, before)


def test_batched_cost_sees_the_current_values_of_other_leaves():
    check = FunctionCheck(lambda x, w: x * w, (torch.ones(2), torch.ones(2)), torch.float64, 0)
    batched = check.batched()
    assert batched is not None
    check.params["w"][...] = 3.0
    stack = np.array([[1.0, 2.0], [0.5, 0.5]])
    np.testing.assert_allclose(batched(0, stack), loop_costs(check, 0, stack), rtol=1e-12)
    check.params["w"][...] = 1.0


def test_batched_cost_is_none_where_vmap_cannot_run():
    check = FunctionCheck(LinearFn.apply, linear_inputs(), torch.float64, seed=0)
    assert check.batched() is None  # an old-style autograd.Function has no vmap rule
    model = mlp(dropout=0.5).train()
    x, y = data()
    assert ModuleCheck(model, mse(x, y), torch.float64).batched() is None  # random under vmap


# --- CUDA (runs where a GPU is present) --------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_module_is_checked_on_its_device_and_untouched():
    model = mlp(batch_norm=True).cuda()
    x, y = (t.cuda() for t in data())
    before = snapshot(model)
    check = ModuleCheck(model, mse(x, y), torch.float64)
    assert check.module[0].weight.device.type == "cuda"
    report = gt.check_module(model, mse(x, y))
    assert report.passed
    assert_same(model, before)
    batched = check.batched()
    assert batched is not None
    host = check.params["0.weight"]
    stack = stack_around(host)
    np.testing.assert_allclose(batched(0, stack), loop_costs(check, 0, stack), rtol=1e-10)
    assert math.isfinite(report.difference)
