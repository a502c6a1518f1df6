"""Tiny random-weight models of every text-encoder family of the zoo, in the zoo layout.

SigLIP is a transformers ``SiglipModel`` exported by ``imagefind models export``; M-CLIP and
NLLB-CLIP are an ``XLMRobertaModel`` text tower with attention-mask mean pooling and a linear
projection (what both families run), exported here the way the zoo's graphs take their
inputs: M-CLIP ``input_ids`` + ``attention_mask``, NLLB-CLIP ``text`` (the mask made inside
from the pad token, as open_clip's HF text tower makes it). Tokenizers are small Unigram
models trained here; the NLLB one knows FLORES-200 codes as added tokens, as NLLB's does.
"""

from __future__ import annotations

import ast
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.modelkit import ROOT

CORPUS = [
    "a photo of a dog on the beach",
    "ein Hund am Strand bei Sonnenuntergang",
    "un chien sur la plage, la mer et le ciel",
    "sunset over mountains with a lake and reflections",
    "red car parked by the sea; blue sky; green trees",
    "UPPER lower mixed words and café crème naïve façade",
    "日本語 のテキスト と 中文 文本",
]
FLORES = ["eng_Latn", "deu_Latn", "fra_Latn", "por_Latn", "zho_Hans", "jpn_Jpan"]
CONTEXT = 77
SIGLIP_CONTEXT = 64


def open_clip_function(name: str) -> Any:
    """A function of open_clip/tokenizer.py, read from the open_clip_torch wheel and run
    alone (open_clip itself is never imported): the reference for our text clean-up."""
    import html
    import string

    wheel = sorted((ROOT / ".cache" / "wheels").glob("open_clip_torch-*.whl"))[0]
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read("open_clip/tokenizer.py").decode()
    node = next(
        n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name
    )
    scope: dict[str, Any] = {"string": string, "html": html}
    exec(compile(ast.Module([node], []), "open_clip/tokenizer.py", "exec"), scope)
    return scope[name]


def unigram_tokenizer(post: str, added: list[str] | None = None) -> Any:
    """A sentencepiece-style Unigram tokenizer trained on CORPUS; ``post`` is the
    post-processor: ``"t5"`` (text </s>, as SigLIP's) or ``"xlmr"`` (<s> text </s>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=specials, unk_token="<unk>", shrinking_factor=0.75
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    if added:
        tok.add_special_tokens(added)
    ids = {t: tok.token_to_id(t) for t in specials}
    if post == "t5":
        tok.post_processor = processors.TemplateProcessing(
            single="$A </s>", special_tokens=[("</s>", ids["</s>"])]
        )
    else:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])]
        )
    return tok


def fast_tokenizer(tok: Any, context: int) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
        model_max_length=context,
    )


def siglip_checkpoint(
    out: Path,
    seed: int = 0,
    image_size: int = 64,
    *,
    layers: dict[str, int] | None = None,
    patch_size: int = 16,
    vocab_size: int | None = None,
) -> Path:
    """A random SiglipModel checkpoint as current transformers save it: the image settings
    in processor_config.json (nested ``image_processor``), no preprocessor_config.json.
    ``layers`` (both towers) and ``vocab_size`` give benchmarks a real model's shapes; the
    tokenizer stays the small one (the embedding table is sized, its tokens are not used)."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    tok = unigram_tokenizer("t5")
    layers = layers or dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    )
    config = SiglipConfig(
        text_config=dict(
            vocab_size=max(vocab_size or 0, tok.get_vocab_size()),
            max_position_embeddings=SIGLIP_CONTEXT,
            pad_token_id=tok.token_to_id("<pad>"),
            eos_token_id=tok.token_to_id("</s>"),
            bos_token_id=tok.token_to_id("<s>"),
            **layers,
        ),
        vision_config=dict(image_size=image_size, patch_size=patch_size, **layers),
    )
    torch.manual_seed(seed)
    SiglipModel(config).eval().save_pretrained(out)
    fast_tokenizer(tok, SIGLIP_CONTEXT).save_pretrained(out)
    (out / "processor_config.json").write_text(
        json.dumps(
            {
                "processor_class": "SiglipProcessor",
                "image_processor": {
                    "image_processor_type": "SiglipImageProcessor",
                    "do_resize": True,
                    "size": {"height": image_size, "width": image_size},
                    "resample": 3,
                    "do_rescale": True,
                    "rescale_factor": 1 / 255,
                    "do_normalize": True,
                    "image_mean": [0.5, 0.5, 0.5],
                    "image_std": [0.5, 0.5, 0.5],
                },
            }
        )
    )
    return out


