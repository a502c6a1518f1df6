"""The served process as the benchmarks watch it: its memory and CPU (with its children's)
and the problems its log shows."""

from __future__ import annotations

import threading
from contextlib import suppress
from pathlib import Path

from benchmarks.http_query import _cpu_seconds
from benchmarks.loadkit import LOCKED

# --- memory --------------------------------------------------------------------


def _family(pid: int) -> list[int]:
    """A process and its descendants (Linux ``/proc/<pid>/task/*/children``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return out


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class MemorySampler:
    """The server's resident memory (with its children's), sampled every 0.2 s; the kernel's
    own peak (VmHWM) read at the end covers spikes between samples."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            rss = sum(_status_kib(p, "VmRSS") for p in _family(self.pid))
            self.peak_kib = max(self.peak_kib, rss)

    def __enter__(self) -> MemorySampler:
        self.start_kib = sum(_status_kib(p, "VmRSS") for p in _family(self.pid))
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.hwm_kib = sum(_status_kib(p, "VmHWM") for p in _family(self.pid))

    def result(self) -> dict[str, float]:
        return {
            "rss_before_load_mib": round(self.start_kib / 1024, 1),
            "peak_rss_sampled_mib": round(self.peak_kib / 1024, 1),
            "peak_vmhwm_mib": round(self.hwm_kib / 1024, 1),
        }


def _log_problems(library: Path, since: int = 0) -> dict[str, int]:
    """Tracebacks and "database is locked" in the server's log, after byte ``since``."""
    log_file = library / "bench-serve.log"
    text = log_file.read_bytes()[since:].decode(errors="replace") if log_file.is_file() else ""
    return {"tracebacks": text.count("Traceback"), "database_locked": text.count(LOCKED)}


def _family_cpu(pid: int) -> float:
    return sum(_cpu_seconds(p) for p in _family(pid))


