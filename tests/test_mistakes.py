"""The mistake detectors (`_diagnose._mistakes`): which pattern a mismatch is, and when none is.

Each case builds the detectors' input (`ParamData`) by hand, the way `_explain` does: the
analytic and numeric values of the checked elements, the parameter's values, the typical
magnitude ``scale`` and the numeric values' error bars. A pattern must be named only when
it explains the mismatch at every element; otherwise the finding is "localized".
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck._diagnose._elements import ParamData, _common_ratio, describe_elements
from gradcheck._diagnose._factors import name_factor
from gradcheck._diagnose._mistakes import explain

BAR = 1e-10
"""Error bar of a numeric value here: far below every mismatch a case builds."""


def data(analytic, numeric, theta, *, shape=None, error=BAR, name="w", local=None):
    """ParamData as `_explain._mistake` builds it (scale: RMS of |analytic| + |numeric|)."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    magnitude = np.abs(analytic) + np.abs(numeric)
    return ParamData(
        name=name,
        shape=(len(analytic),) if shape is None else shape,
        local=np.arange(len(analytic)) if local is None else np.asarray(local),
        analytic=analytic,
        numeric=numeric,
        theta=np.asarray(theta, dtype=np.float64),
        scale=float(np.sqrt(np.mean(magnitude**2))),
        tolerance=1e-5,
        error=None if error is None else np.full(len(analytic), float(error)),
    )


RNG = np.random.default_rng(0)
W = RNG.standard_normal(10)
THETA = RNG.standard_normal(12)
G = RNG.standard_normal(12)
"""A loss gradient independent of THETA."""
LAMBDA = 0.07
M = RNG.standard_normal((4, 4))
"""A square matrix's numeric gradient."""
P = RNG.standard_normal((4, 4))
"""The square matrix's values."""


# --- scale and sign ------------------------------------------------------------------------


def test_a_scaled_gradient_proportional_to_theta_is_a_scale_with_l2_as_the_alternative():
    # f = sum(w**2), grads = 6w: numeric 2w is proportional to w, so "3 times" and "an
    # extra L2 term 4 * w" are the same fit; the simpler one is named, the other mentioned.
    finding = explain(data(6 * W, 2 * W, W), {})
    assert finding.kind == "scale"
    assert finding.detail["factor"] == pytest.approx(3.0)
    assert finding.detail["alternative"] == "missing_l2"
    assert "L2" in finding.message
    assert "4 * w" in finding.message


@pytest.mark.parametrize("factor", [2, 3, 0.5, -1])
def test_proportional_to_theta_is_never_named_missing_l2(factor):
    finding = explain(data(factor * 2 * W, 2 * W, W), {})
    assert finding.kind != "missing_l2"
    assert finding.kind == ("sign" if factor < 0 else "scale")


@pytest.mark.parametrize("sign", [1, -1])
def test_ratios_spread_widely_are_not_a_constant_factor(sign):
    # A real bug: ratios from 4.4 to 23.3, exp(3) dominating the least-squares fit, were
    # called "a constant factor 5.734".
    x = np.linspace(-4, 3, 8)
    ratios = np.linspace(4.4, 23.3, 8)
    finding = explain(data(sign * ratios * np.exp(x), np.exp(x), x), {})
    assert finding.kind == "localized"
    assert "constant factor" not in finding.message


def test_one_dominant_wrong_element_next_to_exact_ones_is_not_a_constant_factor():
    numeric = np.array([123056.40910199145, 0.7071067821922817, 0.5000000002775558])
    analytic = np.array([158113.88300841898, 0.7071067811865475, 0.5])
    finding = explain(data(analytic, numeric, [1e-11, 0.5, 1.0], error=1e-9), {})
    assert finding.kind == "localized", finding.message


def test_a_sign_flip_is_named():
    finding = explain(data(-G, G, THETA), {})
    assert finding.kind == "sign"
    assert finding.detail["factor"] == pytest.approx(-1.0)
    assert "alternative" not in finding.detail  # G is not proportional to theta


def test_a_named_factor_with_the_sign_flipped_is_a_sign_finding_that_names_the_factor():
    finding = explain(data(-32 * G, G, THETA), {"batch_size": 32})
    assert finding.kind == "sign"
    assert finding.detail["factor"] == pytest.approx(-32.0)
    assert "batch size m" in finding.message


