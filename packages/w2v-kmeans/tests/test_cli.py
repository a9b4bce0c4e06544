"""The CLI parses and prints: accounting, exit codes, refusals, tags, and a --help without numerics."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bat_core.testing import add_bad_files, make_tiny_ast
from bat_w2v_kmeans.cli import main

FIT = ["--k", "8", "--max-fit-frames", "500"]


def common(root, model):
    return ["--root", str(root), "--model", str(model), "-q", "--num-workers", "0", "--device", "cpu"]


def test_fit_lists_the_files_it_could_not_use_and_exits_1(tiny_wav2vec2, short_root, capsys):
    expected = add_bad_files(short_root)
    assert main(["fit", *common(short_root, tiny_wav2vec2), *FIT]) == 1
    captured = capsys.readouterr()
    assert "fit: 15 given, 9 done, 6 failed (" in captured.out and "codebook: k=8 fitted on 500" in captured.out
    for name in expected:
        assert f"failed: {name}: " in captured.err
    config = json.loads((short_root / "derived" / "models" / "w2v_kmeans" / "config.json").read_text())
    assert {name for name, _ in config["failed_files"]} == set(expected)
    assert (config["files_given"], config["files_done"]) == (15, 9)


def test_an_existing_codebook_is_replaced_only_with_overwrite(tiny_wav2vec2, short_root, capsys):
    args = ["fit", *common(short_root, tiny_wav2vec2), *FIT]
    assert main(args) == 0
    codebook = short_root / "derived" / "models" / "w2v_kmeans" / "centroids.safetensors"
    before = codebook.read_bytes()
    capsys.readouterr()
    assert main([*args, "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err and "already exists" in err
    assert main(["run", *common(short_root, tiny_wav2vec2), *FIT, "--seed", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert codebook.read_bytes() == before
    assert main([*args, "--seed", "1", "--overwrite"]) == 0 and codebook.read_bytes() != before


def test_run_then_encode_with_tags_side_by_side(tiny_wav2vec2, short_root, capsys):
    root = str(short_root)
    assert main(["run", *common(short_root, tiny_wav2vec2), *FIT, "--tag", "k8", "--dedup", "--window-seconds", "3"]) == 0
    out = capsys.readouterr().out
    assert "fit: 8 given, 8 done, 0 failed" in out and "w2v_kmeans-k8: 8 given, 8 done" in out
    derived = short_root / "derived"
    tagged = sorted(p.name for p in (derived / "tokens" / "w2v_kmeans-k8").glob("*.npy"))
    assert len(tagged) == 16 and tagged[0].startswith("w2v_kmeans_rec_0.")  # tokens + runs
    assert (derived / "models" / "w2v_kmeans-k8" / "config.json").is_file()
    assert (derived / "manifests" / "w2v_kmeans-k8.parquet").is_file()
    assert not (derived / "cache" / "w2v_kmeans-k8_frames").exists()
    # the same codebook (and its 3 s windows) encodes again, untagged, beside the tagged tokens
    assert main(["encode", "--root", root, "-q", "--num-workers", "0", "--dedup", "--codebook",
                 str(derived / "models" / "w2v_kmeans-k8")]) == 0
    assert "w2v_kmeans: 8 given, 8 done" in capsys.readouterr().out
    for name in (derived / "tokens").glob("w2v_kmeans_*.npy"):  # runs included
        np.testing.assert_array_equal(np.load(name), np.load(derived / "tokens" / "w2v_kmeans-k8" / name.name))
    assert main(["encode", "--root", root, "-q", "--tag", "k8", "--dedup"]) == 0
    assert "8 skipped" in capsys.readouterr().out
    assert main(["encode", "--root", root, "-q", "--tag", "k8"]) == 0  # no --dedup: another configuration
    assert "8 redone because their earlier outputs were stale (changed: dedup)" in capsys.readouterr().out
    assert main(["encode", "--root", root, "--tag", "k8", "--layer", "1", "-q"]) == 2
    assert "layer" in capsys.readouterr().err


def test_sharded_run_without_a_codebook_names_fit(tiny_wav2vec2, short_root, capsys):
    assert main(["run", *common(short_root, tiny_wav2vec2), "--shard", "0/2"]) == 2
    err = capsys.readouterr().err
    assert "bat-w2v-kmeans fit" in err and err.count("\n") == 1
    assert main(["fit", *common(short_root, tiny_wav2vec2), *FIT]) == 0
    assert main(["run", *common(short_root, tiny_wav2vec2), "--shard", "1/2"]) == 0
    out = capsys.readouterr().out
    assert "not fitted again" in out and "w2v_kmeans: " in out


def test_usage_errors_exit_2_with_one_line(tiny_wav2vec2, short_root, tmp_path, capsys):
    ast = make_tiny_ast(tmp_path / "ast")
    assert main(["fit", *common(short_root, ast), *FIT]) == 2
    assert "wav2vec2, hubert, wavlm, data2vec-audio" in capsys.readouterr().err
    assert main(["fit", *common(short_root, tiny_wav2vec2), "--k", "8", "--max-fit-frames", "4"]) == 2
    assert "fewer than --k" in capsys.readouterr().err
    assert main(["run", *common(short_root, tiny_wav2vec2), *FIT, "--window-seconds", "0.5"]) == 2
    assert "--window-seconds" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["fit", "--root", str(short_root), "--shard", "0/2"])  # fit does not shard
    assert exited.value.code == 2
    for bad in ("0", "x"):
        with pytest.raises(SystemExit) as exited:
            main(["fit", *common(short_root, tiny_wav2vec2), *FIT, "--batch-size", bad])
        assert exited.value.code == 2 and "argument --batch-size: must be auto or an integer >= 1" in capsys.readouterr().err


def test_batch_size_auto_is_8_windows_on_cpu_and_a_number_is_kept(tiny_wav2vec2):
    from bat_w2v_kmeans import SpeechEncoder

    assert SpeechEncoder.from_pretrained(tiny_wav2vec2, device="cpu").batch_size == 8
    assert SpeechEncoder.from_pretrained(tiny_wav2vec2, device="cpu", batch_size=3).batch_size == 3


def test_help_explains_layers_and_seed_only_where_used(capsys):
    for command, has_seed, has_shard in (("fit", True, False), ("encode", False, True), ("run", True, True)):
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "intermediate layer is often better" in text and "--tag" in text and "--overwrite" in text
        assert ("--seed" in text) == has_seed and ("--shard" in text) == has_shard


def test_help_imports_no_numerics():
    code = ("import sys; from bat_w2v_kmeans.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'pandas', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_per_call_run_tokens_each_call_in_original_seconds_beside_the_whole_file_tokens(tiny_wav2vec2, demo_root):
    from bat_core.testing import check_per_call_outputs

    boxes = demo_root / "data" / "calls.csv"
    common = ["--root", str(demo_root), "--model", str(tiny_wav2vec2), "--k", "8", "-q", "--num-workers", "0"]
    assert main(["run", *common]) == 0
    whole = {path.name: path.read_bytes() for path in (demo_root / "derived" / "tokens").glob("*.npy")}
    assert main(["run", *common, "--segments", str(boxes), "--context-ms", "3"]) == 0
    table = check_per_call_outputs(demo_root, "w2v_kmeans-calls", boxes, context_s=0.003)
    manifest = pd.read_parquet(demo_root / "derived" / "manifests" / "w2v_kmeans-calls.parquet")
    rate = dict(zip(manifest.file_name, manifest.frames_per_second))
    for row in table.itertuples():  # one token per encoder frame of the encoded span
        frames = (row.encoded_end_s - row.encoded_start_s) * rate[row._1]
        assert abs(len(row.values) - frames) <= 2, (row, frames)
    assert {path.name: path.read_bytes() for path in (demo_root / "derived" / "tokens").glob("*.npy")} == whole
    assert (demo_root / "derived" / "models" / "w2v_kmeans-calls" / "config.json").is_file()
    assert main(["run", *common, "--segments", str(boxes), "--context-ms", "3", "--dedup"]) == 2
    assert main(["encode", "--root", str(demo_root), "--segments", "detected", "-q"]) == 2  # not segmented yet


def _pretrained_by_bat_hubert(tiny_hubert, tmp_path, factor: str, low_passed: bool = True, rate: int = 250_000):
    """The tiny HuBERT with the training record bat-hubert writes beside its weights (``low_passed=False``: as
    bat-hubert wrote it before bat-core low-passed above the band's top), trained on recordings at ``rate``."""
    import shutil

    model = tmp_path / "bat_hubert_model"
    shutil.copytree(tiny_hubert, model)
    record = {"time_expansion": factor, "time_expansion_by_sample_rate": {str(rate): float(factor)},
              "band_hz": [15000.0, 120000.0], "model_sample_rate": 16_000}
    if low_passed:
        record["low_passed_above_hz"] = 120000.0
    (model / "bat_hubert_training.json").write_text(json.dumps(record))
    return model


def test_auto_adopts_the_time_expansion_a_bat_hubert_encoder_was_trained_with(tiny_hubert, short_root, tmp_path):
    model = _pretrained_by_bat_hubert(tiny_hubert, tmp_path, "10")
    assert main(["fit", *common(short_root, model), *FIT]) == 0
    config = json.loads((short_root / "derived" / "models" / "w2v_kmeans" / "config.json").read_text())
    assert config["time_expansion"] == "10"


def test_another_explicit_time_expansion_than_the_encoder_was_trained_with_exits_2(tiny_hubert, short_root, tmp_path,
                                                                                   capsys):
    model = _pretrained_by_bat_hubert(tiny_hubert, tmp_path, "10")
    assert main(["run", *common(short_root, model), *FIT, "--time-expansion", "15"]) == 2
    assert "pretrained on recordings time-expanded x10" in capsys.readouterr().err
    assert main(["fit", *common(short_root, model), *FIT, "--time-expansion", "10"]) == 0


def test_another_band_top_than_the_encoder_was_trained_with_exits_2(tiny_hubert, short_root, tmp_path, capsys):
    model = _pretrained_by_bat_hubert(tiny_hubert, tmp_path, "30")
    assert main(["run", *common(short_root, model), *FIT, "--time-expansion", "30", "--band", "15000", "240000"]) == 2
    assert "low-passed above 120000 Hz" in capsys.readouterr().err
    assert main(["fit", *common(short_root, model), *FIT, "--time-expansion", "30"]) == 0
    harmless = _pretrained_by_bat_hubert(tiny_hubert, tmp_path / "x10", "10")  # x10 passes 80 kHz: no top cuts it
    assert main(["fit", *common(short_root, harmless), *FIT, "--time-expansion", "10", "--band", "15000", "240000",
                 "--overwrite"]) == 0


def test_an_encoder_that_heard_above_the_band_top_before_the_low_pass_existed_exits_2(tiny_hubert, short_root,
                                                                                      tmp_path, capsys):
    """Pretrained at x30 by an earlier bat-hubert: it heard up to 240 kHz, each rate's band empty at its Nyquist;
    fed low-passed audio now, its frames would mean something else. At x10 (80 kHz) nothing changed: accepted."""
    model = _pretrained_by_bat_hubert(tiny_hubert, tmp_path, "30", low_passed=False)
    assert main(["fit", *common(short_root, model), *FIT]) == 2
    assert "let through up to 125000 Hz" in capsys.readouterr().err  # its 250 kHz recordings' Nyquist
    older = _pretrained_by_bat_hubert(tiny_hubert, tmp_path / "x10", "10", low_passed=False)
    assert main(["fit", *common(short_root, older), *FIT]) == 0
    assert main(["encode", *common(short_root, older)]) == 0
    only_192k = _pretrained_by_bat_hubert(tiny_hubert, tmp_path / "192k", "30", low_passed=False, rate=192_000)
    assert main(["fit", *common(short_root, only_192k), *FIT, "--overwrite"]) == 0  # heard up to 96 kHz: no change
    # a codebook fitted with it stays refused at encode once the record says it heard more
    record = json.loads((older / "bat_hubert_training.json").read_text())
    record["time_expansion_by_sample_rate"] = {"500000": 30.0}
    (older / "bat_hubert_training.json").write_text(json.dumps(record))
    assert main(["encode", *common(short_root, older), "--overwrite"]) == 2
