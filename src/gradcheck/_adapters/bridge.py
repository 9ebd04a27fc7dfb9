"""What every framework adapter hands the core: host arrays, a cost, the analytic gradient."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from .._api import UPSTREAM_SALT
from .._errors import InvalidArgumentError
from .._options import Options, from_keywords
from .._pipeline import Subject, run
from .._results import Report
from .._scalar import AT_BASE, at_base, finite_at_base, to_scalar
from .._tree import flatten, flatten_grads

HostArrays = dict[str, NDArray[Any]]
"""Parameter name -> the NumPy array the engine perturbs in place, in report order."""

_MSG_NO_COMPLEX = (
    "method='complex' is not available for {what}: the complex step needs the whole "
    "computation to accept complex parameters, which framework layers rarely do. "
    "Use method='central4' for a more accurate real-valued estimate."
)


class BatchedCost(Protocol):
    """Costs of many values of one leaf at once (vectorized finite differences).

    ``batched(leaf_index, stack)`` returns the B costs obtained when leaf number
    ``leaf_index`` (in the order of the flattened params) takes each of the B values
    in ``stack`` (shape ``(B, *leaf.shape)``) while every other leaf keeps its current
    value.
    """

    def __call__(self, leaf_index: int, stack: NDArray[Any]) -> NDArray[np.float64]:
        """Return the B costs, a float64 array of shape (B,)."""
        ...


class Adapter(abc.ABC):
    """A framework check, prepared: host arrays, the cost, the analytic gradient, batching.

    Subclasses set ``params``, ``grads`` and ``cost_dtype`` and implement the cost of
    one point, the analytic gradient and, where the framework can, a vectorized cost.
    `evaluate` also accepts a tree in which one leaf carries a leading batch axis of B
    values (the engine's stacked batches) and returns the B costs then.
    """

    params: HostArrays
    """The host arrays the engine perturbs, by name, in report order."""
    grads: HostArrays
    """The analytic gradient at the given point, by name (computed once, up front)."""
    cost_dtype: np.dtype[Any]
    """The precision the cost is computed in."""
    _vectorized: BatchedCost | None
    _probed = False

    def evaluate(self, tree: Mapping[str, NDArray[Any]]) -> Any:
        """The cost at ``tree`` (params itself, or with one leaf replaced or stacked)."""
        for index, (name, host) in enumerate(self.params.items()):
            value = tree[name]
            if value is not host and value.ndim == host.ndim + 1 and value.shape[1:] == host.shape:
                return self.stacked(index, value)
        return self.evaluate_point(tree)

    def batched(self) -> BatchedCost | None:
        """The vectorized cost (the `BatchedCost` protocol), or None where it cannot run.

        Built and checked against the plain cost once, on first use.
        """
        if not self._probed:
            self._vectorized = self.vectorize()
            if self._vectorized is not None:
                base = finite_at_base(self.evaluate_point(self.params), "cost")
                resolution = float(np.finfo(self.cost_dtype).eps)
                self._vectorized = probe(self._vectorized, self.params, base, resolution)
            self._probed = True
        return self._vectorized

    def stacked(self, leaf_index: int, stack: NDArray[Any]) -> NDArray[np.float64]:
        """The costs of B values of one leaf: vectorized where possible, else one by one."""
        vectorized = self.batched()
        if vectorized is not None:
            return vectorized(leaf_index, stack)
        name = list(self.params)[leaf_index]
        return np.array([to_scalar(self.evaluate_point({**self.params, name: row}))
                         for row in stack])  # fmt: skip

    @abc.abstractmethod
    def evaluate_point(self, tree: Mapping[str, NDArray[Any]]) -> Any:
        """The cost with the checked leaves set to ``tree`` (no stacked leaf)."""

    @abc.abstractmethod
    def gradient(self) -> HostArrays:
        """Compute the analytic gradient again at the current point (the reentrancy test)."""

    @abc.abstractmethod
    def vectorize(self) -> BatchedCost | None:
        """A vectorized cost, unchecked, or None where the framework has none for this cost."""


AUTO_BATCH_SIZE = 5_000
"""Checks of at least this many parameters use the framework's vectorized cost."""


def run_check(adapted: Adapter, options: Options, started: float) -> Report:
    """Build the Subject from a prepared adapter and run the check."""
    params = adapted.params
    flat = flatten(params)
    analytic = flatten_grads(adapted.grads, flat)
    base_value = finite_at_base(at_base(lambda: adapted.evaluate(params), "the loss"), "cost")

    def repeat() -> tuple[float, bool]:
        second = to_scalar(adapted.evaluate(params), where=AT_BASE)
        again = flatten_grads(adapted.gradient(), flat)
        return second, not np.array_equal(again, analytic, equal_nan=True)

    # `adapted.evaluate` also takes a tree whose one leaf is stacked (B values along a new
    # first axis) and returns the B costs, vectorized where the framework can: then the
    # batched executor is used, and its calibration falls back to the loop where that is
    # faster. Small checks skip it (building the vectorized cost would cost more).
    execution = options.execution
    if (
        execution.batched is False
        and execution.in_process
        and flat.size >= AUTO_BATCH_SIZE
        and adapted.batched() is not None
    ):
        options = replace(options, execution=replace(execution, batched=True))

    def recompute() -> NDArray[np.float64]:
        return flatten_grads(adapted.gradient(), flat)

    subject = Subject(evaluate=adapted.evaluate, params=params, flat=flat, analytic=analytic,
                      base_value=base_value, repeat=repeat, recompute=recompute)  # fmt: skip
    return run(subject, options, started)


def require_float_dtype(dtype: Any) -> None:
    """Refuse a ``dtype=`` that is not a floating NumPy dtype (None keeps the leaves' own)."""
    if dtype is None:
        return
    try:
        floating = np.dtype(dtype).kind == "f"
    except TypeError:
        floating = False
    if not floating:
        raise InvalidArgumentError(
            f"dtype={dtype!r} must be a floating dtype (np.float64, the default, or "
            "np.float32) or None to keep the leaves' own."
        )


def framework_options(
    options: Mapping[str, Any], framework: str, *, complex_ok: bool = False
) -> Options:
    """Validate a framework entry point's ``**options``; refuse what it cannot honour.

    Every option of `gradcheck.check` is accepted, except: ``method="complex"`` where the
    framework's layers do not take complex inputs (``complex_ok=False``), and a callable
    ``batched=`` (it receives NumPy params by name, which a framework check does not expose;
    ``batched=True`` uses the framework's own vectorized cost).

    Raises:
        InvalidArgumentError: naming the option and the reason.
    """
    validated = from_keywords(options)
    if validated.scheme.complex_step and not complex_ok:
        raise InvalidArgumentError(_MSG_NO_COMPLEX.format(what=f"{framework} checks"))
    if callable(validated.execution.batched):
        raise InvalidArgumentError(
            f"batched= as a callable is for NumPy costs (it gets params by name); a {framework} "
            "check vectorizes its own cost: pass batched=True, or leave it to the check."
        )
    return validated


def upstream(seed: int, shapes: Sequence[tuple[int, ...]]) -> list[NDArray[np.float64]]:
    """Draw one fixed random upstream gradient per output, as `check_layer` does.

    Gaussian, never all ones (ones cancel in normalization layers), from the salted stream
    of `gradcheck.check_layer`; for a single output it is exactly the ``dout`` of
    `gradcheck.check_layer` with the same seed.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, UPSTREAM_SALT]))
    return [rng.standard_normal(shape) for shape in shapes]


def probe(
    batched: BatchedCost, params: HostArrays, base_value: float, resolution: float
) -> BatchedCost | None:
    """Return ``batched`` if it reproduces the base cost on a stack of two, else None.

    Vectorization fails for functions the framework cannot transform (an old-style
    autograd.Function, dropout, Python control flow on values); the engine then
    evaluates one point at a time.
    """
    index, host = next(((i, a) for i, a in enumerate(params.values()) if a.size),
                       (0, next(iter(params.values()))))  # fmt: skip
    try:
        values = np.asarray(batched(index, np.stack([host, host])))
    except Exception:  # whatever the framework raises when it cannot vectorize
        return None
    tolerance = max(1e-9, 1e3 * resolution) * max(1.0, abs(base_value))
    if values.shape != (2,) or not np.all(np.abs(values - base_value) <= tolerance):
        return None
    return batched
