"""CLIP's contrastive loss: symmetric cross-entropy over the batch, learnable temperature.

Row i of the image batch and row i of the text batch are a pair; every other row in the
batch is a negative. The loss is the mean of the image→text and text→image cross-entropies,
as in the CLIP paper. The temperature is learnt as ``logit_scale = log(1/T)``, starting at
T = 0.07, and ``exp(logit_scale)`` is held at or below 100 (T ≥ 0.01) as CLIP does, so the
logits cannot grow until the softmax saturates.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

INIT_TEMPERATURE = 0.07
MAX_LOGIT_SCALE = 100.0
LOG_MAX_LOGIT_SCALE = math.log(MAX_LOGIT_SCALE)


def init_logit_scale(temperature: float = INIT_TEMPERATURE) -> float:
    """The log-space value a learnable temperature starts from (log(1/0.07) ≈ 2.659)."""
    if not temperature > 0.0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    return min(math.log(1.0 / temperature), LOG_MAX_LOGIT_SCALE)


def scale(logit_scale: torch.Tensor) -> torch.Tensor:
    """exp(logit_scale), clamped to ≤ 100 in the forward pass; gradients still flow while
    under the bound."""
    return logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)


def clamp_logit_scale_(logit_scale: nn.Parameter) -> None:
    """Clamp the parameter itself after an optimiser step (CLIP's way), so it cannot drift
    far past the bound where its gradient is zero and never come back."""
    with torch.no_grad():
        logit_scale.clamp_(0.0, LOG_MAX_LOGIT_SCALE)


def clip_logits(
    image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Image-to-text logits [N_img, N_txt]: scaled cosine similarities (inputs normalised
    here, so callers can pass raw projections)."""
    image_emb = nn.functional.normalize(image_emb.float(), dim=-1)
    text_emb = nn.functional.normalize(text_emb.float(), dim=-1)
    return scale(logit_scale.float()) * image_emb @ text_emb.T


def clip_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """(CE(image→text) + CE(text→image)) / 2 with the diagonal as the targets."""
    if image_emb.shape[0] != text_emb.shape[0]:
        raise ValueError(
            f"images and texts must pair up: {image_emb.shape[0]} vs {text_emb.shape[0]}"
        )
    logits = clip_logits(image_emb, text_emb, logit_scale)
    targets = torch.arange(logits.shape[0], device=logits.device)
    i2t = nn.functional.cross_entropy(logits, targets)
    t2i = nn.functional.cross_entropy(logits.T, targets)
    return (i2t + t2i) / 2


def temperature(logit_scale: Any) -> float:
    """The temperature T = 1 / exp(logit_scale), clamped as in the loss."""
    return 1.0 / float(scale(torch.as_tensor(logit_scale).detach().float()))
