"""Hypothesis strategies: parameter trees, smooth costs with known gradients, corruptions.

A tree is described by a *skeleton*: the same nesting of dicts, lists, tuples and
namedtuples as the parameters, with the position of each array (an int) at its
leaves. From the skeleton the tests know, independently of gradcheck, the order
of the arrays, their dotted names (``"layers.0.weight"``) and the way a user
would index them (``params["layers"][0]["weight"]``).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

Pair = namedtuple("Pair", ["weight", "bias"])

SHAPES: tuple[tuple[int, ...], ...] = ((), (1,), (2,), (3,), (4,), (1, 1), (2, 2), (2, 3), (3, 4),
                                       (4, 1), (1, 3))  # fmt: skip
KEYS = ("W1", "b1", "W2", "b2", "gamma", "beta", "w", "kernel")


# --- skeletons -------------------------------------------------------------------------


def walk(
    skeleton: Any, names: tuple[str, ...] = (), path: str = ""
) -> Iterator[tuple[int, str, str]]:
    """Yield (position, dotted name, index path) for each array slot, in gradcheck's order."""
    if isinstance(skeleton, int):
        yield skeleton, ".".join(names) or "theta", path
    elif isinstance(skeleton, dict):
        for key, child in skeleton.items():
            yield from walk(child, (*names, str(key)), f'{path}["{key}"]')
    elif isinstance(skeleton, tuple) and hasattr(skeleton, "_fields"):
        for index, (name, child) in enumerate(zip(skeleton._fields, skeleton, strict=True)):
            yield from walk(child, (*names, name), f"{path}[{index}]")
    else:
        for index, child in enumerate(skeleton):
            yield from walk(child, (*names, str(index)), f"{path}[{index}]")


def build(skeleton: Any, arrays: Sequence[Any]) -> Any:
    """Put ``arrays[i]`` at the slot numbered i of the skeleton."""
    if isinstance(skeleton, int):
        return arrays[skeleton]
    if isinstance(skeleton, dict):
        return {key: build(child, arrays) for key, child in skeleton.items()}
    if isinstance(skeleton, tuple) and hasattr(skeleton, "_fields"):
        return type(skeleton)(*(build(child, arrays) for child in skeleton))
    return type(skeleton)(build(child, arrays) for child in skeleton)


def pick(skeleton: Any, tree: Any) -> list[Any]:
    """The arrays of ``tree`` (which has the skeleton's structure), in slot order."""
    out: dict[int, Any] = {}

    def visit(skel: Any, node: Any) -> None:
        if isinstance(skel, int):
            out[skel] = node
        elif isinstance(skel, dict):
            for key, child in skel.items():
                visit(child, node[key])
        else:
            for child, sub in zip(skel, node, strict=True):
                visit(child, sub)

    visit(skeleton, tree)
    return [out[i] for i in range(len(out))]


@st.composite
def skeletons(draw: st.DrawFn, max_leaves: int = 5) -> Any:
    """A bare array, a dict (in a random key order), a list, a tuple, or a nested tree."""
    counter = iter(range(100))
    kind = draw(st.sampled_from(["bare", "dict", "list", "tuple", "nested", "namedtuple"]))
    if kind == "bare":
        return next(counter)
    if kind == "dict":
        keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=max_leaves, unique=True))
        return {key: next(counter) for key in keys}
    if kind == "list":
        return [next(counter) for _ in range(draw(st.integers(1, max_leaves)))]
    if kind == "tuple":
        return tuple(next(counter) for _ in range(draw(st.integers(1, max_leaves))))
    if kind == "namedtuple":
        return {"dense": Pair(next(counter), next(counter)), "scale": next(counter)}
    layers = draw(st.integers(1, 2))
    skeleton: dict[str, Any] = {
        "layers": [{"weight": next(counter), "bias": next(counter)} for _ in range(layers)]
    }
    if draw(st.booleans()):
        skeleton["head"] = next(counter)
    return skeleton


