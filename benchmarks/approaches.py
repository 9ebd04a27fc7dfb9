"""The approaches `bench_speed.py` compares: a registry, one decorated function each.

To add an approach (say gradcheck with ``workers=2``), write one function and decorate it:

    @register("gradcheck-workers", summary="gradcheck.check(..., workers=2)",
              evaluations=lambda n: 2 * n + 1, sampling="coordinates")
    def _gradcheck_workers(model, coords, wrap):
        ...
        return lambda: {...}

The function receives the `models.Model`, an optional sorted array of coordinates
(`coords`, only for ``sampling="coordinates"``: check just these, with the same code
path) and `wrap`, which the approach must apply to every cost function it hands to the
tool (it is the identity in timed full runs, and counts evaluations, or stops the run
at a deadline, in probes and detection runs). It does all set-up and returns a
zero-argument ``run`` that performs one check and returns a dict, optionally with
``"checked"`` (coordinates covered, when it differs from ``len(coords)`` or n),
``"seconds"`` (for a computed figure such as the floor) and ``"evaluations"``.
Approaches that start processes must join them inside ``run``.

``detect`` (optional) runs the approach on the gradient with one wrong element
(`models.with_bug`) and says what the user learns.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from models import BUG_INDEX, BUG_PARAM, Model, with_bug

Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]
Run = Callable[[], Mapping[str, Any]]
Prepare = Callable[[Model, "np.ndarray | None", Wrap], Run]
Sampling = Literal["coordinates", "prefix", "none"]

TEXTBOOK_EPS = 1e-7
TEXTBOOK_THRESHOLD = 2e-7
"""deeplearning.ai's gradient_check_n: 'There is a mistake in the backward propagation!' above."""
RELATIVE_THRESHOLD = 1e-5
"""What we call 'detected' for tools that return a number without a verdict (scipy)."""


@dataclass(frozen=True, slots=True)
class Detection:
    """What one approach tells the user about a single wrong gradient element."""

    evaluations: int
    """Cost evaluations counted during the check (primal calls of the cost function)."""
    detected: bool
    says: str
    """What the user gets back, shortened to one line."""
    localizes: str
    """Whether and how the output points at the wrong element."""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Approach:
    """One way of checking a gradient, with what the harness needs to time it fairly."""

    name: str
    summary: str
    prepare: Prepare
    evaluations: Callable[[int], int]
    """Cost evaluations of one full check (correct gradient) at n parameters."""
    sampling: Sampling
    """How a check too long for the budget is extrapolated: 'coordinates' (time a random
    sample of coordinates through the same code path), 'prefix' (stop the real run at a
    deadline and scale by evaluations done), 'none' (always run whole: cost independent
    of n, or a computed figure)."""
    needs: tuple[str, ...] = ()
    """Modules imported before the post-import memory baseline (torch, jax, ...)."""
    slowdown: float = 1.0
    """Rough time per evaluation relative to one NumPy cost evaluation, only used to decide
    up front whether a full run fits the budget."""
    detect: Callable[[Model, Wrap], Detection] | None = None
    note: str = ""


REGISTRY: dict[str, Approach] = {}


def register(
    name: str,
    *,
    summary: str,
    evaluations: Callable[[int], int],
    sampling: Sampling,
    needs: tuple[str, ...] = (),
    slowdown: float = 1.0,
    note: str = "",
) -> Callable[[Prepare], Prepare]:
    """Add the decorated ``prepare`` function to `REGISTRY` under ``name``."""

    def decorate(prepare: Prepare) -> Prepare:
        if name in REGISTRY:
            raise ValueError(f"approach {name!r} is registered twice")
        REGISTRY[name] = Approach(
            name=name,
            summary=summary,
            prepare=prepare,
            evaluations=evaluations,
            sampling=sampling,
            needs=needs,
            slowdown=slowdown,
            note=note,
        )
        return prepare

    return decorate


