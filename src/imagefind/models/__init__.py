"""The model layer: CLIP encoders on ONNX Runtime, loaded from the model directory format."""

from __future__ import annotations

from imagefind.models.encoder import ClipModel
from imagefind.models.hub import DEFAULT_MODEL, ModelRef, cache_dir, ensure_local, resolve
from imagefind.models.layout import ModelDir, read_model_dir

__all__ = [
    "DEFAULT_MODEL",
    "ClipModel",
    "ModelDir",
    "ModelRef",
    "cache_dir",
    "load_model",
    "read_model_dir",
    "resolve",
]


def load_model(
    name: str | None = None, *, threads: int | None = None, providers: list[str] | None = None
) -> ClipModel:
    """The model named by ``name`` (or IMAGEFIND_MODEL, or the default), downloading it once."""
    ref = resolve(name)
    path = ensure_local(ref)
    return ClipModel(read_model_dir(path), ref.name, threads=threads, providers=providers)
