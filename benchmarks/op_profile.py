"""Where the image encoder's time goes, by operator type, fp32 against int8: onnxruntime's own
profiler on the ViT-B/32-size benchmark model, batch 16, a few runs after a warm-up.

It says what bounds int8's speed-up: only the matrix products get faster (int8 GEMM on this
CPU's instructions), the rest of the graph (convolution, layer norms, GELU, transposes) costs
the same in both.

Run: ``.venv/bin/python -m benchmarks.op_profile``
"""

from __future__ import annotations

import collections
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import run_part

RUNS = 4
BATCH = 16
MATMULS = {"MatMul", "FusedMatMul", "Gemm", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}


def profile(model: Path, runs: int = RUNS) -> dict[str, float]:
    """Milliseconds per run (of BATCH images) spent in each operator type; the first run
    (a warm-up) is left out."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.profile_file_prefix = str(Path(os.environ.get("TMPDIR", "/tmp")) / "imagefind-ops")
    session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(0).normal(size=(BATCH, 3, 224, 224)).astype(np.float32)
    for _ in range(runs + 1):
        session.run(None, {"image": pixels})
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[
        1:
    ]
    by_op: collections.Counter[str] = collections.Counter()
    for e in events:
        kernel = e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
        if kernel and any(start <= e["ts"] <= end for start, end in windows):
            by_op[e["args"]["op_name"]] += e["dur"] / 1000
    return {op: round(ms / len(windows), 2) for op, ms in by_op.most_common()}


def run(quick: bool) -> dict[str, Any]:
    from benchmarks.modelcache import b32_model_dirs

    result: dict[str, Any] = {"batch": BATCH, "runs": 2 if quick else RUNS}
    split = {}
    for label, folder in zip(("fp32", "int8"), b32_model_dirs(), strict=True):
        ops = profile(Path(folder) / "visual" / "model.onnx", result["runs"])
        matmul = sum(ms for op, ms in ops.items() if op in MATMULS)
        split[label] = {
            "matmul_ms": round(matmul, 1),
            "rest_ms": round(sum(ops.values()) - matmul, 1),
        }
        result[label] = ops
    result["split_ms_per_batch"] = split
    result["matmul_speedup"] = round(split["fp32"]["matmul_ms"] / split["int8"]["matmul_ms"], 2)
    total = {k: v["matmul_ms"] + v["rest_ms"] for k, v in split.items()}
    result["model_speedup"] = round(total["fp32"] / total["int8"], 2)
    result["speedup_if_int8_matmul_were_free"] = round(total["fp32"] / split["int8"]["rest_ms"], 2)
    return result


def main(argv: list[str] | None = None) -> int:
    return run_part("python -m benchmarks.op_profile", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