def test_a_factor_close_to_one_is_not_worded_one_times():
    finding = explain(data(1.0004 * G, G, THETA, error=1e-12), {})
    assert finding.kind == "scale"
    assert "1 times" not in finding.message, finding.message


# --- L2 terms ------------------------------------------------------------------------------


def test_an_error_not_proportional_to_theta_is_not_a_missing_l2_term():
    # no L2 in the cost; the error is c * x with c running from 5 down to 1, not one mu * x
    x = np.array([0.1, -0.2, 0.15, -0.25, 0.3, 0.2, -0.1, 20.0])
    finding = explain(data(np.cos(x) + np.linspace(5, 1, 8) * x, np.cos(x), x), {})
    assert finding.kind != "missing_l2"
    assert finding.kind == "localized"


def test_a_missing_l2_term_is_named_with_its_strength():
    numeric = G + LAMBDA * THETA
    finding = explain(data(G, numeric, THETA), {})
    assert finding.kind == "missing_l2"
    assert finding.detail["lambda"] == pytest.approx(LAMBDA)
    assert finding.detail["coefficient"] == pytest.approx(-LAMBDA)
    assert "lacks a term 0.07 * w" in finding.message


def test_an_extra_l2_term_is_named_with_its_strength():
    numeric = G + LAMBDA * THETA
    finding = explain(data(numeric + LAMBDA * THETA, numeric, THETA), {})
    assert finding.kind == "missing_l2"
    assert finding.detail["coefficient"] == pytest.approx(LAMBDA)
    assert "extra term" in finding.message


def test_an_l2_fit_that_leaves_one_element_off_is_not_claimed():
    numeric = G + LAMBDA * THETA
    analytic = G.copy()
    analytic[3] += 0.5  # one element off beyond the L2 pattern
    finding = explain(data(analytic, numeric, THETA), {})
    assert finding.kind != "missing_l2"


@pytest.mark.parametrize(("c", "hints", "words"), [(5, {"batch_size": 5}, "5 times"),
                                                   (1 / 5, {"batch_size": 5}, "1/5 of"),
                                                   (3, {}, "3 times")])  # fmt: skip
def test_the_loss_part_scaled_with_the_l2_part_right_is_a_scale(c, hints, words):
    # The demo's missing 1/m: analytic = c (numeric - lambda theta) + lambda theta.
    numeric = G + LAMBDA * THETA
    finding = explain(data(c * (numeric - LAMBDA * THETA) + LAMBDA * THETA, numeric, THETA), hints)
    assert finding.kind == "scale"
    assert finding.detail["factor"] == pytest.approx(c)
    assert finding.detail["l2_coefficient"] == pytest.approx(LAMBDA)
    assert words in finding.message
    assert "L2 part" in finding.message


def test_a_negative_fitted_l2_part_is_never_claimed():
    # analytic = 3 numeric + lambda theta fits c = 3, mu = +lambda, so the L2 strength
    # mu / (1 - c) = -lambda / 2 < 0: no cost has that, so no "L2 part is right" story.
    numeric = G + LAMBDA * THETA
    finding = explain(data(3 * numeric + LAMBDA * THETA, numeric, THETA), {})
    assert "l2_coefficient" not in finding.detail
    assert finding.kind == "localized"


# --- zero ----------------------------------------------------------------------------------


def test_a_zero_gradient_is_named_when_the_numeric_one_is_beyond_its_bars():
    finding = explain(data(np.zeros(12), G, THETA), {})
    assert finding.kind == "zero"
    assert finding.detail["numeric_norm"] == pytest.approx(float(np.linalg.norm(G)))


def test_zero_is_not_claimed_when_the_numeric_gradient_is_within_its_bars():
    numeric = 1e-9 * G
    finding = explain(data(np.zeros(12), numeric, THETA, error=1e-9), {})
    assert finding.kind != "zero"


def test_zero_within_the_bars_is_not_a_factor_zero():
    finding = explain(data(np.zeros(12), 1e-9 * G, THETA, error=1e-9), {})
    assert finding.kind == "localized", finding.message


# --- transpose, localized ------------------------------------------------------------------


def test_a_transposed_square_matrix_is_named():
    finding = explain(data(M.T.ravel(), M.ravel(), P.ravel(), shape=(4, 4)), {})
    assert finding.kind == "transpose"
    assert finding.detail["axes"] == [1, 0]
    assert finding.detail["l2"] == 0.0
    assert not finding.detail["reshaped"]


