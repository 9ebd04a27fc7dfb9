"""The demo network: its hand-written gradients are right, and each catalogue bug breaks one."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck.demo import BUGS, check_demo, load_bug, make_network
from gradcheck.demo._network import sigmoid_cross_entropy, softmax_cross_entropy

ACTIVATIONS = ["relu", "tanh", "sigmoid"]
OUTPUTS = [("sigmoid", (3, 4, 1)), ("softmax", (3, 4, 5, 3))]


@pytest.mark.parametrize("lambd", [0.0, 0.7])
@pytest.mark.parametrize(("output", "sizes"), OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_hand_written_gradients_agree_with_finite_differences(activation, output, sizes, lambd):
    net = make_network(sizes, activation=activation, output=output, lambd=lambd, m=8, seed=3)
    report = gradcheck.check(net.cost, net.params, net.gradients())
    assert report.passed, str(report)
    assert report.difference < 1e-7  # the textbook's "correct"; a small bias may be "acceptable"


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_cost_and_grads_form_agrees(activation):
    net = make_network((2, 3, 3, 1), activation=activation, m=6)
    assert gradcheck.check(net.cost_and_grads, net.params).passed


def test_default_network_is_the_classic_three_layer_network():
    net = make_network()
    assert net.describe() == (
        "LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID (2-20-20-1, m=32, L2 lambda=0.7)"
    )
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert net.params["W1"].shape == (20, 2)
    assert net.params["b1"].shape == (20, 1)
    assert net.params["W2"].shape == (20, 20)  # square, so a transposed dW2 keeps its shape
    assert net.size == sum(p.size for p in net.params.values())


def test_network_is_deterministic():
    one, two = make_network(seed=4), make_network(seed=4)
    for key in one.params:
        np.testing.assert_array_equal(one.params[key], two.params[key])
    np.testing.assert_array_equal(one.X, two.X)
    assert one.cost(one.params) == two.cost(two.params)


def test_gradient_keys_are_the_textbook_names():
    net = make_network((2, 3, 1), m=4)
    assert list(net.gradients()) == ["dW1", "db1", "dW2", "db2"]


def test_vector_cost_equals_the_dict_cost():
    net = make_network((2, 3, 1), m=4)
    assert net.vector_cost(net.theta()) == net.cost(net.params)
    assert net.theta().shape == (net.size,)


@pytest.mark.parametrize(
    ("sizes", "output", "match"),
    [((3,), None, r"needs an input size and at least one layer"),
     ((3, 0, 1), None, r"needs an input size and at least one layer"),
     ((3, 4, 2), "sigmoid", r"a sigmoid output has one unit, but sizes ends with 2")],
)  # fmt: skip
def test_bad_network_sizes_raise(sizes, output, match):
    with pytest.raises(ValueError, match=match):
        make_network(sizes, output=output)


def test_losses_stay_finite_for_large_logits():
    z = np.array([[-800.0, 800.0, 0.0]])
    loss, dz = sigmoid_cross_entropy(z, np.array([[1.0, 0.0, 1.0]]))
    assert np.isfinite(loss)
    assert np.isfinite(dz).all()
    z = np.array([[1000.0, -1000.0], [0.0, 0.0]])
    loss, dz = softmax_cross_entropy(z, np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert np.isfinite(loss)
    assert np.isfinite(dz).all()


# --- the catalogue ---------------------------------------------------------------------


def test_catalogue_has_the_mistakes_the_issue_asks_for():
    assert {"bias_times_4", "weight_times_2", "missing_1_over_m", "sign", "missing_l2",
            "transposed", "zero"} <= set(BUGS)  # fmt: skip
    for name, bug in BUGS.items():
        assert bug.name == name
        assert bug.description
        assert bug.param in make_network().params


@pytest.mark.parametrize("name", list(BUGS))
def test_each_bug_breaks_exactly_its_named_parameter(name):
    report = check_demo(name)
    param = BUGS[name].param
    assert not report.passed
    assert not report.params[param].passed
    assert report.worst.name == param
    assert [p.name for p in report.failing] == [param]
    assert all(p.passed for n, p in report.params.items() if n != param)


@pytest.mark.parametrize("name", list(BUGS))
def test_each_bug_changes_only_its_gradient(name):
    net = make_network()
    grads = net.gradients()
    broken = load_bug(name).apply(grads, net)
    changed = [key for key in grads if not np.array_equal(grads[key], broken[key])]
    assert changed == ["d" + BUGS[name].param]
    assert list(broken) == list(grads)
    assert all(broken[k].shape == grads[k].shape for k in grads)


def test_applying_a_bug_does_not_modify_the_correct_grads():
    net = make_network()
    grads = net.gradients()
    before = {k: v.copy() for k, v in grads.items()}
    load_bug("bias_times_4").apply(grads, net)
    for key in grads:
        np.testing.assert_array_equal(grads[key], before[key])


def test_load_unknown_bug_lists_the_names():
    with pytest.raises(KeyError, match=r"no mistake named 'nope'; choose one of: bias_times_4"):
        load_bug("nope")


def test_check_demo_passes():
    report = check_demo()
    assert report.passed
    assert report.verdict is gradcheck.Verdict.CORRECT
    assert report.evaluations >= 1 + 2 * make_network().size


def test_check_demo_passes_options_through():
    report = check_demo(mode="sample", samples=2, method="central4")
    assert report.passed
    assert report.settings.method == "central4"
    assert report.checked == 2 * 6 - 1  # b3 has one element


def test_check_demo_with_another_network():
    net = make_network((3, 4, 4, 1), activation="tanh", m=8)
    assert check_demo(network=net).passed
    assert check_demo("transposed", network=net).worst.name == "W2"
