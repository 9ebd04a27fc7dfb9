"""Cases for the trust properties (issue 9): smooth costs at every scale, correct and corrupted.

A case is a few arrays θ_k = s_k u_k (u of order 1, s_k = 10^U(-6, 9)) and the cost

    f(θ) = A h(x) + offset,    x = the concatenation of θ_k / s_k,

with h smooth and of order-1 variation in x: every partial derivative of h has magnitude at
least 0.15 wherever |x| <= 2 (|l| >= 1 dominates the other terms; see `_Coefficients`). So the
exact gradient A / s_k ∂h/∂x is known in closed form, and the amplitude A and the scales s_k
set how tiny or huge it is (from about 1e-18 to 1e14). h is computed in the params' dtype with
NumPy, the offset is added in float64, and the cost returns a Python float, as a user's cost
typically does.

One `Spec` (a handful of plain numbers, printed by hypothesis as the falsifying example) fully
determines a case: `build(spec)` makes the params, the cost, the correct gradient and one
corrupted gradient. Specs are drawn through `Draw`, one sampler written once and driven either
by hypothesis (`specs()`, for the tests, which shrink) or by a seeded NumPy generator
(`random_spec()`, for benchmarks/trust_counts.py), so both see the same distribution.

**The regime where a verdict must be reached** (`TrustCase.resolvable`, assertion 3 of the
issue). Outside it a check may honestly be inconclusive; inside it, the numbers allow a verdict:

- float64, max|θ| <= 1e3, offset <= 1e6 and offset <= 1e7 A. The cost's round-off is about
  1.1e-16 (offset + A |h|), with |h| <= ~5 n <= 5e3. A central difference with step δ in
  x units (δ s in θ) then carries a relative error of about 1.1e-16 offset / (A δ) <= 1.1e-9 / δ
  from round-off plus about δ² / 6 (|h'''| / |h'| is of order 1) from truncation: at δ ~ 1e-3
  both are ~1e-6, so the normalized difference of a correct gradient is ~5e-7, 20 times below
  the 1e-5 that separates acceptable from suspicious. Tiny θ (s = 1e-6) need a step relative
  to the tensor's scale, not the textbook 1e-7; that is the check's job. (Measured on 150
  such cases, steps of 0.1 % or 1 % of each tensor's RMS |θ|: at most 1e-8.)
- float32, max|θ| <= 1e2, the same offset bounds, and a *centered* cost (``spec.centered``):
  h = c0 + Σ (term(x) - term(x0)) with c0 ~ U(0.5, 2), every term computed in float32 and
  zero at the base point x0. Moving one coordinate changes one elementwise term and the few
  coupling terms; the other terms are bit-for-bit what they were, so the round-off that a
  difference sees is that of an order-1 cost: a few float32 ulps (~4 * 6e-8) against a
  change of |h'| δ >= 0.15 δ. Measured on 150 such cases, with a plain Richardson-
  extrapolated central difference at steps of 2-10 % of each tensor's RMS |θ|: the
  normalized difference has median 6e-7, 90th percentile 1.1e-6; the worst, 1.1e-5, was a
  scalar with |θ| = s / 60, where a step of ~|θ| instead gives 1e-7. So the regime is
  resolvable, though not by a plain central difference at one fixed step. An uncentered
  float32 cost sums n terms of order 1 and carries round-off ~6e-8 n, which for n ~ 1000
  no finite difference resolves to 1e-5 coordinate by coordinate: there only assertions
  1 and 2 apply.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
from hypothesis import strategies as st

import gradcheck

T = TypeVar("T")

MODES = ("full", "directional", "bisect")
DTYPES = ("float32", "float64")
CORRUPTIONS = ("negate", "zero", "double", "shift")
"""× (-1), × 0, × 2 on an element holding >= 1 % of its tensor's gradient norm; + 10 % of the
tensor's RMS gradient on any element."""
NAMES = ("a", "b", "c")

MAX_ELEMENTS = 1000
SMALL_DIM = 4
LOG_SCALE = (-6.0, 9.0)
LOG_AMPLITUDE = (-8.0, 8.0)
LOG_OFFSET = (0.0, 8.0)
U_MAX = 2.0
"""|u| <= U_MAX, so max|θ_k| <= U_MAX s_k."""

REGIME_THETA = {"float64": 1e3, "float32": 1e2}
REGIME_OFFSET = 1e6
REGIME_OFFSET_PER_AMPLITUDE = 1e7
ELIGIBLE_SHARE = 0.01
"""The scaling corruptions hit an element holding at least this share of the tensor's norm."""
SHIFT = 0.1
"""The additive corruption: this fraction of the tensor's RMS gradient."""

