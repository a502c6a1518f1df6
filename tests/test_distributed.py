"""Indexing on Ray Data, on a local two-CPU Ray cluster started by the test: the same summary,
the same failures and the same vectors as the in-process pipeline; committed batches survive
an interrupted run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from imagefind import Library

ray = pytest.importorskip("ray", reason="the Ray tests need the 'ray' extra")


def test_each_ray_library_joins_its_own_cluster(tmp_path: Path, tiny_model_dir: Path) -> None:
    """``--ray-address`` was written on the class, so it reached every later RayLibrary."""
    from imagefind.distributed import RayLibrary

    model = str(tiny_model_dir)
    with (
        RayLibrary.open(tmp_path / "a", model=model, store="", ray_address="ray://a:1") as a,
        RayLibrary.open(tmp_path / "b", model=model, store="") as b,
    ):
        assert a._pipeline(None, None, None).address == "ray://a:1"  # type: ignore[attr-defined]
        assert b._pipeline(None, None, None).address is None  # type: ignore[attr-defined]
    assert RayLibrary.ray_address is None


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _vectors_by_path(lib: Library) -> dict[str, np.ndarray]:
    ids, vectors = lib.store.vectors()
    return {lib.get(int(i)).source: v for i, v in zip(ids, vectors, strict=True)}


def test_ray_index_matches_the_local_pipeline(
    local_ray: None, tmp_path: Path, tiny_model_dir: Path, photo_folder: Path, monkeypatch
) -> None:
    from imagefind.distributed import RayLibrary, RayPipeline

    remote_runs: list[int] = []
    run = RayPipeline._remote

    def counted(self, items):  # type: ignore[no-untyped-def]
        remote_runs.append(len(items))
        return run(self, items)

    monkeypatch.setattr(RayPipeline, "_remote", counted)

    model = str(tiny_model_dir)
    with Library.open(tmp_path / "local", model=model, store="") as lib:
        local = lib.index([photo_folder], batch_size=4)
        expected = _vectors_by_path(lib)
    with RayLibrary.open(tmp_path / "ray", model=model, store="") as lib:
        remote = lib.index([photo_folder], batch_size=4)
        got = _vectors_by_path(lib)
        assert all(lib.thumbnail_path(lib.store.by_path(p).id).is_file() for p in got)
        again = lib.index([photo_folder])  # incremental, on Ray too
    for field in ("added", "copies", "updated", "renamed", "removed", "unchanged"):
        assert getattr(remote, field) == getattr(local, field), field
    assert sorted(remote.skipped, key=str) == sorted(local.skipped, key=str)
    assert got.keys() == expected.keys()
    assert max(float(np.abs(got[p] - expected[p]).max()) for p in got) < 2e-3  # float16
    assert again.encoded == 0 and again.unchanged == local.added
    assert remote_runs and remote_runs[0] >= remote.encoded  # the files went through Ray


def test_an_interrupted_ray_run_keeps_its_committed_batches(
    local_ray: None, tmp_path: Path, tiny_model_dir: Path, photo_folder: Path
) -> None:
    from imagefind.distributed import RayLibrary

    class Stop(Exception):
        pass

    def stop_after_two_batches(done: int, total: int) -> None:
        if done >= 9:
            raise Stop

    with RayLibrary.open(tmp_path / "lib", model=str(tiny_model_dir), store="") as lib:
        with pytest.raises(Stop):
            lib.index([photo_folder], batch_size=4, progress=stop_after_two_batches)
        kept = lib.count()
        assert kept >= 4  # whole batches, committed before the interruption
        rest = lib.index([photo_folder], batch_size=4)
        assert rest.unchanged == kept and rest.added + kept == lib.count()


def test_cli_index_with_ray(
    local_ray: None, tmp_path: Path, tiny_model_dir: Path, photo_folder: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from imagefind.cli import app
    from tests.conftest import PHOTO_COUNT

    args = ["index", str(photo_folder), "--json", "-L", str(tmp_path / "lib")]
    result = CliRunner().invoke(app, [*args, "--model", str(tiny_model_dir), "--ray"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["added"] == PHOTO_COUNT and len(summary["skipped"]) == 2
