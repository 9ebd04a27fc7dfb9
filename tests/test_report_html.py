"""The HTML report: structure, plots, subsampling, escaping, size, JSON round trips, a gold file.

The page is checked here as text (parsed with the standard library's HTMLParser);
tests/test_report_html_browser.py opens it in a real browser.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import math
import re
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck import MissingExtraError, Report
from gradcheck._diagnose import compare
from gradcheck._report import _html
from gradcheck._report._html import render_html
from gradcheck._results import Settings
from gradcheck._tree import flatten
from gradcheck.demo import BUGS, check_demo

needs_jinja2 = pytest.mark.skipif(
    importlib.util.find_spec("jinja2") is None, reason="the html extra (jinja2) is not installed"
)

HOSTILE = "<script>alert(1)</script>"
HOSTILE_ATTRIBUTE = '" onmouseover="alert(2)'
MB = 1_000_000

SCRUBS = [
    (r"<dt>time</dt><dd>[^<]*</dd>", "<dt>time</dt><dd><elapsed></dd>"),
    (r"gradcheck \d+\.\d+[^\s<\"]*", "gradcheck <version>"),
    # zlib builds may compress differently; the image is checked by the browser test.
    (r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,<png>"),
    (r"'sha256-[A-Za-z0-9+/=]+'", "'sha256-<hash>'"),
    # The stylesheet and script are files of their own; the gold file is about the report.
    (r"(?s)<style>.*?</style>", "<style><report.css></style>"),
    (r"(?s)<script>.*?</script>", "<script><report.js></script>"),
]


class Page(HTMLParser):
    """The parts of a rendered page the tests look at: elements by class, ids, links, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.starts: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_startendtag(self, tag, attrs):
        self.starts.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)

    def with_class(self, name: str, tag: str | None = None) -> list[dict[str, str]]:
        return [
            attrs
            for t, attrs in self.starts
            if name in attrs.get("class", "").split() and (tag is None or t == tag)
        ]

    def tags(self, tag: str) -> list[dict[str, str]]:
        return [attrs for t, attrs in self.starts if t == tag]

    @property
    def ids(self) -> set[str]:
        return {attrs["id"] for _, attrs in self.starts if "id" in attrs}


def sections(page: str) -> dict[str, str]:
    """Each parameter section's HTML, by parameter name (as the summary shows it, unescaped)."""
    found = {}
    for match in re.finditer(r'<details class="param.*?</details>', page, flags=re.S):
        name = re.search(r'<span class="name">(.*?)</span>', match.group(0)).group(1)
        found[Page(name).text[0] if name else name] = match.group(0)
    return found


def synthetic_report(shapes, *, wrong=(), relative_noise=1e-9, seed=0) -> Report:
    """A report of a full check with random gradients, built without evaluating a cost.

    ``wrong`` lists coordinates of theta whose numeric value is off by 50%.
    """
    rng = np.random.default_rng(seed)
    flat = flatten({name: rng.normal(size=shape) for name, shape in shapes.items()})
    analytic = rng.normal(size=flat.size)
    numeric = analytic * (1 + relative_noise * rng.normal(size=flat.size))
    numeric[list(wrong)] *= 1.5
    comparison = compare(np.arange(flat.size), numeric, analytic, flat)
    settings = Settings(method="central", eps=None, step="1e-07", mode="full", samples=None,
                        seed=0, thresholds=(1e-7, 1e-5, 1e-3))  # fmt: skip
    return Report(
        difference=comparison.difference,
        verdict=comparison.verdict,
        passed=comparison.passed,
        params={p.name: p for p in comparison.params},
        findings=[],
        evaluations=2 * flat.size + 1,
        settings=settings,
        size=flat.size,
        checked=flat.size,
        elapsed=1.0,
    )


# Exact arithmetic (a linear cost, dyadic values, a power-of-two step) for the gold file.
C_W = np.array([[1.0, -2.0, 3.0], [4.0, -5.0, 0.5]])
C_B = np.array([2.0, -1.0, 0.25])


