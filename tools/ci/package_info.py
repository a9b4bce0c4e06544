"""Read a package's distribution name, import name, console script, extras or torch need from its pyproject.toml.

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


def main() -> None:
    field, package_dir = sys.argv[1], pathlib.Path(sys.argv[2])
    project = tomllib.loads((package_dir / "pyproject.toml").read_text())["project"]
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
    elif field == "needs-torch":  # a required dependency on torch: its venv gets the CPU pin first
        print("yes" if "torch" in {requirement_name(r) for r in project.get("dependencies", [])} else "no")
    else:
        sys.exit(f"unknown field {field!r}")


if __name__ == "__main__":
    main()
