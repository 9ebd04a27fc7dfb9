"""The command-line tool: ``gradcheck demo`` and ``gradcheck check TARGET``.

Exit codes: 0 the gradients passed; 1 a gradient mismatch or no verdict (inconclusive);
2 a usage or input error (bad option, a target that does not load, a cost that fails, an
unwritable report path, checked before the check starts); 3 an internal or environment
failure (a worker lost, a report that could not be written); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ._api import check
from ._engine import METHODS, MODES
from ._errors import GradcheckError, MissingExtraError, WorkerError
from ._results import Report
from ._text import a_type

EXIT_PASSED, EXIT_MISMATCH, EXIT_ERROR, EXIT_FAILURE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

_EXIT_CODES = (
    "Exit codes: 0 the gradients passed; 1 a gradient mismatch or no verdict; 2 a usage or "
    "input error (including an unwritable --json/--html path, checked first); 3 an internal "
    "or environment failure (a worker lost); 130 interrupted."
)


class InputError(click.ClickException):
    """Bad input (a target that does not load, params that do not match): exit code 2."""

    exit_code = EXIT_ERROR


class EnvironmentFailure(click.ClickException):
    """The check could not finish for a reason outside the user's input: exit code 3."""

    exit_code = EXIT_FAILURE


class _Eps(click.ParamType[Any]):
    """A positive float or the word "auto"."""

    name = "FLOAT|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value == "auto" or isinstance(value, float):
            return value
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'auto'", param, ctx)
        if not number > 0:
            self.fail(f"{value!r} must be positive", param, ctx)
        return number


class _Samples(click.ParamType[Any]):
    """A count per array (int) or a fraction of each array (float in (0, 1])."""

    name = "N|FRACTION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int | float):
            return value
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a count nor a fraction", param, ctx)


