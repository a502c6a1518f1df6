"""The load benchmark in a tiny configuration, so that it cannot rot: a real server, every
kind of request, the upload check and one SIGKILL, in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import load


def test_load_benchmark_runs_clean(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEFIND_CACHE", str(tmp_path / "model-cache"))
    out = tmp_path / "load.json"
    argv = ["--clients", "4", "--seconds", "3", "--images", "200", "--kills", "1"]
    argv += ["--model", str(tiny_model_dir), "--data", str(tmp_path), "--out", str(out)]

    assert load.main(argv) == 0

    result = json.loads(out.read_text())
    assert result["failures"] == []
    run = result["load"]
    assert set(run["endpoints"]) >= {"search_text", "search_image", "upload", "thumbnail"}
    assert run["responses_5xx"] == run["transport_errors"] == run["database_locked"] == 0
    assert run["verify"]["lost"] == 0 and run["verify"]["acknowledged_uploads"] > 0
    assert run["memory"]["peak_vmhwm_mib"] > 0
    kills = result["kills"]
    assert kills["kills"] == 1 and kills["lost"] == 0 and kills["integrity_ok"]
    assert "| endpoint |" in load.render(result)
