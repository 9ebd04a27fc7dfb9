"""Every sentence gradcheck prints follows the same grammar-level rules.

The corpus is real output: the demo network with every catalogue mistake and with none,
in every mode; random trust cases (float32 and float64, offsets, couplings, one corrupted
element) correct and corrupted; and the benign cases (kinks, float32 round-off, a random
cost, an unused parameter, a sample larger than an array, held integer inputs). Each
report's findings and its terminal rendering are read against the rules below.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import gradcheck
from gradcheck.demo import BUGS, check_demo
from trust_cases import MODES, build, random_spec

_A_BEFORE_VOWEL = re.compile(r"(?<![\w'\"=\[.-])a (?=[aeioAEIO]\w)")
_AN_BEFORE_CONSONANT = re.compile(r"(?<![\w'\"=\[.-])an (?=[b-df-hj-mp-tv-zB-DF-HJ-MP-TV-Z]\w)")
_ONE_PLURAL = re.compile(
    r"(?<![\d.,/])\b1 (coordinates|elements|directions|evaluations|arrays|parameters|steps"
    r"|rows|inputs|workers|tensors)\b"
)
_ORDER = re.compile(r"observed order (-?\d+(?:\.\d+)?)")
_VERSUS = re.compile(r"(-?\d[\d.e+-]*) vs (-?\d[\d.e+-]*)")


def _violations(text: str, mode: str) -> list[str]:
    found = []
    found += [f"'a' before a vowel: ...{m.group(0)}{text[m.end() : m.end() + 12]}"
              for m in _A_BEFORE_VOWEL.finditer(text)]  # fmt: skip
    found += [f"'an' before a consonant: ...{text[m.start() : m.end() + 12]}"
              for m in _AN_BEFORE_CONSONANT.finditer(text)]  # fmt: skip
    found += [
        f"a singular count with a plural noun: {m.group(0)}" for m in _ONE_PLURAL.finditer(text)
    ]
    for sentence in re.split(r"(?<=\.)\s", text):
        for m in _ORDER.finditer(sentence):
            order = float(m.group(1))
            if abs(order - 2) < 0.5 and ("not round-off" in sentence or "not a finite" in sentence):
                found.append(f"order {order} (what a right gradient shows) called not round-off")
    for m in _VERSUS.finditer(text):
        if m.group(1) == m.group(2):
            found.append(f"two values that print alike: {m.group(0)}")
    if mode == "bisect" and "mode='bisect'" in text:
        found.append("bisect mode suggests mode='bisect'")
    return found


def _check_report(report: gradcheck.Report, mode: str, label: str) -> list[str]:
    """The rules over a report's sentences, its parameter names masked (a tensor named "a"
    is not an article)."""
    texts = [f.message for f in report.findings] + [str(report)]
    masks = [
        re.compile(rf"(?<=\bof ){re.escape(name)}\b|^{re.escape(name)}\b"
                   rf"|\b{re.escape(name)}(?= is\b| \(|:|\[| along| by| was| has)", re.M)
        for name in report.params
    ]  # fmt: skip
    problems = [f"{label}: a double space in {f.message!r}" for f in report.findings
                if "  " in f.message]  # fmt: skip
    for text in texts:
        for mask in masks:
            text = mask.sub("NAME", text)
        problems += [f"{label}: {v}" for v in _violations(text, mode)]
    return problems


@pytest.mark.parametrize("mode", MODES)
def test_demo_reports_follow_the_rules(mode):
    problems = []
    for bug in [None, *BUGS]:
        report = check_demo(bug, mode=mode, progress=False)
        problems += _check_report(report, mode, f"demo {bug} {mode}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("mode", MODES)
def test_random_trust_case_reports_follow_the_rules(mode):
    rng = np.random.default_rng(20261201)
    problems = []
    for k in range(25):
        case = build(random_spec(rng))
        for which, grads in (("correct", case.grads), ("corrupted", case.corrupted)):
            params = {name: a.copy() for name, a in case.base.items()}
            report = gradcheck.check(case.cost, params, grads, mode=mode, progress=False)
            problems += _check_report(report, mode, f"case {k} {which} {mode}")
    assert not problems, "\n".join(problems)


def _benign_reports():
    x = np.linspace(-1, 1, 11)  # 0 is on the ReLU's kink
    yield "kink", gradcheck.check(lambda p: float(np.sum(np.maximum(p, 0))), x, (x > 0) * 1.0)
    w32 = np.linspace(0.5, 1.5, 40).astype(np.float32)
    yield "float32", gradcheck.check(lambda p: np.sum(np.sin(p)), w32, np.cos(w32))
    rng = np.random.default_rng(0)
    yield "random", gradcheck.check(lambda p: float(np.sum(p**2) + 1e-3 * rng.random()),
                                    np.ones(3), 2 * np.ones(3))  # fmt: skip
    params = {"used": np.ones(3), "unused": np.ones(2)}
    yield "unused", gradcheck.check(lambda p: float(np.sum(p["used"] ** 2)), params,
                                    {"used": 2 * np.ones(3), "unused": np.zeros(2)})  # fmt: skip
    params = {"W": np.linspace(1, 2, 30), "b": np.ones(1)}
    yield "sampled", gradcheck.check(lambda p: float(np.sum(p["W"] ** 2) + np.sum(p["b"] ** 2)),
                                     params, {"W": 2 * params["W"], "b": 2 * np.ones(1)},
                                     mode="sample", samples=5)  # fmt: skip
    inputs = {"x": np.linspace(0.1, 1, 4), "i": np.arange(2)}
    yield "held", gradcheck.check_layer(lambda p: np.sin(p["x"]),
                                        lambda p, d: {"x": d * np.cos(p["x"])}, inputs)  # fmt: skip
    yield "one wrong", gradcheck.check(lambda p: float(np.sum(p**2)), np.ones(1), np.ones(1))


def test_benign_and_single_element_reports_follow_the_rules():
    problems = []
    for label, report in _benign_reports():
        problems += _check_report(report, "full", label)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("the cost returned a int", "'a' before a vowel"),
        ("an float", "'an' before a consonant"),
        ("checked at 1 coordinates", "singular count"),
        ("observed order 2.0, so it is not a finite-difference error.", "order 2.0"),
        ("(1.735498367 vs 1.735498367)", "print alike"),
    ],
)
def test_the_rules_catch_what_they_are_for(text, rule):
    assert any(rule in v for v in _violations(text, "full"))


@pytest.mark.parametrize(
    "text",
    [
        "a gradient of an ndarray",
        "an error of 1e-3 in 1 coordinate",
        "observed order 0.0, so it is not a finite-difference error.",
        "(1.7354983670001 vs 1.7354983670002)",
        "params['a'] is an array",
        "a unit step",
    ],
)
def test_the_rules_pass_good_text(text):
    assert _violations(text, "full") == []
