"""A deeplearning.ai-style 3-layer network with hand-written backprop, for the trust tests.

LINEAR -> ACT -> LINEAR -> ACT -> LINEAR -> SIGMOID, examples as columns: X (n_x, m),
Y (1, m), W1 (12, n_x), b1 (12, 1), W2 (5, 12), b2 (5, 1), W3 (1, 5), b3 (1, 1). The cost
is the cross-entropy averaged over m. ACT is ReLU as in the course, or tanh where a test
needs a smooth point for every parameter.

The arrays keep the dtype they are made with, so float32 parameters run a float32
forward; labels passed as float64 upcast the cost to float64, as in a notebook that
never cast its labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray
Params = dict[str, Array]

LAYER_DIMS = (4, 12, 5, 1)


def make(
    seed: int = 1, m: int = 8, dtype: Any = np.float64, dims: tuple[int, ...] = LAYER_DIMS
) -> tuple[Params, Array, Array]:
    """Seeded parameters, inputs X (n_x, m) and 0/1 labels Y (1, m), all float64 unless dtype."""
    rng = np.random.default_rng(seed)
    params: Params = {}
    for layer in range(1, len(dims)):
        scale = np.sqrt(2.0 / dims[layer - 1])
        params[f"W{layer}"] = (rng.standard_normal((dims[layer], dims[layer - 1])) * scale).astype(
            dtype
        )
        params[f"b{layer}"] = (0.1 * rng.standard_normal((dims[layer], 1))).astype(dtype)
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    Y = (rng.random((1, m)) < 0.5).astype(dtype)
    return params, X, Y


def _act(Z: Array, act: str) -> Array:
    return np.tanh(Z) if act == "tanh" else np.maximum(Z, 0)


def _act_backward(dA: Array, Z: Array, A: Array, act: str) -> Array:
    return dA * (1 - A**2) if act == "tanh" else dA * (Z > 0)


def forward(params: Params, X: Array, act: str = "relu") -> tuple[Array, dict[str, Array]]:
    """Return A3 (1, m) and the cache backward needs."""
    Z1 = params["W1"] @ X + params["b1"]
    A1 = _act(Z1, act)
    Z2 = params["W2"] @ A1 + params["b2"]
    A2 = _act(Z2, act)
    Z3 = params["W3"] @ A2 + params["b3"]
    A3 = 1 / (1 + np.exp(-Z3))
    return A3, {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2, "A3": A3}


def cost(params: Params, X: Array, Y: Array, act: str = "relu") -> float:
    """Mean cross-entropy, -1/m * sum(Y log A3 + (1 - Y) log(1 - A3))."""
    A3, _ = forward(params, X, act)
    m = X.shape[1]
    return float(-np.sum(Y * np.log(A3) + (1 - Y) * np.log(1 - A3)) / m)


def backward(params: Params, X: Array, Y: Array, act: str = "relu") -> Params:
    """Return dW1, db1, ..., dW3, db3 in the parameters' dtype."""
    _, c = forward(params, X, act)
    m = X.shape[1]
    Y = Y.astype(X.dtype)  # the gradient is computed in the parameters' precision
    dZ3 = c["A3"] - Y
    dW3 = dZ3 @ c["A2"].T / m
    db3 = np.sum(dZ3, axis=1, keepdims=True) / m
    dZ2 = _act_backward(params["W3"].T @ dZ3, c["Z2"], c["A2"], act)
    dW2 = dZ2 @ c["A1"].T / m
    db2 = np.sum(dZ2, axis=1, keepdims=True) / m
    dZ1 = _act_backward(params["W2"].T @ dZ2, c["Z1"], c["A1"], act)
    dW1 = dZ1 @ X.T / m
    db1 = np.sum(dZ1, axis=1, keepdims=True) / m
    grads = {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "dW3": dW3, "db3": db3}
    return {name: g.astype(X.dtype) for name, g in grads.items()}
