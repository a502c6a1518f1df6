"""Every text-encoder family of the zoo, run exactly: our ONNX path against a torch reference
on the same tiny random weights, in the zoo layout (see tests/familykit.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from imagefind.errors import ModelError, QueryError
from imagefind.models import ClipModel, load_model
from imagefind.models.export import export_clip
from tests.familykit import (
    CONTEXT,
    SIGLIP_CONTEXT,
    open_clip_function,
    siglip_checkpoint,
)
from tests.familykit import mclip_fixture as mclip_fixture  # fixture: mclip
from tests.familykit import nllb_fixture as nllb_fixture  # fixture: nllb
from tests.synth import natural_image

TEXTS = [
    "A Photo of a DOG!",
    "",
    "sunset over mountains, with a lake; reflections (long exposure).",
    "Café crème, naïve façade — déjà vu?",
    "UPPER lower MiXeD    repeated     spaces",
    "snake_case & C++ / don't",
    "x " * 120,  # over the context: truncated
    "日本語のテキスト",
]
SIZES = [(640, 480), (480, 640), (64, 64), (1000, 250), (97, 313)]


def centred_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine after removing the rows' common mean: random tiny models give vectors that
    all point one way, which plain cosine would hide."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    mean = b.mean(axis=0, keepdims=True)  # the reference's mean, for both
    a, b = a - mean, b - mean
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def images() -> list[Any]:
    return [natural_image(w, h, seed=i) for i, (w, h) in enumerate(SIZES)]


# -- SigLIP -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def siglip_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return siglip_checkpoint(tmp_path_factory.mktemp("siglip") / "ckpt")


@pytest.fixture(scope="module")
def siglip_dir(siglip_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_clip(siglip_ckpt, tmp_path_factory.mktemp("siglip") / "model")


@pytest.fixture(scope="module")
def siglip(siglip_dir: Path) -> ClipModel:
    return load_model(str(siglip_dir))


def _siglip_ref_texts(ckpt: Path, texts: list[str]) -> np.ndarray:
    from transformers import AutoTokenizer, SiglipModel

    canonicalize = open_clip_function("canonicalize_text")
    model = SiglipModel.from_pretrained(ckpt).eval()
    tok = AutoTokenizer.from_pretrained(ckpt)
    ids = tok(
        [canonicalize(t) for t in texts],
        padding="max_length",
        max_length=SIGLIP_CONTEXT,
        truncation=True,
        return_tensors="pt",
    )["input_ids"]
    with torch.no_grad():
        out = model.get_text_features(input_ids=ids)
    return (out if torch.is_tensor(out) else out.pooler_output).numpy()


def _siglip_ref_images(ckpt: Path, images: list[Any]) -> np.ndarray:
    from transformers import SiglipModel
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    model = SiglipModel.from_pretrained(ckpt).eval()
    settings = json.loads((ckpt / "processor_config.json").read_text())["image_processor"]
    del settings["image_processor_type"]
    pixels = SiglipImageProcessorPil(**settings)(images=images, return_tensors="pt")
    with torch.no_grad():
        out = model.get_image_features(pixel_values=pixels["pixel_values"])
    return (out if torch.is_tensor(out) else out.pooler_output).numpy()


def test_siglip_export_writes_the_zoo_settings(siglip_dir: Path) -> None:
    config = json.loads((siglip_dir / "config.json").read_text())
    pre = json.loads((siglip_dir / "visual" / "preprocess_cfg.json").read_text())
    assert config["text_cfg"]["context_length"] == SIGLIP_CONTEXT
    assert config["text_cfg"]["tokenizer_kwargs"] == {"clean": "canonicalize"}
    assert config["text_cfg"]["pool_type"] == "last"
    assert pre["resize_mode"] == "squash"
    assert pre["mean"] == pre["std"] == [0.5, 0.5, 0.5]


def test_siglip_texts_match_reference(siglip: ClipModel, siglip_ckpt: Path) -> None:
    ours = siglip.encode_texts(TEXTS)
    ref = _siglip_ref_texts(siglip_ckpt, TEXTS)
    assert siglip.text_family.name == "SigLIP" and not siglip.text_family.trim
    assert centred_cos(ours, ref).min() >= 0.9999
    # One by one equals batched: padding is kept, never trimmed.
    single = np.concatenate([siglip.encode_texts([t]) for t in TEXTS])
    assert np.abs(single - ours).max() < 1e-5


def test_siglip_images_are_squashed_as_the_reference(
    siglip: ClipModel, siglip_ckpt: Path, images: list[Any]
) -> None:
    ours = siglip.encode_images(images)
    assert centred_cos(ours, _siglip_ref_images(siglip_ckpt, images)).min() >= 0.999


def test_siglip_fixed_batch_export(siglip_ckpt: Path, siglip: ClipModel, tmp_path: Path) -> None:
    fixed = load_model(str(export_clip(siglip_ckpt, tmp_path / "fixed", fixed_batch=True)))
    assert fixed.textual.fixed_batch and fixed.textual.fixed_length == SIGLIP_CONTEXT
    assert np.abs(fixed.encode_texts(TEXTS) - siglip.encode_texts(TEXTS)).max() < 1e-5


# -- M-CLIP and NLLB-CLIP ---------------------------------------------------------------------


def _tower_ref(tower: Any, tok: Any, texts: list[str]) -> np.ndarray:
    enc = tok(texts, padding="max_length", max_length=CONTEXT, truncation=True,
              return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        return tower(enc["input_ids"], enc["attention_mask"]).numpy()


def test_mclip_feeds_ids_and_mask(mclip: tuple) -> None:
    path, tower, tok = mclip
    model = load_model(str(path))
    ours = model.encode_texts(TEXTS)
    assert model.text_family.name == "M-CLIP"
    assert model.textual.inputs == ("input_ids", "attention_mask")
    assert centred_cos(ours, _tower_ref(tower, tok, TEXTS)).min() >= 0.9999
    assert model.encode_texts(TEXTS[:1], lang="de").tolist() == ours[:1].tolist()  # ignored


LANGS = [(None, "eng_Latn"), ("de", "deu_Latn"), ("pt-BR", "por_Latn"), ("zh-Hans", "zho_Hans")]


@pytest.mark.parametrize(("lang", "code"), LANGS)
def test_nllb_glues_the_language_code(nllb: tuple, lang: str | None, code: str) -> None:
    path, tower, tok = nllb
    model = load_model(str(path))
    ours = model.encode_texts(TEXTS, lang=lang)
    ref = _tower_ref(tower, tok, [code + " ".join(t.split()) for t in TEXTS])
    assert model.text_family.name == "NLLB-CLIP"
    assert centred_cos(ours, ref).min() >= 0.9999
    assert tok.tokenize(code + "Hund")[0] == code  # the code is one token of the vocabulary


def test_nllb_languages_give_different_vectors(nllb: tuple) -> None:
    model = load_model(str(nllb[0]))
    assert not np.allclose(model.encode_texts(["Hund"], lang="de"), model.encode_texts(["Hund"]))


def test_unknown_language_is_one_clear_line(nllb: tuple) -> None:
    model = load_model(str(nllb[0]))
    with pytest.raises(QueryError) as info:
        model.encode_texts(["Hund"], lang="klingon")
    message = str(info.value)
    assert "\n" not in message and str(nllb[0]) in message
    assert "'klingon' is not known" in message and "'pt-BR'" in message


def test_other_families_ignore_lang(tiny_model: ClipModel) -> None:
    assert np.array_equal(tiny_model.encode_texts(["a dog"], lang="klingon"),
                          tiny_model.encode_texts(["a dog"]))  # fmt: skip


# -- the shapes of zoo exports ----------------------------------------------------------------


def _rename_outputs(path: Path, name: str) -> None:
    import onnx

    model = onnx.load(str(path))
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
    model.graph.output[0].name = name
    onnx.save(model, str(path), save_as_external_data=True, location="model.onnx.data")


def test_outputs_taken_by_position(
    tiny_model_dir: Path, tiny_model: ClipModel, images: list[Any], tmp_path: Path
) -> None:
    path = shutil.copytree(tiny_model_dir, tmp_path / "old")
    _rename_outputs(path / "visual" / "model.onnx", "image_embedding")
    _rename_outputs(path / "textual" / "model.onnx", "text_embedding")
    old = load_model(str(path))
    assert np.abs(old.encode_images(images) - tiny_model.encode_images(images)).max() < 1e-5
    assert np.abs(old.encode_texts(TEXTS) - tiny_model.encode_texts(TEXTS)).max() < 1e-5


def test_weights_in_an_external_file(
    tiny_model_dir: Path, tiny_model: ClipModel, tmp_path: Path
) -> None:
    import onnx

    path = shutil.copytree(tiny_model_dir, tmp_path / "ext")
    graph = path / "textual" / "model.onnx"
    onnx.save(onnx.load(str(graph)), str(graph), save_as_external_data=True,
              location="weights.bin", size_threshold=1024)  # fmt: skip
    (path / "textual" / "model.onnx.data").unlink()
    model = load_model(str(path))
    assert np.abs(model.encode_texts(TEXTS) - tiny_model.encode_texts(TEXTS)).max() < 1e-5
    before = model.fingerprint()
    data = path / "textual" / "weights.bin"
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 1
    data.write_bytes(bytes(raw))
    os.utime(data, ns=(1, 1))
    assert load_model(str(path)).fingerprint() != before


def test_hub_download_fetches_data_files() -> None:
    from fnmatch import fnmatch

    from imagefind.models.hub import ALLOW_PATTERNS, IGNORE_PATTERNS

    for name in ("visual/model.onnx_data", "textual/weights.bin", "visual/onnx__MatMul_12"):
        assert any(fnmatch(name, p) for p in ALLOW_PATTERNS)
        assert not any(fnmatch(name, p) for p in IGNORE_PATTERNS)


# -- bad directories --------------------------------------------------------------------------


def test_graph_with_unknown_inputs(mclip: tuple, tmp_path: Path) -> None:
    import onnx

    path = shutil.copytree(mclip[0], tmp_path / "bad")
    graph = path / "textual" / "model.onnx"
    model = onnx.load(str(graph))
    model.graph.input[1].name = "token_type_ids"
    for node in model.graph.node:
        node.input[:] = ["token_type_ids" if i == "attention_mask" else i for i in node.input]
    onnx.save(model, str(graph))
    with pytest.raises(ModelError) as info:
        load_model(str(path)).encode_texts(["a dog"])
    message = str(info.value)
    assert "\n" not in message and str(graph) in message
    assert "token_type_ids" in message and "imagefind models export" in message


def test_tokenizer_without_the_pad_token(nllb: tuple, tmp_path: Path) -> None:
    path = shutil.copytree(nllb[0], tmp_path / "nopad")
    (path / "textual" / "tokenizer_config.json").write_text(json.dumps({"pad_token": "[PAD]"}))
    with pytest.raises(ModelError) as info:
        load_model(str(path)).encode_texts(["a dog"])
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "'[PAD]' is not in the vocabulary" in message and "tokenizer_config.json" in message


def test_current_transformers_processor_config(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Checkpoints saved by current transformers keep their image settings nested in
    processor_config.json: export and finetune --base read them as the older file."""
    from imagefind.finetune.model import load_base
    from imagefind.models.checkpoint import processor_settings

    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "new")
    old = ckpt / "preprocessor_config.json"
    settings = json.loads(old.read_text())
    old.unlink()
    (ckpt / "processor_config.json").write_text(json.dumps({"image_processor": settings}))
    assert processor_settings(ckpt) == settings
    assert load_base(ckpt).preprocess == load_base(tiny_checkpoint).preprocess
    exported = load_model(str(export_clip(ckpt, tmp_path / "model")))
    assert exported.dir.preprocess.mean == tuple(settings["image_mean"])
    (ckpt / "processor_config.json").unlink()
    with pytest.raises(ModelError, match=r"processor_config\.json"):
        export_clip(ckpt, tmp_path / "none")


def test_mclip_passes_the_download_check_and_quantises(mclip: tuple, tmp_path: Path) -> None:
    from imagefind.models.hub import _check_loads
    from imagefind.models.quantize import quantize_model

    _check_loads(mclip[0])  # a downloaded M-CLIP is not taken for a broken download
    int8 = load_model(str(quantize_model(mclip[0], tmp_path / "int8")))
    assert centred_cos(int8.encode_texts(TEXTS), load_model(str(mclip[0])).encode_texts(TEXTS)
                       ).min() >= 0.99  # fmt: skip
