"""The progress bar and the long-check warning: shown only when worth it, never in the way.

`ProgressBar` is driven with a fake clock (``time.perf_counter``) and a console that
claims to be a terminal, so the tests decide what "a second later" and "a terminal"
are. The long-check warning is triggered on a small check by lowering `LONG_CHECK`.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import rich.console
import rich.progress

import gradcheck
from gradcheck import GradcheckWarning, _progress
from gradcheck._pipeline import _run
from gradcheck._progress import DELAY, ProgressBar


class Clock:
    """A perf_counter that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(time, "perf_counter", fake)
    return fake


@pytest.fixture
def terminal(monkeypatch):
    """Every rich console believes it writes to a terminal."""
    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: True))


@pytest.fixture
def lifecycle(monkeypatch):
    """Record when rich progress displays start and stop (they still run)."""
    events = []
    start, stop = rich.progress.Progress.start, rich.progress.Progress.stop

    def recording_start(self):
        events.append("start")
        start(self)

    def recording_stop(self):
        events.append("stop")
        stop(self)

    monkeypatch.setattr(rich.progress.Progress, "start", recording_start)
    monkeypatch.setattr(rich.progress.Progress, "stop", recording_stop)
    return events


# --- ProgressBar on its own ----------------------------------------------------------------


def test_a_short_run_stays_invisible(clock, terminal, lifecycle):
    with ProgressBar(1000) as bar:
        for _ in range(10):
            clock.advance(DELAY / 20)
            bar(100)
        assert bar._bar is None
    assert bar.done == 1000
    assert lifecycle == []


def test_a_run_that_is_nearly_done_after_the_delay_stays_invisible(clock, terminal, lifecycle):
    with ProgressBar(1000) as bar:
        clock.advance(DELAY * 1.5)
        bar(990)  # about 0.015 s to go: not worth a bar
        clock.advance(DELAY)
        bar(10)
        assert bar._bar is None
    assert lifecycle == []


def test_a_long_run_shows_on_a_terminal_and_stops(clock, terminal, lifecycle, capsys):
    with ProgressBar(1000) as bar:
        bar(50)
        assert bar._bar is None  # before the delay
        clock.advance(DELAY * 1.2)
        bar(50)  # 100 of 1000 after 1.2 s: about 11 s to go
        assert bar._bar is not None
        assert lifecycle == ["start"]
        task = bar._bar.tasks[0]
        assert (task.completed, task.total, task.description) == (100, 1000, "gradcheck")
        bar(400)
        assert bar._bar.tasks[0].completed == 500
        bar._bar.refresh()
    assert bar._bar is None
    assert lifecycle == ["start", "stop"]
    rendered = capsys.readouterr().err
    assert "gradcheck" in rendered
    assert "500/1000" in rendered
    assert "evaluations" in rendered
    assert "ETA" in rendered


def test_the_bar_stops_when_the_check_raises(clock, terminal, lifecycle):
    bars = []

    def failing_check():
        with ProgressBar(1000) as bar:
            bars.append(bar)
            clock.advance(DELAY * 2)
            bar(10)
            assert lifecycle == ["start"]
            raise RuntimeError("the cost failed")

    with pytest.raises(RuntimeError, match=r"the cost failed"):
        failing_check()
    assert lifecycle == ["start", "stop"]
    assert bars[0]._bar is None


def test_not_a_terminal_stays_invisible(clock, lifecycle, capsys):
    assert not rich.console.Console(stderr=True).is_terminal  # pytest captures stderr
    with ProgressBar(1000) as bar:
        clock.advance(DELAY * 5)
        bar(10)
        bar(10)
        assert bar._bar is None
    assert lifecycle == []
    assert capsys.readouterr().err == ""


def test_disabled_stays_invisible_even_on_a_terminal(clock, terminal, lifecycle, capsys):
    with ProgressBar(1000, enabled=False) as bar:
        clock.advance(DELAY * 5)
        bar(10)
        assert bar._bar is None
    assert bar.done == 10
    assert lifecycle == []
    assert capsys.readouterr().err == ""


def test_nothing_to_do_stays_invisible(clock, terminal, lifecycle):
    with ProgressBar(0) as bar:
        clock.advance(DELAY * 5)
        bar(0)
        assert bar._bar is None
    assert lifecycle == []


# --- through check -------------------------------------------------------------------------


