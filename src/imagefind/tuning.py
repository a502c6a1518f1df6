"""The indexing pipeline's batch size and decoder count, chosen from measurements of the run
itself rather than a fixed rule: the same code runs on a laptop CPU, beside a GPU, and on
photos read from a network share.

- Batch size: start at 16 (on a CPU, larger batches gain nothing: 18.2 img/s at 16, 18.5
  at 64 for ViT-B/32) and double while the encoder's time per image falls by over 10% (a GPU
  keeps gaining up to 64).
- Decoders: start at one per core. The cores are shared with the encoder's threads, which
  yield when idle, so while decoding is CPU work more threads only add memory (measured at
  0.95-1.03 of the machine's bound that way). When the encoder starves while decoders spend
  most of their time reading files (a slow disk, a network share), add a core's worth of
  decoders, up to four per core.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

START_BATCH = 16
MAX_BATCH = 64  # the encoder's own chunk
GAIN = 0.9  # a bigger batch must cut the time per image to below 90%
ROUNDS = 2  # batches measured at each size (the first batch of a run is not counted)
STARVED = 0.25  # the encoder waited for decoded images this share of its time or more
READING = 0.5  # decoders spent this share of their time reading files or more: I/O bound


class Gate:
    """A semaphore whose size may change while threads hold it."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._busy = 0
        self._cond = threading.Condition()

    def resize(self, size: int) -> None:
        with self._cond:
            self._size = size
            self._cond.notify_all()

    def __enter__(self) -> None:
        with self._cond:
            while self._busy >= self._size:
                self._cond.wait()
            self._busy += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify()


@dataclass
class Tuner:
    """Decides after each batch; ``batch_size`` or ``workers`` given by the user stay fixed."""

    cores: int
    batch_size: int | None = None
    workers: int | None = None
    batch: int = field(init=False)
    decoders: int = field(init=False)
    _per_image: dict[int, list[float]] = field(default_factory=dict, init=False)
    _settled: bool = field(default=False, init=False)
    _seen_first: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.batch = self.batch_size or START_BATCH
        self._settled = self.batch_size is not None
        self.decoders = self.workers or self.cores
        self.gate = Gate(self.decoders)

    @property
    def settled(self) -> bool:
        """The batch size is final: given by the user, or found by the search."""
        return self._settled

    @property
    def max_decoders(self) -> int:
        return 4 * self.cores

    def after_batch(
        self, images: int, encode_s: float, wait_s: float, read_s: float, prepare_s: float
    ) -> None:
        """One batch's figures: ``images`` encoded in ``encode_s``; the encoder waited
        ``wait_s`` for them; preparing them took ``prepare_s`` in decoder threads, of which
        ``read_s`` went on reading files."""
        if not self._seen_first:  # session start-up and cold caches: not representative
            self._seen_first = True
            return
        if images >= self.batch:
            self._size_batch(encode_s / images)
        self._size_decoders(encode_s, wait_s, read_s, prepare_s)

    def _size_batch(self, per_image: float) -> None:
        if self._settled:
            return
        times = self._per_image.setdefault(self.batch, [])
        times.append(per_image)
        if len(times) < ROUNDS:
            return
        smaller = self._per_image.get(self.batch // 2)
        if smaller and len(smaller) >= ROUNDS and min(times) > GAIN * min(smaller):
            self.batch //= 2  # no real gain: go back and stay
            self._settled = True
        elif self.batch * 2 > MAX_BATCH:
            self._settled = True
        else:
            self.batch *= 2

    def _size_decoders(
        self, encode_s: float, wait_s: float, read_s: float, prepare_s: float
    ) -> None:
        if self.workers is not None or self.decoders >= self.max_decoders or prepare_s <= 0:
            return
        starved = wait_s >= STARVED * (wait_s + encode_s)
        if starved and read_s >= READING * prepare_s:
            self.decoders = min(self.max_decoders, self.decoders + self.cores)
            self.gate.resize(self.decoders)
