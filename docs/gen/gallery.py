"""Build-time page: the findings gallery (run by mkdocs-gen-files).

Every example below is run when the site is built: the page shows its code, the finding
messages it produced, and its real reports (``str(report)`` and ``report.to_html()``, the
latter written to ``reports/<slug>.html`` and embedded in an iframe). An example that no
longer produces the kind it illustrates, or a ``FindingKind`` without an example, is
logged as a warning, which fails ``mkdocs build --strict``: the gallery cannot drift from
the code.
"""

from __future__ import annotations

import html
import logging
import re
import textwrap
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import mkdocs_gen_files

import gradcheck
from gradcheck.demo import BUGS

log = logging.getLogger("mkdocs.plugins.gradcheck.gallery")
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Example:
    """One runnable example: its code must leave the checked report in ``report``."""

    kind: str
    slug: str
    code: str
    title: str = ""
    note: str = ""
    label: str = ""  # for the overview table; the title or the demo mistake by default


def demo(kind: str, bug: str, title: str = "") -> Example:
    """An example made by injecting a catalogue mistake into the demo network."""
    code = f"""\
    from gradcheck.demo import check_demo

    report = check_demo({bug!r}, progress=False)
    """
    note = (
        f"The [demo network](cli.md#gradcheck-demo) with the catalogue mistake `{bug}`: "
        f"{BUGS[bug].description}."
    )
    slug = kind if not title else f"{kind}-{bug}"
    return Example(kind, slug, code, title, note, label=title or f"demo: `{bug}`")


EXAMPLES = [
    demo("scale", "bias_times_4", "A factor 4"),
    demo("scale", "missing_1_over_m", "The batch size, named"),
    demo("sign", "sign"),
    demo("transpose", "transposed"),
    demo("zero", "zero"),
    demo("missing_l2", "missing_l2"),
    demo("localized", "one_element"),
    Example(
        "inconclusive",
        "inconclusive",
        """\
        import numpy as np
        import gradcheck

        w = np.linspace(2.0, 3.0, 6, dtype=np.float32)
        # The textbook step, pinned: in float32 it is below the spacing of these values.
        report = gradcheck.check(lambda p: np.sum(np.sin(p)), w, np.cos(w), eps=1e-7,
                                 progress=False)
        """,
        note="A right gradient, checked with a step the numbers cannot resolve: no verdict, "
        "and the step to use instead.",
        label="float32, the textbook step pinned",
    ),
    Example(
        "nondeterministic",
        "nondeterministic",
        """\
        import numpy as np
        import gradcheck

        rng = np.random.default_rng(0)

        def cost(p):  # a random term, like dropout without a fixed seed
            return float(np.sum(p**2) + 1e-3 * rng.random())

        report = gradcheck.check(cost, np.ones(3), 2 * np.ones(3), progress=False)
        """,
        label="a random term in the cost",
    ),
    Example(
        "nonfinite",
        "nonfinite",
        """\
        import numpy as np
        import gradcheck

        def cost(p):  # a hard constraint: infinite beyond 1
            return float(np.sum(np.where(p <= 1.0, p**2, np.inf)))

        x = np.array([0.5, 1.0])  # x[1] sits on the edge of the domain
        report = gradcheck.check(cost, x, 2 * x, progress=False)
        """,
        title="At the edge of the cost's domain",
        note="A right gradient at a domain edge: checked one-sided, inside the domain, and "
        "it passes.",
    ),
    Example(
        "nonfinite",
        "nonfinite-analytic",
        """\
        import numpy as np
        import gradcheck

        x = np.array([1.0, 2.0])
        grad = np.array([2.0, np.nan])  # a division by zero in backpropagation
        report = gradcheck.check(lambda p: float(np.sum(p**2)), x, grad, progress=False)
        """,
        title="In the analytic gradient",
        note="A nan in the analytic gradient is a bug.",
    ),
    Example(
        "kink",
        "kink",
        """\
        import numpy as np
        import gradcheck

        x = np.linspace(-1.0, 1.0, 11)  # x[5] == 0: on the ReLU's kink
        report = gradcheck.check(lambda p: float(np.sum(np.maximum(p, 0))), x,
                                 (x > 0) * 1.0, progress=False)
        """,
        label="a ReLU at 0",
    ),
    Example(
        "noise",
        "noise",
        """\
        import numpy as np
        import gradcheck

        w = np.linspace(-1.0, 1.0, 5) * 1e-3
        # Tiny gradients next to a large loss: the cost's round-off dominates at 1e-7.
        report = gradcheck.check(lambda p: float(1e4 + np.sum(p**2)), w, 2 * w,
                                 progress=False)
        """,
        label="tiny gradients, a large loss",
    ),
    Example(
        "precision",
        "precision",
        """\
        import numpy as np
        import gradcheck

        w = np.linspace(0.5, 1.5, 40).astype(np.float32)
        report = gradcheck.check(lambda p: np.sum(np.sin(p)), w, np.cos(w), progress=False)
        """,
        label="float32 parameters",
    ),
    Example(
        "unused",
        "unused",
        """\
        import numpy as np
        import gradcheck

        params = {"used": np.ones(3), "unused": np.ones(2)}
        grads = {"used": 2 * np.ones(3), "unused": np.zeros(2)}
        report = gradcheck.check(lambda p: float(np.sum(p["used"] ** 2)), params, grads,
                                 progress=False)
        """,
        label="a parameter the cost ignores",
    ),
    Example(
        "skipped",
        "skipped",
        """\
        import numpy as np
        import gradcheck

        inputs = {"x": np.linspace(0.1, 1.0, 4), "i": np.arange(2)}  # i: integer indices
        report = gradcheck.check_layer(
            lambda p: np.sin(p["x"]),
            lambda p, dout: {"x": dout * np.cos(p["x"])},
            inputs,
            progress=False,
        )
        """,
        label="integer inputs of a layer",
    ),
    Example(
        "sampled",
        "sampled",
        """\
        import numpy as np
        import gradcheck

        params = {"W": np.linspace(1.0, 2.0, 30), "b": np.ones(1)}
        grads = {"W": 2 * params["W"], "b": 2 * params["b"]}
        report = gradcheck.check(
            lambda p: float(np.sum(p["W"] ** 2) + np.sum(p["b"] ** 2)),
            params,
            grads,
            mode="sample",
            samples=5,
            progress=False,
        )
        """,
        label="`samples=` above an array's size",
    ),
]

