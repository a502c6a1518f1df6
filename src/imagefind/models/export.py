"""Export a transformers CLIP or SigLIP checkpoint to the model directory format (needs the
`export` extra).

The graphs end in L2 normalisation so every runtime sees the same contract as the hub exports:
input ``image`` float32 [N,3,S,S] / ``text`` int32 [N,L], output ``embedding`` [N,D], unit length.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imagefind.errors import ModelError
from imagefind.models.checkpoint import processor_settings
from imagefind.models.layout import staged_model_dir

OPSET = 18
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}


def _require_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            "model export needs the 'export' extra (torch and transformers): "
            "pip install 'imagefind[export]'"
        ) from exc
    return torch


def _rename_value(graph: Any, old: str, new: str) -> None:
    """Rename a value everywhere it appears in an ONNX graph."""
    for init in graph.initializer:
        if init.name == old:
            init.name = new
    for coll in (graph.input, graph.output, graph.value_info):
        for v in coll:
            if v.name == old:
                v.name = new
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]


def _name_io(path: Path, input_name: str) -> None:
    """Give the graph the format's input/output names; the exporter may have used
    'embedding' for an internal weight, which would clash."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    taken = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}
    for wanted in (input_name, "embedding"):
        if wanted in taken and wanted not in (graph.input[0].name, graph.output[0].name):
            _rename_value(graph, wanted, f"{wanted}__internal")
    _rename_value(graph, graph.input[0].name, input_name)
    _rename_value(graph, graph.output[0].name, "embedding")
    onnx.checker.check_model(model)
    # Weights in a data file beside the graph: onnxruntime maps it instead of parsing one big
    # protobuf, which makes a cold text query's session load about three times faster.
    # A graph over 2 GB arrives from torch with its weights in that very file, now loaded into
    # memory; onnx appends to an existing file, which would leave every weight in it twice.
    path.with_name(f"{path.name}.data").unlink(missing_ok=True)
    onnx.save(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=f"{path.name}.data",
        size_threshold=1024,
    )


def _wrappers(torch: Any, model: Any) -> tuple[Any, Any]:
    from torch import nn  # imported by _require_torch already

    def _features(out: Any) -> Any:
        # transformers 5 returns a model output from get_*_features; 4.x a tensor.
        return out if torch.is_tensor(out) else out.pooler_output

    class Visual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, image: Any) -> Any:
            feats = _features(self.clip.get_image_features(pixel_values=image))
            return nn.functional.normalize(feats, dim=-1)

    class Textual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, text: Any) -> Any:
            feats = _features(self.clip.get_text_features(input_ids=text.long()))
            return nn.functional.normalize(feats, dim=-1)

    return Visual().eval(), Textual().eval()


def _export_graph(
    torch: Any, module: Any, example: Any, path: Path, input_name: str, dynamic: dict[int, Any]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=["output"],
            dynamic_shapes={input_name: dynamic} if dynamic else None,
            dynamo=True,
            external_data=False,
            opset_version=OPSET,
            verbose=False,
        )
    _name_io(path, input_name)


def _load(source: str | Path) -> tuple[Any, Any, dict[str, Any]]:
    """Model, fast tokenizer and image-processor settings of a CLIP or SigLIP checkpoint."""
    from transformers import AutoConfig, AutoTokenizer, CLIPModel, SiglipModel

    try:
        kind = AutoConfig.from_pretrained(str(source)).model_type
        if kind not in ("clip", "siglip"):
            raise ModelError(
                f"{source}: a {kind!r} checkpoint; export takes transformers CLIP (CLIPModel) "
                "or SigLIP/SigLIP2 (SiglipModel) checkpoints"
            )
        cls = CLIPModel if kind == "clip" else SiglipModel
        # transformers leaves PreTrainedModel.eval unannotated
        model = cls.from_pretrained(str(source)).eval()  # type: ignore[no-untyped-call]
        tokenizer = AutoTokenizer.from_pretrained(str(source), use_fast=True)
        processor = processor_settings(source)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"{source}: cannot load a transformers CLIP or SigLIP checkpoint ({exc})"
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{source}: the checkpoint has no fast tokenizer to write tokenizer.json")
    return model, tokenizer, processor


