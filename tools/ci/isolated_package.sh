#!/usr/bin/env bash
# One package alone, as a user gets it: fresh venv, CPU torch, then only its wheel and
# bat-core's wheel (never editable). Runs its --help, its own tests against the installed
# wheel, and proves that no other strategy is importable.
#
#   tools/ci/isolated_package.sh PACKAGE_DIR WHEEL_DIR WORK_DIR
set -euo pipefail
package_dir=$(cd "$1" && pwd)
wheel_dir=$2
work_dir=$3
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-python3}

dist=$("$python" "$repo/tools/ci/package_info.py" name "$package_dir")
module=$("$python" "$repo/tools/ci/package_info.py" module "$package_dir")
script=$("$python" "$repo/tools/ci/package_info.py" script "$package_dir")
venv="$work_dir/venv-$dist"
log="$work_dir/pip-$dist.log"

echo "== $dist: fresh venv, torch==2.13.0 (CPU), then $dist + bat-core wheels"
rm -rf "$venv"
"$python" -m venv "$venv"
pip_install() {
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q "$@" >>"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" | tail -40
    echo "FAIL: pip install $* (full log: $log)"
    exit 1
  fi
}
pip_install "torch==2.13.0"
core_wheel=$(ls "$wheel_dir"/bat_core-*.whl)
own_wheel=$(ls "$wheel_dir"/"${dist//-/_}"-*.whl)
# --find-links: bat-core comes from our wheel, never from an index
pip_install --find-links "$wheel_dir" "$core_wheel" "$own_wheel" pytest

echo "== $dist: $script --help"
"$venv/bin/$script" --help >/dev/null

echo "== $dist: no other strategy importable"
"$venv/bin/python" - "$module" "$repo/packages" <<'PY'
import importlib.util, pathlib, sys, tomllib
own, packages = sys.argv[1], pathlib.Path(sys.argv[2])
modules = []
for pyproject in packages.glob("*/pyproject.toml"):
    name = tomllib.loads(pyproject.read_text())["project"]["name"]
    modules.append(name.replace("-", "_"))
leaked = [m for m in modules if m not in (own, "bat_core") and importlib.util.find_spec(m) is not None]
if leaked:
    sys.exit(f"FAIL: {own} installed alone, yet {leaked} importable")
spec = importlib.util.find_spec(own)
if "site-packages" not in (spec.origin or ""):
    sys.exit(f"FAIL: {own} imported from {spec.origin}, not from the installed wheel")
print(f"ok: only {own} and bat_core present, from site-packages")
PY

echo "== $dist: its own tests against the installed wheel"
# Run from an empty folder so nothing from the checkout shadows the installed package.
run_dir="$work_dir/run-$dist"
mkdir -p "$run_dir"
set +e
(cd "$run_dir" && "$venv/bin/python" -m pytest "$package_dir/tests" -q -p no:cacheprovider \
   --rootdir "$package_dir" -c /dev/null --import-mode=importlib -ra)
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "FAIL: $dist has no tests: every package must test itself"
  exit 1
fi
exit "$status"
