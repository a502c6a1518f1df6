"""A transformers checkpoint's image-processor settings, wherever its version keeps them.

Older transformers save them in ``preprocessor_config.json``; current ones save a whole
processor in ``processor_config.json`` with the settings nested under ``image_processor``.
Export and fine-tuning read them through here, so both take checkpoints of either age.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def _fetch(source: str, name: str) -> Path | None:
    local = Path(source).expanduser()
    if local.is_dir():
        return local / name if (local / name).is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(source, name))
    except EntryNotFoundError:
        return None


def processor_settings(source: str | Path) -> dict[str, Any]:
    """The image processor's settings (``image_mean``, ``resample``…) of a checkpoint folder
    or hub id. Raises OSError when the checkpoint has neither file, ValueError on bad JSON."""
    for name in PROCESSOR_FILES:
        path = _fetch(str(source), name)
        if path is None:
            continue
        data = json.loads(path.read_text())
        nested = data.get("image_processor") if isinstance(data, dict) else None
        settings = nested if isinstance(nested, dict) else data
        if not isinstance(settings, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return settings
    raise FileNotFoundError(
        f"{source}: no image-processor settings ({' or '.join(PROCESSOR_FILES)})"
    )
