"""Finite-difference schemes: where to evaluate, and how to combine the values into derivatives.

A scheme evaluates the cost at ``x + c * h`` for each ``c`` in its offsets. The values
written come from the step primitive (`_step.realize`), so the displacements actually
taken differ from ``c * h`` by rounding; `Scheme.weights` is computed from those realized
displacements, and the same weights give the estimate's round-off error bar:
``noise * ||weights||``.

References:
    Fornberg (1988) for central differences of order 4, written here as the Richardson
    extrapolation ``(4 C(h) - C(2h)) / 3`` of two central differences; Squire & Trapp
    (1998) for the complex step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Method = Literal["central", "forward", "backward", "central4", "complex"]
METHODS: tuple[Method, ...] = ("central", "forward", "backward", "central4", "complex")

Weights = Callable[[NDArray[np.float64]], NDArray[np.float64]]
"""``weights(displacements)``: displacements [k, P] realized per stencil point (signed);
returns [k, P + 1], the weight of each point's value and, last, of the base value."""
Formula = Callable[[NDArray[np.float64], float, NDArray[np.float64]], NDArray[np.float64]]
"""``formula(values, base, displacements)``: the derivatives, differences taken first (so a
linear cost gives its slope exactly); the same linear combination as the weights."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scheme:
    """One finite-difference formula for a partial derivative."""

    name: Method
    offsets: tuple[float, ...]
    order: int
    """Order of the truncation error: O(h**order)."""
    complex_step: bool
    weights: Weights
    formula: Formula

    @property
    def evaluations_per_coordinate(self) -> int:
        """Cost evaluations one coordinate needs (the base value is shared)."""
        return len(self.offsets)

    def combine(
        self, values: NDArray[Any], base: float | complex, displacements: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Derivatives [k] from the values [k, P] at the realized displacements [k, P]."""
        if self.complex_step:
            return np.asarray(np.imag(values[:, 0]) / displacements[:, 0], dtype=np.float64)
        real = np.real(values).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            out = np.asarray(self.formula(real, float(np.real(base)), displacements))
        out[~np.isfinite(real).all(axis=1)] = np.nan
        return out

    def noise(self, displacements: NDArray[np.float64], sigma: float) -> NDArray[np.float64]:
        """Round-off error bar [k] of each derivative, for cost noise ``sigma``."""
        if self.complex_step:  # no subtraction: only the rounding of the result
            return np.zeros(len(displacements))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            w = self.weights(displacements)
            bars: NDArray[np.float64] = sigma * np.sqrt(np.sum(w**2, axis=1))
        return np.where(np.isnan(bars), np.inf, bars)  # a step too tiny to divide by

    def step(self, displacements: NDArray[np.float64]) -> NDArray[np.float64]:
        """The representative step [k] of each estimate (half the central span, or |c h|)."""
        d = displacements
        if self.name == "central":
            return (d[:, 0] - d[:, 1]) / 2
        if self.name == "central4":
            return (d[:, 1] - d[:, 2]) / 2
        return np.abs(d[:, 0])


def _central(d: NDArray[np.float64]) -> NDArray[np.float64]:
    span = d[:, 0] - d[:, 1]
    return np.stack([1 / span, -1 / span, np.zeros(len(d))], axis=1)


def _one_sided(d: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.stack([1 / d[:, 0], -1 / d[:, 0]], axis=1)


def _central4(d: NDArray[np.float64]) -> NDArray[np.float64]:
    # Offsets (2, 1, -1, -2): R = (4 C(h) - C(2h)) / 3 with C over the realized spans.
    inner = d[:, 1] - d[:, 2]
    outer = d[:, 0] - d[:, 3]
    return np.stack(
        [-1 / (3 * outer), 4 / (3 * inner), -4 / (3 * inner), 1 / (3 * outer), np.zeros(len(d))],
        axis=1,
    )


def _complex(d: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.stack([1 / d[:, 0], np.zeros(len(d))], axis=1)


def _central_formula(v: Any, base: float, d: Any) -> Any:
    return (v[:, 0] - v[:, 1]) / (d[:, 0] - d[:, 1])


def _one_sided_formula(v: Any, base: float, d: Any) -> Any:
    return (v[:, 0] - base) / d[:, 0]


def _central4_formula(v: Any, base: float, d: Any) -> Any:
    inner = (v[:, 1] - v[:, 2]) / (d[:, 1] - d[:, 2])
    outer = (v[:, 0] - v[:, 3]) / (d[:, 0] - d[:, 3])
    return (4 * inner - outer) / 3


def _complex_formula(v: Any, base: float, d: Any) -> Any:
    return np.imag(v[:, 0]) / d[:, 0]


SCHEMES: dict[str, Scheme] = {
    "central": Scheme(name="central", offsets=(1.0, -1.0), order=2, complex_step=False,
                      weights=_central, formula=_central_formula),
    "forward": Scheme(name="forward", offsets=(1.0,), order=1, complex_step=False,
                      weights=_one_sided, formula=_one_sided_formula),
    "backward": Scheme(name="backward", offsets=(-1.0,), order=1, complex_step=False,
                       weights=_one_sided, formula=_one_sided_formula),
    "central4": Scheme(name="central4", offsets=(2.0, 1.0, -1.0, -2.0), order=4,
                       complex_step=False, weights=_central4, formula=_central4_formula),
    "complex": Scheme(name="complex", offsets=(1.0,), order=2, complex_step=True,
                      weights=_complex, formula=_complex_formula),
}  # fmt: skip
