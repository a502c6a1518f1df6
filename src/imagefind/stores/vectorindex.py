"""The vector index: FAISS over a store's vectors, keyed by image id (the embedded store's
search index; PostgreSQL's in-process mirror for broad filters).

Derived data: it can always be rebuilt from the store's ``vectors()``, and may be saved to
disk beside the catalog generation it was built from. Vectors are L2-normalised, so inner
product is cosine similarity.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import cast

import faiss
import numpy as np

from imagefind.errors import LibraryError, NotFoundError
from imagefind.stores.rwlock import ReadWriteLock

SMALL_LIMIT = 20_000  # below this, plain float32 flat: tiny and simplest
# Above this, IVF: a flat scan costs ~4 ms a query here on two cores, 7-10 ms at 100K, which a
# server answering 8 queries at once pays 8 times over (IVF: ~0.5 ms at recall >= 0.97).
EXACT_LIMIT = 50_000
_FP16 = faiss.ScalarQuantizer.QT_fp16
_THREADS = faiss.omp_get_max_threads()


class VectorIndex:
    """Inner-product search whose ids are catalog ids (int64): exact over a flat index, or
    approximate over an IVF one (``kind`` says which; ``for_size`` picks by library size).

    A read-write lock guards it: FAISS indexes may not be searched while they change, and a
    web server shares one index between threads that mostly search.
    """

    _quantizer: faiss.Index  # an IVF index's coarse quantizer, kept alive (``for_size``)

    def __init__(self, dim: int, *, _index: faiss.Index | None = None) -> None:
        if dim <= 0:
            raise ValueError(f"vector dimension must be positive, got {dim}")
        self._index = _index if _index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lock = ReadWriteLock()
        self._mapped = False  # flat storage is a view of the file: copied before a change

    @property
    def kind(self) -> str:
        """'flat' (exact, float32), 'flat-fp16' (exact over the catalog's float16 values)
        or 'ivf' (approximate)."""
        inner = self._index
        if isinstance(inner, faiss.IndexIDMap2):
            inner = faiss.downcast_index(inner.index)
        if isinstance(inner, faiss.IndexIVF):
            return "ivf"
        return "flat-fp16" if isinstance(inner, faiss.IndexScalarQuantizer) else "flat"

    # --- properties -----------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, image_id: object) -> bool:
        if not isinstance(image_id, int | np.integer):
            return False
        try:
            self.reconstruct(int(image_id))
        except NotFoundError:
            return False
        return True

    def ids(self) -> np.ndarray:
        """Every stored id (int64), in storage order."""
        with self._lock.read():
            return self._stored_ids()

    def _stored_ids(self) -> np.ndarray:  # ids(), under the caller's lock
        if isinstance(self._index, faiss.IndexIDMap2):
            return faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
        lists = faiss.extract_index_ivf(self._index).invlists
        assert lists is not None  # an IVF index owns its inverted lists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(lists.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)

    # --- changing -------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray, *, replace: bool = True) -> None:
        """Store vectors under ids; an id already present is replaced (last one wins), or
        with ``replace=False`` (ids known new: a load) stored beside it, unchecked."""
        id_array = self._ids(ids)
        matrix = self._matrix(vectors, "vectors")
        if len(id_array) != len(matrix):
            raise ValueError(f"{len(id_array)} ids for {len(matrix)} vectors")
        if not len(id_array):
            return
        # Keep the last of repeated ids so a batch behaves like a sequence of adds.
        _, last_first = np.unique(id_array[::-1], return_index=True)
        if len(last_first) != len(id_array):
            keep = np.sort(len(id_array) - 1 - last_first)
            id_array, matrix = id_array[keep], np.ascontiguousarray(matrix[keep])
        with self._lock.write():
            self._own()
            # A flat index's remove compacts all it holds (3 ms at 100K): only for ids it has.
            # IVF's direct map removes cheaply (listing its ids does not).
            present = id_array if replace else id_array[:0]
            if len(present) and isinstance(self._index, faiss.IndexIDMap2):
                present = present[np.isin(present, self._stored_ids())]
            if len(present):
                # faiss's Python wrapper takes an id array too; its stub knows only IDSelector
                self._index.remove_ids(present)  # type: ignore[arg-type]
            self._index.add_with_ids(matrix, id_array)

    def remove(self, ids: np.ndarray) -> int:
        """Drop ids (absent ones are ignored); return how many were removed."""
        id_array = self._ids(ids)
        if not len(id_array):
            return 0
        with self._lock.write():
            self._own()
            return int(self._index.remove_ids(id_array))  # type: ignore[arg-type]  # as in add

    # --- reading --------------------------------------------------------------------------

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        among: np.ndarray | None = None,
        exhaustive: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by inner product: (float32 scores [Q, k'], int64 ids [Q, k']), best
        first, with k' = min(k, len(self)). ``among`` (ids) limits it to those, and
        ``exhaustive`` makes it exact: an IVF index then scans every list (filtered search)."""
        matrix = self._matrix(queries, "queries")
        params, _alive = self._params(among, exhaustive)  # kept until the search is done
        with self._lock.read():
            kk = min(int(k), len(self) if among is None else len(among))
            if kk <= 0 or not len(matrix):
                return np.empty((len(matrix), 0), np.float32), np.empty((len(matrix), 0), np.int64)
            # FAISS splits work across queries: for a few, extra OpenMP threads only cost.
            faiss.omp_set_num_threads(1 if len(matrix) < 4 else _THREADS)
            try:
                scores, ids = self._index.search(matrix, kk, params=params)
            finally:
                faiss.omp_set_num_threads(_THREADS)
        # Exact search fills every slot; an approximate one may pad with -1.
        filled = (ids >= 0).any(axis=0)
        if not filled.all():
            scores, ids = scores[:, filled], ids[:, filled]
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def _params(
        self, among: np.ndarray | None, exhaustive: bool
    ) -> tuple[faiss.SearchParameters | None, object]:
        """Search parameters for a search limited to ``among`` (a bitmap selector) or made
        exact (every IVF list probed), and what must outlive the search (FAISS holds raw
        pointers to the selector and its bitmap)."""
        if among is None and not (exhaustive and isinstance(self._index, faiss.IndexIVF)):
            return None, None
        bitmap = sel = None
        if among is not None:
            member = np.zeros(int(among.max()) + 1 if len(among) else 1, dtype=bool)
            member[np.asarray(among, dtype=np.int64)] = True
            bitmap = np.packbits(member, bitorder="little")  # FAISS reads bit (id & 7) of id >> 3
            sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        params = faiss.SearchParameters()
        if isinstance(self._index, faiss.IndexIVF):
            params = faiss.SearchParametersIVF()
            params.nprobe = self._index.nlist
        params.sel = sel
        return params, (sel, bitmap)

    def reconstruct(self, image_id: int) -> np.ndarray:
        """The stored vector of one id (for "more like this image")."""
        with self._lock.read():
            try:
                # the stub's first overload (x=None) says torch.Tensor; numpy in, numpy out
                return cast(np.ndarray, self._index.reconstruct(int(image_id)))
            except RuntimeError as exc:
                raise NotFoundError(f"no indexed vector for image id {image_id}") from exc

    def tune(
        self, ids: np.ndarray, vectors: np.ndarray, target_recall: float, queries: int = 200
    ) -> float:
        """Set an IVF index's ``nprobe`` to the smallest power of two whose recall@10
        against exact search reaches the target for both kinds of query, and return the lower
        of the two recalls reached. Probes are made from stored vectors: image-like ones near
        a stored vector (cosine ~0.7), and text-like ones far from every vector (cosine
        ~0.3, where CLIP puts a caption's best match): their neighbours spread over more
        cells, so they need more probes than image-like ones do."""
        ivf = faiss.extract_index_ivf(self._index)
        probes = {
            kind: probe_queries(vectors, queries, cosine, seed)
            for kind, cosine, seed in (("image", 0.7, 1), ("text", 0.3, 2))
        }
        exact = faiss.IndexFlatIP(vectors.shape[1])
        exact.add(vectors)
        truth = {
            k: np.asarray(ids, dtype=np.int64)[exact.search(q, 10)[1]] for k, q in probes.items()
        }
        nprobe = 1
        while True:
            ivf.nprobe = nprobe
            recall = min(
                recall_at_k(truth[k], self._index.search(q, 10)[1]) for k, q in probes.items()
            )
            if recall >= target_recall or nprobe >= ivf.nlist:
                return recall
            nprobe *= 2

    # --- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write to ``path`` atomically (a reader never sees a half-written file)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock.read():
                faiss.write_index(self._index, str(tmp))
            os.replace(tmp, path)
        except (OSError, RuntimeError) as exc:
            tmp.unlink(missing_ok=True)
            raise LibraryError(f"{path}: cannot write vector index ({exc})") from exc

    @classmethod
    def load(cls, path: Path, *, mapped: bool = True) -> VectorIndex:
        """Read an index written by ``save``. ``mapped`` maps flat storage from the file
        instead of reading it (a 100K library's index opens in 5 ms, not 85): the file is
        never rewritten in place (``save`` replaces it), so the view stays valid. Where the
        file system cannot map files, it is read instead."""
        try:
            # read_index already returns the concrete type; a downcast proxy would not own
            # the index, which would then be freed under it.
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mapped else 0)
        except RuntimeError as exc:
            if mapped and Path(path).is_file():
                return cls.load(path, mapped=False)
            raise LibraryError(f"{path}: cannot read vector index ({_first_line(exc)})") from exc
        if not isinstance(index, faiss.IndexIDMap2 | faiss.IndexIVF):
            raise LibraryError(f"{path}: not an imagefind vector index ({type(index).__name__})")
        loaded = cls(index.d, _index=index)
        loaded._mapped = mapped
        return loaded

    # --- helpers --------------------------------------------------------------------------

    def _own(self) -> None:
        """Copy mapped storage into memory (under the write lock): FAISS aborts the whole
        process when a mapped index is resized."""
        if self._mapped:
            self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
            self._mapped = False

    @staticmethod
    def _ids(ids: np.ndarray) -> np.ndarray:
        id_array = np.ascontiguousarray(np.asarray(ids).reshape(-1), dtype=np.int64)
        if (id_array < 0).any():
            raise ValueError("vector ids must be non-negative")
        return id_array

    def _matrix(self, vectors: np.ndarray, what: str) -> np.ndarray:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or (matrix.shape[1] != self.dim and matrix.size):
            raise ValueError(f"{what} must have shape [N, {self.dim}], got {np.shape(vectors)}")
        return np.ascontiguousarray(matrix.reshape(-1, self.dim))


