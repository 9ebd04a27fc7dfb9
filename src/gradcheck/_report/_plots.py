"""The HTML report's plots, as inline SVG: scatter, error heatmap, error histogram, step sweep.

Hand-written SVG rather than matplotlib: four simple charts do not justify a
dependency that takes about a second to import and tens of milliseconds per figure;
SVG stays sharp at any zoom, is small, and the browser test can inspect it. The
heatmap (`._heatmap`) is the one raster.

Every plot is bounded whatever the tensor's size: the scatter keeps the worst
elements plus a seeded random sample of the rest, the heatmap shows the largest
error of each block of elements, the histogram bins every element. Captions say
when a plot shows less than everything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._svg import (
    LOG_FLOOR,
    FloatArray,
    Frame,
    decade_ticks,
    document,
    dots,
    element,
    exponent_text,
    hex_color,
    label,
    linear_ticks,
    log_errors,
    number,
    padded_range,
    tooltip,
)

SCATTER_LIMIT = 2000
"""Most points one scatter draws; above it, the worst elements plus a random sample."""
SCATTER_WORST = 100
"""The worst elements a subsampled scatter always keeps, so outliers never disappear."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plot:
    """One figure of the report: an SVG fragment and what a reader needs to know about it."""

    kind: str
    """"scatter", "heatmap", "histogram" or "convergence" (a CSS class and a test hook)."""
    title: str
    svg: str
    caption: str


def element_errors(analytic: FloatArray, numeric: FloatArray) -> FloatArray:
    """Per-element error ``|a - n| / (|a| + |n| + s)``, ``s`` the RMS of ``|a| + |n|``.

    The measure behind the report's "off" count (`gradcheck._compare.elements_off`
    compares it with the second threshold), so plots and table agree, and round-off
    on near-zero elements does not light up as an error. nan where a value is not
    finite.
    """
    magnitude = np.abs(analytic) + np.abs(numeric)
    finite = np.isfinite(magnitude)
    scale = float(np.sqrt(np.mean(magnitude[finite] ** 2))) if finite.any() else 0.0
    denominator = magnitude + scale
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        error = np.abs(analytic - numeric) / denominator
    error[denominator == 0] = 0.0
    error[~finite] = np.nan
    return error


# --- scatter ----------------------------------------------------------------------------


