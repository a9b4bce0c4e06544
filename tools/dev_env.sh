#!/usr/bin/env bash
# A development venv with CPU torch and every package under packages/ installed editable.
#   tools/dev_env.sh [VENV_DIR]     (default: .venv)
# `hatch run test` does the same through the workspace in pyproject.toml.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
venv=${1:-"$repo/.venv"}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
editable=()
for package in "$repo"/packages/*/; do
  [ -f "$package/pyproject.toml" ] && editable+=(-e "${package%/}")
done
"$venv/bin/python" -m pip install --disable-pip-version-check -q "torch==2.13.0"
"$venv/bin/python" -m pip install --disable-pip-version-check -q "${editable[@]}" \
  pytest ruff "transformers>=4.40" "matplotlib>=3.7"
echo "dev env ready: $venv"
