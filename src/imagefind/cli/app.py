"""The typer application, its error handling and the options commands share."""

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from imagefind.errors import ImagefindError

if TYPE_CHECKING:
    from rich.console import Console


class LazyConsole:
    """A rich console made on first use: importing rich costs 30 ms, which a query that
    prints ten plain lines should not pay."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def rich(self) -> "Console":
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return self._console

    @property
    def is_terminal(self) -> bool:
        return self.rich.is_terminal

    def print(self, *objects: Any, **options: Any) -> None:
        self.rich.print(*objects, **options)


stdout = LazyConsole()
stderr = LazyConsole(stderr=True)


class _Group(TyperGroup):
    """Turns errors into one clear line and exit code 1, unless --debug asks for the trace."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            stderr.print(
                "Interrupted: committed batches are kept; run the command again to finish."
            )
            raise typer.Exit(130) from None
        except ImagefindError as exc:
            if ctx.params.get("debug"):
                raise
            stderr.print(f"Error: {exc}", markup=False)
            raise typer.Exit(1) from exc
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except Exception as exc:
            if ctx.params.get("debug") or _is_click_control(exc):
                raise
            stderr.print(
                f"Error: internal error: {type(exc).__name__}: {exc} "
                "(rerun with --debug for the traceback)",
                markup=False,
            )
            raise typer.Exit(1) from exc


def _is_click_control(exc: Exception) -> bool:
    """Usage errors and exits of the (vendored) click that typer handles itself."""
    return any(cls.__name__ in ("ClickException", "Exit", "Abort") for cls in type(exc).__mro__)


app = typer.Typer(
    cls=_Group,
    name="imagefind",
    help="Semantic image search over your own images, with CLIP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """Semantic image search over your own images, with CLIP."""


LibraryOpt = Annotated[
    Path | None,
    typer.Option(
        "--library",
        "-L",
        envvar="IMAGEFIND_HOME",
        show_default=False,
        help="Library folder [default: $IMAGEFIND_HOME, else the platform data dir].",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        envvar="IMAGEFIND_MODEL",
        show_default=False,
        help="Model: a local folder, a hub repo id or a short name "
        "[default: the library's model, else ViT-B-32__openai].",
    ),
]
LangOpt = Annotated[
    str | None,
    typer.Option(
        "--lang",
        envvar="IMAGEFIND_LANG",
        show_default=False,
        help="The texts' language, BCP-47 (de, pt-BR, zh-Hans), for models that take one "
        "(NLLB-CLIP) [default: English]; other models ignore it.",
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="IMAGEFIND_STORE",
        show_default=False,
        help="Where rows and vectors live: a postgresql:// URL shared by several machines "
        "[default: the embedded store in the library folder].",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


class RawPairs(StrEnum):
    jpeg = "jpeg"
    both = "both"


RawPairsOpt = Annotated[
    RawPairs,
    typer.Option(
        "--raw-pairs",
        help="A RAW file beside a JPEG of the same name: index the JPEG only, or both.",
    ),
]


def emit_json(value: Any) -> None:
    """One JSON document on stdout, from schema objects or plain data."""
    from imagefind.schemas import as_json

    sys.stdout.write(json.dumps(as_json(value), ensure_ascii=False) + "\n")


class _Exit:
    """Whether the process may skip the interpreter's teardown. Freeing ONNX Runtime, FAISS
    and some 300 modules takes 70 ms, longer than a query itself; a read-only command that
    has closed its library leaves nothing to flush but the standard streams."""

    fast = False


def exit_fast() -> None:
    """Called by read-only commands once their library is closed."""
    _Exit.fast = True


def main() -> None:
    try:
        app()
    except SystemExit as end:
        if not _Exit.fast:
            raise
        code = end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe (imagefind search x | head): nothing left to say
            code = code or 1
        os._exit(code)
