"""Fine-tuning a transformers CLIP checkpoint on a user's own image-caption pairs.

The parts, one concept each: ``data`` (reading the three DATA forms, checking every row,
batching pixels the way inference sees them), ``loss`` (CLIP's symmetric contrastive loss
and its clamped temperature), ``evaluate`` (recall@K before and after), ``train`` (the loop,
checkpoints, export). Only ``data`` is importable without torch: torch is the optional
``export`` extra, so ``import imagefind`` and the CLI must work without it.
"""

from __future__ import annotations

from typing import Any

from imagefind.errors import ImagefindError

DEFAULT_BASE = "openai/clip-vit-base-patch32"  # the seed's model
# Here rather than in ``data`` so the CLI can name them without importing the image stack.
FORMS: tuple[str, ...] = ("auto", "captions", "classes", "csv", "jsonl")
DEFAULT_TEMPLATE = "a photo of a {class}"


class FinetuneError(ImagefindError):
    """Fine-tuning cannot start or go on as asked; the message says what to change."""


def require_torch() -> Any:
    """torch, or an error that says which extra to install (it is large and optional)."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise FinetuneError(
            "fine-tuning needs the 'export' extra (torch and transformers): "
            "pip install 'imagefind[export]'"
        ) from exc
    return torch


__all__ = ["DEFAULT_BASE", "FinetuneError", "require_torch"]
