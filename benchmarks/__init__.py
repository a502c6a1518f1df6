"""Benchmark scripts: run as ``python -m benchmarks.<name>`` from the repository root.

The source tree is put on the path when imagefind is not installed, so a plain checkout works.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[1] / "src"
if importlib.util.find_spec("imagefind") is None and _SRC.is_dir():
    sys.path.insert(0, str(_SRC))


def run_part(prog: str, doc: str | None, run: Callable[[bool], Any], argv: list[str] | None) -> int:
    """The command line of a part run on its own: ``--quick``, then its results as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.quick), indent=1))
    return 0


def git_commit() -> str | None:
    """The commit measured, marked when the sources differ from it."""
    root = _SRC.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "src"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() + ("+dirty-src" if dirty.stdout.strip() else "")
    except OSError:
        return None
