"""The HTML report in a real browser: headless Chromium, driven by Playwright.

Checks what only a browser can: the page renders (banner, table, every plot visible
with a non-zero size, heatmap images that decode), nothing is logged to the console
(a Content-Security-Policy violation would be), nothing is fetched, clicking a
header sorts the table, and a hostile parameter name stays text.

Skipped without Playwright, jinja2 or Chromium, so the core suite runs without
them; CI installs all three (``apt-get install chromium chromium-driver``,
``pip install playwright``; Playwright's own browser download is not used) and sets
``GRADCHECK_REQUIRE_BROWSER=1`` so that a missing one fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import gradcheck
from chromium import CHROMIUM, chromium
from gradcheck import Report
from gradcheck._report._html import render_html
from gradcheck.demo import BUGS, check_demo

HOSTILE = "<script>alert(1)</script>"
DECODE_IMAGES = """async () => Promise.all(
    Array.from(document.querySelectorAll("svg image")).map(async (node) => {
        const image = new Image();
        image.src = node.getAttribute("href");
        await image.decode();
        return image.naturalWidth * image.naturalHeight;
    }))"""

# CI sets GRADCHECK_REQUIRE_BROWSER=1: there a missing browser must fail, not skip quietly.
if os.environ.get("GRADCHECK_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("jinja2")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium", allow_module_level=True)


@dataclass
class Visit:
    """A page opened on a report, with everything the browser said while loading it."""

    page: object
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One Chromium for the module, with a fresh profile directory."""
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


@pytest.fixture
def visit(browser, tmp_path: Path) -> Iterator[object]:
    """Render a report to a file, open it, and record console errors, requests and dialogs."""
    pages = []

    def open_report(report: Report) -> Visit:
        path = tmp_path / f"report-{len(pages)}.html"
        render_html(report, path)
        page = browser.new_page()
        pages.append(page)
        seen = Visit(page=page)
        page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
        page.on("request", lambda r: seen.requests.append(r.url))
        page.on("dialog", lambda d: (seen.dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        return seen

    yield open_report
    for page in pages:
        page.close()


def open_all_sections(page) -> None:
    """Click every collapsed parameter section open, as a reader would."""
    closed = page.locator("details.param:not([open]) > summary")
    for _ in range(closed.count()):
        closed.first.click()  # the locator is live: the clicked one drops out of it
    assert closed.count() == 0


def assert_visible(locator, what: str) -> None:
    __tracebackhide__ = True
    assert locator.is_visible(), f"{what} is not visible"
    box = locator.bounding_box()
    assert box is not None, f"{what} has no layout box"
    assert box["width"] > 0, f"{what} has size {box}"
    assert box["height"] > 0, f"{what} has size {box}"


def expected_plots(report: Report) -> int:
    count = 0
    for p in report.params.values():
        count += 2 + (len(p.shape) >= 2 and p.size > 1)  # scatter, histogram, heatmap
    return count + sum(1 for f in report.findings if "convergence" in f.detail)


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_report_renders_banner_table_and_every_plot_without_console_errors(visit, bug):
    report = check_demo(bug=bug)
    seen = visit(report)
    page = seen.page
    assert_visible(page.locator("#banner"), "the banner")
    assert_visible(page.locator("#param-table"), "the parameter table")
    assert page.locator("#param-table tbody tr").count() == len(report.params)
    first = page.locator("details.param").first
    assert first.get_attribute("open") is not None  # the broken tensor is open, first
    assert first.locator(".name").inner_text() == BUGS[bug].param
    open_all_sections(page)
    charts = page.locator("svg.chart")
    assert charts.count() == expected_plots(report)
    for i in range(charts.count()):
        chart = charts.nth(i)
        assert_visible(chart, f"plot {i} ({chart.get_attribute('class')})")
    decoded = page.evaluate(DECODE_IMAGES)
    assert decoded
    assert all(pixels > 0 for pixels in decoded)
    assert seen.errors == []
    assert [url for url in seen.requests if not url.startswith(("file:", "data:"))] == []


def test_clicking_a_header_sorts_the_table(visit):
    report = check_demo(bug="sign")
    page = visit(report).page
    cells = page.locator("#param-table tbody tr td:first-child")
    assert cells.all_inner_texts()[0] == "W3"  # failing first, before any click

    # Names sort as people read them: case-insensitive, digits by value (layer2 < layer10).
    page.locator("#param-table th", has_text="parameter").click()
    assert cells.all_inner_texts() == sorted(report.params, key=str.casefold)
    page.locator("#param-table th", has_text="parameter").click()
    assert cells.all_inner_texts() == sorted(report.params, key=str.casefold, reverse=True)

    page.locator("#param-table th", has_text="difference").click()
    by_difference = sorted(report.params, key=lambda name: report.params[name].difference)
    assert cells.all_inner_texts() == by_difference
    header = page.locator("#param-table th", has_text="difference")
    assert header.get_attribute("aria-sort") == "ascending"


def test_a_finding_links_to_its_parameter_section(visit):
    page = visit(check_demo(bug="zero")).page
    page.locator(".findings a.param-link").first.click()
    target = page.evaluate("location.hash")
    assert page.locator(f"details{target} .name").inner_text() == "b2"


def test_hostile_parameter_name_is_shown_as_text_and_never_runs(visit):
    rng = np.random.default_rng(1)
    W = rng.normal(size=(3, 4))
    report = gradcheck.check(lambda p: float(np.sum(p[HOSTILE] ** 2)), {HOSTILE: W},
                             {HOSTILE: 4 * W})  # fmt: skip
    seen = visit(report)
    page = seen.page
    open_all_sections(page)
    page.locator("svg.chart-scatter circle.worst").first.hover()
    assert seen.dialogs == []
    assert seen.errors == []
    assert page.locator("#param-table tbody td").first.inner_text() == HOSTILE
    assert page.locator("script").count() == 1
