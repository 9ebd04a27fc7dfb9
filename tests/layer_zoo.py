"""A catalogue of from-scratch NumPy layers, each with a correct backward and broken ones.

Every layer is written CS231n-style: ``forward(params, data) -> (out, cache)`` and
``backward(dout, cache) -> grads`` (a dict keyed like ``params``). ``params`` holds
the float arrays that are checked; ``data`` holds what is not differentiated
(labels, token indices, strides, the regularization strength).

Losses (softmax, SVM, the MLP classifier) are written the same way: their forward
returns the scalar loss and their backward takes ``dloss`` (1.0 for a plain check).

The broken backward functions are real line-level mistakes, each a copy of the
correct one with one line changed (marked ``# BUG``): a missing 1/m, a transposed
product, an ``=`` where ``+=`` belongs, a forgotten term.
"""

# The broken variants keep the correct function's unpacking of the cache, unused names
# included, so that each reads as the correct one with one line changed.
# ruff: noqa: RUF059

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import gradcheck

Array = np.ndarray
Params = dict[str, Array]
Data = dict[str, Any]
Forward = Callable[[Params, Data], tuple[Any, Any]]
Backward = Callable[[Any, Any], Params]
Make = Callable[[np.random.Generator], tuple[Params, Data]]
Transform = Callable[[Params, Data], tuple[Params, Data]]

# Mistake kinds gradcheck is expected to name; anything else is "localized".
CLASSIFIABLE = ("scale", "sign", "transpose", "zero", "missing_l2")


def _dyadic(rng: np.random.Generator, shape: tuple[int, ...], scale: int = 8) -> Array:
    """Random multiples of 1/scale in [-1, 1]: sums and products of them are exact."""
    return rng.integers(-scale, scale + 1, size=shape) / scale