def export_clip(source: str | Path, out: Path, *, fixed_batch: bool = False) -> Path:
    """Write ``out`` in the model directory format from a transformers CLIP or SigLIP
    checkpoint (hub id or local directory). ``fixed_batch`` mimics the hub exports (batch
    of 1). SigLIP's text graph keeps its full context: it pools at the last position."""
    torch = _require_torch()
    model, tokenizer, processor = _load(source)
    siglip = model.config.model_type == "siglip"
    vcfg, tcfg = model.config.vision_config, model.config.text_config
    size = int(vcfg.image_size)
    context = int(tcfg.max_position_embeddings)
    out = Path(out)
    with staged_model_dir(out, ".export-") as staging:
        visual, textual = _wrappers(torch, model)
        batch = 1 if fixed_batch else 2
        Dim = torch.export.Dim
        _export_graph(
            torch,
            visual,
            torch.zeros(batch, 3, size, size),
            staging / "visual" / "model.onnx",
            "image",
            {} if fixed_batch else {0: Dim("batch")},
        )
        ids = torch.full((batch, context), int(tokenizer.pad_token_id or 0), dtype=torch.int32)
        ids[:, 0] = int(tokenizer.bos_token_id or 0)
        ids[:, 1] = int(tokenizer.eos_token_id or 0)
        text_axes = {} if fixed_batch else {0: Dim("batch")}
        if not siglip and not fixed_batch:
            text_axes[1] = Dim("seq", min=2, max=context)
        _export_graph(torch, textual, ids, staging / "textual" / "model.onnx", "text", text_axes)
        with torch.no_grad():
            dim = int(visual(torch.zeros(1, 3, size, size)).shape[-1])
        _write_configs(staging, model, tokenizer, processor, size, context, dim)
    return out


def _write_configs(
    root: Path,
    model: Any,
    tokenizer: Any,
    processor: dict[str, Any],
    size: int,
    context: int,
    dim: int,
) -> None:
    """open_clip's config.json, preprocess_cfg.json and the tokenizer files. SigLIP gets
    open_clip's SigLIP settings: squashed images, canonicalised texts pooled at the last
    position; its mean/std (0.5) come from the checkpoint like CLIP's."""
    siglip = model.config.model_type == "siglip"
    vcfg, tcfg = model.config.vision_config, model.config.text_config
    text_cfg: dict[str, Any] = {
        "context_length": context,
        "vocab_size": int(tcfg.vocab_size),
        "width": int(tcfg.hidden_size),
        "heads": int(tcfg.num_attention_heads),
        "layers": int(tcfg.num_hidden_layers),
    }
    if siglip:
        text_cfg |= {"tokenizer_kwargs": {"clean": "canonicalize"}, "pool_type": "last"}
    config = {
        "embed_dim": dim,
        "vision_cfg": {
            "image_size": size,
            "layers": int(vcfg.num_hidden_layers),
            "width": int(vcfg.hidden_size),
            "patch_size": int(vcfg.patch_size),
        },
        "text_cfg": text_cfg,
    }
    resample = processor.get("resample", 3)
    preprocess = {
        "size": [size, size],
        "mode": "RGB",
        "mean": [float(x) for x in processor.get("image_mean", CLIP_MEAN)],
        "std": [float(x) for x in processor.get("image_std", CLIP_STD)],
        "interpolation": RESAMPLE_NAMES.get(int(resample), "bicubic"),
        "resize_mode": "squash" if siglip else "shortest",
        "fill_color": 0,
    }
    tok_cfg: dict[str, str | int] = {
        key: str(getattr(tokenizer, key))
        for key in ("pad_token", "bos_token", "eos_token", "unk_token")
        if getattr(tokenizer, key, None) is not None
    }
    tok_cfg["model_max_length"] = context
    (root / "config.json").write_text(json.dumps(config, indent=2))
    (root / "visual" / "preprocess_cfg.json").write_text(json.dumps(preprocess, indent=2))
    tokenizer.backend_tokenizer.save(str(root / "textual" / "tokenizer.json"))
    (root / "textual" / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))
