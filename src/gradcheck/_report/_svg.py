"""SVG building blocks for the report's plots: escaped elements, axes, ticks, colours, PNG.

Every attribute value and every text node goes through `html.escape` here, so a
plot cannot carry markup from a parameter name or a message into the page (inline
SVG would run a ``<script>`` in it).
"""

from __future__ import annotations

import html
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

LOG_FLOOR = -16.0
"""log10 of the smallest error plotted (float64 round-off); exact matches sit here."""


# --- elements ---------------------------------------------------------------------------


def element(tag: str, content: str = "", /, **attributes: object) -> str:
    """One SVG element; ``content`` is markup (built here), attribute values are escaped.

    Attribute names are Python-safe spellings: ``class_`` is ``class`` and
    ``text_anchor`` is ``text-anchor``. Floats are written with one decimal.
    """
    attrs = "".join(
        f' {name.rstrip("_").replace("_", "-")}="{html.escape(_value(value), quote=True)}"'
        for name, value in attributes.items()
    )
    return f"<{tag}{attrs}>{content}</{tag}>" if content else f"<{tag}{attrs}/>"


def label(content: object, /, **attributes: object) -> str:
    """A ``<text>`` element; its content is escaped."""
    return element("text", html.escape(str(content), quote=False), **attributes)


def tooltip(content: object) -> str:
    """A ``<title>`` child: the browser shows it on hover."""
    return element("title", html.escape(str(content), quote=False))


def document(kind: str, width: float, height: float, parts: Sequence[str], description: str) -> str:
    """The ``<svg>`` root, sized in CSS pixels and scalable (the page sets max-width)."""
    width, height = math.ceil(width), math.ceil(height)
    return element(
        "svg",
        "".join(parts),
        xmlns="http://www.w3.org/2000/svg",
        class_=f"chart chart-{kind}",
        width=width,
        height=height,
        viewBox=f"0 0 {width} {height}",
        role="img",
        aria_label=description,
    )


def number(value: float) -> str:
    """A coordinate with at most one decimal: enough for a screen, and short."""
    if not math.isfinite(value):
        return "0"
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _value(value: object) -> str:
    if isinstance(value, float | np.floating):
        return number(float(value))
    return str(value)


# --- axes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """A plot area: maps data coordinates to pixels (y grows upwards in data)."""

    left: float
    top: float
    width: float
    height: float
    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width

    def x(self, value: float) -> float:
        return self.left + (value - self.x0) / (self.x1 - self.x0) * self.width

    def y(self, value: float) -> float:
        return self.top + (1 - (value - self.y0) / (self.y1 - self.y0)) * self.height

    def xs(self, values: FloatArray) -> FloatArray:
        return self.left + (values - self.x0) / (self.x1 - self.x0) * self.width

    def ys(self, values: FloatArray) -> FloatArray:
        return self.top + (1 - (values - self.y0) / (self.y1 - self.y0)) * self.height

    def box(self) -> str:
        return element(
            "rect", class_="frame", x=self.left, y=self.top, width=self.width, height=self.height
        )

    def x_axis(self, ticks: Sequence[tuple[float, str]], title: str) -> list[str]:
        parts = []
        for value, text in ticks:
            px = self.x(value)
            parts.append(element("line", class_="grid", x1=px, x2=px, y1=self.top, y2=self.bottom))
            parts.append(label(text, class_="tick", x=px, y=self.bottom + 13, text_anchor="middle"))
        parts.append(
            label(
                title,
                class_="axis",
                x=self.left + self.width / 2,
                y=self.bottom + 29,
                text_anchor="middle",
            )
        )
        return parts

    def y_axis(self, ticks: Sequence[tuple[float, str]], title: str) -> list[str]:
        parts = []
        for value, text in ticks:
            py = self.y(value)
            parts.append(element("line", class_="grid", x1=self.left, x2=self.right, y1=py, y2=py))
            parts.append(
                label(
                    text,
                    class_="tick",
                    x=self.left - 5,
                    y=py,
                    text_anchor="end",
                    dominant_baseline="middle",
                )
            )
        middle = self.top + self.height / 2
        parts.append(
            label(
                title,
                class_="axis",
                x=11,
                y=middle,
                text_anchor="middle",
                transform=f"rotate(-90 11 {number(middle)})",
            )
        )
        return parts