def scatter(
    analytic: FloatArray,
    numeric: FloatArray,
    excluded: NDArray[np.bool_],
    name_of: Callable[[int], str],
    thresholds: Sequence[float],
    *,
    limit: int = SCATTER_LIMIT,
    factor: float | None = None,
    seed: int = 0,
) -> Plot:
    """Analytic against numeric values with the diagonal: a wrong scale or sign is a tilted line.

    Args:
        analytic: [k] analytic values of the checked elements.
        numeric: [k] numeric values.
        excluded: [k] elements left out of the verdict (kinks), drawn apart.
        name_of: the name (``W1[3, 4]``) of element k, for the worst points' tooltips.
        thresholds: the verdict thresholds, for the colours.
        limit: most points drawn.
        factor: a scale factor a finding reported: drawn as ``analytic = factor * numeric``.
        seed: seeds the subsample, so a report renders the same every time.
    """
    error = element_errors(analytic, numeric)
    finite = np.isfinite(error)
    shown = np.flatnonzero(finite)
    notes = []
    if len(shown) > limit:
        keep = min(SCATTER_WORST, limit)
        worst = shown[np.argpartition(-error[shown], keep - 1)[:keep]]
        rest = finite.copy()
        rest[worst] = False
        sample = np.random.default_rng(seed).choice(
            np.flatnonzero(rest), limit - keep, replace=False
        )
        notes.append(
            f"Subsampled: {limit:,} of {len(analytic):,} elements shown, the {keep} worst "
            "and a random sample of the rest."
        )
        shown = np.sort(np.concatenate([worst, sample]))
    if not finite.all():
        notes.append(f"{np.count_nonzero(~finite):,} elements with a nan or inf are not shown.")
    x, y, e, kink = numeric[shown], analytic[shown], error[shown], excluded[shown]
    lo, hi = padded_range(np.concatenate([x, y]))
    frame = Frame(50, 8, 200, 200, lo, hi, lo, hi)
    ticks = linear_ticks(lo, hi)
    parts = [frame.box(), *frame.x_axis(ticks, "numeric"), *frame.y_axis(ticks, "analytic")]
    parts.append(
        element(
            "line", class_="diagonal", x1=frame.left, y1=frame.bottom, x2=frame.right, y2=frame.top
        )
    )
    if factor is not None and (not math.isfinite(factor) or factor == 1):
        factor = None  # nothing to draw beside the diagonal
    if factor is not None:
        parts += _factor_line(frame, factor)
    width = 3.6 if len(shown) <= 500 else 2.6
    decade = np.floor(log_errors(e)).astype(int)
    for d in np.unique(decade[~kink]):  # ascending: the worst points are drawn last, on top
        members = (decade == d) & ~kink
        parts.append(
            element(
                "path",
                class_="points",
                stroke=hex_color(d + 0.5, thresholds),
                stroke_width=width,
                d=dots(frame.xs(x[members]), frame.ys(y[members])),
            )
        )
    if kink.any():
        parts.append(
            element(
                "path",
                class_="points kinks",
                stroke_width=width,
                d=dots(frame.xs(x[kink]), frame.ys(y[kink])),
            )
        )
        notes.append("Violet points sit at kinks and are left out of the verdict.")
    circled = 0
    for k in np.argsort(-np.where(kink, -1.0, e), kind="stable")[:5]:
        if kink[k] or e[k] < thresholds[1]:
            break
        tip = f"{name_of(int(shown[k]))}: analytic {y[k]:.6g}, numeric {x[k]:.6g}"
        parts.append(
            element(
                "circle",
                tooltip(tip),
                class_="worst",
                cx=frame.x(float(x[k])),
                cy=frame.y(float(y[k])),
                r=5,
            )
        )
        circled += 1
    caption = "Each point is one element; on the diagonal the two gradients agree."
    if factor is not None:
        caption += f" Dashed: analytic = {factor:.3g} × numeric, the factor of the finding."
    if circled:
        caption += " Circled: the worst elements (hover for their index)."
    return Plot(
        kind="scatter",
        title="Analytic against numeric",
        svg=document("scatter", 262, 248, parts, "scatter of analytic against numeric"),
        caption=" ".join([caption, *notes]),
    )


def _factor_line(frame: Frame, factor: float) -> list[str]:
    """The segment of ``y = factor * x`` inside the square frame."""
    lo, hi = frame.x0, frame.x1
    start, end = (lo, hi) if factor == 0 else sorted((lo / factor, hi / factor))
    start, end = max(lo, start), min(hi, end)
    if start >= end:
        return []
    return [
        element(
            "line",
            class_="factor",
            x1=frame.x(start),
            y1=frame.y(factor * start),
            x2=frame.x(end),
            y2=frame.y(factor * end),
        )
    ]


# --- histogram --------------------------------------------------------------------------


