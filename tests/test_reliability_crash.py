"""Crash safety: SIGKILL an indexer and a remover at random moments, then check that the
catalog is intact, nothing committed was lost, a rerun finishes the job without encoding
anything twice, and no orphan thumbnail or upload survives the next run (the server is in
test_reliability_crash_server.py; the helpers are in crashkit.py)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imagefind.library import Library
from tests.crashkit import (
    CATALOG_NAME,
    SEED,
    assert_files_behind_rows,
    assert_searchable,
    catalog_rows,
    cli_env,
    imagefind_exe,
    integrity,
    jpeg,
    kill,
    orphans,
    wait_for_rows,
    write_photos,
)
from tests.crashkit import server as server  # re-exported: other reliability tests import it here

PHOTOS = 300
TRIALS = 8


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 small natural-looking JPEGs, generated once for the module."""
    return write_photos(tmp_path_factory.mktemp("crash") / "photos", PHOTOS)


def index_cmd(photos: Path, library: Path, model_dir: Path) -> list[str]:
    return [
        imagefind_exe(), "index", str(photos), "--library", str(library),
        "--model", str(model_dir), "--batch-size", "8", "--json",
    ]  # fmt: skip


# -- indexing --------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_during_index_loses_nothing(
    photos: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Kill `imagefind index` at random moments (some at a random time after start, some just
    after a random number of rows has landed); after each kill the catalog is intact and
    every committed image is searchable; rows never disappear; the final rerun encodes only
    what was never committed and leaves no orphan files."""
    import json

    rng = random.Random(SEED)
    library = tmp_path / "lib"
    before: dict[int, tuple[str | None, str]] = {}
    kills, lost, orphaned_after_kill = 0, 0, 0
    trial = 0
    while kills < TRIALS and trial < TRIALS * 3:
        trial += 1
        proc = subprocess.Popen(
            index_cmd(photos, library, tiny_model_dir),
            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if trial % 3 == 1:  # by the clock: may land in start-up, walking or a batch
            # Short: a fast run must not finish most of the corpus before the kill lands.
            time.sleep(rng.uniform(0.2, 0.6))
        else:  # by progress: mid-run, right around a commit
            remaining = PHOTOS - len(before)
            wait_for_rows(library, proc, len(before) + rng.randint(1, min(8, remaining - 24)), 60)
            time.sleep(rng.uniform(0, 0.08))
        kills += kill(proc)
        if not (library / CATALOG_NAME).exists():
            continue
        after = catalog_rows(library)  # read straight after the kill: what was committed
        assert integrity(library) == "ok"
        missing = {i: row for i, row in before.items() if after.get(i) != row}
        lost += len(missing)
        assert not missing, f"trial {trial}: rows lost or changed by a crash: {missing}"
        assert_files_behind_rows(library)
        assert_searchable(library, tiny_model_dir, set(after))
        orphaned_after_kill += sum(len(v) for v in orphans(library).values())
        before = after
        if len(before) >= PHOTOS - 30:
            break  # keep a rest for the final rerun to encode
    assert kills >= 5, f"only {kills} kills landed mid-run in {trial} trials"

    done = subprocess.run(
        index_cmd(photos, library, tiny_model_dir),
        env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["encoded"] == PHOTOS - len(before), summary
    assert summary["unchanged"] == len(before) and summary["skipped"] == []
    final = catalog_rows(library)
    assert len(final) == PHOTOS
    assert all(final[i] == row for i, row in before.items())
    assert integrity(library) == "ok"
    assert orphans(library) == {"thumbs": set(), "uploads": set()}
    assert_files_behind_rows(library)
    assert_searchable(library, tiny_model_dir, set(final))
    print(
        f"\nindex: {trial} runs, {kills} SIGKILLs mid-run, {lost} rows lost, "
        f"{orphaned_after_kill} orphan files seen after kills (all collected by the rerun)"
    )


# -- removing --------------------------------------------------------------------------------

REMOVE_LOOP = """
import sys
from imagefind.library import Library
lib = Library.open(sys.argv[1])
for image_id in sys.argv[2:]:
    lib.remove([int(image_id)])
