"""The documentation site: ``mkdocs build --strict``, and the built site in a real browser.

The build runs the generated pages' scripts (``docs/gen``: the findings gallery runs its
examples, the command line page calls the click app), so a strict build also checks
that the gallery still produces every kind of finding. The browser test serves the
built site over HTTP and opens the findings gallery and a tutorial in headless Chromium
(Playwright): no console errors, no request leaving the machine, the reports present;
it saves a screenshot of the gallery to ``docs/site-screenshot.png``.

Skipped without the ``docs`` extra (mkdocs and its plugins), and the browser test
without Playwright or ``/usr/bin/chromium`` — unless ``GRADCHECK_REQUIRE_BROWSER=1``,
where a missing browser fails.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from chromium import CHROMIUM, chromium

pytestmark = pytest.mark.xdist_group("docs")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCREENSHOT = DOCS / "site-screenshot.png"
BUILD_PACKAGES = ["mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter",
                  "mkdocs_gen_files", "jinja2", "latex2mathml"]  # fmt: skip
# Pages written by hand whose python blocks must run as shown.
HAND_WRITTEN = ["quickstart.md", "what-a-pass-means.md"]
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _missing(names: list[str]) -> list[str]:
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built once for the module with ``mkdocs build --strict``."""
    if missing := _missing(BUILD_PACKAGES):
        pytest.skip(
            f"the docs extra is not installed ({', '.join(missing)}): pip install -e '.[docs]'"
        )
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    print(f"mkdocs build --strict: {seconds:.1f} s")
    return out


def test_site_builds_strict_with_every_page(site: Path) -> None:
    import gradcheck

    for page in ["index", "quickstart", "what-a-pass-means", "gallery", "frameworks", "speed",
                 "cli", "html-report", "reliability", "api-gradcheck", "api-testing",
                 "api-torch", "api-jax", "api-autograd", "contributing"]:  # fmt: skip
        assert (site / f"{page}.html").is_file(), page
    gallery = (site / "gallery.html").read_text(encoding="utf-8")
    for kind in gradcheck.FindingKind:
        assert f'id="{kind}"' in gallery, f"no gallery section for {kind}"
    assert gallery.count("gradcheck · method=") >= len(gradcheck.FindingKind)
    reports = sorted(p.name for p in (site / "reports").glob("*.html"))
    assert len(reports) >= len(gradcheck.FindingKind)
    cli = (site / "cli.html").read_text(encoding="utf-8")
    assert "Usage: gradcheck demo" in cli
    assert "Usage: gradcheck check" in cli
    contributing = (site / "contributing.html").read_text(encoding="utf-8")
    assert "Add a framework" in contributing
    api = (site / "api-gradcheck.html").read_text(encoding="utf-8")
    assert 'id="gradcheck.check"' in api
    assert 'id="gradcheck.Report"' in api
    for notebook in sorted((DOCS / "tutorials").glob("*.ipynb")):
        built = site / "tutorials" / f"{notebook.stem}.html"
        assert built.is_file(), notebook.name
        assert "<p>$$" not in built.read_text(encoding="utf-8"), f"raw TeX left in {built.name}"


def test_site_fetches_nothing_from_the_network(site: Path) -> None:
    """No fonts, scripts or styles from a CDN: the site works offline."""
    remote = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""")
    for page in site.rglob("*.html"):
        if page.parent.name == "reports":
            continue  # the reports have their own browser test (test_report_html_browser)
        text = page.read_text(encoding="utf-8")
        assert not remote.search(text), f"{page.relative_to(site)} loads {remote.search(text)[0]}"


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_python_blocks_of_hand_written_pages_run(name: str) -> None:
    blocks = FENCE.findall((DOCS / name).read_text(encoding="utf-8"))
    assert blocks
    namespace: dict[str, object] = {"__name__": f"docs_{name}"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{name} python block {number}", "exec"), namespace)


# --- the built site in Chromium ---------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site over HTTP on a free port of 127.0.0.1, in a thread."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One headless Chromium (a fresh profile) for the module."""
    if os.environ.get("GRADCHECK_REQUIRE_BROWSER") != "1":
        pytest.importorskip("playwright.sync_api")
        if not os.access(CHROMIUM, os.X_OK):
            pytest.skip(f"no {CHROMIUM}: apt-get install chromium")
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


class Visit:
    """A page of the site, with the console errors and outside requests seen while open."""

    def __init__(self, context: object, base: str, path: str) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        host = urlsplit(base).netloc
        page = context.new_page()

        def route(r: object) -> None:
            url = r.request.url
            if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != host:
                self.outside.append(url)
                r.abort()
            else:
                r.continue_()

        page.route("**/*", route)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.goto(f"{base}/{path}")
        page.wait_for_load_state("load")
        self.page = page

    def settle(self) -> None:
        """Wait for the page's lazy content, then assert nothing went wrong."""
        self.page.wait_for_load_state("networkidle")
        assert not self.errors, f"console errors: {self.errors}"
        assert not self.outside, f"requests leaving the site: {self.outside}"


def test_gallery_renders_its_reports_in_chromium(browser, served: str) -> None:
    visit = Visit(browser, served, "gallery.html")
    page = visit.page
    terminal = page.locator("pre", has_text="gradcheck · method=")
    assert terminal.count() >= 15
    assert terminal.first.is_visible()
    tables = page.locator("article table")
    assert tables.count() >= 1
    assert tables.first.is_visible()
    # The HTML report of the first example: switch to its tab, wait for the iframe's table.
    page.locator(".tabbed-labels label", has_text="HTML report").first.click()
    frame = page.frame_locator("iframe.gc-report").first
    frame.locator("table").first.wait_for(state="visible", timeout=15_000)
    assert frame.locator("table tr").count() >= 2
    page.locator(".tabbed-labels label", has_text="Terminal report").first.click()
    # Load every lazy iframe, so that an error in any embedded report is seen too.
    frames = page.locator("iframe.gc-report")
    for frame_element in frames.all():
        frame_element.evaluate("e => { e.loading = 'eager'; }")
    visit.settle()
    loaded = [f for f in page.frames if "/reports/" in f.url]
    assert len(loaded) == frames.count() >= 15
    page.evaluate("document.getElementById('scale').scrollIntoView()")
    page.wait_for_timeout(200)
    page.screenshot(path=str(SCREENSHOT), full_page=False)
    assert SCREENSHOT.stat().st_size > 10_000
    page.close()


def test_a_tutorial_renders_in_chromium(browser, served: str, site: Path) -> None:
    tutorials = sorted((site / "tutorials").glob("*.html"))
    if not tutorials:
        pytest.skip("no tutorial notebook in docs/tutorials yet")
    visit = Visit(browser, served, f"tutorials/{tutorials[0].name}")
    page = visit.page
    assert page.locator(".jp-Notebook, .jupyter-wrapper").count() >= 1
    assert page.locator(".jp-CodeCell").count() >= 1
    visit.settle()
    page.close()