def xlmr_tower(vocab_size: int, pad_id: int, dim: int, seed: int = 0) -> Any:
    """XLM-R encoder, attention-mask mean pooling, linear projection: M-CLIP's text side."""
    import torch
    from torch import nn
    from transformers import XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=CONTEXT + 2 + pad_id,
        pad_token_id=pad_id,
    )

    class Tower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = XLMRobertaModel(config, add_pooling_layer=False)
            self.proj = nn.Linear(32, dim)

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            ids, mask = input_ids.long(), attention_mask.long()
            hidden = self.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
            return self.proj(pooled)

    return Tower().eval()


class _TextOnly:
    """NLLB-CLIP's graph takes ids only; the mask is ``ids != pad`` inside."""

    def __new__(cls, tower: Any, pad_id: int) -> Any:
        from torch import nn

        class Wrapped(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.tower = tower

            def forward(self, text: Any) -> Any:
                out = self.tower(text, (text != pad_id).long())
                return nn.functional.normalize(out, dim=-1)

        return Wrapped().eval()


def _export(module: Any, example: tuple[Any, ...], names: list[str], path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            module,
            example,
            str(path),
            input_names=names,
            output_names=["output"],  # taken by position; "embedding" may clash inside
            dynamo=True,
            external_data=False,
            opset_version=18,
            verbose=False,
        )


def multilingual_model_dir(kind: str, visual_from: Path, out: Path) -> tuple[Path, Any, Any]:
    """An M-CLIP (``kind="mclip"``) or NLLB-CLIP (``"nllb"``) model directory with the image
    side of ``visual_from``; returns the directory, the torch tower and its fast tokenizer."""
    import torch
    from torch import nn

    config = json.loads((visual_from / "config.json").read_text())
    dim = int(config["embed_dim"])
    tok = unigram_tokenizer("xlmr", FLORES if kind == "nllb" else None)
    pad_id = tok.token_to_id("<pad>")
    tower = xlmr_tower(tok.get_vocab_size(), pad_id, dim)
    ids = torch.full((1, CONTEXT), pad_id, dtype=torch.int32)
    ids[0, :3] = torch.tensor([tok.token_to_id("<s>"), 5, tok.token_to_id("</s>")])
    mask = (ids != pad_id).int()
    shutil.copytree(visual_from / "visual", out / "visual")
    if kind == "mclip":

        class Normalised(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.tower = tower

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                return nn.functional.normalize(self.tower(input_ids, attention_mask), dim=-1)

        _export(Normalised().eval(), (ids, mask), ["input_ids", "attention_mask"],
                out / "textual" / "model.onnx")  # fmt: skip
        text_cfg = {"hf_model_name": "M-CLIP/XLM-Roberta-Large-Vit-B-32"}
    else:
        _export(_TextOnly(tower, pad_id), (ids,), ["text"], out / "textual" / "model.onnx")
        name = "facebook/nllb-200-distilled-600M"
        text_cfg = {"hf_model_name": name, "hf_tokenizer_name": name}
    config["text_cfg"] = {"context_length": CONTEXT, "vocab_size": tok.get_vocab_size(), **text_cfg}
    (out / "config.json").write_text(json.dumps(config))
    tok.save(str(out / "textual" / "tokenizer.json"))
    (out / "textual" / "tokenizer_config.json").write_text(
        json.dumps({"pad_token": "<pad>", "eos_token": "</s>", "bos_token": "<s>"})
    )
    return out, tower, fast_tokenizer(tok, CONTEXT)


@pytest.fixture(name="mclip", scope="session")
def mclip_fixture(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """An M-CLIP model directory, its torch tower and tokenizer (the reference)."""
    return multilingual_model_dir("mclip", tiny_model_dir, tmp_path_factory.mktemp("m") / "m")


@pytest.fixture(name="nllb", scope="session")
def nllb_fixture(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """An NLLB-CLIP model directory, its torch tower and tokenizer (the reference)."""
    return multilingual_model_dir("nllb", tiny_model_dir, tmp_path_factory.mktemp("n") / "n")
