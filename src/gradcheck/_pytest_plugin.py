"""pytest plugin: the ``gradcheck_report`` fixture and the ``--gradcheck-report=DIR`` option.

Registered as the ``pytest11`` entry point ``gradcheck``, so pytest loads it in
every run of every project where gradcheck is installed. That is why it stands
apart from the rest of the package and, like hypothesis's plugin, imports only
pytest and the standard library at start-up: `gradcheck.testing` and the report
machinery are imported when a test first produces a report. (Loading this module
also runs ``gradcheck/__init__.py``, which must stay light for the whole plugin to be.)

- ``--gradcheck-report=DIR`` writes every report that the `gradcheck.testing`
  helpers produce, or that a test records through the fixture, to DIR as JSON
  (and HTML where the report can render it: ``gradcheck[html]`` installed), one
  file per check, named after the test.
- The ``gradcheck_report`` fixture records reports: ``gradcheck_report(report)``
  (returns it, so it wraps a call); ``gradcheck_report.reports`` lists what the
  test produced so far.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._results import Report

_DIRECTORY = pytest.StashKey["Path | None"]()
_WRITTEN = pytest.StashKey["list[Path]"]()
"""The JSON file of every report written in this session (one per check)."""
_RECORDER = pytest.StashKey["ReportRecorder"]()
_FIXTURE = "gradcheck_report"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_LONGEST_STEM = 120


class ReportRecorder:
    """The gradient-check reports of one test, written to the report folder if one is set."""

    def __init__(self, nodeid: str, directory: Path | None, written: list[Path]) -> None:
        self.nodeid = nodeid
        self.directory = directory
        """Where reports are written (``--gradcheck-report``), or None."""
        self.reports: list[Report] = []
        """Every report recorded in this test, in order."""
        self.paths: list[Path] = []
        """The files written for them."""
        self._written = written

    def __call__(self, report: Report, name: str | None = None) -> Report:
        """Record ``report`` (and write it, under ``name`` if given); return it unchanged."""
        if any(seen is report for seen in self.reports):
            return report
        self.reports.append(report)
        if self.directory is not None:
            suffix = _slug(name) if name else str(len(self.reports))
            stem = f"{_slug(self.nodeid)[:_LONGEST_STEM]}-{suffix}"
            paths = _write(report, self.directory, stem)
            self.paths.extend(paths)
            self._written.append(paths[0])
        return report


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--gradcheck-report=DIR``."""
    group = parser.getgroup("gradcheck", "gradient checks")
    group.addoption(
        "--gradcheck-report",
        metavar="DIR",
        default=None,
        help="write the JSON (and HTML) report of every gradient check a test makes through "
        "gradcheck.testing or the gradcheck_report fixture to DIR, one file per check.",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the report folder against the directory pytest was started in."""
    value = config.getoption("gradcheck_report")
    config.stash[_DIRECTORY] = (config.invocation_params.dir / value).resolve() if value else None
    config.stash[_WRITTEN] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Collect the reports of the gradcheck.testing helpers while the test runs."""
    wanted = item.config.stash.get(_DIRECTORY, None) is not None or _FIXTURE in getattr(
        item, "fixturenames", ()
    )
    if not wanted:
        return (yield)
    from .testing import _listening

    with _listening(_recorder(item)):
        return (yield)


@pytest.fixture
def gradcheck_report(request: pytest.FixtureRequest) -> ReportRecorder:
    """Record gradient-check reports of this test (and write them with --gradcheck-report)."""
    return _recorder(request.node)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Say where the reports went."""
    written = config.stash.get(_WRITTEN, [])
    if written:
        directory = config.stash.get(_DIRECTORY, None)
        terminalreporter.write_line(f"gradcheck: {len(written)} reports written to {directory}")


def _recorder(node: pytest.Item | pytest.Collector) -> ReportRecorder:
    recorder = node.stash.get(_RECORDER, None)
    if recorder is None:
        config = node.config
        recorder = ReportRecorder(node.nodeid, config.stash.get(_DIRECTORY, None),
                                  config.stash.get(_WRITTEN, []))  # fmt: skip
        node.stash[_RECORDER] = recorder
    return recorder


def _write(report: Report, directory: Path, stem: str) -> list[Path]:
    """Write the JSON report, and the HTML one where `Report.to_html` exists."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{stem}.json"
    report.to_json(str(json_path))
    paths = [json_path]
    to_html = getattr(report, "to_html", None)
    if callable(to_html):
        try:
            html = to_html()
        except ImportError:  # the HTML extra (jinja2) is not installed: JSON only
            return paths
        if isinstance(html, str):
            html_path = directory / f"{stem}.html"
            html_path.write_text(html, encoding="utf-8")
            paths.append(html_path)
    return paths


def _slug(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_") or "check"
