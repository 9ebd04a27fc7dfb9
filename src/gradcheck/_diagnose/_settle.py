"""Settle a parameter's verdict on evidence, evaluating more only where the verdict needs it.

The bulk pass gives each row a numeric value and a round-off error bar. When that does
not settle the verdict (`_compare.judge`), evidence is gathered in this order:

1. **A ladder of steps** on the rows that matter (those with no usable value, those that
   disagree, or those whose error bars are too wide — at most `MAX_LADDERED`). The ladder
   spans the check's own step and, unless the user pinned it, the step the measured noise
   calls for, so a cost with a large constant or float32 arithmetic is read at steps where
   its noise no longer dominates. The ladder decides kinks, confirms mismatches and gives
   refined values with error bars that include truncation (`_steps.read`).
2. **Off the kink.** Where the analytic value lies outside the one-sided slopes of a kink
   and the gradient can be recomputed (grads=None, the framework adapters), the
   coordinate is moved off the kink by a small seeded offset and settled there.
3. **Adaptive re-estimation** (coordinates, unpinned steps): the remaining rows that need
   it are re-estimated on a short ladder at the step the first ladder found best, then
   once more at a larger (noise-bound) or smaller (truncation-bound) step.

Whatever is still unsettled is `inconclusive`, with the reason. This module decides which
rows need what; the ladders themselves are `_ladders`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._compare import Judgement, judge
from .._norms import stable_norm
from ._context import Context
from ._ladders import move_off_kink, reestimate, run_ladder
from ._rows import Rows, Status
from ._steps import RATIO

MAX_LADDERED = 64
"""Rows per parameter that get a full ladder of steps."""
CONFIRM = 4
"""Rows laddered first to confirm a mismatch: the worst; more only if none confirms it (the
worst may sit on kinks)."""
ROUNDS = 2
"""Adaptive re-estimation rounds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """A parameter's settled verdict and what it cost."""

    judgement: Judgement
    evaluations: int


def settle(ctx: Context, rows: Rows) -> Outcome:
    """Gather evidence until the parameter's verdict is settled or nothing more can help."""
    outcome = _gather(ctx, rows)
    if outcome.judgement.settled:
        return outcome
    # Last resort, once no step resolves it: a gradient that is zero within error bars that
    # are negligible for the whole check (a bias before a normalization layer).
    return Outcome(judgement=_judge(ctx, rows, final=True), evaluations=outcome.evaluations)


def _gather(ctx: Context, rows: Rows) -> Outcome:
    """The stages of evidence, each only while the verdict is still open."""
    evaluations = 0
    verdict = _judge(ctx, rows)
    if verdict.settled:
        return Outcome(judgement=verdict, evaluations=0)
    for round_ in range(2):  # the rows the verdict needs; then those its new reason needs
        # A mismatch is confirmed by its worst rows; the rest are laddered only if needed.
        limit = CONFIRM if round_ == 0 and verdict.reason == "unconfirmed" else MAX_LADDERED
        picked = _pick(ctx, rows, verdict.reason, limit)
        if not len(picked):
            break
        # A difference beyond narrow error bars needs only a short ladder around the check's
        # own step to confirm a mistake (or find kinks); wide bars need the noise's step too.
        # Directions get the wide ladder if the narrow one did not settle it.
        narrow = verdict.reason == "unconfirmed" and (round_ == 0 or not rows.is_directional)
        evaluations += run_ladder(ctx, rows, picked, narrow=narrow)
        verdict = _judge(ctx, rows)
        if verdict.settled:
            break
    if not verdict.settled and ctx.recompute is not None and not rows.is_directional:
        evaluations += move_off_kink(ctx, rows)
        verdict = _judge(ctx, rows)
    if verdict.settled or ctx.pinned or rows.is_directional:
        return Outcome(judgement=verdict, evaluations=evaluations)
    factor = _best_factor(ctx, rows)
    for _ in range(ROUNDS):
        remaining = _needing(ctx, rows, verdict.reason) & ~rows.laddered
        if not remaining.any():
            break
        evaluations += reestimate(ctx, rows, np.flatnonzero(remaining), factor)
        previous, verdict = verdict, _judge(ctx, rows)
        if verdict.settled:
            break
        factor *= RATIO if previous.reason == "noise" else 1 / RATIO
    return Outcome(judgement=verdict, evaluations=evaluations)


def _judge(ctx: Context, rows: Rows, *, final: bool = False) -> Judgement:
    difference, error_bar = rows.difference()
    return judge(
        difference,
        error_bar,
        thresholds=ctx.thresholds,
        unresolved=rows.unresolved_reason(),
        confirmed=bool(rows.confirmed.any()),
        analytic_finite=bool(np.isfinite(rows.analytic).all()),
        negligible=final and rows.negligible(ctx.gradient_scale, ctx.thresholds[1]),
    )


def _needing(ctx: Context, rows: Rows, reason: str | None) -> NDArray[np.bool_]:
    """Rows whose evidence the verdict still lacks: unresolved, off, or too imprecise."""
    unresolved = np.isin(rows.status, (Status.NO_STEP, Status.NONFINITE, Status.FLAT))
    needing = unresolved | rows.off(ctx.thresholds[1])
    if reason == "noise":
        ok = rows.measured()
        total = float(stable_norm(rows.numeric[ok]) + stable_norm(rows.analytic[ok]))
        target = ctx.thresholds[2] / (4 * 3.0) * total / math.sqrt(max(int(ok.sum()), 1))
        needing |= ok & (rows.error > target)
    elif reason == "unconfirmed" and not needing.any():
        needing = rows.measured()
    return needing


def _pick(ctx: Context, rows: Rows, reason: str | None, limit: int) -> NDArray[np.intp]:
    """The rows to ladder, most telling first, at most ``limit``."""
    needing = _needing(ctx, rows, reason) & ~rows.laddered
    unresolved = np.flatnonzero(needing & (rows.status != Status.MEASURED))
    measured = np.flatnonzero(needing & (rows.status == Status.MEASURED))
    key = (
        rows.error[measured]
        if reason == "noise"
        else np.abs(rows.analytic[measured] - rows.numeric[measured])
    )
    measured = measured[np.argsort(-key, kind="stable")]
    return np.concatenate([unresolved, measured])[:limit].astype(np.intp)


def _best_factor(ctx: Context, rows: Rows) -> float:
    """The relative step for re-estimation.

    Where the ladder's estimates agreed best, or the noise-bound step of a fourth-order
    estimate where no ladder ran.
    """
    scale = ctx.scales[rows.leaf_index][rows.local]
    good = rows.laddered & (rows.status == Status.MEASURED) & ~rows.confirmed
    good &= np.isfinite(rows.step) & (rows.step > 0)
    if good.any():
        return float(np.median(rows.step[good] / scale[good]))
    gradient = rows.gradient_scale() or 1.0
    relative = ctx.noise_of(rows) / (gradient * float(np.median(scale)))
    return float(min(max(relative, 1e-16), 1.0) ** (1 / 5))
