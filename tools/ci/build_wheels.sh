#!/usr/bin/env bash
# Build every package under packages/ into a wheel with hatch: WORK_DIR/wheels/.
#   tools/ci/build_wheels.sh WORK_DIR
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-python3}
work_dir=$(mkdir -p "$1" && cd "$1" && pwd)
if [ ! -x "$work_dir/tools-venv/bin/hatch" ]; then
  "$python" -m venv "$work_dir/tools-venv"
  "$work_dir/tools-venv/bin/python" -m pip install --disable-pip-version-check -q "hatch>=1.16.3" >"$work_dir/pip-tools.log" 2>&1 \
    || { grep -v "^WARNING: Location" "$work_dir/pip-tools.log" | tail -30; exit 1; }
fi
rm -rf "$work_dir/wheels"
mkdir -p "$work_dir/wheels"
for package in "$repo"/packages/*/; do
  [ -f "$package/pyproject.toml" ] || continue
  build_log="$work_dir/build-$(basename "$package").log"
  (cd "$package" && "$work_dir/tools-venv/bin/hatch" build -t wheel "$work_dir/wheels" >"$build_log" 2>&1) \
    || { tail -30 "$build_log"; echo "FAIL: hatch build $package"; exit 1; }
done
ls "$work_dir/wheels"
