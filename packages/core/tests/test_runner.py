"""The runner: one bad file is one failed row, workers compute what inline computes, memory stays bounded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bat_core.dataset import Dataset, DatasetItem
from bat_core.errors import AudioError
from bat_core.runner import AppendOutputs, FileInfo, Piece, RunOptions, run, run_to_store
from bat_core.store import RepresentationStore, read_manifest
from bat_core.testing import write_project

INLINE = RunOptions(workers=0, show_progress=False)
TWO_WORKERS = RunOptions(workers=2, show_progress=False)


@dataclass(frozen=True)
class Ramp:
    """A prepare that needs no audio: file ``i`` (from its name) gives ``i + 1`` pieces of lengths 3, 5, 3, 5...
    Module-level so that spawn workers can unpickle it."""

    explode_on: str = ""  # this file's prepare raises
    die_on: str = ""  # this file's worker process dies
    piece_bytes: int = 1024

    def __call__(self, item: DatasetItem):
        number = int(item.stem.split("_")[1])
        if item.file_name == self.die_on:
            os._exit(3)
        for index in range(number + 1):
            if item.file_name == self.explode_on and index == 1:
                raise AudioError(f"{item.file_name} is broken at piece 1")
            length = 3 if index % 2 == 0 else 5
            yield Piece(np.full(length, 100 * number + index, dtype=np.float32), length=length)
        yield FileInfo(seconds=float(number))


class Doubler:
    """An encoder that doubles its input, counts its batches, and can be poisoned or run out of memory."""

    def __init__(self, max_items=4, poison: float | None = None, oom_above: int | None = None, deferred=False):
        self.max_items, self.max_length = max_items, None
        self.poison, self.oom_above, self.deferred = poison, oom_above, deferred
        self.batches: list[int] = []

    def __call__(self, batch):
        self.batches.append(len(batch))
        if self.oom_above is not None and len(batch) > self.oom_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.poison is not None and any(np.any(piece.data == self.poison) for piece in batch):
            raise ValueError("the model cannot take this window")
        outputs = [piece.data * 2 for piece in batch]
        return (lambda: outputs) if self.deferred else outputs


class Sink:
    def __init__(self):
        self.outputs, self.finished, self.failed = {}, {}, {}

    def add(self, item, piece, output):
        self.outputs.setdefault(item.file_name, []).append((piece.index, output.copy()))

    def done(self, item, info):
        self.finished[item.file_name] = info

    def fail(self, item, reason):
        self.failed[item.file_name] = reason


def items(tmp_path, count=8) -> list[DatasetItem]:
    return [DatasetItem(f"file_{i}.wav", tmp_path / f"file_{i}.wav") for i in range(count)]


@pytest.mark.parametrize("deferred", [False, True])
def test_outputs_come_back_per_file_in_order(tmp_path, deferred):
    sink = Sink()
    run(items(tmp_path), Ramp(), sink, Doubler(deferred=deferred), INLINE)
    assert set(sink.finished) == {f"file_{i}.wav" for i in range(8)} and not sink.failed
    for i in range(8):
        outputs = sink.outputs[f"file_{i}.wav"]
        assert [index for index, _ in outputs] == list(range(i + 1))
        assert [float(out[0]) for _, out in outputs] == [2.0 * (100 * i + k) for k in range(i + 1)]


def test_a_poisoned_piece_fails_only_its_file(tmp_path):
    """One poisoned file in 8: its batch is retried piece by piece, so 1 failed and 7 ok."""
    encoder = Doubler(max_items=8, poison=100 * 5 + 2)
    sink = Sink()
    run(items(tmp_path), Ramp(), sink, encoder, INLINE)
    assert set(sink.failed) == {"file_5.wav"} and "cannot take this window" in sink.failed["file_5.wav"]
    assert len(sink.finished) == 7 and "file_5.wav" not in sink.outputs or len(sink.outputs["file_5.wav"]) < 6


def test_out_of_memory_halves_batches_and_loses_nothing(tmp_path):
    encoder = Doubler(max_items=8, oom_above=2)
    sink = Sink()
    run(items(tmp_path), Ramp(), sink, encoder, INLINE)
    assert not sink.failed and len(sink.finished) == 8
    assert max(encoder.batches[-5:]) <= 2  # later batches are launched at the halved size


def test_a_file_whose_prepare_raises_is_one_failed_row(tmp_path):
    sink = Sink()
    run(items(tmp_path), Ramp(explode_on="file_3.wav"), sink, Doubler(), TWO_WORKERS)
    assert sink.failed == {"file_3.wav": "file_3.wav is broken at piece 1"}
    assert len(sink.finished) == 7


def test_workers_give_what_inline_gives(tmp_path):
    inline, workers = Sink(), Sink()
    run(items(tmp_path), Ramp(), inline, Doubler(max_items=3), INLINE)
    encoder = Doubler(max_items=3)
    run(items(tmp_path), Ramp(), workers, encoder, TWO_WORKERS)
    assert inline.outputs.keys() == workers.outputs.keys()
    for name in inline.outputs:
        assert [(i, o.tolist()) for i, o in inline.outputs[name]] == [(i, o.tolist()) for i, o in workers.outputs[name]]


def test_a_worker_that_dies_fails_its_file_and_the_run_goes_on(tmp_path):
    sink = Sink()
    run(items(tmp_path), Ramp(die_on="file_2.wav"), sink, Doubler(), TWO_WORKERS)
    assert set(sink.failed) == {"file_2.wav"} and "died" in sink.failed["file_2.wav"]
    assert len(sink.finished) == 7


def test_non_finite_outputs_are_failed_rows_never_ok(tmp_path):
    root = write_project(tmp_path / "p", {f"file_{i}.wav": (np.zeros(1000, np.float32), 48_000) for i in range(4)})
    dataset = Dataset.from_root(root)

    class NaNOnFileTwo(Doubler):
        def __call__(self, batch):
            return [piece.data * (np.nan if piece.data[0] == 200 else 2) for piece in batch]

    store = RepresentationStore(dataset.paths, "ramp", dataset.paths.derived / "ramp", {"v": 1})
    summary = run_to_store(dataset, store, Ramp(), lambda item, out: AppendOutputs(out), NaNOnFileTwo(), INLINE)
    assert (summary.done, summary.failed) == (3, 1)
    assert "NaN/inf" in dict(summary.failures)["file_2.wav"]
    assert not (dataset.paths.derived / "ramp" / "file_2.npy").exists()
    assert not list((dataset.paths.derived / "ramp").glob(".*.tmp")), "temporary outputs of the failed file are removed"


def test_store_outputs_are_written_incrementally_and_resume(tmp_path):
    root = write_project(tmp_path / "p", {f"file_{i}.wav": (np.zeros(1000, np.float32), 48_000) for i in range(5)})
    dataset = Dataset.from_root(root)

    def store():
        return RepresentationStore(dataset.paths, "ramp", dataset.paths.derived / "ramp", {"v": 1})

    summary = run_to_store(dataset, store(), Ramp(), lambda item, out: AppendOutputs(out), Doubler(), TWO_WORKERS)
    assert summary.done == 5
    four = np.load(dataset.paths.derived / "ramp" / "file_4.npy")
    assert four.tolist() == [2.0 * (400 + k) for k, length in enumerate([3, 5, 3, 5, 3]) for _ in range(length)]
    again = run_to_store(dataset, store(), Ramp(), lambda item, out: AppendOutputs(out), Doubler(), TWO_WORKERS)
    assert (again.done, again.skipped) == (0, 5)


def test_sink_errors_fail_the_file_but_output_errors_stop_the_run(tmp_path):
    from bat_core.errors import OutputError

    class Picky(Sink):
        def add(self, item, piece, output):
            if item.file_name == "file_1.wav":
                raise ValueError("cannot place this output")
            if item.file_name == "file_4.wav":
                raise OutputError("disk full")
            super().add(item, piece, output)

    sink = Picky()
    with pytest.raises(OutputError):
        run(items(tmp_path), Ramp(), sink, Doubler(), INLINE)
    assert sink.failed == {"file_1.wav": "ValueError: cannot place this output"}


def test_store_sink_discards_partial_outputs_of_a_file_that_fails_late(tmp_path):
    root = write_project(tmp_path / "p", {f"file_{i}.wav": (np.zeros(1000, np.float32), 48_000) for i in range(4)})
    dataset = Dataset.from_root(root)
    store = RepresentationStore(dataset.paths, "ramp", dataset.paths.derived / "ramp", {"v": 1})
    summary = run_to_store(dataset, store, Ramp(explode_on="file_3.wav"), lambda item, out: AppendOutputs(out),
                           Doubler(), INLINE)
    assert summary.failed == 1 and not (dataset.paths.derived / "ramp" / "file_3.npy").exists()
    rows = read_manifest(dataset.paths.manifest_path("ramp"))
    assert dict(zip(rows.file_name, rows.status)) == {"file_0.wav": "ok", "file_1.wav": "ok", "file_2.wav": "ok",
                                                      "file_3.wav": "failed"}


def _cli(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-c", "import sys; from bat_core.cli import main; sys.exit(main(sys.argv[1:]))", *args]


def test_kill_9_then_rerun_finishes_without_recomputing(tmp_path):
    """A run killed with SIGKILL keeps every file it finished; the rerun does only the rest, and no torn output remains."""
    import signal
    import subprocess
    import time

    from bat_core.testing import write_long_recording

    root = tmp_path / "p"
    names = [f"night_{i}.wav" for i in range(8)]
    for name in names:
        write_long_recording(root / "data" / "audio" / name, seconds=20, sample_rate=384_000, seed=len(name))
    (root / "data" / "annotations.csv").write_text("File Name\n" + "\n".join(names) + "\n")
    process = subprocess.Popen(_cli("mels", "--root", str(root), "-q", "--num-workers", "1"))
    journal = root / "derived" / "manifests" / "mels_48k.main.journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not journal.exists() or journal.read_text().count("\n") < 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = journal.read_text().count('"status": "ok"')
    assert 2 <= finished_before < 8, "the kill must land mid-run"
    rerun = subprocess.run(_cli("mels", "--root", str(root), "-q", "--num-workers", "1"), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"8 given, {8 - finished_before} done, {finished_before} skipped" in rerun.stdout
    manifest = read_manifest(root / "derived" / "manifests" / "mels_48k.parquet")
    assert len(manifest) == 8 and set(manifest.status) == {"ok"}
    assert not list((root / "derived").rglob("*.tmp")) and not list((root / "derived").rglob("*.lock"))


def test_memory_does_not_grow_with_file_length(tmp_path):
    """Peak RSS of `bat-core mels` on a 2-minute 384 kHz recording stays within 60 MB of a 10-second one
    (round 1 decoded and transformed whole files: a 2-minute file took ~700 MB more)."""
    from bat_core.testing import cli_peak_rss_mb, write_long_recording

    peaks = {}
    for seconds in (10, 120):
        root = tmp_path / f"p{seconds}"
        write_long_recording(root / "data" / "audio" / "rec.wav", seconds=seconds, sample_rate=384_000)
        (root / "data" / "annotations.csv").write_text("File Name\nrec.wav\n")
        peaks[seconds], _ = cli_peak_rss_mb(["mels", "--root", str(root), "-q", "--num-workers", "0"])
    assert peaks[120] < peaks[10] + 60, peaks


@dataclass(frozen=True)
class DiesMidMessage:
    """Big pieces, then the worker kills itself: a message may be cut in the middle of the pipe."""

    piece_bytes: int = 4 << 20

    def __call__(self, item: DatasetItem):
        import signal

        for index in range(3):
            yield Piece(np.full(1 << 20, index, dtype=np.float32), length=1 << 20)
        if item.file_name == "file_1.wav":
            os.kill(os.getpid(), signal.SIGKILL)
        yield FileInfo(seconds=1.0)


class SlowSink(Sink):
    def add(self, item, piece, output):
        import time

        time.sleep(0.05)
        super().add(item, piece, output)


def test_a_worker_killed_mid_message_never_hangs_the_run(tmp_path):
    import subprocess
    import sys

    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_runner as t; from pathlib import Path; "
            f"sink = t.SlowSink(); t.run(t.items(Path({str(tmp_path)!r}), 4), t.DiesMidMessage(), sink, None, t.TWO_WORKERS); "
            "print(sorted(sink.failed), len(sink.finished))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['file_1.wav'] 3"


def test_workers_stop_when_their_parent_is_killed(tmp_path):
    """kill -9 of the parent leaves no decoding worker behind."""
    import signal
    import subprocess
    import sys
    import time

    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_runner as t; from pathlib import Path; "
            f"t.run(t.items(Path({str(tmp_path)!r}), 40), t.Ramp(), t.SlowSink(), None, t.TWO_WORKERS)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    children: set[int] = set()
    deadline = time.time() + 60
    while time.time() < deadline and len(children) < 2:
        children = {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == parent.pid}
        time.sleep(0.1)
    assert children, "the run started its workers"
    time.sleep(1.0)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() and _ppid(Path(f"/proc/{pid}")) != -1
                                         for pid in children):
        time.sleep(0.1)
    alive = [pid for pid in children if Path(f"/proc/{pid}/stat").exists() and "Z" not in _state(pid)]
    assert not alive, f"orphaned workers still running: {alive}"


def _ppid(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_a_low_rate_file_is_converted_in_bounded_blocks(tmp_path):
    """A header saying 100 Hz must not make one read block upsample into gigabytes (it took 2.5 GB before)."""
    from bat_core.testing import cli_peak_rss_mb

    root = write_project(tmp_path / "p", {"slow.wav": (np.zeros(65_536, np.float32), 100)})
    peak, output = cli_peak_rss_mb(["mels", "--root", str(root), "-q", "--num-workers", "0"])
    assert peak < 600, output
