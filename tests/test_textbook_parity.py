"""No fewer detections than the textbook (issue 9): what the 20-line loop flags, check fails.

The textbook check flattens the params into one float64 vector θ, takes central differences
with ε = 1e-7 coordinate by coordinate (the cost evaluated on params rebuilt from θ in their
own dtype) and reads ||num - ana|| / (||num|| + ||ana||). Above 1e-3 it says "there is a
mistake". Every case here *is* a mistake, so whenever the textbook says so, gradcheck's
default full check must not pass: it may fail or say it cannot tell, but a pass there would
make a user who switched from the loop miss a bug the loop caught.

The cases (a few hundred, built deterministically):

- every broken variant of the layer zoo (`layer_zoo`), at its default point, in float32, with
  large-magnitude parameters, at the layer's kinks, near a minimum (tiny gradients) and under
  loss offsets of 1e2, 1e5 and 1e8; layers are reduced to the scalar sum(out * dout);
- random MLPs (1-2 hidden layers, relu / tanh / sigmoid, with and without L2) with a
  hand-written backprop and one mistake of each kind: a scale of 2, 4, m or 1/m, a sign flip,
  a transposed square weight, a missing or extra L2 term, a zeroed gradient, one wrong
  element, a wrong row; at ordinary points, at ReLU kinks (pre-activations exactly 0), near a
  minimum and under offsets of 1e2..1e8, in float64 and float32.

Where the textbook's number is not > 1e-3 nothing is asserted (gradcheck may well see more).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import gradcheck
from layer_zoo import LAYERS, Layer, Params, as_float32, make

TEXTBOOK_EPS = 1e-7
TEXTBOOK_BUG = 1e-3
OFFSETS = (1e2, 1e5, 1e8)
INCONCLUSIVE = getattr(gradcheck.Verdict, "INCONCLUSIVE", None)
ALARMS = (gradcheck.Verdict.SUSPICIOUS, gradcheck.Verdict.BUG)

Cost = Callable[[Params], Any]


@dataclass(frozen=True)
class Case:
    name: str
    params: Params
    cost: Cost
    grads: Params
    """The broken gradient under test."""
    right: Params
    """The correct one, to make sure the mistake changes something."""

    def fresh(self) -> Params:
        return {k: v.copy() for k, v in self.params.items()}


# --- the textbook ---------------------------------------------------------------------------


def textbook_difference(cost: Cost, params: Params, grads: Params) -> float:
    """The classic loop: θ copied twice per coordinate, ±ε, params rebuilt in their dtype."""
    names = list(params)
    shapes = [params[k].shape for k in names]
    dtypes = [params[k].dtype for k in names]
    sizes = [params[k].size for k in names]
    theta = np.concatenate([np.ravel(params[k]).astype(np.float64) for k in names])
    analytic = np.concatenate([np.ravel(grads[k]).astype(np.float64) for k in names])

    def rebuild(vector: np.ndarray) -> Params:
        parts = np.split(vector, np.cumsum(sizes)[:-1])
        return {
            k: part.reshape(shape).astype(dtype)
            for k, part, shape, dtype in zip(names, parts, shapes, dtypes, strict=True)
        }

    numeric = np.empty_like(theta)
    for i in range(theta.size):
        plus = theta.copy()
        plus[i] += TEXTBOOK_EPS
        minus = theta.copy()
        minus[i] -= TEXTBOOK_EPS
        numeric[i] = (float(cost(rebuild(plus))) - float(cost(rebuild(minus)))) / (2 * TEXTBOOK_EPS)
    return float(
        np.linalg.norm(numeric - analytic) / (np.linalg.norm(numeric) + np.linalg.norm(analytic))
    )


def difference(a: Params, b: Params) -> float:
    x = np.concatenate([np.ravel(a[k]).astype(np.float64) for k in a])
    y = np.concatenate([np.ravel(b[k]).astype(np.float64) for k in a])
    total = np.linalg.norm(x) + np.linalg.norm(y)
    return float(np.linalg.norm(x - y) / total) if total else 0.0


def is_bug(case: Case) -> bool:
    """A mistake the thresholds call at least suspicious: gradcheck must never pass it.

    (A mistake can vanish at a point: a zeroed gradient that was zero, a wrong ReLU
    derivative at a dead unit. Such a case is no bug there and is left out.)
    """
    return difference(case.grads, case.right) >= 1e-5


# --- layer-zoo cases ------------------------------------------------------------------------


def _scalar(layer: Layer, data: dict[str, Any], dout: Any, offset: float) -> Cost:
    """The layer as a scalar cost: its loss, or sum(out * dout); plus the offset in float64."""

    def cost(p: Params) -> Any:
        out = layer.forward(p, data)[0]
        value = out if layer.loss else np.sum(out * dout)
        return float(value) + offset if offset else value

    return cost


def _zoo_case(layer: Layer, variant: str, condition: str, params: Params, data: Any) -> Case:
    backward = layer.broken[variant].backward
    out, cache = layer.forward(params, data)
    name = f"zoo:{layer.name}/{variant}@{condition}"
    if condition == "near_minimum":
        # As layer_zoo.run_near_minimum: 1 + ||out - target||^2 / 2 with target a hair
        # (1e-7) from the output, so the gradient J^T (out - target) is tiny.
        residual = 1e-7 * np.random.default_rng(1).standard_normal(np.shape(out))
        target = np.asarray(out, dtype=np.float64) - residual
        grads, right = backward(residual, cache), layer.backward(residual, cache)

        def cost(p: Params) -> float:
            gap = np.asarray(layer.forward(p, data)[0], dtype=np.float64) - target
            return 1.0 + 0.5 * float(np.sum(gap * gap))

        return Case(name, params, cost, grads, right)
    offset = float(condition.removeprefix("offset")) if condition.startswith("offset") else 0.0
    dout = None if layer.loss else np.random.default_rng(0).standard_normal(np.shape(out))
    grads = backward(1.0 if layer.loss else dout.copy(), cache)
    right = layer.backward(1.0 if layer.loss else dout.copy(), cache)
    return Case(name, params, _scalar(layer, data, dout, offset), grads, right)


def zoo_cases(conditions: str) -> Iterator[Case]:
    for layer in LAYERS.values():
        for variant in layer.broken:
            params, data = make(layer)
            if conditions == "plain":
                yield _zoo_case(layer, variant, "default", params, data)
                for key, transform in layer.large.items():
                    yield _zoo_case(layer, variant, f"large{key}", *transform(params, data))
                for key, maker in layer.kinks.items():
                    kinked = maker(np.random.default_rng(0))
                    yield _zoo_case(layer, variant, f"kinks:{key}", *kinked)
            elif conditions == "float32":
                yield _zoo_case(layer, variant, "float32", *as_float32(params, data))
            elif conditions == "near_minimum":
                yield _zoo_case(layer, variant, "near_minimum", params, data)
            else:
                for offset in OFFSETS:
                    yield _zoo_case(layer, variant, f"offset{offset:.0e}", params, data)


# --- random MLPs with hand-written backprop -------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


ACTIVATIONS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "sigmoid": (_sigmoid, lambda z, a: a * (1 - a)),
}
MISTAKES = ("scale2", "scale4", "scale_m", "scale_1/m", "sign", "transpose", "missing_l2",
            "extra_l2", "zero", "element", "row")  # fmt: skip
PER_MISTAKE = 12


@dataclass(frozen=True)
class Net:
    """Rows are examples; W_l is (n_{l-1}, n_l). A softmax head, or near a minimum, a
    squared-error head 1 + ||scores - target||^2 / 2 with the target a hair from the scores."""

    act: str
    layers: int
    reg: float
    X: np.ndarray
    y: np.ndarray
    target: np.ndarray | None = None

    def forward(self, p: Params) -> tuple[Any, Any]:
        fn = ACTIVATIONS[self.act][0]
        a, caches = self.X, []
        for layer in range(1, self.layers + 1):
            z = a @ p[f"W{layer}"] + p[f"b{layer}"]
            nxt = fn(z) if layer < self.layers else z
            caches.append((a, z, nxt))
            a = nxt
        m = self.X.shape[0]
        if self.target is None:
            shifted = a - a.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
            loss = -np.sum(log_probs[np.arange(m), self.y]) / m
            dscores = np.exp(log_probs)
            dscores[np.arange(m), self.y] -= 1
            dscores /= m
        else:
            gap = a - self.target
            loss = 1.0 + 0.5 * np.sum(gap * gap)
            dscores = gap
        weights = sum(np.sum(p[f"W{layer}"] ** 2) for layer in range(1, self.layers + 1))
        return loss + 0.5 * self.reg * weights, (caches, dscores)

    def backward(self, p: Params, cache: Any) -> Params:
        derivative = ACTIVATIONS[self.act][1]
        caches, da = cache
        grads: Params = {}
        for layer in range(self.layers, 0, -1):
            a_prev, z, a = caches[layer - 1]
            dz = da if layer == self.layers else da * derivative(z, a)
            grads[f"W{layer}"] = a_prev.T @ dz + self.reg * p[f"W{layer}"]
            grads[f"b{layer}"] = dz.sum(axis=0)
            da = dz @ p[f"W{layer}"].T
        return grads


def _mlp(rng: np.random.Generator, act: str, layers: int, reg: float, kink: bool) -> tuple:
    """Params and data; with ``kink``, hidden units 0 and 1 sit exactly at the ReLU's 0.

    Small integers and multiples of 1/8 make X @ W1 + b1 exact in float32 and float64 alike,
    as in `layer_zoo.mlp_relu_kinks`.
    """
    m = int(rng.integers(3, 7))
    width = int(rng.integers(2, 5))
    # A square weight for the transpose mistake: W2 is (width, width) in both depths.
    sizes = [int(rng.integers(2, 5)), width, width] if layers == 2 else [
        int(rng.integers(2, 5)), width, width, int(rng.integers(2, 4))]  # fmt: skip
    params = {}
    for layer in range(1, layers + 1):
        shape = (sizes[layer - 1], sizes[layer])
        params[f"W{layer}"] = rng.standard_normal(shape) * 0.8
        params[f"b{layer}"] = rng.standard_normal(sizes[layer]) * 0.1
    X = rng.standard_normal((m, sizes[0]))
    if kink:
        X = rng.integers(-3, 4, size=X.shape).astype(float)
        W1 = rng.integers(-8, 9, size=params["W1"].shape) / 8
        b1 = rng.integers(-8, 9, size=params["b1"].shape) / 8
        for j in range(min(2, width)):
            X[j % m, X[j % m] == 0] = 1.0
            W1[W1[:, j] == 0, j] = 0.5
            b1[j] = -(X[j % m] @ W1[:, j])
        params["W1"], params["b1"] = W1, b1
    net = Net(act=act, layers=layers, reg=reg, X=X, y=rng.integers(0, sizes[-1], size=m))
    return params, net


def _mistake(rng: np.random.Generator, kind: str, grads: Params, params: Params, net: Net) -> str:
    """Apply one mistake to ``grads`` in place; return where it went."""
    weights = [k for k in grads if k.startswith("W")]
    name = str(rng.choice(weights if kind in ("missing_l2", "extra_l2", "row") else list(grads)))
    g = grads[name]
    m = net.X.shape[0]
    if kind == "transpose":
        name = "W2"
        grads[name] = grads[name].T.copy()
    elif kind.startswith("scale"):
        g *= {"scale2": 2, "scale4": 4, "scale_m": m, "scale_1/m": 1 / m}[kind]
    elif kind == "sign":
        g *= -1
    elif kind == "missing_l2":
        g -= net.reg * params[name]
    elif kind == "extra_l2":
        g += net.reg * params[name]
    elif kind == "zero":
        g[...] = 0
    elif kind == "element":
        # Errors from 0.3 % to 100 % of the tensor's largest element: some sit right at
        # the textbook's threshold.
        flat = int(rng.integers(g.size))
        size = 10 ** rng.uniform(-2.5, 0) * float(np.max(np.abs(g)))
        g.reshape(-1)[flat] += size * rng.choice([-1.0, 1.0])
        return f"{name}.flat[{flat}]"
    else:  # row
        row = int(rng.integers(g.shape[0]))
        factor = float(rng.choice([-1.0, 0.0, 2.0]))
        g[row] *= factor
        return f"{name}[{row}] x{factor:g}"
    return name


def mlp_cases(kinds: tuple[str, ...]) -> Iterator[Case]:
    for k, kind in enumerate(MISTAKES):
        if kind not in kinds:
            continue
        for j in range(PER_MISTAKE):
            rng = np.random.default_rng([9, k, j])
            act = str(rng.choice(list(ACTIVATIONS)))
            points = ["ordinary", "offset", "near_minimum"] + (["kink"] if act == "relu" else [])
            if kind in ("missing_l2", "extra_l2"):
                points.remove("near_minimum")  # tiny gradients need reg = 0
            point = points[j % len(points)]
            reg = 0.0 if point == "near_minimum" else float(rng.choice([0.0, 0.1]))
            if kind in ("missing_l2", "extra_l2"):
                reg = 0.1
            layers = int(rng.integers(2, 4))
            params, net = _mlp(rng, act, layers, reg, kink=point == "kink")
            if point == "near_minimum":
                scores = net.forward(params)[1][0][-1][2]
                residual = 10 ** rng.uniform(-7, -4) * rng.standard_normal(scores.shape)
                net = Net(act, layers, reg, net.X, net.y, target=scores - residual)
            float32 = rng.uniform() < 0.3
            if float32:
                params = {key: v.astype(np.float32) for key, v in params.items()}
                target = None if net.target is None else net.target.astype(np.float32)
                net = Net(act, layers, reg, net.X.astype(np.float32), net.y, target=target)
            offset = 10.0 ** int(rng.integers(2, 9)) if point == "offset" else 0.0
            _, cache = net.forward(params)
            right = net.backward(params, cache)
            grads = {key: g.copy() for key, g in right.items()}
            where = _mistake(rng, kind, grads, params, net)

            def cost(p: Params, net: Net = net, offset: float = offset) -> Any:
                value = net.forward(p)[0]
                return float(value) + offset if offset else value

            label = (
                f"mlp{j}:{act}-{layers}layers-reg{reg:g}-{'f32' if float32 else 'f64'}"
                f"@{point}{f'{offset:.0e}' if offset else ''}:{kind}({where})"
            )
            yield Case(label, params, cost, grads, right)


# --- the property ---------------------------------------------------------------------------


FAMILIES: dict[str, Callable[[], Iterator[Case]]] = {
    "zoo-plain": lambda: zoo_cases("plain"),
    "zoo-float32": lambda: zoo_cases("float32"),
    "zoo-near-minimum": lambda: zoo_cases("near_minimum"),
    "zoo-offsets": lambda: zoo_cases("offsets"),
    "mlp-scale-sign": lambda: mlp_cases(("scale2", "scale4", "scale_m", "scale_1/m", "sign")),
    "mlp-structure": lambda: mlp_cases(("transpose", "missing_l2", "extra_l2", "zero")),
    "mlp-elements": lambda: mlp_cases(("element", "row")),
}


def outcome(report: gradcheck.Report) -> str:
    if report.passed:
        return "passes"
    found = [report.verdict, *(p.verdict for p in report.params.values())]
    if any(v in ALARMS for v in found):
        return "fails"
    return "inconclusive" if INCONCLUSIVE in found else "other"


def judge(case: Case) -> tuple[float, gradcheck.Report]:
    textbook = textbook_difference(case.cost, case.fresh(), case.grads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gradcheck.GradcheckWarning)
        report = gradcheck.check(case.cost, case.fresh(), case.grads)
    return textbook, report


def bug_cases(family: str) -> list[Case]:
    return [case for case in FAMILIES[family]() if is_bug(case)]


def test_there_are_enough_cases() -> None:
    counts = {family: len(bug_cases(family)) for family in FAMILIES}
    assert sum(counts.values()) >= 200, counts
    names = [case.name for family in FAMILIES for case in bug_cases(family)]
    assert len(set(names)) == len(names), "two cases share a name"


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("reg", [0.0, 0.1])
def test_the_hand_written_backprop_is_right(act: str, layers: int, reg: float) -> None:
    """Without this, a "mistake" could sit on top of a wrong backprop, or cancel one."""
    params, net = _mlp(np.random.default_rng([act.encode()[0], layers]), act, layers, reg, False)
    right = net.backward(params, net.forward(params)[1])
    assert textbook_difference(lambda p: net.forward(p)[0], params, right) < 1e-7


@pytest.mark.parametrize("family", list(FAMILIES))
def test_gradcheck_fails_what_the_textbook_flags(family: str) -> None:
    counts: Counter[str] = Counter()
    missed = []
    for case in bug_cases(family):
        textbook, report = judge(case)
        said = outcome(report)
        flagged = math.isfinite(textbook) and textbook > TEXTBOOK_BUG
        counts["cases"] += 1
        counts[f"gradcheck {said}"] += 1
        if flagged:
            counts["textbook flags"] += 1
            counts[f"flagged, gradcheck {said}"] += 1
            if report.passed:
                kinds = sorted({f.kind for f in report.findings})
                missed.append(
                    f"{case.name}: textbook {textbook:.3g}, gradcheck {report.verdict.value} "
                    f"{report.difference:.3g} (step {report.settings.step}; findings {kinds})"
                )
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{family}: {summary}")
    assert not missed, (
        f"gradcheck passes {len(missed)} mistake(s) the textbook loop flags ({summary}):\n"
        + "\n".join(missed)
    )