def detector(name: str) -> Callable[[Callable[[Model, Wrap], Detection]], Any]:
    """Attach the decorated function as the ``detect`` of approach ``name``."""

    def decorate(detect: Callable[[Model, Wrap], Detection]) -> Any:
        REGISTRY[name] = replace(REGISTRY[name], detect=detect)
        return detect

    return decorate


def time_calls(f: Callable[[], Any], *, seconds: float = 1.0, at_most: int = 50_000) -> list[float]:
    """Wall times of calls of ``f``, each timed on its own, for about ``seconds`` (>= 21 calls)."""
    f()  # warm-up: first-call effects are not part of the per-evaluation cost
    times: list[float] = []
    spent = 0.0
    while len(times) < at_most and (spent < seconds or len(times) < 21):
        start = time.perf_counter()
        f()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return times


def median_time(f: Callable[[], Any], *, seconds: float = 1.0) -> float:
    """Median wall time of one call of ``f``."""
    return statistics.median(time_calls(f, seconds=seconds))


def _bug_located(name: str | None, index: tuple[int, ...] | None) -> bool:
    return name == BUG_PARAM and tuple(index or ()) == BUG_INDEX


# --- the floor ---------------------------------------------------------------------------


@register(
    "floor",
    summary="2n x median time of one cost evaluation J(params) (net.cost), measured in this run",
    evaluations=lambda n: 2 * n,
    sampling="none",
)
def _floor(model: Model, coords: np.ndarray | None, wrap: Wrap) -> Run:
    cost, params = wrap(model.net.cost), model.net.params
    vector_cost, theta = wrap(model.net.vector_cost), model.theta()

    def run() -> dict[str, Any]:
        times = time_calls(lambda: cost(params))
        t_vector = median_time(lambda: vector_cost(theta), seconds=0.5)
        t_params = statistics.median(times)
        # The same calls back to back, timed as one interval: what a loop actually sustains.
        count = len(times)
        start = time.perf_counter()
        for _ in range(count):
            cost(params)
        t_loop = (time.perf_counter() - start) / count
        return {
            "seconds": 2 * model.n * t_params,
            "t_eval": t_params,
            "t_eval_mean": statistics.fmean(times),
            "t_eval_p90": statistics.quantiles(times, n=10)[-1],
            "t_eval_loop": t_loop,
            "t_eval_vector": t_vector,
            "timed_calls": count,
        }

    return run


# --- the textbook loop -------------------------------------------------------------------


@register(
    "textbook",
    summary="deeplearning.ai gradient_check_n: two np.copy(theta) per coordinate, "
    "cost via net.vector_cost(theta)",
    evaluations=lambda n: 2 * n,
    sampling="coordinates",
    slowdown=1.15,
)
def _textbook(model: Model, coords: np.ndarray | None, wrap: Wrap) -> Run:
    cost = wrap(model.net.vector_cost)
    theta, grad = model.theta(), model.gradient_vector()
    return lambda: {"difference": _textbook_loop(cost, theta, grad, coords)}


def _textbook_loop(
    cost: Callable[[np.ndarray], float],
    theta: np.ndarray,
    grad: np.ndarray,
    coords: np.ndarray | None = None,
    epsilon: float = TEXTBOOK_EPS,
) -> float:
    """The course's loop, verbatim apart from names (restricted to ``coords`` when sampling)."""
    indices = range(theta.shape[0]) if coords is None else coords.tolist()
    k = len(indices)
    J_plus, J_minus, gradapprox = np.zeros(k), np.zeros(k), np.zeros(k)
    for j, i in enumerate(indices):
        thetaplus = np.copy(theta)
        thetaplus[i] = thetaplus[i] + epsilon
        J_plus[j] = cost(thetaplus)
        thetaminus = np.copy(theta)
        thetaminus[i] = thetaminus[i] - epsilon
        J_minus[j] = cost(thetaminus)
        gradapprox[j] = (J_plus[j] - J_minus[j]) / (2 * epsilon)
    g = grad if coords is None else grad[coords]
    numerator = np.linalg.norm(g - gradapprox)
    denominator = np.linalg.norm(g) + np.linalg.norm(gradapprox)
    return float(numerator / denominator)


