import json

import pytest

from bat_core.cli import main
from bat_core.testing import add_bad_files


def test_demo_check_mels_end_to_end(tmp_path, capsys):
    root = tmp_path / "proj"
    assert main(["demo", str(root), "--files", "6"]) == 0
    assert main(["check", "--root", str(root), "-q", "--json", str(tmp_path / "r.json")]) == 0
    assert len(json.loads((tmp_path / "r.json").read_text())) == 6
    assert main(["mels", "--root", str(root), "-q", "--n-mels", "32"]) == 0
    assert "6 given, 6 done, 0 skipped (already done), 0 failed" in capsys.readouterr().out
    assert main(["mels", "--root", str(root), "-q", "--n-mels", "32"]) == 0
    assert "6 given, 0 done, 6 skipped" in capsys.readouterr().out


def test_failures_exit_1_and_are_listed(tmp_path, capsys):
    root = tmp_path / "proj"
    main(["demo", str(root), "--files", "3"])
    add_bad_files(root)
    derived = tmp_path / "elsewhere"
    assert main(["mels", "--root", str(root), "--derived", str(derived), "-q"]) == 1
    captured = capsys.readouterr()
    assert "10 given, 4 done, 0 skipped (already done), 6 failed" in captured.out
    assert "failed: bad_nan.wav:" in captured.err
    assert (derived / "mels_48k").is_dir() and not (root / "derived").exists()
    assert main(["check", "--root", str(root), "-q"]) == 1


def test_where_and_limit(tmp_path, capsys):
    root = tmp_path / "proj"
    main(["demo", str(root), "--files", "6"])
    assert main(["mels", "--root", str(root), "-q", "--where", "call_type=QCF", "--limit", "1"]) == 0
    assert "1 given, 1 done" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mels", "--root", "{tmp}/nowhere"], "annotations not found"),
        (["mels", "--root", "{tmp}/proj", "--where", "nocolumn"], "--where takes COLUMN=VALUE"),
        (["mels", "--root", "{tmp}/proj", "--time-expansion", "0.1"], "--time-expansion"),
        (["mels", "--root", "{tmp}/proj", "--band", "90000", "20000"], "--band needs LOW_HZ < HIGH_HZ"),
        (["mels", "--root", "{tmp}/proj", "--fmin", "30000"], "mel settings"),
        (["demo", "{tmp}/proj"], "exists: a demo corpus would replace it"),
    ],
)
def test_usage_errors_exit_2_with_a_message(tmp_path, capsys, argv, message):
    main(["demo", str(tmp_path / "proj"), "--files", "3"])
    capsys.readouterr()
    assert main([arg.replace("{tmp}", str(tmp_path)) for arg in argv]) == 2
    assert message in capsys.readouterr().err


