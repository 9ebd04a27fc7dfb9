"""A small from-scratch NumPy network with hand-written backpropagation, layer by layer.

The forward pass is also complex-safe (ReLU and the losses branch on the real part, no
float() or abs()), so ``method="complex"`` works on it, and it broadcasts over a leading
batch axis on any parameter, so ``batched=True`` works on it too. `Network.perturbed_costs`
is the faster batched cost: it reruns only the layers above the perturbed parameter.

Column layout, as in the deeplearning.ai course: examples are columns, so a batch
X has shape (n_x, m), W_l has shape (n_l, n_{l-1}) and b_l has shape (n_l, 1).
Each layer's forward pass returns ``(out, cache)`` and its backward pass takes
``(dout, cache)``, side by side, so the two can be read together. The network
is a subject for gradient checks, not a training framework.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
Params = dict[str, Array]
Activation = Literal["relu", "tanh", "sigmoid"]
Output = Literal["sigmoid", "softmax"]
DenseCache = tuple[Array, Array]
Caches = tuple[list[tuple[DenseCache, Array | None]], Array]


# --- dense layer: Z = W A + b ------------------------------------------------------------


def dense_forward(a_prev: Array, W: Array, b: Array) -> tuple[Array, DenseCache]:
    """Z = W @ A_prev + b; keep A_prev and W for the backward pass."""
    return W @ a_prev + b, (a_prev, W)


def dense_backward(dz: Array, cache: DenseCache) -> tuple[Array, Array, Array]:
    """Return dA_prev, dW, db; dz already carries the 1/m of the mean loss."""
    a_prev, W = cache
    return W.T @ dz, dz @ a_prev.T, np.sum(dz, axis=1, keepdims=True)


# --- activations: A = g(Z) -------------------------------------------------------------


def activation_forward(z: Array, kind: Activation) -> tuple[Array, Array]:
    """A = g(Z); the cache is Z (for relu) or A (for tanh and sigmoid, whose g' uses A)."""
    if kind == "relu":
        return np.where(z.real > 0, z, 0.0), z
    a = np.tanh(z) if kind == "tanh" else _sigmoid(z)
    return a, a


def activation_backward(da: Array, cache: Array, kind: Activation) -> Array:
    """DZ = dA * g'(Z): relu' = [Z > 0], tanh' = 1 - A**2, sigmoid' = A (1 - A)."""
    if kind == "relu":
        return da * (cache.real > 0)
    if kind == "tanh":
        return da * (1.0 - cache**2)
    return da * cache * (1.0 - cache)


# --- losses: mean over the m examples, and dZ of the output layer ------------------------


def sigmoid_cross_entropy(z: Array, y: Array) -> tuple[float, Array]:
    """Binary cross-entropy of sigmoid(Z) against labels Y in {0, 1}, shape (1, m).

    Computed from the logits with log(1 + e^-|z|) so it stays finite for large |z|.
    dZ = (sigmoid(Z) - Y) / m.
    """
    m = y.shape[-1]
    positive = np.where(z.real > 0, z, 0.0)  # max(z, 0)
    magnitude = np.where(z.real >= 0, z, -z)  # |z|
    loss = np.sum(positive - z * y + np.log1p(np.exp(-magnitude)), axis=(-2, -1)) / m
    return loss, (_sigmoid(z) - y) / m


def softmax_cross_entropy(z: Array, y: Array) -> tuple[float, Array]:
    """Cross-entropy of softmax(Z) (over rows) against one-hot Y, both shape (classes, m).

    dZ = (softmax(Z) - Y) / m.
    """
    m = y.shape[-1]
    shifted = z - z.real.max(axis=-2, keepdims=True)  # per column: softmax is shift-invariant
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=-2, keepdims=True))
    loss = -np.sum(y * log_probs, axis=(-2, -1)) / m
    return loss, (np.exp(log_probs) - y) / m


# --- L2 regularization: lambd / (2m) * sum ||W||^2, biases not regularized ---------------


def l2_forward(params: Params, lambd: float, m: int, layers: int) -> Any:
    """The L2 penalty lambd / (2m) * sum of squared weights (one per batch element if stacked)."""
    squares = (np.sum(params[f"W{k}"] ** 2, axis=(-2, -1)) for k in range(1, layers + 1))
    return lambd / (2 * m) * sum(squares)


def l2_backward(W: Array, lambd: float, m: int) -> Array:
    """Its gradient for one weight matrix: lambd / m * W."""
    return lambd / m * W


