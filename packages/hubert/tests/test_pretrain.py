"""The whole pretrain on the demo corpus with a tiny model: the folder, the log, resume, failures."""

import csv
import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from bat_core.dataset import Dataset
from bat_core.runner import RunOptions
from bat_core.testing import add_bad_files
from bat_hubert.cli import main
from bat_hubert.model import ModelSize
from bat_hubert.pretrain import PretrainSettings, pretrain

TINY_SETTINGS = PretrainSettings(iterations=2, epochs=2, min_steps=0, size=ModelSize(32, 2, 2, 64, 16),
                                 clusters=(8, 12), frontend_steps=10)
QUIET = RunOptions(workers=0, show_progress=False)


def test_pretrain_cli_saves_a_folder_transformers_loads(demo_root, tiny, capsys):
    model_dir = demo_root / "derived" / "models" / "bat_hubert"
    assert main(["pretrain", "--root", str(demo_root), *tiny]) == 0
    assert "bat-w2v-kmeans run" in capsys.readouterr().out
    from transformers import HubertModel

    model, loading = HubertModel.from_pretrained(model_dir, output_loading_info=True)
    assert not loading["missing_keys"] and not loading["unexpected_keys"]
    assert model.config.num_hidden_layers == 2 and model.config.conv_dim == [16] * 7
    assert json.loads((model_dir / "preprocessor_config.json").read_text())["sampling_rate"] == 16_000
    training = json.loads((model_dir / "bat_hubert_training.json").read_text())
    assert training["time_expansion"] == "30" and training["iterations"] == 2  # bat-hubert's own default, not auto's x15
    assert set(training["time_expansion_by_sample_rate"].values()) == {30.0}
    assert training["band_hz"] == [15_000, 120_000]  # above it low-passed: every demo rate >= 240 kHz gives one band
    assert training["low_passed_above_hz"] == 120_000
    assert len(training["corpus_fingerprint"]) == 16
    with open(model_dir / "pretrain_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["iteration"], r["epoch"], r["clusters"]) for r in rows] == [("0", "1", ""), ("1", "1", "8"), ("1", "2", "8"),
                                                                          ("2", "1", "12"), ("2", "2", "12")]
    assert 0 < float(rows[0]["held_loss"]) and rows[0]["held_masked_accuracy"] == ""  # iteration 0: log-mel regression
    assert all(0 <= float(r["held_masked_accuracy"]) <= 1 and r["label_column"] == "call_type" for r in rows[1:])
    assert 0 < float(rows[1]["targets_pnmi"]) <= 1
    assert training["frontend"] == {"steps_run": 10, "held_back_error": round(float(rows[0]["held_loss"]), 4)}
    assert not (model_dir / "pretrain_checkpoint.safetensors").exists()

    assert main(["pretrain", "--root", str(demo_root), *tiny]) == 2  # an existing model is kept
    assert "--overwrite" in capsys.readouterr().err
    (model_dir / "notes.txt").write_text("mine")
    assert main(["pretrain", "--root", str(demo_root), *tiny, "--iterations", "1", "--epochs", "1", "--overwrite"]) == 0
    assert json.loads((model_dir / "bat_hubert_training.json").read_text())["iterations"] == 1
    assert (model_dir / "notes.txt").read_text() == "mine"  # --overwrite replaces only what pretrain writes


