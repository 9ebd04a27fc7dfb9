"""Check the demo network, with or without a catalogue mistake."""

from __future__ import annotations

from typing import Any

from .._api import check
from .._results import Report
from ._bugs import load_bug
from ._network import Network, make_network


def check_demo(bug: str | None = None, *, network: Network | None = None, **options: Any) -> Report:
    """Check the demo network's hand-written gradients, with a catalogue mistake if ``bug``.

    Args:
        bug: name of a mistake from `BUGS`, or None for the correct gradients.
        network: the network to check; the default demo network if None.
        **options: passed to `gradcheck.check` (method, mode, eps, ...).
    """
    network = network or make_network()
    grads = network.gradients()
    if bug is not None:
        grads = load_bug(bug).apply(grads, network)
    options.setdefault("batch_size", network.m)
    return check(network.cost, network.params, grads, **options)