def test_a_transposed_square_matrix_with_a_correct_l2_term_is_named():
    # analytic = M.T + lambda P; numeric = M + lambda P: the difference is not a plain transpose
    numeric = M + LAMBDA * P
    finding = explain(data((M.T + LAMBDA * P).ravel(), numeric.ravel(), P.ravel(),
                           shape=(4, 4)), {})  # fmt: skip
    assert finding.kind == "transpose"
    assert finding.detail["l2"] == pytest.approx(LAMBDA)
    assert "L2 part" in finding.message


def test_a_transpose_needs_every_element_checked():
    # sampled: 12 of 16 elements, so the transposed layout cannot be compared
    local = np.arange(12)
    finding = explain(data(M.T.ravel()[local], M.ravel()[local], P.ravel()[local],
                           shape=(4, 4), local=local), {})  # fmt: skip
    assert finding.kind != "transpose"


def test_a_single_wrong_element_is_localized_by_its_index():
    analytic = M.copy()
    analytic[1, 2] = 3.0
    finding = explain(data(analytic.ravel(), M.ravel(), P.ravel(), shape=(4, 4)), {})
    assert finding.kind == "localized"
    assert finding.detail["count"] == 1
    assert finding.detail["indices"] == [[1, 2]]
    assert "w[1, 2]" in finding.message


def test_a_wrong_row_is_localized_to_that_row():
    analytic = M.copy()
    analytic[2] += 0.3
    finding = explain(data(analytic.ravel(), M.ravel(), P.ravel(), shape=(4, 4)), {})
    assert finding.kind == "localized"
    assert finding.detail["count"] == 4
    assert "all in row 2" in finding.message
    assert {i for i, _ in finding.detail["indices"]} == {2}


def test_a_row_with_one_factor_says_so():
    analytic = M.copy()
    analytic[2] *= 1.5
    finding = explain(data(analytic.ravel(), M.ravel(), P.ravel(), shape=(4, 4)), {})
    assert finding.kind == "localized"
    assert "all in row 2" in finding.message
    assert "each is 1.5 times the numeric value" in finding.message


def test_a_wrong_column_is_localized_to_that_column():
    analytic = M.copy()
    analytic[:, 3] -= 0.4
    finding = explain(data(analytic.ravel(), M.ravel(), P.ravel(), shape=(4, 4)), {})
    assert "all in column 3" in finding.message


# --- 0-d parameters ------------------------------------------------------------------------


def scalar(analytic, numeric=0.8, theta=1.3):
    return ParamData(name="b", shape=(), local=np.array([0]), analytic=np.array([analytic]),
                     numeric=np.array([numeric]), theta=np.array([theta]),
                     scale=abs(analytic) + abs(numeric), tolerance=1e-5,
                     error=np.array([BAR]))  # fmt: skip


@pytest.mark.parametrize(
    ("factor", "kind"),
    [(-1, "sign"), (2, "scale"), (4, "scale"), (0.5, "scale"), (5, "scale"), (1 / 5, "scale")],
)
def test_a_0d_parameter_gets_a_named_factor(factor, kind):
    # One element fits any factor; only one people make by mistake says something.
    finding = explain(scalar(factor * 0.8), {"batch_size": 5})
    assert finding.kind == kind
    assert finding.detail["factor"] == pytest.approx(factor)


@pytest.mark.parametrize("factor", [3.7, -3.7, 1.3])
def test_a_0d_parameter_with_an_unnamed_factor_is_localized(factor):
    finding = explain(scalar(factor * 0.8), {"batch_size": 5})
    assert finding.kind == "localized"
    assert finding.detail["count"] == 1
    assert finding.detail["indices"] == [[]]  # the element of a 0-d array has no index


def test_a_0d_parameter_with_a_zero_gradient():
    assert explain(scalar(0.0), {}).kind == "zero"


# --- ParamData.fits ------------------------------------------------------------------------


def test_fits_tolerates_errors_within_the_error_bars():
    # analytic = 2 * (true value) and the numeric values are off from the true ones by one
    # bar: 2 * numeric is then off by 2 bars, within CONFIDENCE bars times the factor 2, and
    # far beyond the relative tolerance alone (so it is the bars that tolerate it).
    error = 0.05
    d = data(2 * (G + error), G, THETA, error=error)
    assert d.fits(2 * G)
    assert not data(2 * (G + error), G, THETA, error=None).fits(2 * G)