@detector("textbook")
def _textbook_detect(model: Model, wrap: Wrap) -> Detection:
    counter = _Counter(model.net.vector_cost)
    grad = model.gradient_vector(with_bug(model.grads))
    start = time.perf_counter()
    difference = _textbook_loop(wrap(counter), model.theta(), grad)
    return Detection(
        evaluations=counter.calls,
        detected=bool(difference > TEXTBOOK_THRESHOLD),
        says=f"difference = {difference:.2g} (one number for all of theta)",
        localizes="no",
        seconds=time.perf_counter() - start,
    )


# --- gradcheck ---------------------------------------------------------------------------


@register(
    "gradcheck-full",
    summary="gradcheck.check(net.cost, net.params, grads): central, mode='full'",
    evaluations=lambda n: 2 * n + 1,
    sampling="coordinates",
    slowdown=1.05,
    note="sampled probes use mode='sample' (same engine loop, stratified random coordinates)",
)
def _gradcheck_full(model: Model, coords: np.ndarray | None, wrap: Wrap) -> Run:
    import gradcheck

    cost, params, grads = wrap(model.net.cost), model.net.params, model.grads
    options: dict[str, Any] = {}
    if coords is not None:
        options = {"mode": "sample", "samples": len(coords) / model.n, "seed": 0}

    def run() -> dict[str, Any]:
        report = gradcheck.check(cost, params, grads, **options)
        return {
            "checked": report.checked,
            "evaluations": report.evaluations,
            "passed": report.passed,
        }

    return run


def _gradcheck_variant(**fixed: Any) -> Prepare:
    """A gradcheck approach with extra options (batched, workers, a mode)."""

    def prepare(model: Model, coords: np.ndarray | None, wrap: Wrap) -> Run:
        import gradcheck

        cost, params, grads = wrap(model.net.cost), model.net.params, model.grads
        options = {
            key: (model.net.perturbed_costs if value == "perturbed_costs" else value)
            for key, value in fixed.items()
        }
        if coords is not None:
            options |= {"mode": "sample", "samples": len(coords) / model.n, "seed": 0}

        def run() -> dict[str, Any]:
            report = gradcheck.check(cost, params, grads, progress=False, **options)
            return {
                "checked": report.checked,
                "evaluations": report.evaluations,
                "passed": report.passed,
                "executor": report.settings.executor,
            }

        return run

    return prepare


register(
    "gradcheck-batched",
    summary="gradcheck.check(..., batched=net.perturbed_costs): reruns only layers above",
    evaluations=lambda n: 2 * n + 1,
    sampling="coordinates",
    slowdown=0.3,
)(_gradcheck_variant(batched="perturbed_costs"))
register(
    "gradcheck-batched-stack",
    summary="gradcheck.check(..., batched=True): net.cost on B stacked copies of one array",
    evaluations=lambda n: 2 * n + 1,
    sampling="coordinates",
    slowdown=0.6,
)(_gradcheck_variant(batched=True))
register(
    "gradcheck-workers",
    summary="gradcheck.check(..., workers=2): process pool, one copy of theta per worker",
    evaluations=lambda n: 2 * n + 1,
    sampling="coordinates",
    slowdown=0.55,
)(_gradcheck_variant(workers=2))
register(
    "gradcheck-directional",
    summary="gradcheck.check(..., mode='directional'): k random directions per tensor",
    evaluations=lambda n: 50,
    sampling="none",
)(_gradcheck_variant(mode="directional"))
register(
    "gradcheck-bisect",
    summary="gradcheck.check(..., mode='bisect'): directional, then halving into failures",
    evaluations=lambda n: 50,
    sampling="none",
)(_gradcheck_variant(mode="bisect"))


