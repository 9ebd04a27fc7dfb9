"""The Report: terminal rendering, JSON, round trips, and a gold file of the rendering."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

import gradcheck
from gradcheck import Report, Verdict
from gradcheck._report._json import SCHEMA_VERSION

SCRUB_ELAPSED = [(r"evaluations in [0-9.,]+ m?s", "evaluations in <elapsed>")]

# Exact arithmetic: a linear cost, dyadic parameters and a power-of-two step make every
# finite difference exact, so the rendered report is the same on every machine.
STEP = 2.0**-20
C_W = np.array([[1.0, -2.0, 3.0], [4.0, -5.0, 0.5]])
C_B = np.array([2.0, -1.0, 0.25])


def linear_cost(p):
    return float(np.sum(C_W * p["W"]) + np.sum(C_B * p["b"]))


def exact_params():
    return {"W": np.array([[0.5, -0.25, 1.0], [0.125, 2.0, -1.5]]), "b": np.array([0.5, 0.0, -1.0])}


def exact_report(db=C_B, **options):
    return gradcheck.check(linear_cost, exact_params(), {"dW": C_W.copy(), "db": db.copy()},
                           eps=STEP, **options)  # fmt: skip


def report_with_difference(scale: float) -> Report:
    """A report whose parameter b has a relative error of about ``scale``."""
    return exact_report(db=C_B * (1 + 2 * scale))


def nan_report() -> Report:
    W = np.array([[1.0, 2.0], [3.0, 4.0]])

    def f(p):
        return math.nan if p["W"][0, 1] != 2.0 else float(np.sum(p["W"] ** 2))

    return gradcheck.check(f, {"W": W}, {"dW": 2 * W})


# --- terminal --------------------------------------------------------------------------


def rows(text: str) -> dict[str, str]:
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("parameter"))
    table = {}
    for line in lines[header + 1 :]:
        name = line.split(" ", 1)[0]
        if not name or name in ("Overall", "•"):
            break
        table[name] = line
    return table


def test_terminal_has_one_row_per_parameter_with_its_numbers():
    report = exact_report(db=np.array([2.0, -1.0, 0.75]))
    text = str(report)
    table = rows(text)
    assert list(table) == ["W", "b"]
    assert re.search(r"^W\s+\(2, 3\)\s+0\s+correct\s", table["W"])
    b = report.params["b"]
    assert re.search(
        rf"^b\s+\(3,\)\s+{b.difference:.1e}\s+bug\s+1/3\s+\[2\]\s+7\.50000e-01\s+2\.50000e-01$",
        table["b"],
    )


def test_terminal_lists_the_settings_and_findings():
    text = str(nan_report())
    assert text.startswith("gradcheck · method=central · step=1e-07 · mode=full · seed=0 · ")
    assert re.search(r" · \d+ evaluations in ", text)
    assert "[nonfinite] W: " in text
    assert "W[0, 1]" in text


def test_terminal_shows_the_checked_column_in_sample_mode():
    text = str(exact_report(mode="sample", samples=2))
    assert "checked" in text.splitlines()[1]
    assert "mode=sample (4 of 9)" in text


@pytest.mark.parametrize(
    ("scale", "verdict", "wording"),
    [
        (0.0, Verdict.CORRECT, "Backpropagation is correct."),
        (1e-6, Verdict.ACCEPTABLE, "Backpropagation is correct"),
        (1e-4, Verdict.SUSPICIOUS, "Backpropagation is mostly correct, but worth inspecting."),
        (0.1, Verdict.BUG, "There is a bug in backpropagation."),
    ],
)
def test_final_line_wording_per_verdict(scale, verdict, wording):
    report = report_with_difference(scale)
    assert report.params["b"].verdict is verdict
    last = " ".join(str(report).splitlines()[-2:])
    assert wording in last
    if verdict.passes:
        assert "bug" not in last.split(":", 1)[1]
    else:
        assert "Worst parameter: b" in last


def test_the_worst_parameter_decides_even_when_the_overall_difference_is_small():
    big = 2.0**14 * C_W  # large, correct weight gradients swamp one wrong bias element
    p = exact_params()
    report = gradcheck.check(
        lambda q: float(np.sum(big * q["W"]) + np.sum(C_B * q["b"])),
        p,
        {"dW": big, "db": np.array([2.0, -1.0, 0.5])},
        eps=STEP,
    )
    assert Verdict.of(report.difference).passes  # the textbook number alone would pass it
    assert report.verdict is Verdict.BUG  # but the overall verdict is the worst parameter's
    assert not report.passed
    last = " ".join(str(report).splitlines()[-2:])
    assert "There is a bug in backpropagation." in last
    assert "Worst parameter: b" in last


def test_a_nan_at_a_perturbed_point_gives_no_verdict_and_says_where():
    report = nan_report()
    last = " ".join(str(report).splitlines()[-2:])
    assert "inconclusive. No verdict" in last
    assert any(f.kind == "nonfinite" and "W[" in f.message for f in report.findings)


def test_str_is_plain_text_without_escape_codes():
    text = str(exact_report(db=C_B * 2))
    assert "\x1b[" not in text
    assert text.endswith("\n")


def test_report_renders_with_rich():
    from rich.console import Console

    console = Console(record=True, width=120, color_system=None)
    console.print(exact_report())
    assert "Backpropagation is correct." in console.export_text()


def test_gold_terminal_rendering(gold):
    report = exact_report(db=np.array([2.0, -1.0, 0.75]))
    gold("report_bug.txt", str(report), scrubs=SCRUB_ELAPSED)


def test_gold_terminal_rendering_of_a_sampled_passing_check(gold):
    gold("report_sample.txt", str(exact_report(mode="sample", samples=2)), scrubs=SCRUB_ELAPSED)


# --- report data -----------------------------------------------------------------------


def test_report_worst_and_failing():
    report = exact_report(db=np.array([2.0, -1.0, 0.75]))
    assert report.worst.name == "b"
    assert [p.name for p in report.failing] == ["b"]
    assert exact_report().failing == []


def test_report_fields():
    report = exact_report()
    assert report.size == report.checked == 9
    assert report.evaluations >= 1 + 2 * 9
    assert report.difference == 0.0
    assert report.passed is True
    assert report.elapsed >= 0
    assert report.settings.eps == STEP


# --- JSON ------------------------------------------------------------------------------


def test_to_dict_has_a_schema_version_and_the_contract_fields():
    data = exact_report(db=C_B * 2).to_dict()
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert data["verdict"] == "bug"
    assert data["passed"] is False
    assert data["evaluations"] == exact_report(db=C_B * 2).evaluations
    assert list(data["params"]) == ["W", "b"]
    b = data["params"]["b"]
    assert b["shape"] == [3]
    assert b["verdict"] == "bug"
    assert b["worst"][0].keys() >= {"index", "analytic", "numeric"}
    assert data["settings"]["method"] == "central"
    assert data["settings"]["thresholds"] == [1e-7, 1e-5, 1e-3]


def test_to_json_is_valid_json():
    report = exact_report(db=C_B * 2)
    data = json.loads(report.to_json())
    assert data == report.to_dict()
    assert json.loads(report.to_json(indent=None)) == data


def test_nonfinite_floats_become_null():
    report = nan_report()
    text = report.to_json()
    assert "NaN" not in text
    assert "Infinity" not in text
    element = json.loads(text)["params"]["W"]["worst"][0]
    assert element["index"] == [0, 1]
    assert element["numeric"] is None
    assert element["analytic"] == 4.0


def test_from_dict_round_trips_to_an_equal_report():
    for report in (
        exact_report(),
        exact_report(db=C_B * 2),
        exact_report(mode="sample", samples=2),
    ):
        assert Report.from_dict(report.to_dict()) == report
        assert Report.from_dict(json.loads(report.to_json())) == report


def test_from_dict_round_trips_nonfinite_values_as_nan():
    report = nan_report()
    again = Report.from_dict(json.loads(report.to_json()))
    assert math.isnan(again.params["W"].worst[0].numeric)
    assert again.to_dict() == report.to_dict()
    assert [f.kind for f in again.findings] == [f.kind for f in report.findings]
    assert "nonfinite" in [f.kind for f in again.findings]


def test_from_dict_rejects_another_schema_version():
    data = exact_report().to_dict()
    data["schema_version"] = 99
    with pytest.raises(ValueError, match=r"schema_version=99: this gradcheck reads reports of"):
        Report.from_dict(data)


def test_to_json_writes_the_file(tmp_path):
    report = exact_report(db=C_B * 2)
    path = tmp_path / "report.json"
    text = report.to_json(str(path))
    assert path.read_text(encoding="utf-8") == text + "\n"
    assert json.loads(path.read_text(encoding="utf-8"))["verdict"] == "bug"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_to_json_replaces_an_existing_file(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old", encoding="utf-8")
    exact_report().to_json(str(path))
    assert json.loads(path.read_text(encoding="utf-8"))["passed"] is True