def _softmax(scores: Array, axis: int = -1) -> Array:
    shifted = scores - scores.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(scores: Array) -> Array:
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def _one_hot(y: Array, classes: int, dtype: Any) -> Array:
    out = np.zeros((len(y), classes), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out


# === 1. MLP classifier: affine - tanh/relu - affine - softmax, mean loss + L2 ==========
#
# Rows are examples: X (m, D), W1 (D, H), W2 (H, C) with H == C so that W2 is square.
# loss = mean cross-entropy + 0.5 * reg * (||W1||^2 + ||W2||^2).


def mlp_forward(p: Params, d: Data) -> tuple[Any, Any]:
    X, y, reg, act = d["X"], d["y"], d["reg"], d["act"]
    z1 = X @ p["W1"] + p["b1"]
    a1 = np.tanh(z1) if act == "tanh" else np.maximum(z1, 0)
    scores = a1 @ p["W2"] + p["b2"]
    log_probs = _log_softmax(scores)
    m = X.shape[0]
    data_loss = -np.sum(log_probs[np.arange(m), y]) / m
    loss = data_loss + 0.5 * reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
    return loss, (X, y, reg, act, z1, a1, np.exp(log_probs), p)


def mlp_backward(dloss: Any, cache: Any) -> Params:
    X, y, reg, act, z1, a1, probs, p = cache
    m = X.shape[0]
    dz2 = dloss * (probs - _one_hot(y, probs.shape[1], probs.dtype))
    dW2 = a1.T @ dz2 / m + dloss * reg * p["W2"]
    db2 = np.sum(dz2, axis=0) / m
    da1 = dz2 @ p["W2"].T
    dz1 = da1 * (1 - a1**2) if act == "tanh" else da1 * (z1 > 0)
    dW1 = X.T @ dz1 / m + dloss * reg * p["W1"]
    db1 = np.sum(dz1, axis=0) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def mlp_backward_db1_no_mean(dloss: Any, cache: Any) -> Params:
    X, y, reg, act, z1, a1, probs, p = cache
    m = X.shape[0]
    dz2 = dloss * (probs - _one_hot(y, probs.shape[1], probs.dtype))
    dW2 = a1.T @ dz2 / m + dloss * reg * p["W2"]
    db2 = np.sum(dz2, axis=0) / m
    da1 = dz2 @ p["W2"].T
    dz1 = da1 * (1 - a1**2)
    dW1 = X.T @ dz1 / m + dloss * reg * p["W1"]
    db1 = np.sum(dz1, axis=0)  # BUG: the 1/m is missing
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def mlp_backward_dW2_transposed(dloss: Any, cache: Any) -> Params:
    X, y, reg, act, z1, a1, probs, p = cache
    m = X.shape[0]
    dz2 = dloss * (probs - _one_hot(y, probs.shape[1], probs.dtype))
    dW2 = dz2.T @ a1 / m + dloss * reg * p["W2"]  # BUG: dZ2.T @ A1 where A1.T @ dZ2 belongs
    db2 = np.sum(dz2, axis=0) / m
    da1 = dz2 @ p["W2"].T
    dz1 = da1 * (1 - a1**2)
    dW1 = X.T @ dz1 / m + dloss * reg * p["W1"]
    db1 = np.sum(dz1, axis=0) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def mlp_backward_dW1_no_l2(dloss: Any, cache: Any) -> Params:
    X, y, reg, act, z1, a1, probs, p = cache
    m = X.shape[0]
    dz2 = dloss * (probs - _one_hot(y, probs.shape[1], probs.dtype))
    dW2 = a1.T @ dz2 / m + dloss * reg * p["W2"]
    db2 = np.sum(dz2, axis=0) / m
    da1 = dz2 @ p["W2"].T
    dz1 = da1 * (1 - a1**2)
    dW1 = X.T @ dz1 / m  # BUG: the L2 term reg * W1 is missing
    db1 = np.sum(dz1, axis=0) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def mlp_backward_dW2_l2_twice(dloss: Any, cache: Any) -> Params:
    X, y, reg, act, z1, a1, probs, p = cache
    m = X.shape[0]
    dz2 = dloss * (probs - _one_hot(y, probs.shape[1], probs.dtype))
    dW2 = a1.T @ dz2 / m + dloss * reg * p["W2"]
    db2 = np.sum(dz2, axis=0) / m
    da1 = dz2 @ p["W2"].T
    dz1 = da1 * (1 - a1**2)
    dW1 = X.T @ dz1 / m + dloss * reg * p["W1"]
    db1 = np.sum(dz1, axis=0) / m
    # regularization
    dW2 += dloss * reg * p["W2"]  # BUG: the L2 gradient of W2 was already included above
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def mlp_backward_db2_sign(dloss: Any, cache: Any) -> Params:
    X, y, reg, act, z1, a1, probs, p = cache
    m = X.shape[0]
    dz2 = dloss * (probs - _one_hot(y, probs.shape[1], probs.dtype))
    dW2 = a1.T @ dz2 / m + dloss * reg * p["W2"]
    db2 = np.sum(_one_hot(y, probs.shape[1], probs.dtype) - probs, axis=0) / m  # BUG: Y - P
    da1 = dz2 @ p["W2"].T
    dz1 = da1 * (1 - a1**2)
    dW1 = X.T @ dz1 / m + dloss * reg * p["W1"]
    db1 = np.sum(dz1, axis=0) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def mlp_backward_dW1_never_computed(dloss: Any, cache: Any) -> Params:
    X, y, reg, act, z1, a1, probs, p = cache
    m = X.shape[0]
    grads = {name: np.zeros_like(value) for name, value in p.items()}
    dz2 = dloss * (probs - _one_hot(y, probs.shape[1], probs.dtype))
    grads["W2"] = a1.T @ dz2 / m + dloss * reg * p["W2"]
    grads["b2"] = np.sum(dz2, axis=0) / m
    da1 = dz2 @ p["W2"].T
    dz1 = da1 * (1 - a1**2)
    # BUG: the line grads["W1"] = X.T @ dz1 / m + reg * W1 was never written
    grads["b1"] = np.sum(dz1, axis=0) / m
    return grads


def mlp_backward_tanh_derivative(dloss: Any, cache: Any) -> Params:
    X, y, reg, act, z1, a1, probs, p = cache
    m = X.shape[0]
    dz2 = dloss * (probs - _one_hot(y, probs.shape[1], probs.dtype))
    dW2 = a1.T @ dz2 / m + dloss * reg * p["W2"]
    db2 = np.sum(dz2, axis=0) / m
    da1 = dz2 @ p["W2"].T
    dz1 = da1 * (1 - a1)  # BUG: tanh' = 1 - a**2, not 1 - a
    dW1 = X.T @ dz1 / m + dloss * reg * p["W1"]
    db1 = np.sum(dz1, axis=0) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def mlp_make(rng: np.random.Generator) -> tuple[Params, Data]:
    m, D, H, C = 5, 3, 4, 4
    params = {
        "W1": rng.standard_normal((D, H)) * 0.8,
        "b1": rng.standard_normal(H) * 0.1,
        "W2": rng.standard_normal((H, C)) * 0.8,
        "b2": rng.standard_normal(C) * 0.1,
    }
    data = {
        "X": rng.standard_normal((m, D)),
        "y": rng.integers(0, C, size=m),
        "reg": 0.1,
        "act": "tanh",
    }
    return params, data


def mlp_large_no_l2(p: Params, d: Data) -> tuple[Params, Data]:
    """As `mlp_large`, without weight decay: the loss is O(1), its intermediate values ~ 1e3."""
    p, d = mlp_large(p, d)
    return p, {**d, "reg": 0.0}


def mlp_large(p: Params, d: Data) -> tuple[Params, Data]:
    """W1 ~ 1e3 (the inputs ~ 1e-3 keep tanh unsaturated) and b2 ~ 1e3 (softmax is shift-free)."""
    p = {**p, "W1": p["W1"] * 1e3, "b2": p["b2"] + 1e3}
    return p, {**d, "X": d["X"] * 1e-3}


def mlp_relu_kinks(rng: np.random.Generator, units: int = 2) -> tuple[Params, Data]:
    """ReLU MLP whose first ``units`` hidden units sit exactly at 0 for one example each.

    Small integers and multiples of 1/8 make ``X @ W1 + b1`` exact, so the pre-activation
    is exactly 0.0 there and every step crosses the kink.
    """
    m, D, H, C = 5, 3, 4, 4
    X = rng.integers(-3, 4, size=(m, D)).astype(float)
    W1 = _dyadic(rng, (D, H))
    b1 = _dyadic(rng, (H,))
    for j in range(units):
        X[j % m, X[j % m] == 0] = 1.0  # every W1[:, j] then moves the kinked pre-activation
        W1[W1[:, j] == 0, j] = 0.5
        b1[j] = -(X[j % m] @ W1[:, j])
    params = {"W1": W1, "b1": b1, "W2": rng.standard_normal((H, C)), "b2": rng.standard_normal(C)}
    data = {"X": X, "y": rng.integers(0, C, size=m), "reg": 0.1, "act": "relu"}
    z1 = X @ W1 + b1
    assert all(z1[j % m, j] == 0.0 for j in range(units)), "the kink construction is not exact"
    return params, data


def mlp_relu_all_kinks(rng: np.random.Generator) -> tuple[Params, Data]:
    """Every hidden unit at a ReLU kink for one example: every W1 and b1 element is a kink."""
    return mlp_relu_kinks(rng, units=4)


# === 2. vanilla RNN unrolled over T time steps (BPTT) ===================================
#
# h_t = tanh(x_t Wx + h_{t-1} Wh + b); the layer's output is every h_t, shape (N, T, H).


def rnn_forward(p: Params, d: Data) -> tuple[Any, Any]:
    x, h0, Wx, Wh, b = p["x"], p["h0"], p["Wx"], p["Wh"], p["b"]
    N, T, _ = x.shape
    hs = np.zeros((N, T, h0.shape[1]), dtype=np.result_type(x, Wx))
    prev = h0
    for t in range(T):
        prev = np.tanh(x[:, t] @ Wx + prev @ Wh + b)
        hs[:, t] = prev
    return hs, (p, hs)


def rnn_backward(dout: Any, cache: Any) -> Params:
    p, hs = cache
    x, h0, Wx, Wh = p["x"], p["h0"], p["Wx"], p["Wh"]
    T = x.shape[1]
    dx, dWx, dWh = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh)
    db, dprev = np.zeros_like(p["b"]), np.zeros_like(h0)
    for t in reversed(range(T)):
        da = (dout[:, t] + dprev) * (1 - hs[:, t] ** 2)
        prev = hs[:, t - 1] if t > 0 else h0
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += prev.T @ da
        db += da.sum(axis=0)
        dprev = da @ Wh.T
    return {"x": dx, "h0": dprev, "Wx": dWx, "Wh": dWh, "b": db}


def rnn_backward_dWh_not_accumulated(dout: Any, cache: Any) -> Params:
    p, hs = cache
    x, h0, Wx, Wh = p["x"], p["h0"], p["Wx"], p["Wh"]
    T = x.shape[1]
    dx, dWx, dWh = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh)
    db, dprev = np.zeros_like(p["b"]), np.zeros_like(h0)
    for t in reversed(range(T)):
        da = (dout[:, t] + dprev) * (1 - hs[:, t] ** 2)
        prev = hs[:, t - 1] if t > 0 else h0
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh = prev.T @ da  # BUG: = where += belongs: only the first time step survives
        db += da.sum(axis=0)
        dprev = da @ Wh.T
    return {"x": dx, "h0": dprev, "Wx": dWx, "Wh": dWh, "b": db}