def exact_report(name_w: str = "W") -> Report:
    def cost(p):
        return float(np.sum(C_W * p[name_w]) + np.sum(C_B * p["b"]))

    params = {name_w: np.array([[0.5, -0.25, 1.0], [0.125, 2.0, -1.5]]),
              "b": np.array([0.5, 0.0, -1.0])}  # fmt: skip
    grads = {name_w: C_W.copy(), "b": np.array([2.0, -1.0, 0.75])}
    return gradcheck.check(cost, params, grads, eps=2.0**-20)


@pytest.fixture(scope="module")
def transposed() -> Report:
    return check_demo(bug="transposed")


# --- the missing extra -----------------------------------------------------------------


def test_missing_jinja2_raises_missing_extra_error_with_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "jinja2", None)  # import jinja2 now raises ImportError
    _html._environment.cache_clear()
    try:
        with pytest.raises(MissingExtraError, match=r"pip install 'gradcheck\[html\]'"):
            render_html(exact_report())
        with pytest.raises(ImportError, match="HTML reports need jinja2"):
            render_html(exact_report())  # callers' `except ImportError` still works
    finally:
        _html._environment.cache_clear()


# --- structure -------------------------------------------------------------------------


@needs_jinja2
def test_banner_shows_verdict_difference_evaluations_and_settings(transposed):
    page = render_html(transposed)
    banner = re.search(r'<header class="banner tone-bug" id="banner">.*?</header>', page, re.S)
    assert banner is not None
    text = " ".join(" ".join(Page(banner.group(0)).text).split())
    assert "bug" in text
    assert f"overall difference {transposed.difference:.1e}" in text
    assert "There is a bug in backpropagation. Worst parameter: W2." in text
    assert f"evaluations {transposed.evaluations:,}" in text
    for label, value in [("method", "central"), ("step", "1e-07"), ("mode", "full"),
                         ("seed", "0"), ("thresholds", "1e-7 / 1e-5 / 1e-3")]:  # fmt: skip
        assert f"{label} {value}" in text


@needs_jinja2
def test_table_has_one_row_per_parameter_failing_first(transposed):
    text = render_html(transposed)
    page = Page(text)
    rows = re.findall(r'<tr class="(fail|pass)">\s*<td data-sort="([^"]*)">', text)
    assert [name for _, name in rows] == ["W2", "W1", "b1", "b2", "W3", "b3"]
    assert [state for state, _ in rows] == ["fail"] + ["pass"] * 5
    assert len(page.tags("th")) >= 8
    assert page.with_class("sortable", "table")


@needs_jinja2
@pytest.mark.parametrize("bug", sorted(BUGS))
def test_every_catalogue_mistake_shows_the_broken_tensor_first_with_finding_and_plots(bug):
    report = check_demo(bug=bug)
    page = render_html(report)
    broken = BUGS[bug].param
    first = next(iter(sections(page).items()))
    assert first[0] == broken
    assert 'class="finding kind-' in first[1]
    for kind in ("scatter", "heatmap", "histogram", "convergence"):
        assert f'class="plot plot-{kind}"' in first[1], kind
    assert re.search(r'<details class="param fail" id="param-\d+" open>', first[1])


@needs_jinja2
def test_every_parameter_gets_scatter_and_histogram_and_2d_ones_a_heatmap(transposed):
    page = render_html(transposed)
    for name, section in sections(page).items():
        p = transposed.params[name]
        assert section.count('class="plot plot-scatter"') == 1, name
        assert section.count('class="plot plot-histogram"') == 1, name
        expected = 1 if len(p.shape) >= 2 and p.size > 1 else 0
        assert section.count('class="plot plot-heatmap"') == expected, name
        assert "<svg" in section


@needs_jinja2
def test_findings_link_to_their_parameter_sections(transposed):
    page = Page(render_html(transposed))
    links = page.with_class("param-link", "a")
    assert len(links) == len([f for f in transposed.findings if f.param])
    for link in links:
        assert link["href"].startswith("#")
        assert link["href"][1:] in page.ids
    names = list(transposed.params)
    assert links[0]["href"] == f"#param-{names.index('W2')}"


@needs_jinja2
def test_convergence_plot_comes_from_the_finding_step_sweep(transposed):
    finding = next(f for f in transposed.findings if f.param == "W2")
    sweep = finding.detail["convergence"]
    section = sections(render_html(transposed))["W2"]
    plot = re.search(r"<svg[^>]*chart-convergence.*?</svg>", section, re.S).group(0)
    assert plot.count('<circle class="measured"') == len(sweep["steps"])
    assert f"observed order {sweep['order']:.1f}" in section
    assert 'class="reference"' in plot


