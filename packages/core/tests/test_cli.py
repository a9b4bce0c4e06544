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
    assert "9 given, 4 done, 0 skipped (already done), 5 failed" in captured.out
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
    ],
)
def test_usage_errors_exit_2_with_a_message(tmp_path, capsys, argv, message):
    main(["demo", str(tmp_path / "proj"), "--files", "3"])
    capsys.readouterr()
    assert main([arg.replace("{tmp}", str(tmp_path)) for arg in argv]) == 2
    assert message in capsys.readouterr().err


def test_help_documents_exit_codes(capsys):
    for argv in (["--help"], ["mels", "--help"], ["check", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "exit codes:" in text and "--time-expansion" in text and "--derived" in text
