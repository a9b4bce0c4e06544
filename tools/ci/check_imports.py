"""A package declares exactly what it imports: fail on a declared dependency that its source never
imports, and on an imported distribution that it does not declare.

Run with the Python of the package's isolated venv, every extra installed, so that
importlib.metadata maps each imported module to the distribution that provides it:

    VENV/bin/python tools/ci/check_imports.py PACKAGE_DIR

Required dependencies and extras must be imported by src/ (the ``test`` extra by src/ or tests/).
Exceptions live in the package's pyproject.toml, each with its reason:
``[tool.bat-tokenizers.dependency-check.not-imported]`` (distribution name = why it is still needed)
and ``[tool.bat-tokenizers.dependency-check.undeclared]`` (import name = who declares it instead).
"""

from __future__ import annotations

import ast
import importlib.metadata
import pathlib
import sys
import tomllib

from package_info import normalise, requirement_name

TEST_EXTRAS = {"test", "tests"}


def imported_modules(folder: pathlib.Path) -> dict[str, str]:
    """Top-level module of every absolute import under ``folder`` -> where it is first imported."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], f"{path.relative_to(folder.parent)}:{node.lineno}")
    return found


def own_modules(src: pathlib.Path) -> set[str]:
    return {path.name for path in src.iterdir() if path.is_dir()} | {path.stem for path in src.glob("*.py")}


def installed_module_distributions() -> dict[str, set[str]]:
    """Import name -> normalised names of the installed distributions that provide it."""
    module_dists = {module: {normalise(dist) for dist in dists} for module, dists in importlib.metadata.packages_distributions().items()}
    for distribution in importlib.metadata.distributions():
        # An editable install (a .pth import hook) lists no top-level modules: assume bat_core <- bat-core.
        name = normalise(distribution.metadata["Name"])
        module_dists.setdefault(name.replace("-", "_"), {name})
    return module_dists


def declared_dependencies(project: dict) -> dict[str, str]:
    """Normalised distribution name -> where it is declared (``dependencies`` or ``extra [name]``)."""
    declared = {requirement_name(requirement): "dependencies" for requirement in project.get("dependencies", [])}
    for extra, requirements in sorted(project.get("optional-dependencies", {}).items()):
        for requirement in requirements:
            declared.setdefault(requirement_name(requirement), f"extra [{extra}]")
    return declared


def check(package_dir: pathlib.Path) -> list[str]:
    pyproject = tomllib.loads((package_dir / "pyproject.toml").read_text())
    project = pyproject["project"]
    exceptions = pyproject.get("tool", {}).get("bat-tokenizers", {}).get("dependency-check", {})
    not_imported = {normalise(name): why for name, why in exceptions.get("not-imported", {}).items()}
    undeclared_ok = dict(exceptions.get("undeclared", {}))
    own_name = normalise(project["name"])
    src = package_dir / "src"
    own = own_modules(src)
    declared = declared_dependencies(project)
    module_dists = installed_module_distributions()

    def used_distributions(imports: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        used: dict[str, str] = {}
        unknown: dict[str, str] = {}
        for module, place in imports.items():
            if module in own or module in sys.stdlib_module_names:
                continue
            if module not in module_dists:
                unknown[module] = place
            for dist in module_dists.get(module, ()):
                used.setdefault(dist, place)
        return used, unknown

    src_imports = imported_modules(src)
    used_by_src, unknown_in_src = used_distributions(src_imports)
    used_by_tests, _ = used_distributions(imported_modules(package_dir / "tests")) if (package_dir / "tests").is_dir() else ({}, {})
    problems = []
    for dist, where in sorted(declared.items()):
        is_test_extra = where.removeprefix("extra [").removesuffix("]") in TEST_EXTRAS
        used = dist in used_by_src or (is_test_extra and dist in used_by_tests)
        if dist in not_imported:
            if used:
                place = used_by_src.get(dist) or used_by_tests[dist]
                problems.append(f"{dist}: listed under not-imported, yet imported at {place}: drop the exception")
        elif not used:
            problems.append(f"{dist} ({where}) is declared but never imported by {'src/ or tests/' if is_test_extra else 'src/'}: "
                            "drop it, or say why under [tool.bat-tokenizers.dependency-check.not-imported]")
    for name in sorted(set(not_imported) - set(declared)):
        problems.append(f"{name}: listed under not-imported, but not declared: drop the exception")
    module_of_dist = {dist: module for module in src_imports for dist in module_dists.get(module, ())}
    for dist, place in sorted(used_by_src.items()):
        if dist != own_name and dist not in declared and module_of_dist[dist] not in undeclared_ok:
            problems.append(f"{dist} is imported ({place}) but not declared: add it to [project] dependencies or an extra")
    for module, place in sorted(unknown_in_src.items()):
        if module not in undeclared_ok:
            problems.append(f"{module} is imported ({place}) but no installed distribution provides it: declare it")
    for module in sorted(undeclared_ok):
        if module not in src_imports:
            problems.append(f"{module}: listed under undeclared, but src/ never imports it: drop the exception")
    return problems


def main() -> None:
    package_dir = pathlib.Path(sys.argv[1]).resolve()
    problems = check(package_dir)
    if problems:
        print(f"FAIL: {package_dir.name}: dependencies and imports disagree:")
        print("\n".join(f"  - {problem}" for problem in problems))
        sys.exit(1)
    project = tomllib.loads((package_dir / "pyproject.toml").read_text())["project"]
    print(f"ok: each of the {len(declared_dependencies(project))} declared dependencies is imported, and each imported distribution is declared")


if __name__ == "__main__":
    main()