GROUPS = [
    ("Mistakes", "A wrong gradient, and what kind of mistake it looks like.",
     ["scale", "sign", "transpose", "zero", "missing_l2", "localized"]),
    ("No verdict", "The numbers could not settle it: never a pass, and the finding says why.",
     ["inconclusive", "nondeterministic", "nonfinite"]),
    ("Not mistakes", "A mismatch (or its absence) explained, each on measured evidence.",
     ["kink", "noise", "precision", "unused"]),
    ("Notes", "What was left out of the check, and why.", ["skipped", "sampled"]),
]  # fmt: skip

# Kinds the README's "Explained mismatches" table does not describe.
EXTRA_MEANINGS = {
    "sampled": '`mode="sample"` with `samples=` at or above an array\'s size: that array '
    "was checked in full, every element once",
}


def readme_meanings() -> dict[str, str]:
    """Kind -> meaning, from the README's "Explained mismatches" table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("### Explained mismatches")
    meanings = {}
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            for kind in re.findall(r"`([a-z_0-9]+)`", cells[0]):
                meanings[kind] = cells[1]
    return meanings


def anchor(example: Example) -> str:
    """The id of an example on the page: its kind's heading, or its own if titled."""
    return f"example-{example.slug}" if example.title else example.kind


def run(example: Example) -> tuple[gradcheck.Report, list[str], float]:
    """Run an example's code; its report, the warnings it raised, and its seconds."""
    namespace: dict[str, object] = {"__name__": f"gallery_{example.slug}"}
    code = textwrap.dedent(example.code)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(code, f"<gallery example {example.slug}>", "exec"), namespace)
    seconds = time.perf_counter() - started
    report = namespace.get("report")
    if not isinstance(report, gradcheck.Report):
        raise RuntimeError(f"gallery example {example.slug!r} did not leave a Report in `report`")
    return report, [f"{w.category.__name__}: {w.message}" for w in caught], seconds


THIS = ' class="gc-this"'


def indent(text: str, prefix: str = "    ") -> str:
    """Indent every non-empty line (content of a tab)."""
    return textwrap.indent(text, prefix, lambda line: line.strip() != "")