def kind_for(n: int) -> str:
    """The kind of index ``for_size`` makes for ``n`` vectors."""
    if n < SMALL_LIMIT:
        return "flat"
    return "flat-fp16" if n <= EXACT_LIMIT else "ivf"


def for_size(n: int, dim: int) -> VectorIndex:
    """An empty index of the right kind for ``n`` vectors, as autofaiss chooses by size.

    Up to EXACT_LIMIT a flat scan stays near 4 ms per query on two cores; it stores float16,
    which loses nothing (the catalog keeps float16) and halves the memory scanned. Beyond
    that, IVF: an approximate index whose ``nprobe`` is tuned by ``build_for`` for recall on
    text-like and image-like queries.
    """
    kind = kind_for(n)
    if kind == "flat":
        return VectorIndex(dim)
    if kind == "flat-fp16":
        return flat_fp16(dim)
    nlist = int(min(4096, max(64, 2 ** round(np.log2(2 * np.sqrt(n))))))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, _FP16, faiss.METRIC_INNER_PRODUCT)
    # reconstruct and remove by id (DirectMap is missing from faiss's stubs)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
    index = VectorIndex(dim, _index=ivf)
    index._quantizer = quantizer  # the IVF index does not own it: keep it alive
    return index


def flat_fp16(dim: int) -> VectorIndex:
    """An exact index storing float16."""
    flat = faiss.IndexScalarQuantizer(dim, _FP16, faiss.METRIC_INNER_PRODUCT)
    return VectorIndex(dim, _index=faiss.IndexIDMap2(flat))