def _sigmoid(z: Array) -> Array:
    # exp of -|z| only, so large |z| neither overflows nor warns.
    e = np.exp(np.where(z.real >= 0, -z, z))
    return np.where(z.real >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# --- the network -----------------------------------------------------------------------


@dataclass
class Network:
    """A fully connected network: (dense + activation) x (L-1), dense + output loss, L2.

    Attributes:
        sizes: units per layer, input first: (n_x, n_1, ..., n_L).
        activation: hidden activation.
        output: "sigmoid" (binary labels, n_L = 1) or "softmax" (one-hot labels).
        lambd: L2 strength (0 for none).
        X: inputs, shape (n_x, m).
        Y: labels, shape (n_L, m).
        params: W1, b1, ..., WL, bL.
    """

    sizes: tuple[int, ...]
    activation: Activation
    output: Output
    lambd: float
    X: Array = field(repr=False)
    Y: Array = field(repr=False)
    params: Params = field(repr=False)

    @property
    def layers(self) -> int:
        """Number of dense layers L."""
        return len(self.sizes) - 1

    @property
    def m(self) -> int:
        """Number of examples in the batch."""
        return int(self.X.shape[1])

    @property
    def size(self) -> int:
        """Number of parameters n."""
        return sum(p.size for p in self.params.values())

    def describe(self) -> str:
        """The architecture in the course's notation, e.g. LINEAR->RELU->LINEAR->SIGMOID."""
        hidden = f"LINEAR->{self.activation.upper()}->" * (self.layers - 1)
        sizes = "-".join(map(str, self.sizes))
        reg = f", L2 lambda={self.lambd:g}" if self.lambd else ""
        return f"{hidden}LINEAR->{self.output.upper()} ({sizes}, m={self.m}{reg})"

    def forward(self, params: Params) -> tuple[float, Caches]:
        """The cost J(params), and what backward needs: per-layer caches and dZ of the output."""
        a = self.X
        layers: list[tuple[DenseCache, Array | None]] = []
        for k in range(1, self.layers + 1):
            z, dense_cache = dense_forward(a, params[f"W{k}"], params[f"b{k}"])
            act_cache = None
            if k < self.layers:
                a, act_cache = activation_forward(z, self.activation)
            layers.append((dense_cache, act_cache))
        loss_fn = sigmoid_cross_entropy if self.output == "sigmoid" else softmax_cross_entropy
        loss, dz = loss_fn(z, self.Y)
        if self.lambd:
            loss += l2_forward(params, self.lambd, self.m, self.layers)
        return loss, (layers, dz)

    def backward(self, params: Params, caches: Caches) -> Params:
        """Gradients dW1, db1, ..., dWL, dbL from the caches of `forward`."""
        layers, dz = caches
        grads: Params = {}
        da = dz  # replaced before use: the output layer starts from dz itself
        for k in range(self.layers, 0, -1):
            dense_cache, act_cache = layers[k - 1]
            if act_cache is not None:
                dz = activation_backward(da, act_cache, self.activation)
            da, dW, db = dense_backward(dz, dense_cache)
            if self.lambd:
                dW = dW + l2_backward(params[f"W{k}"], self.lambd, self.m)
            grads[f"dW{k}"], grads[f"db{k}"] = dW, db
        return {key: grads[key] for k in range(1, self.layers + 1) for key in (f"dW{k}", f"db{k}")}

    def cost(self, params: Params) -> float:
        """J(params): the mean loss plus the L2 penalty."""
        return self.forward(params)[0]

    def cost_and_grads(self, params: Params) -> tuple[float, Params]:
        """J(params) and its gradients, the ``f(params) -> (loss, grads)`` form."""
        loss, caches = self.forward(params)
        return loss, self.backward(params, caches)

    def gradients(self, params: Params | None = None) -> Params:
        """The hand-written gradients at ``params`` (the network's own by default)."""
        return self.cost_and_grads(self.params if params is None else params)[1]

    def perturbed_costs(
        self, params: Params, name: str, indices: NDArray[np.intp], values: Array
    ) -> Array:
        """Costs of B single-coordinate changes of one parameter, reusing what they don't change.

        The batched cost that ``gradcheck.check(..., batched=net.perturbed_costs)`` takes:
        B = len(indices) costs, the b-th with coordinate ``indices[b]`` of ``params[name]``
        set to ``values[b]``. Layers below the changed one run once. The changed layer's
        output is updated rather than recomputed (changing W[i, j] by d adds d * A_prev[j]
        to row i of Z; changing b[i] adds d to row i), and only the layers above run B times.
        """
        layer, batch = int(name[1:]), len(indices)
        a = self.X
        for k in range(1, layer):
            a = activation_forward(params[f"W{k}"] @ a + params[f"b{k}"], self.activation)[0]
        z = params[f"W{layer}"] @ a + params[f"b{layer}"]  # [n_l, m]
        current = params[name].reshape(-1)[indices]
        delta = values - current  # exact: the values are x +- h
        zb = np.repeat(z[None], batch, axis=0)  # [B, n_l, m]
        if name.startswith("W"):
            rows, cols = np.divmod(indices, a.shape[0])
            zb[np.arange(batch), rows, :] += delta[:, None] * a[cols, :]
        else:
            zb[np.arange(batch), indices, :] += delta[:, None]
        for k in range(layer + 1, self.layers + 1):
            ab = activation_forward(zb, self.activation)[0]
            zb = params[f"W{k}"] @ ab + params[f"b{k}"]
        loss_fn = sigmoid_cross_entropy if self.output == "sigmoid" else softmax_cross_entropy
        costs = np.asarray(loss_fn(zb, self.Y)[0])
        if self.lambd:
            costs = costs + l2_forward(params, self.lambd, self.m, self.layers)
            if name.startswith("W"):
                costs = costs + self.lambd / (2 * self.m) * (values**2 - current**2)
        return costs

    def theta(self) -> Array:
        """The parameters concatenated into one vector (W1, b1, W2, ...), C order."""
        return np.concatenate([p.reshape(-1) for p in self.params.values()])

    def vector_cost(self, theta: Array) -> float:
        """J as a function of the concatenated vector, the textbook ``cost_function(theta)``."""
        params: Params = {}
        offset = 0
        for name, p in self.params.items():
            size = math.prod(p.shape)
            params[name] = theta[offset : offset + size].reshape(p.shape)
            offset += size
        return self.cost(params)


def make_network(
    sizes: Sequence[int] = (2, 20, 20, 1),
    *,
    activation: Activation = "relu",
    output: Output | None = None,
    lambd: float = 0.7,
    m: int = 32,
    seed: int = 1,
) -> Network:
    """Build a network with He-initialized parameters and a synthetic data set.

    The default is the classic three-layer network of the deeplearning.ai course,
    LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID, on two interleaved spirals, with
    L2 regularization. Its hidden layers are square, so a transposed dW2 keeps its
    shape and shows up in the check rather than as a shape error.

    Args:
        sizes: units per layer, input first; the last is 1 for a sigmoid output.
        activation: hidden activation: "relu", "tanh" or "sigmoid".
        output: "sigmoid" or "softmax"; by default sigmoid when the last size is 1.
        lambd: L2 strength.
        m: number of examples.
        seed: seeds the data and the initialization.

    Example:
        >>> from gradcheck.demo import make_network
        >>> net = make_network()
        >>> net.describe()
        'LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID (2-20-20-1, m=32, L2 lambda=0.7)'
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes={sizes!r} needs an input size and at least one layer, all >= 1")
    output = output or ("sigmoid" if sizes[-1] == 1 else "softmax")
    if output == "sigmoid" and sizes[-1] != 1:
        raise ValueError(f"a sigmoid output has one unit, but sizes ends with {sizes[-1]}")
    rng = np.random.default_rng(seed)
    X, labels = spirals(m, classes=max(2, sizes[-1]), rng=rng, features=sizes[0])
    Y = labels[None, :].astype(np.float64) if output == "sigmoid" else np.eye(sizes[-1])[:, labels]
    params: Params = {}
    for k in range(1, len(sizes)):
        scale = np.sqrt(2.0 / sizes[k - 1])
        params[f"W{k}"] = rng.standard_normal((sizes[k], sizes[k - 1])) * scale
        params[f"b{k}"] = rng.standard_normal((sizes[k], 1)) * 0.1
    return Network(sizes=sizes, activation=activation, output=output, lambd=lambd, X=X, Y=Y,
                   params=params)  # fmt: skip


def spirals(
    m: int, *, classes: int = 2, rng: np.random.Generator, features: int = 2
) -> tuple[Array, NDArray[np.intp]]:
    """Interleaved noisy spirals, one arm per class (CS231n's toy data set).

    Returns:
        X of shape (features, m) (the first two features are the spiral, the rest
        noise) and integer labels of shape (m,).
    """
    labels = np.arange(m) % classes
    radius = rng.uniform(0.1, 1.0, m)
    angle = labels * (2 * np.pi / classes) + radius * 4.0 + rng.normal(0.0, 0.2, m)
    X = rng.normal(0.0, 0.1, (features, m))
    X[0] += radius * np.cos(angle)
    if features > 1:
        X[1] += radius * np.sin(angle)
    return X, labels
