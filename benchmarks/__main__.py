"""The benchmark suite, one command: indexing, search, cold CLI query, HTTP query.

    .venv/bin/python -m benchmarks [--quick] [--only indexing,search,cli,http]

Prints tables, writes ``benchmarks/results/latest.json`` and ``performance.png``. Not a
test: nothing fails on a slow number; the targets are checked and reported. Inputs are
generated once into ``.cache/bench-data/`` and reused (the first run pays for them).

The machine may be shared: every part records the load average before and after it and how
many cores this process kept busy, and each ratio is measured within one run, side by side.
``--only`` reruns some parts and keeps the others from the existing results file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import cli_query, git_commit, http_query, indexing, search
from benchmarks.data import ROOT
from benchmarks.encoders import load_average, machine

RESULTS = Path(__file__).resolve().parent / "results"
PARTS: dict[str, Callable[..., dict[str, Any]]] = {
    "indexing": indexing.run,
    "search": search.run,
    "cli": cli_query.run,
    "http": http_query.run,
}


def _log(message: str) -> None:
    print(message, flush=True)


def run_part(name: str, quick: bool) -> dict[str, Any]:
    _log(f"\n== {name} ==")
    started = time.perf_counter()
    entry: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": load_average(),
    }
    try:
        entry["result"] = PARTS[name](quick, log=_log)
    except Exception as exc:  # one broken part must not cost the others
        traceback.print_exc()
        entry["error"] = f"{type(exc).__name__}: {exc}"
    entry["load_after"] = load_average()
    entry["seconds"] = round(time.perf_counter() - started, 1)
    _log(
        f"({name}: {entry['seconds']:.0f} s, load {entry['load_before']} -> {entry['load_after']})"
    )
    return entry


# --- targets --------------------------------------------------------------------------------


def _get(parts: dict[str, Any], name: str) -> Any:
    entry = parts.get(name) or {}
    return entry.get("result")


def targets(parts: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue, with the number reached (None when not measured)."""
    out: list[dict[str, Any]] = []

    def add(what: str, goal: str, value: float | None, ok: bool | None, unit: str = "") -> None:
        out.append({"target": what, "goal": goal, "reached": value, "unit": unit, "met": ok})

    idx = _get(parts, "indexing")
    corpora = {c["corpus"]: c for c in idx["corpora"]} if idx else {}
    for p in ("fp32", "int8"):
        row = corpora.get("jpeg-12mp")
        v = row[p]["ratio"] if row else None
        add(f"indexing 12 MP JPEG, {p}: measured / bound", ">= 0.9", v, v is not None and v >= 0.9)
    v = idx["model_alone"]["int8_over_fp32"] if idx else None
    add("int8 / fp32 model-only throughput", ">= 2.5x", v, v is not None and v >= 2.5, "x")
    row = corpora.get("jpeg-1.6mp")
    v = row["int8_over_fp32_end_to_end"] if row else None
    add("int8 / fp32 end to end, 1.6 MP JPEG", ">= 2x", v, v is not None and v >= 2, "x")
    row = corpora.get("jpeg-12mp")
    v = row["fp32"]["speedup_vs_naive"] if row else None
    add("speedup vs naive loop, 12 MP JPEG, fp32", ">= 3x", v, v is not None and v >= 3, "x")

    srch = _get(parts, "search")
    sizes = {r["n"]: r for r in srch["sizes"]} if srch else {}
    r = sizes.get(100_000)
    v = r["exact"]["ms_median"] if r else None
    add("100K exact (faiss flat fp32), ms/query", "<= 10 ms", v, v is not None and v <= 10, "ms")
    v = r["exact_fp16"]["ms_median"] if r and "exact_fp16" in r else None
    add("100K exact (flat fp16), ms/query", "<= 10 ms", v, v is not None and v <= 10, "ms")
    if r:
        v = r["ann"]["ms_median"]
        add(f"100K as built ({r['ann_kind']}), ms/query", "<= 10 ms", v, v <= 10, "ms")
    r = sizes.get(1_000_000)
    v = r["ann"]["ms_median"] if r else None
    ok = r is not None and v <= 2 and r["ann_recall_at_10"] >= 0.95
    add("1M ANN ms/query (recall@10 >= 0.95)", "<= 2 ms", v, ok if r else None, "ms")
    if r:
        v = r["ann_recall_at_10"]
        add("1M ANN recall@10", ">= 0.95", v, v >= 0.95)

    cli = _get(parts, "cli")
    for row in cli["libraries"] if cli else []:
        v = row["cold_s_median"]
        add(f"cold CLI query at 100K, {row['library']}", "<= 0.6 s", v, v <= 0.6, "s")
    web = _get(parts, "http")
    for row in web["libraries"] if web else []:
        for case, what in (("distinct", "distinct queries"), ("repeated", "repeated queries")):
            v = row[case]["p50_ms"]
            add(
                f"HTTP text query p50, 8 clients, {what}, {row['library']}",
                "<= 30 ms",
                v,
                v <= 30,
                "ms",
            )
    return out


# --- tables ---------------------------------------------------------------------------------


def print_tables(result: dict[str, Any]) -> None:
    """The same tables as the README's (``benchmarks.report``), rendered for the terminal."""
    from rich.console import Console
    from rich.markdown import Markdown

    from benchmarks.report import render

    console = Console(width=140)
    console.print(Markdown(render(result)))
    for name, entry in result["parts"].items():
        if "error" in entry:
            console.print(f"[red]{name} failed:[/] {entry['error']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer images (48/48/24), queries and repeats: under 10 minutes",
    )
    parser.add_argument("--only", default="", help=f"comma-separated parts of {','.join(PARTS)}")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    chosen = [p.strip() for p in args.only.split(",") if p.strip()] or list(PARTS)
    unknown = set(chosen) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")

    # Model copies made on the way (the int8 copy) stay in the benchmark cache.
    os.environ.setdefault("IMAGEFIND_CACHE", str(ROOT / ".cache" / "bench-data" / "model-cache"))
    previous: dict[str, Any] = {}
    if args.only and args.out.is_file():
        previous = json.loads(args.out.read_text()).get("parts", {})
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "imagefind",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "quick": args.quick,
        "machine": machine(),
        "model": "random-weight CLIP with ViT-B/32 shapes (benchmarks.modelcache)",
        "load_before": load_average(),
        "parts": dict(previous),
    }
    for name in chosen:
        result["parts"][name] = run_part(name, args.quick)
        result["parts"][name]["quick"] = args.quick
        result["targets"] = targets(result["parts"])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")  # after each part
    result["load_after"] = load_average()
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["targets"] = targets(result["parts"])
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print_tables(result)
    if not args.no_plot:
        from benchmarks.plot import plot

        png = plot(result, args.out.with_name("performance.png"))
        print(f"wrote {png}")
    print(f"wrote {args.out} ({result['seconds']:.0f} s)")
    return 1 if any("error" in e for e in result["parts"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
