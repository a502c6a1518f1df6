"""Baseline for the encoder figures: a bare onnxruntime session on the same graphs, batch 16,
beside imagefind's own encoder, in the same run (the machine's speed drifts between runs).

Run: ``.venv/bin/python -m benchmarks.plain_ort``
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

SECONDS = 6.0
BATCH = 16


def _rate(run: object) -> float:
    run()  # type: ignore[operator]
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < SECONDS:
        run()  # type: ignore[operator]
        done += BATCH
    return done / (time.perf_counter() - start)


def main() -> None:
    import onnxruntime as ort

    from benchmarks.modelcache import b32_model_dirs
    from imagefind.models import load_model

    pixels = np.random.default_rng(0).normal(size=(BATCH, 3, 224, 224)).astype(np.float32)
    for label, folder in zip(("fp32", "int8"), b32_model_dirs(), strict=True):
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        bare = ort.InferenceSession(
            str(Path(folder) / "visual" / "model.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        ours = load_model(str(folder))
        plain = _rate(lambda b=bare: b.run(None, {"image": pixels}))
        mine = _rate(lambda m=ours: m.encode_pixels(pixels))
        print(
            f"{label}: plain onnxruntime {plain:.1f} img/s, imagefind encoder {mine:.1f} img/s "
            f"(ratio {mine / plain:.2f}) at batch {BATCH}"
        )


if __name__ == "__main__":
    main()
