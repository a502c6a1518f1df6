"""The ``imagefind`` command: a thin face over :class:`imagefind.Library`.

Every command opens the library, calls one method and prints the result; the library's own
exceptions become ``Error: ...`` with exit code 1 (a traceback only with ``--debug``).
"""

from imagefind.cli import finetune_cmds as _finetune_cmds  # noqa: F401 - registers commands
from imagefind.cli import library_cmds as _library_cmds  # noqa: F401 - registers commands
from imagefind.cli import models_cmds as _models_cmds  # noqa: F401 - registers commands
from imagefind.cli import ocr_cmds as _ocr_cmds  # noqa: F401 - registers commands
from imagefind.cli import store_cmds as _store_cmds  # noqa: F401 - registers commands
from imagefind.cli import sync_cmds as _sync_cmds  # noqa: F401 - registers commands
from imagefind.cli.app import app, main

__all__ = ["app", "main"]