def rnn_backward_dWh_transposed(dout: Any, cache: Any) -> Params:
    p, hs = cache
    x, h0, Wx, Wh = p["x"], p["h0"], p["Wx"], p["Wh"]
    T = x.shape[1]
    dx, dWx, dWh = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh)
    db, dprev = np.zeros_like(p["b"]), np.zeros_like(h0)
    for t in reversed(range(T)):
        da = (dout[:, t] + dprev) * (1 - hs[:, t] ** 2)
        prev = hs[:, t - 1] if t > 0 else h0
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += da.T @ prev  # BUG: dA.T @ h_prev where h_prev.T @ dA belongs
        db += da.sum(axis=0)
        dprev = da @ Wh.T
    return {"x": dx, "h0": dprev, "Wx": dWx, "Wh": dWh, "b": db}


def rnn_backward_dWx_averaged_over_time(dout: Any, cache: Any) -> Params:
    p, hs = cache
    x, h0, Wx, Wh = p["x"], p["h0"], p["Wx"], p["Wh"]
    T = x.shape[1]
    dx, dWx, dWh = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh)
    db, dprev = np.zeros_like(p["b"]), np.zeros_like(h0)
    for t in reversed(range(T)):
        da = (dout[:, t] + dprev) * (1 - hs[:, t] ** 2)
        prev = hs[:, t - 1] if t > 0 else h0
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += prev.T @ da
        db += da.sum(axis=0)
        dprev = da @ Wh.T
    dWx /= T  # BUG: the shared weight's gradient is a sum over time steps, not a mean
    return {"x": dx, "h0": dprev, "Wx": dWx, "Wh": dWh, "b": db}


def rnn_backward_no_carry(dout: Any, cache: Any) -> Params:
    p, hs = cache
    x, h0, Wx, Wh = p["x"], p["h0"], p["Wx"], p["Wh"]
    T = x.shape[1]
    dx, dWx, dWh = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh)
    db, dprev = np.zeros_like(p["b"]), np.zeros_like(h0)
    for t in reversed(range(T)):
        da = dout[:, t] * (1 - hs[:, t] ** 2)  # BUG: dh from step t+1 (dprev) not added
        prev = hs[:, t - 1] if t > 0 else h0
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += prev.T @ da
        db += da.sum(axis=0)
        dprev = da @ Wh.T
    return {"x": dx, "h0": dprev, "Wx": dWx, "Wh": dWh, "b": db}


def rnn_make(rng: np.random.Generator) -> tuple[Params, Data]:
    N, T, D, H = 2, 4, 3, 4
    return {
        "x": rng.standard_normal((N, T, D)),
        "h0": rng.standard_normal((N, H)) * 0.5,
        "Wx": rng.standard_normal((D, H)) * 0.5,
        "Wh": rng.standard_normal((H, H)) * 0.5,
        "b": rng.standard_normal(H) * 0.1,
    }, {}


def rnn_large(p: Params, d: Data) -> tuple[Params, Data]:
    return {**p, "x": p["x"] * 1e3, "Wx": p["Wx"] * 1e-3}, d


# === 3. batch normalization, train mode ==================================================


BN_EPS = 1e-5


def batchnorm_forward(p: Params, d: Data) -> tuple[Any, Any]:
    x, gamma, beta = p["x"], p["gamma"], p["beta"]
    mu = x.mean(axis=0)
    xmu = x - mu
    var = np.mean(xmu**2, axis=0)
    std = np.sqrt(var + BN_EPS)
    xhat = xmu / std
    return gamma * xhat + beta, (xhat, std, gamma)


def batchnorm_backward(dout: Any, cache: Any) -> Params:
    xhat, std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * np.mean(dxhat * xhat, axis=0)) / std
    return {"x": dx, "gamma": dgamma, "beta": dbeta}


def batchnorm_backward_no_mean_var_terms(dout: Any, cache: Any) -> Params:
    xhat, std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    dx = dxhat / std  # BUG: treats mean and variance as constants
    return {"x": dx, "gamma": dgamma, "beta": dbeta}


def batchnorm_backward_no_var_term(dout: Any, cache: Any) -> Params:
    xhat, std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0)) / std  # BUG: the path through the variance is missing
    return {"x": dx, "gamma": dgamma, "beta": dbeta}


def batchnorm_backward_dgamma_mean(dout: Any, cache: Any) -> Params:
    xhat, std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = np.mean(dout * xhat, axis=0)  # BUG: mean over the batch where a sum belongs
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * np.mean(dxhat * xhat, axis=0)) / std
    return {"x": dx, "gamma": dgamma, "beta": dbeta}


def batchnorm_backward_dbeta_zero(dout: Any, cache: Any) -> Params:
    xhat, std, gamma = cache
    dbeta = np.zeros_like(gamma)  # BUG: placeholder never filled in
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * np.mean(dxhat * xhat, axis=0)) / std
    return {"x": dx, "gamma": dgamma, "beta": dbeta}


def batchnorm_make(rng: np.random.Generator) -> tuple[Params, Data]:
    N, D = 5, 3
    return {
        "x": rng.standard_normal((N, D)) * 2 + 1,
        "gamma": 1 + 0.3 * rng.standard_normal(D),
        "beta": 0.3 * rng.standard_normal(D),
    }, {}


def norm_large(p: Params, d: Data) -> tuple[Params, Data]:
    """x ~ 1e3 in mean and spread; gamma, beta ~ 1e3 (outputs ~ 1e3)."""
    return {"x": 1e3 * (1 + p["x"]), "gamma": 1e3 * p["gamma"], "beta": 1e3 + p["beta"]}, d


# === 4. layer normalization ==============================================================


def layernorm_forward(p: Params, d: Data) -> tuple[Any, Any]:
    x, gamma, beta = p["x"], p["gamma"], p["beta"]
    mu = x.mean(axis=1, keepdims=True)
    xmu = x - mu
    var = np.mean(xmu**2, axis=1, keepdims=True)
    std = np.sqrt(var + BN_EPS)
    xhat = xmu / std
    return gamma * xhat + beta, (xhat, std, gamma)


def layernorm_backward(dout: Any, cache: Any) -> Params:
    xhat, std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    mean_dxhat = dxhat.mean(axis=1, keepdims=True)
    mean_dxhat_xhat = np.mean(dxhat * xhat, axis=1, keepdims=True)
    dx = (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) / std
    return {"x": dx, "gamma": dgamma, "beta": dbeta}


