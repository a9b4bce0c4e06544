import json

import numpy as np
import pytest

from bat_ast_embed import ASTEmbedder, EmbedConfig, embed_dataset
from bat_ast_embed.cli import main
from bat_core.dataset import Dataset
from bat_core.store import read_manifest
from bat_core.testing import add_bad_files


def test_embed_through_the_store_with_bad_files_and_resume(tiny_ast, demo_root):
    expected = add_bad_files(demo_root)
    dataset = Dataset.from_root(demo_root)
    model = ASTEmbedder.from_pretrained(tiny_ast, EmbedConfig(max_frames="auto", sequence=True, pool="both"), device="cpu")
    summary = embed_dataset(dataset, model, num_workers=2, show_progress=False)
    assert (summary.given, summary.done, summary.failed) == (12, 7, 5)
    assert {name for name, _ in summary.failures} == set(expected)
    manifest = read_manifest(dataset.paths.manifest_path("ast"))
    row = manifest[manifest.status == "ok"].iloc[0]
    vector = np.load(dataset.paths.derived / row["output_path"])
    assert row["output_path"].startswith("ast_features/ast_") and vector.shape == (32,) and vector.dtype == np.float32
    base = dataset.paths.derived / row["output_path"]
    assert np.load(base.with_name(base.name.replace(".npy", ".mean.npy"))).shape == (32,)
    sequence = np.load(base.with_name(base.name.replace(".npy", ".sequence.npy")))
    extra = json.loads(row["extra"])
    assert extra["sequence_frames_per_second"] == pytest.approx(10 * 15)
    assert sequence.shape[0] == pytest.approx(row["seconds"] * extra["sequence_frames_per_second"], abs=3)
    assert row["time_expansion"] == 15 and row["model_id"] == str(tiny_ast)
    again = embed_dataset(dataset, model, show_progress=False)
    assert (again.skipped, again.failed, again.done) == (7, 5, 0)


def test_cli_embed_and_help(tiny_ast, demo_root, capsys):
    assert main(["embed", "--root", str(demo_root), "--model", str(tiny_ast), "--max-frames", "auto", "-q"]) == 0
    assert "6 given, 6 done" in capsys.readouterr().out
    assert main(["embed", "--root", str(demo_root), "--model", str(demo_root / "nothing_here"), "-q"]) == 2
    assert "--model PATH" in capsys.readouterr().err
    assert main(["embed", "--root", str(demo_root), "--model", str(tiny_ast), "--max-frames", "ten"]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["embed", "--help"])
    assert exited.value.code == 0
    assert "--max-frames" in capsys.readouterr().out