# --- parameter trees -------------------------------------------------------------------


@dataclass(frozen=True)
class LeafInfo:
    """What a test expects gradcheck to call one array, and where it sits."""

    name: str
    path: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=int))

    def describe(self, index: tuple[int, ...] = ()) -> str:
        """``params["W1"][0, 1]``, as gradcheck's messages spell a coordinate."""
        return f"params{self.path}" + (f"[{', '.join(map(str, index))}]" if index else "")


@dataclass
class TreeCase:
    """A parameter tree plus, independently computed, its leaves' names, paths and offsets."""

    skeleton: Any
    arrays: list[np.ndarray]
    leaves: list[LeafInfo] = field(init=False)

    def __post_init__(self) -> None:
        slots = sorted(walk(self.skeleton))
        by_position = {position: (name, path) for position, name, path in slots}
        order = [position for position, _, _ in walk(self.skeleton)]
        self.leaves = []
        offset = 0
        for position in order:
            name, path = by_position[position]
            shape = self.arrays[position].shape
            self.leaves.append(LeafInfo(name=name, path=path, shape=shape, offset=offset))
            offset += int(np.prod(shape, dtype=int))
        self.order = order
        self.tree = build(self.skeleton, self.arrays)

    @property
    def size(self) -> int:
        return sum(leaf.size for leaf in self.leaves)

    def ordered(self, tree: Any | None = None) -> list[Any]:
        """The arrays of ``tree`` (default: the params) in gradcheck's order."""
        arrays = pick(self.skeleton, self.tree if tree is None else tree)
        return [arrays[position] for position in self.order]

    def like(self, ordered_arrays: Sequence[Any]) -> Any:
        """A tree with the params' structure holding ``ordered_arrays`` (in gradcheck's order)."""
        slots: list[Any] = [None] * len(ordered_arrays)
        for position, array in zip(self.order, ordered_arrays, strict=True):
            slots[position] = array
        return build(self.skeleton, slots)

    def snapshot(self) -> list[bytes]:
        """The bytes of every array, to check they are restored bit for bit."""
        return [array.tobytes() for array in self.ordered()]


