"""Batched, pooled and Dask evaluation: the loop's numbers, the loop's verdicts, named failures.

How a check runs must not change what it finds. The stacked batched cost and every
pool (processes, threads, a Dask cluster) evaluate the very same cost at the very same
points, so their numeric gradients must equal the loop's bit for bit; the delta-protocol
batched cost computes the cost another way, so it agrees to the round-off of one central
difference. The Dask tests share one real ``distributed.LocalCluster`` (module-scoped)
and are grouped for pytest-xdist, so the cluster starts once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import threadpoolctl

import gradcheck
from gradcheck import CostFunctionError, InvalidArgumentError
from gradcheck._engine._executors import CHUNK
from gradcheck.demo import load_bug, make_network

EPS = np.finfo(np.float64).eps
H = 1e-7
"""The default step for float64."""
EXECUTOR = r"batched \(B=\d+(/\d+)*\)"


def fd_noise(cost_value):
    """Round-off in one central difference: a few ulps of the cost over 2h."""
    return 8 * EPS * max(1.0, abs(cost_value)) / (2 * H)


def numerics(report):
    return {name: p.elements.numeric for name, p in report.params.items()}


def verdicts(report):
    return {name: (p.verdict, p.passed) for name, p in report.params.items()}


def snapshot(params):
    return {name: a.tobytes() for name, a in params.items()}


def assert_identical(report, reference):
    __tracebackhide__ = True
    assert list(report.params) == list(reference.params)
    for name, p in report.params.items():
        expected = reference.params[name].elements
        np.testing.assert_array_equal(p.elements.local, expected.local)
        assert np.array_equal(p.elements.numeric, expected.numeric), name


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@pytest.fixture(autouse=True)
def _caller_threads():
    """Undo what worker set-up may do to this process, so no test changes the next one."""
    environment = {variable: os.environ.get(variable) for variable in THREAD_VARIABLES}
    original = threadpoolctl.threadpool_info()
    yield
    for variable, value in environment.items():
        if value is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = value
    for info in original:
        threadpoolctl.threadpool_limits(limits=info["num_threads"], user_api=info["user_api"])


@pytest.fixture(scope="module")
def net():
    """The reference network, with one weight big enough to be split across workers."""
    network = make_network((8, 40, 40, 3), activation="tanh", m=16)
    assert network.params["W2"].size > 4 * CHUNK
    return network


@pytest.fixture(scope="module")
def looped(net):
    """The loop's report on the correct gradients: what every executor must reproduce."""
    return gradcheck.check(net.cost, net.params, net.gradients())


def closure_problem():
    """A lambda over a closure: only cloudpickle can send it to another process."""
    rng = np.random.default_rng(11)
    weights = rng.uniform(0.5, 2.0, (24, 30))
    params = {"W": rng.uniform(-1, 1, (24, 30)), "b": rng.uniform(-1, 1, 6)}
    cost = lambda p: np.sum(weights * np.sin(p["W"])) + np.sum(p["b"] ** 3)  # noqa: E731
    grads = {"W": weights * np.cos(params["W"]), "b": 3 * params["b"] ** 2}
    return cost, params, grads


# --- batched: the stacked cost and the delta protocol -------------------------------------


def test_stacked_batched_cost_gives_the_loops_numbers(net, looped):
    before = snapshot(net.params)
    stacks = []

    def cost(params):
        extra = [name for name, a in params.items() if a.ndim > net.params[name].ndim]
        if extra:
            stacks.append((extra, params[extra[0]].shape[0]))
        return net.cost(params)

    report = gradcheck.check(cost, net.params, net.gradients(), batched=True)
    assert report.passed
    assert verdicts(report) == verdicts(looped)
    assert re.fullmatch(EXECUTOR, report.settings.executor)
    big = {name for name, p in net.params.items() if p.size >= 64}
    assert big <= {extra[0] for extra, _ in stacks}  # every array of some size was stacked
    assert all(len(extra) == 1 for extra, _ in stacks)  # one array at a time
    for name, numeric in numerics(report).items():
        np.testing.assert_allclose(numeric, looped.params[name].elements.numeric, rtol=1e-12,
                                   atol=0, err_msg=name)  # fmt: skip
    assert report.evaluations == looped.evaluations
    assert snapshot(net.params) == before


