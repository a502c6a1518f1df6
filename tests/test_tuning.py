"""tuning: the batch size grows only while it pays, decoders grow only for slow reads, and
what the user sets is never changed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from imagefind.tuning import MAX_BATCH, Gate, Tuner


def _feed(tuner: Tuner, per_image: dict[int, float], batches: int, **kw: float) -> list[int]:
    """Run ``batches`` batches where an image costs ``per_image[batch]`` seconds to encode."""
    sizes = []
    for _ in range(batches):
        b = tuner.batch
        sizes.append(b)
        tuner.after_batch(
            b,
            per_image[b] * b,
            kw.get("wait_s", 0.0),
            kw.get("read_s", 0.0),
            kw.get("prepare_s", 1.0),
        )
    return sizes


def test_cpu_like_costs_keep_the_start_size() -> None:
    tuner = Tuner(cores=2)
    sizes = _feed(tuner, {16: 0.055, 32: 0.054, 64: 0.054}, 12)
    assert tuner.batch == 16 and sizes[-1] == 16 and 32 in sizes  # tried, not kept


def test_gpu_like_costs_grow_to_the_limit() -> None:
    tuner = Tuner(cores=2)
    _feed(tuner, {16: 0.004, 32: 0.002, 64: 0.001}, 12)
    assert tuner.batch == MAX_BATCH


def test_growth_stops_where_the_gain_stops() -> None:
    tuner = Tuner(cores=2)
    _feed(tuner, {16: 0.004, 32: 0.002, 64: 0.0019}, 12)
    assert tuner.batch == 32


def test_a_given_batch_size_is_kept() -> None:
    tuner = Tuner(cores=2, batch_size=8)
    _feed(tuner, {8: 0.004}, 10)
    assert tuner.batch == 8


def test_slow_reads_add_decoders_up_to_four_per_core() -> None:
    tuner = Tuner(cores=2)
    assert tuner.decoders == 2
    _feed(tuner, {16: 0.05, 32: 0.05}, 10, wait_s=1.0, read_s=0.8, prepare_s=1.0)
    assert tuner.decoders == 8


def test_cpu_bound_decoding_keeps_one_decoder_per_core() -> None:
    """A starved encoder whose decoders are busy decoding (not reading): more threads
    would only hold more decoded images in memory."""
    tuner = Tuner(cores=2)
    _feed(tuner, {16: 0.05, 32: 0.05}, 10, wait_s=1.0, read_s=0.05, prepare_s=1.0)
    assert tuner.decoders == 2


def test_given_workers_are_kept() -> None:
    tuner = Tuner(cores=2, workers=3)
    _feed(tuner, {16: 0.05, 32: 0.05}, 10, wait_s=1.0, read_s=0.9, prepare_s=1.0)
    assert tuner.decoders == 3


def test_gate_admits_as_many_as_its_size_and_grows_live() -> None:
    gate = Gate(1)
    inside, peak, lock = [0], [0], threading.Lock()
    release = threading.Event()

    def hold() -> None:
        with gate:
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            release.wait(5)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    assert peak[0] == 1
    gate.resize(3)
    time.sleep(0.1)
    assert peak[0] == 3
    release.set()
    for t in threads:
        t.join(5)
    assert inside[0] == 0


def test_index_reports_what_it_settled_on(tmp_path: Path, tiny_model_dir: Path) -> None:
    from imagefind import Library
    from tests.synth import natural_image

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(20):
        natural_image(96, 64, seed=i).save(photos / f"{i}.jpg")
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir)) as lib:
        auto = lib.index([photos])
        assert auto.added == 20 and auto.batch_size >= 16 and auto.decoders >= 1
    with Library.open(tmp_path / "lib2", model=str(tiny_model_dir)) as lib:
        fixed = lib.index([photos], batch_size=4, workers=1)
        assert (fixed.batch_size, fixed.decoders) == (4, 1) and fixed.added == 20
