"""Shared test configuration: hypothesis profiles, a seeded rng, gold files, NumPy error policy."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

TESTS = Path(__file__).parent
GOLD = TESTS / "gold"

# Test modules import the shared helpers (`strategies`) by name; --import-mode=importlib
# does not put the tests directory on sys.path, so do it here, once.
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=30,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.register_profile("thorough", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-gold",
        action="store_true",
        default=False,
        help="Rewrite the expected renders under tests/gold/ instead of comparing with them.",
    )


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: tests never touch NumPy's global RNG."""
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _numpy_error_policy() -> Iterator[None]:
    """Pin NumPy's floating-point policy: warn (an error under filterwarnings) except underflow."""
    with np.errstate(divide="warn", over="warn", invalid="warn", under="ignore"):
        yield


GoldCompare = Callable[..., None]


@pytest.fixture
def gold(request: pytest.FixtureRequest) -> GoldCompare:
    """Compare text with tests/gold/NAME, or rewrite the file under ``--update-gold``.

    ``scrubs`` is a list of (regex, replacement) applied to the text first, to hide
    what legitimately changes from run to run (timings).
    """
    update = request.config.getoption("--update-gold")

    def compare(name: str, actual: str, scrubs: list[tuple[str, str]] | None = None) -> None:
        __tracebackhide__ = True
        for pattern, replacement in scrubs or []:
            actual = re.sub(pattern, replacement, actual)
        path = GOLD / name
        if update:
            path.write_text(actual, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"{path} does not exist; run `pytest --update-gold` to create it.")
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, (
            f"the render differs from {path}; if the change is intended, regenerate with "
            "`pytest --update-gold` and review the diff."
        )

    return compare
