"""CLIP's contrastive loss, its temperature clamp, and held-out recall, on hand-sized cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from imagefind.finetune.evaluate import recall_at_k  # noqa: E402
from imagefind.finetune.loss import (  # noqa: E402
    LOG_MAX_LOGIT_SCALE,
    clamp_logit_scale_,
    clip_loss,
    init_logit_scale,
    scale,
    temperature,
)


def _hand_loss(sims: list[list[float]], s: float) -> float:
    """Mean of row-wise and column-wise cross-entropy with the diagonal as targets."""
    n = len(sims)
    logits = [[s * v for v in row] for row in sims]

    def ce(rows: list[list[float]]) -> float:
        return sum(math.log(sum(math.exp(v) for v in r)) - r[i] for i, r in enumerate(rows)) / n

    cols = [[logits[i][j] for i in range(n)] for j in range(n)]
    return (ce(logits) + ce(cols)) / 2


def test_identity_3x3_equals_the_closed_form() -> None:
    # Scale 1, cosines 1 on the diagonal and 0 elsewhere: each row is -log(e / (e + 2)).
    eye = torch.eye(3)
    loss = clip_loss(eye, eye, torch.tensor(0.0))
    assert loss.item() == pytest.approx(math.log(math.e + 2) - 1, abs=1e-6)  # 0.551445


def test_3x3_equals_the_hand_computed_value() -> None:
    images = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    texts = torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.6, 0.8], [0.8, 0.0, 0.6]])
    # cos(image_i, text_j) = texts[j][i]: the matrix the hand computation works from.
    sims = [[0.6, 0.0, 0.8], [0.8, 0.6, 0.0], [0.0, 0.8, 0.6]]
    logit_scale = torch.tensor(math.log(10.0))
    expected = _hand_loss(sims, 10.0)
    # Every row and column holds logits {6, 8, 0} with the 6 on the target:
    # log(e^6 + e^8 + e^0) - 6 = 2.127223.
    assert expected == pytest.approx(math.log(math.exp(6) + math.exp(8) + 1) - 6, abs=1e-9)
    assert expected == pytest.approx(2.127223, abs=1e-6)
    assert clip_loss(images, texts, logit_scale).item() == pytest.approx(expected, abs=1e-5)


def test_inputs_are_normalised_by_the_loss() -> None:
    images, texts = torch.randn(4, 8), torch.randn(4, 8)
    a = clip_loss(images, texts, torch.tensor(2.0))
    b = clip_loss(images * 7.0, texts * 0.1, torch.tensor(2.0))
    assert a.item() == pytest.approx(b.item(), abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_symmetric_in_images_and_texts(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    images, texts = torch.randn(5, 16, generator=gen), torch.randn(5, 16, generator=gen)
    scale_ = torch.tensor(init_logit_scale())
    assert clip_loss(images, texts, scale_).item() == pytest.approx(
        clip_loss(texts, images, scale_).item(), abs=1e-6
    )


def test_unpaired_batches_are_refused() -> None:
    with pytest.raises(ValueError, match="pair up"):
        clip_loss(torch.randn(3, 4), torch.randn(2, 4), torch.tensor(1.0))


def test_temperature_starts_at_0_07() -> None:
    assert init_logit_scale() == pytest.approx(math.log(1 / 0.07))
    assert temperature(init_logit_scale()) == pytest.approx(0.07)


def test_scale_is_clamped_at_100_in_the_forward_pass() -> None:
    assert scale(torch.tensor(math.log(1000.0))).item() == pytest.approx(100.0)
    assert scale(torch.tensor(math.log(50.0))).item() == pytest.approx(50.0)
    assert init_logit_scale(0.001) == pytest.approx(LOG_MAX_LOGIT_SCALE)


def test_the_parameter_is_clamped_after_a_step_and_still_learns_below_the_bound() -> None:
    param = torch.nn.Parameter(torch.tensor(init_logit_scale()))
    opt = torch.optim.Adam([param], lr=1.0)  # steps of about 1 in log space
    # Matching pairs, near each other (cosine 42/43): the loss keeps asking for a larger
    # scale, even at 100, without underflowing to a zero gradient.
    close = torch.eye(4) + 3.0
    for _ in range(3):
        opt.zero_grad()
        clip_loss(close, close, param).backward()
        assert param.grad is not None
        at_bound = param.item() >= LOG_MAX_LOGIT_SCALE - 1e-5
        assert param.grad.item() < 0 or at_bound  # the clamp stops it only at 100
        opt.step()
        clamp_logit_scale_(param)
        assert param.item() <= LOG_MAX_LOGIT_SCALE + 1e-6
    assert param.item() == pytest.approx(LOG_MAX_LOGIT_SCALE)
    assert temperature(param) == pytest.approx(0.01)


def _embedder(table: dict[str, list[float]]):
    return lambda texts: np.asarray([table[t] for t in texts], dtype=np.float32)


def test_recall_counts_any_image_with_the_same_caption() -> None:
    # Two red images and one blue; the text vectors point at their images exactly.
    images = np.asarray([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    captions = ["red", "red", "blue"]
    r = recall_at_k(images, captions, _embedder({"red": [1.0, 0.0], "blue": [0.0, 1.0]}))
    assert r["pairs"] == 3 and r["captions"] == 2
    assert r["image_to_text"]["R@1"] == 1.0 and r["text_to_image"]["R@1"] == 1.0


def test_recall_of_a_swapped_model_is_zero_at_1() -> None:
    images = np.asarray([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    r = recall_at_k(images, ["a", "b"], _embedder({"a": [0.0, 1.0], "b": [1.0, 0.0]}))
    assert r["image_to_text"] == {"R@1": 0.0, "R@5": 1.0, "R@10": 1.0}
    assert r["text_to_image"] == {"R@1": 0.0, "R@5": 1.0, "R@10": 1.0}
