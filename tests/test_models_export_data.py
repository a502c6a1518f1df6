"""The exporter's weights file holds each weight once, also when torch already wrote one."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def test_name_io_rewrites_an_existing_weights_file(tmp_path: Path) -> None:
    """torch.onnx.export puts a graph over 2 GB's weights in ``model.onnx.data``; renaming the
    inputs re-saves to the same name, and onnx appends: the file must not grow (an SO400M
    export came out at twice its size)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from imagefind.models.export import _name_io

    weight = numpy_helper.from_array(np.ones((64, 64), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [weight],
    )
    path = tmp_path / "model.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path), save_as_external_data=True, location="model.onnx.data",
              size_threshold=0)  # fmt: skip
    before = (tmp_path / "model.onnx.data").stat().st_size

    _name_io(path, "image")

    assert (tmp_path / "model.onnx.data").stat().st_size == before
    loaded = onnx.load(str(path))
    assert [i.name for i in loaded.graph.input] == ["image"]
    assert np.array_equal(numpy_helper.to_array(loaded.graph.initializer[0]), np.ones((64, 64)))