def test_help_documents_exit_codes(capsys):
    for argv in (["--help"], ["mels", "--help"], ["check", "--help"], ["demo", "--help"], ["segment", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "exit codes:" in text and "--time-expansion" in text and "--derived" in text
    assert "--evaluate CALLS.csv" in text and "--max-calls-per-second" in text


@pytest.mark.parametrize("option, value", [("--n-mels", "0"), ("--hop-length", "-3"), ("--num-workers", "-1"),
                                           ("--limit", "x"), ("--shard", "4/4"), ("--max-memory", "0")])
def test_bad_option_values_exit_2_with_one_line(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exited:
        main(["mels", "--root", str(tmp_path), option, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


@pytest.mark.parametrize("code, text", [("EROFS", "Read-only file system"), ("EACCES", "cannot write"), ("ENOSPC", "no space left")])
def test_unwritable_or_full_output_exits_2_with_one_line(tmp_path, capsys, monkeypatch, code, text):
    """CI runs as root, so chmod proves nothing: the operating system's refusal is mocked where outputs are written."""
    import errno
    import os

    root = tmp_path / "proj"
    main(["demo", str(root), "--files", "3"])
    real_replace = os.replace

    def refusing_replace(source, target, *args, **kwargs):
        if str(target).endswith(".npy"):
            raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), str(target))
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refusing_replace)
    capsys.readouterr()
    assert main(["mels", "--root", str(root), "-q", "--num-workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and text in err and "--derived" in err and "Traceback" not in err
    monkeypatch.setattr(os, "replace", real_replace)
    assert main(["mels", "--root", str(root), "-q", "--num-workers", "0"]) == 0  # the lock was released; a rerun works


def test_help_imports_no_numerics():
    """--help answers before numpy, pandas or torch are imported (the speed target lives in the benchmarks)."""
    import subprocess
    import sys

    code = ("import sys; from bat_core.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'pandas', 'torch', 'librosa') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_shards_run_at_once_and_their_union_is_one_run(tmp_path, capsys):
    """N shards as separate processes into one --derived equal one unsharded run, file for file."""
    import subprocess
    import sys

    import numpy as np

    from bat_core.store import read_manifest

    root = tmp_path / "proj"
    main(["demo", str(root), "--files", "9"])
    cli = [sys.executable, "-c", "import sys; from bat_core.cli import main; sys.exit(main(sys.argv[1:]))"]
    sharded = tmp_path / "sharded"
    shards = [subprocess.Popen([*cli, "mels", "--root", str(root), "--derived", str(sharded), "-q", "--num-workers", "1",
                                "--shard", f"{i}/3"], stdout=subprocess.PIPE, text=True) for i in range(3)]
    outputs = [shard.communicate()[0] for shard in shards]
    assert [shard.returncode for shard in shards] == [0, 0, 0], outputs
    assert sum(int(out.split(" given")[0].split()[-1]) for out in outputs) == 9
    assert main(["mels", "--root", str(root), "--derived", str(tmp_path / "whole"), "-q", "--num-workers", "0"]) == 0
    together = read_manifest(sharded / "manifests" / "mels_48k.parquet")
    whole = read_manifest(tmp_path / "whole" / "manifests" / "mels_48k.parquet")
    assert sorted(together.file_name) == sorted(whole.file_name) and set(together.status) == {"ok"}
    assert not list((sharded / "manifests").glob("*.journal.jsonl")), "every shard folded its journal"
    for row in whole.itertuples():
        np.testing.assert_array_equal(np.load(sharded / row.output_path), np.load(tmp_path / "whole" / row.output_path))
    capsys.readouterr()
    assert main(["mels", "--root", str(root), "--derived", str(sharded), "-q"]) == 0
    assert "9 given, 0 done, 9 skipped" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--time-expansion", "1e300"], "--time-expansion"), (["--time-expansion", "inf"], "--time-expansion"),
    (["--band", "nan", "1000"], "argument --band"), (["--band", "1", "inf"], "argument --band"),
    (["--n-fft", "1"], "mel settings"), (["--n-fft", "100000000"], "mel settings"), (["--n-mels", "600"], "mel settings"),
    (["--sample-rate", "100000000000"], "mel settings"),
])
def test_absurd_settings_are_refused_before_any_work(tmp_path, capsys, argv, message):
    main(["demo", str(tmp_path / "proj"), "--files", "3"])
    capsys.readouterr()
    try:
        code = main(["mels", "--root", str(tmp_path / "proj"), "-q", *argv])
    except SystemExit as exited:
        code = exited.code
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "proj" / "derived").exists()


def test_a_file_where_a_folder_should_be_is_one_line(tmp_path, capsys):
    main(["demo", str(tmp_path / "proj"), "--files", "3"])
    (tmp_path / "not_a_folder").write_text("x")
    capsys.readouterr()
    assert main(["mels", "--root", str(tmp_path / "proj"), "--derived", str(tmp_path / "not_a_folder"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert main(["check", "--root", str(tmp_path / "proj"), "-q", "--json", str(tmp_path / "nowhere" / "r.json")]) == 2
