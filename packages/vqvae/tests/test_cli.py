import pytest

from bat_vqvae.cli import main

TINY = ["--steps", "4", "--batch-size", "2", "--crop-frames", "32", "--codes", "16", "--code-dim", "8",
        "--hidden", "8", "--n-mels", "32", "-q", "--num-workers", "0"]


def test_train_encode_reconstruct(demo_root, tmp_path, capsys):
    root = str(demo_root)
    assert main(["train", "--root", root, *TINY]) == 0
    assert "vqvae: 4 steps" in capsys.readouterr().out
    assert main(["encode", "--root", root, "-q"]) == 0
    assert "6 given, 6 done" in capsys.readouterr().out
    out = tmp_path / "r.png"
    stem = sorted(p.stem for p in (demo_root / "data" / "audio").iterdir())[0]
    assert main(["reconstruct", "--root", root, stem, "--out", str(out), "-q"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_encode_without_a_model_is_a_clear_error(demo_root, capsys):
    assert main(["encode", "--root", str(demo_root)]) == 2
    assert "--model PATH" in capsys.readouterr().err


def test_help(capsys):
    for argv in (["--help"], ["train", "--help"], ["encode", "--help"], ["reconstruct", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
    assert "--crop-frames" in capsys.readouterr().out