@needs_jinja2
def test_scatter_draws_the_factor_a_scale_finding_reports():
    section = sections(render_html(check_demo(bug="bias_times_4")))["b1"]
    assert 'class="factor"' in section
    assert "analytic = 4 × numeric" in section


@needs_jinja2
def test_sample_mode_adds_the_checked_column_and_grey_cells():
    report = check_demo(mode="sample", samples=0.5)
    page = render_html(report)
    assert '<th scope="col" data-type="number">checked</th>' in page
    assert f"({report.checked:,} of {report.size:,})" in page
    assert "grey: not checked" in page


@needs_jinja2
def test_kinks_and_nonfinite_values_are_drawn_apart_and_said():
    x = np.array([[0.0, 1.0], [-2.0, 0.5]])
    subgradient = np.sign(x)
    subgradient[0, 0] = 1.0  # valid at the kink of |x|, and left out of the verdict
    kinked = gradcheck.check(lambda p: float(np.sum(np.abs(p["x"]))), {"x": x},
                             {"dx": subgradient})  # fmt: skip
    assert kinked.params["x"].excluded == 1
    page = render_html(kinked)
    assert 'class="points kinks"' in page
    assert "Violet: kinks, left out of the verdict." in page

    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    nan_at = gradcheck.check(
        lambda p: math.nan if p["W"][0, 1] != 2.0 else float(np.sum(p["W"] ** 2)),
        {"W": W},
        {"dW": 2 * W},
    )
    page = render_html(nan_at)
    assert "1 elements with a nan or inf are not shown." in page
    assert "Black: a nan or inf value." in page


@needs_jinja2
def test_directional_mode_says_why_a_tensor_has_no_element_plots(rng):
    W = rng.normal(size=(50, 50))
    report = gradcheck.check(lambda p: float(np.sum(p["x"] ** 2)), {"x": W}, {"dx": 2 * W},
                             mode="directional")  # fmt: skip
    directions = report.params["x"].directions
    page = render_html(report)
    assert f"directional ({directions} directions per tensor)" in page
    assert f"Checked along {directions} random directions, not element by element" in page
    assert "chart-scatter" not in page


@needs_jinja2
def test_bisect_mode_plots_the_elements_it_reached(rng):
    W = rng.normal(size=(50, 50))
    report = gradcheck.check(lambda p: float(np.sum(p["x"] ** 2)), {"x": W}, {"dx": 2 * W.T},
                             mode="bisect")  # fmt: skip
    section = sections(render_html(report))["x"]
    assert "chart-scatter" in section
    assert "chart-heatmap" in section
    assert "grey: not checked" in section


@needs_jinja2
def test_tensors_with_more_than_two_axes_are_shown_flattened():
    page = render_html(synthetic_report({"conv": (4, 3, 2, 2)}))
    assert "Shown as 4 rows × 12 columns (axes 1 to 3 flattened)." in page


@needs_jinja2
def test_a_check_that_compared_nothing_says_so_in_the_banner():
    rng = np.random.default_rng(0)
    x = np.array([0.5, -1.0])
    report = gradcheck.check(lambda p: float(np.sum(p**2) + rng.normal() * 1e-3), x, 2 * x)
    assert report.checked == 0
    page = render_html(report)
    assert "Cannot verify the gradients" in page
    assert "overall difference <strong>nan</strong>" in page


# --- self-contained, escaped ------------------------------------------------------------


@needs_jinja2
def test_page_is_self_contained(transposed):
    page = render_html(transposed)
    parsed = Page(page)
    assert not parsed.tags("link")
    assert all("src" not in attrs for attrs in parsed.tags("script") + parsed.tags("img"))
    assert [a["href"][:5] for a in parsed.tags("image")] == ["data:"] * len(parsed.tags("image"))
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert "@import" not in page
    assert "url(" not in page.replace("url(#colormap-", "")


@needs_jinja2
def test_content_security_policy_pins_the_one_inline_script(transposed):
    page = render_html(transposed)
    parsed = Page(page)
    assert len(parsed.tags("script")) == 1
    digest = base64.b64encode(hashlib.sha256(parsed.scripts[0].encode()).digest()).decode()
    policy = next(m["content"] for m in parsed.tags("meta") if m.get("http-equiv"))
    assert f"script-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy


