import json
import subprocess
import sys

import pytest

from bat_core.testing import add_bad_files
from bat_vqvae.cli import main

TINY = ["--steps", "4", "--batch-size", "2", "--crop-frames", "32", "--codes", "16", "--code-dim", "8",
        "--hidden", "8", "--n-mels", "32", "-q", "--num-workers", "0"]


def test_train_encode_reconstruct(demo_root, tmp_path, capsys, monkeypatch):
    root = str(demo_root)
    assert main(["train", "--root", root, *TINY]) == 0
    out = capsys.readouterr().out
    assert "vqvae train: 6 given, 6 used (5 training, 1 held back), 0 failed; 4 steps" in out
    assert main(["encode", "--root", root, "-q", "--num-workers", "0"]) == 0
    assert "6 given, 6 done" in capsys.readouterr().out
    png = tmp_path / "r.png"
    stem = sorted(p.stem for p in (demo_root / "data" / "audio").iterdir())[0]
    assert main(["reconstruct", "--root", root, stem, "--out", str(png), "-q"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"reconstruction of {stem}.wav" in capsys.readouterr().out

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the plot extra not installed
    assert main(["reconstruct", "--root", root, stem, "--out", str(png), "-q"]) == 2
    assert "pip install 'bat-vqvae[plot]'" in capsys.readouterr().err


def test_overwrite_resume_and_tag(demo_root, capsys):
    root = str(demo_root)
    tagged = ["--tag", "small", *TINY]
    model = demo_root / "derived" / "models" / "vqvae-small"
    assert main(["train", "--root", root, *tagged]) == 0
    weights = (model / "model.safetensors").read_bytes()
    capsys.readouterr()

    assert main(["train", "--root", root, *tagged]) == 2
    err = capsys.readouterr().err
    assert "already holds a trained VQ-VAE: pass --overwrite" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exited:
        main(["train", "--root", root, *tagged, "--steps", "0"])
    assert exited.value.code == 2
    assert (model / "model.safetensors").read_bytes() == weights, "--steps 0 replaced nothing"

    assert main(["train", "--root", root, *tagged, "--resume", "--time-expansion", "3"]) == 2
    assert "--resume refuses" in capsys.readouterr().err
    assert main(["train", "--root", root, *tagged, "--steps", "6", "--resume"]) == 0
    assert json.loads((model / "config.json").read_text())["trained_steps"] == 6

    assert main(["train", "--root", root, *tagged, "--overwrite", "--seed", "1"]) == 0
    assert (model / "model.safetensors").read_bytes() != weights
    capsys.readouterr()
    assert main(["encode", "--root", root, "--tag", "small", "-q", "--num-workers", "0"]) == 0
    assert len(list((demo_root / "derived" / "tokens" / "vqvae-small").glob("vqvae_*.npy"))) == 6
    assert (demo_root / "derived" / "manifests" / "vqvae-small.parquet").is_file()
    assert not (demo_root / "derived" / "tokens" / "vqvae").exists()


def test_train_with_bad_files_lists_them_and_exits_1(demo_root, capsys):
    expected = add_bad_files(demo_root)
    assert main(["train", "--root", str(demo_root), *TINY]) == 1
    captured = capsys.readouterr()
    for name in expected:
        assert f"failed: {name}: " in captured.err
    assert f"{len(expected)} failed (bad_absurd.wav, bad_corrupt.wav" in captured.out
    config = json.loads((demo_root / "derived" / "models" / "vqvae" / "config.json").read_text())
    assert set(config["failed_files"]) == set(expected)


def test_encode_without_a_model_is_a_clear_error(demo_root, capsys):
    assert main(["encode", "--root", str(demo_root)]) == 2
    assert "--model PATH" in capsys.readouterr().err


def test_help(capsys):
    for argv in (["--help"], ["train", "--help"], ["encode", "--help"], ["reconstruct", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "--crop-frames" in text and "--shard" in text and "exit codes" in text


def test_switches_are_where_they_do_something():
    from bat_vqvae.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    options = {name: {o for action in parser._actions for o in action.option_strings} for name, parser in commands.items()}
    assert "--seed" in options["train"] and "--seed" not in options["encode"] | options["reconstruct"]
    assert "--shard" in options["encode"] and "--shard" not in options["train"] | options["reconstruct"]
    assert "--overwrite" in options["train"] & options["encode"] and "--overwrite" not in options["reconstruct"]
    assert all("--tag" in options[name] for name in commands)
    assert {"--num-workers", "--max-memory"} <= options["train"] & options["encode"]


def test_help_imports_no_numerics():
    """--help answers before numpy, pandas, torch or matplotlib are imported; a worker unpickling the mel-window
    prepare imports no torch."""
    code = ("import sys; from bat_vqvae.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'pandas', 'torch', 'librosa', 'matplotlib') if m in sys.modules)); "
            "import bat_vqvae.mel_windows; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "False"]


def test_encode_per_call_gives_each_calls_codes_in_original_seconds(demo_root):
    import numpy as np

    from bat_core.testing import check_per_call_outputs

    root, boxes = str(demo_root), demo_root / "data" / "calls.csv"
    assert main(["train", "--root", root, *TINY]) == 0
    assert main(["encode", "--root", root, "-q", "--num-workers", "0", "--segments", str(boxes), "--context-ms", "0"]) == 0
    table = check_per_call_outputs(demo_root, "vqvae-calls", boxes, context_s=0.0)
    for row in table.itertuples():
        codes = np.stack(row.values)
        assert codes.ndim == 2 and codes.shape[1] == 32 // 4 and codes.shape[0] >= 2  # (T', F') per call
    assert not (demo_root / "derived" / "tokens" / "vqvae").exists()  # whole-file outputs: not made, not touched
