"""The settle stage end to end: kinks, ties, domain edges, held inputs, unused and random costs.

Each case goes through the public API (`gradcheck.check`, `gradcheck.check_layer`) with the
smallest cost that shows the behaviour, and states what a check that passes only on
positive evidence must say: a tie it cannot verify is "inconclusive" (never a pass, never
silently excluded), a valid subgradient is verified and named, a domain edge is checked
one-sided, and a random cost gets no verdict.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck import CostFunctionError, ParamTreeError, Verdict

INCONCLUSIVE = "inconclusive"


def kinds(report, param=None):
    return [f.kind for f in report.findings if param is None or f.param == param]


def finding(report, kind):
    found = [f for f in report.findings if f.kind == kind]
    assert found, [(f.kind, f.message) for f in report.findings]
    return found[0]


def messages(report):
    return [(f.kind, f.message) for f in report.findings]


# --- a tie broken the other way -------------------------------------------------------------

UP = (1.0, -0.5)
"""Upstream weights of the two windows, of mixed sign."""


def windows(x):
    """Max over the overlapping windows (x0, x1) and (x1, x2), weighted; sin of the rest.

    At x0 = x1 = x2 both windows tie. The backward below breaks each tie towards the first
    element (argmax), so d/dx1 = -0.5 (from the second window only), while the one-sided
    slopes at x1 are 0 (left: x1 is the max of neither window) and 1 - 0.5 = 0.5 (right: of
    both). -0.5 lies outside [0, 0.5]: a tie broken the other way, right just off the kink.
    """
    return UP[0] * max(x[0], x[1]) + UP[1] * max(x[1], x[2]) + float(np.sum(np.sin(x[3:])))


def windows_grad(x):
    g = np.zeros(len(x))
    g[0 if x[0] >= x[1] else 1] += UP[0]
    g[1 if x[1] >= x[2] else 2] += UP[1]
    g[3:] = np.cos(x[3:])
    return g


TIE = np.array([0.3, 0.3, 0.3])
TIE_AND_SMOOTH = np.r_[TIE, np.linspace(-1.0, 1.0, 3)]


@pytest.mark.parametrize("x", [TIE, TIE_AND_SMOOTH], ids=["tie", "tie+smooth"])
def test_a_tie_outside_the_slopes_with_grads_given_is_inconclusive(x):
    report = gradcheck.check(windows, x.copy(), windows_grad(x), progress=False)
    assert not report.passed
    assert report.params["theta"].verdict == INCONCLUSIVE
    # never excluded silently: the tied element is named, with its slopes
    reason = finding(report, "inconclusive")
    assert reason.detail["reason"] == "tie"
    assert reason.detail["indices"] == [[1]]
    kink = finding(report, "kink")
    tied = kink.detail["indices"].index([1])
    assert kink.detail["within"][tied] is False
    assert kink.detail["left_slope"][tied] == pytest.approx(0.0, abs=1e-6)
    assert kink.detail["right_slope"][tied] == pytest.approx(0.5, abs=1e-6)
    assert "not verified" in kink.message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_tie_with_grads_none_is_settled_off_the_kink(seed):
    # f returns (loss, grads): the gradient can be recomputed a small seeded step off the
    # kink, where it is an ordinary derivative, and checked there.
    x = TIE_AND_SMOOTH.copy()
    report = gradcheck.check(lambda p: (windows(p), windows_grad(p)), x, seed=seed,
                             progress=False)  # fmt: skip
    assert report.passed, messages(report)
    kink = finding(report, "kink")
    assert "recomputed a small step off the kink" in kink.message
    assert INCONCLUSIVE not in kinds(report)
    np.testing.assert_array_equal(x, TIE_AND_SMOOTH)  # moved and put back


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_bare_tie_with_grads_none_is_not_left_inconclusive_for_the_tie(seed):
    report = gradcheck.check(lambda p: (windows(p), windows_grad(p)), TIE.copy(), seed=seed,
                             progress=False)  # fmt: skip
    assert "recomputed a small step off the kink" in finding(report, "kink").message
    assert all(f.detail.get("reason") != "tie" for f in report.findings if f.kind == INCONCLUSIVE)
    assert report.verdict != Verdict.BUG


def test_a_bare_tie_with_grads_none_passes_whichever_side_it_is_moved_to():
    report = gradcheck.check(lambda p: (windows(p), windows_grad(p)), TIE.copy(), seed=0,
                             progress=False)  # fmt: skip
    assert report.passed, messages(report)


def test_a_bare_tie_settled_off_the_kink_is_not_called_unused():
    report = gradcheck.check(lambda p: (windows(p), windows_grad(p)), TIE.copy(), seed=0,
                             progress=False)  # fmt: skip
    assert "unused" not in kinds(report), messages(report)
    # If the element moved off the kink measures zero, the report says why that is a pass.
    zero = [f for f in report.findings if f.kind == "noise" and "sit on kinks" in f.message]
    assert not zero or zero[0].detail["at_kinks"] == 2


ABS_X = np.array([0.0, 0.5, -1.2, 0.7, 0.3, -0.4])


def abs_cost(p):
    return float(np.sum(np.abs(p)))


def test_abs_at_zero_with_an_analytic_value_outside_the_slopes_is_not_excused():
    # 1.5 is outside [-1, 1]: not a subgradient, so not a pass
    grads = np.sign(ABS_X)
    grads[0] = 1.5
    report = gradcheck.check(abs_cost, ABS_X.copy(), grads, progress=False)
    assert not report.passed
    assert report.verdict == INCONCLUSIVE
    assert finding(report, "inconclusive").detail["reason"] == "tie"


def test_abs_at_zero_with_grads_none_is_checked_off_the_kink():
    def f(p):
        g = np.sign(p)
        g[p == 0] = 1.5  # only at the kink itself
        return abs_cost(p), g

    report = gradcheck.check(f, ABS_X.copy(), progress=False)
    assert report.passed, messages(report)
    assert "recomputed" in finding(report, "kink").message


def test_a_gradient_wrong_on_both_sides_of_the_kink_still_fails_off_it():
    # Moving off the kink is not an excuse: 1.5 * sign(x) is wrong there too.
    def f(p):
        g = np.sign(p)
        g[0] = 1.5 * (np.sign(p[0]) or 1.0)
        return abs_cost(p), g

    report = gradcheck.check(f, ABS_X.copy(), progress=False)
    assert not report.passed
    assert report.params["theta"].verdict == Verdict.BUG


# --- valid subgradients ---------------------------------------------------------------------

WEIGHTS = np.array([0.5, -1.0, 2.0, 0.3, -0.7, 1.1])


@pytest.mark.parametrize("at_zero", [0.0, 1.0, 0.4])
def test_a_valid_subgradient_at_a_relu_kink_passes_with_a_kink_finding(at_zero):
    # relu(x) * w at x = 0: any analytic value between 0 and w (here w = 0.5) is valid
    def cost(p):
        return float(np.sum(np.maximum(p, 0.0) * WEIGHTS))

    grads = np.where(ABS_X > 0, WEIGHTS, 0.0)
    grads[0] = at_zero * WEIGHTS[0]
    report = gradcheck.check(cost, ABS_X.copy(), grads, progress=False)
    assert report.passed, messages(report)
    kink = finding(report, "kink")
    assert kink.detail["indices"] == [[0]]
    assert kink.detail["within"] == [True]
    assert "valid subgradients" in kink.message


def test_a_valid_subgradient_of_abs_passes():
    grads = np.sign(ABS_X)
    grads[0] = 0.3
    report = gradcheck.check(abs_cost, ABS_X.copy(), grads, progress=False)
    assert report.passed, messages(report)
    assert finding(report, "kink").detail["left_slope"][0] == pytest.approx(-1.0, abs=1e-6)


# --- domain edges ---------------------------------------------------------------------------

NEAR_EDGE = np.array([3e-8, 0.5, 2.0])
"""x[0] - 1e-7 (the default step) is outside the domain of log and sqrt."""

EDGES = [
    ("log", np.log, lambda x: 1 / x),
    ("sqrt", np.sqrt, lambda x: 0.5 / np.sqrt(x)),
]


@pytest.mark.parametrize(("name", "f", "df"), EDGES)
def test_a_correct_gradient_next_to_a_domain_edge_passes(name, f, df):
    x = NEAR_EDGE.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        report = gradcheck.check(lambda p: float(np.sum(f(p))), x, df(x), progress=False)
    assert report.passed, messages(report)


@pytest.mark.parametrize(("name", "f", "df"), EDGES)
def test_a_wrong_gradient_next_to_a_domain_edge_fails(name, f, df):
    x = NEAR_EDGE.copy()
    grads = df(x)
    grads[0] *= 1.01
    with np.errstate(invalid="ignore", divide="ignore"):
        report = gradcheck.check(lambda p: float(np.sum(f(p))), x, grads, progress=False)
    assert not report.passed
    assert report.params["theta"].verdict == Verdict.BUG


def edge_cost(p):
    """sin, on a domain that starts exactly at p[0] = 0.3 (nan below it)."""
    return float(np.sum(np.sin(p))) if p[0] >= 0.3 else float("nan")


EDGE_X = np.array([0.3, 0.5, 2.0])


def test_a_domain_that_starts_at_x_is_checked_one_sided():
    report = gradcheck.check(edge_cost, EDGE_X.copy(), np.cos(EDGE_X), progress=False)
    assert report.passed, messages(report)
    edge = finding(report, "nonfinite")
    assert edge.detail["resolved"] is True
    assert edge.detail["indices"] == [[0]]
    assert "one-sided" in edge.message


def test_a_wrong_gradient_at_a_domain_edge_fails_one_sided():
    grads = np.cos(EDGE_X)
    grads[0] *= 1.5
    report = gradcheck.check(edge_cost, EDGE_X.copy(), grads, progress=False)
    assert not report.passed
    assert report.params["theta"].verdict == Verdict.BUG


@pytest.mark.parametrize(("name", "f", "df"), EDGES)
def test_a_correct_gradient_at_x_far_below_the_step_is_not_a_bug(name, f, df):
    x = np.array([1e-11, 0.5, 2.0])
    with np.errstate(invalid="ignore", divide="ignore"):
        report = gradcheck.check(lambda p: float(np.sum(f(p))), x, df(x), progress=False)
    assert report.params["theta"].verdict != Verdict.BUG, messages(report)


# --- held integer inputs --------------------------------------------------------------------


def embedding():
    rng = np.random.default_rng(0)
    return {"E": rng.standard_normal((3, 4)), "idx": np.array([2, 0, 1, 2], dtype=np.int64)}


def lookup_backward(p, dout):
    dE = np.zeros_like(p["E"])
    np.add.at(dE, p["idx"], dout)
    return {"dE": dE}


def test_check_layer_passes_integer_inputs_through_untouched():
    inputs = embedding()
    idx = inputs["idx"]
    before = idx.copy()
    seen = []

    def forward(p):
        seen.append((p["idx"].dtype, p["idx"].tobytes()))
        return p["E"][p["idx"]]

    report = gradcheck.check_layer(forward, lookup_backward, inputs, progress=False)
    assert report.passed, messages(report)
    assert inputs["idx"] is idx
    assert idx.dtype == np.int64
    assert idx.tobytes() == before.tobytes()
    assert set(seen) == {(np.dtype(np.int64), before.tobytes())}  # never perturbed
    assert set(report.params) == {"E"}  # not checked
    skipped = finding(report, "skipped")
    assert skipped.detail["inputs"] == ["idx"]
    assert skipped.detail["dtypes"] == {"idx": "int64"}


def test_check_layer_still_finds_a_wrong_gradient_next_to_an_integer_input():
    def wrong(p, dout):
        return {"dE": 2 * lookup_backward(p, dout)["dE"]}

    report = gradcheck.check_layer(lambda p: p["E"][p["idx"]], wrong, embedding(),
                                   progress=False)  # fmt: skip
    assert not report.passed
    assert "skipped" in kinds(report)


def test_check_refuses_an_integer_array_in_params():
    params = embedding()
    with pytest.raises(ParamTreeError, match="int64"):
        gradcheck.check(lambda p: float(np.sum(p["E"][p["idx"]])), params,
                        {"dE": np.ones((3, 4)), "didx": np.zeros(4)}, progress=False)  # fmt: skip


# --- the upstream gradient of check_layer ---------------------------------------------------


def affine(seed):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((5, 3)),  # the first draw of default_rng(seed)
        "W": rng.standard_normal((3, 3)),  # square: dW and dW.T have the same shape
        "b": rng.standard_normal(3),
    }


def affine_forward(p):
    return p["x"] @ p["W"] + p["b"]


@pytest.mark.parametrize("seed", [0, 3])
def test_the_upstream_gradient_is_not_the_users_default_rng_stream(seed):
    captured = []

    def backward(p, dout):
        captured.append(dout.copy())
        return {"dx": dout @ p["W"].T, "dW": p["x"].T @ dout, "db": dout.sum(axis=0)}

    report = gradcheck.check_layer(affine_forward, backward, affine(seed), seed=seed,
                                   progress=False)  # fmt: skip
    assert report.passed
    naive = np.random.default_rng(seed).standard_normal((5, 3))
    assert not np.allclose(captured[0], naive)
    assert not np.allclose(captured[0], affine(seed)["x"])


@pytest.mark.parametrize("seed", [0, 3])
def test_a_transposed_dw_of_a_square_affine_layer_fails(seed):
    # dout.T @ x where x.T @ dout belongs: the same matrix if dout were x
    def backward(p, dout):
        return {"dx": dout @ p["W"].T, "dW": dout.T @ p["x"], "db": dout.sum(axis=0)}

    report = gradcheck.check_layer(affine_forward, backward, affine(seed), seed=seed,
                                   progress=False)  # fmt: skip
    assert not report.passed
    assert report.params["W"].verdict == Verdict.BUG
    assert report.params["x"].passed


# --- a gradient that is exactly zero --------------------------------------------------------

_rng = np.random.default_rng(0)
X = _rng.standard_normal((8, 3))
C = _rng.standard_normal((8, 2))
W0 = _rng.standard_normal((3, 2))
B0 = _rng.standard_normal(2)
XC = X - X.mean(axis=0)


def normalized(p):
    """sum(C * (z - mean(z))**2) for z = X W + b: the mean subtraction cancels b."""
    z = X @ p["W"] + p["b"]
    return float(np.sum(C * (z - z.mean(axis=0)) ** 2))


def test_a_bias_before_a_normalization_passes_as_unused():
    grads = {"dW": XC.T @ (2 * C * (XC @ W0)), "db": np.zeros(2)}
    report = gradcheck.check(normalized, {"W": W0.copy(), "b": B0.copy()}, grads,
                             progress=False)  # fmt: skip
    assert report.passed, messages(report)
    assert report.params["b"].passed
    assert "unused" in kinds(report, "b")
    assert "unused" not in kinds(report, "W")


def test_a_zero_gradient_alone_in_a_check_is_inconclusive():
    # Nothing to compare its round-off with: zero within error bars is not verified.
    report = gradcheck.check(lambda p: normalized({"W": W0, "b": p["b"]}), {"b": B0.copy()},
                             {"db": np.zeros(2)}, progress=False)  # fmt: skip
    assert not report.passed
    assert report.params["b"].verdict == INCONCLUSIVE


# --- random and integer costs ---------------------------------------------------------------

Y = np.linspace(-1, 1, 5)


def late_random(level, seed):
    """sum(sin(x)), plus noise of the given level from the third call on."""
    rng = np.random.default_rng(seed)
    calls = 0

    def cost(p):
        nonlocal calls
        calls += 1
        return float(np.sum(np.sin(p))) + (level * rng.standard_normal() if calls > 2 else 0.0)

    return cost


@pytest.mark.parametrize("seed", range(4))
def test_a_cost_random_after_its_second_call_gets_no_verdict(seed):
    report = gradcheck.check(late_random(1e-3, seed), Y.copy(), np.cos(Y), progress=False)
    assert not report.passed
    assert report.verdict == INCONCLUSIVE
    assert not {"scale", "sign", "localized", "zero"} & set(kinds(report))


def test_a_cost_random_after_its_second_call_is_named_nondeterministic():
    report = gradcheck.check(late_random(1e-3, 0), Y.copy(), np.cos(Y), progress=False)
    assert "nondeterministic" in kinds(report)
    assert report.verdict == INCONCLUSIVE


@pytest.mark.parametrize("level", [1e-6, 1e-3])
def test_late_randomness_is_named_whatever_its_size(level):
    report = gradcheck.check(late_random(level, 1), Y.copy(), np.cos(Y), progress=False)
    assert "nondeterministic" in kinds(report), messages(report)
    assert report.verdict == INCONCLUSIVE


@pytest.mark.parametrize(
    "cost",
    [lambda p: round(float(np.sum(p**2))), lambda p: np.int64(3)],
    ids=["python-int", "numpy-int64"],
)
def test_an_integer_cost_is_refused_naming_the_int(cost):
    with pytest.raises(CostFunctionError, match=r"\bint"):
        gradcheck.check(cost, Y.copy(), 2 * Y, progress=False)


# --- noise along a direction ---------------------------------------------------------------


def test_a_direction_over_one_element_sees_that_coordinates_noise():
    from gradcheck._diagnose import Context

    ctx = Context(problem=None, executor=None, sigmas=(1e-3, 1e-9), direction_sigma=1.0,
                  thresholds=(1e-7, 1e-5, 1e-3), pinned=False, scales=[], recompute=None,
                  seed=0, gradient_scale=1.0)  # fmt: skip
    assert ctx.noise_along(1, 1) == 1e-9
    assert ctx.noise_along(0, 1) == 1e-3
    assert ctx.noise_along(0, 5) == 1.0  # every element moved: every term re-rounded
