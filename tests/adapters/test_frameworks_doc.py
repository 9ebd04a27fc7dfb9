"""docs/frameworks.md and README.md: every python code block runs, every test it defines passes."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("jax")
pytest.importorskip("autograd")

from gradcheck._pytest_plugin import ReportRecorder  # noqa: E402

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "frameworks.md"
README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: one intra-op thread is faster, and with JAX's threads in the same
    process on a small machine torch's thread pool oversubscribes the cores (3x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blocks(path=DOC):
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def test_the_doc_has_the_five_examples():
    text = "\n".join(blocks())
    assert len(blocks()) == 5
    for needle in ("autograd.Function", "check_module", "custom_vjp", "defvjp", "def test_"):
        assert needle in text


@pytest.mark.parametrize("number", range(len(blocks())))
def test_code_block_runs(number, capsys):
    namespace = {"__name__": f"frameworks_doc_{number}"}
    with torch.random.fork_rng(devices=[]):  # the examples seed torch's global RNG
        exec(compile(blocks()[number], f"{DOC}:block{number}", "exec"), namespace)
        tests = {k: v for k, v in namespace.items() if k.startswith("test_") and callable(v)}
        for name, test in tests.items():
            wanted = inspect.signature(test).parameters
            fixtures = {}
            if "gradcheck_report" in wanted:
                fixtures["gradcheck_report"] = ReportRecorder(name, None, [])
            assert set(wanted) == set(fixtures), f"{name} needs fixtures the doc test lacks"
            test(**fixtures)
    capsys.readouterr()


def test_the_readme_has_the_framework_examples():
    text = "\n".join(blocks(README))
    for needle in ("autograd.Function", "check_module", "custom_vjp", "def test_"):
        assert needle in text


@pytest.mark.parametrize("number", range(len(blocks(README))))
def test_readme_code_block_runs(number, capsys):
    namespace = {"__name__": f"readme_{number}"}
    with torch.random.fork_rng(devices=[]):
        exec(compile(blocks(README)[number], f"{README}:block{number}", "exec"), namespace)
        for name, test in namespace.items():
            if name.startswith("test_") and callable(test):
                test()
    capsys.readouterr()