class Stop(Exception):
    pass


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(demo_root, tmp_path):
    dataset = Dataset.from_root(demo_root)
    whole = pretrain(dataset, tmp_path / "whole", TINY_SETTINGS, options=QUIET)

    def stop_after_first_epoch(row):
        if (row.iteration, row.epoch) == (1, 0):
            raise Stop

    with pytest.raises(Stop):
        pretrain(dataset, tmp_path / "stopped", TINY_SETTINGS, options=QUIET, after_epoch=stop_after_first_epoch)
    assert (tmp_path / "stopped" / "pretrain_checkpoint.safetensors").is_file()
    resumed = pretrain(dataset, tmp_path / "stopped", TINY_SETTINGS, options=QUIET, resume=True)
    assert [(r.iteration, r.epoch) for r in resumed.rows] == [(1, 1), (2, 0), (2, 1)]
    expected = load_file(whole.directory / "model.safetensors")
    got = load_file(resumed.directory / "model.safetensors")
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    with open(resumed.directory / "pretrain_log.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 5  # iteration 0's row, then the 4 epochs' rows
    assert resumed.training["frontend"] == whole.training["frontend"]  # iteration 0's error read back from the log


def test_resume_refuses_other_settings(demo_root, tmp_path):
    dataset = Dataset.from_root(demo_root)

    def stop(row):
        raise Stop

    with pytest.raises(Stop):
        pretrain(dataset, tmp_path / "m", TINY_SETTINGS, options=QUIET, after_epoch=stop)
    from dataclasses import replace

    from bat_core.errors import ConfigMismatchError

    with pytest.raises(ConfigMismatchError, match="other settings"):
        pretrain(dataset, tmp_path / "m", replace(TINY_SETTINGS, seed=1), options=QUIET, resume=True)


def test_bad_files_are_reported_and_the_rest_trains(demo_root, tiny, capsys):
    expected = add_bad_files(demo_root)
    model_dir = demo_root / "m"
    assert main(["pretrain", "--root", str(demo_root), "--model", str(model_dir), *tiny, "--epochs", "1",
                 "--iterations", "1"]) == 1
    err = capsys.readouterr().err
    for name, reason in expected.items():
        assert name in err and reason in err.split(name, 1)[1].splitlines()[0]
    assert (model_dir / "model.safetensors").is_file()
    assert json.loads((model_dir / "bat_hubert_training.json").read_text())["recordings_failed"] == len(expected)


def test_pretrain_on_calls_only_reads_the_calls_and_records_the_table(demo_root, tiny, tmp_path, monkeypatch):
    import bat_hubert.corpus as corpus

    seen = {}
    collect = corpus.collect_crops

    def spy(*args, **kwargs):
        crops = collect(*args, **kwargs)
        seen.setdefault("model_seconds", []).append(crops.model_seconds)
        return crops

    monkeypatch.setattr("bat_hubert.pretrain.collect_crops", spy)
    whole, calls = tmp_path / "whole", tmp_path / "calls"
    common = ["pretrain", "--root", str(demo_root), *tiny, "--iterations", "1", "--epochs", "1"]
    assert main([*common, "--model", str(whole)]) == 0
    assert main([*common, "--model", str(calls), "--segments", str(demo_root / "data" / "calls.csv")]) == 0
    whole_seconds, call_seconds = seen["model_seconds"]
    assert 0 < call_seconds < 0.8 * whole_seconds  # only the calls (plus context, widened to a crop) were read
    record = json.loads((calls / "bat_hubert_training.json").read_text())
    assert "+calls:" in record["corpus_fingerprint"]
    assert main([*common, "--model", str(tmp_path / "x"), "--context-ms", "3"]) == 2  # --context-ms needs --segments


def test_calls_of_clips_shorter_than_a_crop_are_taken_whole_and_padded(tmp_path):
    """A corpus of one-call clips (20 ms at 384 kHz, 0.3 s of model audio, under the 0.5 s crop) trains in per-call
    mode as in whole-recording mode; a clip under the convolutions' one-frame input is still a failure."""
    import numpy as np

    from bat_core.calls import load_selection
    from bat_core.testing import write_project
    from bat_core.time_expansion import TimeExpansion
    from bat_hubert.corpus import collect_crops

    rate = 384_000
    t = np.arange(int(0.020 * rate)) / rate
    clip = (0.3 * np.sin(2 * np.pi * (60_000 - 1e6 * t) * t)).astype(np.float32)
    root = write_project(tmp_path / "p", {"clip.wav": (clip, rate), "tiny.wav": (clip[:600], rate)})
    table = tmp_path / "boxes.csv"
    table.write_text("File Name,start_time_s,end_time_s\nclip.wav,0.008,0.012\ntiny.wav,0.0002,0.0012\n")
    items = list(Dataset.from_root(root))
    crops = collect_crops(items, TimeExpansion(), 0.5, 100, 0, QUIET, load_selection(table, 0.005))
    assert len(crops) == 1 and crops.file_index.tolist() == [0]
    assert 0.29 * 16_000 < crops.valid[0] <= 0.31 * 16_000  # the whole clip, the rest of the crop padding
    assert not crops.audio[0, crops.valid[0]:].any()
    assert list(crops.failures) == ["tiny.wav"] and "shortest input" in crops.failures["tiny.wav"]


def test_init_starts_from_the_saved_weights_and_refuses_another_architecture(demo_root, tiny, tmp_path, monkeypatch,
                                                                              capsys):
    import hashlib

    import bat_hubert.pretrain as module

    first, second = tmp_path / "first", tmp_path / "second"
    common = ["pretrain", "--root", str(demo_root), *tiny, "--iterations", "1", "--epochs", "1"]
    assert main([*common, "--model", str(first)]) == 0
    at_step_zero = []
    new_stage = module.new_stage

    def spy(model, *args, **kwargs):
        at_step_zero.append({name: value.detach().clone() for name, value in model.state_dict().items()})
        return new_stage(model, *args, **kwargs)

    monkeypatch.setattr(module, "new_stage", spy)
    assert main([*common, "--model", str(second), "--init", str(first)]) == 0
    trained = load_file(first / "model.safetensors")
    assert at_step_zero[0].keys() == trained.keys()
    assert all(torch.equal(at_step_zero[0][name], trained[name]) for name in trained)
    record = json.loads((second / "bat_hubert_training.json").read_text())["init"]
    assert record["directory"] == str(first.resolve())
    assert record["model_sha256"] == hashlib.sha256((first / "model.safetensors").read_bytes()).hexdigest()
    assert record["corpus_fingerprint"] == json.loads((first / "bat_hubert_training.json").read_text())["corpus_fingerprint"]
    assert json.loads((first / "bat_hubert_training.json").read_text())["init"] is None
    assert json.loads((second / "bat_hubert_training.json").read_text())["frontend"] == {"steps_run": 0,
                                                                                      "held_back_error": None}
    capsys.readouterr()

    assert main([*common, "--model", str(tmp_path / "third"), "--init", str(first), "--layers", "3"]) == 2
    assert "num_hidden_layers 2 (this run: 3)" in capsys.readouterr().err
    assert main([*common, "--model", str(tmp_path / "third"), "--init", str(tmp_path / "nowhere")]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main([*common, "--model", str(first), "--init", str(first), "--overwrite"]) == 2
    assert "another --model DIR" in capsys.readouterr().err
    assert not (tmp_path / "third").exists() and (first / "model.safetensors").is_file()


def test_epochs_are_raised_to_the_minimum_steps_on_a_small_corpus(demo_root, caplog):
    settings = PretrainSettings(epochs=3, min_steps=200, batch_size=16)
    assert settings.epochs_for(448) == 8  # the demo's training crops: 28 steps per epoch, 84 in 3 epochs
    assert settings.epochs_for(1138) == 3  # shared/bats': 72 per epoch, 216 in 3
    assert replace(settings, min_steps=0).epochs_for(448) == 3
    dataset = Dataset.from_root(demo_root)
    raised = replace(TINY_SETTINGS, iterations=1, epochs=1, min_steps=40)
    result = pretrain(dataset, demo_root / "derived" / "raised", raised, options=QUIET)
    train_crops = result.crops - max(1, round(0.1 * result.crops))
    epochs = -(-40 // -(-train_crops // raised.batch_size))
    assert epochs > 1 and [row.epoch for row in result.rows] == list(range(epochs)) and result.rows[-1].epochs == epochs
    assert result.training["epochs_per_iteration"] == epochs and result.training["settings"]["epochs"] == 1
    assert f"{epochs} epochs per iteration instead of 1" in caplog.text
