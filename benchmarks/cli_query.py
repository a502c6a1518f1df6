"""Cold CLI query: wall time of ``imagefind search "..." --json`` on a 100K-image library.

The library's vectors are inserted straight into the catalog (``benchmarks.data``), bound to
the benchmark model (fp32, and ``<dir>@int8`` for the int8 copy) exactly as indexing binds
it. One query first builds and caches the vector index on disk; then each run is a new
process (a cold start: interpreter, imports, model sessions, index load), files in the OS
page cache. A breakdown says what bounds it: ``python -X importtime`` top offenders, and
each stage of the query timed in a fresh process.

    python -m benchmarks.cli_query [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import run_part
from benchmarks.data import DATA, ROOT, vector_library
from benchmarks.modelcache import b32_model_dirs

VENV_BIN = Path(sys.executable).parent
QUERY = "a dog"
LIBRARY_SIZE = 100_000
Log = Callable[[str], object]

_STAGES = r"""
import contextlib, io, json, sys, time
t0 = time.perf_counter()
last, marks = [t0], {}
def mark(name):
    now = time.perf_counter(); marks[name] = round(now - last[0], 4); last[0] = now
import imagefind.cli  # what the command imports before it runs
mark("import imagefind.cli")
from imagefind.library import Library
from imagefind.models.session import OnnxGraph
from imagefind.models.tokenizer import ClipTokenizer
from imagefind.stores.embedded.liveindex import LiveIndex
def timed(cls, name, label):
    inner = getattr(cls, name)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            marks[label] = round(time.perf_counter() - start, 4)
    setattr(cls, name, wrapper)
opened = Library.open.__func__
def open_(cls, *args, **kwargs):
    mark("argument parsing (typer)")
    return opened(cls, *args, **kwargs)
Library.open = classmethod(open_)
timed(ClipTokenizer, "__init__", "  tokenizer load")
timed(OnnxGraph, "_load", "  text session load")
timed(LiveIndex, "_load", "  vector index load (mapped)")
timed(Library, "search", "search (all of the above, encode, top-10, rows)")
sys.argv = ["imagefind", "search", sys.argv[2], "--library", sys.argv[1], "--json"]
from imagefind.cli.app import app
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    app()
marks["in-process total (the rest: open, print, close)"] = round(time.perf_counter() - t0, 4)
print(json.dumps(marks))
"""


def _env(*, bytecode: bool = True) -> dict[str, str]:
    """The environment of the measured processes. ``bytecode``: let Python cache compiled
    modules (in ``.cache/bench-data/pycache``, not in the source tree), as it does for an
    installed package; this machine sets PYTHONDONTWRITEBYTECODE=1, which makes every
    start recompile imagefind from source."""
    env = dict(os.environ)
    env.setdefault("IMAGEFIND_CACHE", str(DATA / "model-cache"))
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, str(ROOT), env.get("PYTHONPATH")) if p)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(DATA / "pycache")
    return env


def _wall(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    return time.perf_counter() - t, proc


def _command(library: Path) -> list[str]:
    return [str(VENV_BIN / "imagefind"), "search", QUERY, "--library", str(library), "--json"]


def import_offenders(library: Path, env: dict[str, str], top: int = 12) -> dict[str, Any]:
    """Where one cold query's import time goes (``-X importtime``): self time summed by
    top-level package, and the slowest single modules by cumulative time."""
    script = str(VENV_BIN / "imagefind")
    cmd = [sys.executable, "-X", "importtime", script, *_command(library)[1:]]
    _, proc = _wall(cmd, env)
    packages: dict[str, int] = {}
    modules: list[tuple[int, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        head, cum_us, name = line.split("|", 2)
        self_us = int(head.split(":")[1])
        module = name.strip()
        root = module.split(".")[0]
        packages[root] = packages.get(root, 0) + self_us
        modules.append((int(cum_us), module))
    by_package = sorted(packages.items(), key=lambda kv: -kv[1])[:top]
    return {
        "total_ms": round(sum(packages.values()) / 1000, 1),
        "packages_self_ms": {k: round(v / 1000, 1) for k, v in by_package},
        "slowest_cumulative_ms": {
            m: round(us / 1000, 1) for us, m in sorted(modules, reverse=True)[:top]
        },
    }


def stages(library: Path, env: dict[str, str]) -> dict[str, float]:
    _, proc = _wall([sys.executable, "-c", _STAGES, str(library), QUERY], env)
    if proc.returncode != 0:
        raise RuntimeError(f"stage breakdown failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


_SESSIONS = r"""
import json, statistics, sys, time
from imagefind.models.session import OnnxGraph
import numpy as np
ids = np.full((1, 13), 100, np.int32)
ids[0, -1] = 49407
out = {}
for name, quick in (("server (optimised, weights prepacked)", False),
                    ("CLI query (quick start)", True)):
    loads, firsts, runs = [], [], []
    for _ in range(3):
        graph = OnnxGraph(__import__("pathlib").Path(sys.argv[1]), "text", quick_start=quick)
        t = time.perf_counter(); graph.session; loads.append(time.perf_counter() - t)
        t = time.perf_counter(); graph.run(ids); firsts.append(time.perf_counter() - t)
        for _ in range(5):
            t = time.perf_counter(); graph.run(ids); runs.append(time.perf_counter() - t)
    out[name] = {"load_s": round(statistics.median(loads), 3),
                 "first_query_ms": round(statistics.median(firsts) * 1000, 1),
                 "query_ms": round(statistics.median(runs) * 1000, 1)}
