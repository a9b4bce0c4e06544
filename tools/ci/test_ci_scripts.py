"""The CI scripts catch what they promise: unused or undeclared dependencies, a changed install,
a torch pin spelled twice; and the committed install lists keep the issue's promises."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CI = Path(__file__).resolve().parent
REPO = CI.parents[1]
EXPECTED = CI / "expected-dists"
sys.path.insert(0, str(CI))

from check_imports import check  # noqa: E402
from package_info import no_deps_requirements, requirement_name  # noqa: E402
from torch_pin import torch_pin  # noqa: E402


def write_package(root: Path, pyproject: str, source: str, test: str = "import pytest\n") -> Path:
    (root / "src" / "bat_probe").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    (root / "src" / "bat_probe" / "__init__.py").write_text(textwrap.dedent(source))
    (root / "tests" / "test_probe.py").write_text(test)
    return root


def test_requirement_names_are_normalised():
    assert requirement_name("bat-core[mels]>=0.1,<0.2") == "bat-core"
    assert requirement_name("Scikit_Learn>=1.3 ; python_version >= '3.11'") == "scikit-learn"


def test_a_package_that_imports_what_it_declares_passes(tmp_path):
    package = write_package(tmp_path, """
        [project]
        name = "bat-probe"
        dependencies = ["numpy>=1.24"]
        [project.optional-dependencies]
        test = ["pytest>=7"]
        """, """
        import json
        import numpy as np
        from bat_probe import helpers
        from . import more
        """)
    assert check(package) == []


def test_unused_undeclared_and_stale_exceptions_are_each_reported(tmp_path):
    package = write_package(tmp_path, """
        [project]
        name = "bat-probe"
        dependencies = ["numpy>=1.24", "tqdm>=4"]
        [project.optional-dependencies]
        plot = ["matplotlib>=3.7"]
        [tool.bat-tokenizers.dependency-check.not-imported]
        numpy = "no longer true"
        [tool.bat-tokenizers.dependency-check.undeclared]
        gone = "nobody imports it"
        """, """
        import numpy
        import pytest
        import surely_not_installed_anywhere.sub
        """)
    problems = "\n".join(check(package))
    assert "tqdm (dependencies) is declared but never imported" in problems
    assert "matplotlib (extra [plot]) is declared but never imported" in problems
    assert "numpy: listed under not-imported, yet imported" in problems
    assert "pytest is imported (src/bat_probe/__init__.py:3) but not declared" in problems
    assert "surely_not_installed_anywhere is imported" in problems and "no installed distribution" in problems
    assert "gone: listed under undeclared, but src/ never imports it" in problems


def test_a_reasoned_exception_is_accepted(tmp_path):
    package = write_package(tmp_path, """
        [project]
        name = "bat-probe"
        dependencies = ["pyarrow>=14"]
        [tool.bat-tokenizers.dependency-check.not-imported]
        pyarrow = "pandas' Parquet engine"
        [tool.bat-tokenizers.dependency-check.undeclared]
        surely_not_installed_anywhere = "declared by the strategies"
        """, "import surely_not_installed_anywhere\n")
    assert check(package) == []


def installed_dists(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CI / "installed_dists.py"), *args], capture_output=True, text=True)


def test_a_changed_install_fails_with_a_readable_diff_until_regenerated(tmp_path):
    expected = tmp_path / "probe.txt"
    table = tmp_path / "counts.tsv"
    assert installed_dists("probe", str(expected), "--update").returncode == 0
    assert installed_dists("probe", str(expected), "--table", str(table), "--size", "1G").returncode == 0
    names = [line for line in expected.read_text().splitlines() if not line.startswith("#")]
    assert names == sorted(names) and "pytest" in names and "pip" not in names
    assert table.read_text().startswith(f"probe\t{len(names)}\t1G")

    expected.write_text(expected.read_text().replace("pytest\n", "") + "heavy-newcomer\n")
    result = installed_dists("probe", str(expected))
    assert result.returncode == 1
    assert "(new: pytest; gone: heavy-newcomer)" in result.stdout
    assert "+pytest" in result.stdout and "-heavy-newcomer" in result.stdout
    assert "tools/ci/update_expected_dists.sh" in result.stdout


def test_the_torch_pin_is_spelled_one_way_everywhere():
    """Bump the pin in pyproject.toml's [dependency-groups] and this lists every stale mention."""
    (pin,) = torch_pin()
    stale = []
    for path in REPO.rglob("*"):
        if path.suffix not in {".md", ".sh", ".py", ".toml", ".txt", ".yml", ".yaml", ""} or not path.is_file():
            continue
        if any(part in {".git", "build", "derived", "node_modules"} or part.startswith(".venv") for part in path.relative_to(REPO).parts):
            continue
        text = path.read_text(errors="ignore")
        stale += [f"{path.relative_to(REPO)}: {found}" for found in re.findall(r"torch==[0-9][0-9.]*[0-9]", text) if found != pin]
    assert not stale, f"the pin is {pin}; stale: {stale}"


def test_hatch_installs_the_same_no_deps_requirements_as_dev_env():
    """tools/dev_env.sh reads each package's [tool.bat-tokenizers] no-deps; hatch's post-install command spells them."""
    import tomllib

    wanted = []
    for pyproject in sorted((REPO / "packages").glob("*/pyproject.toml")):
        wanted += no_deps_requirements(tomllib.loads(pyproject.read_text()))
    hatch = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["envs"]["default"]
    commands = hatch.get("post-install-commands", [])
    assert commands == ([f"python -m pip install --no-deps {' '.join(wanted)}"] if wanted else [])


def committed_list(name: str) -> set[str]:
    return {line.strip() for line in (EXPECTED / f"{name}.txt").read_text().splitlines() if line.strip() and not line.startswith("#")}


def test_every_package_has_its_committed_install_list():
    import tomllib

    for pyproject in (REPO / "packages").glob("*/pyproject.toml"):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        assert (EXPECTED / f"{name}.txt").is_file(), f"no list for {name}: run tools/ci/update_expected_dists.sh"
    assert (EXPECTED / "bat-core+mels.txt").is_file()


@pytest.mark.parametrize("install, absent", [
    ("bat-core", {"torch", "librosa", "scikit-learn", "scipy", "matplotlib", "numba"}),
    ("bat-core+mels", {"torch", "matplotlib"}),
    ("bat-w2v-kmeans", {"scikit-learn", "matplotlib", "librosa"}),
    ("bat-ast-embed", {"scikit-learn", "matplotlib", "librosa"}),
    ("bat-vqvae", {"matplotlib", "tensorboard"}),
])
def test_the_committed_install_lists_keep_lean_installs(install, absent):
    if not (EXPECTED / f"{install}.txt").is_file():
        pytest.fail(f"no list for {install}: run tools/ci/update_expected_dists.sh")
    assert not committed_list(install) & absent
