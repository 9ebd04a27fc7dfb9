"""Verdicts from evidence: the decision table of `judge`, `overall`, differences and error bars."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck._compare import (
    directional_difference,
    judge,
    normalized_difference,
    relative_error_bar,
)
from gradcheck._results import DEFAULT_THRESHOLDS, Verdict, overall

NAN, INF = math.nan, math.inf
C, A, S, INC, B = (Verdict.CORRECT, Verdict.ACCEPTABLE, Verdict.SUSPICIOUS, Verdict.INCONCLUSIVE,
                 Verdict.BUG)  # fmt: skip
CUSTOM = (0.01, 0.1, 0.75)  # 3 * 0.25 == 0.75 exactly: the bug threshold's edge is testable


# --- Verdict and overall ---------------------------------------------------------------


def test_inconclusive_ranks_between_suspicious_and_bug_and_never_passes():
    assert S.rank < INC.rank < B.rank
    assert not INC.passes
    assert Verdict("inconclusive") is INC


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], (INC, False)),  # nothing checked is no evidence, not a pass
        ([C], (C, True)),
        ([C, A, C], (A, True)),
        ([A, S], (S, False)),
        ([C, INC, A], (INC, False)),  # one inconclusive parameter fails the whole check
        ([S, INC], (INC, False)),
        ([INC, B, C], (B, False)),
    ],
)
def test_overall_worst_decides(verdicts, expected):
    assert overall(verdicts) == expected
    assert overall(iter(verdicts)) == expected  # any iterable, consumed once


@given(st.lists(st.sampled_from(list(Verdict)), min_size=1))
def test_overall_passes_exactly_when_every_verdict_passes(verdicts):
    worst, passed = overall(verdicts)
    assert worst in verdicts
    assert all(worst.rank >= v.rank for v in verdicts)
    assert passed == all(v.passes for v in verdicts)


# --- judge -----------------------------------------------------------------------------

# (difference, error bar, keyword arguments, verdict, settled, reason)
TABLE = [
    # A non-finite analytic value is a bug, whatever else is known.
    (0.0, 0.0, {"analytic_finite": False}, B, True, None),
    (NAN, NAN, {"analytic_finite": False, "unresolved": "no_step"}, B, True, None),
    # Beyond the acceptable threshold and beyond 3 error bars: the difference's own verdict,
    # settled only once a ladder of steps confirmed it.
    (0.5, 1e-6, {"confirmed": True}, B, True, None),
    (0.5, 1e-6, {}, B, False, "unconfirmed"),
    (1e-4, 1e-6, {"confirmed": True}, S, True, None),
    (1e-4, 1e-6, {}, S, False, "unconfirmed"),
    (1e-5, 0.0, {"confirmed": True}, S, True, None),  # at the acceptable threshold: beyond
    (0.375, 0.124, {}, B, False, "unconfirmed"),  # just beyond 3 bars (0.372)
    # ...but within 3 bars it is what finite-difference error alone can give.
    (0.375, 0.125, {"confirmed": True}, INC, False, "noise"),  # 3 * 0.125 == 0.375: not beyond
    # A confirmed row alone, within narrow bars, decides nothing.
    (1e-4, 1e-4, {"confirmed": True}, A, True, None),
    (1e-8, 1e-9, {"confirmed": True}, C, True, None),
    # Unresolved elements: inconclusive, unless a mismatch is beyond the bars (a bug is a bug).
    (0.0, 0.0, {"unresolved": "no_step"}, INC, False, "no_step"),
    (1e-9, 1e-10, {"unresolved": "nonfinite"}, INC, False, "nonfinite"),
    (1e-9, 1e-10, {"unresolved": "tie", "confirmed": True}, INC, False, "tie"),
    (0.5, 0.5, {"unresolved": "tie"}, INC, False, "tie"),
    (0.5, 1e-6, {"unresolved": "no_step"}, B, False, "unconfirmed"),
    (0.5, 1e-6, {"unresolved": "no_step", "confirmed": True}, B, True, None),
    # Nothing measured.
    (NAN, NAN, {}, INC, False, "no_step"),
    (NAN, 0.0, {"confirmed": True}, INC, False, "no_step"),
    (NAN, NAN, {"unresolved": "nonfinite"}, INC, False, "nonfinite"),
    # Agreement inside error bars too wide to rule out a bug proves nothing.
    (0.0, 0.5, {}, INC, False, "noise"),
    (1e-9, 1e-3 / 3 * 1.01, {}, INC, False, "noise"),
    (1e-9, NAN, {}, INC, False, "noise"),  # bars unknown
    (0.5, NAN, {}, INC, False, "noise"),  # no bars, no mismatch beyond them
    (0.5, INF, {}, INC, False, "noise"),
    # Agreement within narrow bars passes, read against the thresholds.
    (0.0, 0.0, {}, C, True, None),
    (1e-8, 1e-9, {}, C, True, None),
    (1e-6, 1e-7, {}, A, True, None),
    (9.99e-6, 3e-4, {}, A, True, None),
    (2e-4, 1e-4, {}, A, True, None),  # above t2 but within bars that rule out a bug
    # Zero to within negligible round-off passes, but only when nothing else decides.
    (0.5, 0.5, {"negligible": True}, A, True, "zero"),
    (0.0, 0.5, {"negligible": True}, A, True, "zero"),
    (0.0, 0.0, {"negligible": True}, C, True, None),
    (1e-8, 1e-9, {"negligible": True}, C, True, None),
    (0.5, 1e-6, {"negligible": True}, B, False, "unconfirmed"),
    (0.0, 0.0, {"negligible": True, "unresolved": "no_step"}, INC, False, "no_step"),
    (NAN, NAN, {"negligible": True}, INC, False, "no_step"),
    (0.0, 0.0, {"negligible": True, "analytic_finite": False}, B, True, None),
]


@pytest.mark.parametrize(("difference", "error_bar", "kwargs", "verdict", "settled", "reason"),
                         TABLE)  # fmt: skip
def test_judge_decision_table(difference, error_bar, kwargs, verdict, settled, reason):
    judgement = judge(difference, error_bar, thresholds=DEFAULT_THRESHOLDS, **kwargs)
    assert (judgement.verdict, judgement.settled, judgement.reason) == (verdict, settled, reason)
    # Only a settled correct or acceptable verdict passes; never an unsettled one.
    assert not judgement.verdict.passes or judgement.settled


@pytest.mark.parametrize(
    ("difference", "error_bar", "kwargs", "verdict", "settled", "reason"),
    [
        (0.05, 1e-3, {}, A, True, None),  # a bug under the defaults, acceptable here
        (0.005, 1e-3, {}, C, True, None),
        (0.2, 1e-3, {}, S, False, "unconfirmed"),
        (0.8, 1e-3, {"confirmed": True}, B, True, None),
        (0.0, 0.25, {}, INC, False, "noise"),  # 3 * 0.25 == 0.75: not below the bug threshold
        (0.0, 0.2, {}, C, True, None),  # 0.6 < 0.75: narrow enough
        (0.5, 0.2, {}, A, True, None),  # within 3 bars (0.6) and they rule out a bug
    ],
)
def test_judge_with_custom_thresholds(difference, error_bar, kwargs, verdict, settled, reason):
    judgement = judge(difference, error_bar, thresholds=CUSTOM, **kwargs)
    assert (judgement.verdict, judgement.settled, judgement.reason) == (verdict, settled, reason)


def test_the_same_difference_reads_against_each_threshold_set():
    assert judge(0.05, 1e-3, thresholds=DEFAULT_THRESHOLDS).verdict is B
    assert judge(0.05, 1e-3, thresholds=CUSTOM).verdict is A


@given(
    difference=st.floats(0, 1, allow_nan=False) | st.just(NAN),
    error_bar=st.floats(0, 1, allow_nan=False) | st.sampled_from([NAN, INF]),
    unresolved=st.sampled_from([None, "no_step", "nonfinite", "tie"]),
    confirmed=st.booleans(),
    negligible=st.booleans(),
)
def test_judge_passes_only_on_positive_evidence(
    difference, error_bar, unresolved, confirmed, negligible
):
    j = judge(difference, error_bar, thresholds=DEFAULT_THRESHOLDS, unresolved=unresolved,
              confirmed=confirmed, negligible=negligible)  # fmt: skip
    if j.verdict.passes:
        assert j.settled
        assert unresolved is None
        assert not math.isnan(difference)
        # Narrow bars, or a verified zero: never agreement lost in round-off.
        assert 3 * error_bar < DEFAULT_THRESHOLDS[2] or (negligible and j.reason == "zero")
    if j.verdict is INC:
        assert not j.settled
        assert j.reason in ("no_step", "nonfinite", "tie", "noise")


# --- differences and error bars --------------------------------------------------------


def test_normalized_difference_cases():
    a = np.array([1.0, -2.0])
    assert normalized_difference(a, a) == 0.0
    assert normalized_difference(-a, a) == 1.0  # opposite signs: the largest possible
    assert normalized_difference(np.zeros(2), a) == 1.0  # a missing gradient
    assert normalized_difference(np.zeros(2), np.zeros(2)) == 0.0  # two zero vectors agree


def test_relative_error_bar_by_hand():
    # ||(3, 4)|| = 5 over ||(1, 0)|| + ||(0, 4)|| = 5
    error = np.array([3.0, 4.0])
    assert relative_error_bar(error, np.array([1.0, 0.0]), np.array([0.0, 4.0])) == 1.0


def test_relative_error_bar_of_zero_gradients():
    zeros = np.zeros(3)
    assert relative_error_bar(zeros, zeros, zeros) == 0.0
    # Both gradients 0 but the numeric one uncertain: nothing can be ruled out.
    assert relative_error_bar(np.array([0.0, 1e-12, 0.0]), zeros, zeros) == INF


def test_directional_difference_by_hand():
    # rms(numeric) = sqrt(3.625) < norm 2: scale 2 * 2 = 4; largest gap 0.5, largest error 0.2.
    analytic, numeric = np.array([1.0, -2.0]), np.array([1.0, -2.5])
    error = np.array([0.1, 0.2])
    assert directional_difference(analytic, numeric, error, 2.0) == (0.125, 0.05)


def test_directional_difference_scales_by_the_numeric_rms_when_larger():
    # The analytic norm claims 0.5, the projections are ~3.5: the larger one sets the scale,
    # so an analytic norm that is too small cannot inflate the difference.
    analytic, numeric = np.array([3.0, 4.0]), np.array([3.0, 4.5])
    rms = math.sqrt((9 + 20.25) / 2)
    difference, error_bar = directional_difference(analytic, numeric, np.array([0.0, 1.0]), 0.5)
    assert difference == 0.5 / (2 * rms)
    assert error_bar == 1.0 / (2 * rms)


@pytest.mark.parametrize(
    ("analytic", "error", "expected"),
    [
        ([0.0, 0.0], [0.0, 0.0], (0.0, 0.0)),  # exact zeros on both sides: a sound agreement
        ([0.0, 0.0], [0.0, 1e-12], (0.0, INF)),  # zeros, but the numeric ones uncertain
        ([1e-3, 0.0], [0.0, 0.0], (INF, 0.0)),
    ],
)
def test_directional_difference_when_both_sides_are_zero(analytic, error, expected):
    result = directional_difference(np.array(analytic), np.zeros(2), np.array(error), 0.0)
    assert result == expected


def test_zero_directional_agreement_with_uncertain_bars_is_inconclusive():
    difference, error_bar = directional_difference(np.zeros(2), np.zeros(2), np.ones(2), 0.0)
    judgement = judge(difference, error_bar, thresholds=DEFAULT_THRESHOLDS)
    assert (judgement.verdict, judgement.reason) == (INC, "noise")


def test_directional_difference_of_no_directions_is_nan():
    empty = np.empty(0)
    difference, error_bar = directional_difference(empty, empty, empty, 1.0)
    assert math.isnan(difference)
    assert math.isnan(error_bar)
    assert judge(difference, error_bar, thresholds=DEFAULT_THRESHOLDS).verdict is INC