def layernorm_backward_no_mean_var_terms(dout: Any, cache: Any) -> Params:
    xhat, std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    dx = dxhat / std  # BUG: treats the per-example mean and variance as constants
    return {"x": dx, "gamma": dgamma, "beta": dbeta}


def layernorm_backward_batch_axis(dout: Any, cache: Any) -> Params:
    xhat, std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    mean_dxhat = dxhat.mean(axis=0, keepdims=True)  # BUG: copied from batchnorm (axis 0)
    mean_dxhat_xhat = np.mean(dxhat * xhat, axis=0, keepdims=True)  # BUG: likewise
    dx = (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) / std
    return {"x": dx, "gamma": dgamma, "beta": dbeta}


def layernorm_backward_dbeta_mean(dout: Any, cache: Any) -> Params:
    xhat, std, gamma = cache
    dbeta = dout.mean(axis=0)  # BUG: mean over the batch where a sum belongs
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    mean_dxhat = dxhat.mean(axis=1, keepdims=True)
    mean_dxhat_xhat = np.mean(dxhat * xhat, axis=1, keepdims=True)
    dx = (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) / std
    return {"x": dx, "gamma": dgamma, "beta": dbeta}


def layernorm_make(rng: np.random.Generator) -> tuple[Params, Data]:
    N, D = 3, 5
    return {
        "x": rng.standard_normal((N, D)) * 2 + 1,
        "gamma": 1 + 0.3 * rng.standard_normal(D),
        "beta": 0.3 * rng.standard_normal(D),
    }, {}


# === 5. 2-D convolution, naive, with stride and zero padding ============================


def _conv_geometry(x: Array, w: Array, d: Data) -> tuple[int, int, int, int]:
    stride, pad = d["stride"], d["pad"]
    H, W = x.shape[2:]
    HH, WW = w.shape[2:]
    return stride, pad, 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride


def conv_forward(p: Params, d: Data) -> tuple[Any, Any]:
    x, w, b = p["x"], p["w"], p["b"]
    stride, pad, H_out, W_out = _conv_geometry(x, w, d)
    HH, WW = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((x.shape[0], w.shape[0], H_out, W_out), dtype=np.result_type(x, w))
    for i in range(H_out):
        for j in range(W_out):
            window = x_pad[:, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, d)


def conv_backward(dout: Any, cache: Any) -> Params:
    x, w, d = cache
    stride, pad, H_out, W_out = _conv_geometry(x, w, d)
    H, W = x.shape[2:]
    HH, WW = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(x, dout))
    dw = np.zeros(w.shape, dtype=np.result_type(w, dout))
    db = dout.sum(axis=(0, 2, 3))
    for i in range(H_out):
        for j in range(W_out):
            rows = slice(i * stride, i * stride + HH)
            cols = slice(j * stride, j * stride + WW)
            g = dout[:, :, i, j]  # (N, F)
            dw += np.tensordot(g, x_pad[:, :, rows, cols], axes=([0], [0]))
            dx_pad[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    return {"x": dx, "w": dw, "b": db}


def conv_backward_unpad_off_by_one(dout: Any, cache: Any) -> Params:
    x, w, d = cache
    stride, pad, H_out, W_out = _conv_geometry(x, w, d)
    H, W = x.shape[2:]
    HH, WW = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(x, dout))
    dw = np.zeros(w.shape, dtype=np.result_type(w, dout))
    db = dout.sum(axis=(0, 2, 3))
    for i in range(H_out):
        for j in range(W_out):
            rows = slice(i * stride, i * stride + HH)
            cols = slice(j * stride, j * stride + WW)
            g = dout[:, :, i, j]
            dw += np.tensordot(g, x_pad[:, :, rows, cols], axes=([0], [0]))
            dx_pad[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    dx = dx_pad[:, :, pad + 1 : pad + 1 + H, pad + 1 : pad + 1 + W]  # BUG: off by one
    return {"x": dx, "w": dw, "b": db}


def conv_backward_loop_off_by_one(dout: Any, cache: Any) -> Params:
    x, w, d = cache
    stride, pad, H_out, W_out = _conv_geometry(x, w, d)
    H, W = x.shape[2:]
    HH, WW = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(x, dout))
    dw = np.zeros(w.shape, dtype=np.result_type(w, dout))
    db = dout.sum(axis=(0, 2, 3))
    for i in range(H_out - 1):  # BUG: off by one, the last row of outputs is skipped
        for j in range(W_out):
            rows = slice(i * stride, i * stride + HH)
            cols = slice(j * stride, j * stride + WW)
            g = dout[:, :, i, j]
            dw += np.tensordot(g, x_pad[:, :, rows, cols], axes=([0], [0]))
            dx_pad[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    return {"x": dx, "w": dw, "b": db}


def conv_backward_flipped_kernel(dout: Any, cache: Any) -> Params:
    x, w, d = cache
    stride, pad, H_out, W_out = _conv_geometry(x, w, d)
    H, W = x.shape[2:]
    HH, WW = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(x, dout))
    dw = np.zeros(w.shape, dtype=np.result_type(w, dout))
    db = dout.sum(axis=(0, 2, 3))
    w_flipped = w[:, :, ::-1, ::-1]  # BUG: "the backward of a convolution flips the kernel"
    for i in range(H_out):
        for j in range(W_out):
            rows = slice(i * stride, i * stride + HH)
            cols = slice(j * stride, j * stride + WW)
            g = dout[:, :, i, j]
            dw += np.tensordot(g, x_pad[:, :, rows, cols], axes=([0], [0]))
            dx_pad[:, :, rows, cols] += np.tensordot(g, w_flipped, axes=([1], [0]))
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    return {"x": dx, "w": dw, "b": db}


