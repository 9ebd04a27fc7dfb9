"""Fault injection: every way of evaluating a check ends a fault with its documented error.

For the loop, the stacked batched cost, ``workers=2``, a thread pool, and Dask with threads
and with processes: a cost that raises, that raises KeyboardInterrupt, that kills its worker
and that hangs past ``timeout=`` at one perturbed point. Each must end within its time
limit with the documented error, and the caller's arrays bit-identical.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import gradcheck
from gradcheck import CostFunctionError, EvaluationTimeoutError, WorkerError

N = 24
TRIGGER = 5
"""The element whose perturbation sets off the fault (never the base point)."""
BASE = np.linspace(-1.0, 1.0, N)


def _moved(p):
    x = p["w"]
    return x.ndim == 1 and x[TRIGGER] != BASE[TRIGGER]


def _value(p):
    return np.sum(np.sin(p["w"]), axis=-1)


def raises(p):
    if _moved(p):
        raise ValueError("boom at the trigger")
    return _value(p)


def interrupts(p):
    if _moved(p):
        raise KeyboardInterrupt
    return _value(p)


def in_a_worker(fault):
    """A cost that faults at the trigger only in another process: the check also evaluates
    the cost in the caller's process (noise measurement), where killing it would end the
    test run. A closure, so that cloudpickle sends it by value with the caller's pid."""
    parent = os.getpid()

    def cost(p):
        if _moved(p) and os.getpid() != parent:
            fault()
        return _value(p)

    return cost


def _kill():
    os._exit(7)


def _exit():
    raise SystemExit(4)


def hangs(p):
    if _moved(p):
        time.sleep(4)
    return _value(p)


HANG_LIMIT = 0.3
"""The timeout= a hanging cost is checked with (it sleeps 4 s: far past it)."""

dask = pytest.mark.xdist_group("dask-faults")


@pytest.fixture(scope="module")
def clusters():
    distributed = pytest.importorskip("distributed")
    made = {}
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                 dashboard_address=None,
                                 scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as threads,
        distributed.Client(threads, set_as_default=False) as thread_client,
    ):  # fmt: skip
        made["dask-threads"] = thread_client
        yield made


@pytest.fixture(scope="module")
def process_cluster():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=None,
                                 scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):  # fmt: skip
        yield client


def _options(way, request):
    if way == "loop":
        return {}
    if way == "batched":
        return {"batched": True}
    if way == "workers":
        return {"workers": 2}
    if way == "threads":
        pool = ThreadPoolExecutor(2)
        request.addfinalizer(lambda: pool.shutdown(wait=True))
        return {"executor": pool}
    if way == "dask-threads":
        return {"executor": request.getfixturevalue("clusters")["dask-threads"]}
    if way == "dask-processes":
        return {"executor": request.getfixturevalue("process_cluster")}
    raise AssertionError(way)


WAYS = [
    "loop",
    "batched",
    "workers",
    "threads",
    pytest.param("dask-threads", marks=dask),
    pytest.param("dask-processes", marks=dask),
]


def _run(cost, way, request, **extra):
    params = {"w": BASE.copy()}
    before = params["w"].tobytes()
    started = time.monotonic()
    try:
        gradcheck.check(cost, params, {"w": np.cos(BASE)}, progress=False,
                        **_options(way, request), **extra)  # fmt: skip
    finally:
        assert params["w"].tobytes() == before, "the arrays were not restored"
    return time.monotonic() - started


@pytest.mark.parametrize("way", WAYS)
def test_a_cost_that_raises_is_a_cost_function_error(way, request):
    with pytest.raises(CostFunctionError, match=r"boom at the trigger|ValueError"):
        _run(raises, way, request)


@pytest.mark.parametrize("way", WAYS)
def test_a_cost_that_raises_keyboard_interrupt_stops_the_check(way, request):
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _run(interrupts, way, request)
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("way", ["workers", pytest.param("dask-processes", marks=dask)])
def test_a_cost_that_kills_its_worker_is_a_worker_error(way, request):
    started = time.monotonic()
    with pytest.raises(WorkerError, match="arrays are intact") as caught:
        _run(in_a_worker(_kill), way, request)
    assert caught.value.coordinates >= 1
    assert time.monotonic() - started < 60


def test_a_cost_that_exits_in_a_worker_is_a_worker_error(request):
    with pytest.raises(WorkerError, match=r"sys\.exit\(4\)"):
        _run(in_a_worker(_exit), "workers", request)


@pytest.mark.parametrize("way", WAYS)
def test_a_cost_that_hangs_past_the_timeout_is_named(way, request):
    started = time.monotonic()
    with pytest.raises(EvaluationTimeoutError, match=r"timeout=0\.3"):
        _run(hangs, way, request, timeout=HANG_LIMIT)
    assert time.monotonic() - started < 4 + 3, "the check waited for the hang to end"


def test_a_timeout_never_fires_for_a_cost_within_it():
    x = np.linspace(0, 1, 10)
    assert gradcheck.check(lambda p: float(np.sum(p**2)), x, 2 * x, timeout=5).passed


def test_timeout_off_the_main_thread_is_refused_without_workers():
    x = np.linspace(0, 1, 4)
    caught = []

    def target():
        try:
            gradcheck.check(lambda p: float(np.sum(p**2)), x, 2 * x, timeout=1)
        except Exception as exc:
            caught.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    assert isinstance(caught[0], gradcheck.InvalidArgumentError)
    assert "main thread" in str(caught[0])


def test_a_thread_pool_needs_no_pickling():
    lock = threading.Lock()
    x = np.linspace(0, 1, 40)

    def cost(p):
        with lock:
            return float(np.sum(p**2))

    with ThreadPoolExecutor(2) as pool:
        r = gradcheck.check(cost, x, 2 * x, executor=pool)
    assert r.passed
    assert r.settings.executor == "2 threads"


def test_an_unpicklable_cost_for_processes_says_what_to_do():
    lock = threading.Lock()
    x = np.linspace(0, 1, 8)

    def cost(p):
        with lock:
            return float(np.sum(p**2))

    with pytest.raises(CostFunctionError, match=r"cannot be sent.*ThreadPoolExecutor"):
        gradcheck.check(cost, x, 2 * x, workers=2)


def test_sigint_to_the_parent_alone_stops_a_workers_check_within_a_second():
    """What Jupyter's "interrupt kernel" sends: SIGINT to the kernel, not to its workers."""
    x = np.linspace(0, 1, 400)

    def slow(p):
        time.sleep(0.02)
        return float(np.sum(p**2))

    timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            gradcheck.check(slow, x, 2 * x, workers=2, progress=False)
    finally:
        timer.cancel()
    stopped = time.monotonic() - started
    assert stopped < 1.5 + 1.5, f"stopped {stopped:.1f} s after the start"
    np.testing.assert_array_equal(x, np.linspace(0, 1, 400))