def render(example: Example, report: gradcheck.Report, caught: list[str], level: int) -> str:
    """The markdown of one example: note, code, findings, both reports."""
    kinds = [str(f.kind) for f in report.findings]
    if example.kind not in kinds:
        log.warning(
            "gallery example %r no longer produces a %r finding (it gives %s): update "
            "docs/gen/gallery.py",
            example.slug,
            example.kind,
            kinds or "none",
        )
    parts = []
    if example.title:
        parts.append(f"{'#' * level} {example.title} {{#{anchor(example)}}}\n")
    if example.note:
        parts.append(example.note + "\n")
    parts.append(f"```python\n{textwrap.dedent(example.code).rstrip()}\n```\n")
    verdict = f"**{report.verdict}**" + (" (passed)" if report.passed else " (not passed)")
    parts.append(f"Verdict: {verdict}; findings: {', '.join(f'`{k}`' for k in kinds)}.\n")
    items = "\n".join(
        f"<li{THIS if str(f.kind) == example.kind else ''}>"
        f"<code>{html.escape(str(f.kind))}</code> {html.escape(f.message)}</li>"
        for f in report.findings
    )
    parts.append(f'<ul class="gc-findings">\n{items}\n</ul>\n')
    if caught:
        listed = "\n".join(f"- `{w}`" for w in caught)
        parts.append(f"The check raised these Python warnings while it ran:\n\n{listed}\n")
    page = f"reports/{example.slug}.html"
    with mkdocs_gen_files.open(page, "w") as out:
        out.write(report.to_html())
    terminal = f"``` {{.text .gc-terminal}}\n{str(report).rstrip()}\n```\n"
    frame = (
        f'<iframe class="gc-report" src="{page}" loading="lazy" '
        f'title="HTML report: {html.escape(example.slug)}"></iframe>\n'
    )
    parts.append(
        '=== "Terminal report"\n\n'
        + indent(terminal)
        + '\n=== "HTML report"\n\n'
        + indent(frame)
        + "\n"
        + indent(f"[Open the HTML report on its own page]({page})\n")
    )
    return "\n".join(parts)


def build() -> str:
    """The whole gallery page."""
    meanings = {**readme_meanings(), **EXTRA_MEANINGS}
    by_kind: dict[str, list[Example]] = {}
    for example in EXAMPLES:
        by_kind.setdefault(example.kind, []).append(example)
    grouped = [kind for _, _, kinds in GROUPS for kind in kinds]
    every = [str(kind) for kind in gradcheck.FindingKind]
    missing_group = [kind for kind in every if kind not in grouped]
    if missing_group:
        log.warning("FindingKind %s has no place in the gallery: update docs/gen/gallery.py",
                    missing_group)  # fmt: skip
    groups = [*GROUPS, ("Other kinds", "", missing_group)] if missing_group else GROUPS

    started = time.perf_counter()
    sections, rows = [], []
    for title, blurb, kinds in groups:
        sections.append(f"## {title}\n\n{blurb}\n")
        for kind in kinds:
            sections.append(f"### `{kind}` {{#{kind}}}\n")
            if kind in meanings:
                sections.append(meanings[kind][:1].upper() + meanings[kind][1:] + ".\n")
            examples = by_kind.get(kind, [])
            if not examples:
                log.warning("FindingKind %r has no gallery example", kind)
                sections.append("No small example in this gallery produces this kind of finding.\n")
            for example in examples:
                report, caught, seconds = run(example)
                sections.append(render(example, report, caught, level=4))
                rows.append(
                    f"| [`{kind}`](#{anchor(example)}) | {example.label or example.title} "
                    f"| {report.verdict} | {report.evaluations:,} |"
                )
                log.debug("gallery example %s: %.2f s", example.slug, seconds)
    log.info("gallery: %d examples run in %.1f s", len(EXAMPLES), time.perf_counter() - started)

    head = f"""\
<!-- Generated by docs/gen/gallery.py at build time: edit that script. -->

# Findings gallery

Every finding a report can carry (`report.findings`; one per `gradcheck.FindingKind`),
each produced by a small example that **ran when this page was built**, with gradcheck
{gradcheck.__version__}: the code, the finding messages it gave, and its real reports:
the terminal rendering (`print(report)`) and the HTML report (`report.to_html()`).
Figures such as evaluation counts and timings are those of that build.

Each finding has a `kind`, the `param` it concerns (or none), a one-sentence `message`
and its numbers in `detail`; [What a pass means](what-a-pass-means.md) says what
evidence each excuse needs.

| finding | example | verdict | evaluations |
|---|---|---|---|
"""
    return head + "\n".join(rows) + "\n\n" + "\n".join(sections)


with mkdocs_gen_files.open("gallery.md", "w") as out:
    out.write(build())
