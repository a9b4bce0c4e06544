"""Read a package's distribution name, import name, console script, extras, no-deps requirements or torch need
from its pyproject.toml.

Used by the CI scripts so the package list lives in one place: the folders under packages/.
"""

import pathlib
import re
import sys
import tomllib


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement (``bat-core[mels]>=0.1`` -> ``bat-core``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return normalise(match.group(1))


def normalise(name: str) -> str:
    """PEP 503 name: ``Scikit_Learn`` and ``scikit-learn`` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def no_deps_requirements(pyproject: dict) -> list[str]:
    """``[tool.bat-tokenizers] no-deps``: what an extra needs but must not let pip resolve (its metadata would
    replace the torch pin); the dev env installs these with ``pip install --no-deps`` after the extras."""
    return list(pyproject.get("tool", {}).get("bat-tokenizers", {}).get("no-deps", []))


def main() -> None:
    field, package_dir = sys.argv[1], pathlib.Path(sys.argv[2])
    pyproject = tomllib.loads((package_dir / "pyproject.toml").read_text())
    project = pyproject["project"]
    if field == "name":
        print(project["name"])
    elif field == "module":
        print(project["name"].replace("-", "_"))
    elif field == "script":
        scripts = project.get("scripts", {})
        if project["name"] not in scripts:
            sys.exit(f"{package_dir}: console script must equal the distribution name {project['name']!r}")
        print(project["name"])
    elif field == "extras":  # comma-separated, for pip's WHEEL[a,b] form; empty when none
        print(",".join(sorted(project.get("optional-dependencies", {}))))
    elif field == "no-deps":  # installed with pip --no-deps after the extras (batdetect2), one a line; empty when none
        for requirement in no_deps_requirements(pyproject):
            print(requirement)
    elif field == "needs-torch":  # a required dependency on torch: its venv gets the CPU pin first
        print("yes" if "torch" in {requirement_name(r) for r in project.get("dependencies", [])} else "no")
    else:
        sys.exit(f"unknown field {field!r}")


if __name__ == "__main__":
    main()
