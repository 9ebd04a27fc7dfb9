"""Count what gradcheck says about correct and corrupted gradients (issue 9's closing note).

Draws N cases from tests/trust_cases.py (smooth costs with known gradients at every scale,
float32/float64, loss offsets; one corrupted gradient element each) and checks each, correct
and corrupted, in modes full, directional and bisect. Prints, per mode x dtype x gradient,
how many checks fail / are inconclusive / pass, and the violations of the issue's assertions:

1. a corrupted gradient passes;
2. a correct gradient gets a "bug" verdict;
3. a correct gradient in the resolvable regime does not pass.

Run from the repository root (PYTHONPATH=src counts the checkout's gradcheck rather than an
installed one; the header says which was imported):

    PYTHONPATH=src python benchmarks/trust_counts.py                 # 400 cases, seed 0
    PYTHONPATH=src python benchmarks/trust_counts.py --n 100 --markdown --examples 3
    PYTHONPATH=src python benchmarks/trust_counts.py --resolvable     # only assertion 3's regime

Case i is drawn from its own generator (seed, i), so ``--n 100`` is the first 100 cases of
``--n 400``. Cases whose check raises are counted under "error" and listed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CASES = HERE.parent / "tests" / "trust_cases.py"
OUTCOMES = ("fails", "inconclusive", "passes", "other", "error")


def load_cases() -> ModuleType:
    """tests/trust_cases.py, by path: the tests directory is not a package."""
    spec = importlib.util.spec_from_file_location("trust_cases", CASES)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["trust_cases"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def run(n: int, seed: int, modes: list[str], keep: int, regime_only: bool) -> dict[str, Any]:
    tc = load_cases()
    import gradcheck

    counts: Counter[tuple[str, str, str, str]] = Counter()
    violations: Counter[tuple[int, str, str]] = Counter()
    resolvable: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[int, str], list[str]] = defaultdict(list)
    seconds: Counter[str] = Counter()
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        case = tc.build(tc.random_spec(rng, resolvable=regime_only))
        for mode in modes:
            resolvable[(mode, case.dtype)] += case.resolvable
            for corrupted in (False, True):
                started = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", gradcheck.GradcheckWarning)
                        report = case.check(mode=mode, corrupted=corrupted, progress=False)
                except Exception:  # a crash is a result worth counting, not a reason to stop
                    report, said = None, "error"
                    detail = traceback.format_exc(limit=1).strip().splitlines()[-1]
                else:
                    said = tc.outcome(report)
                    detail = _summary(report)
                seconds[mode] += time.perf_counter() - started
                gradient = "corrupted" if corrupted else "correct"
                counts[(mode, case.dtype, gradient, said)] += 1
                broken = []
                if corrupted and said == "passes":
                    broken.append(1)
                if not corrupted and report is not None and tc.says_bug(report):
                    broken.append(2)
                if not corrupted and case.resolvable and said != "passes":
                    broken.append(3)
                if said == "error":
                    broken.append(0)
                for assertion in broken:
                    violations[(assertion, mode, case.dtype)] += 1
                    if len(examples[(assertion, mode)]) < keep:
                        examples[(assertion, mode)].append(
                            f"case {i}: {case.describe()}\n      -> {detail}\n      {case.spec!r}"
                        )
    return {
        "counts": counts,
        "violations": violations,
        "resolvable": resolvable,
        "examples": examples,
        "seconds": seconds,
        "gradcheck": gradcheck.__file__,
        "inconclusive_exists": tc.INCONCLUSIVE is not None,
    }


def _summary(report: Any) -> str:
    params = ", ".join(
        f"{p.name}: {p.verdict.value} {p.difference:.3g}" for p in report.params.values()
    )
    kinds = sorted({f.kind for f in report.findings})
    return f"{report.verdict.value} {report.difference:.3g}, step {report.settings.step}; " + (
        f"{params}; findings {kinds}"
    )


def render(
    result: dict[str, Any], modes: list[str], n: int, seed: int, markdown: bool, regime_only: bool
) -> str:
    counts, violations, resolvable = result["counts"], result["violations"], result["resolvable"]
    shown = [o for o in OUTCOMES if o in ("fails", "inconclusive", "passes") or any(
        counts[(m, d, g, o)] for m in modes for d in ("float32", "float64")
        for g in ("correct", "corrupted"))]  # fmt: skip
    header = ["mode", "dtype", "gradient", *shown, "viol. 1", "viol. 2", "viol. 3"]
    rows = []
    for mode in modes:
        for dtype in ("float32", "float64"):
            for gradient in ("correct", "corrupted"):
                row = [mode, dtype, gradient]
                row += [str(counts[(mode, dtype, gradient, o)]) for o in shown]
                if gradient == "corrupted":
                    row += [str(violations[(1, mode, dtype)]), "", ""]
                else:
                    three = f"{violations[(3, mode, dtype)]} / {resolvable[(mode, dtype)]}"
                    row += ["", str(violations[(2, mode, dtype)]), three]
                rows.append(row)
    lines = [
        f"gradcheck: {result['gradcheck']}",
        f"{n} {'resolvable ' if regime_only else ''}cases (seed {seed}); Verdict.INCONCLUSIVE "
        f"{'exists' if result['inconclusive_exists'] else 'does not exist yet'}",
        "viol. 1: corrupted passes; viol. 2: correct called a bug; viol. 3: correct and "
        "resolvable, not passed (violations / resolvable cases)",
        "",
    ]
    if markdown:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append("")
    lines.append(
        "seconds per mode: " + ", ".join(f"{m} {result['seconds'][m]:.1f} s" for m in modes)
    )
    for (assertion, mode), found in sorted(result["examples"].items()):
        title = {0: "raised", 1: "corrupted passes", 2: "correct called a bug",
                 3: "resolvable, correct, not passed"}[assertion]  # fmt: skip
        lines.append("")
        lines.append(f"examples, {mode}: {title}")
        lines += [f"  {text}" for text in found]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="cases to draw (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument("--modes", default="full,directional,bisect", help="comma-separated")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--resolvable",
        action="store_true",
        help="draw only cases in the regime where a correct gradient must pass (assertion 3)",
    )
    parser.add_argument(
        "--examples", type=int, default=0, help="list up to this many violations per kind"
    )
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    result = run(args.n, args.seed, modes, args.examples, args.resolvable)
    print(render(result, modes, args.n, args.seed, args.markdown, args.resolvable))


if __name__ == "__main__":
    main()
