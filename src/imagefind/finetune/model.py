"""The model being fine-tuned: loading a base checkpoint, choosing what trains, the encoders.

The encoders here compute exactly what the exported ONNX graphs compute (projected
features, no attention mask, pooled at the first end-of-text token), so the recall measured
in training is the recall the exported model gives.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imagefind.finetune import DEFAULT_BASE, FinetuneError
from imagefind.finetune.data import preprocess_config
from imagefind.models.checkpoint import PROCESSOR_FILES, processor_settings
from imagefind.models.layout import PreprocessConfig

__all__ = ["DEFAULT_BASE", "Base", "load_base"]


@dataclass
class Base:
    """A loaded base checkpoint: the model, its tokenizer and its preprocessing."""

    source: str
    model: Any  # transformers.CLIPModel
    tokenizer: Any
    processor: dict[str, Any]
    preprocess: PreprocessConfig

    @property
    def context_length(self) -> int:
        return int(self.model.config.text_config.max_position_embeddings)


def resolve_base(base: str | Path) -> str:
    """A local folder, a hub id, or the output folder of an earlier fine-tune (whose
    transformers checkpoint sits in ``checkpoint/``), so a fine-tune can be fine-tuned again."""
    local = Path(str(base)).expanduser()
    if local.is_dir() and (local / "checkpoint" / "config.json").is_file():
        return str(local / "checkpoint")
    return str(local) if local.is_dir() else str(base)


def load_base(base: str | Path) -> Base:
    """Load model, tokenizer and image-processor settings from a hub id or folder."""
    from transformers import AutoTokenizer, CLIPModel, CLIPVisionConfig

    source = resolve_base(base)
    try:
        model = CLIPModel.from_pretrained(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
        processor = processor_settings(source)
    except (OSError, ValueError) as exc:
        raise FinetuneError(
            f"{base}: cannot load a transformers CLIP checkpoint with a tokenizer and "
            f"{' or '.join(PROCESSOR_FILES)} ({exc})"
        ) from exc
    vision = model.config.vision_config
    if not isinstance(vision, CLIPVisionConfig) or not isinstance(vision.image_size, int):
        raise FinetuneError(f"{base}: not a CLIP checkpoint with a square image size")
    size = vision.image_size
    return Base(source, model, tokenizer, processor, preprocess_config(processor, size))


def tokenize(base: Base, captions: list[str]) -> torch.Tensor:
    """Token ids [N, 77]: the checkpoint's tokenizer, padded to the context, truncated."""
    ids: torch.Tensor = base.tokenizer(
        captions,
        padding="max_length",
        max_length=base.context_length,
        truncation=True,
        return_tensors="pt",
    )["input_ids"]
    return ids.long()


def trim(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Drop the padding columns after the longest caption's end-of-text token. CLIP's
    causal mask and EOT pooling make the result identical, and a 5-word caption then costs
    8 positions instead of 77."""
    is_eos = ids == eos_id
    ends = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), ids.shape[1] - 1)
    return ids[:, : int(ends.max()) + 1]


def _pooled(out: Any) -> torch.Tensor:
    # transformers 5 returns a model output from get_*_features, 4.x a tensor.
    return out if torch.is_tensor(out) else out.pooler_output


def image_features(model: Any, pixels: torch.Tensor) -> torch.Tensor:
    """Projected image features (not normalised)."""
    return _pooled(model.get_image_features(pixel_values=pixels))


def text_features(model: Any, ids: torch.Tensor) -> torch.Tensor:
    """Projected text features (not normalised), from padded ids trimmed first."""
    eos = int(model.config.text_config.eos_token_id)
    return _pooled(model.get_text_features(input_ids=trim(ids, eos)))


TRAIN_CHOICES = "all, projections, or last-N (the last N blocks of each tower)"


def parse_train(choice: str) -> tuple[str, int]:
    """'all' / 'projections' / 'last-N' → (kind, N)."""
    choice = choice.strip().lower()
    if choice in ("all", "projections"):
        return choice, 0
    match = re.fullmatch(r"last-?(\d+)", choice)
    if match and int(match.group(1)) > 0:
        return "last", int(match.group(1))
    raise FinetuneError(f"--train {choice!r}: choose {TRAIN_CHOICES}")


def select_trainable(model: Any, choice: str) -> list[str]:
    """Freeze everything but the chosen parts; returns the names of what trains. The
    temperature always trains. Projections only suits a few hundred pairs, where training
    whole towers would overfit."""
    kind, n = parse_train(choice)
    vision, text = model.vision_model, model.text_model
    if kind == "last":
        deepest = min(len(vision.encoder.layers), len(text.encoder.layers))
        if n > deepest:
            raise FinetuneError(f"--train last-{n}: the model has only {deepest} blocks")
    for p in model.parameters():
        p.requires_grad_(kind == "all")
    heads: list[nn.Module] = [model.visual_projection, model.text_projection]
    if kind == "last":
        heads += [vision.post_layernorm, text.final_layer_norm]
        heads += list(vision.encoder.layers[-n:]) + list(text.encoder.layers[-n:])
    for module in heads:
        for p in module.parameters():
            p.requires_grad_(True)
    model.logit_scale.requires_grad_(True)
    return [name for name, p in model.named_parameters() if p.requires_grad]


def save_checkpoint(base: Base, model: Any, out: Path) -> Path:
    """A transformers checkpoint (model, tokenizer, preprocessor_config.json) that
    ``--base`` and ``models export`` both accept."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    base.tokenizer.save_pretrained(out)
    (out / PROCESSOR_FILES[0]).write_text(json.dumps(base.processor, indent=2))
    return out