def histogram(
    analytic: FloatArray,
    numeric: FloatArray,
    excluded: NDArray[np.bool_],
    thresholds: Sequence[float],
) -> Plot:
    """How many elements have each size of error (log10), with the verdict thresholds marked.

    Every element counts (binning is cheap), so this plot never subsamples: one wrong
    element among a million is a bar past the lines, never shorter than 2 pixels.
    """
    error = element_errors(analytic, numeric)
    usable = np.isfinite(error) & ~excluded
    logs = log_errors(error[usable])
    edges = np.arange(LOG_FLOOR, 1e-9, 0.5)
    counts, _ = np.histogram(logs, bins=edges)
    top = max(int(counts.max()), 1) * 1.12
    frame = Frame(46, 20, 206, 170, LOG_FLOOR, 0.0, 0, top)
    parts = [
        frame.box(),
        *frame.x_axis(decade_ticks(LOG_FLOOR, 0.0, most=5), "element error (log scale)"),
        *frame.y_axis(linear_ticks(0, top, count=4), "elements"),
    ]
    bar = frame.width / len(counts)
    for i, count in enumerate(counts.tolist()):
        if count:
            height = max(frame.bottom - frame.y(count), 2.0)
            parts.append(
                element(
                    "rect",
                    tooltip(f"{count:,} elements"),
                    class_="bar",
                    x=frame.left + i * bar + 0.5,
                    y=frame.bottom - height,
                    width=bar - 1,
                    height=height,
                    fill=hex_color(float(edges[i]) + 0.25, thresholds),
                )
            )
    for t in thresholds:
        px = frame.x(math.log10(t))
        parts.append(
            element("line", class_="threshold", x1=px, x2=px, y1=frame.top, y2=frame.bottom)
        )
        parts.append(
            label(
                exponent_text(t),
                class_="threshold-label",
                x=px,
                y=frame.top - 5,
                text_anchor="middle",
            )
        )
    off = int(np.count_nonzero(logs >= math.log10(thresholds[1])))
    if off:
        # On the side away from the tallest bar, so the count does not cover it.
        left = int(np.argmax(counts)) >= len(counts) // 2
        parts.append(
            label(
                f"{off:,} past {exponent_text(thresholds[1])}",
                class_="count",
                x=frame.left + 4 if left else frame.right - 4,
                y=frame.top + 14,
                text_anchor="start" if left else "end",
            )
        )
    caption = (
        "Error |a − n| / (|a| + |n| + s) of every element, s the parameter's RMS gradient "
        'magnitude (the measure behind the "off" count). Dashed: the verdict thresholds.'
    )
    exact = int(np.count_nonzero(error[usable] == 0))
    if exact:
        caption += f" {exact:,} exact matches are counted at 1e{int(LOG_FLOOR)}."
    if not usable.all():
        caption += f" {np.count_nonzero(~usable):,} elements (kinks, nan or inf) are not counted."
    return Plot(
        kind="histogram",
        title="Distribution of element errors",
        svg=document("histogram", 262, 230, parts, "histogram of log10 element errors"),
        caption=caption,
    )


# --- error against step -----------------------------------------------------------------


def convergence(
    steps: Sequence[float | None], errors: Sequence[float | None], order: float | None, where: str
) -> Plot | None:
    """Error of the central difference against the step, log-log, with an h² reference.

    A right gradient's error shrinks like h² (until round-off takes over); a wrong
    one stays flat, because the disagreement is not the finite difference's doing.
    None when fewer than two steps have a positive error.
    """
    pairs = [
        (s, e)
        for s, e in zip(steps, errors, strict=False)
        if s is not None and e is not None and s > 0 and e > 0
    ]
    if len(pairs) < 2:
        return None
    x = np.log10([s for s, _ in pairs])
    y = np.log10([e for _, e in pairs])
    xlo, xhi = padded_range(x, pad=0.08)
    # At least three decades of error, so the h² reference has room to show its slope.
    ylo, yhi = padded_range(np.array([min(y.min(), y.max() - 3.0), y.max()]), pad=0.08)
    frame = Frame(52, 8, 200, 170, xlo, xhi, ylo, yhi)
    parts = [
        frame.box(),
        *frame.x_axis(decade_ticks(xlo, xhi), "step h"),
        *frame.y_axis(decade_ticks(ylo, yhi), "|central(h) − analytic|"),
    ]
    # The h² line through the largest step, cut to the frame: y = y[-1] + 2 (x - x[-1]).
    start = max(xlo, x[-1] + (ylo - y[-1]) / 2)
    end = min(xhi, x[-1] + (yhi - y[-1]) / 2)
    if start < end:
        parts.append(
            element(
                "line",
                class_="reference",
                x1=frame.x(start),
                y1=frame.y(y[-1] + 2 * (start - x[-1])),
                x2=frame.x(end),
                y2=frame.y(y[-1] + 2 * (end - x[-1])),
            )
        )
    px, py = frame.xs(x), frame.ys(y)
    points = " ".join(
        f"{number(a)},{number(b)}" for a, b in zip(px.tolist(), py.tolist(), strict=True)
    )
    parts.append(element("polyline", class_="measured", points=points))
    parts += [
        element("circle", class_="measured", cx=a, cy=b, r=3.5)
        for a, b in zip(px.tolist(), py.tolist(), strict=True)
    ]
    observed = f", observed order {order:.1f}" if order is not None and math.isfinite(order) else ""
    caption = (
        f"At {where}{observed}. Solid: the measured error; dashed: slope 2 (h²), which a right "
        "gradient's error follows. A flat line: the mismatch does not come from the step."
    )
    return Plot(
        kind="convergence",
        title="Error against step",
        svg=document("convergence", 262, 220, parts, "error against finite-difference step"),
        caption=caption,
    )
