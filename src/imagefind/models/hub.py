"""Model names, the cache directory and downloads from the Hugging Face hub.

A name is a local directory, a hub repo id (``owner/name``) or a short name of the
immich-app zoo (``ViT-B-32__openai`` → ``immich-app/ViT-B-32__openai``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir

from imagefind.errors import ModelError, ModelNotFoundError
from imagefind.models.layout import read_model_dir

DEFAULT_MODEL = "ViT-B-32__openai"
HUB_ORG = "immich-app"
# Files of the format only: those repos also carry large builds for other runtimes.
ALLOW_PATTERNS = ["config.json", "visual/*", "textual/*"]
IGNORE_PATTERNS = ["*.armnn", "*.rknn", "*/fp16/*", "*/rk*/*", "*.md"]
KNOWN_MODELS = {
    "ViT-B-32__openai": "OpenAI CLIP ViT-B/32 (default; 512-d, fast)",
    "ViT-B-16__openai": "OpenAI CLIP ViT-B/16 (512-d, more accurate, ~4x slower)",
    "ViT-L-14__openai": "OpenAI CLIP ViT-L/14 (768-d, accurate, slow on CPU)",
    "ViT-B-32__laion2b-s34b-b79k": "OpenCLIP ViT-B/32 trained on LAION-2B (512-d)",
    "ViT-B-16-SigLIP2__webli": "SigLIP 2 ViT-B/16 (768-d)",
    "XLM-Roberta-Large-Vit-B-32": "Multilingual CLIP, ViT-B/32 image side (512-d)",
}


@dataclass(frozen=True)
class ModelRef:
    """Where a model name points: a local directory, or a hub repo and its cache folder."""

    name: str
    path: Path
    repo_id: str | None

    @property
    def is_local(self) -> bool:
        return self.repo_id is None


def cache_dir() -> Path:
    env = os.environ.get("IMAGEFIND_CACHE")
    return Path(env).expanduser() if env else Path(user_cache_dir("imagefind")) / "models"


def model_name(name: str | None = None) -> str:
    return name or os.environ.get("IMAGEFIND_MODEL") or DEFAULT_MODEL


def resolve(name: str | None = None) -> ModelRef:
    name = model_name(name)
    local = Path(name).expanduser()
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if local.exists() or looks_like_path:
        # Libraries record their model by name: a local one by its absolute path.
        return ModelRef(name=str(local.resolve()), path=local.resolve(), repo_id=None)
    repo_id = name if "/" in name else f"{HUB_ORG}/{name}"
    return ModelRef(name=name, path=cache_dir() / repo_id.replace("/", "__"), repo_id=repo_id)


def _offline_help(ref: ModelRef, reason: str) -> str:
    return (
        f"model {ref.name!r} is not in the cache ({ref.path}) and could not be downloaded "
        f"from the Hugging Face hub: {reason.rstrip('. ')}. To work offline, point --model (or "
        "IMAGEFIND_MODEL) at a local model directory, e.g. one written by "
        "'imagefind models export openai/clip-vit-base-patch32 ./clip-b32', or copy a "
        f"downloaded model to {ref.path}."
    )


def _is_complete(path: Path) -> bool:
    try:
        read_model_dir(path)
    except ModelError:
        return False
    return True


def _fetch(ref: ModelRef, repo_id: str) -> None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelNotFoundError(_offline_help(ref, "huggingface_hub is not installed")) from exc
    try:
        snapshot_download(
            repo_id=repo_id,
            local_dir=str(ref.path),
            allow_patterns=ALLOW_PATTERNS,
            ignore_patterns=IGNORE_PATTERNS,
        )
    except Exception as exc:  # the hub client raises many network and HTTP error types
        from imagefind.models.catalogue import is_unknown_zoo_name, unknown_model_message

        if is_unknown_zoo_name(ref.name, repo_id):  # a typo, far likelier than a network fault
            raise ModelNotFoundError(unknown_model_message(ref.name)) from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelNotFoundError(_offline_help(ref, first[:300])) from exc


def ensure_local(ref: ModelRef, *, force: bool = False) -> Path:
    """A complete model directory for ``ref``, downloading it when needed. A download that
    arrives broken is cleared and fetched once more, then reported."""
    repo_id = ref.repo_id
    if repo_id is None:  # a local directory
        read_model_dir(ref.path)  # raises a clear error for a broken local directory
        return ref.path
    if not force and _is_complete(ref.path):
        return ref.path
    for attempt in range(2):
        if ref.path.exists() and (force or attempt > 0 or not _is_complete(ref.path)):
            shutil.rmtree(ref.path, ignore_errors=True)
        _fetch(ref, repo_id)
        try:
            _check_loads(ref.path)
            return ref.path
        except ModelError as exc:
            if attempt == 1:
                shutil.rmtree(ref.path, ignore_errors=True)
                raise ModelError(
                    f"model {ref.name!r}: the download from {repo_id} is broken twice "
                    f"({exc}); it was removed from {ref.path}"
                ) from exc
    raise AssertionError("unreachable")


def _check_loads(path: Path) -> None:
    """The directory parses and both graphs open in onnxruntime."""
    from imagefind.models.families import MASKED_INPUTS
    from imagefind.models.session import OnnxGraph

    layout = read_model_dir(path)
    textual = OnnxGraph(layout.textual_onnx, "text", alternative=MASKED_INPUTS)
    for graph in (OnnxGraph(layout.visual_onnx, "image"), textual):
        graph.session  # noqa: B018 - loading is the check


def cached_models() -> list[ModelRef]:
    root = cache_dir()
    if not root.is_dir():
        return []
    refs = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and "__" in child.name and _is_complete(child):
            owner, _, rest = child.name.partition("__")
            repo_id = f"{owner}/{rest}"
            short = rest if owner == HUB_ORG else repo_id
            refs.append(ModelRef(name=short, path=child, repo_id=repo_id))
    return refs