def test_delta_batched_cost_agrees_to_the_round_off_of_a_difference(net, looped):
    before = snapshot(net.params)
    calls = []

    def perturbed_costs(params, name, indices, values):
        calls.append((name, len(indices)))
        return net.perturbed_costs(params, name, indices, values)

    report = gradcheck.check(net.cost, net.params, net.gradients(), batched=perturbed_costs)
    assert report.passed
    assert verdicts(report) == verdicts(looped)
    assert re.fullmatch(EXECUTOR, report.settings.executor)
    big = {name for name, p in net.params.items() if p.size >= 64}
    assert big <= {name for name, _ in calls}  # every array of some size went through it
    tolerance = fd_noise(net.cost(net.params))
    for name, numeric in numerics(report).items():
        gap = np.abs(numeric - looped.params[name].elements.numeric)
        assert gap.max() <= tolerance, (name, gap.max(), tolerance)
    assert snapshot(net.params) == before


@pytest.mark.parametrize("batched", ["stacked", "delta"])
def test_batched_costs_reach_the_loops_verdicts_on_a_wrong_gradient(net, batched):
    bug = load_bug("weight_times_2")
    grads = bug.apply(net.gradients(), net)
    loop = gradcheck.check(net.cost, net.params, grads)
    option = True if batched == "stacked" else net.perturbed_costs
    report = gradcheck.check(net.cost, net.params, grads, batched=option)
    assert not report.passed
    assert verdicts(report) == verdicts(loop)
    assert [p.name for p in report.failing] == [p.name for p in loop.failing] == [bug.param]
    assert [f.kind for f in report.findings] == [f.kind for f in loop.findings]


def test_a_stacked_cost_that_mixes_the_batch_is_caught_by_the_verification():
    """A log-sum-exp over *all* axes is right for one point, wrong for a stack of them."""
    w = np.linspace(-1, 1, 50)
    before = w.tobytes()

    def cost(p):
        x = p["w"]
        return np.sum(x**2, axis=-1) + np.log(np.sum(np.exp(x)))  # the sum includes the batch

    softmax = np.exp(w) / np.sum(np.exp(w))
    assert gradcheck.check(cost, {"w": w}, {"w": 2 * w + softmax}).passed  # correct unbatched
    with pytest.raises(CostFunctionError, match=r"batched cost disagrees with the plain cost"):
        gradcheck.check(cost, {"w": w}, {"w": 2 * w + softmax}, batched=True)
    assert w.tobytes() == before


def test_a_delta_cost_that_sums_over_the_batch_is_caught_by_the_verification(net):
    before = snapshot(net.params)

    def summed(params, name, indices, values):
        costs = net.perturbed_costs(params, name, indices, values)
        return np.full(len(indices), np.sum(costs))

    with pytest.raises(CostFunctionError, match=r"no sum over the batch"):
        gradcheck.check(net.cost, net.params, net.gradients(), batched=summed)
    assert snapshot(net.params) == before


def test_a_batched_cost_wrong_for_a_later_array_only_is_caught(net):
    """The delta protocol branches on the array's name; each branch must be verified.

    Here only W2's branch forgets the change of the L2 term: W2's numeric gradient then
    misses lambd/m * W2 on every element the batched cost computes.
    """
    assert net.lambd > 0
    before = snapshot(net.params)

    def wrong_for_w2(params, name, indices, values):
        costs = net.perturbed_costs(params, name, indices, values)
        if name == "W2":
            current = params[name].reshape(-1)[indices]
            costs = costs - net.lambd / (2 * net.m) * (values**2 - current**2)
        return costs

    with pytest.raises(CostFunctionError, match=r"batched cost disagrees with the plain cost"):
        gradcheck.check(net.cost, net.params, net.gradients(), batched=wrong_for_w2)
    assert snapshot(net.params) == before


