"""The framework registry: one record per supported autodiff framework, found lazily.

Everything the core knows about PyTorch, JAX and HIPS autograd is in `FRAMEWORKS`:
how to recognize their arrays (through ``sys.modules``, so nothing here imports a
framework), the public check function that handles them, the hint for a user who
passes one where a NumPy array belongs, whether a process that has loaded the
framework may be forked, and the pip extra that installs it.

Adding a framework is one `Framework` line here, a public module
``gradcheck/<name>.py`` and an adapter ``gradcheck/_adapters/_<name>.py``; see
CONTRIBUTING.md, "Add a framework".
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ._text import article

if TYPE_CHECKING:
    from gradcheck import Report


class CheckFunction(Protocol):
    """A framework's public ``check_function``: ``fn`` and its inputs (or params), options."""

    def __call__(self, fn: Callable[..., Any], /, *inputs: Any, **options: Any) -> Report:
        """Check ``fn``'s gradients at ``inputs`` and return the Report."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Framework:
    """What the core needs to know about one framework, without importing it."""

    name: str
    """Short name, also the public module ``gradcheck.<name>``: ``"torch"``."""
    title: str
    """How people write it in a sentence: ``"PyTorch"``."""
    module: str
    """The top-level module whose presence in ``sys.modules`` means the framework is in use."""
    array_type: str | None
    """``"module:Class"`` of the framework's array type, or None where its arrays are
    plain NumPy arrays and cannot be told apart from them (HIPS autograd)."""
    array_noun: str
    """What its arrays are called in a message: ``"torch tensor"``."""
    check_function: str
    """``"module:function"`` of the public check that takes a function of its arrays."""
    pytree_params: bool
    """True: checks are ``fn(params)`` with one pytree; False: ``fn(*inputs)``."""
    tree_leaves: str | None
    """``"module:function"`` flattening a pytree to its leaves, for `detect`; None: the
    inputs themselves are searched."""
    type_modules: tuple[str, ...]
    """Top-level ``__module__`` names of the framework's types, for `hint_for`."""
    hint: str
    """What to use instead, for someone who passed one of its arrays to the NumPy check."""
    fork_safe: bool
    """False where forking a process that has loaded the framework can deadlock (its
    threads' locks are copied mid-use); process pools then start by fork server."""
    extra: str
    """The pip extra that installs it: ``pip install 'gradcheck[<extra>]'``."""
    modules: tuple[str, ...]
    """gradcheck's modules that import the framework (their doctests need it installed)."""

    def loaded(self) -> bool:
        """Whether the framework has been imported in this process."""
        return self.module in sys.modules

    def is_array(self, value: object) -> bool:
        """Whether ``value`` is one of the framework's arrays; False while it is not loaded.

        Never imports the framework: an array of a framework that was never imported
        cannot exist.
        """
        array_type = _loaded_attribute(self.array_type)
        return isinstance(array_type, type) and isinstance(value, array_type)

    def found_in(self, inputs: Sequence[object]) -> bool:
        """Whether the inputs (or, for a pytree framework, their leaves) hold one of its arrays."""
        if self.array_type is None or not self.loaded():
            return False
        leaves = _loaded_attribute(self.tree_leaves)
        values = leaves(list(inputs)) if callable(leaves) else inputs
        return any(self.is_array(value) for value in values)

    def checker(self) -> CheckFunction:
        """The public check function, imported on first use (it imports the framework)."""
        module, _, attribute = self.check_function.partition(":")
        check: CheckFunction = getattr(importlib.import_module(module), attribute)
        return check


# One line per framework. Order matters for `detect`: the first match wins.
FRAMEWORKS: tuple[Framework, ...] = (
    Framework(
        name="torch",
        title="PyTorch",
        module="torch",
        array_type="torch:Tensor",
        array_noun="torch tensor",
        check_function="gradcheck.torch:check_function",
        pytree_params=False,
        tree_leaves=None,
        type_modules=("torch",),
        hint="for PyTorch tensors and modules use gradcheck.torch.check_module / check_function",
        fork_safe=True,
        extra="torch",
        modules=(
            "gradcheck.torch",
            "gradcheck._adapters.torch_module",
            "gradcheck._adapters.torch_function",
        ),
    ),
    Framework(
        name="jax",
        title="JAX",
        module="jax",
        array_type="jax:Array",
        array_noun="JAX array",
        check_function="gradcheck.jax:check_function",
        pytree_params=True,
        tree_leaves="jax.tree_util:tree_leaves",
        type_modules=("jax", "jaxlib"),
        hint="for JAX arrays use gradcheck.jax.check_function",
        fork_safe=False,
        extra="jax",
        modules=("gradcheck.jax", "gradcheck._adapters.jax_function"),
    ),
    # HIPS autograd differentiates plain NumPy arrays, so its inputs cannot be told from
    # NumPy's (array_type=None): `gradcheck.autograd.check_function` is called directly.
    Framework(
        name="autograd",
        title="HIPS autograd",
        module="autograd",
        array_type=None,
        array_noun="autograd array",
        check_function="gradcheck.autograd:check_function",
        pytree_params=True,
        tree_leaves=None,
        type_modules=("autograd",),
        hint="for HIPS autograd functions use gradcheck.autograd.check_function",
        fork_safe=True,
        extra="autograd",
        modules=("gradcheck.autograd", "gradcheck._adapters.autograd_function"),
    ),
)


def framework_of(value: object) -> Framework | None:
    """The framework whose array ``value`` is, or None (a NumPy array, a number...)."""
    return next((f for f in FRAMEWORKS if f.is_array(value)), None)


def detect(inputs: Sequence[object]) -> Framework | None:
    """The first framework whose arrays are among ``inputs`` (or in their pytrees), or None.

    Example:
        >>> import numpy as np
        >>> detect([np.ones(3)]) is None
        True
    """
    return next((f for f in FRAMEWORKS if f.found_in(inputs)), None)


def hint_for(value: object) -> str:
    """A sentence pointing at the right check for a framework's array, or "" for others.

    Read from the type's module name, so it works for any of the framework's types
    (``torch.nn.Parameter``, ``jaxlib``'s arrays) without the framework being imported.

    Example:
        >>> hint_for(3.0)
        ''
    """
    module = type(value).__module__.split(".")[0]
    framework = next((f for f in FRAMEWORKS if module in f.type_modules), None)
    if framework is None:
        return ""
    return f"This looks like {article(module)} array: {framework.hint}."


def fork_unsafe_loaded() -> bool:
    """Whether a framework that must not be forked (JAX) is loaded in this process."""
    return any(not f.fork_safe and f.loaded() for f in FRAMEWORKS)


def _loaded_attribute(path: str | None) -> Any:
    """``"module:attribute"`` looked up in ``sys.modules`` only; None where not loaded."""
    if path is None:
        return None
    module, _, attribute = path.partition(":")
    loaded = sys.modules.get(module)
    return None if loaded is None else getattr(loaded, attribute, None)
