"""The command-line tool: demo, check, exit codes, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from gradcheck._cli import cli
from gradcheck._engine import METHODS
from gradcheck.demo import BUGS

TARGET = textwrap.dedent(
    """
    import numpy as np

    W = np.array([[0.5, -1.0], [2.0, 0.25]])

    def cost(p):
        return float(np.sum(p["W"] ** 3))

    def right():
        return cost, {"W": W.copy()}, {"dW": 3 * W**2}

    def wrong():
        grads = 3 * W**2
        grads[1, 0] *= 2
        return cost, {"W": W.copy()}, {"dW": grads}

    def pair():
        return (lambda p: (cost(p), {"dW": 3 * p["W"] ** 2})), {"W": W.copy()}

    def as_dict():
        return {"f": cost, "params": {"W": W.copy()}, "grads": {"dW": 3 * W**2}}

    def broken_cost():
        def f(p):
            if p["W"][1, 1] != 0.25:
                raise ZeroDivisionError("division by zero in my layer")
            return cost(p)

        return f, {"W": W.copy()}, {"dW": 3 * W**2}

    def broken_at_start():
        return (lambda p: 1 / 0), {"W": W.copy()}, {"dW": 3 * W**2}

    def raises():
        raise RuntimeError("cannot build the model")

    def returns_number():
        return 3

    not_a_function = 42
    """
)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def target(tmp_path) -> str:
    path = tmp_path / "my_model.py"
    path.write_text(TARGET, encoding="utf-8")
    return str(path)


def worst_param(report: dict) -> str:
    rank = {"correct": 0, "acceptable": 1, "suspicious": 2, "bug": 3}
    return max(
        report["params"].values(),
        key=lambda p: (not p["passed"], rank[p["verdict"]], p["difference"] or 0.0),
    )["name"]


# --- demo ------------------------------------------------------------------------------


def test_demo_passes(runner):
    result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "Backpropagation is correct." in result.output
    assert "LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID" in result.output


@pytest.mark.parametrize("name", list(BUGS))
def test_demo_bug_exits_1_and_its_parameter_is_the_worst(runner, name):
    result = runner.invoke(cli, ["demo", "--bug", name, "--json", "-"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is False
    assert worst_param(report) == BUGS[name].param
    assert report["params"][BUGS[name].param]["passed"] is False


@pytest.mark.parametrize("name", list(BUGS))
def test_demo_bug_terminal_report_names_the_worst_parameter(runner, name):
    result = runner.invoke(cli, ["demo", "--bug", name])
    assert result.exit_code == 1, result.output
    assert "There is a bug in backpropagation." in result.output
    assert f"Worst parameter: {BUGS[name].param} " in " ".join(result.output.split("\n"))
    assert f"mistake injected: {name}" in result.output


def test_demo_unknown_bug_exits_2_listing_the_names(runner):
    result = runner.invoke(cli, ["demo", "--bug", "nope"])
    assert result.exit_code == 2
    assert "'nope' is not a catalogue mistake; choose one of: bias_times_4" in result.output


def test_list_bugs_prints_one_mistake_per_line_name_first(runner):
    result = runner.invoke(cli, ["demo", "--list-bugs"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == len(BUGS)
    for line, (name, bug) in zip(lines, BUGS.items(), strict=True):
        first, rest = line.split(maxsplit=1)
        assert first == name
        assert rest == bug.description


@pytest.mark.parametrize(
    "options",
    [["--method", "central4"], ["--method", "forward"], ["--mode", "sample", "--samples", "3"],
     ["--mode", "sample", "--samples", "0.5"], ["--eps", "auto"], ["--eps", "1e-6"],
     ["--seed", "5"]],
)  # fmt: skip
def test_demo_options_are_passed_to_the_check(runner, options):
    result = runner.invoke(cli, ["demo", *options, "--json", "-"])
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)["settings"]
    flag, value = options[-2], options[-1]
    key = flag.lstrip("-")
    expected = {"--eps": lambda v: v if v == "auto" else float(v), "--seed": int,
                "--samples": lambda v: float(v) if "." in v else int(v)}.get(flag, str)  # fmt: skip
    assert settings[key] == expected(value)


def test_json_file_is_written(runner, tmp_path):
    path = tmp_path / "out" / "report.json"
    path.parent.mkdir()
    result = runner.invoke(cli, ["demo", "--bug", "sign", "--json", str(path)])
    assert result.exit_code == 1
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == 1
    assert data["passed"] is False
    assert "JSON report written to" in result.output


def test_json_to_stdout_keeps_stdout_pure_json(runner):
    result = runner.invoke(cli, ["demo", "--json", "-"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["passed"] is True
    assert "Demo network" in result.stderr


# --- check -----------------------------------------------------------------------------


def test_check_file_target_with_right_grads_exits_0(runner, target):
    result = runner.invoke(cli, ["check", f"{target}:right"])
    assert result.exit_code == 0, result.output
    assert "Backpropagation is correct." in result.output


def test_check_file_target_with_wrong_grads_exits_1(runner, target):
    result = runner.invoke(cli, ["check", f"{target}:wrong", "--json", "-"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["params"]["W"]["worst"][0]["index"] == [1, 0]


@pytest.mark.parametrize("function", ["pair", "as_dict"])
def test_check_target_other_return_forms(runner, target, function):
    result = runner.invoke(cli, ["check", f"{target}:{function}"])
    assert result.exit_code == 0, result.output


def test_check_module_target(runner, tmp_path, monkeypatch):
    package = tmp_path / "gc_cli_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "model.py").write_text(TARGET, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "gc_cli_pkg", raising=False)
    monkeypatch.delitem(sys.modules, "gc_cli_pkg.model", raising=False)
    assert runner.invoke(cli, ["check", "gc_cli_pkg.model:right"]).exit_code == 0
    assert runner.invoke(cli, ["check", "gc_cli_pkg.model:wrong"]).exit_code == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["check", "nocolon"], "should be path/to/file.py:function or package.module:function"),
        (["check", ":right"], "should be path/to/file.py:function"),
        (["check", "{target}:"], "should be path/to/file.py:function"),
        (["check", "missing_file.py:right"], "cannot load 'missing_file.py'"),
        (["check", "no_such_module_xyz:right"], "cannot load 'no_such_module_xyz'"),
        (["check", "{target}:absent"], "has nothing called 'absent'; expected a function"),
        (["check", "{target}:not_a_function"], "has an int called 'not_a_function'"),
        (["check", "{target}:raises"], "raises() raised RuntimeError: cannot build the model"),
        (["check", "{target}:returns_number"], "returned an int; it should return (f, params)"),
        (["check", "{target}:right", "--method", "centrl"], "'centrl' is not one of"),
        (["check", "{target}:right", "--mode", "bisekt"], "'bisekt' is not one of"),
        (["check", "{target}:right", "--eps", "foo"], "'foo' is neither a number nor 'auto'"),
        (["check", "{target}:right", "--eps", "-1"], "'-1' must be positive"),
        (["check", "{target}:right", "--seed", "-2"], "-2 is not in the range x>=0"),
        (["check", "{target}:right", "--samples", "3"], "samples=3 only applies to mode='sample'"),
        (["check", "{target}:right", "--mode", "sample", "--samples", "0"],
         "samples=0 must be at least 1 per array"),
        (["check", "{target}:right", "--mode", "sample", "--samples", "x"],
         "'x' is neither a count nor a fraction"),
        (["demo", "--bogus"], "No such option"),
        (["nocommand"], "No such command 'nocommand'"),
    ],
)  # fmt: skip
def test_usage_and_input_errors_exit_2_with_a_message(runner, target, arguments, message):
    result = runner.invoke(cli, [a.replace("{target}", target) for a in arguments])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_cost_raising_at_a_coordinate_exits_2_naming_it(runner, target):
    result = runner.invoke(cli, ["check", f"{target}:broken_cost"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "the cost function raised ZeroDivisionError: division by zero in my layer" in text
    assert 'params["W"][1, 1]' in text


def test_cost_raising_at_the_base_point_exits_2_not_1(runner, target):
    # Exit code 1 means "gradient mismatch"; a cost that cannot run is an input error.
    result = runner.invoke(cli, ["check", f"{target}:broken_at_start"])
    assert result.exit_code == 2, result.output
    assert "ZeroDivisionError" in result.output


@pytest.mark.parametrize("method", METHODS)
def test_demo_never_reports_the_correct_network_as_a_bug(runner, method):
    # As on a user's terminal, where a ComplexWarning is printed, not raised.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        result = runner.invoke(cli, ["demo", "--method", method])
    text = " ".join(result.output.split())
    assert result.exit_code != 1, text
    if result.exit_code == 2:  # a method the demo network cannot support must say so
        assert "complex" in text
    else:
        assert result.exit_code == 0
        assert "Backpropagation is correct" in text


def test_help_documents_the_exit_codes(runner):
    for arguments in (["--help"], ["demo", "--help"], ["check", "--help"]):
        result = runner.invoke(cli, arguments)
        assert result.exit_code == 0
        text = " ".join(result.output.split())
        assert (
            "Exit codes: 0 the gradients passed; 1 a gradient mismatch or no verdict; 2 a usage "
            "or input error (including an unwritable --json/--html path, checked first); 3 an "
            "internal or environment failure (a worker lost); 130 interrupted." in text
        )


def test_version(runner):
    import gradcheck

    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert gradcheck.__version__ in result.output


def test_python_m_gradcheck_demo():
    completed = subprocess.run(
        [sys.executable, "-m", "gradcheck", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Backpropagation is correct." in completed.stdout


def test_python_m_gradcheck_demo_with_a_bug_exits_1():
    completed = subprocess.run(
        [sys.executable, "-m", "gradcheck", "demo", "--bug", "zero", "--json", "-"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert worst_param(json.loads(completed.stdout)) == "b2"


def test_demo_writes_the_html_report(tmp_path):
    target = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["demo", "--bug", "sign", "--html", str(target)])
    assert result.exit_code == 1
    assert "HTML report written to" in result.output
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_html_without_the_extra_exits_2_with_the_install_hint(tmp_path, monkeypatch):
    from gradcheck._report import _html

    monkeypatch.setitem(sys.modules, "jinja2", None)
    _html._environment.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["demo", "--html", str(tmp_path / "r.html")])
    finally:
        _html._environment.cache_clear()
    assert result.exit_code == 2
    assert "pip install 'gradcheck[html]'" in result.output


FAULTS = textwrap.dedent(
    """
    import os
    import time

    import numpy as np

    W = np.linspace(-1.0, 1.0, 12)
    PARENT = os.getpid()

    def cost(p):
        return float(np.sum(np.sin(p["w"])))

    def _at_trigger(p):
        return p["w"][5] != W[5]

    def marked_cost(p):
        return float(np.sum(np.sin(p["x[/]"])) + np.sum(np.sin(p["[red]w"])))

    def marked_target():
        params = {"x[/]": W.copy(), "[red]w": W.copy()}
        return marked_cost, params, {"x[/]": np.cos(W), "[red]w": np.cos(W)}

    def worker_dies():
        parent = os.getpid()

        def f(p):
            if _at_trigger(p) and os.getpid() != parent:
                os._exit(9)
            return cost(p)

        return f, {"w": W.copy()}, {"w": np.cos(W)}

    def interrupted():
        def f(p):
            if _at_trigger(p):
                raise KeyboardInterrupt
            return cost(p)

        return f, {"w": W.copy()}, {"w": np.cos(W)}

    def hangs():
        def f(p):
            if _at_trigger(p):
                time.sleep(3)
            return cost(p)

        return f, {"w": W.copy()}, {"w": np.cos(W)}
    """
)


@pytest.fixture
def faults(tmp_path) -> str:
    path = tmp_path / "faults.py"
    path.write_text(FAULTS, encoding="utf-8")
    return str(path)


def test_an_unwritable_report_path_exits_2_before_the_check(runner, target, tmp_path):
    for option in ("--json", "--html"):
        result = runner.invoke(cli, ["check", f"{target}:right", option, "/nonexistent/r.out"])
        assert result.exit_code == 2, result.output
        assert "does not exist" in result.output
        assert option in result.output
        assert "gradcheck ·" not in result.output, "the check ran before the path was checked"
    result = runner.invoke(cli, ["check", f"{target}:right", "--json", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a directory" in result.output


def test_names_with_markup_print_as_written_and_exit_0(runner, faults):
    result = runner.invoke(cli, ["check", f"{faults}:marked_target"])
    assert result.exit_code == 0, result.output
    assert "x[/]" in result.output
    assert "[red]w" in result.output


def test_a_lost_worker_exits_3(runner, faults):
    result = runner.invoke(cli, ["check", f"{faults}:worker_dies", "--workers", "2"])
    assert result.exit_code == 3, result.output
    assert "worker was lost" in " ".join(result.output.split())


def test_an_interrupt_exits_130(runner, faults):
    result = runner.invoke(cli, ["check", f"{faults}:interrupted"])
    assert result.exit_code == 130, result.output
    assert "Interrupted" in result.output


def test_an_evaluation_past_the_timeout_exits_2(runner, faults):
    result = runner.invoke(cli, ["check", f"{faults}:hangs", "--timeout", "0.2"])
    assert result.exit_code == 2, result.output
    assert "timeout=0.2" in " ".join(result.output.split())


def test_an_internal_error_exits_3_and_asks_for_a_report(runner, target, monkeypatch):
    import gradcheck._cli

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in gradcheck")

    monkeypatch.setattr(gradcheck._cli, "check", broken)
    result = runner.invoke(cli, ["check", f"{target}:right"])
    assert result.exit_code == 3, result.output
    assert "internal error" in result.output
    assert "a bug in gradcheck" in result.output
