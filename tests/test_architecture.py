"""The structure the code promises: one result model, one option list, private modules kept
private, public modules that expose exactly their ``__all__``, and small modules.

These read the source (AST, signatures, ``sys.modules`` in a fresh interpreter) rather than
behaviour, so that the architecture cannot drift back while the behaviour tests still pass.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import gradcheck
import gradcheck.testing
from gradcheck._options import OPTION_DEFAULTS, OPTION_NAMES

SOURCE = pathlib.Path(gradcheck.__file__).parent
MAX_LINES = 400


def _modules():
    for path in sorted(SOURCE.rglob("*.py")):
        parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
        package = parts[:-1]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, parts, package


def _imported(node: ast.ImportFrom, package: list[str]) -> list[list[str]]:
    if node.level:
        base = package[: len(package) - (node.level - 1)]
        target = base + (node.module.split(".") if node.module else [])
    else:
        target = node.module.split(".") if node.module else []
    return [target] + [[*target, alias.name] for alias in node.names]


def test_no_module_reaches_into_another_packages_private_module():
    """``gradcheck.<pkg>._<private>`` is imported only from inside ``<pkg>``."""
    offences = []
    for path, parts, package in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            for target in _imported(node, package if path.name != "__init__.py" else parts):
                for i in range(2, len(target)):
                    if target[i].startswith("_") and not target[i].startswith("__"):
                        if target[i - 1].startswith("_") and parts[:i] != target[:i]:
                            offences.append(f"{'.'.join(parts)} imports {'.'.join(target)}")
                        break
    assert not offences, "\n".join(offences)


@pytest.mark.parametrize("module", ["gradcheck._report", "gradcheck._results"])
def test_the_report_side_loads_no_engine_or_diagnosis(module):
    code = (
        f"import {module}, sys; "
        "bad = [m for m in sys.modules if m.startswith(('gradcheck._engine', "
        "'gradcheck._diagnose'))]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "module", ["gradcheck", "gradcheck.testing", "gradcheck.torch", "gradcheck.jax",
               "gradcheck.autograd"],
)  # fmt: skip
def test_public_modules_expose_exactly_their_all(module):
    framework = module.removeprefix("gradcheck.")
    if framework in ("torch", "jax", "autograd") and importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    imported = importlib.import_module(module)
    assert sorted(dir(imported)) == sorted(imported.__all__)
    for name in imported.__all__:
        assert getattr(imported, name) is not None


def test_every_module_is_small():
    long = {str(path.relative_to(SOURCE)): n for path, _, _ in _modules()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}  # fmt: skip
    assert not long, long


def test_package_inits_only_re_export():
    """An ``__init__`` holds imports, ``__all__`` and a docstring (lazy loading at the root)."""
    for path, parts, _ in _modules():
        if path.name != "__init__.py" or parts == ["gradcheck"]:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            allowed = (ast.Import, ast.ImportFrom, ast.Expr, ast.Assign)
            assert isinstance(node, allowed), f"{path}: {ast.dump(node)[:80]}"
            if isinstance(node, ast.Assign):
                assert [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]


# --- every option at every entry point --------------------------------------------------------


def _entry_points():
    points = {
        "check": gradcheck.check,
        "check_layer": gradcheck.check_layer,
        "assert_gradients_correct": gradcheck.testing.assert_gradients_correct,
        "assert_layer_gradients_correct": gradcheck.testing.assert_layer_gradients_correct,
    }
    frameworks = (("torch", ("check_module", "check_function")), ("jax", ("check_function",)),
                  ("autograd", ("check_function",)))  # fmt: skip
    for framework, names in frameworks:
        if importlib.util.find_spec(framework) is not None:
            module = importlib.import_module(f"gradcheck.{framework}")
            points.update({f"{framework}.{name}": getattr(module, name) for name in names})
    return points


def test_the_option_list_is_one_list():
    """The TypedDict (types, docs) and the defaults name the same options, in one order."""
    from gradcheck import CheckOptions

    assert list(CheckOptions.__annotations__) == list(OPTION_DEFAULTS) == list(OPTION_NAMES)


@pytest.mark.parametrize("name", sorted(_entry_points()))
def test_every_entry_point_lists_every_option_with_its_default(name):
    parameters = inspect.signature(_entry_points()[name]).parameters
    for option in OPTION_NAMES:
        assert option in parameters, f"{name} lacks {option}"
        assert parameters[option].kind is inspect.Parameter.KEYWORD_ONLY
        default = parameters[option].default
        assert default == OPTION_DEFAULTS[option] or (
            option == "thresholds" and tuple(default) == tuple(OPTION_DEFAULTS[option])
        )


def _calls():
    """One small correct check per entry point, as ``call(**options) -> Report``."""
    x = np.linspace(0.2, 1.0, 6)
    calls = {
        "check": lambda **o: gradcheck.check(lambda p: np.sum(np.sin(p), axis=-1), x.copy(),
                                             np.cos(x), **o),
        "check_layer": lambda **o: gradcheck.check_layer(
            lambda p: np.sin(p), lambda p, d: d * np.cos(p), x.copy(), **o),
    }  # fmt: skip
    if importlib.util.find_spec("torch") is not None:
        import torch

        import gradcheck.torch

        t = torch.linspace(0.2, 1.0, 6, dtype=torch.float64, requires_grad=True)
        model = torch.nn.Linear(2, 1)
        data = torch.ones(3, 2)
        calls["torch.check_function"] = lambda **o: gradcheck.torch.check_function(
            torch.sin, t, **o
        )
        calls["torch.check_module"] = lambda **o: gradcheck.torch.check_module(
            model, lambda m: m(data).square().mean(), **o)  # fmt: skip
    for framework in ("jax", "autograd"):
        if importlib.util.find_spec(framework) is None:
            continue
        module = importlib.import_module(f"gradcheck.{framework}")
        numpy = importlib.import_module("jax.numpy" if framework == "jax" else "autograd.numpy")
        calls[f"{framework}.check_function"] = (
            lambda module=module, numpy=numpy, **o: module.check_function(
                lambda p: numpy.sum(numpy.sin(p["w"])), {"w": x.copy()}, **o)
        )  # fmt: skip
    return calls


def _values(pool):
    """A non-default value of every option (with what it needs to apply)."""
    return {
        "eps": {"eps": 1e-6},
        "method": {"method": "forward"},
        "mode": {"mode": "sample"},
        "samples": {"mode": "sample", "samples": 2},
        "seed": {"seed": 3},
        "thresholds": {"thresholds": [1e-7, 1e-5, 1e-3]},
        "worst": {"worst": 2},
        "batch_size": {"batch_size": 4},
        "time_steps": {"time_steps": 3},
        "batched": {"batched": True},
        "workers": {"workers": 1},
        "executor": {"executor": pool},
        "progress": {"progress": False},
        "directions": {"mode": "directional", "directions": 2},
        "miss_probability": {"mode": "directional", "miss_probability": 1e-3},
        "detectable": {"mode": "directional", "detectable": 1e-2},
        "timeout": {"timeout": 30.0},
    }


@pytest.mark.parametrize("name", sorted(_calls()))
def test_every_option_works_at_every_entry_point_or_is_refused_with_a_reason(name):
    call = _calls()[name]
    reasons = []
    with ThreadPoolExecutor(2) as pool:
        values = _values(pool)
        assert set(values) == set(OPTION_NAMES)
        for option, options in values.items():
            if option == "workers" and name.startswith("jax"):
                continue  # works (a fork server with JAX loaded), but takes ~10 s to start
            try:
                report = call(**options)
            except gradcheck.InvalidArgumentError as refused:
                reasons.append((option, str(refused)))
                continue
            assert isinstance(report, gradcheck.Report), option
            assert report.passed, (name, option, str(report))
    for option, reason in reasons:  # a refusal says why, in a sentence that names the option
        assert option.split("_")[0] in reason or "workers" in reason, (option, reason)
        assert len(reason) > 60, (option, reason)


@pytest.mark.parametrize("name", sorted(_calls()))
def test_an_unknown_option_is_refused_with_the_closest_name(name):
    with pytest.raises(gradcheck.InvalidArgumentError, match=r"Did you mean.*'eps'"):
        _calls()[name](epss=1e-6)
