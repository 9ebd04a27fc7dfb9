"""The framework registry: detection without imports, hints, fork safety, one entry per extra."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest

from gradcheck._engine import process_pool
from gradcheck._frameworks import (
    FRAMEWORKS,
    detect,
    fork_unsafe_loaded,
    framework_of,
    hint_for,
)

ROOT = Path(__file__).parents[1]


def by_name(name):
    return next(f for f in FRAMEWORKS if f.name == name)


def fake(module):
    """An instance of a class that claims to live in ``module`` (no framework needed)."""
    return type("Array", (), {"__module__": module})()


# --- detection --------------------------------------------------------------------------


def test_plain_numpy_belongs_to_no_framework():
    assert framework_of(np.ones(3)) is None
    assert framework_of(1.5) is None
    assert detect([np.ones(3), {"w": np.ones(2)}]) is None


def test_autograd_arrays_are_numpy_arrays_and_are_not_detected():
    pytest.importorskip("autograd")
    assert not by_name("autograd").is_array(np.ones(3))
    assert detect([{"w": np.ones(2)}]) is None


def test_torch_tensors_among_the_inputs_are_detected():
    torch = pytest.importorskip("torch")
    x = torch.ones(2)
    assert framework_of(x) is by_name("torch")
    assert framework_of(torch.nn.Parameter(x)) is by_name("torch")
    assert detect([x, 3, "option"]) is by_name("torch")


def test_jax_arrays_inside_a_pytree_are_detected():
    jax = pytest.importorskip("jax")
    w = jax.numpy.ones(2)
    assert framework_of(w) is by_name("jax")
    assert detect([{"layers": [{"w": w}]}]) is by_name("jax")
    assert detect([{"layers": [{"w": np.ones(2)}]}]) is None


def test_the_registry_imports_no_framework():
    code = (
        "import sys, numpy as np\n"
        "from gradcheck import _frameworks as f\n"
        "f.detect([np.ones(2), {'a': 1.0}]); f.framework_of(np.ones(2)); f.hint_for(1.0)\n"
        "f.fork_unsafe_loaded()\n"
        "print(sorted({'torch', 'jax', 'autograd'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


# --- hints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "text"),
    [
        ("torch", "This looks like a torch array: for PyTorch tensors and modules use "
                  "gradcheck.torch.check_module / check_function."),
        ("jax", "This looks like a jax array: for JAX arrays use gradcheck.jax.check_function."),
        ("jaxlib", "This looks like a jaxlib array: for JAX arrays use "
                   "gradcheck.jax.check_function."),
        ("autograd", "This looks like an autograd array: for HIPS autograd functions use "
                     "gradcheck.autograd.check_function."),
    ],
)  # fmt: skip
def test_hint_names_the_check_to_use(module, text):
    assert hint_for(fake(f"{module}.sub")) == text


def test_no_hint_for_other_values():
    assert hint_for(np.ones(2)) == ""
    assert hint_for(fake("numpy")) == ""


# --- fork safety ------------------------------------------------------------------------


def test_jax_is_not_fork_safe(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", types.ModuleType("jax"))
    assert fork_unsafe_loaded()
    monkeypatch.delitem(sys.modules, "jax")
    assert not fork_unsafe_loaded()


def _payload():
    return [np.zeros(1)], float


def test_process_pool_starts_by_fork_server_where_jax_is_loaded(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", types.ModuleType("jax"))
    pool, _ = process_pool(1, _payload)
    try:
        assert pool._mp_context.get_start_method() == "forkserver"
    finally:
        pool.shutdown()


# --- one entry per framework, everything it names exists -------------------------------


def test_every_framework_has_its_modules_its_extra_and_a_check():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert len({f.name for f in FRAMEWORKS}) == len(FRAMEWORKS)
    for framework in FRAMEWORKS:
        for module in framework.modules:
            assert (ROOT / "src" / Path(*module.split("."))).with_suffix(".py").is_file()
        assert framework.check_function == f"gradcheck.{framework.name}:check_function"
        assert framework.extra in extras
        assert framework.extra in extras["all"][0]
        assert any(dep.startswith(framework.module) for dep in extras[framework.extra])


def test_checker_is_the_public_check_function():
    pytest.importorskip("autograd")
    import gradcheck.autograd

    assert by_name("autograd").checker() is gradcheck.autograd.check_function