def _gradcheck_mode_detect(mode: str) -> Callable[[Model, Wrap], Detection]:
    def detect(model: Model, wrap: Wrap) -> Detection:
        import gradcheck

        counter = _Counter(model.net.cost)
        start = time.perf_counter()
        report = gradcheck.check(wrap(counter), model.net.params, with_bug(model.grads),
                                 mode=mode, progress=False)  # fmt: skip
        worst = report.worst
        element = worst.worst[0] if worst.worst else None
        where = f"{worst.name}[{', '.join(map(str, element.index))}]" if element else worst.name
        says = f"{report.verdict}: worst {where}"
        if element:
            says += f", analytic {element.analytic:.4g} vs numeric {element.numeric:.4g}"
        located = element is not None and _bug_located(worst.name, element.index)
        return Detection(
            evaluations=counter.calls,
            detected=not report.passed,
            says=says,
            localizes=f"yes: tensor and index ({where})" if located else f"tensor only ({where})",
            seconds=time.perf_counter() - start,
        )

    return detect


detector("gradcheck-full")(_gradcheck_mode_detect("full"))
detector("gradcheck-directional")(_gradcheck_mode_detect("directional"))
detector("gradcheck-bisect")(_gradcheck_mode_detect("bisect"))


# --- torch.autograd.gradcheck --------------------------------------------------------------


def _torch_prepare(fast_mode: bool) -> Prepare:
    def prepare(model: Model, coords: np.ndarray | None, wrap: Wrap) -> Run:
        import torch

        cost, inputs = wrap(model.torch_cost), model.torch_inputs()
        return lambda: {"passed": torch.autograd.gradcheck(cost, inputs, fast_mode=fast_mode)}

    return prepare


register(
    "torch-gradcheck-slow",
    summary="torch.autograd.gradcheck(f, tensors, fast_mode=False) on the float64 torch cost "
    "(autograd gradient)",
    evaluations=lambda n: 2 * n + 2,
    sampling="prefix",
    needs=("torch",),
    slowdown=2.7,  # torch's forward in grad mode, one thread: ~2.7x NumPy's at 1e3..1e5
)(_torch_prepare(fast_mode=False))

register(
    "torch-gradcheck-fast",
    summary="torch.autograd.gradcheck(..., fast_mode=True): random directions, not full",
    evaluations=lambda n: 14,
    sampling="none",
    needs=("torch",),
)(_torch_prepare(fast_mode=True))


def _torch_detect(fast_mode: bool) -> Callable[[Model, Wrap], Detection]:
    def detect(model: Model, wrap: Wrap) -> Detection:
        import torch
        from torch.autograd.gradcheck import GradcheckError

        counter = _Counter(model.torch_hand_function(bug=True))
        start = time.perf_counter()
        try:
            torch.autograd.gradcheck(wrap(counter), model.torch_inputs(), fast_mode=fast_mode)
        except GradcheckError as exc:
            message = str(exc)
        else:
            message = ""
        seconds = time.perf_counter() - start
        if not message:
            return Detection(counter.calls, False, "passed", "no", seconds)
        first = message.strip().splitlines()[0].rstrip(",")
        names = model.names
        tensor = None
        if "input " in first:
            try:
                tensor = names[int(first.rsplit("input ", 1)[1].split()[0].strip(",."))]
            except (ValueError, IndexError):
                tensor = None
        shown = "..." not in message
        lines = len(message.splitlines())
        localizes = (
            f"tensor only ({tensor}); element "
            + ("findable by eye in the Jacobian dump" if shown else "not shown (dump summarized)")
            + f", {lines} lines"
        )
        return Detection(counter.calls, True, f"GradcheckError: {first}", localizes, seconds)

    return detect


detector("torch-gradcheck-slow")(_torch_detect(fast_mode=False))
detector("torch-gradcheck-fast")(_torch_detect(fast_mode=True))


# --- scipy.optimize.check_grad -------------------------------------------------------------


