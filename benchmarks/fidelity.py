"""Fidelity figures for the closing notes: our ONNX path against transformers on the same
random weights (the tests assert the bounds; this prints the measured values).

Run: ``.venv/bin/python -m benchmarks.fidelity``
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    import torch
    from transformers import CLIPModel, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from imagefind.models import load_model
    from imagefind.models.export import export_clip
    from imagefind.models.quantize import quantize_model
    from tests.modelkit import random_checkpoint
    from tests.synth import natural_image
    from tests.test_models_fidelity import SIZES, TEXTS

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return float((a * b).sum(axis=1).min())

    def features(out: object) -> np.ndarray:
        return (out if torch.is_tensor(out) else out.pooler_output).numpy()  # type: ignore[union-attr]

    root = Path(tempfile.mkdtemp(prefix="fidelity-"))
    try:
        ckpt = random_checkpoint(root / "ckpt")
        fp32 = load_model(str(export_clip(ckpt, root / "fp32")))
        int8 = load_model(str(quantize_model(root / "fp32", root / "int8")))
        fixed = load_model(str(export_clip(ckpt, root / "fixed", fixed_batch=True)))
        ref = CLIPModel.from_pretrained(ckpt).eval()
        tokenizer = CLIPTokenizer.from_pretrained(ckpt)
        processor = CLIPImageProcessorPil.from_pretrained(ckpt)
        images = [natural_image(w, h, seed=i) for i, (w, h) in enumerate(SIZES)]
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        ids = tokenizer(
            TEXTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
        )["input_ids"]
        with torch.no_grad():
            ref_images = features(ref.get_image_features(pixel_values=pixels))
            ref_texts = features(ref.get_text_features(input_ids=ids))
        ours_images, ours_texts = fp32.encode_images(images), fp32.encode_texts(TEXTS)
        ours_pixels = np.stack([fp32.preprocess(im) for im in images])
        print(
            f"images vs transformers CLIPModel: min cosine {cos(ours_images, ref_images):.6f}"
            f" over {len(images)} images"
        )
        print(
            f"texts vs transformers CLIPModel: min cosine {cos(ours_texts, ref_texts):.6f}"
            f" over {len(TEXTS)} texts"
        )
        print(
            f"int8 vs fp32: min cosine images {cos(int8.encode_images(images), ours_images):.5f}"
            f", texts {cos(int8.encode_texts(TEXTS), ours_texts):.5f}"
        )
        print(
            "fixed-batch-1 vs dynamic export: max abs diff images "
            f"{np.abs(fixed.encode_images(images) - ours_images).max():.2e}, texts "
            f"{np.abs(fixed.encode_texts(TEXTS) - ours_texts).max():.2e}"
        )
        print(
            "preprocessing vs CLIPImageProcessor: max abs diff "
            f"{np.abs(ours_pixels - pixels.numpy()).max():.2e}"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
