"""Test helpers that ship with bat-core, so a strategy package tested alone has them.

Fixture data is made on the fly: a small demo corpus, files broken in the ways
field data breaks (empty, corrupt, NaN, stereo, missing), and a locator for the
shared real recordings that skips with a reason when they are absent.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bat_core.demo import write_demo_corpus
from bat_core.runner import Piece

SHARED_BATS_ENV = "BAT_SHARED_BATS"


def make_demo_project(root: str | Path, n_files: int = 6, seed: int = 0) -> Path:
    """A small demo corpus; every call type and at least two sample rates at n_files >= 6."""
    return write_demo_corpus(root, n_files=n_files, seed=seed)


def write_project(root: str | Path, recordings: dict[str, tuple[np.ndarray, int]], subtype: str = "PCM_16") -> Path:
    """A project root holding the given ``{file name: (samples, sample rate)}`` and an annotations.csv listing them."""
    root = Path(root)
    audio_dir = root / "data" / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    for name, (samples, rate) in recordings.items():
        sf.write(audio_dir / name, samples, rate, subtype=subtype)
    with open(root / "data" / "annotations.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["File Name"])
        writer.writerows([name] for name in recordings)
    return root


def write_long_recording(path: str | Path, seconds: float, sample_rate: int = 384_000, seed: int = 0) -> Path:
    """A long mono recording (quiet noise with a 40 kHz call every second), written block by block, so
    making a 10-minute file does not itself take the memory a test measures."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    call = (0.3 * np.sin(2 * np.pi * 40_000 * np.arange(int(0.005 * sample_rate)) / sample_rate)).astype(np.float32)
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as handle:
        for _ in range(int(seconds)):
            second = (0.003 * rng.standard_normal(sample_rate)).astype(np.float32)
            second[: len(call)] += call
            handle.write(second)
        rest = int((seconds - int(seconds)) * sample_rate)
        if rest:
            handle.write((0.003 * rng.standard_normal(rest)).astype(np.float32))
    return path


