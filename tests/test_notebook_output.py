"""A Report in a notebook: rich HTML output, IPython's pretty text, and one progress line.

Executed for real: a notebook runs in a fresh kernel (nbclient), and its saved outputs are
read back — the ``text/html`` of a cell whose last expression is a report, and the outputs
of a long check's progress (one display, updated in place, not a scroll of lines).
"""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

import gradcheck
from gradcheck.demo import check_demo

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytestmark = pytest.mark.xdist_group("notebooks")


def _run(cells: list[str], tmp_path) -> list:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()
    return notebook.cells


def test_the_last_expression_report_displays_as_html(tmp_path):
    cells = _run(
        [
            "from gradcheck.demo import check_demo\n"
            "report = check_demo('missing_1_over_m', progress=False)\nreport"
        ],
        tmp_path,
    )
    outputs = cells[0].outputs
    assert len(outputs) == 1
    data = outputs[0]["data"]
    page = data["text/html"]
    assert 'class="gradcheck-nb"' in page
    assert "<table>" in page
    assert ">W1<" in page
    assert "[scale]" in page
    assert "<svg" in page
    assert "<script" not in page.lower()
    assert "gradcheck · method=central" in data["text/plain"]  # _repr_pretty_: the text


def test_a_long_check_shows_one_updating_line_not_a_scroll(tmp_path):
    cells = _run(
        [
            "import time, numpy as np, gradcheck\n"
            "x = np.linspace(0, 1, 400)\n"
            "def slow(p):\n"
            "    time.sleep(0.005)\n"
            "    return float(np.sum(p ** 2))\n"
            "report = gradcheck.check(slow, x, 2 * x)\n"
            "report.passed"
        ],
        tmp_path,
    )
    outputs = cells[0].outputs
    displays = [o for o in outputs if o["output_type"] == "display_data"]
    streams = [o for o in outputs if o["output_type"] == "stream"]
    assert len(displays) == 1, [o["output_type"] for o in outputs]
    assert not streams, streams  # no lines printed to stdout or stderr
    assert displays[0]["data"]["text/plain"] == ""  # cleared at the end: the report stays
    assert outputs[-1]["data"]["text/plain"] == "True"


def test_html_escapes_every_user_text():
    name = '<img src=x onerror="alert(1)">'
    params = {name: np.ones(3)}
    report = gradcheck.check(lambda q: float(np.sum(q[name] ** 2)), params, {name: np.ones(3)},
                             progress=False)  # fmt: skip
    page = report._repr_html_()
    assert "<img" not in page
    assert html.escape(name, quote=True) in page


def test_the_fragment_is_self_contained_and_theme_safe():
    page = check_demo("sign", progress=False)._repr_html_()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # nothing fetched
    assert "background: #ffffff" in page  # its own light card in a dark theme too
    assert "color: var(--ink)" in page


def test_compact_reprs():
    report = check_demo("missing_1_over_m", progress=False)
    assert repr(report).startswith("<Report bug: difference 0.82, 6 parameters, 1 failing")
    assert repr(report.params["W1"]) == (
        "ParamReport('W1', shape=(20, 2), verdict=bug, difference=0.92, off=40/40)"
    )
    assert repr(report.findings[0]).startswith("Finding(scale, param='W1', 'The loss part")
    assert len(repr(report.findings[0])) < 130


def test_pretty_printing_is_the_terminal_text():
    report = check_demo(progress=False)

    class Printer:
        text_out = ""

        def text(self, value):
            self.text_out += value

    printer = Printer()
    report._repr_pretty_(printer, cycle=False)
    assert printer.text_out == str(report).rstrip("\n")