@needs_jinja2
def test_hostile_parameter_names_are_escaped_everywhere():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(3, 4))
    params = {HOSTILE: W, HOSTILE_ATTRIBUTE: rng.normal(size=3)}

    def cost(p):
        return float(np.sum(p[HOSTILE] ** 2) + np.sum(p[HOSTILE_ATTRIBUTE] ** 3))

    grads = {HOSTILE: 4 * W, HOSTILE_ATTRIBUTE: 3 * params[HOSTILE_ATTRIBUTE] ** 2}
    report = gradcheck.check(cost, params, grads)
    assert not report.passed
    assert any(HOSTILE in f.message for f in report.findings)
    page = render_html(report)
    assert HOSTILE not in page
    assert HOSTILE_ATTRIBUTE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parsed = Page(page)
    assert len(parsed.tags("script")) == 1  # ours; the name became text
    assert all(not name.startswith("on") for _, attrs in parsed.starts for name in attrs)
    assert HOSTILE in "".join(parsed.text)  # shown to the reader, literally
    assert f"{HOSTILE}[" in page.replace("&lt;", "<").replace("&gt;", ">")  # in tooltips too


# --- large tensors ---------------------------------------------------------------------


@needs_jinja2
def test_large_tensors_are_subsampled_and_binned_and_say_so():
    report = synthetic_report({"W": (1000, 1000)}, wrong=[123_456])
    page = render_html(report)
    section = sections(page)["W"]
    assert "Subsampled: 2,000 of 1,000,000 elements shown, the 100 worst" in section
    assert "Binned: each pixel shows the largest error in a block of 6 × 6 elements" in section
    assert "1 past 1e-5" in section  # the histogram counts every element
    scatter = re.search(r"<svg[^>]*chart-scatter.*?</svg>", section, re.S).group(0)
    assert sum(path.count("h0") for path in re.findall(r' d="([^"]*)"', scatter)) == 2000
    assert "W[123, 456]" in scatter  # the one wrong element is circled, whatever the sample


@needs_jinja2
def test_a_million_element_report_stays_small_and_renders_fast(record_property):
    report = synthetic_report({"W": (1000, 1000)}, wrong=[7])
    started = time.perf_counter()
    size = len(render_html(report).encode())
    record_property("html_bytes_1e6", size)
    record_property("render_seconds_1e6", time.perf_counter() - started)
    assert size < 1 * MB


@needs_jinja2
def test_a_million_elements_in_a_hundred_tensors_stay_under_a_few_megabytes():
    report = synthetic_report({f"layer{i}.weight": (100, 100) for i in range(100)}, wrong=[5])
    assert len(render_html(report).encode()) < 3 * MB


# --- round trips, files ------------------------------------------------------------------


@needs_jinja2
def test_report_read_back_from_json_renders_without_element_plots(transposed):
    again = Report.from_dict(transposed.to_dict())
    assert all(p.elements is None for p in again.params.values())
    page = render_html(again)
    assert "chart-scatter" not in page
    assert "chart-heatmap" not in page
    assert "chart-histogram" not in page
    assert page.count("No element plots: this report was read back from JSON") == len(again.params)
    assert "chart-convergence" in page  # the step sweep lives in the finding, which JSON keeps
    assert '<table class="worst">' in page


@needs_jinja2
def test_render_writes_the_file_atomically_and_returns_the_page(tmp_path: Path, transposed):
    target = tmp_path / "report.html"
    page = render_html(transposed, target)
    assert target.read_text(encoding="utf-8") == page
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


@needs_jinja2
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")

    def fail(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(_html.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        render_html(exact_report(), str(target))
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


@needs_jinja2
def test_templates_ship_inside_the_package():
    from importlib import resources

    templates = resources.files("gradcheck._report") / "templates"
    assert {p.name for p in templates.iterdir()} >= {"report.html.j2", "report.css", "report.js"}


@needs_jinja2
def test_gold_html_rendering(gold):
    report = exact_report()
    assert not report.passed
    gold("report_bug.html", render_html(report), scrubs=SCRUBS)
