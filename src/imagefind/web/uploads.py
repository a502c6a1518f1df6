"""Multipart uploads read from the request stream with a per-file cap enforced as bytes
arrive: a 2 GB "photo" is refused at the limit, not after it sits on disk."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from imagefind.web.errors import ApiError

MAX_NAME = 200


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


class _FileTooLarge(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _CappedParser(MultiPartParser):
    """Starlette's parser, counting each file part's bytes as they are parsed."""

    def __init__(self, request: Request, max_file_bytes: int, max_files: int) -> None:
        super().__init__(
            request.headers,
            request.stream(),
            max_files=max_files,
            max_fields=16,
            max_part_size=64 * 1024,
        )
        self.max_file_bytes = max_file_bytes
        self._sizes: dict[int, int] = {}

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is not None:
            size = self._sizes.get(id(part), 0) + (end - start)
            self._sizes[id(part)] = size
            if size > self.max_file_bytes:
                raise _FileTooLarge(part.file.filename or "upload")
        super().on_part_data(data, start, end)


def clean_name(raw: str | None) -> str:
    """A display name only (uploads are stored by content): the last path component."""
    name = re.split(r"[/\\]", raw or "")[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable())[:MAX_NAME]
    return name or "upload"


async def read_files(
    request: Request, field: str, *, max_file_bytes: int, max_files: int
) -> tuple[list[Upload], dict[str, str]]:
    """The files of one multipart field, and the plain fields beside them."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            422, "invalid_request", f"send the image(s) as multipart/form-data in field '{field}'"
        )
    parser = _CappedParser(request, max_file_bytes, max_files)
    try:
        form = await parser.parse()
    except _FileTooLarge as exc:
        raise ApiError(
            413,
            "payload_too_large",
            f"{clean_name(exc.name)}: larger than the {max_file_bytes}-byte limit per file",
        ) from None
    except MultiPartException as exc:
        raise ApiError(422, "invalid_request", f"bad multipart body: {exc.message}") from None
    uploads: list[Upload] = []
    fields: dict[str, str] = {}
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key == field:
                    uploads.append(Upload(clean_name(value.filename), await value.read()))
            else:
                fields[key] = value
    finally:
        await form.close()
    if not uploads:
        raise ApiError(422, "invalid_request", f"no file in field '{field}'")
    return uploads, fields


def unique_names(uploads: list[Upload]) -> list[Upload]:
    """Two pastes are both called image.png: numbered, so that the answer's entries can be
    told apart by name."""
    taken: set[str] = set()
    out = []
    for up in uploads:
        name, n = up.name, 1
        while name in taken:
            n += 1
            name = f"{up.name} ({n})"
        taken.add(name)
        out.append(up if name == up.name else Upload(name, up.data))
    return out
