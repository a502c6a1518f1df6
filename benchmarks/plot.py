"""``performance.png`` from a results file: indexing against its bound, search by size,
query latency against the targets.

    python -m benchmarks.plot [benchmarks/results/latest.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _result(parts: dict[str, Any], name: str) -> Any:
    return (parts.get(name) or {}).get("result")


def plot(result: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = result["parts"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    quick = " (quick)" if result.get("quick") else ""
    fig.suptitle(
        f"imagefind on {result['machine']['cpu_count']} CPUs ({result['machine']['cpu']}), "
        f"random-weight ViT-B/32{quick}; load average {result['load_before']} -> "
        f"{result.get('load_after')}",
        fontsize=10,
    )

    ax = axes[0]
    idx = _result(parts, "indexing")
    if idx:
        labels, measured, bound, naive = [], [], [], []
        for c in idx["corpora"]:
            for p in ("fp32", "int8"):
                labels.append(f"{c['label']}\n{p}")
                measured.append(c[p]["measured"]["img_per_s"])
                bound.append(c[p]["bound_img_per_s"])
                naive.append(c["naive_fp32"]["img_per_s"])
        x = range(len(labels))
        w = 0.28
        ax.bar([i - w for i in x], naive, w, label="naive loop (fp32)", color="#bbbbbb")
        ax.bar(list(x), measured, w, label="Library.index", color="#2b7bba")
        ax.bar([i + w for i in x], bound, w, label="bound", color="#f0a030")
        for i, (m, b) in enumerate(zip(measured, bound, strict=True)):
            ax.text(i, m, f"{m / b:.2f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(x), labels, fontsize=7)
        ax.set_ylabel("images / s")
        ax.set_title("Indexing, files to catalog (label: measured / bound)", fontsize=9)
        ax.legend(fontsize=7)

    ax = axes[1]
    srch = _result(parts, "search")
    if srch:
        rows = srch["sizes"]
        n = [r["n"] for r in rows]
        ax.loglog(n, [r["exact"]["ms_median"] for r in rows], "o-", label="exact (flat fp32)")
        if all("exact_fp16" in r for r in rows):
            ax.loglog(
                n, [r["exact_fp16"]["ms_median"] for r in rows], "^-", label="exact (flat fp16)"
            )
        ax.loglog(n, [r["ann"]["ms_median"] for r in rows], "s-", label="as built (build_for)")
        for r in rows:
            ax.annotate(
                f"{r['ann_kind']}\nrecall {r['ann_recall_at_10']:.3f}",
                (r["n"], r["ann"]["ms_median"]),
                textcoords="offset points",
                xytext=(-60, 8) if r["n"] == rows[-1]["n"] else (4, -22),
                fontsize=7,
            )
        ax.axhline(10, color="grey", ls=":", lw=1)
        ax.axhline(2, color="grey", ls="--", lw=1)
        ax.text(n[0], 10, " 100K exact target 10 ms", fontsize=7, va="bottom")
        ax.text(n[0], 2, " 1M ANN target 2 ms", fontsize=7, va="bottom")
        ax.set_xlabel("vectors (512-d, clustered)")
        ax.set_ylabel("ms per query (median, top-10)")
        ax.set_title("Search latency, one query at a time", fontsize=9)
        ax.legend(fontsize=7)

    ax = axes[2]
    bars: list[tuple[str, float, float]] = []  # label, value ms, target ms
    cli = _result(parts, "cli")
    for r in cli["libraries"] if cli else []:
        bars.append((f"cold CLI\n{r['library']}", r["cold_s_median"] * 1000, 600))
    web = _result(parts, "http")
    for r in web["libraries"] if web else []:
        bars.append((f"HTTP 1 client\n{r['library']}", r["sequential"]["p50_ms"], 30))
        bars.append((f"HTTP 8 clients\n{r['library']} p50", r["distinct"]["p50_ms"], 30))
        bars.append((f"HTTP 8, cached\n{r['library']} p50", r["repeated"]["p50_ms"], 30))
    if bars:
        x = range(len(bars))
        colours = ["#3a9a4a" if v <= t else "#c0392b" for _, v, t in bars]
        ax.bar(list(x), [v for _, v, _ in bars], color=colours)
        ax.scatter(list(x), [t for _, _, t in bars], marker="_", s=400, color="black", zorder=3)
        ax.set_yscale("log")
        low = min(min(t for _, _, t in bars), min(v for _, v, _ in bars))
        ax.set_ylim(low / 2, max(v for _, v, _ in bars) * 1.6)
        for i, (_, v, _) in enumerate(bars):
            ax.text(i, v, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(x), [b[0] for b in bars], fontsize=6.5, rotation=35, ha="right")
        ax.set_ylabel("ms (log); black dash: target")
        ax.set_title("Query latency at 100K images (green: target met)", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    src = Path(args[0]) if args else RESULTS / "latest.json"
    print(plot(json.loads(src.read_text()), src.with_name("performance.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
