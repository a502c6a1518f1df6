"""How the library commands show their work: progress bars, hits, index summaries (the
human forms; ``--json`` prints the schema objects as they are)."""

from collections import Counter
from typing import TYPE_CHECKING, Literal

from imagefind.cli.app import emit_json, stderr, stdout
from imagefind.schemas import Hit, IndexSummary, OcrSummary, SearchResult

if TYPE_CHECKING:
    from rich.progress import Progress


def progress_bar() -> "Progress":
    """The progress bars of long jobs (index, re-embed, OCR, a watcher's catch-up), on
    stderr: one line a task, named by the task's description."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=stderr.rich,
        disable=not stderr.is_terminal,
        transient=True,
    )


def print_hits(
    hits: list[Hit],
    as_json: bool,
    query: str,
    kind: Literal["text", "image"],
    mode: Literal["clip", "text", "hybrid"] = "clip",
) -> None:
    if as_json:
        emit_json(SearchResult(query=query, kind=kind, hits=hits, mode=mode))
        return
    if not hits:
        stderr.print("No results.")
    for hit in hits:  # plain print: rich would expand the tab that scripts split on
        match = f"\t{hit.text_match}" if hit.text_match else ""
        print(f"{hit.score:.3f}\t{hit.image.source}{match}")


def print_summary(s: IndexSummary) -> None:
    rate = f" ({s.encoded / s.seconds:.1f} images/s)" if s.encoded and s.seconds else ""
    stdout.print(
        f"Added {s.added}, updated {s.updated}, renamed {s.renamed}, removed {s.removed}, "
        f"unchanged {s.unchanged}, skipped {len(s.skipped)} — encoded {s.encoded} in "
        f"{s.seconds:.1f} s{rate}"
    )
    if s.metadata_read:
        stdout.print(f"  metadata re-read from {s.metadata_read} file headers (none encoded)")
    reasons = Counter(item.reason for item in s.skipped)
    for reason, count in reasons.most_common():
        examples = [i.path for i in s.skipped if i.reason == reason][:3]
        more = f" (+{count - len(examples)} more)" if count > len(examples) else ""
        stdout.print(f"  skipped {count}: {reason}: {', '.join(examples)}{more}")
    if s.ocr is not None:
        stdout.print(ocr_line(s.ocr))


def ocr_line(summary: OcrSummary) -> str:
    """One line for a human about an OCR run."""
    errors = f", {summary.errors} failed (still indexed)" if summary.errors else ""
    return (
        f"Text: read {summary.read} image(s) with {summary.engine}, text found in "
        f"{summary.with_text}{errors} — {summary.seconds:.1f} s"
    )
