"""What the app holds between requests: the library, its model (or why it failed to load),
the write lock and the security settings (who may read and write: ``auth``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi import Request

from imagefind.errors import ImagefindError, ModelError
from imagefind.filters import Filters
from imagefind.library import Library
from imagefind.models import ClipModel
from imagefind.schemas import AddResult, Hit, ImageOut
from imagefind.watch import Watcher
from imagefind.web.auth import Auth
from imagefind.web.security import check_origin


@dataclass
class AppState:
    library: Library
    max_upload_bytes: int
    auth: Auth
    cors_origins: list[str] = field(default_factory=list)
    model_error: str | None = None
    watcher: Watcher | None = None  # `serve --watch`
    # Reads run side by side; writes (uploads, deletes) one at a time.
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    def load_model(self) -> None:
        """Load the model once; a failure is remembered and shown, not retried per request."""
        try:
            _ = self.library.model
            self.model_error = None
        except ModelError as exc:
            self.model_error = str(exc)

    def model(self) -> ClipModel:
        if self.model_error is not None:
            raise ModelError(self.model_error)
        try:
            return self.library.model
        except ModelError as exc:
            self.model_error = str(exc)
            raise

    def model_name(self) -> str | None:
        bound = self.library.store.model()
        if bound is not None:
            return bound.name
        try:
            return self.model().name
        except ModelError:
            return None

    def takes_language(self) -> bool:
        """The model reads a query's language (NLLB-CLIP): only then does the page ask for one.
        Other multilingual models (M-CLIP, SigLIP 2) take any language without being told."""
        try:
            return self.model().text_family.language_prefix
        except ModelError:
            return False

    def add_each(self, uploads: Sequence[tuple[str, bytes]]) -> list[AddResult | ImagefindError]:
        with self.write_lock:
            return self.library.add_each(uploads)

    def search(
        self,
        query: str,
        k: int,
        threshold: float | None,
        lang: str | None = None,
        *,
        filters: Filters | None = None,
        sort: str = "score",
        mode: str | None = None,
    ) -> list[Hit]:
        """A text search in which a path is only text (``paths=False``): a client must not
        make the server read its files. A model that failed to load fails it at once."""
        self.model()
        return self.library.search(
            query, k, threshold, paths=False, lang=lang, filters=filters, sort=sort, mode=mode
        )

    def remove(self, image_id: int) -> ImageOut:
        with self.write_lock:
            return self.library.remove([image_id])[0]


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.imagefind
    return state


def require_write(request: Request) -> None:
    """Guards every POST and DELETE: same-origin when from a browser. Credentials and CSRF
    tokens were checked before any route ran (``access.AccessMiddleware``)."""
    check_origin(request, get_state(request).cors_origins)
