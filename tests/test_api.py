"""gradcheck.check end to end: every params form, method, mode, eps, and every bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradcheck
from gradcheck import CostFunctionError, InvalidArgumentError, ParamTreeError, Verdict

A = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])
MISTAKES = {"scale", "sign", "transpose", "zero", "missing_l2", "localized"}
B = np.array([0.3, -0.7])


def cost(p):
    """Sum of A * sin(W) + (b . b)^2 / 4, in NumPy operations that accept complex input."""
    return np.sum(A * np.sin(p["W1"])) + np.sum(p["b1"] * p["b1"]) ** 2 / 4


def grads_of(p):
    return {"dW1": A * np.cos(p["W1"]), "db1": np.sum(p["b1"] * p["b1"]) * p["b1"]}


def params():
    return {"W1": np.array([[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]]), "b1": B.copy()}


def cost_and_grads(p):
    return cost(p), grads_of(p)


# --- params forms ----------------------------------------------------------------------


def test_dict_params_pass():
    p = params()
    report = gradcheck.check(cost, p, grads_of(p))
    assert report.passed
    assert report.verdict is Verdict.CORRECT
    assert list(report.params) == ["W1", "b1"]
    assert report.difference < 1e-7


def test_list_params_pass():
    p = params()
    as_list = [p["W1"], p["b1"]]
    g = grads_of(p)
    report = gradcheck.check(
        lambda q: cost({"W1": q[0], "b1": q[1]}), as_list, [g["dW1"], g["db1"]]
    )
    assert report.passed
    assert list(report.params) == ["0", "1"]


def test_tuple_params_pass():
    x, y = np.array([1.0, 2.0]), np.array([[0.5]])
    report = gradcheck.check(lambda t: np.sum(t[0] ** 2) * t[1][0, 0], (x, y),
                             (2 * x * y[0, 0], np.array([[np.sum(x**2)]])))  # fmt: skip
    assert report.passed


def test_bare_array_params_pass():
    theta = np.linspace(-1, 1, 7)
    report = gradcheck.check(lambda t: np.sum(np.exp(t)), theta, np.exp(theta))
    assert report.passed
    assert list(report.params) == ["theta"]
    assert report.params["theta"].shape == (7,)


def test_nested_params_pass():
    W, b = np.array([[0.5, -1.0]]), np.array([0.2])
    p = {"layers": [{"weight": W, "bias": b}]}
    g = {"layers": [{"weight": 2 * W, "bias": 3 * b**2}]}
    f = lambda q: np.sum(q["layers"][0]["weight"] ** 2) + np.sum(q["layers"][0]["bias"] ** 3)  # noqa: E731
    report = gradcheck.check(f, p, g)
    assert report.passed
    assert list(report.params) == ["layers.0.weight", "layers.0.bias"]


def test_grads_none_uses_loss_and_grads_from_f():
    report = gradcheck.check(cost_and_grads, params())
    assert report.passed
    assert list(report.params) == ["W1", "b1"]


def test_grads_none_catches_a_wrong_gradient():
    def wrong(p):
        loss, g = cost_and_grads(p)
        return loss, {**g, "db1": 2 * g["db1"]}

    report = gradcheck.check(wrong, params())
    assert not report.passed
    assert report.worst.name == "b1"


def test_params_keep_the_users_order():
    p = {"b1": B.copy(), "W1": params()["W1"]}
    report = gradcheck.check(cost, p, grads_of(p))
    assert list(report.params) == ["b1", "W1"]


def test_scalar_cost_forms_are_accepted():
    theta = np.array([1.0, 2.0])
    for wrap in (float, np.float64, np.float32, lambda v: np.array([v]), lambda v: np.array([[v]])):
        report = gradcheck.check(lambda t, w=wrap: w(np.sum(t**2)), theta, 2 * theta)
        assert report.passed


# --- methods, modes, eps ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["central", "forward", "backward", "central4", "complex"])
def test_every_method_passes_correct_gradients(method):
    p = params()
    report = gradcheck.check(cost, p, grads_of(p), method=method)
    assert report.passed
    assert report.settings.method == method


@pytest.mark.parametrize("method", ["central", "forward", "backward", "central4", "complex"])
def test_every_method_catches_a_wrong_gradient(method):
    p = params()
    g = grads_of(p)
    g["dW1"][1, 2] *= -1
    report = gradcheck.check(cost, p, g, method=method)
    assert not report.passed
    assert report.worst.name == "W1"
    assert report.params["W1"].worst[0].index == (1, 2)


def test_complex_step_with_grads_none():
    report = gradcheck.check(cost_and_grads, params(), method="complex")
    assert report.passed
    assert report.difference < 1e-12


@pytest.mark.parametrize(
    "drop",
    [pytest.param(lambda t: float(np.sum(np.real(t) ** 2)), id="float"),
     pytest.param(lambda t: np.sum(np.real(t) ** 2), id="np.real"),
     pytest.param(lambda t: np.sum(np.abs(t) ** 2), id="np.abs")],
)  # fmt: skip
def test_complex_step_with_a_cost_that_drops_the_imaginary_part_raises(drop):
    # A real-typed value at a complex point means the cost discarded the imaginary part:
    # every derivative would read as 0 and correct gradients would be reported as a bug.
    theta = np.array([0.5, -1.5])
    with pytest.raises(CostFunctionError, match=r"complex"):
        gradcheck.check(drop, theta, 2 * theta, method="complex")


def test_complex_step_does_not_touch_the_users_arrays():
    p = params()
    before = [a.tobytes() for a in p.values()]
    seen = []

    def spy(q):
        seen.append(q["W1"].dtype)
        return cost(q)

    gradcheck.check(spy, p, grads_of(p), method="complex")
    assert np.dtype(np.complex128) in seen
    assert [a.tobytes() for a in p.values()] == before
    assert all(a.dtype == np.float64 for a in p.values())


PER_COORDINATE = {"central": 2, "forward": 1, "backward": 1, "central4": 4, "complex": 1}


class Counted:
    """A cost that counts its calls."""

    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, p):
        self.calls += 1
        return self.f(p)


def sized_problem(rows: int, cols: int):
    """Two leaves, W (rows x cols) and b (rows,), with a cost accepting complex input."""
    W = np.linspace(-1, 1, rows * cols).reshape(rows, cols)
    b = np.linspace(0.1, 0.9, rows)
    f = lambda p: np.sum(np.sin(p["W"])) + np.sum(p["b"] ** 3)  # noqa: E731
    return f, {"W": W, "b": b}, {"dW": np.cos(W), "db": 3 * b**2}


@pytest.mark.parametrize("method", list(PER_COORDINATE))
@pytest.mark.parametrize("wrong", [False, True])
def test_evaluations_are_what_the_cost_saw(method, wrong):
    f, p, g = sized_problem(2, 3)
    if wrong:
        g["db"][0] *= 2
    counted = Counted(f)
    report = gradcheck.check(counted, p, g, method=method)
    assert report.evaluations == counted.calls
    assert report.evaluations >= 1 + PER_COORDINATE[method] * 8


@pytest.mark.parametrize("method", list(PER_COORDINATE))
def test_evaluations_beyond_the_stencil_do_not_grow_with_size(method):
    # The cost of a full check is its stencil evaluations; anything else (the base point,
    # error bars) must not be O(n).
    extra = []
    for rows, cols in [(2, 3), (20, 30)]:
        f, p, g = sized_problem(rows, cols)
        report = gradcheck.check(f, p, g, method=method)
        assert report.passed
        extra.append(report.evaluations - PER_COORDINATE[method] * report.size)
    assert extra[0] == extra[1]
    assert extra[0] >= 1


def test_evaluations_of_a_sampled_check_follow_the_sample():
    f, p, g = sized_problem(20, 30)
    full = gradcheck.check(f, p, g)
    sampled = gradcheck.check(f, p, g, mode="sample", samples=3)
    assert sampled.checked == 6
    assert full.evaluations - 2 * full.checked == sampled.evaluations - 2 * sampled.checked


def test_sample_mode_checks_a_subset():
    p = {"W": np.linspace(-1, 1, 200).reshape(10, 20), "b": np.array([0.1, 0.2])}
    g = {"dW": 2 * p["W"], "db": 2 * p["b"]}
    report = gradcheck.check(lambda q: np.sum(q["W"] ** 2) + np.sum(q["b"] ** 2), p, g,
                             mode="sample", samples=3, seed=7)  # fmt: skip
    assert report.passed
    assert report.checked == 5
    assert report.size == 202
    assert report.evaluations >= 1 + 2 * 5
    assert report.settings.mode == "sample"
    assert report.settings.samples == 3
    assert report.settings.seed == 7


def test_sample_fraction():
    p = {"W": np.linspace(-1, 1, 200).reshape(10, 20)}
    report = gradcheck.check(lambda q: np.sum(q["W"] ** 2), p, {"dW": 2 * p["W"]},
                             mode="sample", samples=0.1)  # fmt: skip
    assert report.checked == 20


@pytest.mark.parametrize("eps", [None, "auto", 1e-6, 1e-5, 1])
def test_eps_values(eps):
    p = params()
    report = gradcheck.check(cost, p, grads_of(p), eps=1e-4 if eps == 1 else eps)
    assert report.passed
    assert report.settings.eps == (1e-4 if eps == 1 else eps)


def test_int_eps_is_accepted_as_a_float():
    theta = np.array([1.0, 2.0])
    report = gradcheck.check(lambda t: np.sum(3 * t), theta, np.full(2, 3.0), eps=1)
    assert report.passed
    assert report.settings.eps == 1.0


def test_step_is_reported_in_settings():
    p = params()
    assert gradcheck.check(cost, p, grads_of(p)).settings.step == "1e-07"
    assert gradcheck.check(cost, p, grads_of(p), eps=1e-5).settings.step == "1e-05"
    assert gradcheck.check(cost, p, grads_of(p), eps="auto").settings.step.endswith("*scale")


def test_float32_params_pass_with_the_default_step():
    W = np.array([[0.3, -1.2], [2.5, 0.7]], dtype=np.float32)
    report = gradcheck.check(lambda p: np.sum(p["W"] ** 3), {"W": W}, {"dW": 3 * W**2})
    assert report.passed
    assert report.settings.step != "1e-07"
    assert report.params["W"].dtype == "float32"


def test_float32_params_with_float64_cost_pass():
    W = np.array([0.3, -1.2, 2.5], dtype=np.float32)
    W64 = W.astype(np.float64)
    report = gradcheck.check(lambda p: float(np.sum(p["W"].astype(np.float64) ** 3)),
                             {"W": W}, {"dW": 3 * W64**2})  # fmt: skip
    assert report.passed


def test_float32_params_catch_a_wrong_gradient():
    W = np.array([[0.3, -1.2], [2.5, 0.7]], dtype=np.float32)
    g = 3 * W**2
    g[0, 1] *= 1.1
    report = gradcheck.check(lambda p: np.sum(p["W"] ** 3), {"W": W}, {"dW": g})
    assert not report.passed
    assert report.params["W"].worst[0].index == (0, 1)


@pytest.mark.parametrize("eps", [1e-7, None, "auto"])
def test_float32_params_catch_a_wrong_gradient_at_any_step(eps):
    # 1e-7 is below the float32 spacing at 2.0 and 3.0: the steps are raised to one ulp,
    # and the follow-up evaluations of a failing parameter must cope with that too.
    x = np.array([2.0, 3.0, -1.5, 0.5], dtype=np.float32)
    g = 2 * x.astype(np.float64)
    g[1] *= 1.3
    report = gradcheck.check(lambda t: float(np.sum(t.astype(np.float64) ** 2)), x, g, eps=eps)
    assert not report.passed
    assert report.params["theta"].worst[0].index == (1,)


def test_mixed_precision_params():
    p = {"a": np.array([0.5, 1.5], dtype=np.float32), "b": np.array([0.25, -0.75])}
    f = lambda q: float(np.sum(q["a"].astype(np.float64) ** 2) + np.sum(np.sin(q["b"])))  # noqa: E731
    g = {"a": 2 * p["a"].astype(np.float64), "b": np.cos(p["b"])}
    assert gradcheck.check(f, p, g).passed


def test_worst_option_limits_listed_elements():
    p = params()
    report = gradcheck.check(cost, p, grads_of(p), worst=2)
    assert [len(r.worst) for r in report.params.values()] == [2, 2]


def test_same_seed_same_report():
    p = {"W": np.linspace(-1, 1, 300).reshape(15, 20)}
    g = {"dW": 2 * p["W"]}
    f = lambda q: np.sum(q["W"] ** 2)  # noqa: E731
    one = gradcheck.check(f, p, g, mode="sample", samples=4, seed=3)
    two = gradcheck.check(f, p, g, mode="sample", samples=4, seed=3)
    assert [e.index for e in one.params["W"].worst] == [e.index for e in two.params["W"].worst]
    assert one.difference == two.difference


# --- a NaN or a raise at a perturbed coordinate ----------------------------------------


def test_nan_at_a_perturbed_coordinate_is_a_finding_not_an_exception():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])

    def f(p):
        if p["W1"][0, 1] != 2.0:
            return math.nan
        return float(np.sum(p["W1"] ** 2))

    report = gradcheck.check(f, {"W1": W}, {"dW1": 2 * W})
    assert not report.passed
    assert not report.params["W1"].passed
    assert report.params["W1"].nonfinite == 1
    nonfinite = [x for x in report.findings if x.kind == "nonfinite"]
    assert len(nonfinite) == 1
    assert nonfinite[0].param == "W1"
    assert "W1[0, 1]" in nonfinite[0].message
    assert "W1[0, 0]" not in nonfinite[0].message
    assert W.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    # The gradients are right wherever the cost is finite: no mistake is claimed.
    assert not [x for x in report.findings if x.kind in MISTAKES], report.findings


def test_inf_at_a_perturbed_coordinate_is_a_finding():
    theta = np.array([1.0, 2.0, 3.0])
    f = lambda t: math.inf if t[2] != 3.0 else float(np.sum(t))  # noqa: E731
    report = gradcheck.check(f, theta, np.ones(3))
    assert not report.passed
    finding = next(x for x in report.findings if x.kind == "nonfinite")
    assert "theta[2]" in finding.message
    assert not [x for x in report.findings if x.kind in MISTAKES], report.findings


def test_nan_in_analytic_gradient_is_a_finding():
    theta = np.array([1.0, 2.0])
    report = gradcheck.check(lambda t: np.sum(t**2), theta, np.array([2.0, np.nan]))
    assert not report.passed
    finding = next(x for x in report.findings if x.kind == "nonfinite")
    assert "theta[1]" in finding.message
    assert "analytic" in finding.message
    assert not [x for x in report.findings if x.kind in MISTAKES], report.findings


def test_cost_raising_at_a_perturbed_coordinate_names_it():
    p = params()

    def f(q):
        if q["b1"][1] != B[1]:
            raise FloatingPointError("overflow in my layer")
        return cost(q)

    with pytest.raises(
        CostFunctionError,
        match=r'raised FloatingPointError: overflow in my layer while params\["b1"\]\[1\] was '
        r"moved by [-+][0-9.e+-]+ \(coordinate 7 of theta\)",  # noise measurement or estimate
    ) as info:
        gradcheck.check(f, p, grads_of(p))
    assert info.value.param == "b1"
    assert info.value.index == (1,)
    assert isinstance(info.value.__cause__, FloatingPointError)
    np.testing.assert_array_equal(p["b1"], B)


def test_cost_raising_at_the_base_point_raises_cost_function_error():
    def f(p):
        raise ValueError("no data loaded")

    with pytest.raises(CostFunctionError, match=r"raised ValueError: no data loaded") as info:
        gradcheck.check(f, params(), grads_of(params()))
    assert info.value.param is None
    assert info.value.index is None
    assert isinstance(info.value.__cause__, ValueError)


# --- bad input -------------------------------------------------------------------------


def check_with(**options):
    p = params()
    return gradcheck.check(cost, p, grads_of(p), **options)


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        (
            np.ones(3),
            r"returned an array of shape \(3,\) instead of a scalar at the given parameters",
        ),
        (np.ones((2, 2)), r"array of shape \(2, 2\) instead of a scalar"),
        (np.ones(0), r"array of shape \(0,\) instead of a scalar"),
        ("1.0", r"returned a str instead of a scalar"),
        (None, r"returned a NoneType instead of a scalar"),
    ],
)
def test_non_scalar_cost_raises(returned, match):
    with pytest.raises(CostFunctionError, match=match):
        gradcheck.check(lambda p: returned, params(), grads_of(params()))


@pytest.mark.parametrize(
    ("value", "shown"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")]
)
def test_nonfinite_cost_at_the_base_point_raises(value, shown):
    with pytest.raises(
        CostFunctionError,
        match=rf"the cost is {shown} at the given parameters \(before any perturbation\)",
    ):
        gradcheck.check(lambda p: value, params(), grads_of(params()))


@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_integer_and_boolean_params_raise(dtype):
    with pytest.raises(ParamTreeError, match=r'params\["W"\] has dtype (int64|bool)'):
        gradcheck.check(lambda p: 0.0, {"W": np.ones(3, dtype=dtype)}, {"dW": np.ones(3)})


def test_mismatched_grad_shapes_raise():
    p = params()
    g = grads_of(p)
    g["dW1"] = g["dW1"].T
    with pytest.raises(
        ParamTreeError,
        match=r'grads\["dW1"\] has shape \(3, 2\) but params\["W1"\] has shape \(2, 3\)',
    ):
        gradcheck.check(cost, p, g)


def test_mismatched_grad_shapes_from_f_raise():
    def f(p):
        loss, g = cost_and_grads(p)
        return loss, {**g, "db1": g["db1"][:1]}

    with pytest.raises(ParamTreeError, match=r'grads\["db1"\] has shape \(1,\)'):
        gradcheck.check(f, params())


@pytest.mark.parametrize(
    ("method", "suggestion"),
    [
        ("centrl", "central"),
        ("forwad", "forward"),
        ("central_4", "central4"),
        ("Complex", "complex"),
    ],
)
def test_unknown_method_suggests_the_closest(method, suggestion):
    with pytest.raises(
        InvalidArgumentError,
        match=rf"method='{method}' is not one of 'backward', 'central', 'central4', 'complex', "
        rf"'forward'\. Did you mean method='{suggestion}'\?",
    ):
        check_with(method=method)


def test_unknown_method_that_is_not_a_string_lists_the_valid_ones():
    with pytest.raises(InvalidArgumentError, match=r"method=2 is not one of 'backward'"):
        check_with(method=2)


@pytest.mark.parametrize(("mode", "match"), [
    ("ful", r"mode='ful' is not one of .*'full'.*'sample'.*Did you mean mode='full'\?"),
    ("everything", r"mode='everything' is not one of"),
])  # fmt: skip
def test_unknown_mode_raises(mode, match):
    with pytest.raises(InvalidArgumentError, match=match):
        check_with(mode=mode)


@pytest.mark.parametrize(
    ("eps", "match"),
    [
        (0, r"eps=0 must be positive"),
        (0.0, r"eps=0\.0 must be positive"),
        (-1e-7, r"eps=-1e-07 must be positive"),
        (math.nan, r"eps=nan must be positive"),
        (math.inf, r"eps=inf must be positive"),
        ("foo", r"eps='foo' is not one of 'auto'"),
        ("Auto", r"eps='Auto' is not one of 'auto'"),
        (True, r"eps=True must be a positive float, None \(the default\) or 'auto'"),
        ([1e-7], r"eps=\[1e-07\] must be a positive float"),
    ],
)
def test_bad_eps_raises(eps, match):
    with pytest.raises(InvalidArgumentError, match=match):
        check_with(eps=eps)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"mode": "sample", "samples": 0}, r"samples=0 must be at least 1 per array"),
        ({"mode": "sample", "samples": -3}, r"samples=-3 must be at least 1 per array"),
        ({"mode": "sample", "samples": 1.5}, r"samples=1\.5 as a float is a fraction of each "
                                             r"array and must be in \(0, 1\]"),
        ({"mode": "sample", "samples": 0.0}, r"samples=0\.0 as a float is a fraction"),
        ({"mode": "sample", "samples": "3"}, r"samples='3' must be a count per array"),
        ({"mode": "sample", "samples": True}, r"samples=True must be a count per array"),
        ({"samples": 5}, r"samples=5 only applies to mode='sample' \(mode is 'full'\)"),
    ],
)  # fmt: skip
def test_bad_samples_raise(options, match):
    with pytest.raises(InvalidArgumentError, match=match):
        check_with(**options)


@pytest.mark.parametrize(
    "thresholds",
    [(1e-5, 1e-7, 1e-3), (1e-7, 1e-5), (0, 1e-5, 1e-3), (-1, 1, 2), (1e-7, 1e-7, 1e-3),
     ("a", "b", "c"), 1e-7, (1e-7, math.nan, 1e-3)],
)  # fmt: skip
def test_bad_thresholds_raise(thresholds):
    with pytest.raises(
        InvalidArgumentError, match=r"thresholds=.* must be three increasing positive numbers"
    ):
        check_with(thresholds=thresholds)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None, True])
def test_bad_seed_raises(seed):
    with pytest.raises(InvalidArgumentError, match=r"seed=.* must be a non-negative int"):
        check_with(seed=seed)


def test_numpy_integer_seed_is_accepted():
    assert check_with(seed=np.int64(3)).settings.seed == 3


@pytest.mark.parametrize("worst", [0, -1, 2.0, True])
def test_bad_worst_raises(worst):
    with pytest.raises(InvalidArgumentError, match=r"worst=.* must be a positive int"):
        check_with(worst=worst)


@pytest.mark.parametrize("f", [None, 3, "cost", np.ones(2)])
def test_f_not_callable_raises(f):
    with pytest.raises(InvalidArgumentError, match=r"f must be callable \(the cost function\)"):
        gradcheck.check(f, params(), grads_of(params()))


@pytest.mark.parametrize(("returned", "what"), [
    (1.0, "a float"), (np.float64(1.0), "a float64"), ((1.0,), "a tuple of 1 items"),
    ([1.0, {}, {}], "a list of 3 items"),
])  # fmt: skip
def test_grads_none_but_f_returns_no_pair_raises(returned, what):
    with pytest.raises(
        CostFunctionError,
        match=rf"with grads=None, f\(params\) must return \(loss, grads\), but it returned {what}",
    ):
        gradcheck.check(lambda p: returned, params())


def test_options_are_validated_before_the_cost_runs():
    calls = []

    def f(p):
        calls.append(1)
        return cost(p)

    with pytest.raises(InvalidArgumentError, match=r"method='centrl'"):
        gradcheck.check(f, params(), grads_of(params()), method="centrl")
    assert calls == []


def test_errors_are_value_and_runtime_errors_for_existing_except_clauses():
    with pytest.raises(ValueError, match=r"method='centrl'"):
        check_with(method="centrl")
    with pytest.raises(RuntimeError, match=r"the cost is nan"):
        gradcheck.check(lambda p: math.nan, params(), grads_of(params()))
