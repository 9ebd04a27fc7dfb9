"""Time full gradient checks of one network side by side: gradcheck, the textbook loop, the peers.

Run from the repository root, in the project's virtual environment:

    python benchmarks/bench_speed.py                      # all approaches, 1e3..1e6
    python benchmarks/bench_speed.py --sizes 1e3,1e4 --json results.json --markdown

Each (approach, size) cell runs in its own worker process (this same file with
``--worker``), so that imports, thread pools and peak memory are that approach's
own. The parent waits for a quiet machine before each cell, collects one JSON line
from the worker, and prints the tables. See benchmarks/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULT_PREFIX = "BENCH-RESULT "
DEFAULT_SIZES = "1e3,1e4,1e5,1e6"
QUIET_CORES = 0.25
"""Foreign load (cores) above which a cell counts as contended."""
VERSIONED = ("numpy", "scipy", "torch", "jax", "jaxlib", "numdifftools", "gradcheck")


class OutOfTimeError(Exception):
    """Raised inside a check that has used its time (a probe's deadline or the hard cap)."""


# --- worker: one approach at one size, in its own process ---------------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, time and (optionally) run the detection of one approach at one size."""
    import approaches
    import models
    import system

    approach = approaches.REGISTRY[args.worker]
    for module in approach.needs:
        importlib.import_module(module)
    system.pin_framework_threads(args.threads)
    model = models.build(args.size)
    n = model.n
    t_eval = approaches.median_time(lambda: model.net.cost(model.net.params), seconds=0.2)
    estimate = approach.slowdown * approach.evaluations(n) * t_eval
    result: dict[str, Any] = {
        "approach": approach.name,
        "size": model.label,
        "sizes": list(model.sizes),
        "n": n,
        "evaluations": approach.evaluations(n),
        "estimate_seconds": estimate,
        "t_eval_cell": t_eval,  # one net.cost evaluation, timed in this process before the check
        "threads": args.threads,
        "versions": {m: _version(m) for m in approach.needs},
    }

    def identity(f: Callable[..., Any]) -> Callable[..., Any]:
        return f

    run = approach.prepare(model, None, identity)
    gc.collect()
    result["baseline_mib"] = system.rss_mib()
    result["peak_reset"] = system.reset_peak()
    start = system.cpu_snapshot()
    too_long = approach.sampling != "none" and estimate > args.budget
    if too_long and approach.sampling == "coordinates" and estimate <= args.probe:
        too_long = False  # the sample would cover every coordinate: time the full check instead
    if not too_long:
        try:
            result.update(_time_full(run, args, cap=max(1.5 * args.budget, 10.0)))
        except OutOfTimeError:
            result["stopped_full_run_after"] = time.perf_counter() - start.wall
            too_long = True
        del run  # frees what the full run's set-up holds before any probe
    if too_long:
        gc.collect()
        probe_seconds = args.probe
        if approach.sampling == "coordinates":
            result.update(_probe_coordinates(approach, model, probe_seconds, t_eval, args.seed))
        else:
            result.update(_probe_prefix(approach, model, probe_seconds))
    result["load"] = system.cpu_load(start, system.cpu_snapshot())
    result["peak_mib"] = system.peak_mib()
    result["delta_mib"] = result["peak_mib"] - result["baseline_mib"]
    if args.detect and approach.detect is not None:
        fresh = models.build(args.size)  # a probe may leave the first model's tensors perturbed
        found = approach.detect(fresh, identity)
        result["detection"] = {
            "evaluations": found.evaluations,
            "detected": bool(found.detected),
            "says": found.says,
            "localizes": found.localizes,
            "seconds": found.seconds,
            "bug": models.BUG,
        }
    return result


def _time_full(run: Callable[[], Any], args: argparse.Namespace, cap: float) -> dict[str, Any]:
    """Time whole checks: once, and more often when they are short (median of warm runs)."""
    with _hard_cap(cap):  # a first run far over its estimate is stopped, then sampled
        started = time.perf_counter()
        info = dict(run())
        times = [time.perf_counter() - started]
    if "seconds" not in info:  # a computed figure (the floor) is measured by one run
        # Warm runs: `repeat` in all when they fit the budget; more when they are very short.
        wanted = args.repeat if times[0] * args.repeat <= args.budget else 1
        while sum(times) < args.budget and (
            len(times) < wanted or (wanted > 1 and sum(times[1:]) < 0.5 and len(times) < 51)
        ):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
    warm = times[1:] or times
    out: dict[str, Any] = {
        "kind": "computed" if "seconds" in info else "measured",
        "seconds": info.pop("seconds", statistics.median(warm)),
        "first_seconds": times[0],
        "runs": len(times),
        "run_seconds": times[:20],
        "info": _jsonable(info),
    }
    if "evaluations" in info:
        out["evaluations"] = int(info["evaluations"])
    return out


def _probe_coordinates(
    approach: Any, model: Any, probe_seconds: float, t_eval: float, seed: int
) -> dict[str, Any]:
    """Check a random sample of coordinates through the same code path; scale by n / sample."""
    import numpy as np

    per_coordinate = 2 * t_eval * approach.slowdown
    k = int(min(model.n, max(200, probe_seconds / per_coordinate)))
    rng = np.random.default_rng(seed)
    coords = np.sort(rng.choice(model.n, size=k, replace=False))
    run = approach.prepare(model, coords, lambda f: f)
    started = time.perf_counter()
    info = dict(run())
    elapsed = time.perf_counter() - started
    covered = int(info.get("checked", k))
    return {
        "kind": "extrapolated",
        "seconds": elapsed * model.n / covered,
        "first_seconds": None,
        "runs": 1,
        "probe": {
            "method": f"random sample of {covered:,} coordinates ({covered / model.n:.2%})",
            "covered": covered,
            "seconds": elapsed,
        },
        "info": _jsonable(info),
    }


def _probe_prefix(approach: Any, model: Any, probe_seconds: float) -> dict[str, Any]:
    """Run the real check until a deadline; scale by the evaluations a full check needs."""
    calls = 0
    deadline = math.inf

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*a: Any) -> Any:
            nonlocal calls
            calls += 1
            if time.perf_counter() > deadline:
                raise OutOfTimeError
            return f(*a)

        return counted

    run = approach.prepare(model, None, wrap)
    started = time.perf_counter()
    deadline = started + probe_seconds
    try:
        info = dict(run())
    except BaseException:
        if time.perf_counter() <= deadline:
            raise
        elapsed = time.perf_counter() - started
        total = approach.evaluations(model.n)
        return {
            "kind": "extrapolated",
            "seconds": elapsed * total / max(calls - 1, 1),
            "first_seconds": None,
            "runs": 1,
            "probe": {
                "method": f"real run stopped after {calls - 1:,} of {total:,} evaluations",
                "covered": calls - 1,
                "seconds": elapsed,
            },
            "peak_partial": True,
        }
    elapsed = time.perf_counter() - started
    return {
        "kind": "measured",
        "seconds": elapsed,
        "first_seconds": elapsed,
        "runs": 1,
        "note": "estimated over budget, but finished within the probe (counting wrapper on)",
        "evaluations": calls,
        "info": _jsonable(info),
    }


