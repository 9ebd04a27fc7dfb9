"""Build-time pages cut from README.md and CONTRIBUTING.md (run by mkdocs-gen-files).

The site does not keep its own copy of what the README already says: Home, Speed and
scale, HTML report and Reliability are the README's sections, and Contributing is
CONTRIBUTING.md, read at every build, with links rewritten for the site. A section that
disappears from the README fails the build instead of leaving a stale page.
"""

from __future__ import annotations

import re
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")

# README anchors that are pages of their own on the site.
ANCHORS = {
    "#what-a-pass-means": "what-a-pass-means.md",
    "#explained-mismatches": "gallery.md",
    "#command-line": "cli.md",
    "#speed": "speed.md",
    "#reliability": "reliability.md",
    "#html-report": "html-report.md",
}
HEADING = re.compile(r"^(#{1,6}) (.+)$")


def site_links(text: str) -> str:
    """Rewrite README-relative links (``docs/x.md``, ``#anchor``) into site links."""
    text = text.replace("](docs/", "](")
    text = text.replace("](CONTRIBUTING.md)", "](contributing.md)")
    for anchor, page in ANCHORS.items():
        text = text.replace(f"]({anchor})", f"]({page})")
    return text


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(line number, level, title) of every heading outside fenced code blocks."""
    found, fenced = [], False
    for number, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.append((number, len(match.group(1)), match.group(2).strip()))
    return found


def section(text: str, title: str, *, level: int = 2) -> str:
    """The body of the section ``title`` (without its heading), re-levelled.

    The section ends at the next heading of the same or a higher level. Its sub-headings
    are shifted so that the section's own level becomes ``level - 1`` (its sub-headings
    start at ``level``).
    """
    lines = text.splitlines()
    headings = _headings(lines)
    starts = [(n, lvl) for n, lvl, t in headings if t == title]
    if len(starts) != 1:
        raise RuntimeError(f"expected one section {title!r} in the source, found {len(starts)}")
    start, own = starts[0]
    end = next((n for n, lvl, _ in headings if n > start and lvl <= own), len(lines))
    body = lines[start + 1 : end]
    shift = level - 1 - own
    fenced = False
    for i, line in enumerate(body):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            body[i] = "#" * (len(match.group(1)) + shift) + " " + match.group(2)
    return site_links("\n".join(body).strip("\n")) + "\n"


def intro(text: str) -> str:
    """The README from its title to its first ``##`` section."""
    lines = text.splitlines()
    first = next(n for n, lvl, _ in _headings(lines) if lvl == 2)
    return site_links("\n".join(lines[1:first]).strip("\n")) + "\n"


def write(path: str, content: str) -> None:
    """Write one generated page."""
    with mkdocs_gen_files.open(path, "w") as out:
        out.write(content)


GENERATED = "<!-- Generated from {source} by docs/gen/readme_pages.py: edit {source}. -->\n\n"

write(
    "index.md",
    GENERATED.format(source="README.md")
    + "# gradcheck\n\n"
    + intro(README)
    + """
## Where next

- [Quickstart](quickstart.md): check your own cost, a layer, a test suite.
- [What a pass means](what-a-pass-means.md): the verdicts, and the evidence every excuse
  (a kink, round-off, float32, randomness, a step that rounds away) needs.
- [Findings gallery](gallery.md): every kind of finding, produced by a small example at
  build time, with its terminal and HTML reports.
- [Frameworks](frameworks.md): PyTorch, JAX and HIPS autograd.
- [Speed and scale](speed.md), [Command line](cli.md), [HTML report](html-report.md),
  [Reliability](reliability.md), [API reference](api-gradcheck.md).
""",
)

write(
    "speed.md",
    GENERATED.format(source="README.md")
    + "# Speed and scale\n\n"
    + "## The fast modes\n\n"
    + section(README, "Fast at real sizes", level=3)
    + "\n## Measured speed\n\n"
    + section(README, "Speed", level=3),
)

write(
    "html-report.md",
    GENERATED.format(source="README.md")
    + "# HTML report\n\n"
    + section(README, "HTML report")
    + """
## Live examples

The [findings gallery](gallery.md) embeds the HTML report of every example, made at build
time: for instance the demo network with a [transposed dW2](reports/transpose.html) or a
[missing L2 term](reports/missing_l2.html), and a [ReLU kink](reports/kink.html) that is
not a mistake.
""",
)

write(
    "reliability.md",
    GENERATED.format(source="README.md") + "# Reliability\n\n" + section(README, "Reliability"),
)

write(
    "contributing.md",
    GENERATED.format(source="CONTRIBUTING.md") + site_links(CONTRIBUTING),
)
