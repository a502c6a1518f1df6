"""The library's own files: what ``LibraryFiles`` counts while writers work beside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagefind.files import LibraryFiles


def test_size_passes_over_a_file_that_vanishes_while_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen under load: /api/stats answered 500 when an atomic write renamed its temporary
    file between the listing and the stat."""
    files = LibraryFiles(tmp_path)
    files.put_thumb("ab" + "0" * 62, b"x" * 10)
    files.put_upload("cd" + "0" * 62, "JPEG", b"y" * 20)
    listed = list(files.thumbs.glob("*/*"))
    gone = files.thumbs / "ab" / ".tmp-renamed-meanwhile"
    real_glob, real_is_file = Path.glob, Path.is_file

    def glob_with_a_ghost(self: Path, pattern: str) -> Iterator[Path]:
        yield from real_glob(self, pattern)
        if self == files.thumbs:
            yield gone  # listed, seen as a file, then renamed away before its size is read

    monkeypatch.setattr(Path, "glob", glob_with_a_ghost)
    monkeypatch.setattr(Path, "is_file", lambda self: self == gone or real_is_file(self))
    assert len(listed) == 1
    assert files.size_bytes() == 30
