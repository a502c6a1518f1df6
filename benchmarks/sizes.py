"""Download sizes of the zoo's models, for ``imagefind models list --available``.

    python -m benchmarks.sizes            # print the sizes and the checks
    python -m benchmarks.sizes --write    # and store them in imagefind/models/catalogue.json

No source publishes the zoo's file sizes and the hub is out of reach here, so the size is
computed: an fp32 ONNX file weighs its parameters x 4 bytes (our own export of the five size
classes in ``benchmarks/results/models.json`` matches that to within 1 %: the rest is the
graph and the tokenizer files). Parameter counts, per model:

1. **Published**: open_clip's ``docs/model_profile.csv`` (``image_mparams + text_mparams``)
   for every architecture it profiles (OpenAI CLIP, OpenCLIP ViTs and ResNets, SigLIP,
   NLLB-CLIP, XLM-Roberta towers).
2. **Counted from the architecture** where it does not (SigLIP 2 and M-CLIP): the text tower's
   shapes from open_clip's model configs (read out of the open_clip wheel that
   ``scripts/setup.sh --dev`` keeps in ``.cache/wheels``), the image tower's from timm's model
   names, M-CLIP's from its transformer's published config. The counting is checked against
   the published rows of the same kind (SigLIP ViTs) before anything is written, and against
   ``transformers`` in ``tests/test_benchmarks_sizes.py``.

A model neither covers (``fg-clip2-base``) keeps ``null``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "src" / "imagefind" / "models" / "catalogue.json"
WHEELS = ROOT / ".cache" / "wheels"
PROFILE_SOURCE = (
    "https://github.com/mlfoundations/open_clip/blob/f862f86cd92123615a8695ce8bcb6ecc066af452/"
    "docs/model_profile.csv"
)

# open_clip's docs/model_profile.csv (PROFILE_SOURCE): architecture -> (image, text) millions of
# parameters, the rows the zoo uses.
PROFILE: dict[str, tuple[float, float]] = {
    "RN50": (38.32, 63.69),
    "RN101": (56.26, 63.43),
    "RN50x4": (87.14, 91.16),
    "RN50x16": (167.33, 123.65),
    "RN50x64": (420.38, 202.88),
    "ViT-B-32": (87.85, 63.43),
    "ViT-B-16": (86.19, 63.43),
    "ViT-B-16-plus-240": (117.21, 91.16),
    "ViT-L-14": (303.97, 123.65),
    "ViT-L-14-quickgelu": (303.97, 123.65),
    "ViT-L-14-336": (304.29, 123.65),
    "ViT-H-14": (632.08, 354.03),
    "ViT-H-14-quickgelu": (632.08, 354.03),
    "ViT-H-14-378-quickgelu": (632.68, 354.03),
    "ViT-g-14": (1012.65, 354.03),
    "ViT-B-16-SigLIP": (92.88, 110.27),
    "ViT-B-16-SigLIP-256": (92.93, 110.27),
    "ViT-B-16-SigLIP-384": (93.18, 110.27),
    "ViT-B-16-SigLIP-512": (93.52, 110.27),
    "ViT-B-16-SigLIP-i18n-256": (92.93, 277.7),
    "ViT-L-16-SigLIP-256": (315.96, 336.19),
    "ViT-L-16-SigLIP-384": (316.28, 336.19),
    "ViT-SO400M-14-SigLIP": (427.68, 449.68),
    "ViT-SO400M-14-SigLIP-384": (428.23, 449.73),
    "nllb-clip-base-siglip": (93.18, 414.3),
    "nllb-clip-large-siglip": (428.23, 767.27),
    "xlm-roberta-base-ViT-B-32": (87.85, 278.27),
    "xlm-roberta-large-ViT-H-14": (632.08, 560.94),
}

# timm's SigLIP image towers (timm/models/vision_transformer.py): width, depth, MLP width.
# Patch and image size come from the name (vit_<size>_patch<P>_siglip_<S>).
TIMM_SIGLIP = {
    "base": (768, 12, 3072),
    "large": (1024, 24, 4096),
    "so400m": (1152, 27, 4304),
    "giantopt": (1536, 40, 6144),
}


@dataclass(frozen=True)
class Encoder:
    """A BERT-style text encoder (M-CLIP's transformer), from its published config.json."""

    vocab: int
    width: int
    depth: int
    mlp: int
    positions: int
    token_types: int


# M-CLIP (github.com/FreddeFrallan/Multilingual-CLIP): a Hugging Face encoder, mean pooling,
# one linear layer (bias included) to the image tower's space; the image tower is open_clip's.
XLMR_LARGE = Encoder(vocab=250002, width=1024, depth=24, mlp=4096, positions=514, token_types=1)
LABSE = Encoder(vocab=501153, width=768, depth=12, mlp=3072, positions=512, token_types=2)
MCLIP: dict[str, tuple[Encoder, str]] = {
    "XLM-Roberta-Large-Vit-B-32": (XLMR_LARGE, "ViT-B-32"),
    "XLM-Roberta-Large-Vit-B-16Plus": (XLMR_LARGE, "ViT-B-16-plus-240"),
    "XLM-Roberta-Large-Vit-L-14": (XLMR_LARGE, "ViT-L-14"),
    "LABSE-Vit-L-14": (LABSE, "ViT-L-14"),
}


def block(width: int, mlp: int) -> int:
    """One pre-norm transformer block: two layer norms, attention (qkv + out), the MLP."""
    return 4 * width * width + 2 * width * mlp + 9 * width + mlp


def siglip_image(timm_name: str) -> int:
    """A timm SigLIP ViT (patch embedding, positions, blocks, final norm, attention-pool head),
    by its timm name."""
    found = re.fullmatch(r"vit_(\w+?)_patch(\d+)_siglip_(\d+)", timm_name)
    if found is None:
        raise ValueError(f"not a timm SigLIP image tower: {timm_name}")
    width, depth, mlp = TIMM_SIGLIP[found[1]]
    return vit_siglip(width, depth, mlp, patch=int(found[2]), size=int(found[3]))


def vit_siglip(width: int, depth: int, mlp: int, patch: int, size: int) -> int:
    """Parameters of a SigLIP image tower of these shapes."""
    patches = (size // patch) ** 2
    stem = 3 * patch * patch * width + width + patches * width
    head = width + 4 * width * width + 4 * width + 2 * width + 2 * width * mlp + mlp + width
    return stem + depth * block(width, mlp) + 2 * width + head


def openclip_text(cfg: dict[str, Any], embed_dim: int) -> int:
    """open_clip's TextTransformer (SigLIP style): tokens, positions, blocks, norm, projection."""
    width, depth = cfg["width"], cfg["layers"]
    mlp = int(width * cfg.get("mlp_ratio", 4.0))
    bias = embed_dim if cfg.get("proj_bias") else 0
    return (
        (cfg["vocab_size"] + cfg["context_length"]) * width
        + depth * block(width, mlp)
        + 2 * width
        + width * embed_dim
        + bias
    )


def encoder_text(enc: Encoder, dim: int) -> int:
    """A BERT-style encoder without its pooler (unused), plus M-CLIP's linear layer."""
    embeddings = (enc.vocab + enc.positions + enc.token_types) * enc.width + 2 * enc.width
    return embeddings + enc.depth * block(enc.width, enc.mlp) + enc.width * dim + dim


def openclip_configs() -> dict[str, dict[str, Any]]:
    """open_clip's model configs, read out of its wheel (never installed: it needs torchvision)."""
    wheels = sorted(WHEELS.glob("open_clip_torch-*.whl"))
    if not wheels:
        raise SystemExit(f"no open_clip_torch wheel in {WHEELS}: run scripts/setup.sh --dev")
    configs = {}
    with zipfile.ZipFile(wheels[-1]) as whl:
        for name in whl.namelist():
            if name.startswith("open_clip/model_configs/") and name.endswith(".json"):
                configs[Path(name).stem] = json.loads(whl.read(name))
    return configs


def counted(cfg: dict[str, Any]) -> tuple[float, float]:
    """(image, text) millions of parameters of an open_clip config with a timm SigLIP tower."""
    image = siglip_image(cfg["vision_cfg"]["timm_model_name"])
    return image / 1e6, openclip_text(cfg["text_cfg"], cfg["embed_dim"]) / 1e6


def check_counting(configs: dict[str, dict[str, Any]]) -> list[str]:
    """The counting against every published SigLIP row: what does not agree to 0.01 M."""
    problems = []
    for arch, published in PROFILE.items():
        cfg = configs.get(arch)
        if "SigLIP" not in arch or cfg is None or "timm_model_name" not in cfg["vision_cfg"]:
            continue
        mine = counted(cfg)
        if any(abs(a - b) > 0.01 for a, b in zip(mine, published, strict=True)):
            problems.append(f"{arch}: counted {mine}, published {published}")
    return problems


def architecture(name: str) -> str:
    """The open_clip architecture a zoo name is built on (``ViT-B-32__openai`` -> ViT-B-32)."""
    arch = name.split("__")[0]
    return {
        "XLM-Roberta-Base-ViT-B-32": "xlm-roberta-base-ViT-B-32",
        "XLM-Roberta-Large-ViT-H-14": "xlm-roberta-large-ViT-H-14",
    }.get(arch, arch)


def sizes(models: list[dict[str, Any]], configs: dict[str, dict[str, Any]]) -> Iterator[Any]:
    """(name, MB of fp32 weights or None, how the count was found) for each catalogue model."""
    for model in models:
        name, arch = model["name"], architecture(model["name"])
        if arch in PROFILE:
            params, how = sum(PROFILE[arch]), "published"
        elif arch in MCLIP:
            encoder, image_arch = MCLIP[arch]
            text = encoder_text(encoder, model["dim"]) / 1e6
            params, how = PROFILE[image_arch][0] + text, "counted"
        elif arch in configs and "timm_model_name" in configs[arch]["vision_cfg"]:
            params, how = sum(counted(configs[arch])), "counted"
        else:
            yield name, None, "unknown architecture"
            continue
        yield name, round(params * 4), how


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the sizes in the catalogue")
    args = parser.parse_args(argv)
    configs = openclip_configs()
    if problems := check_counting(configs):
        print("the counting disagrees with open_clip's published figures:", *problems, sep="\n")
        return 1
    document = json.loads(CATALOGUE.read_text("utf-8"))
    found = {name: mb for name, mb, _ in sizes(document["models"], configs)}
    for name, mb, how in sizes(document["models"], configs):
        print(f"{name:48} {mb if mb is not None else '-':>6} MB  {how}")
    if args.write:
        for model in document["models"]:
            model["download_mb"] = found[model["name"]]
        document["sources"]["download_mb"] = (
            "fp32 ONNX weights (visual + textual), parameters x 4 bytes, tokenizer files not "
            f"included; parameter counts from open_clip's model profile ({PROFILE_SOURCE}), "
            "else counted from the architecture (SigLIP 2, M-CLIP): benchmarks/sizes.py"
        )
        CATALOGUE.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", "utf-8")
        print(f"wrote {CATALOGUE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