class _hard_cap:
    """Raise OutOfTimeError in the main thread after ``seconds`` (SIGALRM)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        def expire(signum: int, frame: Any) -> None:
            raise OutOfTimeError

        self.previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)


def _jsonable(info: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in info.items():
        if hasattr(value, "item"):
            value = value.item()
        out[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
    return out


def _version(module: str) -> str | None:
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- parent: orchestrate the cells, print the tables ---------------------------------------


def run_cell(args: argparse.Namespace, approach: str, size: str, detect: bool) -> dict[str, Any]:
    """Run one worker process and return its result (or an error record)."""
    import system

    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        approach,
        "--size",
        size,
        "--threads",
        str(args.threads),
        "--budget",
        str(args.budget),
        "--probe",
        str(args.probe),
        "--repeat",
        str(args.repeat),
        "--seed",
        str(args.seed),
    ]
    if detect:
        command.append("--detect")
    env = system.thread_environment(args.threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")]))
    timeout = 4 * args.budget + 300
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"approach": approach, "size": size, "error": f"worker timed out after {timeout} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = (done.stderr or done.stdout).strip().splitlines()[-6:]
    return {
        "approach": approach,
        "size": size,
        "error": f"worker exited {done.returncode}: " + " | ".join(tail),
    }


def verify_size(size: str, frameworks: tuple[str, ...], threads: int) -> dict[str, Any]:
    """Build the model in NumPy, PyTorch and JAX in a subprocess and assert they agree."""
    import system

    code = (
        f"import json, models; m = models.build({size!r}); "
        f"print({RESULT_PREFIX!r} + json.dumps(models.verify(m, {frameworks!r})))"
    )
    env = system.thread_environment(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise SystemExit(f"model set-up failed for size {size}:\n{done.stderr.strip()}")


def wait_for_quiet(max_wait: float, log: Callable[[str], None]) -> float:
    """Wait (up to ``max_wait`` s) until other processes use < QUIET_CORES; return the load."""
    import system

    if max_wait <= 0:
        return math.nan
    waited, load = 0.0, system.busy_cores(0.5)
    while load > QUIET_CORES and waited < max_wait:
        if waited == 0:
            log(f"  machine busy ({load:.2f} cores used by other processes): waiting")
        time.sleep(2.0)
        waited += 2.5
        load = system.busy_cores(0.5)
    return load


def measure(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """Run every requested cell; return the raw results."""
    import approaches
    import models
    import system

    sizes = [models.parse_size(s)[0] for s in args.sizes.split(",") if s.strip()]
    detect_sizes = set()
    if args.detect_sizes.strip().lower() not in ("", "none"):
        detect_sizes = {models.parse_size(s)[0] for s in args.detect_sizes.split(",")}
    chosen = select_approaches(args.approaches)
    frameworks = tuple(
        f for f in ("torch", "jax") if any(f in approaches.REGISTRY[a].needs for a in chosen)
    )
    results: list[dict[str, Any]] = []
    verified: dict[str, Any] = {}
    warnings: list[str] = []
    started = time.perf_counter()
    try:
        _measure_sizes(args, sizes, chosen, frameworks, detect_sizes, results, verified, warnings,
                       log)  # fmt: skip
    except KeyboardInterrupt:
        warnings.append("interrupted with Ctrl-C: the tables show the cells finished before")
    return {
        "machine": system.describe_machine(),
        "settings": {
            key: getattr(args, key)
            for key in ("sizes", "approaches", "threads", "budget", "probe", "repeat", "seed")
        }
        | {"bug": models.BUG, "lambd": models.LAMBD, "batch": models.BATCH},
        "versions": {m: _version(m) for m in VERSIONED},
        "verified": verified,
        "results": results,
        "warnings": warnings,
        "total_seconds": time.perf_counter() - started,
    }


def _measure_sizes(
    args: argparse.Namespace,
    sizes: list[str],
    chosen: list[str],
    frameworks: tuple[str, ...],
    detect_sizes: set[str],
    results: list[dict[str, Any]],
    verified: dict[str, Any],
    warnings: list[str],
    log: Callable[[str], None],
) -> None:
    import models

    for size in sizes:
        n = models.parameter_count(models.parse_size(size)[1])
        log(f"n = {n:,} ({size}): verifying the NumPy/PyTorch/JAX models agree")
        verified[size] = verify_size(size, frameworks, args.threads)
        for name in chosen:
            attempts: list[dict[str, Any]] = []
            for attempt in range(1 + args.retries):
                before = wait_for_quiet(args.quiet_wait, log)
                cell_start = time.perf_counter()
                result = run_cell(args, name, size, detect=size in detect_sizes and attempt == 0)
                result["background_before"] = before
                result["cell_seconds"] = time.perf_counter() - cell_start
                attempts.append(result)
                if not _contended(result) or attempt == args.retries:
                    break
                log(f"  {name}: {_foreign(result):.2f} cores of foreign load, running it again")
            best = min(attempts, key=_foreign)
            if "detection" not in best:
                for other in attempts:
                    if "detection" in other:
                        best["detection"] = other["detection"]
            best["attempts"] = len(attempts)
            results.append(best)
            log("  " + _progress_line(best))
            if _contended(best):
                warnings.append(
                    f"{name} at {size}: {_foreign(best):.2f} cores used by other processes "
                    "during the check; its time is not reliable"
                )
            if "error" in best:
                warnings.append(f"{name} at {size}: {best['error']}")


def select_approaches(text: str) -> list[str]:
    """Parse --approaches; the floor always runs (every ratio needs it)."""
    import approaches

    known = list(approaches.REGISTRY)
    names = known if text.strip() == "all" else [a.strip() for a in text.split(",") if a.strip()]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SystemExit(f"unknown approach {name!r}{hint}; known: {', '.join(known)}")
    missing = []
    for name in list(names):
        needs = approaches.REGISTRY[name].needs
        absent = [m for m in needs if importlib.util.find_spec(m) is None]
        if absent:
            missing.append(f"{name} (needs {', '.join(absent)})")
            names.remove(name)
    if missing:
        print("skipping, not installed: " + "; ".join(missing), file=sys.stderr)
    return ["floor", *[n for n in names if n != "floor"]]


def _foreign(result: dict[str, Any]) -> float:
    return float(result.get("load", {}).get("foreign_cores", 0.0))


def _contended(result: dict[str, Any]) -> bool:
    """Other processes used the CPU, or this one was descheduled, during the check."""
    load = result.get("load", {})
    if load.get("wall", 0.0) < 0.3:  # too short for /proc/stat's 10 ms ticks
        return False
    descheduled = load.get("own_cores", 1.0) < 0.85  # every approach computes all the time
    return _foreign(result) > QUIET_CORES or descheduled


def _progress_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{r['approach']}: ERROR {r['error']}"
    mark = "~" if r["kind"] == "extrapolated" else ""
    extra = f" ({r['probe']['method']})" if "probe" in r else ""
    return (
        f"{r['approach']}: {mark}{format_seconds(r['seconds'])}{extra}, "
        f"foreign load {_foreign(r):.2f} cores, cell {r['cell_seconds']:.0f} s"
    )


# --- tables --------------------------------------------------------------------------------


def format_seconds(seconds: float | None) -> str:
    """3 significant digits (whole seconds from 1,000 s), in ms below 0.1 s."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 0.1:
        return f"{seconds * 1e3:.3g} ms"
    if seconds >= 1000:
        return f"{seconds:,.0f} s"
    return f"{seconds:.3g} s"


