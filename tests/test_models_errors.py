"""Bad input to the model layer gets a clear error that names the input and the reason."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from imagefind.errors import ImageError, ModelError, QueryError
from imagefind.models import ClipModel, load_model
from imagefind.models.layout import REQUIRED_FILES, read_model_dir
from tests.synth import natural_image


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(model_dir, out)
    return out


def _load(path: Path) -> ClipModel:
    return load_model(str(path))


def _encode_both(model: ClipModel) -> None:
    model.encode_images([natural_image(64, 48)])
    model.encode_texts(["a dog"])


# -- the directory ----------------------------------------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError) as info:
        load_model(str(missing))
    assert str(missing) in str(info.value)
    assert "no such model directory" in str(info.value)


def test_a_file_is_not_a_model_directory(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a directory")
    with pytest.raises(ModelError, match="no such model directory") as info:
        load_model(str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_incomplete_directory(tiny_model_dir: Path, tmp_path: Path, name: str) -> None:
    path = _copy(tiny_model_dir, tmp_path)
    (path / name).unlink()
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    message = str(info.value)
    assert str(path) in message
    assert "incomplete model directory" in message
    # Exactly the file that is gone is reported missing.
    assert message.split("missing ", 1)[1].split(" (")[0] == name


def test_incomplete_directory_lists_every_missing_file(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    path = _copy(tiny_model_dir, tmp_path)
    shutil.rmtree(path / "textual")
    with pytest.raises(ModelError) as info:
        read_model_dir(path)
    missing = str(info.value).split("missing ", 1)[1].split(" (")[0]
    assert missing.split(", ") == [n for n in REQUIRED_FILES if n.startswith("textual/")]


# -- the graphs -------------------------------------------------------------------------------

NOT_MODELS = {
    "random bytes": np.random.default_rng(0).bytes(4096),
    "empty": b"",
    "text": b"this is a text file, not an ONNX graph\n" * 20,
}


@pytest.mark.parametrize("sub", ["visual", "textual"])
@pytest.mark.parametrize("kind", list(NOT_MODELS))
def test_model_onnx_that_is_not_a_model(
    tiny_model_dir: Path, tmp_path: Path, sub: str, kind: str
) -> None:
    path = _copy(tiny_model_dir, tmp_path)
    onnx_path = path / sub / "model.onnx"
    onnx_path.write_bytes(NOT_MODELS[kind])
    model = _load(path)  # sessions load on first use
    with pytest.raises(ModelError) as info:
        _encode_both(model)
    assert str(onnx_path) in str(info.value)
    assert "not a valid ONNX model" in str(info.value)


def _identity_graph(path: Path, input_name: str, shape: list, elem: int) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", [input_name], ["embedding"])],
        "wrong-input",
        [helper.make_tensor_value_info(input_name, elem, shape)],
        [helper.make_tensor_value_info("embedding", elem or TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_visual_graph_with_wrong_input_name(tiny_model_dir: Path, tmp_path: Path) -> None:
    from onnx import TensorProto

    path = _copy(tiny_model_dir, tmp_path)
    onnx_path = path / "visual" / "model.onnx"
    _identity_graph(onnx_path, "pixel_values", ["batch", 3, 224, 224], TensorProto.FLOAT)
    model = _load(path)
    with pytest.raises(ModelError) as info:
        model.encode_images([natural_image(64, 48)])
    message = str(info.value)
    assert str(onnx_path) in message
    assert "expected an input named 'image'" in message
    assert "pixel_values" in message


def test_textual_graph_with_wrong_input_name(tiny_model_dir: Path, tmp_path: Path) -> None:
    from onnx import TensorProto

    path = _copy(tiny_model_dir, tmp_path)
    onnx_path = path / "textual" / "model.onnx"
    _identity_graph(onnx_path, "input_ids", ["batch", 77], TensorProto.INT64)
    model = _load(path)
    with pytest.raises(ModelError) as info:
        model.encode_texts(["a dog"])
    assert str(onnx_path) in str(info.value)
    assert "expected an input named 'text'" in str(info.value)
    assert "input_ids" in str(info.value)


def test_visual_graph_for_another_image_size(tiny_model_dir: Path, tmp_path: Path) -> None:
    from onnx import TensorProto

    path = _copy(tiny_model_dir, tmp_path)
    onnx_path = path / "visual" / "model.onnx"
    _identity_graph(onnx_path, "image", ["batch", 3, 64, 64], TensorProto.FLOAT)
    with pytest.raises(ModelError) as info:
        _load(path).encode_images([natural_image(64, 48)])
    assert str(onnx_path) in str(info.value)
    assert "inference failed" in str(info.value)


def test_graph_whose_width_disagrees_with_config(tiny_model_dir: Path, tmp_path: Path) -> None:
    path = _copy(tiny_model_dir, tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["embed_dim"] = 512
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError) as info:
        _load(path).encode_texts(["a dog"])
    assert str(path) in str(info.value)
    assert "32-d" in str(info.value)
    assert "512" in str(info.value)


# -- the configs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["config.json", "visual/preprocess_cfg.json", "textual/tokenizer_config.json"]
)
def test_config_that_is_not_json(tiny_model_dir: Path, tmp_path: Path, name: str) -> None:
    path = _copy(tiny_model_dir, tmp_path)
    (path / name).write_text("{ this is not json")
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    assert str(path / name) in str(info.value)
    assert "not a readable JSON file" in str(info.value)


def test_config_that_is_a_json_list(tiny_model_dir: Path, tmp_path: Path) -> None:
    path = _copy(tiny_model_dir, tmp_path)
    (path / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(ModelError, match="expected a JSON object") as info:
        load_model(str(path))
    assert str(path / "config.json") in str(info.value)


def test_config_without_embed_dim(tiny_model_dir: Path, tmp_path: Path) -> None:
    path = _copy(tiny_model_dir, tmp_path)
    config = json.loads((path / "config.json").read_text())
    del config["embed_dim"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    assert str(path) in str(info.value)
    assert "lacks a field" in str(info.value)
    assert "embed_dim" in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("resize_mode", "letterbox", "unsupported resize_mode 'letterbox'"),
        ("interpolation", "area", "unsupported interpolation 'area'"),
        ("mean", [0.5, 0.5], "'mean' must be a list of 3 numbers"),
    ],
)
def test_bad_preprocess_setting(
    tiny_model_dir: Path, tmp_path: Path, key: str, value: object, reason: str
) -> None:
    path = _copy(tiny_model_dir, tmp_path)
    cfg_path = path / "visual" / "preprocess_cfg.json"
    cfg = json.loads(cfg_path.read_text())
    cfg[key] = value
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    assert str(cfg_path) in str(info.value)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"garbage, not a tokenizer", b'{"version": "1.0", "model": 42}', b""],
    ids=["text", "wrong-json", "empty"],
)
def test_tokenizer_json_that_is_garbage(
    tiny_model_dir: Path, tmp_path: Path, content: bytes
) -> None:
    path = _copy(tiny_model_dir, tmp_path)
    tok_path = path / "textual" / "tokenizer.json"
    tok_path.write_bytes(content)
    model = _load(path)
    with pytest.raises(ModelError) as info:
        model.encode_texts(["a dog"])
    assert str(tok_path) in str(info.value)
    assert "not a valid tokenizer.json" in str(info.value)
    # The image side does not need the tokenizer.
    assert model.encode_images([natural_image(64, 48)]).shape == (1, model.dim)


def test_pad_token_not_in_vocabulary(tiny_model_dir: Path, tmp_path: Path) -> None:
    path = _copy(tiny_model_dir, tmp_path)
    cfg_path = path / "textual" / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["pad_token"] = "<|no-such-token|>"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelError) as info:
        _load(path).encode_texts(["a dog"])
    assert str(path / "textual" / "tokenizer.json") in str(info.value)
    assert "'<|no-such-token|>' is not in the vocabulary" in str(info.value)


# -- the inputs -------------------------------------------------------------------------------


def test_empty_text_list(tiny_model: ClipModel) -> None:
    with pytest.raises(ModelError, match="encode_texts: the text list is empty"):
        tiny_model.encode_texts([])


def test_text_that_is_not_a_string(tiny_model: ClipModel) -> None:
    with pytest.raises(QueryError, match="text #1 is int, not a string"):
        tiny_model.encode_texts(["a dog", 42])  # type: ignore[list-item]


def test_empty_image_list(tiny_model: ClipModel) -> None:
    with pytest.raises(ModelError, match="encode_images: the image list is empty"):
        tiny_model.encode_images([])


def test_image_bytes_that_are_text(tiny_model: ClipModel) -> None:
    with pytest.raises(ImageError) as info:
        tiny_model.encode_images([natural_image(64, 48), b"hello, I am not a picture\n"])
    assert "image #1" in str(info.value)
    assert "not a supported image" in str(info.value)


def test_empty_image_bytes(tiny_model: ClipModel) -> None:
    with pytest.raises(ImageError, match=r"image #0: not a supported image \(empty file\)"):
        tiny_model.encode_images([b""])


@pytest.mark.parametrize("as_str", [False, True])
def test_image_path_to_a_text_file(tiny_model: ClipModel, tmp_path: Path, as_str: bool) -> None:
    path = tmp_path / "notes.jpg"  # the extension lies; content decides
    path.write_text("shopping list: milk, eggs\n")
    with pytest.raises(ImageError) as info:
        tiny_model.encode_images([str(path) if as_str else path])
    assert str(path) in str(info.value)
    assert "not a supported image" in str(info.value)


def test_missing_image_path(tiny_model: ClipModel, tmp_path: Path) -> None:
    path = tmp_path / "gone.jpg"
    with pytest.raises(ImageError) as info:
        tiny_model.encode_images([path])
    assert str(path) in str(info.value)
    assert "cannot read" in str(info.value)
    assert os.strerror(2) in str(info.value)  # "No such file or directory"


def test_image_path_that_is_a_directory(tiny_model: ClipModel, tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        tiny_model.encode_images([tmp_path])
    assert str(tmp_path) in str(info.value)
    assert "cannot read" in str(info.value)


@pytest.mark.parametrize(
    "shape", [(3, 224, 224), (1, 3, 64, 64), (1, 1, 224, 224), (2, 224, 224, 3)]
)
def test_pixels_of_the_wrong_shape(tiny_model: ClipModel, shape: tuple[int, ...]) -> None:
    with pytest.raises(ModelError) as info:
        tiny_model.encode_pixels(np.zeros(shape, dtype=np.float32))
    assert "pixels must have shape [N, 3, 224, 224]" in str(info.value)
    assert str(list(shape)) in str(info.value)


def test_bad_threads_setting(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEFIND_THREADS", "many")
    with pytest.raises(ModelError, match="IMAGEFIND_THREADS='many': not a whole number"):
        load_model(str(tiny_model_dir))
