"""Compare the distributions of an isolated install with their committed, reviewed list.

Run with the Python of the venv under test, so that importlib.metadata sees that venv only:

    VENV/bin/python tools/ci/installed_dists.py LABEL EXPECTED_FILE [--update] [--table FILE] [--size SIZE]

Names are normalised and sorted, versions left out (a new heavy dependency is the change worth a
review, a new release is not); pip and setuptools come with the venv, not with the package.
``--update`` rewrites EXPECTED_FILE instead of comparing; ``--table`` appends LABEL, the count and
SIZE to a tab-separated summary that tools/test.sh prints at the end.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import pathlib
import sys

from package_info import normalise

NOT_THE_PACKAGES = {"pip", "setuptools"}
REGENERATE = "tools/ci/update_expected_dists.sh"


def installed_distributions() -> list[str]:
    names = {normalise(distribution.metadata["Name"]) for distribution in importlib.metadata.distributions()}
    return sorted(names - NOT_THE_PACKAGES)


def read_expected(path: pathlib.Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def write_expected(path: pathlib.Path, label: str, names: list[str]) -> None:
    header = (f"# Distributions of the isolated install {label} (Linux x86-64, CPU torch, CI's Python),\n"
              f"# names only, pip and setuptools left out. Review a change, then regenerate: {REGENERATE}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(f"{name}\n" for name in names))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("label")
    parser.add_argument("expected", type=pathlib.Path)
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--table", type=pathlib.Path)
    parser.add_argument("--size", default="?")
    args = parser.parse_args()
    names = installed_distributions()
    print(f"{args.label}: {len(names)} distributions, venv {args.size}")
    if args.table:
        with args.table.open("a") as table:
            table.write(f"{args.label}\t{len(names)}\t{args.size}\n")
    if args.update:
        write_expected(args.expected, args.label, names)
        print(f"wrote {args.expected}")
        return
    if not args.expected.is_file():
        sys.exit(f"FAIL: {args.label}: no committed list {args.expected}; write it with {REGENERATE}")
    expected = read_expected(args.expected)
    if names != expected:
        added = sorted(set(names) - set(expected))
        removed = sorted(set(expected) - set(names))
        print(f"FAIL: {args.label} installs other distributions than {args.expected} lists"
              f" (new: {', '.join(added) or 'none'}; gone: {', '.join(removed) or 'none'}):")
        sys.stdout.writelines(difflib.unified_diff([f"{name}\n" for name in expected], [f"{name}\n" for name in names],
                                                   fromfile=f"expected {args.expected.name}", tofile=f"installed {args.label}", n=1))
        print(f"If the change is wanted, regenerate the lists ({REGENERATE}) and commit them with it.")
        sys.exit(1)
    print(f"ok: {args.label} installs what {args.expected.name} lists")


if __name__ == "__main__":
    main()
