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
import json, sys, time
t = [time.perf_counter()]
marks = {}
def mark(name):
    now = time.perf_counter(); marks[name] = round(now - t[0], 4); t[0] = now
import imagefind.cli  # what the command imports before it runs
mark("import imagefind.cli")
from imagefind.library import Library
lib = Library.open(sys.argv[1]); mark("Library.open")
model = lib.model; mark("load_model + fingerprint check")
model.tokenizer; mark("tokenizer load")
model.textual.session; mark("text session load")
model.encode_texts([sys.argv[2]]); mark("first text encode")
model.encode_texts([sys.argv[2] + " "]); mark("second text encode")
import numpy as np
probe = np.ones((1, model.dim), np.float32) / np.sqrt(model.dim)
store = lib.catalog if hasattr(lib.catalog, "search") else lib.vector_index
store.search(probe, 10); mark("vector index load + one top-10")
lib.search(sys.argv[2] + "!"); mark("search (encode + top-10 + rows)")
lib.close(); mark("close")
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
import numpy as np
import onnxruntime as ort
inline, external = sys.argv[1], sys.argv[2]
ids = np.full((1, 13), 100, np.int32)
ids[0, -1] = 49407
def session(path, prepack):
    o = ort.SessionOptions()
    o.log_severity_level = 3
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not prepack:
        o.add_session_config_entry("session.disable_prepacking", "1")
    t = time.perf_counter()
    s = ort.InferenceSession(path, sess_options=o, providers=["CPUExecutionProvider"])
    return s, time.perf_counter() - t
out = {}
for name, path, prepack in (("weights inline (as shipped)", inline, True),
                            ("external data file", external, True),
                            ("external data, no prepacking", external, False)):
    loads, runs = [], []
    for _ in range(3):
        s, load = session(path, prepack)
        loads.append(load)
        feed = {s.get_inputs()[0].name: ids}
        t = time.perf_counter(); s.run(None, feed); first = time.perf_counter() - t
        for _ in range(5):
            t = time.perf_counter(); s.run(None, feed); runs.append(time.perf_counter() - t)
    out[name] = {"load_s": round(statistics.median(loads), 3),
                 "query_ms": round(statistics.median(runs) * 1000, 1)}
print(json.dumps(out))
"""


def session_variants(text_onnx: Path, env: dict[str, str]) -> dict[str, Any] | None:
    """Load time of the text graph as shipped, and with its weights in an external data
    file (which onnxruntime maps instead of parsing), with and without weight prepacking;
    and the 13-token query time of each. Needs the ``onnx`` package (dev extra)."""
    try:
        import onnx
    except ImportError:
        return None
    target = DATA / "text-external" / text_onnx.parent.parent.name / "model.onnx"
    if not target.is_file() or target.stat().st_mtime < text_onnx.stat().st_mtime:
        target.parent.mkdir(parents=True, exist_ok=True)
        model = onnx.load(str(text_onnx))
        onnx.save_model(
            model,
            str(target),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="model.onnx_data",
            size_threshold=1024,
        )
    _, proc = _wall([sys.executable, "-c", _SESSIONS, str(text_onnx), str(target)], env)
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