@pytest.mark.parametrize(
    "wrong",
    [
        lambda costs: np.sum(costs),  # a scalar
        lambda costs: costs[:, None],  # (B, 1)
        lambda costs: costs[:-1],  # one short
    ],
    ids=["scalar", "column", "short"],
)
def test_a_delta_cost_of_the_wrong_shape_is_an_error(net, wrong):
    before = snapshot(net.params)

    def batched(params, name, indices, values):
        return wrong(net.perturbed_costs(params, name, indices, values))

    with pytest.raises(CostFunctionError, match=r"batched cost returned shape \(.*\) for a batch"):
        gradcheck.check(net.cost, net.params, net.gradients(), batched=batched)
    assert snapshot(net.params) == before


def test_a_stacked_cost_that_returns_one_number_is_an_error():
    w = np.linspace(-1, 1, 40)
    before = w.tobytes()
    with pytest.raises(
        CostFunctionError, match=r"returned shape \(\) for a batch of 2 perturbations"
    ):
        gradcheck.check(lambda p: np.sum(p["w"] ** 2), {"w": w}, {"w": 2 * w}, batched=True)
    assert w.tobytes() == before


def test_a_raising_batched_cost_is_a_cost_function_error(net):
    before = snapshot(net.params)

    def broken(params, name, indices, values):
        raise IndexError("index 99 is out of bounds")

    with pytest.raises(CostFunctionError, match=r"batched cost raised IndexError: index 99"):
        gradcheck.check(net.cost, net.params, net.gradients(), batched=broken)
    assert snapshot(net.params) == before


def test_check_layer_with_a_broadcasting_layer_is_batched():
    rng = np.random.default_rng(5)
    inputs = {"x": rng.standard_normal((6, 20)), "w": rng.standard_normal((20, 30)) * 0.3}

    def forward(p):  # matmul and tanh broadcast over a leading batch axis on x or w
        return np.tanh(p["x"] @ p["w"])

    def backward(p, dout):
        dz = dout * (1 - np.tanh(p["x"] @ p["w"]) ** 2)
        return {"x": dz @ p["w"].T, "w": p["x"].T @ dz}

    loop = gradcheck.check_layer(forward, backward, inputs)
    before = snapshot(inputs)
    report = gradcheck.check_layer(forward, backward, inputs, batched=True)
    assert report.passed
    assert re.fullmatch(EXECUTOR, report.settings.executor)
    assert verdicts(report) == verdicts(loop)
    for name, numeric in numerics(report).items():
        np.testing.assert_allclose(numeric, loop.params[name].elements.numeric, rtol=1e-12,
                                   atol=0, err_msg=name)  # fmt: skip
    assert snapshot(inputs) == before

    def wrong_backward(p, dout):
        g = backward(p, dout)
        return {**g, "w": 1.5 * g["w"]}

    bad = gradcheck.check_layer(forward, wrong_backward, inputs, batched=True)
    assert [p.name for p in bad.failing] == ["w"]


# --- workers and executors ---------------------------------------------------------------


@contextlib.contextmanager
def pool_options(kind):
    """The check's keyword arguments for each way to run it in parallel."""
    if kind == "workers":
        yield {"workers": 2}
    elif kind == "process_pool":
        # Not fork: other tests in this process may have loaded JAX, which warns on fork
        # (any user pool works, and one started by a fork server is the safe kind).
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as pool:
            yield {"executor": pool}
    else:
        with ThreadPoolExecutor(2) as pool:
            yield {"executor": pool}


KINDS = ["workers", "process_pool", "thread_pool"]


