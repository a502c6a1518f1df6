"""Model names, the cache, downloads and offline use, with a fake hub (never the network)."""

from __future__ import annotations

import fnmatch
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError

from imagefind.errors import ModelError, ModelNotFoundError
from imagefind.models import DEFAULT_MODEL, cache_dir, ensure_local, load_model, resolve
from imagefind.models.hub import ALLOW_PATTERNS, IGNORE_PATTERNS, cached_models
from tests.synth import natural_image

SHORT = "ViT-B-32__openai"
REPO = f"immich-app/{SHORT}"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("IMAGEFIND_CACHE", str(root))
    monkeypatch.delenv("IMAGEFIND_MODEL", raising=False)
    return root


class FakeHub:
    """Stands in for ``huggingface_hub.snapshot_download``: each call runs the next action."""

    def __init__(self, *actions: Callable[[Path], None]) -> None:
        self.actions = list(actions)
        self.calls: list[dict] = []

    def __call__(self, repo_id: str, **kwargs) -> str:
        self.calls.append({"repo_id": repo_id, **kwargs})
        local = Path(kwargs["local_dir"])
        action = self.actions[min(len(self.calls), len(self.actions)) - 1]
        action(local)
        return str(local)


def _good(model_dir: Path) -> Callable[[Path], None]:
    def write(local: Path) -> None:
        shutil.copytree(model_dir, local, dirs_exist_ok=True)

    return write


def _broken(model_dir: Path) -> Callable[[Path], None]:
    """A download whose files all arrived but whose visual graph is cut short."""

    def write(local: Path) -> None:
        shutil.copytree(model_dir, local, dirs_exist_ok=True)
        graph = local / "visual" / "model.onnx"
        graph.write_bytes(graph.read_bytes()[:1000])

    return write


def _partial(model_dir: Path) -> Callable[[Path], None]:
    """A download that stopped half-way: config written, then the connection dropped."""

    def write(local: Path) -> None:
        local.mkdir(parents=True, exist_ok=True)
        shutil.copy(model_dir / "config.json", local / "config.json")
        raise OSError("Connection reset by peer")

    return write


def _raise(exc: Exception) -> Callable[[Path], None]:
    def fail(local: Path) -> None:
        raise exc

    return fail


def _install(monkeypatch: pytest.MonkeyPatch, hub: FakeHub) -> FakeHub:
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub)
    return hub


# -- names ------------------------------------------------------------------------------------


def test_short_name_is_an_immich_app_repo(cache: Path) -> None:
    ref = resolve(SHORT)
    assert ref.repo_id == REPO
    assert ref.path == cache / f"immich-app__{SHORT}"
    assert ref.name == SHORT
    assert not ref.is_local
    assert cache_dir() == cache


def test_repo_id_keeps_its_owner(cache: Path) -> None:
    ref = resolve("someone/my-clip")
    assert ref.repo_id == "someone/my-clip"
    assert ref.path == cache / "someone__my-clip"
    assert not ref.is_local


def test_absolute_path_is_local(tmp_path: Path) -> None:
    path = tmp_path / "does-not-exist-yet"
    ref = resolve(str(path))
    assert ref.is_local
    assert ref.path == path


def test_relative_path_is_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ref = resolve("./models/clip")
    assert ref.is_local
    assert ref.path.resolve() == tmp_path / "models" / "clip"


def test_existing_relative_directory_is_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``owner/name`` looks like a repo id, but a directory of that name wins."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "someone" / "my-clip").mkdir(parents=True)
    ref = resolve("someone/my-clip")
    assert ref.is_local
    assert ref.path.resolve() == tmp_path / "someone" / "my-clip"


def test_nested_relative_path_is_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve("models/clip/b32").is_local


def test_home_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    ref = resolve("~/models/clip")
    assert ref.is_local
    assert ref.path == tmp_path / "models" / "clip"


