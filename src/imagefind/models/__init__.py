"""The model layer: CLIP encoders on ONNX Runtime, loaded from the model directory format."""

from __future__ import annotations

from pathlib import Path

from imagefind.errors import ModelError
from imagefind.models.encoder import ClipModel
from imagefind.models.hub import DEFAULT_MODEL, ModelRef, cache_dir, ensure_local, resolve
from imagefind.models.layout import ModelDir, read_model_dir

__all__ = [
    "DEFAULT_MODEL",
    "PRECISIONS",
    "ClipModel",
    "ModelDir",
    "ModelRef",
    "cache_dir",
    "load_model",
    "read_model_dir",
    "resolve",
    "split_precision",
]

PRECISIONS = ("fp32", "int8")


def split_precision(name: str) -> tuple[str, str]:
    """``"ViT-B-32__openai@int8"`` → ``("ViT-B-32__openai", "int8")``; libraries record a
    model with its precision, so one name reopens exactly the same weights."""
    base, sep, suffix = name.rpartition("@")
    if sep and suffix in PRECISIONS:
        return base, suffix
    return name, "fp32"


def int8_copy(path: Path) -> Path:
    """The int8 copy of a model directory, made once with onnxruntime and cached by the
    source's fingerprint (so new weights get a new copy)."""
    from imagefind.models.quantize import quantize_model

    source = read_model_dir(path)
    target = cache_dir() / "int8" / f"{path.name}-{source.fingerprint()[:16]}"
    try:
        read_model_dir(target)
        return target
    except ModelError:
        return quantize_model(path, target)


def load_model(
    name: str | None = None,
    *,
    precision: str | None = None,
    threads: int | None = None,
    providers: list[str] | None = None,
    quick_start: bool = False,
) -> ClipModel:
    """The model named by ``name`` (or IMAGEFIND_MODEL, or the default), downloading it once;
    ``precision="int8"`` (or a name ending in ``@int8``) runs a cached int8 copy.
    ``quick_start`` suits a process that encodes a few inputs and exits (sessions load
    several times faster, then run slower)."""
    from imagefind.models.hub import model_name

    base, named_precision = split_precision(model_name(name))
    precision = precision or named_precision
    if precision not in PRECISIONS:
        raise ModelError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    ref = resolve(base)
    path = ensure_local(ref)
    label = ref.name
    if precision == "int8":
        path, label = int8_copy(path), f"{ref.name}@int8"
    return ClipModel(
        read_model_dir(path), label, threads=threads, providers=providers, quick_start=quick_start
    )
