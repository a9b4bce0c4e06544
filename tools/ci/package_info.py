"""Read a package's distribution name, import name or console script from its pyproject.toml.

Used by the CI scripts so the package list lives in one place: the folders under packages/.
"""

import pathlib
import sys
import tomllib


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
    else:
        sys.exit(f"unknown field {field!r}")


if __name__ == "__main__":
    main()
