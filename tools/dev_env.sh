#!/usr/bin/env bash
# A development venv: the torch pin of pyproject.toml (CPU build), then every package under
# packages/ installed editable with all of its extras, and ruff.
#   tools/dev_env.sh [VENV_DIR]     (default: .venv)
# `hatch run test` does the same through the workspace in pyproject.toml.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
venv=${1:-"$repo/.venv"}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
mapfile -t torch_pin < <("$python" "$repo/tools/ci/torch_pin.py")
editable=()
for package in "$repo"/packages/*/; do
  [ -f "$package/pyproject.toml" ] || continue
  extras=$("$python" "$repo/tools/ci/package_info.py" extras "$package")
  editable+=(-e "${package%/}${extras:+[$extras]}")
done
pip_install() { "$venv/bin/python" -m pip install --disable-pip-version-check -q "$@"; }
pip_install "pip>=23.3"  # older pips cannot resolve editable packages with extras that depend on each other
pip_install "${torch_pin[@]}"
pip_install "${editable[@]}" "ruff>=0.6"
echo "dev env ready: $venv"