def test_fits_rejects_one_far_off_element():
    analytic = 2 * G
    analytic[5] += 0.1
    d = data(analytic, G, THETA, error=1e-6)
    assert not d.fits(2 * G)
    assert d.fits(analytic)


def test_fits_without_error_bars_allows_only_the_relative_tolerance():
    d = data(2 * G, G, THETA, error=None)
    assert d.fits(2 * G * (1 + 1e-4))
    assert not d.fits(2 * G * (1 + 1e-2))


# --- wording -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factor", "hints", "how", "cause"),
    [
        (2, {}, "2 times", "derivative of x**2 counted twice"),
        (4, {}, "4 times", "db1 = 4/m"),
        (0.5, {}, "1/2 of", "missing factor 2"),
        (0.25, {}, "1/4 of", "divided by 4"),
        (3, {}, "3 times", "integer factor 3"),
        (32, {"batch_size": 32}, "32 times", "the 1/m is missing"),
        (1 / 32, {"batch_size": 32}, "1/32 of", "divided by m"),
        (7, {"time_steps": 7}, "7 times", "the 1/T is missing"),
        (1 / 7, {"time_steps": 7}, "1/7 of", "divided by T"),
        (1.7, {}, "1.7 times", "constant factor 1.7"),
    ],
)
def test_name_factor_wording(factor, hints, how, cause):
    words, why = name_factor(factor, hints)
    assert words == how
    assert cause in why


def test_name_factor_prefers_the_hint_to_the_plain_integer():
    # 4 is also the batch size here: the hint says more than "a factor 4"
    words, why = name_factor(4, {"batch_size": 4})
    assert words == "4 times"
    assert "batch size m" in why


def test_common_ratio_never_says_one_times():
    # Ratios of 1.0004 print as "1" with 4 digits: "1 times the numeric value" explains nothing.
    d = data(np.r_[1.0004 * G[:3], G[3:]], G, THETA)
    assert _common_ratio(d, np.arange(3)) == ""
    assert "times the numeric value" not in describe_elements(d).message


def test_common_ratio_names_a_shared_factor_and_only_a_shared_one():
    shared = data(np.r_[1.5 * G[:3], G[3:]], G, THETA)
    assert _common_ratio(shared, np.arange(3)) == " (each is 1.5 times the numeric value)"
    spread = data(np.r_[G[:3] * [1.5, 2.0, 3.0], G[3:]], G, THETA)
    assert _common_ratio(spread, np.arange(3)) == ""
    assert _common_ratio(shared, np.arange(1)) == ""  # one element shares nothing


# --- degenerate inputs ---------------------------------------------------------------------


def test_an_all_zero_numeric_gradient_gets_no_factor():
    # Nothing to scale: a factor is undefined, and zero numeric values are not "zero" (that
    # is about the analytic side).
    finding = explain(data(G, np.zeros(12), THETA), {})
    assert finding.kind == "localized"
    assert finding.detail["count"] == 12


def test_an_all_zero_theta_gets_no_l2_reading():
    finding = explain(data(2 * G, G, np.zeros(12)), {})
    assert finding.kind == "scale"
    assert finding.detail["factor"] == pytest.approx(2.0)
    assert "alternative" not in finding.detail
    assert "L2" not in finding.message


@pytest.mark.parametrize("magnitude", [1e-12, 1e-100])
def test_tiny_gradients_are_fitted_like_any_others(magnitude):
    finding = explain(data(2 * magnitude * G, magnitude * G, THETA, error=BAR * magnitude), {})
    assert finding.kind == "scale"
    assert finding.detail["factor"] == pytest.approx(2.0)


def test_gradients_near_the_underflow_limit_are_fitted_like_any_others():
    finding = explain(data(2e-170 * G, 1e-170 * G, THETA, error=BAR * 1e-170), {})
    assert finding.kind == "scale"


def test_no_mismatch_at_all_names_no_pattern():
    finding = explain(data(G, G, THETA), {})
    assert finding.kind == "localized"
    assert "times" not in finding.message


def test_a_single_element_vector_behaves_like_a_0d_parameter():
    assert explain(data([1.6], [0.8], [0.5]), {}).kind == "scale"  # 2: named
    assert explain(data([1.0], [0.3], [0.5]), {}).kind == "localized"  # 3.33: not
