#!/usr/bin/env bash
# README's main command: set up a dev env if needed, write the synthetic demo corpus, check it,
# run every strategy on it and write the evaluation report. Outputs: demo_project/derived/.
#   tools/demo.sh [PROJECT_DIR]    (default: demo_project)
# Pretrained encoders cannot be downloaded everywhere: set BAT_W2V_MODEL / BAT_AST_MODEL to local
# checkpoint folders to use them; otherwise small random-weight encoders are made and said so.
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
export HF_HUB_DISABLE_PROGRESS_BARS=1
notes=()

echo "== demo corpus -> $project"
"$bin/bat-core" demo "$project" --overwrite
echo "== dataset check"
"$bin/bat-core" check --root "$project"
echo "== log-mel spectrograms"
"$bin/bat-core" mels --root "$project"
echo "== call detection, scored against the corpus's true call boxes"
"$bin/bat-core" segment --root "$project" --evaluate "$project/data/calls.csv"

# A local checkpoint when given, else a random-weight encoder, said plainly (sets $model, adds a report note).
choose_model() {  # $1 variable naming a local checkpoint, $2 bat_core.testing builder, $3 strategy, $4 its outputs
  local given=${!1:-}
  if [ -n "$given" ]; then model=$given; return; fi
  model="$project/models/random-$3"
  "$bin/python" -c "import sys, bat_core.testing as t; t.$2(sys.argv[1])" "$model" >/dev/null
  local message="$3 uses a small encoder with RANDOM weights (no pretrained checkpoint here; set $1): its $4 carry no learned meaning"
  echo "NOTE: $message"; notes+=(--note "$message")
}

if [ -x "$bin/bat-vqvae" ]; then
  echo "== bat-vqvae: train on the demo mels, then encode"
  "$bin/bat-vqvae" train --root "$project" --steps "${BAT_DEMO_VQ_STEPS:-300}" --overwrite  # the demo retrains on each run
  "$bin/bat-vqvae" encode --root "$project"
  echo "== bat-vqvae: encode each detected call alone (derived/calls/vqvae-calls.parquet, one row per call)"
  "$bin/bat-vqvae" encode --root "$project" --segments detected
fi

if [ -x "$bin/bat-w2v-kmeans" ]; then
  choose_model BAT_W2V_MODEL make_tiny_speech_encoder w2v_kmeans tokens
  echo "== bat-w2v-kmeans: fit a 32-code codebook and encode"
  "$bin/bat-w2v-kmeans" run --root "$project" --model "$model" --k 32 --dedup
fi

if [ -x "$bin/bat-hubert" ] && [ -x "$bin/bat-w2v-kmeans" ]; then
  echo "== bat-hubert: pretrain an encoder on the calls detected above, then tokenize the recordings with it"
  "$bin/bat-hubert" pretrain --root "$project" --segments detected --epochs "${BAT_DEMO_HUBERT_EPOCHS:-10}" --overwrite
  "$bin/bat-w2v-kmeans" run --root "$project" --model "$project/derived/models/bat_hubert" --layer 0 --k 64 \
    --tag bat_hubert --overwrite
fi

if [ -x "$bin/bat-ast-embed" ]; then
  choose_model BAT_AST_MODEL make_tiny_ast ast embeddings
  echo "== bat-ast-embed: embed"
  "$bin/bat-ast-embed" embed --root "$project" --model "$model" --max-frames auto
fi

echo "== evaluation report"
"$bin/bat-core" evaluate --root "$project" --label call_type --group site "${notes[@]}"
echo "== done: $project/derived/report/report.md (manifests in $project/derived/manifests)"
