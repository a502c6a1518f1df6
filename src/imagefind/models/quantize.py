"""int8 copies of a model directory with onnxruntime's dynamic quantisation (no torch)."""

from __future__ import annotations

import shutil
from pathlib import Path

from imagefind.errors import ModelError
from imagefind.models.layout import (
    FINGERPRINT_FILE,
    is_weights_file,
    read_model_dir,
    staged_model_dir,
)

# Only the matrix products: they hold nearly all the FLOPs of a ViT, while int8 convolutions
# and embedding lookups cost accuracy for little speed on CPU.
OPS = ["MatMul", "Gemm"]


def _weights(folder: str, names: list[str]) -> list[str]:
    """What the copy of the settings leaves out: the graphs and their weights files, however
    named (the int8 graphs replace them), and the fingerprint stamp."""
    inside = Path(folder).name in ("visual", "textual")
    return [
        n for n in names
        if n == FINGERPRINT_FILE or (inside and (Path(folder) / n).is_file()
                                     and is_weights_file(Path(folder) / n))
    ]  # fmt: skip


def quantize_model(src: Path, out: Path) -> Path:
    """Write an int8 copy of ``src`` to ``out`` (configs and tokenizer copied as they are)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    layout = read_model_dir(src)
    out = Path(out)
    if out.resolve() == layout.path.resolve():
        raise ModelError(f"{out}: the int8 copy must go to another directory than its source")
    with staged_model_dir(out, ".int8-") as staging:
        shutil.copytree(
            layout.path,
            staging,
            dirs_exist_ok=True,
            ignore=_weights,
        )
        for sub in ("visual", "textual"):
            try:
                quantize_dynamic(
                    layout.path / sub / "model.onnx",
                    staging / sub / "model.onnx",
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=OPS,
                    use_external_data_format=True,  # faster session loads, as in export
                )
            except Exception as exc:  # onnx/onnxruntime raise many types on bad graphs
                raise ModelError(
                    f"{layout.path / sub / 'model.onnx'}: cannot quantise ({exc})"
                ) from exc
        for leftover in staging.rglob("*-inferred.onnx"):
            leftover.unlink()
    return out
