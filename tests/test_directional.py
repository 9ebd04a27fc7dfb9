"""mode="directional" and mode="bisect": stated detection power, localization, evaluation counts.

The directional claims are checked against the numbers the report states: k directions
per tensor, ``2 + 2 k T`` evaluations, and a miss probability of at most 1e-6 for an
error of 1e-3 of a tensor's gradient norm, whatever its shape. Bisection is checked on
one large array with a cheap cost, so that a million parameters stay fast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradcheck
from gradcheck import CostFunctionError, InvalidArgumentError
from gradcheck._engine._directional import (
    LEAF_SIZE,
    MAX_FOUND,
    directions_for,
    miss_probability,
)
from gradcheck.demo import load_bug, make_network
from strategies import corruptions, smooth_problems

TOLERANCE = 1e-5
"""The per-direction threshold: the second of the default thresholds."""
DETECTABLE = 1e-3
TARGET = 1e-6
K = directions_for(TARGET, TOLERANCE, DETECTABLE)
"""Directions per tensor the defaults give."""
EPS = np.finfo(np.float64).eps
H = 1e-7
"""The default step for float64."""


def fd_noise(cost_value: float) -> float:
    """Round-off in one central difference: a few ulps of the cost over 2h."""
    return 8 * EPS * max(1.0, abs(cost_value)) / (2 * H)


# --- a weight and a small bias, with a known gradient ------------------------------------

_rng = np.random.default_rng(20240611)
A = _rng.uniform(0.5, 2.0, (30, 40))
C = _rng.uniform(0.5, 2.0, 5)
W0 = _rng.uniform(-1.0, 1.0, (30, 40))
B0 = _rng.uniform(-1.0, 1.0, 5)


def weight_and_bias():
    return {"W": W0.copy(), "b": B0.copy()}


def wb_cost(p):
    return np.sum(A * np.sin(p["W"])) + np.sum(C * p["b"] ** 2)


def wb_grads(p):
    return {"W": A * np.cos(p["W"]), "b": 2 * C * p["b"]}


def error_of_shape(shape, size, norm, rng):
    """An error vector of the given norm: one element, spread over all, or one row of W."""
    e = np.zeros(size)
    if shape == "one":
        e[rng.integers(size)] = norm * rng.choice([-1.0, 1.0])
    elif shape == "spread":
        e = rng.standard_normal(size)
        e *= norm / np.linalg.norm(e)
    else:  # "row": a contiguous block of 40 elements (one row of W)
        row = rng.integers(size // 40)
        e[row * 40 : (row + 1) * 40] = rng.standard_normal(40)
        e *= norm / np.linalg.norm(e)
    return e


# --- directions_for and the stated miss probability --------------------------------------


def test_directions_for_is_the_smallest_k_meeting_the_target():
    k = directions_for(TARGET, TOLERANCE, DETECTABLE)
    assert miss_probability(k, TOLERANCE, DETECTABLE) <= TARGET
    assert k == 1 or miss_probability(k - 1, TOLERANCE, DETECTABLE) > TARGET
    assert k == 4  # erf(sqrt(2) 1e-5 1.001 / 1e-3) ~ 0.016 per direction


@pytest.mark.parametrize(
    ("target", "tolerance", "relative"),
    [(1e-6, 1e-5, 1e-3), (1e-3, 1e-5, 1e-3), (1e-9, 1e-5, 1e-3), (1e-6, 1e-4, 1e-3),
     (1e-6, 1e-5, 1e-4), (0.5, 1e-5, 1e-2)],
)  # fmt: skip
def test_directions_for_is_minimal_for_other_targets(target, tolerance, relative):
    k = directions_for(target, tolerance, relative)
    assert miss_probability(k, tolerance, relative) <= target
    if k > 1:
        assert miss_probability(k - 1, tolerance, relative) > target


def test_miss_probability_is_the_stated_power_of_one_direction():
    one = math.erf(math.sqrt(2) * TOLERANCE * (1 + DETECTABLE) / DETECTABLE)
    assert miss_probability(1, TOLERANCE, DETECTABLE) == pytest.approx(one, rel=1e-12)
    assert miss_probability(3, TOLERANCE, DETECTABLE) == pytest.approx(one**3, rel=1e-12)
    # A larger error is easier to catch.
    assert miss_probability(4, TOLERANCE, 1e-2) < miss_probability(4, TOLERANCE, 1e-3)


def test_report_states_k_and_the_miss_probability():
    p = weight_and_bias()
    report = gradcheck.check(wb_cost, p, wb_grads(p), mode="directional")
    assert report.passed
    s = report.settings
    assert s.mode == "directional"
    assert s.directions == K
    assert s.detectable == DETECTABLE
    assert s.miss_probability <= TARGET
    # The stated probability allows for the measured round-off: a hair above the noiseless one.
    assert s.miss_probability == pytest.approx(miss_probability(K, TOLERANCE, DETECTABLE), rel=0.05)
    assert [param.directions for param in report.params.values()] == [K, K]
    assert report.spent["estimate"] == 2 * K * 2
    assert report.spent["follow_up"] == 0  # correct tensors need no follow-up
    text = " ".join(str(report).split())
    assert f"{K} directions per tensor" in text
    assert f"escapes with probability {s.miss_probability:.1g}" in text


def test_a_stricter_miss_probability_takes_more_directions():
    p = weight_and_bias()
    report = gradcheck.check(wb_cost, p, wb_grads(p), mode="directional", miss_probability=1e-12)
    k = directions_for(1e-12, TOLERANCE, DETECTABLE)
    assert k > K
    assert report.settings.directions == k
    assert report.settings.miss_probability <= 1e-12
    assert report.spent["estimate"] == 2 * k * 2
    assert report.spent["follow_up"] == 0  # correct tensors need no follow-up


def test_explicit_directions_are_honoured():
    p = weight_and_bias()
    report = gradcheck.check(wb_cost, p, wb_grads(p), mode="directional", directions=7)
    assert report.settings.directions == 7
    expected = miss_probability(7, TOLERANCE, DETECTABLE)
    assert report.settings.miss_probability == pytest.approx(expected, rel=0.05)
    assert [param.directions for param in report.params.values()] == [7, 7]
    assert report.spent["estimate"] == 2 * 7 * 2
    assert report.spent["follow_up"] == 0  # correct tensors need no follow-up


def test_directions_with_mode_full_is_an_error():
    p = weight_and_bias()
    with pytest.raises(InvalidArgumentError, match=r"directions=3 only applies to mode="):
        gradcheck.check(wb_cost, p, wb_grads(p), directions=3)


def test_directional_modes_need_central_differences():
    p = weight_and_bias()
    with pytest.raises(InvalidArgumentError, match=r"method='forward' with mode='directional'"):
        gradcheck.check(wb_cost, p, wb_grads(p), mode="directional", method="forward")


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_directions_must_be_a_positive_int(bad):
    p = weight_and_bias()
    with pytest.raises(InvalidArgumentError, match=r"directions=.* must be a positive int"):
        gradcheck.check(wb_cost, p, wb_grads(p), mode="directional", directions=bad)


# --- correct gradients pass ----------------------------------------------------------------


@given(problem=smooth_problems(), mode=st.sampled_from(["directional", "bisect"]))
def test_smooth_functions_pass_with_2kT_evaluations_in_the_bulk_pass(problem, mode):
    before = problem.case.snapshot()
    report = gradcheck.check(problem, problem.case.tree, problem.gradients(), mode=mode)
    assert report.passed, str(report)
    tensors = len(problem.case.leaves)
    assert report.spent["estimate"] == 2 * K * tensors
    assert report.settings.directions == K
    assert all(param.directions == K for param in report.params.values())
    assert problem.case.snapshot() == before


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("mode", ["directional", "bisect"])
def test_reference_network_passes(activation, mode):
    net = make_network((3, 12, 10, 4), activation=activation, m=16)
    before = {name: p.tobytes() for name, p in net.params.items()}
    report = gradcheck.check(net.cost, net.params, net.gradients(), mode=mode)
    assert report.passed, str(report)
    assert report.spent["estimate"] == 2 * K * len(net.params)
    assert report.spent["follow_up"] == 0  # correct tensors need no follow-up
    assert report.findings == []
    assert {name: p.tobytes() for name, p in net.params.items()} == before


def test_check_layer_in_directional_mode():
    inputs = {
        "x": np.linspace(-1, 1, 12).reshape(3, 4),
        "w": np.linspace(0.5, -0.5, 8).reshape(4, 2),
    }

    def forward(p):
        return np.tanh(p["x"] @ p["w"])

    def backward(p, dout):
        dz = dout * (1 - np.tanh(p["x"] @ p["w"]) ** 2)
        return {"x": dz @ p["w"].T, "w": p["x"].T @ dz}

    def wrong_backward(p, dout):
        g = backward(p, dout)
        return {**g, "w": 2 * g["w"]}

    good = gradcheck.check_layer(forward, backward, inputs, mode="directional")
    assert good.passed
    assert good.spent["estimate"] == 2 * K * 2
    assert good.spent["follow_up"] == 0  # correct tensors need no follow-up
    bad = gradcheck.check_layer(forward, wrong_backward, inputs, mode="directional")
    assert not bad.passed
    assert [p.name for p in bad.failing] == ["w"]


# --- detection power: one wrong element or many, in one tensor ---------------------------


def test_correct_gradients_pass_for_every_seed():
    """The control for the detection test below: no false alarms on the same problem."""
    p = weight_and_bias()
    failed = [
        seed
        for seed in range(200)
        if not gradcheck.check(wb_cost, p, wb_grads(p), mode="directional", seed=seed).passed
    ]
    assert failed == []


@pytest.mark.parametrize(
    ("tensor", "shape"),
    [("W", "one"), ("W", "spread"), ("W", "row"), ("b", "one"), ("b", "spread")],
)
def test_an_error_of_the_detectable_size_is_never_missed(tensor, shape):
    """200 seeds: the stated bound (< 1e-7 per check) predicts no miss at all."""
    p = weight_and_bias()
    exact = wb_grads(p)
    other = "b" if tensor == "W" else "W"
    misses, wrong_tensor = [], []
    for seed in range(200):
        rng = np.random.default_rng([seed, len(tensor), len(shape)])
        g = {name: value.copy() for name, value in exact.items()}
        norm = DETECTABLE * float(np.linalg.norm(g[tensor]))
        g[tensor] += error_of_shape(shape, g[tensor].size, norm, rng).reshape(g[tensor].shape)
        report = gradcheck.check(wb_cost, p, g, mode="directional", seed=seed)
        if report.passed or report.params[tensor].passed:
            misses.append(seed)
        if not report.params[other].passed:
            wrong_tensor.append(seed)
        assert report.spent["estimate"] == 2 * K * 2
    assert report.settings.miss_probability * 200 < 1e-4
    assert misses == []
    assert wrong_tensor == []


def test_only_the_broken_tensor_fails_next_to_a_big_weight():
    """A bias error of 1e-3 of the bias gradient is lost in the whole gradient's norm;
    per-tensor directions still see it, and the big weight next to it still passes."""
    rng = np.random.default_rng(3)
    W = rng.uniform(-1, 1, (200, 300))
    b = rng.uniform(-1, 1, 5)

    def cost(p):
        return np.sum(np.sin(p["W"])) + np.sum(p["b"] ** 2)

    g = {"W": np.cos(W), "b": 2 * b}
    g["b"][2] += DETECTABLE * np.linalg.norm(g["b"])
    # Against the whole gradient, the error is below the "acceptable" threshold.
    whole = np.linalg.norm(np.concatenate([np.cos(W).ravel(), 2 * b]))
    assert np.linalg.norm(g["b"] - 2 * b) / (2 * whole) < TOLERANCE
    report = gradcheck.check(cost, {"W": W, "b": b}, g, mode="directional")
    assert not report.passed
    assert not report.params["b"].passed
    assert report.params["W"].passed
    assert report.worst.name == "b"
    assert [p.name for p in report.failing] == ["b"]


@given(problem=smooth_problems(), data=st.data())
def test_a_corrupted_element_fails_its_tensor_only(problem, data):
    corruption = data.draw(corruptions(problem.case))
    grads, leaf, _ = corruption.apply(problem)
    report = gradcheck.check(problem, problem.case.tree, grads, mode="directional")
    assert not report.passed
    assert [p.name for p in report.failing] == [leaf.name]


# --- findings ------------------------------------------------------------------------------


def test_a_scale_mistake_gets_a_scale_finding_with_its_factor():
    p = weight_and_bias()
    g = wb_grads(p)
    g["W"] = 2 * g["W"]
    report = gradcheck.check(wb_cost, p, g, mode="directional")
    assert not report.passed
    finding = report.findings[0]
    assert finding.kind == "scale"
    assert finding.param == "W"
    assert finding.detail["factor"] == pytest.approx(2.0, rel=1e-6)
    assert finding.detail["directions"] == K
    assert report.params["b"].passed


def test_a_sign_mistake_gets_a_sign_finding():
    p = weight_and_bias()
    g = wb_grads(p)
    g["b"] = -g["b"]
    report = gradcheck.check(wb_cost, p, g, mode="directional")
    finding = report.findings[0]
    assert finding.kind == "sign"
    assert finding.param == "b"
    assert finding.detail["factor"] == pytest.approx(-1.0, rel=1e-6)
    assert "sign flipped" in finding.message


def test_a_zero_gradient_gets_a_zero_finding():
    p = weight_and_bias()
    g = wb_grads(p)
    g["W"] = np.zeros_like(g["W"])
    report = gradcheck.check(wb_cost, p, g, mode="directional")
    assert report.findings[0].kind == "zero"
    assert report.findings[0].param == "W"
    assert [param.name for param in report.failing] == ["W"]


@pytest.mark.parametrize(
    ("bug", "kind"), [("weight_times_2", "scale"), ("sign", "sign"), ("zero", "zero")]
)
def test_reference_network_mistakes_are_classified(bug, kind):
    net = make_network()
    mistake = load_bug(bug)
    grads = mistake.apply(net.gradients(), net)
    report = gradcheck.check(net.cost, net.params, grads, mode="directional")
    assert not report.passed
    assert [p.name for p in report.failing] == [mistake.param]
    assert report.findings[0].kind == kind
    assert report.findings[0].param == mistake.param
    if kind == "scale":
        assert report.findings[0].detail["factor"] == pytest.approx(2.0, rel=1e-5)


# --- bisect: localization ------------------------------------------------------------------


def big_problem(n, seed=0):
    """One large array with a cheap cost, sum(sin(theta)), and a small second array."""
    rng = np.random.default_rng(seed)
    params = {"theta": rng.uniform(-1, 1, n), "small": rng.uniform(-1, 1, 7)}

    def cost(p):
        return np.sum(np.sin(p["theta"])) + np.sum(p["small"] ** 3)

    grads = {"theta": np.cos(params["theta"]), "small": 3 * params["small"] ** 2}
    return cost, params, grads


def found(report, name, tolerance=1e-3):
    """Flat indices of the elements bisection checked one by one and found wrong."""
    elements = report.params[name].elements
    off = np.abs(elements.analytic - elements.numeric) > tolerance
    return sorted(elements.local[off].tolist())


def test_bisect_finds_one_wrong_element_among_a_million_in_200_evaluations():
    n = 10**6
    cost, params, grads = big_problem(n)
    i = 765_432
    grads["theta"][i] += 1.0
    before = {name: a.tobytes() for name, a in params.items()}
    report = gradcheck.check(cost, params, grads, mode="bisect")
    assert not report.passed
    assert report.evaluations <= 200
    theta = report.params["theta"]
    assert not theta.passed
    assert report.params["small"].passed
    worst = theta.worst[0]
    assert worst.index == (i,)
    assert worst.coordinate == i
    assert worst.analytic == grads["theta"][i]
    tolerance = fd_noise(cost(params)) + 1e-12
    assert abs(worst.numeric - np.cos(params["theta"][i])) < tolerance
    assert found(report, "theta") == [i]
    assert theta.mismatches == 1
    assert report.findings[0].kind == "localized"
    assert f"theta[{i}]" in report.findings[0].message
    assert {name: a.tobytes() for name, a in params.items()} == before


def test_bisect_finds_several_wrong_elements_at_proportional_cost():
    n = 2**17
    cost, params, grads = big_problem(n, seed=1)
    rng = np.random.default_rng(7)
    wrong = sorted(rng.choice(n, 5, replace=False).tolist())
    counts = {}
    for d in (1, 2, 3, 5):
        g = {name: a.copy() for name, a in grads.items()}
        g["theta"][wrong[:d]] += rng.choice([-1.0, 1.0], d) * rng.uniform(0.3, 1.0, d)
        report = gradcheck.check(cost, params, g, mode="bisect")
        assert found(report, "theta") == wrong[:d]
        assert report.params["theta"].mismatches == d
        assert report.params["small"].passed
        numeric = report.params["theta"].elements
        at = np.isin(numeric.local, wrong[:d])
        expected = np.cos(params["theta"][numeric.local[at]])
        assert np.max(np.abs(numeric.numeric[at] - expected)) < fd_noise(cost(params)) + 1e-12
        np.testing.assert_array_equal(numeric.analytic[at], g["theta"][numeric.local[at]])
        # The work that scales: directions, bisection and the ladders that confirm what it finds.
        counts[d] = report.spent["estimate"] + report.spent["follow_up"]
    assert counts[1] < counts[2] < counts[3] < counts[5]
    for d in (2, 3, 5):  # about d times one element's cost (shared top levels: a bit less)
        assert 0.5 * d * counts[1] <= counts[d] <= 1.25 * d * counts[1], counts


def test_bisect_a_whole_tensor_scale_error_stops_and_is_classified():
    n = 4096
    cost, params, grads = big_problem(n, seed=2)
    grads["theta"] = 2 * grads["theta"]
    report = gradcheck.check(cost, params, grads, mode="bisect")
    assert not report.passed
    assert report.findings[0].kind == "scale"
    assert report.findings[0].param == "theta"
    assert report.findings[0].detail["factor"] == pytest.approx(2.0, rel=1e-6)
    checked_one_by_one = len(report.params["theta"].elements.local)
    assert MAX_FOUND <= checked_one_by_one <= MAX_FOUND + LEAF_SIZE - 1
    assert report.params["theta"].mismatches == checked_one_by_one
    # Stopping keeps it far below a full check's 2n evaluations.
    assert report.evaluations < 2 * n / 10


def test_bisect_spends_only_directional_evaluations_on_correct_tensors():
    cost, params, grads = big_problem(2**15, seed=3)
    everything = gradcheck.check(cost, params, grads, mode="bisect")
    assert everything.passed
    assert everything.spent["estimate"] == 2 * K * 2
    assert everything.spent["follow_up"] == 0  # correct tensors need no follow-up
    assert [len(p.elements.local) for p in everything.params.values()] == [0, 0]

    grads["theta"][1234] += 0.5
    both = gradcheck.check(cost, params, grads, mode="bisect")
    alone = gradcheck.check(
        lambda p: np.sum(np.sin(p["theta"])), {"theta": params["theta"]},
        {"theta": grads["theta"]}, mode="bisect",
    )  # fmt: skip
    assert found(both, "theta") == found(alone, "theta") == [1234]
    # The correct second tensor costs its k directions (2 evaluations each), nothing more.
    assert both.spent["estimate"] - alone.spent["estimate"] == 2 * K
    assert both.spent["follow_up"] == alone.spent["follow_up"]
    assert len(both.params["small"].elements.local) == 0


@given(problem=smooth_problems(), data=st.data())
def test_bisect_locates_a_corrupted_element(problem, data):
    corruption = data.draw(corruptions(problem.case))
    grads, leaf, index = corruption.apply(problem)
    before = problem.case.snapshot()
    report = gradcheck.check(problem, problem.case.tree, grads, mode="bisect")
    assert not report.passed
    assert [p.name for p in report.failing] == [leaf.name]
    worst = report.params[leaf.name].worst[0]
    assert worst.index == index
    assert worst.coordinate == leaf.offset + corruption.flat_index
    x = problem.theta(problem.case.tree)
    expected = problem.gradient_vector(x)[worst.coordinate]
    assert worst.numeric == pytest.approx(expected, abs=fd_noise(problem.value(x)) + 1e-9)
    assert problem.case.snapshot() == before


# --- bisect: the user's arrays -----------------------------------------------------------


def test_bisect_leaves_arrays_bit_for_bit_unchanged():
    cost, params, grads = big_problem(2**14, seed=4)
    params["theta"][::7] = -0.0
    grads["theta"] = np.cos(params["theta"])
    params["small"] = np.asfortranarray(np.linspace(-1, 1, 12).reshape(3, 4))
    grads["small"] = 3 * params["small"] ** 2
    grads["theta"][[5, 9000]] += 1.0
    before = {name: (a.tobytes(), a.flags.f_contiguous) for name, a in params.items()}
    report = gradcheck.check(cost, params, grads, mode="bisect")
    assert found(report, "theta") == [5, 9000]
    assert {name: (a.tobytes(), a.flags.f_contiguous) for name, a in params.items()} == before


@pytest.mark.parametrize("stage_call", [1, 2 * K + 1, 2 * K + 7, 2 * K + 40])
def test_bisect_restores_arrays_when_the_cost_raises_midway(stage_call):
    """Fails in the directional stage (its first call), at the start of bisection, and deep
    inside it (calls counted from the first direction, after the base point and the noise)."""
    inner, params, grads = big_problem(2**12, seed=5)
    grads["theta"][100] += 1.0
    before = {name: a.tobytes() for name, a in params.items()}
    dry = gradcheck.check(inner, params, grads, mode="bisect")
    fail_at = 2 + dry.spent["noise"] + stage_call
    calls = 0

    def cost(p):
        nonlocal calls
        calls += 1
        if calls == fail_at:
            raise FloatingPointError("overflow in the cost")
        return inner(p)

    with pytest.raises(
        CostFunctionError,
        match=r"raised FloatingPointError: overflow in the cost while .*params\[\"theta\"\]",
    ) as caught:
        gradcheck.check(cost, params, grads, mode="bisect")
    assert caught.value.param == "theta"
    assert calls == fail_at
    assert {name: a.tobytes() for name, a in params.items()} == before


def test_bisect_names_the_element_when_the_cost_raises_at_it():
    inner, params, grads = big_problem(64, seed=6)
    grads["theta"][10] += 1.0
    x = params["theta"][10]

    def cost(p):
        if p["theta"][10] != x and np.count_nonzero(p["theta"] != params_copy["theta"]) == 1:
            raise ValueError("log of a negative number")
        return inner(p)

    params_copy = {name: a.copy() for name, a in params.items()}
    with pytest.raises(
        CostFunctionError,
        match=r"ValueError: log of a negative number while params\[\"theta\"\]\[10\]",
    ):
        gradcheck.check(cost, params, grads, mode="bisect")
    assert params["theta"].tobytes() == params_copy["theta"].tobytes()


@pytest.mark.parametrize("mode", ["directional", "bisect"])
@pytest.mark.parametrize("speedup", [{"workers": 2}, {"batched": True}])
def test_speedups_for_full_checks_are_refused_in_the_directional_modes(mode, speedup):
    params = {"w": np.array([1.0, 2.0])}
    with pytest.raises(InvalidArgumentError, match=r"speed up mode='full' or 'sample' only"):
        gradcheck.check(lambda p: np.sum(p["w"] ** 2), params, {"dw": 2 * params["w"]},
                        mode=mode, **speedup)  # fmt: skip