def conv_backward_db_mean(dout: Any, cache: Any) -> Params:
    x, w, d = cache
    stride, pad, H_out, W_out = _conv_geometry(x, w, d)
    H, W = x.shape[2:]
    HH, WW = w.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(x, dout))
    dw = np.zeros(w.shape, dtype=np.result_type(w, dout))
    db = dout.mean(axis=0).sum(axis=(1, 2))  # BUG: mean over the batch where a sum belongs
    for i in range(H_out):
        for j in range(W_out):
            rows = slice(i * stride, i * stride + HH)
            cols = slice(j * stride, j * stride + WW)
            g = dout[:, :, i, j]
            dw += np.tensordot(g, x_pad[:, :, rows, cols], axes=([0], [0]))
            dx_pad[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    return {"x": dx, "w": dw, "b": db}


def conv_make(rng: np.random.Generator) -> tuple[Params, Data]:
    N, C, H, W, F, K = 3, 2, 5, 5, 2, 3
    return {
        "x": rng.standard_normal((N, C, H, W)),
        "w": rng.standard_normal((F, C, K, K)) * 0.5,
        "b": rng.standard_normal(F) * 0.1,
    }, {"stride": 2, "pad": 1}


def conv_large(p: Params, d: Data) -> tuple[Params, Data]:
    return {"x": p["x"] * 1e3, "w": p["w"], "b": p["b"] + 1e3}, d


# === 6. max pooling ======================================================================


def _windows(x: Array, d: Data) -> tuple[int, int, int, int]:
    ph, pw, stride = d["ph"], d["pw"], d["stride"]
    H, W = x.shape[2:]
    return ph, pw, 1 + (H - ph) // stride, 1 + (W - pw) // stride


def maxpool_forward(p: Params, d: Data) -> tuple[Any, Any]:
    x, s = p["x"], d["stride"]
    ph, pw, H_out, W_out = _windows(x, d)
    out = np.zeros((*x.shape[:2], H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            out[:, :, i, j] = x[:, :, i * s : i * s + ph, j * s : j * s + pw].max(axis=(2, 3))
    return out, (x, d)


def maxpool_backward(dout: Any, cache: Any) -> Params:
    x, d = cache
    s = d["stride"]
    ph, pw, H_out, W_out = _windows(x, d)
    N, C = x.shape[:2]
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * s : i * s + ph, j * s : j * s + pw].reshape(N, C, -1)
            k = window.argmax(axis=2)  # the first maximum gets the gradient (a subgradient)
            r, q = np.unravel_index(k, (ph, pw))
            dx[n, c, i * s + r, j * s + q] += dout[:, :, i, j]
    return {"x": dx}


def maxpool_backward_row_col_swapped(dout: Any, cache: Any) -> Params:
    x, d = cache
    s = d["stride"]
    ph, pw, H_out, W_out = _windows(x, d)
    N, C = x.shape[:2]
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * s : i * s + ph, j * s : j * s + pw].reshape(N, C, -1)
            k = window.argmax(axis=2)
            r, q = k % pw, k // pw  # BUG: row and column of the argmax swapped
            dx[n, c, i * s + r, j * s + q] += dout[:, :, i, j]
    return {"x": dx}


def maxpool_backward_average(dout: Any, cache: Any) -> Params:
    x, d = cache
    s = d["stride"]
    ph, pw, H_out, W_out = _windows(x, d)
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))
    for i in range(H_out):
        for j in range(W_out):
            # BUG: spread over the window (average pooling's backward), not routed to the max
            dx[:, :, i * s : i * s + ph, j * s : j * s + pw] += dout[:, :, i, j][
                :, :, None, None
            ] / (ph * pw)
    return {"x": dx}


def maxpool_backward_last_window_only(dout: Any, cache: Any) -> Params:
    x, d = cache
    s = d["stride"]
    ph, pw, H_out, W_out = _windows(x, d)
    N, C = x.shape[:2]
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * s : i * s + ph, j * s : j * s + pw].reshape(N, C, -1)
            k = window.argmax(axis=2)
            r, q = np.unravel_index(k, (ph, pw))
            dx[n, c, i * s + r, j * s + q] = dout[:, :, i, j]  # BUG: = where += belongs
    return {"x": dx}


def maxpool_make(rng: np.random.Generator) -> tuple[Params, Data]:
    """3x3 windows with stride 2 overlap; the centre, in all four windows, is their max."""
    x = rng.standard_normal((2, 2, 5, 5))
    x[:, :, 2, 2] = 5.0
    return {"x": x}, {"ph": 3, "pw": 3, "stride": 2}


def maxpool_ties(rng: np.random.Generator) -> tuple[Params, Data]:
    """2x2 windows, stride 2, small integers: most windows have a tied maximum."""
    x = rng.integers(0, 3, size=(2, 2, 4, 4)).astype(float)
    return {"x": x}, {"ph": 2, "pw": 2, "stride": 2}


def maxpool_ties_overlapping(rng: np.random.Generator) -> tuple[Params, Data]:
    """3x3 windows, stride 2 (they overlap), small integers: ties across two windows too.

    An element tied for the max of two windows can be the first maximum of one and not
    of the other; the first-max rule then gives it one window's upstream gradient: the
    gradient at a point next to the tie, as every framework computes it.
    """
    x = rng.integers(0, 3, size=(2, 2, 5, 5)).astype(float)
    return {"x": x}, {"ph": 3, "pw": 3, "stride": 2}


def maxpool_large(p: Params, d: Data) -> tuple[Params, Data]:
    return {"x": p["x"] * 1e3}, d


# === 7. softmax cross-entropy loss on scores =============================================


def softmax_loss_forward(p: Params, d: Data) -> tuple[Any, Any]:
    x, y = p["x"], d["y"]
    log_probs = _log_softmax(x)
    m = x.shape[0]
    return -np.sum(log_probs[np.arange(m), y]) / m, (np.exp(log_probs), y)


def softmax_loss_backward(dloss: Any, cache: Any) -> Params:
    probs, y = cache
    m = probs.shape[0]
    dx = probs.copy()
    dx[np.arange(m), y] -= 1
    return {"x": dloss * dx / m}


def softmax_loss_backward_no_one_hot(dloss: Any, cache: Any) -> Params:
    probs, y = cache
    m = probs.shape[0]
    dx = probs.copy()  # BUG: the one-hot of the labels is never subtracted
    return {"x": dloss * dx / m}


def softmax_loss_backward_no_mean(dloss: Any, cache: Any) -> Params:
    probs, y = cache
    dx = probs.copy()
    dx[np.arange(probs.shape[0]), y] -= 1
    return {"x": dloss * dx}  # BUG: the 1/m of the mean loss is missing


def softmax_loss_backward_sign(dloss: Any, cache: Any) -> Params:
    probs, y = cache
    m = probs.shape[0]
    dx = -probs  # BUG: Y - P where P - Y belongs
    dx[np.arange(m), y] += 1
    return {"x": dloss * dx / m}


def softmax_make(rng: np.random.Generator) -> tuple[Params, Data]:
    m, C = 6, 5
    return {"x": rng.standard_normal((m, C))}, {"y": rng.integers(0, C, size=m)}


def softmax_large(p: Params, d: Data) -> tuple[Params, Data]:
    """Scores ~ 1e3 (a shift per example: the probabilities are the same)."""
    return {"x": p["x"] + 1e3 * np.arange(1, p["x"].shape[0] + 1)[:, None]}, d


