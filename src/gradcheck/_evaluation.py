"""Choose how a check's cost evaluations run: a loop, a batched cost, or a pool of workers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._engine import (
    BatchedExecutor,
    Executor,
    LoopExecutor,
    PoolExecutor,
    Problem,
    Progress,
    process_pool,
    terminate,
)
from ._errors import CostFunctionError
from ._options import Options
from ._scalar import to_scalar
from ._timeout import limited
from ._tree import FlatParams, ParamTree, copy_arrays, tree_arrays


@dataclass(frozen=True, slots=True)
class Remote:
    """What a worker process needs: the cost and its own copy of the parameter tree.

    Pickled once per check; unpickling in the worker gives it a private copy of theta,
    which it perturbs in place like the loop does.
    """

    evaluate: Callable[[Any], Any]
    tree: ParamTree
    positions: tuple[int, ...]
    """Positions of the checked arrays among all the tree's arrays."""
    complex_ok: bool = False
    """The complex step: the cost returns complex values."""

    def private(self) -> tuple[list[NDArray[Any]], Callable[[], Any]]:
        """In a thread of this process: the same, on a private copy of the arrays."""
        return replace(self, tree=copy_arrays(self.tree))()

    def __call__(self) -> tuple[list[NDArray[Any]], Callable[[], Any]]:
        arrays = tree_arrays(self.tree)
        tree, evaluate, complex_ok = self.tree, self.evaluate, self.complex_ok
        return [arrays[i] for i in self.positions], lambda: to_scalar(
            evaluate(tree), complex_ok=complex_ok
        )


@contextlib.contextmanager
def executor_for(
    problem: Problem,
    target: ParamTree,
    evaluate: Callable[[Any], Any],
    options: Options,
    progress: Progress | None,
    resolution: float = float(np.finfo(np.float64).eps),
) -> Iterator[Executor]:
    """The executor the options ask for, shut down (if it is a pool of ours) on exit.

    Args:
        problem: the leaves the engine perturbs and the cost of their current values.
        target: the tree the cost reads (the user's params, or their complex copy).
        evaluate: the cost of a tree.
        options: batched / workers / executor.
        progress: progress callback.
        resolution: machine epsilon of the cost's precision (a float32 batched cost may
            differ from the plain one by more than a float64 one).
    """
    flat = problem.flat
    loop = LoopExecutor([leaf.array for leaf in flat], problem.cost, progress)
    if options.execution.workers is None and options.execution.executor is None:
        if options.execution.batched is False:
            yield loop
            return
        batched, stacked = _batched_cost(flat, target, evaluate, options.execution.batched)
        if options.execution.timeout is not None:
            batched = limited(batched, options.execution.timeout)
        base = float(np.real(problem.base_value))
        yield BatchedExecutor(batched, loop, [leaf.size for leaf in flat], progress,
                              stacked=stacked, base=base, resolution=resolution)  # fmt: skip
        return
    payload = Remote(evaluate=evaluate, tree=target, positions=_positions(flat, target),
                     complex_ok=options.scheme.complex_step)  # fmt: skip
    describe = _describer(flat)
    if options.execution.executor is not None:
        execution = options.execution
        workers = execution.workers or _guess_workers(execution.executor)
        pool_executor = PoolExecutor(payload, execution.executor, workers, progress,
                                     timeout=execution.timeout, describe=describe)  # fmt: skip
        try:
            yield pool_executor
        finally:
            pool_executor.close()
        return
    assert options.execution.workers is not None
    pool, key = process_pool(options.execution.workers, payload)
    try:
        yield PoolExecutor(payload, pool, options.execution.workers, progress, installed=key,
                           abort=lambda: terminate(pool), timeout=options.execution.timeout,
                           describe=describe)  # fmt: skip
    except BaseException:
        terminate(pool)
        raise
    else:
        pool.shutdown(wait=True, cancel_futures=True)


def _describer(flat: FlatParams) -> Callable[[int, int], str]:
    """Spell coordinate ``local`` of leaf ``leaf_index`` as the user indexes it."""

    def describe(leaf_index: int, local: int) -> str:
        leaf = flat.leaves[leaf_index]
        return leaf.describe_element(leaf.index_of(local))

    return describe


def _batched_cost(
    flat: FlatParams,
    target: ParamTree,
    evaluate: Callable[[Any], Any],
    batched: bool | Callable[..., Any],
) -> tuple[Callable[[int, NDArray[np.intp], NDArray[Any]], Any], bool]:
    """Adapt the user's batched cost to the engine's protocol; say if it stacks copies."""
    if callable(batched):
        user = batched

        def delta(leaf_index: int, indices: NDArray[np.intp], values: NDArray[Any]) -> Any:
            return user(target, flat.leaves[leaf_index].name, indices, values)

        return delta, False

    arrays = tree_arrays(target)
    positions = _positions(flat, target)

    def stacked(leaf_index: int, indices: NDArray[np.intp], values: NDArray[Any]) -> Any:
        leaf = flat.leaves[leaf_index]
        stack = np.repeat(leaf.array[None], len(indices), axis=0)  # [B, *shape]
        stack.reshape(len(indices), -1)[np.arange(len(indices)), indices] = values
        position = positions[leaf_index]
        tree = flat.unflatten([stack if i == position else a for i, a in enumerate(arrays)])
        return evaluate(tree)

    return stacked, True


def _positions(flat: FlatParams, target: ParamTree) -> tuple[int, ...]:
    arrays = tree_arrays(target)
    where = {id(a): i for i, a in enumerate(arrays)}
    try:
        return tuple(where[id(leaf.array)] for leaf in flat)
    except KeyError as exc:  # pragma: no cover - the leaves come from this tree
        raise CostFunctionError("internal: a checked array is not in the parameter tree") from exc


def _guess_workers(executor: Any) -> int:
    """How many tasks to split a leaf into: the executor's worker count if it says."""
    for attribute in ("_max_workers", "max_workers"):
        value = getattr(executor, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    client = getattr(executor, "_client", executor)
    try:
        return max(1, int(sum(client.nthreads().values())))
    except Exception:
        return 4