def test_model_from_environment(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv("IMAGEFIND_MODEL", "ViT-L-14__openai")
    ref = resolve()
    assert ref.repo_id == "immich-app/ViT-L-14__openai"
    assert ref.path == cache / "immich-app__ViT-L-14__openai"
    # A name given explicitly wins over the environment.
    assert resolve(SHORT).repo_id == REPO


def test_local_model_from_environment(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEFIND_MODEL", str(tiny_model_dir))
    assert resolve().path == tiny_model_dir
    assert load_model().dim == 32


def test_default_model() -> None:
    assert DEFAULT_MODEL == SHORT
    assert resolve().repo_id == REPO
    assert resolve("").repo_id == REPO


# -- download and cache -----------------------------------------------------------------------


def test_download_then_load_and_encode(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    hub = _install(monkeypatch, FakeHub(_good(tiny_model_dir)))
    model = load_model(SHORT)
    assert len(hub.calls) == 1
    assert hub.calls[0]["repo_id"] == REPO
    assert Path(hub.calls[0]["local_dir"]) == cache / f"immich-app__{SHORT}"
    assert model.name == SHORT
    assert model.dir.path == cache / f"immich-app__{SHORT}"
    images = model.encode_images([natural_image(120, 90, seed=s) for s in range(3)])
    texts = model.encode_texts(["a dog", "a red car"])
    assert images.shape == (3, 32)
    assert texts.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, rtol=1e-5)


def test_second_load_uses_the_cache(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _install(monkeypatch, FakeHub(_good(tiny_model_dir)))
    load_model(SHORT)
    load_model(SHORT)
    load_model(REPO)  # the same repo by its id
    assert len(hub.calls) == 1
    # And the cached copy keeps working with the hub unreachable.
    _install(monkeypatch, FakeHub(_raise(OSError("Network is unreachable"))))
    assert load_model(SHORT).encode_texts(["a dog"]).shape == (1, 32)


def test_force_downloads_again(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _install(monkeypatch, FakeHub(_good(tiny_model_dir)))
    ref = resolve(SHORT)
    ensure_local(ref)
    (ref.path / "stale-file").write_text("left over")
    ensure_local(ref, force=True)
    assert len(hub.calls) == 2
    assert not (ref.path / "stale-file").exists()


def test_download_patterns(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _install(monkeypatch, FakeHub(_good(tiny_model_dir)))
    load_model(SHORT)
    allow, ignore = hub.calls[0]["allow_patterns"], hub.calls[0]["ignore_patterns"]
    assert allow == ALLOW_PATTERNS
    assert ignore == IGNORE_PATTERNS

    def fetched(name: str) -> bool:  # as huggingface_hub filters repo files
        return any(fnmatch.fnmatch(name, p) for p in allow) and not any(
            fnmatch.fnmatch(name, p) for p in ignore
        )

    wanted = [
        "config.json",
        "visual/model.onnx",
        "visual/preprocess_cfg.json",
        "visual/model.onnx_data",  # a large model's weights beside the graph
        "textual/model.onnx",
        "textual/tokenizer.json",
        "textual/tokenizer_config.json",
    ]
    unwanted = [
        "visual/model.armnn",
        "textual/model.armnn",
        "visual/rknpu/rk3588/model.rknn",
        "textual/model.rknn",
        "visual/fp16/model.onnx",
        "README.md",
        ".gitattributes",
        "openclip.pt",
    ]
    assert [n for n in wanted if not fetched(n)] == []
    assert [n for n in unwanted if fetched(n)] == []


def test_broken_download_is_retried_once(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = _install(monkeypatch, FakeHub(_broken(tiny_model_dir), _good(tiny_model_dir)))
    model = load_model(SHORT)
    assert len(hub.calls) == 2
    assert model.encode_images([natural_image(64, 64)]).shape == (1, 32)


def test_incomplete_download_is_retried_once(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def incomplete(local: Path) -> None:
        _good(tiny_model_dir)(local)
        (local / "textual" / "tokenizer.json").unlink()

    hub = _install(monkeypatch, FakeHub(incomplete, _good(tiny_model_dir)))
    assert load_model(SHORT).encode_texts(["a dog"]).shape == (1, 32)
    assert len(hub.calls) == 2


def test_broken_twice_is_reported_and_cleared(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    hub = _install(monkeypatch, FakeHub(_broken(tiny_model_dir)))
    with pytest.raises(ModelError) as info:
        load_model(SHORT)
    assert len(hub.calls) == 2
    path = cache / f"immich-app__{SHORT}"
    message = str(info.value)
    assert SHORT in message
    assert REPO in message
    assert "broken" in message
    assert str(path) in message
    assert "visual/model.onnx" in message  # which file was at fault
    assert not path.exists()


def test_broken_cache_is_downloaded_again(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached copy that lost a file (a disk cleaner, an interrupted copy) is refetched."""
    hub = _install(monkeypatch, FakeHub(_good(tiny_model_dir)))
    ref = resolve(SHORT)
    load_model(SHORT)
    (ref.path / "visual" / "preprocess_cfg.json").unlink()
    (ref.path / "stale-file").write_text("left over")
    assert load_model(SHORT).encode_images([natural_image(64, 64)]).shape == (1, 32)
    assert len(hub.calls) == 2
    assert not (ref.path / "stale-file").exists()


def test_partial_download_then_success(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = _install(monkeypatch, FakeHub(_partial(tiny_model_dir), _good(tiny_model_dir)))
    with pytest.raises(ModelNotFoundError, match="Connection reset by peer"):
        load_model(SHORT)
    # The connection is back: the half-written directory is replaced, not trusted.
    assert load_model(SHORT).encode_texts(["a dog"]).shape == (1, 32)
    assert len(hub.calls) == 2


def _assert_helpful(message: str, cache: Path, name: str = SHORT) -> None:
    assert repr(name) in message
    assert str(cache / f"immich-app__{name}") in message
    assert "--model" in message
    assert "IMAGEFIND_MODEL" in message
    assert "imagefind models export" in message
    assert ".." not in message.replace("./", "")


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (OSError("Temporary failure in name resolution"), "Temporary failure"),
        (
            LocalEntryNotFoundError(
                "Cannot find an appropriate cached snapshot folder for the specified "
                "revision on the local disk and outgoing traffic has been disabled."
            ),
            "outgoing traffic has been disabled",
        ),
        (TimeoutError(), "TimeoutError"),
        (ConnectionError("Max retries exceeded\nwith url: /api/models"), "Max retries"),
    ],
    ids=["dns", "hf-offline", "timeout", "connection"],
)
def test_network_failure_says_how_to_work_offline(
    monkeypatch: pytest.MonkeyPatch, cache: Path, exc: Exception, reason: str
) -> None:
    _install(monkeypatch, FakeHub(_raise(exc)))
    with pytest.raises(ModelNotFoundError) as info:
        load_model(SHORT)
    message = str(info.value)
    _assert_helpful(message, cache)
    assert reason in message
    assert "\n" not in message
    assert info.value.__cause__ is exc


def test_cached_models(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    assert cached_models() == []
    _install(monkeypatch, FakeHub(_good(tiny_model_dir)))
    load_model(SHORT)
    load_model("someone/my-clip")
    (cache / "immich-app__half-done").mkdir()  # an incomplete download is not listed
    (cache / "not-a-model-dir").mkdir()
    listed = {ref.name: ref for ref in cached_models()}
    assert sorted(listed) == [SHORT, "someone/my-clip"]
    assert listed[SHORT].repo_id == REPO
    assert listed[SHORT].path == cache / f"immich-app__{SHORT}"
    assert listed["someone/my-clip"].repo_id == "someone/my-clip"


# -- the real huggingface_hub, offline ----------------------------------------------------------


def test_real_hub_offline_fails_fast_and_helpfully(
    monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads the variable when first imported, which has happened by now.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError) as info:
        load_model(SHORT)
    assert time.monotonic() - start < 10
    _assert_helpful(str(info.value), cache)
    assert not (cache / f"immich-app__{SHORT}" / "config.json").exists()
