"""The model directory format (immich-app's layout): what a model directory holds and its checks.

One format serves hub downloads, our own exports and test models, so every entry point reads
a model through here and a broken directory fails the same clear way wherever it comes from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagefind.errors import ModelError

REQUIRED_FILES = (
    "config.json",
    "visual/model.onnx",
    "visual/preprocess_cfg.json",
    "textual/model.onnx",
    "textual/tokenizer.json",
    "textual/tokenizer_config.json",
)
FINGERPRINT_FILE = ".imagefind-fingerprint.json"
SETTINGS_SUFFIXES = (".json", ".txt", ".model", ".md", ".vocab")  # not weights


@dataclass(frozen=True)
class PreprocessConfig:
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"


@dataclass(frozen=True)
class ModelDir:
    """A checked model directory and the settings the encoders need from it."""

    path: Path
    embed_dim: int
    image_size: int
    context_length: int
    preprocess: PreprocessConfig
    pad_token: str
    config: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """config.json as read: the text family is told from it (see families.py)."""

    @property
    def visual_onnx(self) -> Path:
        return self.path / "visual" / "model.onnx"

    @property
    def textual_onnx(self) -> Path:
        return self.path / "textual" / "model.onnx"

    @property
    def tokenizer_json(self) -> Path:
        return self.path / "textual" / "tokenizer.json"

    def fingerprint(self) -> str:
        """SHA-256 over both ONNX graphs and their weights files, cached beside them by size
        and mtime: a library must know whether its vectors came from these exact weights,
        and hashing hundreds of MB on every open would cost a cold query its budget."""
        files = sorted(
            p
            for sub in ("visual", "textual")
            for p in (self.path / sub).iterdir()
            if p.is_file() and is_weights_file(p)
        )
        stamp = [
            [str(p.relative_to(self.path)), p.stat().st_size, p.stat().st_mtime_ns] for p in files
        ]
        cache = self.path / FINGERPRINT_FILE
        try:
            cached = json.loads(cache.read_text())
            if cached.get("files") == stamp:
                return str(cached["sha256"])
        except (OSError, ValueError, KeyError, AttributeError):
            pass
        digest = hashlib.sha256()
        for p in files:
            digest.update(p.name.encode())
            with p.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        value = digest.hexdigest()
        # A read-only model directory is fine: we hash again next time.
        with contextlib.suppress(OSError):
            cache.write_text(json.dumps({"files": stamp, "sha256": value}))
        return value


def is_weights_file(path: Path) -> bool:
    """A graph or a file of its external weights, whatever the exporter named it
    (``model.onnx.data``, ``model.onnx_data``, one file per tensor such as
    ``onnx__MatMul_123`` or ``visual.proj.weight``): all but settings, vocabularies and our
    own stamps, so new weights in any of them make a new fingerprint."""
    return not path.name.startswith(".") and path.suffix not in SETTINGS_SUFFIXES


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def _triple(value: Any, path: Path, key: str) -> tuple[float, float, float]:
    if isinstance(value, int | float):
        value = [value] * 3
    if not (isinstance(value, list) and len(value) == 3):
        raise ModelError(f"{path}: '{key}' must be a list of 3 numbers")
    return (float(value[0]), float(value[1]), float(value[2]))


def read_model_dir(path: Path) -> ModelDir:
    """Check a model directory and read its settings; every problem names the file at fault."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ModelError(f"{path}: no such model directory")
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise ModelError(
            f"{path}: incomplete model directory, missing {', '.join(missing)} "
            "(expected the immich-app layout: config.json, visual/, textual/)"
        )
    config = _load_json(path / "config.json")
    pre_path = path / "visual" / "preprocess_cfg.json"
    pre = _load_json(pre_path)
    tok_cfg = _load_json(path / "textual" / "tokenizer_config.json")
    try:
        embed_dim = int(config["embed_dim"])
        text_cfg = config.get("text_cfg", {})
        context_length = int(text_cfg.get("context_length", 77))
        size = pre.get("size", config.get("vision_cfg", {}).get("image_size"))
        size = int(size[0] if isinstance(size, list) else size)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(
            f"{path}: config.json or preprocess_cfg.json lacks a field ({exc})"
        ) from exc
    interpolation = str(pre.get("interpolation", "bicubic"))
    resize_mode = str(pre.get("resize_mode", "shortest"))
    if interpolation not in ("bicubic", "bilinear", "nearest", "lanczos"):
        raise ModelError(f"{pre_path}: unsupported interpolation {interpolation!r}")
    if resize_mode not in ("shortest", "squash"):
        raise ModelError(f"{pre_path}: unsupported resize_mode {resize_mode!r}")
    preprocess = PreprocessConfig(
        size=size,
        mean=_triple(pre.get("mean"), pre_path, "mean"),
        std=_triple(pre.get("std"), pre_path, "std"),
        interpolation=interpolation,
        resize_mode=resize_mode,
    )
    pad = tok_cfg.get("pad_token", "<|endoftext|>")
    if isinstance(pad, dict):  # transformers writes AddedToken objects as dicts
        pad = pad.get("content", "<|endoftext|>")
    return ModelDir(
        path=path,
        embed_dim=embed_dim,
        image_size=size,
        context_length=context_length,
        preprocess=preprocess,
        pad_token=str(pad),
        config=config,
    )


@contextlib.contextmanager
def staged_model_dir(out: Path, prefix: str) -> Iterator[Path]:
    """A temporary sibling of ``out`` to build a model directory in; it replaces ``out`` only
    once it passes our own checks, so a failed export never leaves half a model behind."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
    try:
        yield staging
        read_model_dir(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.chmod(0o755)  # mkdtemp makes it private; a model directory is for everyone
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