def _check_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `gradcheck.check` takes, shared by both commands."""
    options = [
        click.option("--method", type=click.Choice(METHODS), default="central", show_default=True,
                     help="Finite-difference scheme."),
        click.option("--mode", type=click.Choice(MODES), default="full", show_default=True,
                     help="full: every coordinate; sample: a seeded sample of each array; "
                          "directional: random directions per array; bisect: directional, "
                          "then find the wrong elements."),
        click.option("--samples", type=_Samples(), default=None,
                     help="With --mode sample: elements per array (int) or a fraction (float)."),
        click.option("--eps", type=_Eps(), default=None,
                     help="Step: a float, or 'auto'. Default: 1e-7 for float64."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed for every random choice."),
        click.option("--directions", type=click.IntRange(min=1), default=None,
                     help="Directional modes: directions per array (default: from a 1e-6 "
                          "miss probability)."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Evaluate in this many worker processes."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Seconds one evaluation of the cost may take (default: no limit)."),
        click.option("--progress/--no-progress", default=True, show_default=True,
                     help="Progress bar for checks longer than a second (terminal only)."),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True),
                     default=None, help="Also write the JSON report to this file ('-': stdout)."),
        click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
                     help="Also write the HTML report (one self-contained file) to this file."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


@click.group(epilog=_EXIT_CODES)
@click.version_option(package_name="gradcheck")
def cli() -> None:
    """Verify hand-written gradients: where they are wrong, and what kind of mistake."""


@cli.command(epilog=_EXIT_CODES)
@click.option(
    "--bug",
    default=None,
    metavar="NAME",
    help="Inject a catalogue mistake into the demo network (see --list-bugs).",
)
@click.option("--list-bugs", is_flag=True, help="List the catalogue mistakes and exit.")
@click.option(
    "--layers",
    default="2,20,20,1",
    show_default=True,
    metavar="N0,N1,...",
    help="Units per layer, input first (ends in 1: sigmoid output; else softmax).",
)
@click.option(
    "--activation",
    type=click.Choice(["relu", "tanh", "sigmoid"]),
    default="relu",
    show_default=True,
    help="Hidden activation.",
)
@click.option(
    "--batched",
    is_flag=True,
    help="Use the network's batched cost (reruns only the layers above a change).",
)
@_check_options
def demo(
    bug: str | None,
    list_bugs: bool,
    layers: str,
    activation: str,
    batched: bool,
    **options: Any,
) -> None:
    """Check the built-in NumPy network's hand-written backpropagation.

    The network is LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID with L2
    regularization on a small synthetic data set. With --bug NAME, one gradient
    is deliberately wrong, and the report shows which one and how.
    """
    from .demo import BUGS, check_demo, make_network

    if list_bugs:
        width = max(map(len, BUGS))
        for name, entry in BUGS.items():
            click.echo(f"{name:<{width}}  {entry.description}")
        return
    if bug is not None and bug not in BUGS:
        raise click.BadParameter(
            f"{bug!r} is not a catalogue mistake; choose one of: {', '.join(BUGS)}",
            param_hint="'--bug'",
        )
    try:
        sizes = tuple(int(units) for units in layers.split(","))
        network = make_network(sizes, activation=activation)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--layers'") from exc
    if bug is not None and len(sizes) != 4:
        raise click.BadParameter(
            "the catalogue mistakes are written for three dense layers (e.g. 2,20,20,1)",
            param_hint="'--layers'",
        )
    if batched:
        options["batched"] = network.perturbed_costs
    json_path, html_path = options.pop("json_path"), options.pop("html_path")
    console = _console(json_path)
    console.print(f"[bold]Demo network[/bold]: {network.describe()}, {network.size:,} parameters"
                  + (f"; mistake injected: [yellow]{bug}[/yellow]" if bug else ""))  # fmt: skip
    _finish(lambda: check_demo(bug, network=network, **options), json_path, console, html_path)


@cli.command("check", epilog=_EXIT_CODES)
@click.argument("target")
@_check_options
def check_command(target: str, **options: Any) -> None:
    """Check the gradients of your own code.

    TARGET is path/to/file.py:function or package.module:function. The function
    takes no arguments and returns (f, params) or (f, params, grads), exactly
    the arguments of gradcheck.check: with grads, f(params) returns the loss;
    without, f(params) returns (loss, grads).
    """
    function = _load_target(target)
    try:
        returned = function()
    except Exception as exc:
        raise InputError(f"{target}() raised {type(exc).__name__}: {exc}") from exc
    f, params, grads = _unpack_target(target, returned)
    json_path, html_path = options.pop("json_path"), options.pop("html_path")
    _finish(lambda: check(f, params, grads, **options), json_path, _console(json_path), html_path)


def _finish(
    run: Callable[[], Report], json_path: str | None, console: Console, html_path: str | None
) -> None:
    _require_writable(json_path, "--json")
    _require_writable(html_path, "--html")
    if html_path and importlib.util.find_spec("jinja2") is None:
        raise InputError(
            "--html needs the html extra, which is not installed: pip install 'gradcheck[html]'."
        )
    try:
        report = run()
    except KeyboardInterrupt:
        click.echo("Interrupted: the check stopped; your arrays are intact.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except WorkerError as exc:
        raise EnvironmentFailure(str(exc)) from exc
    except GradcheckError as exc:
        raise InputError(str(exc)) from exc
    except Exception as exc:
        traceback.print_exc()
        raise EnvironmentFailure(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in gradcheck; please "
            "report it with the traceback above."
        ) from exc
    try:
        if json_path == "-":
            click.echo(report.to_json())
        else:
            console.print(report)
            if json_path:
                report.to_json(json_path)
                console.print(f"JSON report written to {json_path}", markup=False)
        if html_path:
            report.to_html(html_path)
            console.print(f"HTML report written to {html_path}", markup=False)
    except MissingExtraError as exc:
        raise InputError(str(exc)) from exc
    except OSError as exc:
        raise EnvironmentFailure(f"could not write the report: {exc}") from exc
    sys.exit(EXIT_PASSED if report.passed else EXIT_MISMATCH)


def _require_writable(path: str | None, option: str) -> None:
    """Refuse a report path that cannot be written before spending time on the check."""
    if path is None or path == "-":
        return
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        problem = "is a directory"
    elif not folder.is_dir():
        problem = f"is in {str(folder)!r}, which does not exist"
    elif target.exists() and not os.access(target, os.W_OK):
        problem = "exists and is not writable"
    elif not target.exists() and not os.access(folder, os.W_OK | os.X_OK):
        problem = f"is in {str(folder)!r}, where files cannot be created"
    else:
        return
    raise click.BadParameter(
        f"{path!r} {problem}; choose a file that can be written.", param_hint=f"'{option}'"
    )


def _console(json_path: str | None) -> Console:
    # With the JSON on stdout, the human-readable lines go to stderr.
    console = Console(stderr=json_path == "-", highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 100)
    return console


def _load_target(target: str) -> Callable[[], Any]:
    location, sep, name = target.rpartition(":")
    if not sep or not location or not name:
        raise click.BadParameter(
            f"{target!r} should be path/to/file.py:function or package.module:function",
            param_hint="TARGET",
        )
    try:
        module = (
            _import_file(Path(location))
            if location.endswith(".py")
            else (importlib.import_module(location))
        )
    except (ImportError, FileNotFoundError) as exc:
        raise click.BadParameter(f"cannot load {location!r}: {exc}", param_hint="TARGET") from exc
    except Exception as exc:
        raise InputError(f"importing {location!r} raised {type(exc).__name__}: {exc}") from exc
    function = getattr(module, name, None)
    if not callable(function):
        found = "nothing" if function is None else f"{a_type(function)}"
        raise click.BadParameter(
            f"{location!r} has {found} called {name!r}; expected a function", param_hint="TARGET"
        )
    return function  # type: ignore[no-any-return]


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    module_name = f"_gradcheck_target_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))  # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def _unpack_target(target: str, returned: Any) -> tuple[Callable[[Any], Any], Any, Any]:
    if isinstance(returned, Mapping) and "params" in returned:
        f = returned.get("f", returned.get("cost"))
        return f, returned["params"], returned.get("grads")
    if isinstance(returned, tuple) and len(returned) in (2, 3):
        f, params, *rest = returned
        return f, params, (rest[0] if rest else None)
    raise InputError(
        f"{target}() returned {a_type(returned)}; it should return (f, params) or "
        "(f, params, grads), the arguments of gradcheck.check."
    )


def main() -> None:
    """Entry point of the ``gradcheck`` console script."""
    cli()
