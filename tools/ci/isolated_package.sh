#!/usr/bin/env bash
# One package alone, as a user gets it, from its wheel (never editable):
#   1. fresh venv; the torch pin first when the package requires torch; then its wheel (and
#      bat-core's): what `pip install <dist>` gives. Its distributions are counted and compared
#      with tools/ci/expected-dists/<dist>.txt; its --help answers.
#   2. bat-core only: tools/ci/core_without_torch.sh (demo, check, and mels with [mels], no torch).
#   3. every extra, the torch pin and pytest: the declared dependencies are what src/ imports
#      (tools/ci/check_imports.py), no other strategy is importable, its own tests pass.
#
#   tools/ci/isolated_package.sh [--update-expected] PACKAGE_DIR WHEEL_DIR WORK_DIR
# --update-expected rewrites the expected lists of steps 1-2 and stops there
# (tools/ci/update_expected_dists.sh does it for every package).
set -euo pipefail
update_expected=0
if [ "${1:-}" = --update-expected ]; then
  update_expected=1
  shift
fi
package_dir=$(cd "$1" && pwd)
wheel_dir=$(cd "$2" && pwd)
work_dir=$(mkdir -p "$3" && cd "$3" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-python3}
# shellcheck source=tools/ci/lib.sh
source "$repo/tools/ci/lib.sh"

info() { "$python" "$repo/tools/ci/package_info.py" "$1" "$package_dir"; }
dist=$(info name)
module=$(info module)
script=$(info script)
extras=$(info extras)
venv="$work_dir/venv-$dist"
log="$work_dir/pip-$dist.log"
failed=()
ci_read_torch_pin

core_wheel=$(ls "$wheel_dir"/bat_core-*.whl)
own_wheel=$(ls "$wheel_dir"/"${dist//-/_}"-*.whl)
wheels=("$own_wheel")
[ "$dist" = bat-core ] || wheels+=("$core_wheel")  # the file, so bat-core never comes from an index

first=()
[ "$(info needs-torch)" = yes ] && first=("${torch_pin[@]}")
ci_stage "$dist: fresh venv, ${first[*]:-no torch}, then ${wheels[*]##*/}"
rm -rf "$venv" "$log"
"$python" -m venv "$venv"
if [ "${#first[@]}" -gt 0 ]; then
  ci_pip_install "$venv" "${first[@]}"  # first, as a user must: the CPU build, not a CUDA one
fi
ci_pip_install "$venv" "${wheels[@]}"
ci_check_dists "$venv" "$dist" || failed+=("distributions of $dist")
"$venv/bin/$script" --help >/dev/null || failed+=("$script --help")

if [ "$dist" = bat-core ]; then
  update=()
  [ "$update_expected" = 1 ] && update=(--update-expected)
  bash "$repo/tools/ci/core_without_torch.sh" "${update[@]}" "$venv" "$core_wheel" "$work_dir" || failed+=("bat-core without torch")
fi

if [ "$update_expected" = 1 ]; then
  [ "${#failed[@]}" -eq 0 ] || { echo "FAILED ($dist): ${failed[*]}"; exit 1; }
  exit 0
fi

ci_stage "$dist: + extras [${extras}], ${torch_pin[*]}, pytest"
ci_pip_install "$venv" "${torch_pin[@]}"
ci_pip_install "$venv" "$own_wheel${extras:+[$extras]}" "${wheels[@]:1}" pytest

ci_stage "$dist: declared dependencies = imports"
"$venv/bin/python" "$repo/tools/ci/check_imports.py" "$package_dir" || failed+=("dependencies of $dist")

ci_stage "$dist: no other strategy importable"
"$venv/bin/python" - "$module" "$repo/packages" <<'PY' || failed+=("other strategies importable")
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
print(f"ok: {own} from site-packages; no other strategy importable")
PY

ci_stage "$dist: its own tests against the installed wheel"
# Run from an empty folder so nothing from the checkout shadows the installed package; the
# package folder on PYTHONPATH (it holds src/, never bat_*/) lets spawned worker processes import
# the test modules (tests.test_x) whose classes they unpickle.
run_dir="$work_dir/run-$dist"
mkdir -p "$run_dir"
set +e
(cd "$run_dir" && PYTHONPATH="$package_dir" "$venv/bin/python" -m pytest "$package_dir/tests" -q -p no:cacheprovider \
   --rootdir "$package_dir" -c /dev/null --import-mode=importlib -ra)
status=$?
set -e
if [ "$status" -eq 5 ]; then
  failed+=("no tests: every package must test itself")
elif [ "$status" -ne 0 ]; then
  failed+=("tests of $dist")
fi
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED ($dist): $(IFS=';'; echo "${failed[*]}")"
  exit 1
fi
