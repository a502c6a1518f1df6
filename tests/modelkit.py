"""Random-weight CLIP checkpoints for tests and benchmarks (no downloads anywhere).

The vocabulary is CLIP's real BPE, read from the ``open_clip_torch`` wheel that
``scripts/setup.sh --dev`` keeps in ``.cache/wheels`` (open_clip itself is never imported:
it would pull torchvision).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import zipfile
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BPE_NAME = "open_clip/bpe_simple_vocab_16e6.txt.gz"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

_SHAPES_LAYERS = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2
)


def layers(width: int, mlp: int, depth: int, heads: int) -> dict[str, int]:
    """A transformer tower's shape as transformers' configs spell it."""
    return dict(
        hidden_size=width, intermediate_size=mlp, num_hidden_layers=depth, num_attention_heads=heads
    )


# OpenAI CLIP's base towers: ViT-B (768 wide, 12 layers) and a 512-wide, 12-layer text side.
_VIT_B = layers(768, 3072, 12, 12)
_CLIP_B_TEXT = layers(512, 2048, 12, 8)

SIZES = {
    # Wider and finer than "tiny", for 64-px pictures: learns coloured shapes in seconds.
    "shapes": dict(
        text=_SHAPES_LAYERS, vision=dict(patch_size=16, **_SHAPES_LAYERS), projection_dim=64
    ),
    # A few small layers: seconds to build and export, milliseconds to run.
    "tiny": dict(
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
        vision=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            patch_size=32,
        ),
        projection_dim=32,
    ),
    # OpenAI ViT-B/32's shapes: same FLOPs as the real model, for benchmarks.
    "b32": dict(text=_CLIP_B_TEXT, vision=dict(patch_size=32, **_VIT_B), projection_dim=512),
    # OpenAI ViT-B/16: B/32's towers with 16-px patches (197 image tokens instead of 50).
    "b16": dict(text=_CLIP_B_TEXT, vision=dict(patch_size=16, **_VIT_B), projection_dim=512),
    # OpenAI ViT-L/14 (224 px): vision 1024 wide, 24 layers, 16 heads; text 768 wide,
    # 12 layers, 12 heads; 768-d vectors (open_clip's ViT-L-14.json).
    "l14": dict(
        text=layers(768, 3072, 12, 12),
        vision=dict(patch_size=14, **layers(1024, 4096, 24, 16)),
        projection_dim=768,
    ),
}


@lru_cache(maxsize=1)
def bpe_merges_gz() -> bytes:
    """The bytes of CLIP's merges file, from the open_clip wheel or an installed open_clip."""
    for wheel in sorted((ROOT / ".cache" / "wheels").glob("open_clip_torch-*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(BPE_NAME)
    spec = importlib.util.find_spec("open_clip")  # finds the package without running it
    if spec and spec.submodule_search_locations:
        return (
            Path(next(iter(spec.submodule_search_locations))) / Path(BPE_NAME).name
        ).read_bytes()
    raise FileNotFoundError(
        "CLIP's BPE file was not found: run scripts/setup.sh --dev (it fetches the "
        "open_clip_torch wheel into .cache/wheels)"
    )


def _bytes_to_unicode() -> dict[int, str]:
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


@lru_cache(maxsize=1)
def vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """OpenAI CLIP's vocabulary (49408 tokens) and merges, built as open_clip builds them."""
    text = gzip.decompress(bpe_merges_gz()).decode("utf-8")
    merges = [tuple(line.split()) for line in text.split("\n")[1 : 49152 - 256 - 2 + 1]]
    base = list(_bytes_to_unicode().values())
    vocab = base + [v + "</w>" for v in base] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges  # type: ignore[return-value]


def random_checkpoint(out: Path, size: str = "tiny", seed: int = 0, image_size: int = 224) -> Path:
    """Save a random-weight transformers CLIP checkpoint (model, tokenizer, preprocessor)."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    spec = SIZES[size]
    config = CLIPConfig(
        text_config=dict(
            vocab_size=49408,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
            **spec["text"],
        ),
        vision_config=dict(image_size=image_size, **spec["vision"]),
        projection_dim=spec["projection_dim"],
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    vocab, merges = vocabulary()
    CLIPTokenizer(vocab=dict(vocab), merges=list(merges)).save_pretrained(out)
    (out / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "CLIPImageProcessor",
                "do_resize": True,
                "size": {"shortest_edge": image_size},
                "resample": 3,
                "do_center_crop": True,
                "crop_size": {"height": image_size, "width": image_size},
                "do_rescale": True,
                "rescale_factor": 1 / 255,
                "do_normalize": True,
                "image_mean": CLIP_MEAN,
                "image_std": CLIP_STD,
                "do_convert_rgb": True,
            }
        )
    )
    return out