INCONCLUSIVE = getattr(gradcheck.Verdict, "INCONCLUSIVE", None)
"""None before the fix that introduces it: the counts then run, with no inconclusive ones."""
ALARMS = (gradcheck.Verdict.SUSPICIOUS, gradcheck.Verdict.BUG)


# --- drawing: one sampler, two sources of randomness --------------------------------------


class Draw(Protocol):
    def integer(self, low: int, high: int) -> int: ...

    def uniform(self, low: float, high: float) -> float: ...

    def chance(self, percent: int) -> bool: ...

    def choice(self, options: Sequence[T]) -> T: ...


class HypothesisDraw:
    """Draw from hypothesis, which shrinks (`chance` to True: True is the simple case)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw

    def integer(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))

    def uniform(self, low: float, high: float) -> float:
        return self._draw(st.floats(low, high))

    def chance(self, percent: int) -> bool:
        return self._draw(st.integers(0, 99)) < percent

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))


class NumpyDraw:
    """Draw from a seeded NumPy generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def integer(self, low: int, high: int) -> int:
        return int(self._rng.integers(low, high + 1))

    def uniform(self, low: float, high: float) -> float:
        return float(self._rng.uniform(low, high))

    def chance(self, percent: int) -> bool:
        return bool(self._rng.integers(0, 100) < percent)

    def choice(self, options: Sequence[T]) -> T:
        return options[int(self._rng.integers(len(options)))]


# --- the spec ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """Everything that determines a case; `build(spec)` makes it."""

    dtype: str
    shapes: tuple[tuple[int, ...], ...]
    log_scales: tuple[float, ...]
    """s_k = 10**log_scales[k]."""
    log_amplitude: float
    """A = 10**log_amplitude."""
    offset: float
    centered: bool
    features: int
    """Number of tanh couplings between all elements (0 to 3)."""
    corruption: str
    corrupt_array: int
    corrupt_pick: float
    """In [0, 1): which of the eligible elements of that array is corrupted."""
    seed: int
    """Seeds u and the cost's coefficients."""


def draw_spec(d: Draw, *, resolvable: bool = False) -> Spec:
    """One spec; ``resolvable=True`` draws only from the regime where a verdict must be reached."""
    dtype = d.choice(DTYPES)
    arrays = d.integer(1, 3)
    large = not d.chance(80)
    budget = MAX_ELEMENTS // arrays
    shapes = []
    for _ in range(arrays):
        rank = d.integer(0, 3)
        top = max(1, math.floor(budget ** (1 / rank) + 1e-9)) if large and rank else SMALL_DIM
        shapes.append(tuple(d.integer(1, top) for _ in range(rank)))
    top_scale = LOG_SCALE[1]
    if resolvable:
        top_scale = math.log10(REGIME_THETA[dtype] / U_MAX)
    log_scales = tuple(_log_uniform(d, LOG_SCALE[0], top_scale) for _ in range(arrays))
    log_amplitude = _log_uniform(d, *LOG_AMPLITUDE)
    offset = 0.0
    if not d.chance(40):
        top_offset = LOG_OFFSET[1]
        if resolvable:
            bound = min(REGIME_OFFSET, REGIME_OFFSET_PER_AMPLITUDE * 10**log_amplitude)
            top_offset = math.log10(bound)
        if top_offset > LOG_OFFSET[0]:
            offset = min(10 ** d.uniform(LOG_OFFSET[0], top_offset), 10**top_offset)
    centered = True if resolvable and dtype == "float32" else d.chance(50)
    return Spec(
        dtype=dtype,
        shapes=tuple(shapes),
        log_scales=log_scales,
        log_amplitude=log_amplitude,
        offset=offset,
        centered=centered,
        features=d.integer(0, 3),
        corruption=d.choice(CORRUPTIONS),
        corrupt_array=d.integer(0, arrays - 1),
        corrupt_pick=d.uniform(0.0, 0.999),
        seed=d.integer(0, 2**32 - 1),
    )


def _log_uniform(d: Draw, low: float, high: float) -> float:
    """A decade, then a point in it: hypothesis' floats crowd around 0 and the bounds, its
    integers spread over the decades, so extreme scales are drawn about as often as 1."""
    decade = d.integer(math.floor(low), math.ceil(high) - 1)
    return min(max(decade + d.uniform(0.0, 1.0), low), high)


@st.composite
def specs(draw: st.DrawFn, *, resolvable: bool = False) -> Spec:
    """Hypothesis strategy for `Spec` (see `draw_spec`)."""
    return draw_spec(HypothesisDraw(draw), resolvable=resolvable)