# === 8. multiclass SVM (hinge) classifier with L2 ========================================
#
# scores = X W + b, loss = mean_i sum_{j != y_i} max(0, s_ij - s_iy + 1) + reg ||W||^2.
# D == C so that W is square.


def svm_forward(p: Params, d: Data) -> tuple[Any, Any]:
    X, y, reg = d["X"], d["y"], d["reg"]
    m = X.shape[0]
    scores = X @ p["W"] + p["b"]
    correct = scores[np.arange(m), y][:, None]
    margins = np.maximum(0, scores - correct + 1)
    margins[np.arange(m), y] = 0
    loss = np.sum(margins) / m + reg * np.sum(p["W"] * p["W"])
    return loss, (X, y, reg, margins, p["W"])


def _svm_dscores(margins: Array, y: Array) -> Array:
    positive = (margins > 0).astype(margins.dtype)
    positive[np.arange(len(y)), y] = -positive.sum(axis=1)
    return positive


def svm_backward(dloss: Any, cache: Any) -> Params:
    X, y, reg, margins, W = cache
    m = X.shape[0]
    dscores = dloss * _svm_dscores(margins, y) / m
    return {"W": X.T @ dscores + dloss * 2 * reg * W, "b": dscores.sum(axis=0)}


def svm_backward_no_l2(dloss: Any, cache: Any) -> Params:
    X, y, reg, margins, W = cache
    m = X.shape[0]
    dscores = dloss * _svm_dscores(margins, y) / m
    return {"W": X.T @ dscores, "b": dscores.sum(axis=0)}  # BUG: no 2 * reg * W


def svm_backward_dW_transposed(dloss: Any, cache: Any) -> Params:
    X, y, reg, margins, W = cache
    m = X.shape[0]
    dscores = dloss * _svm_dscores(margins, y) / m
    dW = dscores.T @ X + dloss * 2 * reg * W  # BUG: dS.T @ X where X.T @ dS belongs
    return {"W": dW, "b": dscores.sum(axis=0)}


def svm_backward_dW_no_mean(dloss: Any, cache: Any) -> Params:
    X, y, reg, margins, W = cache
    m = X.shape[0]
    dscores = dloss * _svm_dscores(margins, y)
    dW = X.T @ dscores + dloss * 2 * reg * W  # BUG: the 1/m of the data loss is missing
    return {"W": dW, "b": dscores.sum(axis=0) / m}


def svm_backward_correct_class_once(dloss: Any, cache: Any) -> Params:
    X, y, reg, margins, W = cache
    m = X.shape[0]
    positive = (margins > 0).astype(margins.dtype)
    positive[np.arange(m), y] = -1  # BUG: -1 once, not once per violated margin
    dscores = dloss * positive / m
    return {"W": X.T @ dscores + dloss * 2 * reg * W, "b": dscores.sum(axis=0)}


def svm_make(rng: np.random.Generator) -> tuple[Params, Data]:
    m, D, C = 6, 4, 4
    params = {"W": rng.standard_normal((D, C)), "b": rng.standard_normal(C) * 0.1}
    y = rng.integers(0, C, size=m)
    return params, {"X": rng.standard_normal((m, D)), "y": y, "reg": 0.05}


def svm_large_no_l2(p: Params, d: Data) -> tuple[Params, Data]:
    """As `svm_large`, without weight decay: the loss is O(1), the scores ~ 1e3."""
    p, d = svm_large(p, d)
    return p, {**d, "reg": 0.0}


def svm_large(p: Params, d: Data) -> tuple[Params, Data]:
    """W ~ 1e3 with inputs ~ 1e-3, b ~ 1e3 (the same for all classes: margins unchanged)."""
    p = {"W": p["W"] * 1e3, "b": p["b"] + 1e3}
    return p, {**d, "X": d["X"] * 1e-3}


def svm_corners(rng: np.random.Generator) -> tuple[Params, Data]:
    """Exact arithmetic puts one margin of each example exactly at the hinge's corner."""
    m, D, C = 4, 4, 4
    X = rng.integers(-3, 4, size=(m, D)).astype(float)
    X[X == 0] = 1.0
    W = _dyadic(rng, (D, C))
    y = np.arange(m) % C
    base = X @ W  # exact
    b = np.zeros(C)
    b[y[0]] = 0.5
    # example 0: class j0 = y0 + 1 has margin exactly 0; the bias fixes it exactly
    j0 = (y[0] + 1) % C
    b[j0] = base[0, y[0]] + b[y[0]] - 1 - base[0, j0]
    params = {"W": W, "b": b}
    data = {"X": X, "y": y, "reg": 0.05}
    scores = X @ W + b
    assert scores[0, j0] - scores[0, y[0]] + 1 == 0.0, "the corner construction is not exact"
    return params, data


# === 9. embedding lookup =================================================================


def embedding_forward(p: Params, d: Data) -> tuple[Any, Any]:
    return p["W"][d["idx"]], (p["W"], d["idx"])


def embedding_backward(dout: Any, cache: Any) -> Params:
    W, idx = cache
    dW = np.zeros(W.shape, dtype=np.result_type(W, dout))
    np.add.at(dW, idx, dout)
    return {"W": dW}


def embedding_backward_overwrite(dout: Any, cache: Any) -> Params:
    W, idx = cache
    dW = np.zeros(W.shape, dtype=np.result_type(W, dout))
    dW[idx] += dout  # BUG: buffered fancy indexing: repeated indices keep only the last
    return {"W": dW}


def embedding_make(rng: np.random.Generator) -> tuple[Params, Data]:
    V = D = 4
    idx = np.array([[0, 2, 2, 3], [1, 0, 2, 3], [3, 3, 1, 0]])  # every row used, some repeated
    return {"W": rng.standard_normal((V, D))}, {"idx": idx}


def embedding_large(p: Params, d: Data) -> tuple[Params, Data]:
    return {"W": p["W"] * 1e3}, d


# === 10. scaled dot-product attention ====================================================


def attention_forward(p: Params, d: Data) -> tuple[Any, Any]:
    Q, K, V = p["Q"], p["K"], p["V"]
    scale = 1 / math.sqrt(Q.shape[-1])
    P = _softmax(Q @ K.swapaxes(-1, -2) * scale)
    return P @ V, (Q, K, V, P, scale)


def attention_backward(dout: Any, cache: Any) -> Params:
    Q, K, V, P, scale = cache
    dV = P.swapaxes(-1, -2) @ dout
    dP = dout @ V.swapaxes(-1, -2)
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))
    dS = dS * scale
    return {"Q": dS @ K, "K": dS.swapaxes(-1, -2) @ Q, "V": dV}


