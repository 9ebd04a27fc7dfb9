"""The public surface: __all__ and the fields DESIGN.md promises (tests outside rely on them)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import gradcheck
import gradcheck.demo

EXPECTED_ALL = {
    "CheckOptions",
    "CostFunctionError",
    "ElementError",
    "Eps",
    "EvaluationTimeoutError",
    "Finding",
    "FindingKind",
    "GradcheckError",
    "GradcheckWarning",
    "GradientMismatchError",
    "InvalidArgumentError",
    "Method",
    "MissingExtraError",
    "Mode",
    "ParamReport",
    "ParamTreeError",
    "Report",
    "Settings",
    "Verdict",
    "WorkerError",
    "__version__",
    "check",
    "check_layer",
    "gradient_checking",
}


def a_report() -> gradcheck.Report:
    params = {"W1": np.array([[1.0, 2.0], [3.0, 4.0]]), "b1": np.array([0.5])}
    return gradcheck.check(
        lambda p: float(np.sum(p["W1"] ** 2) + p["b1"][0] ** 3),
        params,
        {"dW1": 2 * params["W1"], "db1": 2 * params["b1"]},  # db1 is wrong: 3 b^2 = 0.75
    )


def test_all_is_pinned():
    assert set(gradcheck.__all__) == EXPECTED_ALL
    assert len(gradcheck.__all__) == len(set(gradcheck.__all__))


@pytest.mark.parametrize("name", sorted(EXPECTED_ALL))
def test_every_name_in_all_exists(name):
    assert getattr(gradcheck, name) is not None


def test_public_objects_say_they_come_from_gradcheck():
    aliases = {"Eps", "Method", "Mode"}  # typing aliases: their module is typing's
    for name in EXPECTED_ALL - {"__version__"} - aliases:
        assert getattr(gradcheck, name).__module__.startswith("gradcheck.")


def test_version_is_a_string():
    assert isinstance(gradcheck.__version__, str)
    assert gradcheck.__version__[0].isdigit()


def test_error_hierarchy():
    assert issubclass(gradcheck.WorkerError, gradcheck.CostFunctionError)
    assert issubclass(gradcheck.EvaluationTimeoutError, gradcheck.CostFunctionError)
    assert issubclass(gradcheck.EvaluationTimeoutError, TimeoutError)
    assert issubclass(gradcheck.InvalidArgumentError, gradcheck.GradcheckError)
    assert issubclass(gradcheck.InvalidArgumentError, ValueError)
    assert issubclass(gradcheck.ParamTreeError, gradcheck.GradcheckError)
    assert issubclass(gradcheck.ParamTreeError, ValueError)
    assert issubclass(gradcheck.CostFunctionError, gradcheck.GradcheckError)
    assert issubclass(gradcheck.CostFunctionError, RuntimeError)
    assert issubclass(gradcheck.MissingExtraError, gradcheck.GradcheckError)
    assert issubclass(gradcheck.MissingExtraError, ImportError)
    assert issubclass(gradcheck.GradientMismatchError, gradcheck.GradcheckError)
    assert issubclass(gradcheck.GradientMismatchError, AssertionError)
    assert issubclass(gradcheck.GradcheckWarning, UserWarning)


def test_cost_function_error_carries_param_and_index():
    error = gradcheck.CostFunctionError("message", param="W1", index=(0, 1))
    assert (error.param, error.index, str(error)) == ("W1", (0, 1), "message")
    bare = gradcheck.CostFunctionError("message")
    assert (bare.param, bare.index) == (None, None)


def test_check_signature_matches_the_contract():
    import inspect

    signature = inspect.signature(gradcheck.check)
    parameters = signature.parameters
    assert list(parameters)[:3] == ["f", "params", "grads"]
    assert parameters["grads"].default is None
    defaults = {
        "eps": None,
        "method": "central",
        "mode": "full",
        "samples": None,
        "seed": 0,
        "thresholds": (1e-7, 1e-5, 1e-3),
    }
    for name, default in defaults.items():
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        value = parameters[name].default
        assert (tuple(value) if name == "thresholds" else value) == default


def test_gradient_checking_signature_matches_the_textbook():
    import inspect

    parameters = inspect.signature(gradcheck.gradient_checking).parameters
    assert list(parameters) == ["params", "grads", "cost_function", "epsilon"]
    assert parameters["epsilon"].default == 1e-7


def test_report_fields():
    report = a_report()
    assert isinstance(report.difference, float)
    assert isinstance(report.verdict, gradcheck.Verdict)
    assert report.passed is False
    assert isinstance(report.evaluations, int)
    assert report.evaluations > 2 * 5
    assert isinstance(report.findings, list)
    assert isinstance(report.to_dict(), dict)
    assert json.loads(report.to_json())["verdict"] == report.verdict.value
    assert isinstance(str(report), str)
    assert isinstance(report, gradcheck.Report)
    assert dataclasses.is_dataclass(report)


def test_param_report_fields():
    report = a_report()
    b1 = report.params["b1"]
    assert isinstance(b1, gradcheck.ParamReport)
    assert b1.name == "b1"
    assert b1.shape == (1,)
    assert isinstance(b1.difference, float)
    assert b1.verdict is gradcheck.Verdict.BUG
    assert b1.passed is False
    element = b1.worst[0]
    assert isinstance(element, gradcheck.ElementError)
    assert element.index == (0,)
    assert element.analytic == 1.0
    assert element.numeric == pytest.approx(0.75)


def test_worst_elements_come_worst_first_with_index_into_shape():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    g = 2 * W
    g[1, 0] += 1.0
    g[0, 1] += 0.5
    report = gradcheck.check(lambda p: float(np.sum(p["W"] ** 2)), {"W": W}, {"dW": g})
    assert [e.index for e in report.params["W"].worst[:2]] == [(1, 0), (0, 1)]


def test_finding_fields():
    theta = np.array([1.0, 2.0])
    report = gradcheck.check(lambda t: np.sum(t**2), theta, np.array([2.0, np.nan]))
    finding = next(f for f in report.findings if f.kind == "nonfinite")
    assert isinstance(finding, gradcheck.Finding)
    assert finding.param == "theta"
    assert isinstance(finding.message, str)
    assert finding.message.endswith(".")
    assert isinstance(finding.detail, dict)
    json.dumps(dict(finding.detail))


def test_verdict_values_are_the_lowercase_strings():
    assert [v.value for v in gradcheck.Verdict] == [
        "correct",
        "acceptable",
        "suspicious",
        "inconclusive",
        "bug",
    ]
    assert gradcheck.Verdict("bug") is gradcheck.Verdict.BUG
    assert gradcheck.Verdict.CORRECT == "correct"


def test_report_params_keep_the_users_order():
    params = {"z": np.ones(2), "a": np.ones(1), "m": np.ones(3)}
    report = gradcheck.check(lambda p: float(sum(np.sum(v) for v in p.values())), params,
                             {"dz": np.ones(2), "da": np.ones(1), "dm": np.ones(3)})  # fmt: skip
    assert list(report.params) == ["z", "a", "m"]
    assert [p.name for p in report.params.values()] == ["z", "a", "m"]


def test_report_is_immutable():
    report = a_report()
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field"):
        report.passed = True  # type: ignore[misc]


def test_demo_public_names():
    for name in ("make_network", "load_bug", "BUGS", "check_demo"):
        assert hasattr(gradcheck.demo, name)
    assert set(gradcheck.demo.__all__) >= {"make_network", "load_bug", "BUGS", "check_demo"}
