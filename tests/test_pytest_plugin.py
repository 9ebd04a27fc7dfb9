"""The pytest plugin: --gradcheck-report=DIR, the gradcheck_report fixture, a light start-up."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import gradcheck
from gradcheck import _pytest_plugin

pytest_plugins = ["pytester"]

PLUGIN = "gradcheck._pytest_plugin"

TESTS = """
import numpy as np
import gradcheck
from gradcheck.testing import assert_gradients_correct

W = np.array([1.0, -2.0, 0.5])


def cost(p):
    return np.sum(p["w"] ** 3)


def test_right():
    assert_gradients_correct(cost, {"w": W.copy()}, {"dw": 3 * W**2})


def test_wrong():
    assert_gradients_correct(cost, {"w": W.copy()}, {"dw": 3 * W})


def test_recorded_by_the_fixture(gradcheck_report):
    report = gradcheck_report(gradcheck.check(cost, {"w": W.copy()}, {"dw": 3 * W**2}), "cube")
    again = gradcheck_report(assert_gradients_correct(cost, {"w": W.copy()}, {"dw": 3 * W**2}))
    assert report.passed and again.passed
    assert len(gradcheck_report.reports) == 2
"""


def plugin_args():
    """Load the plugin by name unless its pytest11 entry point already does."""
    installed = any(ep.value == PLUGIN for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", PLUGIN]


def runpytest(pytester, *args):
    # -p re-imports a module this process has imported already: nothing to rewrite there.
    quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"] if plugin_args() else []
    return pytester.runpytest(*plugin_args(), *quiet, "-p", "no:cacheprovider", *args)


def run(pytester, *args):
    pytester.makepyfile(test_checks=TESTS)
    return runpytest(pytester, *args)


def test_option_writes_one_json_report_per_check(pytester):
    result = run(pytester, "--gradcheck-report=reports")
    result.assert_outcomes(passed=2, failed=1)
    files = sorted(p.name for p in (pytester.path / "reports").glob("*.json"))  # and .html
    assert files == [
        "test_checks.py_test_recorded_by_the_fixture-2.json",
        "test_checks.py_test_recorded_by_the_fixture-cube.json",
        "test_checks.py_test_right-1.json",
        "test_checks.py_test_wrong-1.json",
    ]
    if importlib.util.find_spec("jinja2") is not None and hasattr(gradcheck.Report, "to_html"):
        pages = sorted(p.name for p in (pytester.path / "reports").glob("*.html"))
        assert pages == [name.replace(".json", ".html") for name in files]
    wrong = json.loads((pytester.path / "reports" / "test_checks.py_test_wrong-1.json").read_text())
    assert wrong["passed"] is False
    assert wrong["params"]["w"]["verdict"] == "bug"
    result.stdout.fnmatch_lines(["gradcheck: 4 reports written to *reports"])
    assert "warning" not in result.stdout.str()


def test_failure_shows_the_report_without_helper_frames(pytester):
    result = run(pytester, "-k", "wrong")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*GradientMismatchError*", "*w*bug*"])
    output = result.stdout.str()
    assert "_verdict" not in output
    assert "def assert_gradients_correct" not in output


def test_without_the_option_nothing_is_written_and_the_fixture_still_records(pytester):
    result = run(pytester, "-k", "fixture")
    result.assert_outcomes(passed=1)
    assert not list(pytester.path.rglob("*.json"))
    assert "reports written" not in result.stdout.str()


def test_html_is_written_where_the_report_renders_it(pytester, monkeypatch):
    monkeypatch.setattr(gradcheck.Report, "to_html", lambda self: "<html>report</html>",
                        raising=False)  # fmt: skip
    result = run(pytester, "--gradcheck-report", "out", "-k", "right")
    result.assert_outcomes(passed=1)
    html = pytester.path / "out" / "test_checks.py_test_right-1.html"
    assert html.read_text(encoding="utf-8") == "<html>report</html>"


def test_missing_html_extra_leaves_the_json(pytester, monkeypatch):
    def no_jinja(self):
        raise gradcheck.MissingExtraError("HTML reports need jinja2")

    monkeypatch.setattr(gradcheck.Report, "to_html", no_jinja, raising=False)
    result = run(pytester, "--gradcheck-report", "out", "-k", "right")
    result.assert_outcomes(passed=1)
    assert [p.name for p in (pytester.path / "out").iterdir()] == [
        "test_checks.py_test_right-1.json"
    ]


def test_report_folder_is_relative_to_the_invocation_directory(pytester):
    pytester.makepyfile(
        test_chdir="""
        import os
        import numpy as np
        from gradcheck.testing import assert_gradients_correct

        def test_moves(tmp_path):
            os.chdir(tmp_path)
            w = np.array([1.0, 2.0])
            assert_gradients_correct(lambda p: np.sum(p["w"] ** 2), {"w": w}, {"dw": 2 * w})
        """
    )
    result = runpytest(pytester, "--gradcheck-report=r")
    result.assert_outcomes(passed=1)
    assert [p.name for p in (pytester.path / "r").glob("*.json")] == [
        "test_chdir.py_test_moves-1.json"
    ]


def test_option_is_in_the_help(pytester):
    result = runpytest(pytester, "--help")
    result.stdout.fnmatch_lines(["*--gradcheck-report=DIR*"])


def test_plugin_module_imports_nothing_heavy_at_start_up():
    # Load the plugin file on its own: what it imports, not what gradcheck/__init__ does.
    path = str(Path(_pytest_plugin.__file__))
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('probe', {path!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "heavy = {'numpy', 'torch', 'jax', 'rich', 'optree', 'gradcheck'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


def test_slugs_are_safe_file_names():
    assert (
        _pytest_plugin._slug("tests/test_x.py::test_y[a/b-1.5]") == "tests_test_x.py_test_y_a_b-1.5"
    )
    assert _pytest_plugin._slug("::") == "check"
