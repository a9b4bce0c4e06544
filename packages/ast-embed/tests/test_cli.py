"""The CLI parses and prints; errors are one line and exit 2."""

import json
import subprocess
import sys

import pytest

from bat_ast_embed.cli import main
from bat_core.store import read_manifest


def test_cli_embed_and_help(tiny_ast, demo_root, capsys):
    assert main(["embed", "--root", str(demo_root), "--model", str(tiny_ast), "--max-frames", "auto", "-q",
                 "--num-workers", "0"]) == 0
    assert "6 given, 6 done" in capsys.readouterr().out
    assert main(["embed", "--root", str(demo_root), "--model", str(demo_root / "nothing_here"), "-q"]) == 2
    assert "--model PATH" in capsys.readouterr().err
    assert main(["embed", "--root", str(demo_root), "--model", str(tiny_ast), "--max-frames", "ten"]) == 2
    assert "--max-frames takes 'auto' or an integer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["embed", "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for option in ("--max-frames", "--shard", "--tag", "--num-workers", "--max-memory", "--overwrite", "--precision"):
        assert option in shown
    assert "--seed" not in shown


def test_cli_refuses_a_model_of_another_architecture(tiny_wav2vec2, demo_root, capsys):
    assert main(["embed", "--root", str(demo_root), "--model", str(tiny_wav2vec2), "-q", "--num-workers", "0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "'wav2vec2'" in error and "'audio-spectrogram-transformer'" in error
    assert not (demo_root / "derived" / "ast_features").exists()


def test_cli_tag_writes_beside_the_default_layout(tiny_ast, demo_root, capsys):
    for shard in ("0/2", "1/2"):
        assert main(["embed", "--root", str(demo_root), "--model", str(tiny_ast), "--max-frames", "auto", "-q",
                     "--num-workers", "0", "--tag", "k1", "--shard", shard]) == 0
    manifest = read_manifest(demo_root / "derived" / "manifests" / "ast-k1.parquet")
    assert len(manifest) == 6 and set(manifest.status) == {"ok"}
    assert len(list((demo_root / "derived" / "ast_features" / "ast-k1").glob("ast_*.npy"))) == 6
    assert not (demo_root / "derived" / "manifests" / "ast.parquet").exists()


def test_help_imports_no_numerics():
    """--help answers before numpy, pandas, torch or transformers are imported."""
    code = ("import sys, json\nfrom bat_ast_embed.cli import main\ntry:\n    main(['embed', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(m for m in ('numpy', 'pandas', 'torch', 'transformers') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert "--max-frames" in done.stdout


def test_cli_embeds_each_call_once_in_original_seconds(tiny_ast, demo_root):
    import numpy as np

    from bat_core.testing import check_per_call_outputs

    boxes = demo_root / "data" / "calls.csv"
    common = ["embed", "--root", str(demo_root), "--model", str(tiny_ast), "-q", "--num-workers", "0"]
    assert main([*common, "--segments", str(boxes), "--pool", "both"]) == 0
    table = check_per_call_outputs(demo_root, "ast-calls", boxes)
    for row in table.itertuples():
        assert np.asarray(row.values.tolist()).shape == (1, 32)  # one embedding per call (tiny AST: hidden 32)
        assert row.encoded_end_s - row.encoded_start_s >= 0.0104  # 16 frames of 10 ms at x15: never zero padded
    assert not (demo_root / "derived" / "ast_features" / "ast_demo_000_fm_192k.npy").exists()  # whole-file layout untouched
    assert main([*common, "--segments", str(boxes), "--sequence"]) == 2
    assert main([*common, "--segments", str(demo_root / "no_such.csv")]) == 2
