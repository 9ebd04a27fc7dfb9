"""The 2-norm that neither underflows nor overflows (gradients of 1e-200 and 1e200 are legal)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck._norms import stable_norm


@pytest.mark.parametrize("size", [1e-210, 1e-160, 1.0, 1e160, 1e300])
def test_the_norm_of_3_4_scales_with_its_values(size):
    assert stable_norm(np.array([3.0, -4.0]) * size) == pytest.approx(5 * size, rel=1e-15)


def test_empty_and_zero_vectors_have_norm_zero():
    assert stable_norm(np.empty(0)) == 0.0
    assert stable_norm(np.zeros(4)) == 0.0


def test_nan_and_inf_propagate():
    assert math.isnan(stable_norm(np.array([1.0, np.nan])))
    assert stable_norm(np.array([1.0, -np.inf])) == math.inf


def test_complex_values_use_their_modulus():
    assert stable_norm(np.array([3j, 4.0])) == pytest.approx(5.0)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20))
def test_it_agrees_with_numpy_where_numpy_does_not_under_or_overflow(values):
    expected = float(np.linalg.norm(values))
    assert stable_norm(np.array(values)) == pytest.approx(expected, rel=1e-14, abs=1e-300)
