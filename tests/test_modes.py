"""Which coordinates a check evaluates: all of them, or a seeded stratified sample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradcheck
from gradcheck._engine._modes import DEFAULT_SAMPLES, samples_per_leaf, select_coordinates
from gradcheck._tree import flatten
from strategies import param_trees


def big_and_tiny():
    return flatten({"W": np.zeros((100, 50)), "b": np.zeros(1), "v": np.zeros(3)})


def test_full_covers_every_coordinate():
    flat = big_and_tiny()
    chosen = select_coordinates(flat, "full", None, 0)
    assert [c.tolist() for c in chosen] == [list(range(leaf.size)) for leaf in flat]


def test_sample_gives_every_leaf_at_least_one_coordinate():
    flat = big_and_tiny()
    chosen = select_coordinates(flat, "sample", 0.001, seed=0)
    assert [len(c) for c in chosen] == [5, 1, 1]


def test_sample_int_is_a_count_per_leaf_capped_at_its_size():
    flat = big_and_tiny()
    chosen = select_coordinates(flat, "sample", 7, seed=0)
    assert [len(c) for c in chosen] == [7, 1, 3]


def test_sample_float_is_a_fraction_of_each_leaf_rounded_up():
    flat = big_and_tiny()
    chosen = select_coordinates(flat, "sample", 0.5, seed=0)
    assert [len(c) for c in chosen] == [2500, 1, 2]


def test_sample_default_count_per_leaf():
    flat = big_and_tiny()
    chosen = select_coordinates(flat, "sample", None, seed=0)
    assert [len(c) for c in chosen] == [DEFAULT_SAMPLES, 1, 3]


@pytest.mark.parametrize(
    ("size", "samples", "expected"),
    [
        (10, 3, 3),
        (10, 30, 10),
        (10, 0.25, 3),
        (10, 1.0, 10),
        (10, 1e-9, 1),
        (0, 5, 0),
        (4, None, 4),
    ],
)
def test_samples_per_leaf(size, samples, expected):
    assert samples_per_leaf(size, samples) == expected


def test_sampled_coordinates_are_distinct_sorted_and_inside_the_leaf():
    flat = big_and_tiny()
    for leaf, chosen in zip(flat, select_coordinates(flat, "sample", 40, seed=3), strict=True):
        assert np.all(np.diff(chosen) > 0)
        assert chosen.min() >= 0
        assert chosen.max() < leaf.size
        assert chosen.dtype == np.intp


def test_same_seed_same_choice():
    flat = big_and_tiny()
    first = select_coordinates(flat, "sample", 10, seed=42)
    second = select_coordinates(flat, "sample", 10, seed=42)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_seed_different_choice():
    flat = big_and_tiny()
    first = select_coordinates(flat, "sample", 10, seed=1)
    second = select_coordinates(flat, "sample", 10, seed=2)
    assert not np.array_equal(first[0], second[0])


def test_sample_does_not_touch_the_global_rng():
    state = np.random.get_state()  # noqa: NPY002 (the legacy global RNG, on purpose)
    select_coordinates(big_and_tiny(), "sample", 10, seed=5)
    after = np.random.get_state()  # noqa: NPY002
    assert state[0] == after[0]
    np.testing.assert_array_equal(state[1], after[1])


@given(param_trees(), st.one_of(st.integers(1, 20), st.floats(0.01, 1.0)), st.integers(0, 2**16))
def test_sample_is_stratified_over_any_tree(case, samples, seed):
    flat = flatten(case.tree)
    chosen = select_coordinates(flat, "sample", samples, seed)
    for leaf, picked in zip(flat, chosen, strict=True):
        assert 1 <= len(picked) <= leaf.size
        assert len(set(picked.tolist())) == len(picked)


def test_sample_mode_report_checks_every_leaf():
    params = {"W": np.linspace(-1, 1, 400).reshape(20, 20), "b": np.array([0.3])}
    report = gradcheck.check(
        lambda p: float(np.sum(p["W"] ** 2) + 3 * p["b"][0]),
        params,
        {"dW": 2 * params["W"], "db": np.array([3.0])},
        mode="sample",
        samples=5,
    )
    assert [p.checked for p in report.params.values()] == [5, 1]
    assert report.checked == 6
    assert report.size == 401
    assert report.evaluations >= 1 + 2 * 6


def test_sample_mode_catches_a_wrong_bias_next_to_a_large_weight():
    params = {"W": np.linspace(-1, 1, 2500).reshape(50, 50), "b": np.array([0.3])}
    report = gradcheck.check(
        lambda p: float(np.sum(p["W"] ** 2) + 3 * p["b"][0]),
        params,
        {"dW": 2 * params["W"], "db": np.array([6.0])},
        mode="sample",
        samples=0.01,
    )
    assert not report.params["b"].passed
    assert not report.passed
