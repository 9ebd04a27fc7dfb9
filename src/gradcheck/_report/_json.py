"""JSON rendering of a Report, and reading it back.

SCHEMA_VERSION changes whenever a field is renamed, removed or changes meaning;
added fields do not change it.

Versions:
    1: first release (difference, verdict, passed, evaluations, settings, params, findings).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from .._results import ElementError, Finding, ParamReport, Report, Settings, Verdict
from .._version import __version__
from ._files import write_atomically

SCHEMA_VERSION = 1


def report_to_dict(report: Report) -> dict[str, Any]:
    """Return the report as plain JSON types; nan and inf become None."""
    s = report.settings
    return {
        "schema_version": SCHEMA_VERSION,
        "gradcheck_version": __version__,
        "difference": _float(report.difference),
        "verdict": report.verdict.value,
        "passed": report.passed,
        "evaluations": report.evaluations,
        "size": report.size,
        "checked": report.checked,
        "elapsed": report.elapsed,
        "spent": dict(report.spent),
        "settings": {
            "method": s.method,
            "eps": s.eps,
            "step": s.step,
            "mode": s.mode,
            "samples": s.samples,
            "seed": s.seed,
            "thresholds": list(s.thresholds),
            "directions": s.directions,
            "miss_probability": s.miss_probability,
            "detectable": s.detectable,
            "executor": s.executor,
        },
        "params": {name: _param(p) for name, p in report.params.items()},
        "findings": [
            {"kind": f.kind, "param": f.param, "message": f.message, "detail": _plain(f.detail)}
            for f in report.findings
        ],
    }


def report_to_json(
    report: Report, path: str | os.PathLike[str] | None = None, *, indent: int | None = 2
) -> str:
    """Serialize to JSON; with ``path``, write it atomically (never a half-written file)."""
    text = json.dumps(report_to_dict(report), indent=indent, allow_nan=False)
    if path is not None:
        write_atomically(text + "\n", path)
    return text


def report_from_dict(data: Mapping[str, Any]) -> Report:
    """Rebuild a Report from `report_to_dict` output."""
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"schema_version={version!r}: this gradcheck reads reports of version "
            f"{SCHEMA_VERSION}; regenerate the report or upgrade gradcheck."
        )
    s = data["settings"]
    return Report(
        difference=_unfloat(data["difference"]),
        verdict=Verdict(data["verdict"]),
        passed=bool(data["passed"]),
        params={name: _unparam(p) for name, p in data["params"].items()},
        findings=[
            Finding(kind=f["kind"], param=f["param"], message=f["message"], detail=f["detail"])
            for f in data["findings"]
        ],
        evaluations=int(data["evaluations"]),
        settings=Settings(
            method=s["method"],
            eps=s["eps"],
            step=s["step"],
            mode=s["mode"],
            samples=s["samples"],
            seed=int(s["seed"]),
            thresholds=tuple(s["thresholds"]),
            directions=s.get("directions"),
            miss_probability=s.get("miss_probability"),
            detectable=s.get("detectable"),
            executor=s.get("executor", "loop"),
        ),
        size=int(data["size"]),
        checked=int(data["checked"]),
        elapsed=float(data["elapsed"]),
        spent={str(k): int(v) for k, v in data.get("spent", {}).items()},
    )


def _param(p: ParamReport) -> dict[str, Any]:
    return {
        "name": p.name,
        "shape": list(p.shape),
        "dtype": p.dtype,
        "size": p.size,
        "checked": p.checked,
        "difference": _float(p.difference),
        "verdict": p.verdict.value,
        "passed": p.passed,
        "mismatches": p.mismatches,
        "nonfinite": p.nonfinite,
        "excluded": p.excluded,
        "unresolved": p.unresolved,
        "directions": p.directions,
        "error_bar": _float(p.error_bar),
        "norm_analytic": _float(p.norm_analytic),
        "norm_numeric": _float(p.norm_numeric),
        "worst": [
            {
                "index": list(e.index),
                "coordinate": e.coordinate,
                "analytic": _float(e.analytic),
                "numeric": _float(e.numeric),
                "abs_error": _float(e.abs_error),
                "rel_error": _float(e.rel_error),
            }
            for e in p.worst
        ],
    }


def _unparam(d: Mapping[str, Any]) -> ParamReport:
    return ParamReport(
        name=d["name"],
        shape=tuple(d["shape"]),
        dtype=d["dtype"],
        size=int(d["size"]),
        checked=int(d["checked"]),
        difference=_unfloat(d["difference"]),
        verdict=Verdict(d["verdict"]),
        passed=bool(d["passed"]),
        mismatches=int(d["mismatches"]),
        nonfinite=int(d["nonfinite"]),
        excluded=int(d.get("excluded", 0)),
        unresolved=int(d.get("unresolved", 0)),
        directions=int(d.get("directions", 0)),
        error_bar=_unfloat(d.get("error_bar")),
        norm_analytic=_unfloat(d["norm_analytic"]),
        norm_numeric=_unfloat(d["norm_numeric"]),
        worst=tuple(
            ElementError(
                index=tuple(e["index"]),
                coordinate=int(e["coordinate"]),
                analytic=_unfloat(e["analytic"]),
                numeric=_unfloat(e["numeric"]),
                abs_error=_unfloat(e["abs_error"]),
                rel_error=_unfloat(e["rel_error"]),
            )
            for e in d["worst"]
        ),
    )


def _float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _unfloat(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _plain(value: Any) -> Any:
    """Make finding details JSON-safe: NumPy scalars and arrays to Python, nan to None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float):
        return _float(value)
    return value
