"""What the benchmark controls and observes about the machine: threads, CPU load, memory.

Threads are pinned through the environment of each worker process, before NumPy,
PyTorch or JAX is imported (OpenBLAS and OpenMP read it once, at load time). CPU load
from other processes ("foreign" load) is the machine's busy time from /proc/stat minus
this process's own CPU time (getrusage), over the timed interval. Peak memory is the
kernel's high-water mark (VmHWM), reset after set-up through /proc/self/clear_refs so
that it covers the check only; ru_maxrss is the fallback where that is not possible.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
_TICKS = os.sysconf("SC_CLK_TCK")


def thread_environment(threads: int) -> dict[str, str]:
    """The environment a worker runs in: every BLAS/OpenMP/XLA pool limited to ``threads``."""
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    xla = [f"intra_op_parallelism_threads={threads}"]
    if threads == 1:
        xla.insert(0, "--xla_cpu_multi_thread_eigen=false")
    env["XLA_FLAGS"] = " ".join([env.get("XLA_FLAGS", ""), *xla]).strip()
    env["JAX_PLATFORMS"] = "cpu"  # no probing for accelerators (and no warning about it)
    env["BENCH_THREADS"] = str(threads)
    return env


def pin_framework_threads(threads: int) -> None:
    """Pin the thread pools that do not read the environment (PyTorch's), if loaded."""
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # only allowed before any parallel work
            torch.set_num_interop_threads(1)


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """Counters at one instant: wall clock, machine busy/steal time, own CPU time (seconds)."""

    wall: float
    busy: float
    steal: float
    own: float


def cpu_snapshot() -> CpuSnapshot:
    """Read the machine's and this process's CPU counters now."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        own += usage.ru_utime + usage.ru_stime
    return CpuSnapshot(
        wall=time.perf_counter(),
        busy=(user + nice + system + irq + softirq) / _TICKS,
        steal=steal / _TICKS,
        own=own,
    )


def cpu_load(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, float]:
    """CPU use between two snapshots, in cores (CPU-seconds per second of wall time).

    ``foreign_cores`` is what other processes used; /proc/stat counts in clock ticks
    (10 ms), so intervals under a second carry a few hundredths of a core of error.
    """
    wall = max(end.wall - start.wall, 1e-9)
    own = end.own - start.own
    foreign = (end.busy - start.busy) - own
    return {
        "wall": wall,
        "cpu_seconds": own,
        "own_cores": own / wall,
        "foreign_cores": max(0.0, foreign / wall),
        "steal_cores": (end.steal - start.steal) / wall,
    }


def busy_cores(seconds: float = 1.0) -> float:
    """Cores busy on the whole machine, excluding this process, over ``seconds``."""
    start = cpu_snapshot()
    time.sleep(seconds)
    return cpu_load(start, cpu_snapshot())["foreign_cores"]


def _status_mib(key: str) -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mib() -> float:
    """Resident memory of this process now."""
    current = _status_mib("VmRSS")
    return current if current is not None else peak_mib()


def reset_peak() -> bool:
    """Reset the high-water mark to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def peak_mib() -> float:
    """Peak resident memory since the last `reset_peak` (else since the process started)."""
    peak = _status_mib("VmHWM")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def describe_machine() -> dict[str, object]:
    """CPU model, cores, memory and Python: the header of every result."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
