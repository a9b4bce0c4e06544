"""Print the torch pin (one requirement a line) from the repository's pyproject.toml.

The pin is spelled once, in the root ``[dependency-groups] torch``, which hatch and
``pip install --group torch`` (pip >= 25.1) read directly; the shell scripts read it here.
"""

import pathlib
import tomllib

ROOT_PYPROJECT = pathlib.Path(__file__).resolve().parents[2] / "pyproject.toml"


def torch_pin() -> list[str]:
    return tomllib.loads(ROOT_PYPROJECT.read_text())["dependency-groups"]["torch"]


if __name__ == "__main__":
    print("\n".join(torch_pin()))