def slow_enough_problem():
    """Enough coordinates for several progress updates (one per 256 coordinates)."""
    theta = np.linspace(-1, 1, 1500)
    return (lambda p: np.sum(np.sin(p["theta"]))), {"theta": theta}, {"theta": np.cos(theta)}


def test_check_shows_the_bar_on_a_terminal_when_it_takes_a_while(
    monkeypatch, terminal, lifecycle, capsys
):
    monkeypatch.setattr(_progress, "DELAY", 0.0)  # "a while" is now
    cost, params, grads = slow_enough_problem()
    report = gradcheck.check(cost, params, grads)
    assert report.passed
    assert lifecycle == ["start", "stop"]
    assert "gradcheck" in capsys.readouterr().err


def test_check_never_shows_the_bar_with_progress_off(monkeypatch, terminal, lifecycle, capsys):
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    cost, params, grads = slow_enough_problem()
    report = gradcheck.check(cost, params, grads, progress=False)
    assert report.passed
    assert lifecycle == []
    assert capsys.readouterr().err == ""


def test_check_never_shows_the_bar_off_a_terminal(monkeypatch, lifecycle, capsys):
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    cost, params, grads = slow_enough_problem()
    assert gradcheck.check(cost, params, grads).passed
    assert lifecycle == []
    assert capsys.readouterr().err == ""


# --- the long-check warning ----------------------------------------------------------------


class CountingCost:
    """sum(sin(W)) that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, p):
        self.calls += 1
        return np.sum(np.sin(p["W"]))


def small_problem():
    W = np.linspace(-1, 1, 12).reshape(3, 4)
    return {"W": W}, {"W": np.cos(W)}


def test_a_long_full_check_warns_and_names_the_alternatives(monkeypatch):
    monkeypatch.setattr(_run, "LONG_CHECK", 20)
    params, grads = small_problem()
    cost = CountingCost()
    with pytest.warns(GradcheckWarning, match=r"a full check is 24 cost evaluations") as caught:
        report = gradcheck.check(cost, params, grads)
    assert report.passed
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "mode='directional'" in message
    assert "mode='bisect'" in message
    assert "mode='sample'" in message
    assert caught[0].filename == __file__  # points at the caller's line, not at gradcheck


def test_the_warning_comes_before_the_evaluations(monkeypatch):
    monkeypatch.setattr(_run, "LONG_CHECK", 20)
    params, grads = small_problem()
    before = params["W"].tobytes()
    cost = CountingCost()
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradcheckWarning)
        with pytest.raises(GradcheckWarning, match=r"cost evaluations: about"):
            gradcheck.check(cost, params, grads)
    assert cost.calls == 2  # the base point and its repeat: no coordinate was evaluated yet
    assert params["W"].tobytes() == before


def test_check_layer_warns_too(monkeypatch):
    monkeypatch.setattr(_run, "LONG_CHECK", 20)
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    with pytest.warns(GradcheckWarning, match=r"a full check is 24 cost evaluations") as caught:
        report = gradcheck.check_layer(np.sin, lambda x, dout: dout * np.cos(x), x)
    assert report.passed
    assert caught[0].filename == __file__


def test_the_threshold_is_a_number_of_evaluations(monkeypatch):
    params, grads = small_problem()
    monkeypatch.setattr(_run, "LONG_CHECK", 25)  # 24 planned: below
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gradcheck.check(CountingCost(), params, grads).passed
    monkeypatch.setattr(_run, "LONG_CHECK", 24)  # at it
    with pytest.warns(GradcheckWarning, match=r"24 cost evaluations"):
        gradcheck.check(CountingCost(), params, grads)
    # central4 takes 4 evaluations per coordinate: 48 planned
    monkeypatch.setattr(_run, "LONG_CHECK", 40)
    with pytest.warns(GradcheckWarning, match=r"a full check is 48 cost evaluations"):
        gradcheck.check(CountingCost(), params, grads, method="central4")


@pytest.mark.parametrize(
    "options",
    [{"mode": "sample", "samples": 1.0}, {"mode": "directional"}, {"mode": "bisect"}],
    ids=["sample", "directional", "bisect"],
)
def test_other_modes_do_not_warn(monkeypatch, options):
    monkeypatch.setattr(_run, "LONG_CHECK", 1)
    params, grads = small_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = gradcheck.check(CountingCost(), params, grads, **options)
    assert report.passed
    assert report.settings.mode == options["mode"]


def test_the_default_threshold_is_about_a_million_coordinates():
    assert 10**6 <= _run.LONG_CHECK <= 10**7
