"""Parameter trees: names, order, offsets, and the errors for malformed params and grads."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given

from gradcheck import ParamTreeError
from gradcheck._tree import ROOT_NAME, flatten, flatten_grads
from strategies import param_trees

Layer = namedtuple("Layer", ["weight", "bias"])


def two_layer() -> dict[str, np.ndarray]:
    return {
        "W1": np.arange(30.0).reshape(5, 6),
        "b1": np.arange(5.0),
        "W2": np.ones((2, 5)),
        "b2": np.zeros(2),
    }


# --- names, order, offsets -------------------------------------------------------------


def test_dict_params_are_named_by_their_keys():
    flat = flatten(two_layer())
    assert flat.names == ("W1", "b1", "W2", "b2")


def test_dict_insertion_order_is_kept_not_sorted():
    params = {"zeta": np.ones(2), "alpha": np.ones(3), "mid": np.ones(1)}
    assert flatten(params).names == ("zeta", "alpha", "mid")


def test_nested_params_get_dotted_names():
    params = {"layers": [{"weight": np.ones((2, 3)), "bias": np.ones(2)}], "head": np.ones(1)}
    flat = flatten(params)
    assert flat.names == ("layers.0.weight", "layers.0.bias", "head")
    assert [leaf.describe() for leaf in flat] == [
        'params["layers"][0]["weight"]',
        'params["layers"][0]["bias"]',
        'params["head"]',
    ]


def test_list_params_are_named_by_position():
    flat = flatten([np.ones(2), np.ones((2, 2))])
    assert flat.names == ("0", "1")
    assert [leaf.describe() for leaf in flat] == ["params[0]", "params[1]"]


def test_bare_array_is_named_theta():
    flat = flatten(np.ones(4))
    assert flat.names == (ROOT_NAME,) == ("theta",)
    assert flat.leaves[0].describe() == "params"


def test_namedtuple_leaves_are_named_by_field():
    flat = flatten({"dense": Layer(weight=np.ones((2, 2)), bias=np.ones(2))})
    assert flat.names == ("dense.weight", "dense.bias")


def test_offsets_and_sizes_lay_leaves_end_to_end():
    flat = flatten(two_layer())
    assert [leaf.offset for leaf in flat] == [0, 30, 35, 45]
    assert [leaf.size for leaf in flat] == [30, 5, 10, 2]
    assert [leaf.shape for leaf in flat] == [(5, 6), (5,), (2, 5), (2,)]
    assert flat.size == 47


def test_locate_names_parameter_and_element():
    flat = flatten(two_layer())
    assert flat.locate(3 * 6 + 4) == ("W1", (3, 4))
    assert flat.locate(0) == ("W1", (0, 0))
    assert flat.locate(30) == ("b1", (0,))
    assert flat.locate(46) == ("b2", (1,))


def test_locate_outside_theta_raises():
    flat = flatten(two_layer())
    with pytest.raises(IndexError, match="coordinate 47 is outside theta, which has 47"):
        flat.locate(47)


def test_locate_skips_zero_size_leaves():
    flat = flatten({"a": np.ones(2), "empty": np.ones((0, 3)), "b": np.ones(2)})
    assert flat.locate(2) == ("b", (0,))


def test_vector_concatenates_in_c_order():
    W = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    flat = flatten({"W": W, "b": np.array([10.0, 11.0])})
    np.testing.assert_array_equal(flat.vector(), [0, 1, 2, 3, 4, 5, 10, 11])


def test_vector_is_a_copy():
    params = {"W": np.ones((2, 2)), "b": np.zeros(2)}
    flat = flatten(params)
    vector = flat.vector()
    vector[:] = 7.0
    assert params["W"].sum() == 4.0
    assert params["b"].sum() == 0.0
    assert flat.vector() is not vector


def test_flatten_keeps_the_users_arrays_without_copying():
    params = {"W": np.ones((2, 2))}
    assert flatten(params).leaves[0].array is params["W"]


def test_float32_leaf_keeps_its_dtype():
    flat = flatten({"W": np.ones(3, dtype=np.float32)})
    assert flat.leaves[0].dtype == np.float32
    assert flat.vector().dtype == np.float64


def test_unflatten_rebuilds_the_users_structure():
    params = {"layers": [{"weight": np.ones(2), "bias": np.ones(1)}]}
    flat = flatten(params)
    rebuilt = flat.unflatten(["w", "b"])
    assert rebuilt == {"layers": [{"weight": "w", "bias": "b"}]}


def test_disjoint_views_of_one_array_are_accepted():
    base = np.ones((2, 3))
    flat = flatten({"row0": base[0], "row1": base[1]})
    assert flat.names == ("row0", "row1")


@given(param_trees())
def test_names_paths_and_offsets_match_the_tree(case):
    flat = flatten(case.tree)
    assert flat.names == tuple(leaf.name for leaf in case.leaves)
    assert [leaf.describe() for leaf in flat] == [leaf.describe() for leaf in case.leaves]
    assert [leaf.offset for leaf in flat] == [leaf.offset for leaf in case.leaves]
    assert flat.size == case.size
    expected = np.concatenate([a.reshape(-1) for a in case.ordered()])
    np.testing.assert_array_equal(flat.vector(), expected)
    for leaf in case.leaves:
        last = leaf.offset + leaf.size - 1
        index = tuple(int(i) for i in np.unravel_index(leaf.size - 1, leaf.shape))
        assert flat.locate(last) == (leaf.name, index)


# --- malformed params ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({}, r"params is an empty dict: there is nothing to check"),
        ([], r"params is an empty list: there is nothing to check"),
        ({"W": np.ones((0, 3))}, r"every array in params has zero elements"),
    ],
)
def test_empty_params_raise(params, match):
    with pytest.raises(ParamTreeError, match=match):
        flatten(params)


@pytest.mark.parametrize(
    ("leaf", "match"),
    [
        (1.5, r'params\["W"\] is a float, not a NumPy array.*np\.array\(1\.5, dtype=float\)'),
        ([1.0, 2.0], r'params\["W"\]\[0\] is a float, not a NumPy array'),
        (None, r'params\["W"\] is None, not a NumPy array'),
        ("abc", r'params\["W"\] is a str, not a NumPy array'),
    ],
)
def test_leaf_that_is_not_an_array_raises(leaf, match):
    with pytest.raises(ParamTreeError, match=match):
        flatten({"W": leaf})


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_and_boolean_leaves_raise(dtype):
    with pytest.raises(
        ParamTreeError,
        match=r'params\["W"\] has dtype \w+; gradient checks need floating-point arrays: '
        r'pass it as params\["W"\]\.astype\(np\.float64\)',
    ):
        flatten({"W": np.ones((2, 2), dtype=dtype)})


def test_complex_leaf_raises():
    with pytest.raises(ParamTreeError, match=r"dtype complex128.*complex parameters are not"):
        flatten({"W": np.ones(2, dtype=complex)})


def test_read_only_leaf_raises():
    W = np.ones(3)
    W.flags.writeable = False
    with pytest.raises(ParamTreeError, match=r'params\["W"\] is read-only.*\.copy\(\)'):
        flatten({"W": W})


@pytest.mark.parametrize(
    ("value", "index", "shown"), [(np.nan, (0, 1), "nan"), (np.inf, (1, 0), "inf")]
)
def test_nonfinite_param_raises_naming_the_index(value, index, shown):
    W = np.ones((2, 2))
    W[index] = value
    with pytest.raises(
        ParamTreeError,
        match=rf'params\["W"\] holds {shown} at \({index[0]}, {index[1]}\); '
        "a gradient check needs finite parameters",
    ):
        flatten({"W": W})


def test_same_array_twice_raises():
    W = np.ones(3)
    with pytest.raises(ParamTreeError, match=r"params\[0\] and params\[1\] share memory"):
        flatten([W, W])


@pytest.mark.parametrize("view", [lambda W: W[0], lambda W: W.T, lambda W: W[:, ::2]])
def test_leaf_that_is_a_view_of_another_raises(view):
    W = np.ones((3, 4))
    with pytest.raises(
        ParamTreeError, match=r'params\["W"\] and params\["V"\] share memory.*Pass each parameter'
    ):
        flatten({"W": W, "V": view(W)})


def test_torch_like_leaf_gets_a_framework_hint():
    fake_tensor = type("Tensor", (), {"__module__": "torch"})()
    with pytest.raises(ParamTreeError, match=r"This looks like a torch array: .*check_module"):
        flatten({"W": fake_tensor})


# --- grads -----------------------------------------------------------------------------


def test_textbook_d_prefixed_keys_are_accepted():
    flat = flatten({"W1": np.zeros((2, 3)), "b1": np.zeros(2)})
    grads = {"dW1": np.full((2, 3), 1.0), "db1": np.full(2, 2.0)}
    np.testing.assert_array_equal(flatten_grads(grads, flat), [1, 1, 1, 1, 1, 1, 2, 2])


def test_plain_keys_and_extra_keys_are_accepted():
    flat = flatten({"W1": np.zeros((2, 3)), "b1": np.zeros(2)})
    grads = {"W1": np.ones((2, 3)), "db1": np.full(2, 2.0), "dZ1": np.ones(7), "dA0": "ignored"}
    np.testing.assert_array_equal(flatten_grads(grads, flat), [1, 1, 1, 1, 1, 1, 2, 2])


def test_grads_are_matched_by_key_not_by_order():
    flat = flatten({"W1": np.zeros(2), "b1": np.zeros(1)})
    grads = {"db1": np.array([9.0]), "dW1": np.array([1.0, 2.0])}
    np.testing.assert_array_equal(flatten_grads(grads, flat), [1, 2, 9])


def test_missing_grad_key_names_param_and_lists_keys():
    flat = flatten({"W1": np.zeros((2, 3)), "b1": np.zeros(2)})
    with pytest.raises(
        ParamTreeError,
        match=r'grads has no gradient for params\["W1"\]: looked for grads\["W1"\] or '
        r'grads\["dW1"\]\. The keys there are: "dW2", "db1"',
    ):
        flatten_grads({"dW2": np.ones((2, 3)), "db1": np.ones(2)}, flat)


def test_grad_shape_mismatch_names_both_shapes():
    flat = flatten({"W1": np.zeros((2, 3)), "b1": np.zeros(2)})
    with pytest.raises(
        ParamTreeError,
        match=r'grads\["db1"\] has shape \(3,\) but params\["b1"\] has shape \(2,\)',
    ):
        flatten_grads({"dW1": np.ones((2, 3)), "db1": np.ones(3)}, flat)


def test_transposed_grad_gets_a_transposed_hint():
    flat = flatten({"W1": np.zeros((2, 3))})
    with pytest.raises(
        ParamTreeError,
        match=r'grads\["dW1"\] has shape \(3, 2\) but params\["W1"\] has shape \(2, 3\); '
        "a transposed gradient",
    ):
        flatten_grads({"dW1": np.ones((3, 2))}, flat)


def test_reshaped_grad_is_not_called_transposed():
    flat = flatten({"W1": np.zeros((2, 3)), "b1": np.zeros(2)})
    with pytest.raises(ParamTreeError, match=r"same number of elements, different layout") as info:
        flatten_grads({"dW1": np.ones(6), "db1": np.ones(2)}, flat)
    assert "transposed" not in str(info.value)


@pytest.mark.parametrize("grads", [[np.ones(2)], [np.ones(2), np.ones(3), np.ones(1)]])
def test_grad_list_length_mismatch_raises(grads):
    flat = flatten([np.zeros(2), np.zeros(3)])
    with pytest.raises(
        ParamTreeError,
        match=rf"grads has {len(grads)} entries but the matching part of params has 2",
    ):
        flatten_grads(grads, flat)


def test_grads_with_another_structure_raise():
    flat = flatten([np.zeros(2), np.zeros(3)])
    with pytest.raises(
        ParamTreeError, match=r"grads is a dict, but params has a list or tuple there"
    ):
        flatten_grads({"a": np.ones(2)}, flat)


def test_tuple_grads_match_list_params():
    flat = flatten([np.zeros(2), np.zeros(1)])
    np.testing.assert_array_equal(flatten_grads((np.ones(2), np.full(1, 3.0)), flat), [1, 1, 3])


def test_concatenated_gradient_vector_is_accepted():
    flat = flatten({"W1": np.zeros((2, 3)), "b1": np.zeros(2)})
    np.testing.assert_array_equal(flatten_grads(np.arange(8.0), flat), np.arange(8.0))


def test_concatenated_gradient_column_is_accepted():
    flat = flatten({"W1": np.zeros((2, 3)), "b1": np.zeros(2)})
    np.testing.assert_array_equal(flatten_grads(np.arange(8.0)[:, None], flat), np.arange(8.0))


def test_concatenated_gradient_of_wrong_length_raises():
    flat = flatten({"W1": np.zeros((2, 3)), "b1": np.zeros(2)})
    with pytest.raises(ParamTreeError, match=r"1-D array of 9 elements.*8 coordinates in 2"):
        flatten_grads(np.arange(9.0), flat)


@pytest.mark.parametrize(
    ("grad", "match"),
    [
        ("x", r'grads\["dW1"\] is a str, but it should be the gradient of params\["W1"\]: '
              r"an array of shape \(2, 3\)"),
        (None, r'grads\["dW1"\] is a NoneType, but it should be the gradient of params\["W1"\]'),
        (np.full((2, 3), "a"), r'grads\["dW1"\] has dtype <U1, but the gradient of '
                               r'params\["W1"\] must be real numbers'),
        (np.ones((2, 3), dtype=object), r'grads\["dW1"\] has dtype object'),
        (np.ones((2, 3), dtype=complex), r'grads\["dW1"\] has dtype complex128'),
    ],
)  # fmt: skip
def test_non_numeric_grad_raises(grad, match):
    flat = flatten({"W1": np.zeros((2, 3))})
    with pytest.raises(ParamTreeError, match=match):
        flatten_grads({"dW1": grad}, flat)


def test_integer_grads_are_converted_to_float64():
    flat = flatten({"W": np.zeros(3)})
    out = flatten_grads({"dW": np.array([1, 2, 3])}, flat)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])


def test_nested_grads_match_nested_params():
    params = {"layers": [{"weight": np.zeros((2, 2)), "bias": np.zeros(2)}]}
    grads = {"layers": [{"weight": np.full((2, 2), 1.0), "bias": np.full(2, 2.0)}]}
    np.testing.assert_array_equal(flatten_grads(grads, flatten(params)), [1, 1, 1, 1, 2, 2])


def test_grads_are_copied_out_of_the_users_arrays():
    flat = flatten({"W": np.zeros(2)})
    grad = np.array([1.0, 2.0])
    out = flatten_grads({"dW": grad}, flat)
    out[:] = 0.0
    np.testing.assert_array_equal(grad, [1.0, 2.0])


@given(param_trees())
def test_grads_with_the_params_structure_flatten_to_theta_order(case):
    flat = flatten(case.tree)
    grads = case.like([np.full(leaf.shape, float(k)) for k, leaf in enumerate(case.leaves)])
    expected = np.concatenate([np.full(leaf.size, float(k)) for k, leaf in enumerate(case.leaves)])
    np.testing.assert_array_equal(flatten_grads(grads, flat), expected)
