"""Markdown tables from a results file: the README's Performance section, and what
``python -m benchmarks`` prints at the end of a run (rendered by rich).

python -m benchmarks.report [benchmarks/results/latest.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _part(result: dict[str, Any], name: str) -> Any:
    return (result["parts"].get(name) or {}).get("result")


def _load(result: dict[str, Any], name: str) -> str:
    entry = result["parts"].get(name) or {}
    return f"load average {entry.get('load_before')} -> {entry.get('load_after')}"


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    out = [
        f"Run of {result['when']} (`--quick`: {result['quick']}), commit {result['commit']}, "
        f"{m['cpu']} with {m['cpu_count']} CPUs ({'/'.join(m['simd'])}), onnxruntime "
        f"{m['onnxruntime']}, {result['model']}. Load average {result['load_before']} -> "
        f"{result.get('load_after')} (the machine was shared with other work).",
    ]
    idx = _part(result, "indexing")
    if idx:
        ma = idx["model_alone"]
        out += [
            f"\n**Indexing**, files on disk to catalog ({_load(result, 'indexing')}). "
            f"Model alone, batch {ma['batch']}, alternating rounds: fp32 "
            f"{ma['fp32']['img_per_s']} img/s, int8 {ma['int8']['img_per_s']} img/s "
            f"(**{ma['int8_over_fp32']}x**); at batch 64: fp32 "
            f"{ma['fp32_batch64']['img_per_s']}, int8 {ma['int8_batch64']['img_per_s']} img/s.\n",
        ]
        rows = []
        for c in idx["corpora"]:
            for p in ("fp32", "int8"):
                r = c[p]
                rows.append(
                    [
                        f"{c['label']} x{c['images']}",
                        p,
                        f"{r['measured']['img_per_s']:.2f}",
                        f"{r['bound_img_per_s']:.2f}",
                        f"**{r['ratio']:.2f}**",
                        f"{r['t_model']['s_per_image'] * 1000:.0f}",
                        f"{c['t_decode']['s_per_image'] * 1000:.0f}",
                        f"{c['naive_fp32']['img_per_s']:.2f}",
                        f"{r['speedup_vs_naive']:.1f}x",
                        f"{r['measured']['cores_busy']:.2f}",
                        f"{r.get('cpu_overhead', '-')}",
                    ]
                )
        out.append(
            _table(
                [
                    "corpus",
                    "precision",
                    "img/s",
                    "bound",
                    "ratio",
                    "t_model ms",
                    "t_decode ms",
                    "naive img/s",
                    "vs naive",
                    "cores busy",
                    "CPU vs parts",
                ],
                rows,
            )
        )
    srch = _part(result, "search")
    if srch:
        out.append(
            f"\n**Search**, top-10 of one query at a time, {srch['data']['centres']}-centre "
            f"Gaussian mixture, {srch['data']['queries']} fresh queries "
            f"({_load(result, 'search')}).\n"
        )
        rows = [
            [
                f"{r['n']:,}",
                f"{r['exact']['ms_median']:.2f}",
                f"{r['exact_fp16']['ms_median']:.2f}" if "exact_fp16" in r else "-",
                r["ann_kind"]
                + (
                    f" (nlist {r['ann_nlist']}, nprobe {r['ann_nprobe']})"
                    if r["ann_nprobe"]
                    else ""
                ),
                f"{r['ann']['ms_median']:.2f}",
                f"{r['ann_recall_at_10']:.3f}",
                f"{r['exact_build_s']:.1f} / {r['ann_build_s']:.1f}",
                f"{r['exact_bytes'] / 1e6:.0f} / {r['ann_bytes'] / 1e6:.0f}",
            ]
            for r in srch["sizes"]
        ]
        out.append(
            _table(
                [
                    "vectors",
                    "exact fp32 ms",
                    "exact fp16 ms",
                    "as built (build_for)",
                    "as built ms",
                    "recall@10 (worse of image-/text-like)",
                    "build s exact / ANN",
                    "MB exact / ANN",
                ],
                rows,
            )
        )
        for r in srch["sizes"]:
            if r.get("ivf_sweep"):
                sweep = ", ".join(
                    f"{s['nprobe']}: {s['recall_at_10']:.3f}/{s.get('text_recall_at_10', 0):.3f}"
                    f" @ {s['ms_median']:.2f} ms"
                    for s in r["ivf_sweep"]
                )
                out.append(
                    f"\nIVF at {r['n']:,}, nprobe: recall@10 image-like/text-like queries @ ms"
                    f" — {sweep}."
                )
    cli = _part(result, "cli")
    if cli:
        out.append(f"\n**Cold CLI query** `{cli['command']}` ({_load(result, 'cli')}).\n")
        rows = []
        for r in cli["libraries"]:
            st = r["stages_s"]
            rows.append(
                [
                    r["library"],
                    f"**{r['cold_s_median']:.2f}**",
                    f"{r['cold_s_best']:.2f}",
                    f"{r.get('cold_s_median_without_bytecode_cache', '-')}",
                    " · ".join(f"{k} {v:.2f}" for k, v in st.items() if v >= 0.01),
                ]
            )
        out.append(
            _table(
                ["library", "median s", "best s", "no .pyc s", "stages in a fresh process (s)"],
                rows,
            )
        )
        imports = cli["libraries"][0].get("imports") or {}
        if imports.get("packages_self_ms"):
            top = ", ".join(f"{k} {v:.0f}" for k, v in list(imports["packages_self_ms"].items()))
            total = imports["total_ms"]
            out.append(f"\nImport time ({total:.0f} ms in all) by package, ms: {top}.")
        for precision, variants in (cli.get("text_session_variants") or {}).items():
            if variants and "error" not in variants:
                text = "; ".join(
                    f"{k}: load {v['load_s']:.2f} s, query {v['query_ms']:.0f} ms"
                    for k, v in variants.items()
                )
                out.append(f"\nText graph {precision}: {text}.")
    web = _part(result, "http")
    if web:
        out.append(
            f"\n**HTTP** `GET /api/search?q=...&k=10`, {web['clients']} client threads x "
            f"{web['queries_per_client']} queries ({_load(result, 'http')}).\n"
        )
        rows = []
        for r in web["libraries"]:
            d, h = r["distinct"], r["repeated"]
            rows.append(
                [
                    r["library"],
                    f"{r['sequential']['p50_ms']:.0f}",
                    f"**{d['p50_ms']:.0f}** / {d['p95_ms']:.0f}",
                    f"{d['throughput_qps']:.0f}",
                    f"{d.get('server_cores_busy', '-')}",
                    f"{h['p50_ms']:.0f} / {h['p95_ms']:.0f}",
                    f"{h['throughput_qps']:.0f}",
                    f"{h.get('server_cores_busy', '-')}",
                    f"{r['encoder_floor']['one_call_ms']:.0f}" if "encoder_floor" in r else "-",
                ]
            )
        out.append(
            _table(
                [
                    "library",
                    "1 client p50 ms",
                    "8 clients distinct p50 / p95 ms",
                    "q/s",
                    "server cores",
                    "repeated p50 / p95 ms",
                    "q/s",
                    "server cores",
                    "encoder alone, 8 distinct texts in one call, ms",
                ],
                rows,
            )
        )
    out.append("\n**Targets**\n")
    rows = []
    for t in result.get("targets", []):
        value = "-" if t["reached"] is None else f"{t['reached']}{t['unit']}"
        met = {True: "met", False: "**missed**", None: "-"}[t["met"]]
        rows.append([t["target"], t["goal"], value, met])
    out.append(_table(["target", "goal", "reached", ""], rows))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    src = Path(args[0]) if args else RESULTS / "latest.json"
    print(render(json.loads(src.read_text())), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
