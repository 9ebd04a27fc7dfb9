"""Name the leaves of a parameter tree: dotted names, Python paths, and elements.

A leaf is named ``"W1"`` or ``"layers.0.weight"`` where that is unambiguous, and by its
Python path with each key's repr where two leaves would print alike (`unique_names`);
``"theta"`` is the bare array. Messages spell a leaf and an element as the user would
index them (``params["W1"][3, 4]``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import optree

ROOT_NAME = "theta"
"""Name of the parameter when params is a single array rather than a container."""


def spell(name: str, index: tuple[int, ...]) -> str:
    """``name[3, 4]``, or just ``name`` for the element of a 0-d array."""
    return f"{name}[{', '.join(map(str, index))}]" if index else name


def path_text(accessor: optree.PyTreeAccessor, key: Callable[[object], str] | None = None) -> str:
    """The path as Python indexes it: ``["layers"][0]``; ``key`` spells dict keys."""
    spell_key = key or _key_text
    parts = []
    for entry in accessor:
        if isinstance(entry, optree.MappingEntry):
            parts.append(f"[{spell_key(entry.entry)}]")
        elif isinstance(entry, optree.SequenceEntry):
            parts.append(f"[{entry.entry}]")
        else:
            parts.append(entry.codify(""))
    return "".join(parts)


def _key_text(key: object) -> str:
    """A dict key as Python spells it: ``"W1"`` in double quotes where that is exact."""
    if isinstance(key, str) and key.isprintable() and '"' not in key and "\\" not in key:
        return f'"{key}"'
    return repr(key)


def unique_names(accessors: Sequence[optree.PyTreeAccessor]) -> list[str]:
    """One printable name per leaf, never two alike.

    The dotted name (``"layers.0.weight"``) where it is unambiguous; where two leaves would
    print the same (keys ``1`` and ``"1"``, ``"a.b"`` and ``{"a": {"b": ...}}``) or a key is
    empty or unprintable, the Python path with each key's repr (``[1]``, ``['1']``), which
    tells any two keys apart.
    """
    dotted = [_dotted_name(accessor) for accessor in accessors]
    counts = Counter(dotted)
    names = [
        name if counts[name] == 1 and _plain(accessor) else _repr_path(accessor)
        for name, accessor in zip(dotted, accessors, strict=True)
    ]
    seen: Counter[str] = Counter()
    out = []
    for name in names:  # two different keys with the same repr (custom key types)
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def _plain(accessor: optree.PyTreeAccessor) -> bool:
    """Every key prints as itself: non-empty and printable."""
    for entry in accessor:
        if isinstance(entry, optree.MappingEntry):
            key = entry.entry
            text = str(key)
            if not text or not text.isprintable():
                return False
    return True


def _repr_path(accessor: optree.PyTreeAccessor) -> str:
    return path_text(accessor, repr) if len(accessor) else ROOT_NAME


def _dotted_name(accessor: optree.PyTreeAccessor) -> str:
    if not len(accessor):
        return ROOT_NAME
    parts = []
    for entry in accessor:
        if isinstance(entry, optree.NamedTupleEntry):
            parts.append(str(entry.field))
        elif isinstance(entry, optree.GetAttrEntry):
            parts.append(str(entry.name))
        else:
            parts.append(str(entry.entry))
    return ".".join(parts)