def linear_ticks(lo: float, hi: float, count: int = 5) -> list[tuple[float, str]]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) between lo and hi."""
    span = hi - lo
    magnitude = 10.0 ** math.floor(math.log10(span / count))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if span / (m * magnitude) <= count)
    ticks = []
    k = math.ceil(lo / step)
    while k * step <= hi + step * 1e-9:
        ticks.append((k * step, "0" if k == 0 else f"{k * step:.3g}"))
        k += 1
    return ticks


def decade_ticks(lo: float, hi: float, most: int = 6) -> list[tuple[float, str]]:
    """Whole decades between lo and hi (log10 units), thinned to at most ``most``."""
    decades = list(range(math.ceil(lo), math.floor(hi) + 1))
    stride = max(1, math.ceil(len(decades) / most))
    return [(float(d), f"1e{d}") for d in decades if d % stride == 0]


def padded_range(values: FloatArray, pad: float = 0.06) -> tuple[float, float]:
    """The range of ``values`` widened by ``pad`` on each side; never empty."""
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (-1.0, 1.0)
    if hi == lo:
        spread = abs(hi) * 0.1 or 1.0
        lo, hi = lo - spread, hi + spread
    margin = (hi - lo) * pad
    return lo - margin, hi + margin


def dots(xs: FloatArray, ys: FloatArray) -> str:
    """Path data for many points: zero-length segments drawn with round caps, ~12 bytes each."""
    return "".join(
        f"M{number(x)} {number(y)}h0" for x, y in zip(xs.tolist(), ys.tolist(), strict=True)
    )


# --- colours ----------------------------------------------------------------------------


def color_anchors(thresholds: Sequence[float]) -> tuple[list[float], list[tuple[int, int, int]]]:
    """Colour anchors in log10(error): blues below the first threshold, red past the last.

    The colours follow the verdict zones, so a heatmap cell, a histogram bar and a
    scatter point with the same error have the same colour, and red means "bug".
    """
    t1, t2, t3 = (math.log10(t) for t in thresholds)
    positions = [LOG_FLOOR, t1, t2, (t2 + t3) / 2, t3, 0.0]
    colors = [
        (19, 32, 71),
        (52, 103, 166),
        (54, 161, 120),
        (233, 196, 106),
        (231, 111, 81),
        (157, 2, 8),
    ]
    return positions, colors


def rgb(log_error: FloatArray, thresholds: Sequence[float]) -> NDArray[np.uint8]:
    """[..., 3] colours of the given log10 errors."""
    positions, colors = color_anchors(thresholds)
    channels = [np.interp(log_error, positions, [c[i] for c in colors]) for i in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def hex_color(log_error: float, thresholds: Sequence[float]) -> str:
    """The colour of one log10 error, as ``#rrggbb``."""
    r, g, b = (int(v) for v in rgb(np.array([log_error]), thresholds)[0])
    return f"#{r:02x}{g:02x}{b:02x}"


def log_errors(error: FloatArray) -> FloatArray:
    """log10 of errors, exact zeros at `LOG_FLOOR` (no divide-by-zero warning)."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log10(error), LOG_FLOOR)


def exponent_text(value: float) -> str:
    """``1e-7`` for a power of ten, ``2.0e-07`` otherwise: how thresholds are written."""
    exponent = math.log10(value)
    return f"1e{round(exponent)}" if abs(exponent - round(exponent)) < 1e-9 else f"{value:.1e}"


# --- raster -----------------------------------------------------------------------------


def png(index: NDArray[np.uint8], palette: NDArray[np.uint8]) -> bytes:
    """Encode an 8-bit indexed image ([rows, columns] palette indices) as a PNG file.

    References:
        PNG (Third Edition), W3C Recommendation, sections 5 and 11: signature,
        IHDR / PLTE / IDAT / IEND chunks, filter type 0 per scanline.
    """
    height, width = index.shape
    raw = np.zeros((height, width + 1), dtype=np.uint8)  # a leading 0 per row: filter "none"
    raw[:, 1:] = index

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)  # 8-bit, colour type 3
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"PLTE", palette.tobytes())
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
        + chunk(b"IEND", b"")
    )
