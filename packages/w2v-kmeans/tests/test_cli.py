import numpy as np
import pytest

from bat_w2v_kmeans.cli import main


def test_run_fit_encode(tiny_wav2vec2, demo_root, capsys):
    root = str(demo_root)
    common = ["--root", root, "--model", str(tiny_wav2vec2), "-q", "--num-workers", "0"]
    assert main(["run", *common, "--k", "8", "--max-fit-frames", "500"]) == 0
    out = capsys.readouterr().out
    assert "codebook: k=8 fitted on 500" in out and "6 given, 6 done" in out
    assert not (demo_root / "derived" / "cache" / "w2v_kmeans_frames").exists()
    tokens_from_run = {p.name: np.load(p) for p in (demo_root / "derived" / "tokens").glob("w2v_kmeans_*.npy")}
    assert main(["encode", "--root", root, "-q", "--overwrite"]) == 0
    assert "6 given, 6 done" in capsys.readouterr().out
    for name, tokens in tokens_from_run.items():  # cached float16 frames give the same tokens as a fresh pass
        assert np.mean(np.load(demo_root / "derived" / "tokens" / name) == tokens) > 0.95
    assert main(["fit", *common, "--k", "8", "--layer", "1", "--codebook", str(demo_root / "cb1")]) == 0
    assert main(["encode", "--root", root, "--codebook", str(demo_root / "cb1"), "--layer", "2", "-q"]) == 2
    assert "layer" in capsys.readouterr().err


def test_help_explains_layers(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["fit", "--help"])
    assert exited.value.code == 0
    assert "intermediate layer is often better" in " ".join(capsys.readouterr().out.split())