@register(
    "scipy-check-grad",
    summary="scipy.optimize.check_grad(f, grad, theta): FORWARD differences, step sqrt(eps), "
    "n+1 evaluations (less accurate than central)",
    evaluations=lambda n: n + 1,
    sampling="prefix",
    needs=("scipy",),
    slowdown=1.05,
)
def _scipy(model: Model, coords: np.ndarray | None, wrap: Wrap) -> Run:
    from scipy.optimize import check_grad

    cost, theta = wrap(model.net.vector_cost), model.theta()
    return lambda: {"error": check_grad(cost, model.vector_gradient, theta)}


@detector("scipy-check-grad")
def _scipy_detect(model: Model, wrap: Wrap) -> Detection:
    from scipy.optimize import check_grad

    counter = _Counter(model.net.vector_cost)
    start = time.perf_counter()
    error = check_grad(wrap(counter), lambda th: model.vector_gradient(th, bug=True), model.theta())
    relative = error / np.linalg.norm(model.gradient_vector())
    return Detection(
        evaluations=counter.calls,
        detected=bool(relative > RELATIVE_THRESHOLD),
        says=f"norm(numeric - analytic) = {error:.3g} ({relative:.2g} of norm(g)); no verdict",
        localizes="no",
        seconds=time.perf_counter() - start,
    )


# --- jax.test_util.check_grads ---------------------------------------------------------------


@register(
    "jax-check-grads",
    summary="jax.test_util.check_grads(f, (params,), order=1, modes=['rev']), eager: "
    "one random direction, not full",
    evaluations=lambda n: 4,
    sampling="none",
    needs=("jax",),
)
def _jax(model: Model, coords: np.ndarray | None, wrap: Wrap) -> Run:
    from jax.test_util import check_grads

    cost, params = wrap(model.jax_cost), model.jax_params()

    def run() -> dict[str, Any]:
        check_grads(cost, (params,), order=1, modes=["rev"])
        return {"passed": True}

    return run


@detector("jax-check-grads")
def _jax_detect(model: Model, wrap: Wrap) -> Detection:
    from jax.test_util import check_grads

    counter = _Counter(model.jax_hand_function(bug=True))
    start = time.perf_counter()
    try:
        check_grads(wrap(counter), (model.jax_params(),), order=1, modes=["rev"])
    except AssertionError as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        keep = [line for line in lines if line.startswith(("ACTUAL", "DESIRED"))]
        says = "AssertionError: " + "; ".join([lines[0], *keep] if lines else keep)
        return Detection(
            counter.calls, True, says, "no (not even which leaf)", time.perf_counter() - start
        )
    return Detection(counter.calls, False, "passed", "no", time.perf_counter() - start)


# --- numdifftools ---------------------------------------------------------------------------


@register(
    "numdifftools",
    summary="numdifftools.Gradient(f)(theta), defaults (central, Richardson extrapolation); "
    "returns the numeric gradient only",
    evaluations=lambda n: 30 * n + 1,
    sampling="prefix",
    needs=("numdifftools",),
    slowdown=1.1,
)
def _numdifftools(model: Model, coords: np.ndarray | None, wrap: Wrap) -> Run:
    import numdifftools

    gradient = numdifftools.Gradient(wrap(model.net.vector_cost))
    theta = model.theta()
    return lambda: {"norm": float(np.linalg.norm(gradient(theta)))}


@detector("numdifftools")
def _numdifftools_detect(model: Model, wrap: Wrap) -> Detection:
    import numdifftools

    counter = _Counter(model.net.vector_cost)
    start = time.perf_counter()
    numeric = numdifftools.Gradient(wrap(counter))(model.theta())
    analytic = model.gradient_vector(with_bug(model.grads))
    difference = np.linalg.norm(numeric - analytic) / (
        np.linalg.norm(numeric) + np.linalg.norm(analytic)
    )
    return Detection(
        evaluations=counter.calls,
        detected=bool(difference > TEXTBOOK_THRESHOLD),
        says=f"the numeric gradient; comparing is left to the user (difference {difference:.2g})",
        localizes="only by the user's own comparison (argmax |numeric - analytic|)",
        seconds=time.perf_counter() - start,
    )


class _Counter:
    """Wrap a cost function and count its calls."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.f(*args)
