"""Small helpers for messages: an article that fits the word, a count with its plural."""

from __future__ import annotations

_VOWEL_SOUNDS = ("nd", "np", "mps", "x")
"""Beginnings spelled with a consonant but said with a vowel: an ndarray, an MPS tensor."""


def article(word: str) -> str:
    """``"a list"``, ``"an int"``, ``"an ArrayImpl"``, ``"an ndarray"``: the article it takes."""
    lower = word.lower()
    vowel = lower[:1] in ("a", "e", "i", "o", "u") or lower.startswith(_VOWEL_SOUNDS)
    return f"{'an' if vowel else 'a'} {word}"


def a_type(value: object) -> str:
    """The type of ``value`` with its article: ``"an int"``, ``"a Tensor"``."""
    return article(type(value).__name__)


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``"1 coordinate"``, ``"3 coordinates"``, ``"1,024 elements"``."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"
