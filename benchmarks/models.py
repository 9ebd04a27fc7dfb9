"""The benchmark network in NumPy, PyTorch and JAX, built from the same parameter values.

The reference is gradcheck's demo network (`gradcheck.demo.make_network`): tanh hidden
layers, softmax cross-entropy, L2 ``lambd / (2m) * sum ||W||^2`` (biases not
regularized), float64, one fixed batch of m = 32 examples, column layout (``W_l`` is
n_l x n_{l-1}, ``b_l`` is n_l x 1). Its forward pass and hand-written backprop are the
"user's code" every approach checks. The PyTorch and JAX costs compute the same number
from copies of the same arrays (frameworks are imported only when asked for), and
`verify` asserts that all three agree to ~1e-12 and that the hand-written gradient
agrees with PyTorch's autograd.

`with_bug` injects the one wrong element the detection table uses: ``dW2[3, 5] *= 2``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from gradcheck.demo import Network, make_network

LAMBD = 0.1
BATCH = 32
SEED = 0

SIZES: dict[str, tuple[int, ...]] = {
    "1e3": (20, 22, 16, 10),  # n = 1,000
    "1e4": (20, 100, 70, 10),  # n = 9,880
    "1e5": (20, 300, 300, 10),  # n = 99,610
    "1e6": (20, 1000, 950, 10),  # n = 981,460
}
"""Named sizes: the same layer widths as ../shared/research/perf-baselines.md, plus ~1e6."""

BUG_PARAM = "W2"
BUG_INDEX = (3, 5)
BUG_FACTOR = 2.0
BUG = f"d{BUG_PARAM}[{BUG_INDEX[0]}, {BUG_INDEX[1]}] *= {BUG_FACTOR:g}"

COST_TOLERANCE = 1e-12
"""Largest |J_numpy - J_framework| / max(1, |J|) that `verify` accepts."""
GRADIENT_TOLERANCE = 1e-10
"""Largest ||g_hand - g_autograd|| / ||g_autograd|| that `verify` accepts."""


def parse_size(text: str) -> tuple[str, tuple[int, ...]]:
    """Turn ``"1e4"``, ``"10000"`` or ``"20-100-70-10"`` into (label, layer sizes).

    A number picks the named size nearest to it (on a log scale).
    """
    text = text.strip()
    if re.fullmatch(r"\d+(-\d+)+", text):
        sizes = tuple(int(s) for s in text.split("-"))
        return text, sizes
    try:
        wanted = float(text)
    except ValueError:
        raise ValueError(
            f"size {text!r} is neither a number (1e3, 1e4, ...) nor layer sizes (20-100-70-10)"
        ) from None
    if wanted <= 0:
        raise ValueError(f"size {text!r} must be positive")
    label = min(SIZES, key=lambda k: abs(math.log10(float(k)) - math.log10(wanted)))
    return label, SIZES[label]


def parameter_count(sizes: tuple[int, ...]) -> int:
    """n for a dense network with these layer sizes (weights and biases)."""
    return sum(b * a + b for a, b in itertools.pairwise(sizes))


@dataclass
class Model:
    """One network and everything the approaches need to check its hand-written gradient."""

    label: str
    sizes: tuple[int, ...]
    net: Network = field(repr=False)
    grads: dict[str, np.ndarray] = field(repr=False)
    """The hand-written gradients dW1, db1, ... at the network's parameters."""

    @property
    def n(self) -> int:
        """Number of parameters."""
        return self.net.size

    @property
    def names(self) -> list[str]:
        """Parameter names in order: W1, b1, W2, ..."""
        return list(self.net.params)

    def theta(self) -> np.ndarray:
        """A fresh copy of the concatenated parameters."""
        return self.net.theta()

    def gradient_vector(self, grads: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The hand-written gradient (or ``grads``) concatenated like theta."""
        grads = self.grads if grads is None else grads
        return np.concatenate([grads[f"d{name}"].reshape(-1) for name in self.names])

    def unflatten(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Views of theta shaped like the parameters."""
        params, offset = {}, 0
        for name, p in self.net.params.items():
            params[name] = theta[offset : offset + p.size].reshape(p.shape)
            offset += p.size
        return params

    def vector_gradient(self, theta: np.ndarray, *, bug: bool = False) -> np.ndarray:
        """The hand-written gradient at theta as a vector (for scipy's ``check_grad``)."""
        grads = self.net.gradients(self.unflatten(theta))
        return self.gradient_vector(with_bug(grads) if bug else grads)

    def hand_gradients(self, params: dict[str, np.ndarray], *, bug: bool) -> dict[str, np.ndarray]:
        """The hand-written backprop at ``params``, with the injected bug if ``bug``."""
        grads = self.net.gradients(params)
        return with_bug(grads) if bug else grads

    # --- PyTorch ----------------------------------------------------------------------

    @cached_property
    def torch_cost(self) -> Callable[..., Any]:
        """``cost(W1, b1, W2, ...)`` on float64 tensors: the same J, differentiable by autograd."""
        import torch

        X = torch.tensor(self.net.X, dtype=torch.float64)
        Y = torch.tensor(self.net.Y, dtype=torch.float64)
        layers, lambd, m = self.net.layers, self.net.lambd, self.net.m

        def cost(*tensors: Any) -> Any:
            a = X
            for k in range(layers):
                z = tensors[2 * k] @ a + tensors[2 * k + 1]
                a = torch.tanh(z) if k < layers - 1 else z
            shifted = z - z.max(dim=0, keepdim=True).values
            log_probs = shifted - torch.log(torch.exp(shifted).sum(dim=0, keepdim=True))
            loss = -(Y * log_probs).sum() / m
            return loss + lambd / (2 * m) * sum((tensors[2 * k] ** 2).sum() for k in range(layers))

        return cost

    def torch_inputs(self, *, requires_grad: bool = True) -> tuple[Any, ...]:
        """Fresh float64 tensors holding copies of W1, b1, ... (never views of the NumPy arrays)."""
        import torch

        return tuple(
            torch.tensor(p, dtype=torch.float64, requires_grad=requires_grad)
            for p in self.net.params.values()
        )

    def torch_hand_function(self, *, bug: bool) -> Callable[..., Any]:
        """``cost(W1, b1, ...)`` whose backward is the hand-written NumPy backprop.

        This is how a user checks their own gradient with ``torch.autograd.gradcheck``:
        the forward runs the NumPy cost on the tensors' memory (so torch's in-place
        perturbations are seen) and the backward returns the hand-written gradient.
        """
        import torch

        model, names = self, self.names

        class HandWritten(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, *tensors: Any) -> Any:
                ctx.save_for_backward(*tensors)
                params = {k: t.detach().numpy() for k, t in zip(names, tensors, strict=True)}
                return torch.tensor(model.net.cost(params), dtype=torch.float64)

            @staticmethod
            def backward(ctx: Any, grad_output: Any) -> Any:
                params = {
                    k: t.detach().numpy() for k, t in zip(names, ctx.saved_tensors, strict=True)
                }
                grads = model.hand_gradients(params, bug=bug)
                return tuple(grad_output * torch.from_numpy(grads[f"d{k}"]) for k in names)

        return HandWritten.apply

    # --- JAX --------------------------------------------------------------------------

    @cached_property
    def jax_cost(self) -> Callable[[Any], Any]:
        """``cost(params)`` on a dict of float64 JAX arrays (x64 enabled): the same J."""
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        X, Y = jnp.asarray(self.net.X), jnp.asarray(self.net.Y)
        layers, lambd, m = self.net.layers, self.net.lambd, self.net.m

        def cost(params: dict[str, Any]) -> Any:
            a = X
            for k in range(1, layers + 1):
                z = params[f"W{k}"] @ a + params[f"b{k}"]
                a = jnp.tanh(z) if k < layers else z
            shifted = z - z.max(axis=0, keepdims=True)
            log_probs = shifted - jnp.log(jnp.exp(shifted).sum(axis=0, keepdims=True))
            loss = -(Y * log_probs).sum() / m
            return loss + lambd / (2 * m) * sum(
                (params[f"W{k}"] ** 2).sum() for k in range(1, layers + 1)
            )

        return cost

    def jax_params(self) -> dict[str, Any]:
        """Copies of the parameters as float64 JAX arrays."""
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        return {k: jnp.array(v, dtype=jnp.float64) for k, v in self.net.params.items()}

    def jax_hand_function(self, *, bug: bool) -> Callable[[Any], Any]:
        """``cost(params)`` whose VJP is the hand-written NumPy backprop (``custom_vjp``)."""
        import jax

        model, cost = self, self.jax_cost

        def hand(params: dict[str, Any]) -> dict[str, np.ndarray]:
            arrays = {k: np.asarray(v) for k, v in params.items()}
            grads = model.hand_gradients(arrays, bug=bug)
            return {k: grads[f"d{k}"] for k in arrays}

        @jax.custom_vjp
        def f(params: dict[str, Any]) -> Any:
            return cost(params)

        def forward(params: dict[str, Any]) -> tuple[Any, Any]:
            return cost(params), params

        def backward(params: dict[str, Any], g: Any) -> tuple[Any]:
            shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in params.items()}
            grads = jax.pure_callback(hand, shapes, params)
            return ({k: g * v for k, v in grads.items()},)

        f.defvjp(forward, backward)
        return f


