"""Finding: one observation about a check, as data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "nondeterministic",
    "scale",
    "sign",
    "transpose",
    "zero",
    "missing_l2",
    "localized",
    "inconclusive",
    "nonfinite",
    "kink",
    "noise",
    "unused",
    "skipped",
    "sampled",
    "precision",
)
"""Every kind a Finding can have, most important first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One observation about a check: a likely mistake, or why a mismatch is not one."""

    kind: str
    """One of `KINDS`."""
    param: str | None
    """Name of the parameter it concerns, or None if it concerns the whole check."""
    message: str
    """One sentence for a person: names the parameter and the likely cause."""
    detail: Mapping[str, Any] = field(default_factory=dict)
    """The numbers behind the message (JSON-serializable)."""
