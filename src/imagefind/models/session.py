"""One ONNX Runtime graph of the format: input checks, provider choice, batching."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from imagefind.errors import ModelError

PREFERRED_PROVIDERS = (
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "CPUExecutionProvider",
)
MAX_BATCH = 64


def pick_providers(requested: list[str] | None = None) -> list[str]:
    """The accelerators onnxruntime offers here, best first, CPU last as the fallback."""
    available = set(ort.get_available_providers())
    wanted = requested or [
        p.strip() for p in os.environ.get("IMAGEFIND_PROVIDERS", "").split(",") if p.strip()
    ]
    order = wanted or list(PREFERRED_PROVIDERS)
    chosen = [p for p in order if p in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def default_threads() -> int:
    env = os.environ.get("IMAGEFIND_THREADS")
    if env:
        try:
            return max(0, int(env))
        except ValueError as exc:
            raise ModelError(f"IMAGEFIND_THREADS={env!r}: not a whole number") from exc
    return 0  # onnxruntime's default: one thread per physical core


class OnnxGraph:
    """A lazily-created session for one of the two graphs. Creating a session costs
    seconds for a large model, so a text query never pays for the visual one."""

    def __init__(
        self,
        path: Path,
        input_name: str,
        *,
        alternative: tuple[str, ...] = (),
        threads: int | None = None,
        providers: list[str] | None = None,
        quick_start: bool = False,
    ) -> None:
        self.path = path
        self.input_name = input_name
        self.alternative = alternative
        self._inputs: tuple[str, ...] = (input_name,)
        self.threads = default_threads() if threads is None else threads
        self.providers = providers
        self.quick_start = quick_start
        self._session: ort.InferenceSession | None = None
        self._lock = threading.Lock()
        self._fixed_batch = False
        self._dynamic_length = False
        self._dtypes: dict[str, type] = {}
        self._length: int | None = None
        self._output = "embedding"
        self._lane: ort.InferenceSession | None = None

    @property
    def session(self) -> ort.InferenceSession:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._load()
        return self._session

    @property
    def fixed_batch(self) -> bool:
        """The graph takes a fixed batch (the hub exports: 1), so inputs go one by one."""
        return self.session is not None and self._fixed_batch

    @property
    def inputs(self) -> tuple[str, ...]:
        """The graph's input names, in the order ``run`` takes its arrays."""
        return self._inputs if self.session is not None else ()

    @property
    def fixed_length(self) -> int | None:
        """The sequence length a text graph was exported for, if it is fixed."""
        return self._length if self.session is not None else None

    @property
    def dynamic_length(self) -> bool:
        """The text graph accepts any sequence length, so padding can be cut off."""
        return self.session is not None and self._dynamic_length

    def _options(self, threads: int) -> ort.SessionOptions:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        if self.quick_start:
            # A process that runs a query or two and exits: graph optimisation and weight
            # pre-packing cost more at load (fp32 text: 130 ms) than they save (20 ms a run).
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            opts.add_session_config_entry("session.disable_prepacking", "1")
        # Idle ORT threads yield the cores rather than spin: images are encoded beside decoder
        # threads, and a server's text batches beside request threads (spinning cost those
        # 2 of every 15 ms of CPU a query took, for no gain in latency).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    def _single_thread_session(self) -> ort.InferenceSession:
        """For fixed-batch graphs: one single-threaded session run from several threads at
        once, an image per core, beats one image at a time over all cores."""
        if self._lane is None:
            with self._lock:
                if self._lane is None:
                    self._lane = ort.InferenceSession(
                        str(self.path),
                        sess_options=self._options(1),
                        providers=pick_providers(self.providers),
                    )
        return self._lane

    def _load(self) -> ort.InferenceSession:
        opts = self._options(self.threads)
        try:
            session = ort.InferenceSession(
                str(self.path), sess_options=opts, providers=pick_providers(self.providers)
            )
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelError(f"{self.path}: not a valid ONNX model ({exc})") from exc
        inputs = {i.name: i for i in session.get_inputs()}
        if self.input_name in inputs:
            self._inputs = (self.input_name,)
        elif self.alternative and set(self.alternative) <= set(inputs):
            self._inputs = self.alternative
        else:
            also = f" (or {' and '.join(map(repr, self.alternative))})" if self.alternative else ""
            raise ModelError(
                f"{self.path}: expected an input named {self.input_name!r}{also}, found "
                f"{list(inputs)}; re-export the model with 'imagefind models export'"
            )
        unknown = sorted(set(inputs) - set(self._inputs))
        if unknown:
            raise ModelError(
                f"{self.path}: the graph also wants inputs {unknown} that imagefind does not "
                f"feed (it feeds {list(self._inputs)}); re-export the model with "
                "'imagefind models export'"
            )
        shape = inputs[self._inputs[0]].shape
        self._fixed_batch = isinstance(shape[0], int)
        self._dynamic_length = len(shape) > 1 and not isinstance(shape[1], int)
        self._length = shape[1] if len(shape) > 1 and isinstance(shape[1], int) else None
        self._dtypes = {
            name: {"tensor(int32)": np.int32, "tensor(int64)": np.int64}.get(
                inputs[name].type, np.float32
            )
            for name in self._inputs
        }
        outputs = [o.name for o in session.get_outputs()]
        self._output = "embedding" if "embedding" in outputs else outputs[0]
        return session

    def _run_one(self, session: ort.InferenceSession, arrays: Sequence[np.ndarray]) -> np.ndarray:
        feed: dict[str, np.ndarray] = {
            name: np.ascontiguousarray(a, dtype=self._dtypes[name])
            for name, a in zip(self._inputs, arrays, strict=True)
        }
        try:
            # Outputs by position: older zoo exports name theirs image_/text_embedding.
            out: np.ndarray = session.run([self._output], feed)[0]  # onnxruntime is untyped
            return out
        except Exception as exc:
            raise ModelError(f"{self.path}: inference failed ({exc})") from exc

    def run(self, batch: np.ndarray, *more: np.ndarray) -> np.ndarray:
        """Embeddings [N, D], L2-normalised, in chunks the graph accepts. ``more`` are the
        graph's further inputs (M-CLIP's attention mask), row for row with ``batch``."""
        session = self.session
        arrays = (batch, *more)
        if len(arrays) != len(self._inputs):
            raise ModelError(f"{self.path}: the graph takes {list(self._inputs)}")
        lanes = self.threads or os.cpu_count() or 1
        if self.fixed_batch and len(batch) > 1 and lanes > 1 and self.input_name == "image":
            lane = self._single_thread_session()
            with ThreadPoolExecutor(max_workers=lanes) as pool:
                outs = list(
                    pool.map(
                        lambda i: self._run_one(lane, [a[i : i + 1] for a in arrays]),
                        range(len(batch)),
                    )
                )
        else:
            step = 1 if self.fixed_batch else MAX_BATCH
            outs = [
                self._run_one(session, [a[i : i + step] for a in arrays])
                for i in range(0, len(batch), step)
            ]
        if not outs:
            raise ModelError("nothing to encode: the input list is empty")
        emb = np.concatenate(outs).astype(np.float32, copy=False)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        unit: np.ndarray = emb / np.maximum(norms, 1e-12)
        return unit
