"""Every package under packages/ follows the same layout and stays independent."""

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (REPO / "packages").iterdir() if (p / "pyproject.toml").is_file())
STRATEGY_MODULES = {p.name: tomllib.loads((p / "pyproject.toml").read_text())["project"]["name"].replace("-", "_")
                    for p in PACKAGES}


def project(package: Path) -> dict:
    return tomllib.loads((package / "pyproject.toml").read_text())


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_layout(package):
    meta = project(package)
    name = meta["project"]["name"]
    module = name.replace("-", "_")
    for required in ("README.md", "CHANGELOG.md", f"src/{module}/__about__.py", f"src/{module}/py.typed", "tests"):
        assert (package / required).exists(), f"{package.name}: missing {required}"
    assert meta["tool"]["hatch"]["version"]["path"] == f"src/{module}/__about__.py"
    assert meta["project"]["scripts"][name] == f"{module}.cli:main", "the CLI name equals the distribution name"
    assert list((package / "tests").glob("test_*.py")), f"{package.name} has no tests"


@pytest.mark.parametrize("package", [p for p in PACKAGES if p.name != "core"], ids=lambda p: p.name)
def test_strategies_depend_on_core_by_range_and_on_no_other_strategy(package):
    dependencies = project(package)["project"]["dependencies"]
    core = [d for d in dependencies if re.match(r"bat-core\b", d)]
    assert core and "<" in core[0] and ">=" in core[0], f"bat-core needs a range, got {core}"
    others = [m for p, m in STRATEGY_MODULES.items() if p not in ("core", package.name)]
    for source in (package / "src").rglob("*.py"):
        text = source.read_text()
        for other in others:
            assert not re.search(rf"^\s*(from|import)\s+{other}\b", text, re.M), f"{source} imports {other}"


def test_core_imports_no_strategy():
    strategies = [m for p, m in STRATEGY_MODULES.items() if p != "core"]
    for source in (REPO / "packages" / "core" / "src").rglob("*.py"):
        for other in strategies:
            assert not re.search(rf"^\s*(from|import)\s+{other}\b", source.read_text(), re.M)


def test_readme_opens_with_exactly_two_commands():
    text = (REPO / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["bash tools/demo.sh", "bash tools/test.sh"]
    assert "bash tools/test.sh" in (REPO / ".ci" / "run").read_text()


def test_the_dev_env_has_batdetect2_and_kept_the_torch_pin():
    """tools/dev_env.sh installs batdetect2 with --no-deps after the extras: torch stays the pin, batdetect2.api imports."""
    pytest.importorskip("batdetect2", reason="not a dev env from tools/dev_env.sh (no batdetect2): bat-core's own tests cover it")
    import sys

    import torch

    (pin,) = [r for r in tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]["torch"] if r.startswith("torch==")]
    assert torch.__version__.split("+")[0] == pin.split("==")[1]
    import batdetect2.api  # noqa: F401

    assert "torchaudio" not in sys.modules and "torchvision" not in sys.modules
