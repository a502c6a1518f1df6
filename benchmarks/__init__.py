"""Benchmark scripts: run as ``python -m benchmarks.<name>`` from the repository root.

The source tree is put on the path when imagefind is not installed, so a plain checkout works.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[1] / "src"
if importlib.util.find_spec("imagefind") is None and _SRC.is_dir():
    sys.path.insert(0, str(_SRC))
