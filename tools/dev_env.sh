#!/usr/bin/env bash
# A development venv: the torch pin of pyproject.toml (CPU build), then every package under
# packages/ installed editable with all of its extras, and ruff; then each package's
# [tool.bat-tokenizers] no-deps requirements with --no-deps (batdetect2 for bat-core[batdetect2]:
# its metadata asks for torchaudio/torchvision builds that would replace the torch pin).
#   tools/dev_env.sh [VENV_DIR]     (default: .venv)
# `hatch run test` does the same through the workspace in pyproject.toml.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
venv=${1:-"$repo/.venv"}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
mapfile -t torch_pin < <("$python" "$repo/tools/ci/torch_pin.py")
editable=()
no_deps=()
for package in "$repo"/packages/*/; do
  [ -f "$package/pyproject.toml" ] || continue
  extras=$("$python" "$repo/tools/ci/package_info.py" extras "$package")
  editable+=(-e "${package%/}${extras:+[$extras]}")
  mapfile -t -O "${#no_deps[@]}" no_deps < <("$python" "$repo/tools/ci/package_info.py" no-deps "$package")
done
pip_install() { "$venv/bin/python" -m pip install --disable-pip-version-check -q "$@"; }
pip_install "pip>=23.3"  # older pips cannot resolve editable packages with extras that depend on each other
pip_install "${torch_pin[@]}"
pip_install "${editable[@]}" "ruff>=0.6"
if [ "${#no_deps[@]}" -gt 0 ]; then
  pip_install --no-deps "${no_deps[@]}"
fi
"$venv/bin/python" - "${torch_pin[@]}" <<'PY'  # the pin survived every step, or the env is not the one tested
import sys, importlib.metadata as m
want = [r.split("==")[1] for r in sys.argv[1:] if r.startswith("torch==")]
have = m.version("torch")
if want and have.split("+")[0] != want[0]:
    sys.exit(f"dev env: torch {have} installed, the pin is {want[0]}: a dependency replaced it")
PY
echo "dev env ready: $venv"