def build(size: str) -> Model:
    """Build the model for a size label or layer spec (see `parse_size`)."""
    label, sizes = parse_size(size)
    net = make_network(sizes, activation="tanh", output="softmax", lambd=LAMBD, m=BATCH, seed=SEED)
    return Model(label=label, sizes=sizes, net=net, grads=net.gradients())


def with_bug(grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A copy of ``grads`` with one wrong element: ``dW2[3, 5] *= 2``."""
    broken = {k: v.copy() for k, v in grads.items()}
    broken[f"d{BUG_PARAM}"][BUG_INDEX] *= BUG_FACTOR
    return broken


def verify(model: Model, frameworks: tuple[str, ...] = ("torch", "jax")) -> dict[str, float]:
    """Assert that the NumPy, PyTorch and JAX costs agree, and the hand gradient is right.

    Returns the discrepancies it measured (relative to max(1, |J|) for costs, to the
    gradient's norm for gradients).
    """
    reference = model.net.cost(model.net.params)
    scale = max(1.0, abs(reference))
    found: dict[str, float] = {"cost": reference}
    vector_cost = model.net.vector_cost(model.theta())
    found["numpy_vector_cost"] = abs(vector_cost - reference) / scale
    if "torch" in frameworks:
        import torch

        inputs = model.torch_inputs()
        loss = model.torch_cost(*inputs)
        found["torch_cost"] = abs(float(loss.detach()) - reference) / scale
        autograd = torch.autograd.grad(loss, inputs)
        exact = np.concatenate([g.numpy().reshape(-1) for g in autograd])
        hand = model.gradient_vector()
        found["hand_vs_torch_gradient"] = float(
            np.linalg.norm(hand - exact) / np.linalg.norm(exact)
        )
        hand_fn = model.torch_hand_function(bug=False)(*model.torch_inputs())
        found["torch_hand_function_cost"] = abs(float(hand_fn.detach()) - reference) / scale
    if "jax" in frameworks:
        found["jax_cost"] = abs(float(model.jax_cost(model.jax_params())) - reference) / scale
    for key, value in found.items():
        limit = GRADIENT_TOLERANCE if key.endswith("gradient") else COST_TOLERANCE
        if key != "cost" and not value <= limit:
            raise AssertionError(
                f"{model.label} ({'-'.join(map(str, model.sizes))}): {key} differs by "
                f"{value:.3g} (limit {limit:g}); the models are not the same function"
            )
    return found