@pytest.mark.parametrize("kind", KINDS)
def test_pools_give_the_loops_numbers_bit_for_bit_on_the_network(net, looped, kind):
    before = snapshot(net.params)
    with pool_options(kind) as options:
        report = gradcheck.check(net.cost, net.params, net.gradients(), **options)
    assert_identical(report, looped)
    assert report.passed
    assert verdicts(report) == verdicts(looped)
    names = {"workers": "2 workers", "process_pool": "2 workers", "thread_pool": "2 threads"}
    assert report.settings.executor == names[kind]
    assert report.evaluations == looped.evaluations
    assert snapshot(net.params) == before


@pytest.mark.parametrize("kind", KINDS)
def test_pools_give_the_loops_numbers_bit_for_bit_on_a_closure(kind):
    cost, params, grads = closure_problem()
    loop = gradcheck.check(cost, params, grads)
    with pool_options(kind) as options:
        report = gradcheck.check(cost, params, grads, **options)
    assert_identical(report, loop)
    assert report.passed


@pytest.mark.parametrize("kind", KINDS)
def test_pools_reach_the_loops_verdict_on_a_wrong_gradient(kind):
    cost, params, grads = closure_problem()
    grads["W"][3, 4] += 0.5
    loop = gradcheck.check(cost, params, grads)
    with pool_options(kind) as options:
        report = gradcheck.check(cost, params, grads, **options)
    assert_identical(report, loop)
    assert [p.name for p in report.failing] == ["W"]
    assert report.params["W"].worst[0].index == (3, 4)


def test_a_thread_pool_gives_the_loops_numbers_when_the_cost_releases_the_gil():
    """Threads share the process: each needs its own copy of the parameters to perturb.

    The cost yields the GIL midway, as a large BLAS call or a torch op does, so the other
    thread runs while this one's perturbation is in place.
    """
    cost, params, grads = closure_problem()

    def releasing(p):
        time.sleep(0)
        return cost(p)

    loop = gradcheck.check(releasing, params, grads)
    with ThreadPoolExecutor(2) as pool:
        report = gradcheck.check(releasing, params, grads, executor=pool)
    assert_identical(report, loop)


def raising_problem():
    """A closure cost that raises whenever W[1, 2] leaves its value."""
    cost, params, grads = closure_problem()
    w12 = float(params["W"][1, 2])

    def fragile(p):
        if p["W"][1, 2] != w12:
            raise ValueError("log of a negative number")
        return cost(p)

    return fragile, params, grads


# "raised ValueError" in every executor: a worker sends the user's own exception back.
COORDINATE = r"raised ValueError: log of a negative number while params\[\"W\"\]\[1, 2\] was moved"


@pytest.mark.parametrize("kind", ["loop", *KINDS])
def test_a_cost_raising_in_a_worker_names_the_coordinate(kind):
    cost, params, grads = raising_problem()
    before = snapshot(params)
    options = contextlib.nullcontext({}) if kind == "loop" else pool_options(kind)
    with options as kwargs, pytest.raises(CostFunctionError, match=COORDINATE) as caught:
        gradcheck.check(cost, params, grads, **kwargs)
    assert caught.value.param == "W"
    assert caught.value.index == (1, 2)
    assert "coordinate 32 of theta" in str(caught.value)
    assert snapshot(params) == before


def test_a_thread_pool_leaves_the_callers_blas_threads_alone(monkeypatch):
    """Worker set-up (one BLAS thread each) belongs in worker processes, not in the caller."""
    for variable in THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    original = [info["num_threads"] for info in threadpoolctl.threadpool_info()]
    cost, params, grads = closure_problem()
    with ThreadPoolExecutor(2) as pool:
        gradcheck.check(cost, params, grads, executor=pool)
    assert [info["num_threads"] for info in threadpoolctl.threadpool_info()] == original
    assert [variable for variable in THREAD_VARIABLES if variable in os.environ] == []


