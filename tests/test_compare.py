"""Comparison: the normalized difference, verdicts, per-parameter results, worst elements."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradcheck
from gradcheck import Verdict
from gradcheck._compare import normalized_difference
from gradcheck._diagnose import compare
from gradcheck._results import DEFAULT_THRESHOLDS
from gradcheck._tree import flatten
from strategies import corruptions, smooth_problems


def compare_all(numeric, analytic, params, **kwargs):
    flat = flatten(params)
    numeric = np.asarray(numeric, dtype=np.float64)
    analytic = np.asarray(analytic, dtype=np.float64)
    return compare(np.arange(flat.size), numeric, analytic, flat, **kwargs)


# --- the normalized difference ---------------------------------------------------------


def test_normalized_difference_by_hand():
    # ||(3, 0) - (0, 4)|| = 5, ||(3, 0)|| + ||(0, 4)|| = 7
    assert normalized_difference(np.array([3.0, 0.0]), np.array([0.0, 4.0])) == 5 / 7


def test_normalized_difference_against_the_textbook_formula(rng):
    numeric, analytic = rng.normal(size=20), rng.normal(size=20)
    expected = np.linalg.norm(analytic - numeric) / (
        np.linalg.norm(analytic) + np.linalg.norm(numeric)
    )
    assert normalized_difference(numeric, analytic) == pytest.approx(expected, rel=1e-15)


def test_normalized_difference_is_symmetric_and_bounded(rng):
    a, b = rng.normal(size=5), rng.normal(size=5)
    assert normalized_difference(a, b) == normalized_difference(b, a)
    assert 0 <= normalized_difference(a, b) <= 1
    assert normalized_difference(a, -a) == 1.0
    assert normalized_difference(a, a) == 0.0


def test_one_side_zero_gives_one():
    assert normalized_difference(np.zeros(3), np.array([1.0, 2.0, 3.0])) == 1.0


def test_both_zero_gives_zero():
    assert normalized_difference(np.zeros(4), np.zeros(4)) == 0.0
    comparison = compare_all(np.zeros(3), np.zeros(3), {"W": np.ones(3)})
    assert comparison.difference == 0.0
    assert comparison.verdict is Verdict.CORRECT
    assert comparison.params[0].passed


def test_empty_gives_zero():
    assert normalized_difference(np.zeros(0), np.zeros(0)) == 0.0


# --- verdicts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("difference", "verdict"),
    [
        (0.0, Verdict.CORRECT),
        (9.99e-8, Verdict.CORRECT),
        (1e-7, Verdict.ACCEPTABLE),
        (9.99e-6, Verdict.ACCEPTABLE),
        (1e-5, Verdict.SUSPICIOUS),
        (9.99e-4, Verdict.SUSPICIOUS),
        (1e-3, Verdict.BUG),
        (1.0, Verdict.BUG),
    ],
)
def test_a_difference_on_a_threshold_falls_in_the_worse_class(difference, verdict):
    assert DEFAULT_THRESHOLDS == (1e-7, 1e-5, 1e-3)
    assert Verdict.of(difference) is verdict


@pytest.mark.parametrize(
    ("difference", "verdict"),
    [(0.009, Verdict.CORRECT), (0.01, Verdict.ACCEPTABLE), (0.1, Verdict.SUSPICIOUS),
     (0.5, Verdict.BUG)],
)  # fmt: skip
def test_custom_thresholds(difference, verdict):
    assert Verdict.of(difference, (0.01, 0.1, 0.5)) is verdict


def test_nan_difference_is_a_bug():
    assert Verdict.of(math.nan) is Verdict.BUG


def test_verdict_rank_and_passes():
    assert [v.rank for v in Verdict] == [0, 1, 2, 3, 4]
    assert [v.passes for v in Verdict] == [True, True, False, False, False]


def test_custom_thresholds_reach_the_report():
    W = np.array([1.0, 2.0])
    grads = {"dW": 2 * W * 1.001}  # difference ~ 5e-4
    f = lambda p: float(np.sum(p["W"] ** 2))  # noqa: E731
    assert gradcheck.check(f, {"W": W}, grads).verdict is Verdict.SUSPICIOUS
    lenient = gradcheck.check(f, {"W": W}, grads, thresholds=(1e-4, 1e-3, 1e-2))
    assert lenient.verdict is Verdict.ACCEPTABLE
    assert lenient.passed
    assert lenient.settings.thresholds == (1e-4, 1e-3, 1e-2)


# --- per parameter ---------------------------------------------------------------------


def test_wrong_bias_next_to_large_correct_weights_fails_the_check():
    params = {"W": np.ones((30, 30)), "b": np.ones(1)}
    G = np.full(900, 1000.0)
    numeric = np.concatenate([G, [1e-3]])
    analytic = np.concatenate([G, [2e-3]])
    comparison = compare_all(numeric, analytic, params)
    assert Verdict.of(comparison.difference) is Verdict.CORRECT  # the textbook number passes
    assert comparison.verdict is Verdict.BUG  # but the worst parameter decides
    W, b = comparison.params
    assert W.passed
    assert W.difference == 0.0
    assert b.difference == pytest.approx(1 / 3)
    assert b.verdict is Verdict.BUG
    assert not b.passed


def test_wrong_bias_next_to_large_correct_weights_end_to_end():
    rng = np.random.default_rng(1)
    G = rng.uniform(500, 1000, (30, 30))
    params = {"W": rng.normal(size=(30, 30)), "b": np.array([0.2])}

    def cost(p):
        return float(np.sum(G * p["W"]) + 1e-3 * p["b"][0])

    report = gradcheck.check(cost, params, {"dW": G, "db": np.array([2e-3])})
    assert Verdict.of(report.difference).passes
    assert report.verdict is Verdict.BUG
    assert not report.params["b"].passed
    assert report.params["W"].passed
    assert not report.passed
    assert report.worst.name == "b"


def test_param_report_fields():
    params = {"W": np.ones((2, 3)), "b": np.ones(2)}
    numeric = [1, 2, 3, 4, 5, 6, 7, 8]
    analytic = [1, 2, 3, 4, 5, 6, 7, 9]
    W, b = compare_all(numeric, analytic, params).params
    assert (W.name, W.shape, W.size, W.checked, W.dtype) == ("W", (2, 3), 6, 6, "float64")
    assert (b.name, b.shape, b.size, b.checked) == ("b", (2,), 2, 2)
    assert b.difference == pytest.approx(1 / (math.hypot(7, 8) + math.hypot(7, 9)))
    assert b.norm_numeric == pytest.approx(math.hypot(7, 8))
    assert b.norm_analytic == pytest.approx(math.hypot(7, 9))
    assert W.nonfinite == b.nonfinite == 0


def test_worst_elements_are_sorted_by_absolute_error_with_index_tuples():
    numeric = np.arange(12.0) + 1.0
    analytic = numeric.copy()
    errors = {(0, 1): 0.5, (2, 3): -3.0, (1, 0): 1.0, (2, 0): 0.01}
    for (i, j), e in errors.items():
        analytic[4 * i + j] += e
    comparison = compare_all(numeric, analytic, {"W": np.ones((3, 4))}, worst=3)
    worst = comparison.params[0].worst
    assert [e.index for e in worst] == [(2, 3), (1, 0), (0, 1)]
    assert [e.abs_error for e in worst] == pytest.approx([3.0, 1.0, 0.5])
    first = worst[0]
    assert first.numeric == 12.0
    assert first.analytic == 9.0
    assert first.coordinate == 11
    assert first.rel_error == pytest.approx(3.0 / 21.0)


def test_worst_element_coordinates_are_offset_into_theta():
    params = {"a": np.ones(3), "W": np.ones((2, 2))}
    numeric = np.ones(7)
    analytic = np.ones(7)
    analytic[5] = 4.0  # W[1, 0]
    _, W = compare_all(numeric, analytic, params).params
    assert (W.worst[0].index, W.worst[0].coordinate) == ((1, 0), 5)


def test_number_of_worst_elements_is_capped():
    comparison = compare_all(np.arange(10.0), np.arange(10.0) + 0.1, {"W": np.ones(10)}, worst=4)
    assert len(comparison.params[0].worst) == 4
    small = compare_all(np.arange(2.0), np.arange(2.0), {"W": np.ones(2)}, worst=4)
    assert len(small.params[0].worst) == 2


def test_rel_error_is_zero_when_both_are_zero():
    comparison = compare_all([0.0, 1.0], [0.0, 1.0], {"W": np.ones(2)}, worst=2)
    assert {e.rel_error for e in comparison.params[0].worst} == {0.0}


def test_nonfinite_elements_are_excluded_from_the_difference_and_counted():
    params = {"W": np.ones(4), "b": np.ones(2)}
    numeric = np.array([3.0, np.nan, 0.0, 1.0, 1.0, 1.0])
    analytic = np.array([0.0, 5.0, 4.0, 1.0, 1.0, 1.0])
    comparison = compare_all(numeric, analytic, params)
    W, b = comparison.params
    assert W.difference == pytest.approx(5 / (math.hypot(3, 1) + math.hypot(4, 1)))
    assert W.nonfinite == 1
    assert W.unresolved == 1
    assert not W.passed
    assert b.passed
    assert b.nonfinite == 0
    finite = np.isfinite(numeric)
    assert comparison.difference == pytest.approx(
        normalized_difference(numeric[finite], analytic[finite])
    )
    assert math.isfinite(comparison.difference)
    assert W.worst[0].index == (1,)  # nan first: the least trustworthy element
    assert math.isnan(W.worst[0].numeric)


def test_nonfinite_analytic_elements_are_counted():
    comparison = compare_all([1.0, 2.0], [1.0, np.inf], {"W": np.ones(2)})
    assert comparison.params[0].nonfinite == 1
    assert not comparison.params[0].passed
    assert comparison.params[0].verdict is Verdict.BUG  # a nan or inf in backprop is a bug
    assert math.isnan(comparison.params[0].difference)
    assert comparison.difference == 0.0  # the overall number leaves the element out


def test_sampled_comparison_uses_only_checked_coordinates():
    params = {"W": np.ones(5), "b": np.ones(3)}
    flat = flatten(params)
    analytic = np.arange(8.0)
    indices = np.array([1, 3, 6])
    comparison = compare(indices, analytic[indices].copy(), analytic, flat)
    assert [p.checked for p in comparison.params] == [2, 1]
    assert comparison.checked == 3
    assert comparison.difference == 0.0


# --- property: a single corrupted element is found -------------------------------------


@given(smooth_problems(), st.data())
def test_smooth_functions_with_known_gradients_pass(problem, data):
    method = data.draw(st.sampled_from(["central", "central4", "complex"]), label="method")
    report = gradcheck.check(problem, problem.case.tree, problem.gradients(), method=method)
    assert report.passed, str(report)
    assert list(report.params) == [leaf.name for leaf in problem.case.leaves]


@given(smooth_problems(), st.data())
def test_single_corrupted_element_is_caught_and_located(problem, data):
    corruption = data.draw(corruptions(problem.case), label="corruption")
    grads, leaf, index = corruption.apply(problem)
    report = gradcheck.check(problem, problem.case.tree, grads)
    assert not report.passed
    assert report.worst.name == leaf.name
    broken = report.params[leaf.name]
    assert not broken.passed
    assert broken.worst[0].index == index
    others = [p for name, p in report.params.items() if name != leaf.name]
    assert all(p.passed for p in others)