def random_spec(rng: np.random.Generator, *, resolvable: bool = False) -> Spec:
    """A spec from a seeded NumPy generator, with the distribution of `specs()`."""
    return draw_spec(NumpyDraw(rng), resolvable=resolvable)


# --- the cost ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Coefficients:
    """h(x) = Σ_i [l x + a sin(b x + c) + d log1p(x²)]_i + Σ_j w_j tanh(P_j x + p_j) + γ (q x)² / 2.

    Bounds on the partial derivatives, for |x| <= 2: |l| in [1, 2]; |a b| <= 0.3; |d 2x/(1+x²)|
    <= 0.2; |Σ_j w_j P_ji sech²| <= 3 * 0.5 * 0.1 = 0.15; |γ (q x) q_i| <= 0.1 * 2 sqrt(n) /
    sqrt(n) = 0.2. So |∂h/∂x_i| >= 1 - 0.85 = 0.15: no element of the exact gradient is lost.
    Every coefficient is stored in the case's dtype and used, exactly, in float64 for the
    closed-form gradient.
    """

    linear: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    P: np.ndarray
    p: np.ndarray
    w: np.ndarray
    q: np.ndarray
    gamma: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, features: int, dtype: Any) -> _Coefficients:
        a = rng.uniform(-0.3, 0.3, n)
        b = rng.uniform(0.5, 1.0, n)
        return cls(
            linear=rng.uniform(1.0, 2.0, n) * rng.choice([-1.0, 1.0], n),
            a=a,
            b=b,
            c=rng.uniform(-np.pi, np.pi, n),
            d=rng.uniform(-0.1, 0.1, n),
            P=rng.uniform(-0.1, 0.1, (features, n)),
            p=rng.uniform(-1.0, 1.0, features),
            w=rng.uniform(-0.5, 0.5, features),
            q=rng.uniform(-1.0, 1.0, n) / math.sqrt(n),
            gamma=np.asarray(rng.uniform(-0.1, 0.1)),
        ).astype(dtype)

    def astype(self, dtype: Any) -> _Coefficients:
        fields = self.__dataclass_fields__
        return _Coefficients(**{k: np.asarray(getattr(self, k)).astype(dtype) for k in fields})

    def terms(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The elementwise terms, the coupling terms and the quadratic term, in x's dtype."""
        wave = self.a * np.sin(self.b * x + self.c)
        elementwise = self.linear * x + wave + self.d * np.log1p(x * x)
        coupling = self.w * np.tanh(self.P @ x + self.p)
        v = self.q @ x
        return elementwise, coupling, self.gamma * v * v / 2

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """∂h/∂x in float64 (x float64; the coefficients are cast exactly)."""
        k = self.astype(np.float64)
        sech2 = 1 - np.tanh(k.P @ x + k.p) ** 2
        return (
            k.linear
            + k.a * k.b * np.cos(k.b * x + k.c)
            + k.d * 2 * x / (1 + x * x)
            + k.P.T @ (k.w * sech2)
            + k.gamma * (k.q @ x) * k.q
        )


@dataclass
class TrustCase:
    """Params, cost, correct and corrupted gradients, and what the case is."""

    spec: Spec
    base: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    corrupted: dict[str, np.ndarray]
    where: tuple[str, tuple[int, ...]]
    """The corrupted element: (array name, index)."""
    cost: Callable[[dict[str, np.ndarray]], float] = field(repr=False)
    max_abs_theta: float = 0.0

    @property
    def dtype(self) -> str:
        return self.spec.dtype

    @property
    def amplitude(self) -> float:
        return 10**self.spec.log_amplitude

    @property
    def size(self) -> int:
        return sum(a.size for a in self.base.values())

    @property
    def resolvable(self) -> bool:
        """In the regime where a correct gradient must pass (see the module's docstring)."""
        offset = self.spec.offset
        if offset > REGIME_OFFSET or offset > REGIME_OFFSET_PER_AMPLITUDE * self.amplitude:
            return False
        if self.max_abs_theta > REGIME_THETA[self.dtype]:
            return False
        return self.dtype == "float64" or self.spec.centered

    def params(self) -> dict[str, np.ndarray]:
        """Fresh copies of the params, so no check sees another's leftovers."""
        return {name: array.copy() for name, array in self.base.items()}

    def check(self, *, mode: str, corrupted: bool, **options: Any) -> gradcheck.Report:
        grads = self.corrupted if corrupted else self.grads
        return gradcheck.check(self.cost, self.params(), grads, mode=mode, **options)

    def describe(self) -> str:
        s = self.spec
        scales = ", ".join(f"1e{v:.1f}" for v in s.log_scales)
        name, index = self.where
        return (
            f"{s.dtype} shapes={list(s.shapes)} n={self.size} s=[{scales}] "
            f"max|θ|={self.max_abs_theta:.2g} A=1e{s.log_amplitude:.1f} offset={s.offset:.3g} "
            f"{'centered' if s.centered else 'uncentered'} features={s.features} "
            f"corruption={s.corruption} at {name}{list(index)} "
            f"{'resolvable' if self.resolvable else 'outside the regime'}"
        )


def build(spec: Spec) -> TrustCase:
    """The case a spec describes."""
    dtype = np.dtype(spec.dtype)
    rng = np.random.default_rng(spec.seed)
    names = NAMES[: len(spec.shapes)]
    sizes = [math.prod(shape) for shape in spec.shapes]
    n = sum(sizes)
    bounds = np.cumsum([0, *sizes])
    slices = [slice(int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds)]
    # The scales and the amplitude as the dtype holds them, so that the float32 cost and the
    # float64 closed form describe the same function.
    scales = [dtype.type(10**v) for v in spec.log_scales]
    amplitude = dtype.type(10**spec.log_amplitude)
    coefficients = _Coefficients.draw(rng, n, spec.features, dtype)
    base = {
        name: np.asarray(rng.uniform(-U_MAX, U_MAX, shape) * float(s), dtype=dtype)
        for name, shape, s in zip(names, spec.shapes, scales, strict=True)
    }

    def x_of(params: dict[str, np.ndarray]) -> np.ndarray:
        parts = [np.ravel(params[name]) / s for name, s in zip(names, scales, strict=True)]
        return np.concatenate(parts).astype(dtype, copy=False)

    reference = coefficients.terms(x_of(base))
    level = dtype.type(rng.uniform(0.5, 2.0))

    def cost(params: dict[str, np.ndarray]) -> float:
        # A wild step may overflow an intermediate: the check is told by a non-finite cost,
        # not by a warning raised inside the cost.
        with np.errstate(all="ignore"):
            elementwise, coupling, quadratic = coefficients.terms(x_of(params))
            if spec.centered:
                h = (
                    level
                    + np.sum(elementwise - reference[0])
                    + np.sum(coupling - reference[1])
                    + (quadratic - reference[2])
                )
            else:
                h = np.sum(elementwise) + np.sum(coupling) + quadratic
            value = amplitude * h.astype(dtype)
        return float(value) + spec.offset

    x64 = np.concatenate(
        [
            np.ravel(base[name]).astype(np.float64) / float(s)
            for name, s in zip(names, scales, strict=True)
        ]
    )
    dh = coefficients.gradient(x64)
    exact = {
        name: np.array((float(amplitude) / float(s)) * dh[part]).reshape(shape)
        for name, s, part, shape in zip(names, scales, slices, spec.shapes, strict=True)
    }
    wrong = {name: g.copy() for name, g in exact.items()}
    name = names[spec.corrupt_array]
    target = wrong[name].reshape(-1)  # a view of the (contiguous) copy
    norm = float(np.linalg.norm(target))
    if spec.corruption == "shift":
        flat = int(spec.corrupt_pick * target.size)
        target[flat] += SHIFT * norm / math.sqrt(target.size)
    else:
        eligible = np.flatnonzero(np.abs(target) >= ELIGIBLE_SHARE * norm)
        flat = int(eligible[int(spec.corrupt_pick * eligible.size)])
        target[flat] *= {"negate": -1.0, "zero": 0.0, "double": 2.0}[spec.corruption]
    index = tuple(int(i) for i in np.unravel_index(flat, spec.shapes[spec.corrupt_array]))
    return TrustCase(
        spec=spec,
        base=base,
        grads={k: np.asarray(g, dtype=dtype) for k, g in exact.items()},
        corrupted={k: np.asarray(g, dtype=dtype) for k, g in wrong.items()},
        where=(name, index),
        cost=cost,
        max_abs_theta=max(float(np.max(np.abs(a), initial=0.0)) for a in base.values()),
    )


# --- reading a report ------------------------------------------------------------------------


def verdicts(report: gradcheck.Report) -> list[gradcheck.Verdict]:
    """The overall verdict and every parameter's."""
    return [report.verdict, *(p.verdict for p in report.params.values())]


def outcome(report: gradcheck.Report) -> str:
    """Say "passes", "fails" (an alarm), "inconclusive" or "other" (not passed, no such verdict)."""
    if report.passed:
        return "passes"
    found = verdicts(report)
    if any(v in ALARMS for v in found):
        return "fails"
    if INCONCLUSIVE is not None and INCONCLUSIVE in found:
        return "inconclusive"
    return "other"


def says_bug(report: gradcheck.Report) -> bool:
    return gradcheck.Verdict.BUG in verdicts(report)