def test_batched_and_workers_are_alternatives(net):
    with pytest.raises(InvalidArgumentError, match=r"batched= and workers= / executor= are alter"):
        gradcheck.check(net.cost, net.params, net.gradients(), batched=True, workers=2)


def test_batched_and_an_executor_are_alternatives(net):
    with (
        ThreadPoolExecutor(1) as pool,
        pytest.raises(InvalidArgumentError, match=r"batched= and workers= / executor="),
    ):
        gradcheck.check(net.cost, net.params, net.gradients(), batched=net.perturbed_costs,
                        executor=pool)  # fmt: skip


@pytest.mark.parametrize("executor", [object(), "dask", 4])
def test_an_executor_without_submit_is_an_error(net, executor):
    with pytest.raises(InvalidArgumentError, match=r"executor=.* has no submit\(\)"):
        gradcheck.check(net.cost, net.params, net.gradients(), executor=executor)


@pytest.mark.parametrize("workers", [0, -2, 1.5, True])
def test_workers_must_be_a_positive_int(net, workers):
    with pytest.raises(InvalidArgumentError, match=r"workers=.* must be a positive int"):
        gradcheck.check(net.cost, net.params, net.gradients(), workers=workers)


@pytest.mark.parametrize("batched", ["yes", 1, None])
def test_batched_must_be_a_bool_or_a_callable(net, batched):
    with pytest.raises(InvalidArgumentError, match=r"batched=.* must be True"):
        gradcheck.check(net.cost, net.params, net.gradients(), batched=batched)


# --- a real Dask cluster -------------------------------------------------------------------

dask = pytest.mark.xdist_group("dask")


@pytest.fixture(scope="module")
def dask_client():
    """Two single-threaded worker processes, started once for the module.

    No dashboard. The scheduler still serves a small HTTP API, by default on port 8787
    even without a dashboard; a random local port keeps two test runs (pytest-xdist,
    or a colleague's) from colliding there, which would warn, and warnings are errors.
    """
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=None,
                                 scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        yield client


@pytest.fixture(params=["client", "get_executor"])
def dask_executor(request, dask_client):
    """The client itself, and the concurrent.futures executor it hands out."""
    return dask_client if request.param == "client" else dask_client.get_executor()


@dask
def test_dask_gives_the_loops_numbers_bit_for_bit_on_the_network(net, looped, dask_executor):
    before = snapshot(net.params)
    report = gradcheck.check(net.cost, net.params, net.gradients(), executor=dask_executor)
    assert_identical(report, looped)
    assert verdicts(report) == verdicts(looped)
    assert report.settings.executor == "Dask, 2 workers"
    assert snapshot(net.params) == before


@dask
def test_dask_gives_the_loops_numbers_bit_for_bit_on_a_closure(dask_executor):
    cost, params, grads = closure_problem()
    grads["b"][2] *= -1
    loop = gradcheck.check(cost, params, grads)
    report = gradcheck.check(cost, params, grads, executor=dask_executor)
    assert_identical(report, loop)
    assert [p.name for p in report.failing] == ["b"]


@dask
def test_a_cost_raising_on_a_dask_worker_names_the_coordinate(dask_executor):
    cost, params, grads = raising_problem()
    before = snapshot(params)
    with pytest.raises(CostFunctionError, match=COORDINATE) as caught:
        gradcheck.check(cost, params, grads, executor=dask_executor)
    assert caught.value.index == (1, 2)
    assert snapshot(params) == before


@dask
def test_dask_runs_the_same_check_again_and_again(dask_client):
    """Each check sends the same problem: one check's clean-up must not cancel the next's."""
    cost, params, grads = closure_problem()
    loop = gradcheck.check(cost, params, grads)
    for repeat in range(10):
        executor = dask_client if repeat % 2 else dask_client.get_executor()
        report = gradcheck.check(cost, params, grads, executor=executor)
        assert_identical(report, loop)