def format_ratio(value: float | None, approximate: bool) -> str:
    """``1.04x``, with ``~`` when either side was extrapolated."""
    if value is None or not math.isfinite(value):
        return "-"
    if value < 0.1:
        text = f"{value:.2g}x"
    elif value < 10:
        text = f"{value:.2f}x"
    else:
        text = f"{value:.3g}x" if value < 100 else f"{value:,.0f}x"
    return ("~" if approximate else "") + text


def render(headers: Sequence[str], rows: Iterable[Sequence[str]], markdown: bool) -> str:
    """A plain aligned table, or a Markdown one."""
    rows = [list(map(str, r)) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def tables(data: dict[str, Any], markdown: bool) -> str:
    """Every table of the report: per size, the summary pivot, detection, warnings."""
    out: list[str] = []
    results = [r for r in data["results"]]
    sizes = list(dict.fromkeys(r["size"] for r in results))
    by = {(r["size"], r["approach"]): r for r in results}
    names = list(dict.fromkeys(r["approach"] for r in results))
    machine, settings = data["machine"], data["settings"]
    heading = "### " if markdown else "== "
    out.append(
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
        f"Python {machine['python']}; threads pinned to {settings['threads']} per process; "
        f"budget {settings['budget']:g} s per cell"
    )
    out.append(
        "versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items() if v is not None)
    )
    for size in sizes:
        floor = by.get((size, "floor"), {})
        textbook = by.get((size, "textbook"), {})
        n = next(r["n"] for r in results if r["size"] == size and "n" in r)
        spec = "-".join(
            map(str, next(r["sizes"] for r in results if r["size"] == size and "sizes" in r))
        )
        info = floor.get("info", {})
        t_eval = info.get("t_eval")
        t_vector = info.get("t_eval_vector")
        out.append("")
        out.append(f"{heading}n = {n:,} ({spec}, m = {settings['batch']}, float64)")
        if t_eval:
            spread = ""
            if "t_eval_loop" in info:
                spread = (
                    f" (mean {info['t_eval_mean'] * 1e6:.1f} us, 90th percentile "
                    f"{info['t_eval_p90'] * 1e6:.1f} us, {info['timed_calls']:,} calls; "
                    f"{info['t_eval_loop'] * 1e6:.1f} us each back to back)"
                )
            out.append(
                f"one cost evaluation net.cost(params): median {t_eval * 1e6:.1f} us{spread}; "
                f"net.vector_cost(theta): {t_vector * 1e6:.1f} us. "
                f"floor = 2n x median = {format_seconds(floor.get('seconds'))}"
            )
        rows = []
        for name in names:
            r = by.get((size, name))
            if r is None:
                continue
            if "error" in r:
                rows.append([name, "error", "", "", "", "", "", "", r["error"][:60]])
                continue
            rows.append(_row(r, floor, textbook))
        out.append("")
        out.append(
            render(
                ["approach", "seconds", "x floor", "x textbook", "evaluations", "peak MiB (delta)",
                 "1st run", "foreign", "notes"],
                rows,
                markdown,
            )
        )  # fmt: skip
    if len(sizes) > 1:
        out.append("")
        out.append(f"{heading}Summary: seconds for a full check (x the floor 2n*t_J of that n)")
        headers = ["approach"] + [
            f"n = {next(r['n'] for r in results if r['size'] == s and 'n' in r):,}" for s in sizes
        ]
        rows = []
        for name in names:
            row = [name]
            for size in sizes:
                r, floor = by.get((size, name)), by.get((size, "floor"), {})
                if r is None or "error" in r:
                    row.append("-" if r is None else "error")
                    continue
                approx = r["kind"] == "extrapolated" or floor.get("kind") == "extrapolated"
                mark = "~" if r["kind"] == "extrapolated" else ""
                ratio = r["seconds"] / floor["seconds"] if floor.get("seconds") else math.nan
                row.append(f"{mark}{format_seconds(r['seconds'])} ({format_ratio(ratio, approx)})")
            rows.append(row)
        out.append("")
        out.append(render(headers, rows, markdown))
    detections = [r for r in results if r.get("detection")]
    if detections:
        out.append("")
        bug = detections[0]["detection"]["bug"]
        out.append(f"{heading}One wrong element ({bug}): what each approach tells the user")
        rows = []
        for r in detections:
            d = r["detection"]
            rows.append(
                [
                    f"{r['approach']}",
                    f"{r['n']:,}",
                    f"{d['evaluations']:,}",
                    "yes" if d["detected"] else "NO",
                    d["localizes"],
                    _short(d["says"], 110),
                ]
            )
        out.append("")
        out.append(
            render(
                ["approach", "n", "evaluations", "detected", "localizes", "what it says"],
                rows,
                markdown,
            )
        )
    out.append("")
    out.append(
        "~ = extrapolated from a timed sample (see notes), never a full measurement; "
        "ratios marked ~ involve one. foreign = CPU cores used by other processes during "
        f"the check (! above {QUIET_CORES}). peak MiB = high-water RSS during the check "
        "(delta over the post-import, post-set-up RSS); >= marks a partial run."
    )
    if data["warnings"]:
        out.append("")
        out.append("WARNINGS:")
        out += [f"  - {w}" for w in data["warnings"]]
    out.append("")
    out.append(f"total wall time: {data['total_seconds']:.0f} s")
    return "\n".join(out)


def _row(r: dict[str, Any], floor: dict[str, Any], textbook: dict[str, Any]) -> list[str]:
    approx = r["kind"] == "extrapolated"
    mark = "~" if approx else ""
    ratios = []
    for base in (floor, textbook):
        if base.get("seconds") and "error" not in base:
            either = approx or base.get("kind") == "extrapolated"
            ratios.append(format_ratio(r["seconds"] / base["seconds"], either))
        else:
            ratios.append("-")
    first = r.get("first_seconds")
    first_text = (
        format_seconds(first)
        if first and r.get("runs", 1) > 1 and first > 1.5 * r["seconds"]
        else ""
    )
    partial = ">=" if r.get("peak_partial") or approx else ""
    memory = f"{partial}{r['peak_mib']:.0f} (+{max(0.0, r['delta_mib']):.0f})"
    foreign = _foreign(r)
    flag = "!" if _contended(r) else ""
    notes = []
    if r["approach"] == "floor":
        notes.append("computed: 2n x median single evaluation")
    if "stopped_full_run_after" in r:
        notes.append(f"full run stopped at {r['stopped_full_run_after']:.0f} s (over budget)")
    if "probe" in r:
        notes.append(r["probe"]["method"] + f", {r['probe']['seconds']:.0f} s")
    if r.get("runs", 1) > 1:
        notes.append(f"median of {r['runs'] - 1} warm runs")
    if r.get("note"):
        notes.append(r["note"])
    return [
        r["approach"],
        mark + format_seconds(r["seconds"]),
        ratios[0],
        ratios[1],
        f"{r['evaluations']:,}",
        memory,
        first_text,
        f"{foreign:.2f}{flag}",
        "; ".join(notes),
    ]


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


# --- command line --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (``--worker`` and ``--size`` are internal)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="1e3,1e4,1e5,1e6 or layer specs")
    parser.add_argument(
        "--approaches", default="all", help="comma-separated names (see --list), or 'all'"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="seconds per cell: a full check estimated longer is sampled and extrapolated (~)",
    )
    parser.add_argument(
        "--probe", type=float, default=30.0, help="seconds spent on a sample when extrapolating"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of checks that fit the budget (median of 2..)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP/torch/XLA threads per process (1: comparable, one core per check)",
    )
    parser.add_argument(
        "--detect-sizes",
        default="1e3",
        help="sizes at which to run the one-wrong-element detection, or 'none'",
    )
    parser.add_argument("--retries", type=int, default=1, help="reruns of a contended cell")
    parser.add_argument(
        "--quiet-wait", type=float, default=30.0, help="max seconds to wait for a quiet machine"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the coordinate samples")
    parser.add_argument("--json", metavar="FILE", help="write the raw results as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--list", action="store_true", help="list the approaches and exit")
    parser.add_argument(
        "--from-json", metavar="FILE", help="print the tables of a saved --json file; no measuring"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--detect", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeat < 1 or args.budget <= 0 or args.probe <= 0:
        parser.error("--threads and --repeat must be >= 1, --budget and --probe > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: a worker run prints one JSON line; the parent prints the tables."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    args = parse_args(argv)
    if args.worker:
        if os.environ.get("BENCH_THREADS") != str(args.threads):
            raise SystemExit("--worker runs need the pinned environment; run without --worker")
        print(RESULT_PREFIX + json.dumps(worker(args)), flush=True)
        return 0
    import approaches

    if args.list:
        for approach in approaches.REGISTRY.values():
            print(f"{approach.name:22} {approach.summary}")
        return 0

    if args.from_json:
        print(tables(json.loads(Path(args.from_json).read_text()), args.markdown))
        return 0

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    data = measure(args, log)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        log(f"raw results written to {args.json}")
    print(tables(data, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