def float_arrays(shape: tuple[int, ...], dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Arrays in [-1, 1], -0.0 included, in C order or (sometimes) Fortran order."""
    elements = st.floats(-1.0, 1.0, width=np.dtype(dtype).itemsize * 8)
    base = hnp.arrays(dtype, shape, elements=elements)
    return st.one_of(base, base.map(np.asfortranarray))


@st.composite
def param_trees(draw: st.DrawFn, max_leaves: int = 5, dtype: Any = np.float64) -> TreeCase:
    """A TreeCase: dict / list / tuple / namedtuple / nested / bare, shapes up to 3x4."""
    skeleton = draw(skeletons(max_leaves=max_leaves))
    count = len(list(walk(skeleton)))
    shapes = [draw(st.sampled_from(SHAPES)) for _ in range(count)]
    arrays = [draw(float_arrays(shape, dtype)) for shape in shapes]
    return TreeCase(skeleton=skeleton, arrays=arrays)


# --- smooth costs with known gradients -------------------------------------------------


@dataclass
class SmoothCost:
    """f(theta) = l.x + sum a sin(b x) + d/2 x^2 + c (sum x)^2 / n + x^T Q x / 2, theta the leaves.

    Coefficients are bounded so every partial derivative has magnitude at least 0.2
    for x in [-1, 1]: no gradient element is lost in round-off. Only NumPy
    operations that accept complex input are used, so the complex step works.
    """

    case: TreeCase
    seed: int
    calls: int = 0

    def __post_init__(self) -> None:
        n = self.case.size
        rng = np.random.default_rng(self.seed)
        self.linear = rng.uniform(1.0, 2.0, n) * rng.choice([-1.0, 1.0], n)
        self.amplitude = rng.uniform(-0.2, 0.2, n)
        self.frequency = rng.uniform(0.5, 2.0, n)
        self.diagonal = rng.uniform(-0.1, 0.1, n)
        self.coupling = rng.uniform(-0.1, 0.1)
        q = rng.uniform(-0.1, 0.1, (n, n)) / n
        self.quadratic = (q + q.T) / 2
        # |a b| <= 0.4, |d x| <= 0.1, |2 c S / n| <= 0.2, |Q x| <= 0.1, |l| >= 1
        self.n = n

    def theta(self, tree: Any) -> np.ndarray:
        return np.concatenate([np.reshape(a, -1) for a in self.case.ordered(tree)])

    def value(self, x: np.ndarray) -> Any:
        return (
            np.sum(self.linear * x)
            + np.sum(self.amplitude * np.sin(self.frequency * x))
            + 0.5 * np.sum(self.diagonal * x * x)
            + self.coupling * np.sum(x) ** 2 / self.n
            + 0.5 * (x @ (self.quadratic @ x))
        )

    def gradient_vector(self, x: np.ndarray) -> np.ndarray:
        return (
            self.linear
            + self.amplitude * self.frequency * np.cos(self.frequency * x)
            + self.diagonal * x
            + 2 * self.coupling * np.sum(x) / self.n
            + self.quadratic @ x
        )

    def __call__(self, tree: Any) -> Any:
        self.calls += 1
        return self.value(self.theta(tree))

    def split(self, vector: np.ndarray) -> list[np.ndarray]:
        """Cut a theta-shaped vector into arrays shaped like the leaves (gradcheck's order)."""
        return [
            vector[leaf.offset : leaf.offset + leaf.size].reshape(leaf.shape)
            for leaf in self.case.leaves
        ]

    def gradients(self, tree: Any | None = None) -> Any:
        """The exact gradient, as a tree with the params' structure."""
        x = self.theta(self.case.tree if tree is None else tree)
        return self.case.like(self.split(self.gradient_vector(x)))

    def cost_and_grads(self, tree: Any) -> tuple[Any, Any]:
        """The ``f(params) -> (loss, grads)`` form."""
        self.calls += 1
        x = self.theta(tree)
        return self.value(x), self.case.like(self.split(self.gradient_vector(x)))


@st.composite
def smooth_problems(draw: st.DrawFn, max_leaves: int = 5) -> SmoothCost:
    """A parameter tree and a smooth cost over it with a known gradient."""
    case = draw(param_trees(max_leaves=max_leaves))
    return SmoothCost(case=case, seed=draw(st.integers(0, 2**32 - 1)))


# --- corruptions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Corruption:
    """One wrong gradient element: which leaf, which element, and by how much (relative)."""

    leaf: int
    """Position of the leaf in gradcheck's order."""
    flat_index: int
    """C-order index inside that leaf."""
    relative: float
    """The error, as a fraction of (norm of the leaf's gradient + 1); signed."""

    def apply(self, problem: SmoothCost) -> tuple[Any, LeafInfo, tuple[int, ...]]:
        """Return the corrupted grads, the corrupted leaf and the element's index."""
        arrays = [np.array(g, copy=True) for g in problem.case.ordered(problem.gradients())]
        target = arrays[self.leaf]
        delta = self.relative * (float(np.linalg.norm(target)) + 1.0)
        index = tuple(int(i) for i in np.unravel_index(self.flat_index, target.shape))
        target[index] += delta
        return problem.case.like(arrays), problem.case.leaves[self.leaf], index


@st.composite
def corruptions(draw: st.DrawFn, case: TreeCase) -> Corruption:
    leaf = draw(st.integers(0, len(case.leaves) - 1))
    flat_index = draw(st.integers(0, case.leaves[leaf].size - 1))
    magnitude = draw(st.floats(0.05, 1.0))
    sign = draw(st.sampled_from([-1.0, 1.0]))
    return Corruption(leaf=leaf, flat_index=flat_index, relative=sign * magnitude)
