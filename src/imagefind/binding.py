"""The model a library runs: loaded on first use, and checked against the one its store is
bound to, so that a library never mixes vectors of two models."""

from __future__ import annotations

import threading
from pathlib import Path

from imagefind.errors import ModelMismatchError
from imagefind.models import ClipModel, load_model
from imagefind.records import ModelIdentity
from imagefind.stores import Store


def identity(model: ClipModel) -> ModelIdentity:
    """What a store records of a model: name, dimension and the weights' fingerprint."""
    return ModelIdentity(name=model.name, dim=model.dim, fingerprint=model.fingerprint())


class ModelBinding:
    """``model`` (a name, a loaded model, or None for the bound one) as one library runs it."""

    def __init__(
        self, path: Path, store: Store, model: str | ClipModel | None, quick_start: bool
    ) -> None:
        self._path = path  # what messages call the library
        self._store = store
        self._arg = model
        self._model: ClipModel | None = model if isinstance(model, ClipModel) else None
        self._quick_start = quick_start
        self._lock = threading.RLock()

    @property
    def model(self) -> ClipModel:
        """Loaded on first use: stats, listing and deletes never need it."""
        with self._lock:
            if self._model is None:
                bound = self._store.model()
                name = self._arg if isinstance(self._arg, str) else None
                model = load_model(
                    name or (bound.name if bound else None), quick_start=self._quick_start
                )
                self.check(model)
                self._model = model
            return self._model

    def check(self, model: ClipModel) -> None:
        """Bind ``model`` to an empty store, or refuse it when the store holds another's."""
        bound = self._store.model()
        if bound is None:
            self._store.bind_model(identity(model))
            return
        if bound.dim != model.dim or bound.fingerprint != model.fingerprint():
            raise ModelMismatchError(
                f"library {self._path} was built with model {bound.name!r} ({bound.dim}-d); "
                f"{model.name!r} is a different model. Leave out --model to use the library's "
                f"own, or re-embed every image with 'imagefind reindex --model {model.name}'"
            )

    def switch(self, model: ClipModel) -> None:
        """Run ``model`` from now on (after a re-embed bound the store to it)."""
        with self._lock:
            self._model, self._arg = model, model