def attention_backward_no_scale(dout: Any, cache: Any) -> Params:
    Q, K, V, P, scale = cache
    dV = P.swapaxes(-1, -2) @ dout
    dP = dout @ V.swapaxes(-1, -2)
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))  # BUG: the 1/sqrt(d) is not applied
    return {"Q": dS @ K, "K": dS.swapaxes(-1, -2) @ Q, "V": dV}


def attention_backward_dK_no_scale(dout: Any, cache: Any) -> Params:
    Q, K, V, P, scale = cache
    dV = P.swapaxes(-1, -2) @ dout
    dP = dout @ V.swapaxes(-1, -2)
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))
    dQ = dS @ K * scale
    dK = dS.swapaxes(-1, -2) @ Q  # BUG: the 1/sqrt(d) is applied to dQ only
    return {"Q": dQ, "K": dK, "V": dV}


def attention_backward_softmax_no_row_sum(dout: Any, cache: Any) -> Params:
    Q, K, V, P, scale = cache
    dV = P.swapaxes(-1, -2) @ dout
    dP = dout @ V.swapaxes(-1, -2)
    dS = P * dP  # BUG: softmax' treated as elementwise (the row-sum term is missing)
    dS = dS * scale
    return {"Q": dS @ K, "K": dS.swapaxes(-1, -2) @ Q, "V": dV}


def attention_backward_dV_not_transposed(dout: Any, cache: Any) -> Params:
    Q, K, V, P, scale = cache
    dV = P @ dout  # BUG: P @ dout where P.T @ dout belongs
    dP = dout @ V.swapaxes(-1, -2)
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))
    dS = dS * scale
    return {"Q": dS @ K, "K": dS.swapaxes(-1, -2) @ Q, "V": dV}


def attention_make(rng: np.random.Generator) -> tuple[Params, Data]:
    N, T, d = 2, 3, 4  # d = 4: a missing 1/sqrt(d) is a factor 2
    return {
        "Q": rng.standard_normal((N, T, d)),
        "K": rng.standard_normal((N, T, d)),
        "V": rng.standard_normal((N, T, d)),
    }, {}


def attention_large(p: Params, d: Data) -> tuple[Params, Data]:
    """Q and V ~ 1e3; K ~ 1e-3 keeps the scores, and so the softmax, as they were."""
    return {"Q": p["Q"] * 1e3, "K": p["K"] * 1e-3, "V": p["V"] * 1e3}, d


# === the catalogue =======================================================================


@dataclass(frozen=True)
class Broken:
    """A broken backward and what gradcheck should say about it."""

    backward: Backward
    worst: tuple[str, ...]
    """The tensor(s) the mistake breaks: the report's worst parameter must be one of them."""
    kind: str
    """The finding kind gradcheck should give that tensor ("localized": no class)."""
    number: float | None = None
    """A number the finding should report in its detail: the factor c, the L2 coefficient."""
    says: str | None = None
    """Words the finding's message should contain (the size a scale factor is named after)."""


@dataclass(frozen=True)
class Layer:
    """One layer (or loss) of the zoo, its correct backward and its broken variants."""

    name: str
    forward: Forward
    backward: Backward
    make: Make
    loss: bool = False
    """A scalar loss, checked with `gradcheck.check`; else a layer, with `check_layer`."""
    large: Mapping[str, Transform] = field(default_factory=dict)
    """Points with large-magnitude parameters: name -> how to make one from the default."""
    kinks: Mapping[str, Make] = field(default_factory=dict)
    """Points where the cost is not differentiable: name -> how to make one."""
    hints: Mapping[str, str] = field(default_factory=dict)
    """gradcheck keyword -> how to read it from (params, data): "batch"/"time"."""
    broken: Mapping[str, Broken] = field(default_factory=dict)


def _hints(layer: Layer, params: Params, data: Data) -> dict[str, int]:
    sizes = {
        "batch": lambda: len(data["X"]) if "X" in data else len(next(iter(params.values()))),
        "time": lambda: next(iter(params.values())).shape[1],
    }
    return {keyword: int(sizes[what]()) for keyword, what in layer.hints.items()}


def run(
    layer: Layer,
    backward: Backward,
    params: Params,
    data: Data,
    **options: Any,
) -> gradcheck.Report:
    """Check ``backward`` against ``layer.forward`` at (params, data)."""
    hints = _hints(layer, params, data)
    if layer.loss:
        _, cache = layer.forward(params, data)
        grads = backward(1.0, cache)
        return gradcheck.check(
            lambda p: layer.forward(p, data)[0], params, grads, **hints, **options
        )
    return gradcheck.check_layer(
        lambda p: layer.forward(p, data)[0],
        lambda p, dout: backward(dout, layer.forward(p, data)[1]),
        params,
        **hints,
        **options,
    )


