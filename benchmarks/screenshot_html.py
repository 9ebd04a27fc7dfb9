"""Render the demo report with a catalogue mistake and save a screenshot for the README.

    python benchmarks/screenshot_html.py [--bug transposed] [--out docs/report-demo.png]

Needs the ``html`` extra, Playwright (``pip install playwright``) and a Chromium binary
(``apt-get install chromium``; Playwright's own browser download is not needed).
Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from gradcheck._report._html import render_html
from gradcheck.demo import check_demo

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bug", default="transposed")
    parser.add_argument("--out", default=str(ROOT / "docs" / "report-demo.png"))
    parser.add_argument("--width", type=int, default=1180)
    parser.add_argument("--height", type=int, default=1400)
    parser.add_argument("--full-page", action="store_true", help="capture the whole page")
    options = parser.parse_args()

    from playwright.sync_api import sync_playwright

    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
        page_path = Path(scratch) / "report.html"
        render_html(check_demo(bug=options.bug), page_path)
        context = playwright.chromium.launch_persistent_context(
            str(Path(scratch) / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": options.width, "height": options.height},
            device_scale_factor=1,
        )
        try:
            page = context.new_page()
            page.goto(page_path.as_uri())
            if options.full_page:
                page.screenshot(path=str(out), full_page=True)
            else:
                # Down to the end of the first (worst) parameter's section: what matters.
                box = page.locator("details.param").first.bounding_box()
                assert box is not None, "the report has no parameter section"
                height = min(box["y"] + box["height"] + 16, options.height)
                clip = {"x": 0, "y": 0, "width": options.width, "height": height}
                page.screenshot(path=str(out), clip=clip)
        finally:
            context.close()
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
