"""The layer zoo (issue 6, item 4): correct layers pass, broken ones are caught and named.

Every correct layer must pass at an ordinary point, in float32, with large-magnitude
parameters, near a minimum (tiny gradients against the cost) and, where it has
any, at its kinks. Every broken variant must fail, name the broken tensor as the
worst parameter, point at elements that really are wrong, and, where the mistake
has a class, carry the finding of that class. At least 90% of the classifiable
variants must get the right kind.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck._api import upstream_gradient
from layer_zoo import CLASSIFIABLE, LAYERS, Data, Params, as_float32, make, run, run_near_minimum

BENIGN = {"noise", "precision"}
"""Findings a correct layer may carry at a smooth point."""
CLASSIFICATION_TARGET = 0.9


# --- correct layers ----------------------------------------------------------------------


def _point(layer_name: str, condition: str) -> tuple[Params, Data]:
    layer = LAYERS[layer_name]
    params, data = make(layer)
    if condition == "default":
        return params, data
    if condition == "float32":
        return as_float32(params, data)
    if condition.startswith("large:"):
        return layer.large[condition.removeprefix("large:")](params, data)
    return layer.kinks[condition.removeprefix("kinks:")](np.random.default_rng(0))


CORRECT = [
    *(
        (name, condition)
        for name, layer in LAYERS.items()
        for condition in (
            "default",
            "float32",
            "near_minimum",
            *(f"large:{k}" for k in layer.large),
        )
    ),
    *((name, f"kinks:{kink}") for name, layer in LAYERS.items() for kink in layer.kinks),
]


def _kinds(report: gradcheck.Report, param: str | None = None) -> set[str]:
    return {f.kind for f in report.findings if param is None or f.param == param}


def _explain(report: gradcheck.Report) -> str:
    return f"\n{report}\nfindings: {[(f.kind, f.param) for f in report.findings]}"


@pytest.mark.parametrize(("layer_name", "condition"), CORRECT, ids=[f"{n}-{c}" for n, c in CORRECT])
def test_correct_layer_passes(layer_name: str, condition: str) -> None:
    layer = LAYERS[layer_name]
    if condition == "near_minimum":
        report = run_near_minimum(layer, *make(layer))
    else:
        params, data = _point(layer_name, condition)
        report = run(layer, layer.backward, params, data)
    assert report.passed, f"the correct {layer_name} fails ({condition}):{_explain(report)}"
    allowed = BENIGN | ({"kink"} if condition.startswith("kinks:") else set())
    assert _kinds(report) <= allowed, (
        f"the correct {layer_name} ({condition}) gets findings that are not true of it:"
        f"{_explain(report)}"
    )


@pytest.mark.parametrize(
    ("layer_name", "condition"),
    [c for c in CORRECT if c[1].startswith("kinks:")],
    ids=[f"{n}-{c}" for n, c in CORRECT if c.startswith("kinks:")],
)
def test_kinks_are_found_and_listed(layer_name: str, condition: str) -> None:
    layer = LAYERS[layer_name]
    report = run(layer, layer.backward, *_point(layer_name, condition))
    kinks = [f for f in report.findings if f.kind == "kink"]
    assert kinks, f"no kink found at a point built to sit on kinks:{_explain(report)}"
    for finding in kinks:
        assert finding.detail["count"] == len(finding.detail["indices"]) > 0
        assert finding.param in report.params


@pytest.mark.parametrize("layer_name", list(LAYERS))
def test_float32_is_named_as_precision(layer_name: str) -> None:
    layer = LAYERS[layer_name]
    report = run(layer, layer.backward, *_point(layer_name, "float32"))
    assert "precision" in _kinds(report), _explain(report)


# --- broken layers -----------------------------------------------------------------------


BROKEN = [(name, variant) for name, layer in LAYERS.items() for variant in layer.broken]
BROKEN_IDS = [f"{name}-{variant}" for name, variant in BROKEN]
CLASSIFIED = [(n, v) for n, v in BROKEN if LAYERS[n].broken[v].kind in CLASSIFIABLE]


@functools.cache
def broken_report(layer_name: str, variant: str) -> gradcheck.Report:
    layer = LAYERS[layer_name]
    params, data = make(layer)
    return run(layer, layer.broken[variant].backward, params, data)


def _grads(layer_name: str, backward: Any) -> dict[str, np.ndarray]:
    """The gradients ``backward`` returns at the default point, for dout / dloss as checked."""
    layer = LAYERS[layer_name]
    params, data = make(layer)
    out, cache = layer.forward(params, data)
    if layer.loss:
        return backward(1.0, cache)
    dout = upstream_gradient(0, np.shape(out))  # check_layer's, seed=0
    return backward(dout, cache)


@pytest.mark.parametrize(("layer_name", "variant"), BROKEN, ids=BROKEN_IDS)
def test_broken_variant_fails_and_names_the_tensor(layer_name: str, variant: str) -> None:
    broken = LAYERS[layer_name].broken[variant]
    report = broken_report(layer_name, variant)
    assert not report.passed, f"{layer_name} {variant} passes:{_explain(report)}"
    assert report.worst.name in broken.worst, (
        f"{layer_name} {variant}: the worst parameter is {report.worst.name}, but the mistake "
        f"is in {broken.worst}:{_explain(report)}"
    )
    # Localized: the worst elements listed really are wrong (checked against the correct
    # backward, independently of gradcheck).
    right = _grads(layer_name, LAYERS[layer_name].backward)[report.worst.name]
    wrong = _grads(layer_name, broken.backward)[report.worst.name]
    first = report.worst.worst[0]
    assert first.analytic == pytest.approx(wrong[first.index], rel=1e-12, abs=1e-15)
    scale = float(np.max(np.abs(right)))
    assert abs(wrong[first.index] - right[first.index]) > 1e-3 * scale, (
        f"{layer_name} {variant}: the worst element {first.index} is not one the mistake changed"
    )


@pytest.mark.parametrize(("layer_name", "variant"), BROKEN, ids=BROKEN_IDS)
def test_broken_variant_fails_in_float32(layer_name: str, variant: str) -> None:
    """Low precision widens the error bars; it must not excuse a real mistake."""
    layer = LAYERS[layer_name]
    broken = layer.broken[variant]
    report = run(layer, broken.backward, *as_float32(*make(layer)))
    assert not report.passed, f"{layer_name} {variant} passes in float32:{_explain(report)}"
    assert report.worst.name in broken.worst, _explain(report)


@pytest.mark.parametrize(("layer_name", "variant"), BROKEN, ids=BROKEN_IDS)
def test_broken_variant_gets_the_right_kind(layer_name: str, variant: str) -> None:
    broken = LAYERS[layer_name].broken[variant]
    report = broken_report(layer_name, variant)
    worst = report.worst.name
    findings = [f for f in report.findings if f.param == worst and f.kind != "noise"]
    kinds = [f.kind for f in findings]
    assert kinds == [broken.kind], (
        f"{layer_name} {variant}: expected one {broken.kind!r} finding on {worst}, got {kinds}:"
        f"{_explain(report)}"
    )
    finding = findings[0]
    assert worst in finding.message
    if broken.number is not None:
        numbers = [v for v in finding.detail.values() if isinstance(v, float | int)]
        assert any(math.isclose(v, broken.number, rel_tol=1e-2) for v in numbers), (
            f"{layer_name} {variant}: the finding should report {broken.number}, "
            f"its detail is {finding.detail}"
        )
    if broken.says is not None:
        assert broken.says in finding.message, finding.message


def test_classification_rate() -> None:
    """At least 90% of the classifiable broken variants get the right kind (issue 6)."""
    right, wrong = [], []
    for layer_name, variant in CLASSIFIED:
        broken = LAYERS[layer_name].broken[variant]
        report = broken_report(layer_name, variant)
        hit = any(f.kind == broken.kind and f.param in broken.worst for f in report.findings)
        (right if hit else wrong).append(
            f"{layer_name}/{variant}: expected {broken.kind}, got "
            f"{sorted(_kinds(report, report.worst.name))} on {report.worst.name}"
        )
    rate = len(right) / len(CLASSIFIED)
    assert len(CLASSIFIED) >= 15
    assert rate >= CLASSIFICATION_TARGET, (
        f"{len(right)} of {len(CLASSIFIED)} classifiable mistakes get the right kind "
        f"({rate:.0%} < {CLASSIFICATION_TARGET:.0%}); missed: {wrong}"
    )


def test_catalogue_covers_the_issue() -> None:
    """The zoo has the layers of issue 6 and every class of mistake."""
    assert set(LAYERS) == {
        "mlp",
        "rnn",
        "batchnorm",
        "layernorm",
        "conv",
        "maxpool",
        "softmax_loss",
        "svm",
        "embedding",
        "attention",
    }
    kinds = {b.kind for layer in LAYERS.values() for b in layer.broken.values()}
    assert kinds == {*CLASSIFIABLE, "localized"}
    assert all(len(layer.broken) >= 1 for layer in LAYERS.values())