print(json.dumps(out))
"""


def session_variants(text_onnx: Path, env: dict[str, str]) -> dict[str, Any]:
    """Load and 13-token query time of the text graph loaded as the server loads it and as a
    one-shot CLI query does (no graph optimisation, no weight prepacking)."""
    _, proc = _wall([sys.executable, "-c", _SESSIONS, str(text_onnx)], env)
    if proc.returncode != 0:
        return {"error": proc.stderr[-1000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_library(label: str, library: Path, runs: int, env: dict[str, str], log: Log):
    cmd = _command(library)
    warm_s, proc = _wall(cmd, env)  # builds and caches the index (and any int8 copy)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    hits = json.loads(proc.stdout)
    times = []
    for _ in range(runs):
        wall, proc = _wall(cmd, env)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
        times.append(wall)
    as_is = []  # the environment as it is here: no bytecode cache for imagefind
    for _ in range(3):
        wall, proc = _wall(cmd, _env(bytecode=False))
        as_is.append(wall)
    meta_file = library / "index.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    row = {
        "library": label,
        "images": LIBRARY_SIZE,
        "index_kind": meta.get("kind"),
        "first_query_s": round(warm_s, 3),
        "runs": runs,
        "cold_s_median": round(statistics.median(times), 3),
        "cold_s_best": round(min(times), 3),
        "cold_s_all": [round(t, 3) for t in times],
        "cold_s_median_without_bytecode_cache": round(statistics.median(as_is), 3),
        "hits": len(hits.get("hits", hits) if isinstance(hits, dict) else hits),
        "stages_s": stages(library, env),
        "imports": import_offenders(library, env),
    }
    log(
        f"  {label}: cold query median {row['cold_s_median']:.2f} s (best "
        f"{row['cold_s_best']:.2f}, first {warm_s:.1f} s); stages {row['stages_s']}"
    )
    return row


def run(quick: bool, *, log: Log = print) -> dict[str, Any]:
    env = _env()
    os.environ["IMAGEFIND_CACHE"] = env["IMAGEFIND_CACHE"]  # the int8 copy lands there too
    env_note = (
        "bytecode cached under .cache/bench-data/pycache (PYTHONDONTWRITEBYTECODE unset); "
        "page cache warm; index cached on disk by the first query"
    )
    from imagefind.models import load_model

    fp32_dir, _ = b32_model_dirs(log=log)
    fp32 = load_model(str(fp32_dir))
    int8 = load_model(str(fp32_dir), precision="int8")  # quantised once into the cache
    libraries = {
        "fp32": vector_library(LIBRARY_SIZE, fp32.name, fp32.fingerprint(), log=log),
        "int8": vector_library(LIBRARY_SIZE, int8.name, int8.fingerprint(), log=log),
    }
    runs = 5 if quick else 9
    baseline = {}
    for name, code in (("python -c pass", "pass"), ("import numpy", "import numpy")):
        walls = [_wall([sys.executable, "-c", code], env)[0] for _ in range(3)]
        baseline[name] = round(statistics.median(walls), 3)
    rows = [bench_library(k, lib, runs, env, log) for k, lib in libraries.items()]
    variants = {
        "fp32": session_variants(fp32.dir.textual_onnx, env),
        "int8": session_variants(int8.dir.textual_onnx, env),
    }
    log(f"  text session variants: {variants}")
    return {
        "query": QUERY,
        "command": "imagefind search QUERY --library L --json",
        "environment": env_note,
        "interpreter_s": baseline,
        "libraries": rows,
        "text_session_variants": variants,
    }


def main(argv: list[str] | None = None) -> int:
    return run_part("python -m benchmarks.cli_query", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
