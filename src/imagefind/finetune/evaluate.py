"""Held-out retrieval: recall@1/5/10 for image→text and text→image.

Captions repeat in real data (a class template gives every image of a class the same
text), so a retrieved item counts as correct when its caption equals the query's: a text
query "a red circle" is answered right by any red circle, and the texts an image is ranked
against are the distinct captions. Where every caption is unique this is the usual
per-pair recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

KS = (1, 5, 10)


def recall_at_k(
    image_emb: np.ndarray, captions: Sequence[str], embed_texts: Any, ks: Sequence[int] = KS
) -> dict[str, Any]:
    """Recall of the pairs (image_emb[i], captions[i]); ``embed_texts(list[str])`` gives
    normalised text vectors. Returns {"image_to_text": {"R@1": ...}, "text_to_image": ...}."""
    unique = sorted(set(captions))
    if len(captions) == 0:
        return {"pairs": 0, "captions": 0, "image_to_text": {}, "text_to_image": {}}
    label = np.asarray([unique.index(c) for c in captions])
    text_emb = np.asarray(embed_texts(unique), dtype=np.float32)
    image_emb = np.asarray(image_emb, dtype=np.float32)
    sims = image_emb @ text_emb.T  # [pairs, distinct captions]
    # Stable sorts: equal scores rank in a fixed order, so reruns give equal numbers.
    text_rank = np.argsort(-sims, axis=1, kind="stable")  # texts per image
    image_rank = np.argsort(-sims.T, axis=1, kind="stable")  # images per distinct caption
    i2t, t2i = {}, {}
    for k in ks:
        i2t[f"R@{k}"] = float(np.mean([label[i] in text_rank[i, :k] for i in range(len(label))]))
        hit = [bool(np.any(label[image_rank[u, :k]] == u)) for u in range(len(unique))]
        # One query per pair (frequent captions weigh as often as they occur).
        t2i[f"R@{k}"] = float(np.mean([hit[u] for u in label]))
    return {
        "pairs": len(captions),
        "captions": len(unique),
        "image_to_text": i2t,
        "text_to_image": t2i,
    }


def evaluate(
    model: Any,
    batches: Any,
    indices: Sequence[int],
    captions: Sequence[str],
    tokenize: Any,
    *,
    batch_size: int = 32,
    device: Any = "cpu",
) -> dict[str, Any]:
    """Recall of the trained model on the held-out pairs ``indices`` (eval mode, no grad)."""
    import torch

    from imagefind.finetune.model import image_features, text_features

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            chunks = [list(indices[i : i + batch_size]) for i in range(0, len(indices), batch_size)]
            vectors = [
                torch.nn.functional.normalize(
                    image_features(model, torch.from_numpy(px).to(device)).float(), dim=-1
                ).cpu()
                for _, px in batches.iterate(chunks)
            ]
            image_emb = torch.cat(vectors).numpy() if vectors else np.zeros((0, 1), np.float32)

            def embed_texts(texts: list[str]) -> np.ndarray:
                out = []
                for i in range(0, len(texts), batch_size):
                    ids = tokenize(texts[i : i + batch_size]).to(device)
                    feats = text_features(model, ids).float()
                    out.append(torch.nn.functional.normalize(feats, dim=-1).cpu())
                return torch.cat(out).numpy()

            return recall_at_k(image_emb, [captions[i] for i in indices], embed_texts)
    finally:
        model.train(was_training)
