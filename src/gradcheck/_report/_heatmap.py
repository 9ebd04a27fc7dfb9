"""The per-element error heatmap: rows x columns, so a wrong row, column or transpose shows.

The one raster of the report: an 8-bit indexed PNG (encoded by `._svg.png`) inside
an SVG with axes and a colour bar, because one ``<rect>`` per element would not
scale. Large tensors are shown as block maxima, so a single wrong element survives
the downsampling.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ._plots import Plot, element_errors
from ._svg import (
    LOG_FLOOR,
    FloatArray,
    Frame,
    color_anchors,
    document,
    element,
    exponent_text,
    label,
    log_errors,
    number,
    png,
    rgb,
)

HEATMAP_SIDE = 180
"""Most pixels per side of a heatmap; larger tensors are shown as block maxima."""

# Heatmap palette: 250 error levels, then the cells that have no error to show.
_LEVELS = 250
_NOT_CHECKED, _KINK, _NONFINITE = 250, 251, 252
_SPECIAL_COLORS = {_NOT_CHECKED: (229, 231, 235), _KINK: (186, 172, 214), _NONFINITE: (0, 0, 0)}


def heatmap(
    shape: tuple[int, ...],
    local: NDArray[np.intp],
    analytic: FloatArray,
    numeric: FloatArray,
    excluded: NDArray[np.bool_],
    thresholds: Sequence[float],
    *,
    uid: str,
    side: int = HEATMAP_SIDE,
) -> Plot:
    """Per-element error as rows x columns: a wrong row, column or a transpose has a shape.

    Tensors with more than two axes are shown as ``shape[0]`` rows by the rest flattened
    (output channels by everything else, for a convolution kernel). Above ``side``
    pixels per side, each pixel is the largest error of a block of elements, so a
    single wrong element still shows.

    Args:
        shape: the parameter's shape (two axes or more).
        local: [k] flat indices of the checked elements.
        analytic: [k] analytic values.
        numeric: [k] numeric values.
        excluded: [k] elements left out of the verdict (kinks).
        thresholds: the verdict thresholds, for the colours.
        uid: unique within the page, for the colour bar's gradient id.
        side: most pixels per side.
    """
    rows, columns = shape[0], math.prod(shape[1:])
    error = element_errors(analytic, numeric)
    level = np.full(rows * columns, np.nan)  # nan: not checked; inf: nan or inf values
    level[local] = np.where(np.isfinite(error), log_errors(error), np.inf)
    kink = np.zeros(rows * columns, dtype=bool)
    kink[local[excluded]] = True
    level[kink] = np.nan
    block = (math.ceil(rows / side), math.ceil(columns / side))
    grid = _block_max(level.reshape(rows, columns), block)
    kinks = _block_max(np.where(kink, 1.0, np.nan).reshape(rows, columns), block)
    index = np.clip(np.rint((grid - LOG_FLOOR) / -LOG_FLOOR * (_LEVELS - 1)), 0, _LEVELS - 1)
    index = np.where(np.isnan(grid), np.where(np.isnan(kinks), _NOT_CHECKED, _KINK), index)
    index = np.where(np.isposinf(grid), _NONFINITE, index).astype(np.uint8)
    height, width = index.shape
    cell = min(180 / width, 180 / height, 18.0)
    frame = Frame(40, 8, width * cell, height * cell, 0, columns, rows, 0)
    image = base64.b64encode(png(index, _palette(thresholds))).decode("ascii")
    bar_height = max(frame.height, 120)
    parts = [
        element(
            "image",
            x=frame.left,
            y=frame.top,
            width=frame.width,
            height=frame.height,
            preserveAspectRatio="none",
            href=f"data:image/png;base64,{image}",
        ),
        frame.box(),
        *_axes(frame, rows, columns),
        *_colorbar(frame.right + 12, frame.top, bar_height, thresholds, uid),
    ]
    notes = ["One cell per element, coloured by its error as in the histogram; grey: not checked."]
    if len(shape) > 2:
        notes.append(
            f"Shown as {rows:,} rows × {columns:,} columns (axes 1 to {len(shape) - 1} flattened)."
        )
    if block != (1, 1):
        notes.append(
            f"Binned: each pixel shows the largest error in a block of {block[0]} × "
            f"{block[1]} elements ({rows:,} × {columns:,} in all)."
        )
    if kink.any():
        notes.append("Violet: kinks, left out of the verdict.")
    if np.isposinf(grid).any():
        notes.append("Black: a nan or inf value.")
    return Plot(
        kind="heatmap",
        title="Error per element",
        svg=document(
            "heatmap",
            frame.right + 60,
            frame.top + bar_height + 34,
            parts,
            "heatmap of per-element error",
        ),
        caption=" ".join(notes),
    )


def _axes(frame: Frame, rows: int, columns: int) -> list[str]:
    """First and last row and column numbers (one number where there is one row or column)."""
    parts = [
        label(0, class_="tick", x=frame.left, y=frame.bottom + 13, text_anchor="start"),
        label(0, class_="tick", x=frame.left - 4, y=frame.top + 8, text_anchor="end"),
        label(
            "column",
            class_="axis",
            x=frame.left + frame.width / 2,
            y=frame.bottom + 27,
            text_anchor="middle",
        ),
        label(
            "row",
            class_="axis",
            x=11,
            y=frame.top + frame.height / 2,
            text_anchor="middle",
            transform=f"rotate(-90 11 {number(frame.top + frame.height / 2)})",
        ),
    ]
    if columns > 1:
        parts.append(
            label(columns - 1, class_="tick", x=frame.right, y=frame.bottom + 13, text_anchor="end")
        )
    if rows > 1:
        parts.append(
            label(rows - 1, class_="tick", x=frame.left - 4, y=frame.bottom, text_anchor="end")
        )
    return parts


def _block_max(grid: FloatArray, block: tuple[int, int]) -> FloatArray:
    """The largest value of each block, ignoring nan (nan where a block is all nan)."""
    if block == (1, 1):
        return grid
    rows, columns = grid.shape
    padded = np.full((-(-rows // block[0]) * block[0], -(-columns // block[1]) * block[1]), np.nan)
    padded[:rows, :columns] = grid
    blocks = padded.reshape(padded.shape[0] // block[0], block[0], -1, block[1])
    # fmax, not nanmax: an all-nan block gives nan without a RuntimeWarning.
    return np.asarray(np.fmax.reduce(np.fmax.reduce(blocks, axis=3), axis=1))


def _colorbar(
    left: float, top: float, height: float, thresholds: Sequence[float], uid: str
) -> list[str]:
    positions, colors = color_anchors(thresholds)
    stops = "".join(
        element("stop", offset=f"{(p - LOG_FLOOR) / -LOG_FLOOR:.4f}", stop_color=f"rgb{c}")
        for p, c in zip(positions, colors, strict=True)
    )
    gradient = f"colormap-{uid}"
    parts = [
        element("defs", element("linearGradient", stops, id=gradient, x1=0, y1=1, x2=0, y2=0)),
        element(
            "rect",
            class_="colorbar",
            x=left,
            y=top,
            width=10,
            height=height,
            fill=f"url(#{gradient})",
        ),
    ]

    def y(log_value: float) -> float:
        return top + (1 - (log_value - LOG_FLOOR) / -LOG_FLOOR) * height

    for t in thresholds:
        parts.append(
            element(
                "line",
                class_="threshold",
                x1=left - 2,
                x2=left + 12,
                y1=y(math.log10(t)),
                y2=y(math.log10(t)),
            )
        )
    for value, text in [(LOG_FLOOR, f"1e{int(LOG_FLOOR)}"), (0.0, "1")] + [
        (math.log10(t), exponent_text(t)) for t in thresholds
    ]:
        parts.append(
            label(text, class_="tick", x=left + 15, y=y(value), dominant_baseline="middle")
        )
    return parts


def _palette(thresholds: Sequence[float]) -> NDArray[np.uint8]:
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:_LEVELS] = rgb(np.linspace(LOG_FLOOR, 0.0, _LEVELS), thresholds)
    for index, color in _SPECIAL_COLORS.items():
        palette[index] = color
    return palette
