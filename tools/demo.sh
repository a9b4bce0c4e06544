#!/usr/bin/env bash
# README's main command: set up a dev env if needed, write the synthetic demo corpus,
# check it, and run every stage on it. Outputs: demo_project/derived/.
#   tools/demo.sh [PROJECT_DIR]    (default: demo_project)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
project=${1:-"$repo/demo_project"}
venv=${BAT_VENV:-"$repo/.venv"}
if [ ! -x "$venv/bin/bat-core" ]; then
  echo "== setting up $venv (CPU torch + every package, editable; once)"
  bash "$repo/tools/dev_env.sh" "$venv" 2>&1 | grep -v "^WARNING: Location" || true
  [ -x "$venv/bin/bat-core" ] || { echo "setup failed: see messages above"; exit 1; }
fi
bin="$venv/bin"

echo "== demo corpus -> $project"
"$bin/bat-core" demo "$project"
echo "== dataset check"
"$bin/bat-core" check --root "$project"
echo "== log-mel spectrograms"
"$bin/bat-core" mels --root "$project"
echo "== done: outputs under $project/derived (manifests in $project/derived/manifests)"