def add_bad_files(root: str | Path) -> dict[str, str]:
    """Append broken recordings to a project's annotations.csv.

    Returns ``{file name: text expected in its failure reason}``; a stereo file is
    added too and must succeed (mixed to mono), so it is not in the mapping.
    """
    root = Path(root)
    audio_dir = root / "data" / "audio"
    rate = 250_000
    (audio_dir / "bad_empty.wav").write_bytes(b"")
    (audio_dir / "bad_corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 3)
    nan_audio = np.zeros(rate // 10, dtype=np.float32)
    nan_audio[100:200] = np.nan
    sf.write(audio_dir / "bad_nan.wav", nan_audio, rate, subtype="FLOAT")
    sf.write(audio_dir / "bad_noframes.wav", np.zeros(0, dtype=np.float32), rate, subtype="PCM_16")
    rng = np.random.default_rng(1)
    sf.write(audio_dir / "ok_stereo.wav", (0.01 * rng.standard_normal((rate // 5, 2))).astype(np.float32),
             rate, subtype="PCM_16")
    absurd = np.zeros(rate // 10, dtype=np.float32)
    absurd[500] = 1e30  # finite, yet no recording holds it
    sf.write(audio_dir / "bad_absurd.wav", absurd, rate, subtype="FLOAT")
    expected = {
        "bad_absurd.wav": "beyond",
        "bad_empty.wav": "empty",
        "bad_corrupt.wav": "cannot decode",
        "bad_nan.wav": "NaN",
        "bad_noframes.wav": "no audio samples",
        "bad_missing.wav": "not found",
    }
    csv_path = root / "data" / "annotations.csv"
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or ["File Name"]
        rows = list(reader)
    for name in [*expected, "ok_stereo.wav"]:
        rows.append({column: (name if column == "File Name" else "") for column in columns})
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return expected


def find_shared_bats(start: str | Path | None = None) -> Path | None:
    """The real recordings (``shared/bats``): ``$BAT_SHARED_BATS``, else ``shared/bats``
    beside the checkout (searched upwards from ``start`` or the working directory)."""
    if os.environ.get(SHARED_BATS_ENV):
        candidate = Path(os.environ[SHARED_BATS_ENV])
        return candidate if (candidate / "data" / "annotations.csv").is_file() else None
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "bats"
        if (candidate / "data" / "annotations.csv").is_file():
            return candidate
    return None


def require_shared_bats() -> Path:
    """The real recordings, or a pytest skip that says where they were looked for."""
    import pytest

    found = find_shared_bats()
    if found is None:
        pytest.skip(
            f"real bat recordings not found: set {SHARED_BATS_ENV} or place shared/bats "
            "(data/annotations.csv, data/audio/) beside the checkout"
        )
    return found


def make_tiny_ast(directory: str | Path, max_length: int = 128, num_mel_bins: int = 32, seed: int = 0) -> Path:
    """A tiny random-weight Audio Spectrogram Transformer + its feature extractor, saved with
    ``save_pretrained`` so tests exercise the real ``from_pretrained`` path offline."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    torch.manual_seed(seed)
    config = ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       max_length=max_length, num_mel_bins=num_mel_bins, patch_size=16,
                       frequency_stride=10, time_stride=10)
    ASTModel(config).eval().save_pretrained(directory)
    ASTFeatureExtractor(num_mel_bins=num_mel_bins, max_length=max_length).save_pretrained(directory)
    return Path(directory)


def make_tiny_speech_encoder(directory: str | Path, kind: str = "wav2vec2", seed: int = 0,
                             attention_mask: bool = True) -> Path:
    """A tiny random-weight wav2vec2 / HuBERT / WavLM encoder + feature extractor, saved with
    ``save_pretrained`` (conv stride 320 like the base models, 2 layers of width 32).
    ``attention_mask=False`` makes an extractor like wav2vec2-base's / HuBERT-base's, which
    take zero-padded batches without a mask."""
    import torch
    from transformers import (
        HubertConfig,
        HubertModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        WavLMConfig,
        WavLMModel,
    )

    classes = {"wav2vec2": (Wav2Vec2Config, Wav2Vec2Model), "hubert": (HubertConfig, HubertModel),
               "wavlm": (WavLMConfig, WavLMModel)}
    config_class, model_class = classes[kind]
    torch.manual_seed(seed)
    config = config_class(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16, 16, 16, 16, 16, 16), conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )
    model_class(config).eval().save_pretrained(directory)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=attention_mask).save_pretrained(directory)
    return Path(directory)


class StrategyContract:
    """The contract every per-file strategy keeps, as tests a strategy's test module inherits::

        class TestContract(StrategyContract):
            representation = "vqvae"
            def run_strategy(self, root, models, **options):  # the library call a user would make
                ...
            def command(self, root, models):  # the CLI equivalent, for the kill -9 test
                ...

    ``models`` is a per-test temporary folder for whatever the strategy needs first (a tiny model, a
    trained codebook). Named without a ``Test`` prefix so pytest collects it only where inherited.
    """

    representation: str = ""
    time_axis: int | None = 0  # axis of the main output that runs along time (None: no time axis)

    def run_strategy(self, root: Path, models: Path, **options):
        """Run the strategy's per-file command over ``root`` (``options``: workers, overwrite); a RunSummary."""
        raise NotImplementedError

    def command(self, root: Path, models: Path) -> list[str]:
        """argv of the same run through the strategy's CLI (``[sys.executable, "-m", ...]`` or a console script)."""
        raise NotImplementedError

    # -- the contract --------------------------------------------------------------------------
    def test_bad_files_become_failed_rows_and_the_rest_ok(self, demo_root, tmp_path):
        expected = add_bad_files(demo_root)
        summary = self.run_strategy(demo_root, tmp_path / "models", workers=2)
        reasons = dict(summary.failures)
        assert set(reasons) == set(expected), reasons
        for name, text in expected.items():
            assert text in reasons[name], (name, reasons[name])
        assert summary.done == summary.given - len(expected) and summary.accounted
        manifest = self._manifest(demo_root)
        assert set(manifest[manifest.status == "failed"].file_name) == set(expected)
        for row in manifest[manifest.status == "ok"].itertuples():
            array = np.load(demo_root / "derived" / row.output_path)
            assert list(array.shape) == __import__("json").loads(row.shape) and str(array.dtype) == row.dtype
            assert array.dtype.kind not in "fc" or np.isfinite(array).all(), row.file_name

    def test_rerun_skips_what_is_done(self, demo_root, tmp_path):
        first = self.run_strategy(demo_root, tmp_path / "models")
        again = self.run_strategy(demo_root, tmp_path / "models")
        assert (again.done, again.skipped, again.failed) == (0, first.done, 0)
        assert self.run_strategy(demo_root, tmp_path / "models", overwrite=True).done == first.done

    def test_manifest_rows_say_what_was_done_and_map_to_original_seconds(self, demo_root, tmp_path):
        from bat_core.store import MANIFEST_COLUMNS, SCHEMA_VERSION

        self.run_strategy(demo_root, tmp_path / "models")
        manifest = self._manifest(demo_root)
        assert list(manifest.columns) == MANIFEST_COLUMNS
        for row in manifest.itertuples():
            assert row.status == "ok" and row.config_hash and row.kind and row.schema_version == SCHEMA_VERSION
            assert row.original_sample_rate > 0 and row.time_expansion >= 1 and row.target_sample_rate > 0
            assert row.seconds > 0 and row.source_fingerprint
            if self.time_axis is not None:
                frames = __import__("json").loads(row.shape)[self.time_axis]
                assert abs(frames - row.seconds * row.frames_per_second) <= max(2.0, 0.02 * frames), row.file_name

    def test_a_killed_run_leaves_no_torn_output_and_the_rerun_completes(self, demo_root, tmp_path):
        import signal
        import subprocess
        import time

        command = self.command(demo_root, tmp_path / "models")
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        journals = demo_root / "derived" / "manifests"
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None and not any(
                path.stat().st_size for path in journals.glob(f"{self.representation}.*.journal.jsonl")):
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        rerun = subprocess.run(command, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        manifest = self._manifest(demo_root)
        assert set(manifest.status) == {"ok"} and len(manifest) == len(list((demo_root / "data" / "audio").iterdir()))
        for row in manifest.itertuples():
            np.load(demo_root / "derived" / row.output_path)  # every output whole
        assert not list((demo_root / "derived").rglob("*.tmp")), "no temporary output left behind"

    def _manifest(self, root: Path):
        from bat_core.store import read_manifest

        return read_manifest(root / "derived" / "manifests" / f"{self.representation}.parquet")


def cli_peak_rss_mb(argv: list[str]) -> tuple[float, str]:
    """``bat-core ARGV`` in a fresh interpreter: its own peak resident memory (MB, ``peak_rss_mb``) and its
    stdout. Fails (AssertionError with stderr) when the command does not exit 0."""
    import subprocess
    import sys

    code = ("import sys; from bat_core.cli import main; code = main(sys.argv[1:]); "
            "from bat_core.testing import peak_rss_mb; print('peak', peak_rss_mb()); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return float(result.stdout.split("peak")[-1]), result.stdout


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started its program. ``ru_maxrss`` is not that: Linux
    carries it across exec, so a child started from a large test process reports the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_per_call_outputs(root: str | Path, representation: str, boxes: str | Path, context_s: float = 0.005,
                           derived: str | Path | None = None):
    """Assert what every strategy's per-call run must give, and return its calls table (a DataFrame): one row
    per box of ``boxes`` whose recording is ok, with that box's call index and times, an encoded span in the
    recording's own seconds that holds the box plus ``context_s`` (as far as the recording goes), and outputs."""
    import pandas as pd

    from bat_core.calls import calls_table_path
    from bat_core.paths import ProjectPaths

    paths = ProjectPaths.for_root(root, derived)
    table = pd.read_parquet(calls_table_path(paths, representation))
    manifest = pd.read_parquet(paths.manifest_path(representation))
    ok = manifest[manifest.status == "ok"]
    expected = pd.read_csv(boxes)
    expected = expected[expected["File Name"].isin(set(ok.file_name))]
    key = ["File Name", "call_index"]
    merged = table.merge(expected[[*key, "start_time_s", "end_time_s"]], on=key, suffixes=("", "_box"), how="outer",
                         indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    assert np.allclose(merged.start_time_s, merged.start_time_s_box) and np.allclose(merged.end_time_s,
                                                                                     merged.end_time_s_box)
    seconds = dict(zip(ok.file_name, ok.seconds))
    tolerance = 1e-6
    for row in merged.itertuples():
        length = seconds[row._1]
        assert row.encoded_start_s <= max(0.0, row.start_time_s - context_s) + tolerance, row
        assert row.encoded_end_s >= min(length, row.end_time_s + context_s) - tolerance, row
        assert 0 <= row.encoded_start_s < row.encoded_end_s <= length + tolerance, row
        assert len(row.values) > 0, row
    calls = {row.file_name: json.loads(row.extra)["calls"] for row in ok.itertuples()}
    assert calls == expected.groupby("File Name").size().reindex(list(calls), fill_value=0).to_dict()
    return table


@dataclass(frozen=True)
class SamplePieces:
    """A piece maker that hands the converted samples on as they come: what a run encodes, sample for sample
    (tests of per-call cutting and of evaluation slices compare it with the recording)."""

    piece_bytes: int = 1 << 16

    def __call__(self, blocks: Iterator[np.ndarray]) -> Iterator[Piece]:
        for block in blocks:
            yield Piece(np.asarray(block, dtype=np.float32), length=len(block))