def run_near_minimum(
    layer: Layer, params: Params, data: Data, *, residual: float = 1e-7, offset: float = 1.0
) -> gradcheck.Report:
    """Check the correct backward at a point where the cost is flat.

    The cost ``offset + 0.5 * ||out - target||^2`` with ``target`` a hair (``residual``)
    away from the output: its gradient ``J.T (out - target)`` is tiny against the cost,
    as at the minimum of a loss whose minimal value is not zero.
    """
    out, cache = layer.forward(params, data)
    out = np.asarray(out, dtype=np.float64)
    direction = np.random.default_rng(1).standard_normal(out.shape)
    target = out - residual * direction
    grads = layer.backward(residual * direction, cache)

    def cost(p: Params) -> float:
        gap = np.asarray(layer.forward(p, data)[0], dtype=np.float64) - target
        return offset + 0.5 * float(np.sum(gap * gap))

    return gradcheck.check(cost, params, grads, **_hints(layer, params, data))


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in [
        Layer(
            name="mlp",
            forward=mlp_forward,
            backward=mlp_backward,
            make=mlp_make,
            loss=True,
            large={"1e3": mlp_large, "1e3_no_l2": mlp_large_no_l2},
            kinks={"relu_at_zero": mlp_relu_kinks, "relu_all_units_at_zero": mlp_relu_all_kinks},
            hints={"batch_size": "batch"},
            broken={
                "db1_missing_1/m": Broken(
                    mlp_backward_db1_no_mean, ("b1",), "scale", 5, "batch size"
                ),
                "dW2_transposed": Broken(mlp_backward_dW2_transposed, ("W2",), "transpose"),
                "dW1_missing_l2": Broken(mlp_backward_dW1_no_l2, ("W1",), "missing_l2", -0.1),
                "dW2_l2_twice": Broken(mlp_backward_dW2_l2_twice, ("W2",), "missing_l2", 0.1),
                "db2_sign": Broken(mlp_backward_db2_sign, ("b2",), "sign", -1),
                "dW1_never_computed": Broken(mlp_backward_dW1_never_computed, ("W1",), "zero"),
                "tanh_derivative_1-a": Broken(
                    mlp_backward_tanh_derivative, ("W1", "b1"), "localized"
                ),
            },
        ),
        Layer(
            name="rnn",
            forward=rnn_forward,
            backward=rnn_backward,
            make=rnn_make,
            large={"1e3": rnn_large},
            hints={"time_steps": "time"},
            broken={
                "dWh_not_accumulated": Broken(
                    rnn_backward_dWh_not_accumulated, ("Wh",), "localized"
                ),
                "dWh_transposed": Broken(rnn_backward_dWh_transposed, ("Wh",), "transpose"),
                "dWx_mean_over_time": Broken(
                    rnn_backward_dWx_averaged_over_time, ("Wx",), "scale", 1 / 4, "time steps"
                ),
                "dh_not_carried_back": Broken(
                    rnn_backward_no_carry, ("x", "h0", "Wx", "Wh", "b"), "localized"
                ),
            },
        ),
        Layer(
            name="batchnorm",
            forward=batchnorm_forward,
            backward=batchnorm_backward,
            make=batchnorm_make,
            large={"1e3": norm_large},
            hints={"batch_size": "batch"},
            broken={
                "dx_no_mean_var_terms": Broken(
                    batchnorm_backward_no_mean_var_terms, ("x",), "localized"
                ),
                "dx_no_var_term": Broken(batchnorm_backward_no_var_term, ("x",), "localized"),
                "dgamma_mean": Broken(
                    batchnorm_backward_dgamma_mean, ("gamma",), "scale", 1 / 5, "batch size"
                ),
                "dbeta_zero": Broken(batchnorm_backward_dbeta_zero, ("beta",), "zero"),
            },
        ),
        Layer(
            name="layernorm",
            forward=layernorm_forward,
            backward=layernorm_backward,
            make=layernorm_make,
            large={"1e3": norm_large},
            hints={"batch_size": "batch"},
            broken={
                "dx_no_mean_var_terms": Broken(
                    layernorm_backward_no_mean_var_terms, ("x",), "localized"
                ),
                "dx_batch_axis": Broken(layernorm_backward_batch_axis, ("x",), "localized"),
                "dbeta_mean": Broken(
                    layernorm_backward_dbeta_mean, ("beta",), "scale", 1 / 3, "batch size"
                ),
            },
        ),
        Layer(
            name="conv",
            forward=conv_forward,
            backward=conv_backward,
            make=conv_make,
            large={"1e3": conv_large},
            hints={"batch_size": "batch"},
            broken={
                "dx_unpad_off_by_one": Broken(conv_backward_unpad_off_by_one, ("x",), "localized"),
                "loop_off_by_one": Broken(conv_backward_loop_off_by_one, ("x", "w"), "localized"),
                "dx_flipped_kernel": Broken(conv_backward_flipped_kernel, ("x",), "localized"),
                "db_mean": Broken(conv_backward_db_mean, ("b",), "scale", 1 / 3, "batch size"),
            },
        ),
        Layer(
            name="maxpool",
            forward=maxpool_forward,
            backward=maxpool_backward,
            make=maxpool_make,
            large={"1e3": maxpool_large},
            kinks={"ties": maxpool_ties, "ties_overlapping": maxpool_ties_overlapping},
            broken={
                "row_col_swapped": Broken(maxpool_backward_row_col_swapped, ("x",), "localized"),
                "average": Broken(maxpool_backward_average, ("x",), "localized"),
                "overlap_overwritten": Broken(
                    maxpool_backward_last_window_only, ("x",), "localized"
                ),
            },
        ),
        Layer(
            name="softmax_loss",
            forward=softmax_loss_forward,
            backward=softmax_loss_backward,
            make=softmax_make,
            loss=True,
            large={"1e3": softmax_large},
            hints={"batch_size": "batch"},
            broken={
                "no_one_hot": Broken(softmax_loss_backward_no_one_hot, ("x",), "localized"),
                "missing_1/m": Broken(
                    softmax_loss_backward_no_mean, ("x",), "scale", 6, "batch size"
                ),
                "sign": Broken(softmax_loss_backward_sign, ("x",), "sign", -1),
            },
        ),
        Layer(
            name="svm",
            forward=svm_forward,
            backward=svm_backward,
            make=svm_make,
            loss=True,
            large={"1e3": svm_large, "1e3_no_l2": svm_large_no_l2},
            kinks={"hinge_corner": svm_corners},
            hints={"batch_size": "batch"},
            broken={
                "dW_missing_l2": Broken(svm_backward_no_l2, ("W",), "missing_l2", -0.1),
                "dW_transposed": Broken(svm_backward_dW_transposed, ("W",), "transpose"),
                "dW_missing_1/m": Broken(svm_backward_dW_no_mean, ("W",), "scale", 6, "batch size"),
                "correct_class_once": Broken(
                    svm_backward_correct_class_once, ("W", "b"), "localized"
                ),
            },
        ),
        Layer(
            name="embedding",
            forward=embedding_forward,
            backward=embedding_backward,
            make=embedding_make,
            large={"1e3": embedding_large},
            broken={
                "overwrite_repeated": Broken(embedding_backward_overwrite, ("W",), "localized"),
            },
        ),
        Layer(
            name="attention",
            forward=attention_forward,
            backward=attention_backward,
            make=attention_make,
            large={"1e3": attention_large},
            broken={
                "no_1/sqrt(d)": Broken(attention_backward_no_scale, ("Q", "K"), "scale", 2),
                "dK_no_1/sqrt(d)": Broken(attention_backward_dK_no_scale, ("K",), "scale", 2),
                "softmax_no_row_sum": Broken(
                    attention_backward_softmax_no_row_sum, ("Q", "K"), "localized"
                ),
                "dV_not_transposed": Broken(
                    attention_backward_dV_not_transposed, ("V",), "localized"
                ),
            },
        ),
    ]
}


def make(layer: Layer, seed: int = 0) -> tuple[Params, Data]:
    """The layer's default point, seeded per layer so that cases do not share numbers."""
    return layer.make(np.random.default_rng([seed, *layer.name.encode()]))


def as_float32(params: Params, data: Data) -> tuple[Params, Data]:
    """Parameters and float data in float32."""
    cast = {k: v.astype(np.float32) for k, v in params.items()}
    floats = {
        k: v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
        for k, v in data.items()
    }
    return cast, floats
