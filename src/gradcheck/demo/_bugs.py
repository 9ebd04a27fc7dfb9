"""A catalogue of deliberate backpropagation mistakes, each breaking exactly one gradient.

The mistakes are written for the demo network (three dense layers, square W2).

Each mistake is what one wrong line of a hand-written backward pass produces,
applied to the correct gradients: the factor 4 on db1 and 2 on dW2 from the
deeplearning.ai exercise, a forgotten 1/m, a flipped sign, a forgotten L2 term,
a transposed matrix, a gradient never computed, one wrong element.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._network import Network, Params

Mistake = Callable[[Params, Network], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Bug:
    """One named mistake: what the wrong line does and which gradient it breaks."""

    name: str
    description: str
    param: str
    """The parameter whose gradient is wrong, e.g. ``"b1"``."""
    kind: str | None
    """The finding kind a diagnosis should give it, or None for a localized error."""
    inject: Mistake

    def apply(self, grads: Params, network: Network) -> Params:
        """Return a copy of the correct ``grads`` with this mistake in it."""
        broken = {key: value.copy() for key, value in grads.items()}
        self.inject(broken, network)
        return broken


def _times_4_db1(g: Params, net: Network) -> None:
    g["db1"] *= 4.0


def _times_2_dw2(g: Params, net: Network) -> None:
    g["dW2"] *= 2.0


def _no_mean_dw1(g: Params, net: Network) -> None:
    # dW1 = dZ1 @ X.T without the 1/m: only the data part is scaled, not the L2 term.
    l2 = net.lambd / net.m * net.params["W1"]
    g["dW1"] = (g["dW1"] - l2) * net.m + l2


def _sign_dw3(g: Params, net: Network) -> None:
    g["dW3"] = -g["dW3"]


def _no_l2_dw2(g: Params, net: Network) -> None:
    g["dW2"] -= net.lambd / net.m * net.params["W2"]


def _transposed_dw2(g: Params, net: Network) -> None:
    g["dW2"] = np.ascontiguousarray(g["dW2"].T)


def _zero_db2(g: Params, net: Network) -> None:
    g["db2"] = np.zeros_like(g["db2"])


def _one_element_dw1(g: Params, net: Network) -> None:
    index = (min(3, g["dW1"].shape[0] - 1), min(1, g["dW1"].shape[1] - 1))
    g["dW1"][index] = 1.5 * g["dW1"][index] + 1e-3 * np.abs(g["dW1"]).max()


BUGS: dict[str, Bug] = {
    bug.name: bug
    for bug in (
        Bug(name="bias_times_4", param="b1", kind="scale", inject=_times_4_db1,
            description="db1 = 4/m * sum(dZ1): the bias gradient of layer 1 is 4 times too large"),
        Bug(name="weight_times_2", param="W2", kind="scale", inject=_times_2_dw2,
            description="dW2 = 2/m * dZ2 @ A1.T: the weight gradient of layer 2 is doubled"),
        Bug(name="missing_1_over_m", param="W1", kind="scale", inject=_no_mean_dw1,
            description="dW1 = dZ1 @ X.T: the 1/m average is missing (m times too large)"),
        Bug(name="sign", param="W3", kind="sign", inject=_sign_dw3,
            description="dW3 = -(dZ3 @ A2.T): the output weight gradient has its sign flipped"),
        Bug(name="missing_l2", param="W2", kind="missing_l2", inject=_no_l2_dw2,
            description="dW2 without the L2 term lambd/m * W2"),
        Bug(name="transposed", param="W2", kind="transpose", inject=_transposed_dw2,
            description="dW2 = A1 @ dZ2.T: the weight gradient of layer 2 is transposed"),
        Bug(name="zero", param="b2", kind="zero", inject=_zero_db2,
            description="db2 left at zero: the bias gradient of layer 2 is never computed"),
        Bug(name="one_element", param="W1", kind=None, inject=_one_element_dw1,
            description="dW1[3, 1] off by 50%: one wrong element among many right ones"),
    )
}  # fmt: skip


def load_bug(name: str) -> Bug:
    """Return the catalogue mistake called ``name`` (see `BUGS` for the list).

    Raises:
        KeyError: no mistake has that name; the message lists the valid ones.
    """
    try:
        return BUGS[name]
    except KeyError:
        raise KeyError(f"no mistake named {name!r}; choose one of: {', '.join(BUGS)}") from None
