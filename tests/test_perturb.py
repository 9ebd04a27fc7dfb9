"""In-place perturbation: user arrays are bit-for-bit unchanged however a check ends."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradcheck
from gradcheck import CostFunctionError
from gradcheck._engine._perturb import CoordinateFailedError, Guard, evaluate_coordinates, flat_view
from gradcheck._tree import flatten
from strategies import corruptions, smooth_problems


def with_negative_zeros(W: np.ndarray) -> np.ndarray:
    W = W.copy()
    W.reshape(-1)[::3] = -0.0
    return W


class RaiseAt:
    """Wrap a cost so that its k-th call raises; remember which coordinate was moved then.

    With ``perturbed_only``, only calls made while a coordinate is moved are counted, so
    the raise happens at a perturbed point whatever extra base-point calls a check makes.
    """

    def __init__(self, cost, case, k: int, exception: BaseException, *, perturbed_only: bool):
        self.cost, self.case, self.k, self.exception = cost, case, k, exception
        self.perturbed_only = perturbed_only
        self.originals = [a.copy() for a in case.ordered()]
        self.calls = 0
        self.moved: tuple[int, tuple[int, ...]] | None = None

    def _moved(self, tree) -> tuple[int, tuple[int, ...]] | None:
        for position, (now, before) in enumerate(
            zip(self.case.ordered(tree), self.originals, strict=True)
        ):
            differ = np.argwhere(np.asarray(now != before).reshape(before.shape))
            if len(differ):
                return position, tuple(int(i) for i in differ[0])
        return None

    def __call__(self, tree):
        moved = self._moved(tree)
        if moved is not None or not self.perturbed_only:
            self.calls += 1
            if self.calls == self.k:
                self.moved = moved
                raise self.exception
        return self.cost(tree)


# --- evaluate_coordinates and Guard ----------------------------------------------------


def test_evaluate_coordinates_moves_one_coordinate_at_a_time():
    array = np.array([1.0, 2.0, 3.0])
    seen = []

    def cost():
        seen.append(array.copy())
        return float(array.sum())

    values = evaluate_coordinates(array, [0, 2], [[1.5, 3.5], [0.5, 2.5]], cost)
    assert values == [[6.5, 6.5], [5.5, 5.5]]
    np.testing.assert_array_equal(
        seen, [[1.5, 2.0, 3.0], [0.5, 2.0, 3.0], [1.0, 2.0, 3.5], [1.0, 2.0, 2.5]]
    )
    np.testing.assert_array_equal(array, [1.0, 2.0, 3.0])


def test_evaluate_coordinates_restores_before_reporting_a_failure():
    array = np.array([[-0.0, 2.0], [3.0, 4.0]])
    before = array.tobytes()
    calls = []

    def cost():
        calls.append(1)
        if len(calls) == 4:
            raise ZeroDivisionError("boom")
        return 0.0

    with pytest.raises(CoordinateFailedError) as info:
        evaluate_coordinates(array, [0, 3], [[1.0, 5.0], [-1.0, 3.0]], cost)
    assert (info.value.position, info.value.offset) == (1, 1)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert array.tobytes() == before


def test_flat_view_is_a_view_for_c_contiguous_arrays():
    W = np.zeros((2, 3))
    view = flat_view(W)
    view[4] = 1.0
    assert W[1, 1] == 1.0


@pytest.mark.parametrize("make", [lambda a: np.asfortranarray(a), lambda a: a[:, ::2]])
def test_flat_view_indexes_in_c_order_for_other_layouts(make):
    W = make(np.arange(24.0).reshape(4, 6))
    view = flat_view(W)
    np.testing.assert_array_equal(view[[0, 1, 2, 3]], W.reshape(-1)[:4])
    view[1] = -1.0
    assert W[0, 1] == -1.0


def write_inside_guard(params, value, error=None):
    with Guard(flatten(params).leaves):
        params["W"][0] = value
        if error is not None:
            raise error


def test_guard_restores_and_reports_a_changed_array():
    params = {"W": np.array([1.0, 2.0]), "b": np.array([3.0])}
    with pytest.raises(CostFunctionError, match=r'modified params\["W"\] in place') as info:
        write_inside_guard(params, 7.0)
    assert info.value.param == "W"
    np.testing.assert_array_equal(params["W"], [1.0, 2.0])


def test_guard_restores_silently_when_leaving_on_an_exception():
    params = {"W": np.array([1.0, 2.0])}
    with pytest.raises(KeyError, match="original"):
        write_inside_guard(params, 5.0, KeyError("original"))
    np.testing.assert_array_equal(params["W"], [1.0, 2.0])


# --- whole checks: arrays restored bit for bit -----------------------------------------


@given(smooth_problems())
def test_arrays_unchanged_after_a_passing_check(problem):
    before = problem.case.snapshot()
    report = gradcheck.check(problem, problem.case.tree, problem.gradients())
    assert report.passed
    assert problem.case.snapshot() == before


@given(smooth_problems(), st.data())
def test_arrays_unchanged_after_a_failing_check(problem, data):
    corruption = data.draw(corruptions(problem.case))
    grads, _, _ = corruption.apply(problem)
    before = problem.case.snapshot()
    report = gradcheck.check(problem, problem.case.tree, grads)
    assert not report.passed
    assert problem.case.snapshot() == before


@given(smooth_problems(), st.data())
def test_params_restored_after_cost_raises(problem, data):
    case = problem.case
    k = data.draw(st.integers(1, 2 * case.size), label="k")
    before = case.snapshot()
    cost = RaiseAt(problem, case, k, ValueError("cost exploded"), perturbed_only=True)
    with pytest.raises(
        CostFunctionError, match=r"the cost function raised ValueError: cost exploded"
    ) as info:
        gradcheck.check(cost, case.tree, problem.gradients())
    assert case.snapshot() == before
    error = info.value
    assert isinstance(error.__cause__, ValueError)
    assert error.__cause__ is cost.exception
    assert cost.moved is not None
    position, index = cost.moved
    leaf = case.leaves[position]
    assert (error.param, error.index) == (leaf.name, index)
    assert leaf.describe(index) + " was moved by" in str(error)
    assert "Your arrays have been restored" in str(error)


@given(smooth_problems(), st.data())
def test_params_restored_after_keyboard_interrupt(problem, data):
    case = problem.case
    k = data.draw(st.integers(1, 1 + 2 * case.size), label="k")
    before = case.snapshot()
    cost = RaiseAt(problem, case, k, KeyboardInterrupt(), perturbed_only=False)
    with pytest.raises(KeyboardInterrupt):
        gradcheck.check(cost, case.tree, problem.gradients())
    assert case.snapshot() == before


@pytest.mark.parametrize("method", ["central", "forward", "backward", "central4", "complex"])
def test_negative_zeros_survive_every_method(method):
    W = with_negative_zeros(np.linspace(-1, 1, 12).reshape(3, 4))
    before = W.tobytes()
    assert np.signbit(W.reshape(-1)[::3]).all()
    report = gradcheck.check(lambda p: np.sum(np.sin(p["W"])), {"W": W}, {"dW": np.cos(W)},
                             method=method)  # fmt: skip
    assert report.passed
    assert W.tobytes() == before


def test_cost_raising_message_names_the_coordinate():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    before = W.tobytes()

    def cost(p):
        if p["W1"][0, 1] != 2.0:
            raise ArithmeticError("bad point")
        return float(np.sum(p["W1"] ** 2))

    with pytest.raises(
        CostFunctionError,
        match=r'the cost function raised ArithmeticError: bad point while params\["W1"\]\[0, 1\] '
        r"was moved by \+1e-07 \(coordinate 1 of theta\)",
    ) as info:
        gradcheck.check(cost, {"W1": W}, {"dW1": 2 * W})
    assert (info.value.param, info.value.index) == ("W1", (0, 1))
    assert isinstance(info.value.__cause__, ArithmeticError)
    assert W.tobytes() == before


# --- layouts ---------------------------------------------------------------------------


def quadratic_cost(A: np.ndarray):
    def cost(p):
        return float(np.sum(A * p["W"] ** 2) + np.sum(np.sin(p["S"])))

    return cost


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(lambda a: np.asfortranarray(a), id="fortran"),
        pytest.param(lambda a: np.repeat(np.repeat(a, 2, 0), 3, 1)[::2, ::3], id="strided"),
        pytest.param(lambda a: a.T.copy().T, id="transposed-view"),
    ],
)
def test_non_c_contiguous_params_are_checked_correctly(layout):
    A = np.arange(1.0, 13.0).reshape(3, 4)
    W = layout(np.linspace(-1, 1, 12).reshape(3, 4))
    S = layout(np.linspace(0.1, 0.9, 12).reshape(3, 4))
    assert not W.flags.c_contiguous
    np.testing.assert_array_equal(W, np.linspace(-1, 1, 12).reshape(3, 4))
    before = W.tobytes(), S.tobytes()
    cost = quadratic_cost(A)
    right = {"W": 2 * A * W, "S": np.cos(S)}
    assert gradcheck.check(cost, {"W": W, "S": S}, right).passed

    wrong = {"W": 2 * A * W, "S": np.cos(S)}
    wrong["S"][1, 2] += 0.5
    report = gradcheck.check(cost, {"W": W, "S": S}, wrong)
    assert report.params["W"].passed
    assert not report.params["S"].passed
    assert report.params["S"].worst[0].index == (1, 2)
    assert report.params["S"].worst[0].analytic == pytest.approx(np.cos(S[1, 2]) + 0.5)
    assert report.params["S"].worst[0].numeric == pytest.approx(np.cos(S[1, 2]), rel=1e-7)
    assert (W.tobytes(), S.tobytes()) == before


def test_strided_view_leaves_the_rest_of_its_base_untouched():
    base = np.linspace(-1, 1, 24).reshape(4, 6)
    before = base.tobytes()
    view = base[::2, 1::2]
    report = gradcheck.check(lambda p: float(np.sum(p["V"] ** 3)), {"V": view}, {"dV": 3 * view**2})
    assert report.passed
    assert base.tobytes() == before


# --- a cost that writes into its parameters --------------------------------------------


def accumulate(p):
    p["W"][0, 0] += 1.0


def overwrite(p):
    p["W"][0, 0] = 5.0


@pytest.mark.parametrize("modify", [accumulate, overwrite])
def test_cost_modifying_params_in_place_raises_and_restores(modify):
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    before = W.tobytes()

    def cost(p):
        modify(p)
        return float(np.sum(p["W"] ** 2))

    with pytest.raises(
        CostFunctionError, match=r'the cost function modified params\["W"\] in place'
    ):
        gradcheck.check(cost, {"W": W}, {"dW": 2 * W})
    assert W.tobytes() == before


def test_cost_modifying_params_midway_raises_and_restores():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([0.5])
    before = W.tobytes(), b.tobytes()
    calls = []

    def cost(p):
        calls.append(1)
        if len(calls) == 4:
            p["b"][0] = 100.0
        return float(np.sum(p["W"] ** 2) + p["b"][0])

    with pytest.raises(
        CostFunctionError, match=r'modified params\["b"\] in place.*restored'
    ) as info:
        gradcheck.check(cost, {"W": W, "b": b}, {"dW": 2 * W, "db": np.ones(1)})
    assert info.value.param == "b"
    assert (W.tobytes(), b.tobytes()) == before