"""


@pytest.mark.slow
def test_sigkill_during_remove(photos: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    """Kill removals (one by one through the library, and `imagefind remove` of a folder) at
    random moments: each removal is all-or-nothing, what is not removed stays searchable,
    and files of removed rows are gone after the next index run."""
    rng = random.Random(SEED + 1)
    library = tmp_path / "lib"
    subset = tmp_path / "subset"
    subset.mkdir()
    for p in sorted(photos.iterdir())[:120]:
        os.link(p, subset / p.name)
    run = subprocess.run(
        index_cmd(subset, library, tiny_model_dir), env=cli_env(), capture_output=True
    )
    assert run.returncode == 0, run.stderr
    kills, trial = 0, 0
    # Five trials, and up to two more while fewer than five kills caught a process alive (a
    # busy machine can let a removal finish first); 7 x 15 ids stay under the 120 rows.
    while trial < 5 or (kills < 5 and trial < 7):
        trial += 1
        rows = catalog_rows(library)
        ids = sorted(rows)[:15]
        proc = subprocess.Popen(
            [sys.executable, "-c", REMOVE_LOOP, str(library), *map(str, ids)], env=cli_env()
        )
        wait_for_rows_below(library, proc, len(rows) - rng.randint(1, 10), 30)
        time.sleep(rng.uniform(0, 0.02))
        kills += kill(proc)
        after = catalog_rows(library)
        assert integrity(library) == "ok", f"trial {trial}"
        assert {i: r for i, r in rows.items() if i not in ids} == {
            i: r for i, r in after.items() if i not in ids
        }, "a removal touched rows it was not asked to remove"
        assert_files_behind_rows(library)
        assert_searchable(library, tiny_model_dir, set(after))

    # `imagefind remove FOLDER`: one transaction, so all or nothing whatever the moment.
    for _ in range(3):
        rows = catalog_rows(library)
        proc = subprocess.Popen(
            [imagefind_exe(), "remove", str(subset), "--library", str(library)],
            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rng.uniform(0.2, 2.0))
        kills += kill(proc)
        after = catalog_rows(library)
        assert integrity(library) == "ok"
        assert after in (rows, {}), "a folder removal was half applied"
        if not after:
            break
    assert kills >= 5

    # The next index run brings the folder back and collects every orphan.
    run = subprocess.run(
        index_cmd(subset, library, tiny_model_dir), env=cli_env(), capture_output=True
    )
    assert run.returncode == 0, run.stderr
    assert len(catalog_rows(library)) == 120
    assert orphans(library) == {"thumbs": set(), "uploads": set()}
    assert_files_behind_rows(library)


def wait_for_rows_below(library: Path, proc: subprocess.Popen, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if len(catalog_rows(library)) <= target:
            return
        time.sleep(0.002)


def test_files_of_a_removal_cut_short_are_collected(
    photos: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic twin of the kill test: the process dies after the catalog commit and
    before the files go; the next `index` removes them."""
    folder = tmp_path / "few"
    folder.mkdir()
    for p in sorted(photos.iterdir())[:6]:
        os.link(p, folder / p.name)
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        assert lib.index([folder]).added == 6
        upload = lib.add(jpeg(9000), name="up.jpg")

        def crash(_: object) -> None:
            raise KeyboardInterrupt  # stands in for the process dying here

        monkeypatch.setattr(lib.files, "discard", crash)
        with pytest.raises(KeyboardInterrupt):
            lib.remove([upload.id, lib.images(0, 10)[-1].id])
        monkeypatch.undo()
        assert lib.count() == 5
        assert sum(len(v) for v in orphans(lib.path).values()) == 3  # 2 thumbs, 1 upload
        lib.index([folder])
        assert orphans(lib.path) == {"thumbs": set(), "uploads": set()}