def build_for(ids: np.ndarray, vectors: np.ndarray, *, target_recall: float = 0.97) -> VectorIndex:
    """The right kind of index for these vectors, filled; an approximate one is trained on
    a sample and its ``nprobe`` set to the smallest that reaches ``target_recall`` at 10."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = for_size(len(ids), vectors.shape[1] if vectors.ndim == 2 else 1)
    ivf = index._index
    if isinstance(ivf, faiss.IndexIVF):  # index.kind == "ivf"
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(len(vectors), min(len(vectors), 40 * ivf.nlist), replace=False)]
        ivf.train(sample)
    if len(ids):
        index.add(ids, vectors)
    if index.kind == "ivf":
        index.tune(ids, vectors, target_recall)
    return index


def probe_queries(vectors: np.ndarray, n: int, cosine: float, seed: int) -> np.ndarray:
    """``n`` unit queries, each at ``cosine`` to a randomly chosen stored vector."""
    rng = np.random.default_rng(seed)
    base = np.asarray(
        vectors[rng.choice(len(vectors), min(n, len(vectors)), replace=False)], dtype=np.float32
    )
    return tilted(base, rng.standard_normal(base.shape).astype(np.float32), cosine)


def tilted(base: np.ndarray, noise: np.ndarray, cosine: float) -> np.ndarray:
    """Unit vectors at ``cosine`` to each unit row of ``base``, turned towards the part of
    ``noise`` (same shape) orthogonal to it."""
    noise = noise - (noise * base).sum(axis=1, keepdims=True) * base
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    out = cosine * base + np.sqrt(1.0 - cosine**2) * noise
    unit: np.ndarray = (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
    return unit


def recall_at_k(truth: np.ndarray, found: np.ndarray) -> float:
    """Mean share of each row of ``truth`` (ids, best first) that ``found`` has too."""
    return float(
        np.mean([len(set(t) & set(f)) / len(t) for t, f in zip(truth, found, strict=True)])
    )


def _first_line(exc: BaseException) -> str:
    """FAISS errors carry a C++ stack trace; users need the first line."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
