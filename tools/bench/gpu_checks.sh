#!/usr/bin/env bash
# Issue 10's GPU checks in one go, on a machine with one CUDA GPU and many cores, each side by side:
#   1. feeding: the whole w2v `run` with a zero-cost encoder at 1, 8 and 15 decoding workers
#      (target: > 6000 model-audio-s/s on a 16-core machine);
#   2. w2v + k-means on 500 files x15: `run` (model load excluded) against the bare bf16 forward
#      (target >= 50%) and against the naive per-file recipe (target >= 10x, on >= 30 min of audio);
#   3. where the main process's time goes in the feeding run (cProfile, 8 workers);
#   4. the demo (every CLI, --device auto = cuda) as a smoke test of the CUDA paths;
#   5. per_call: per-call vs whole-file encoding of the real recordings, base-size models (issue 12);
#   6. vqvae_gpu: VQ-VAE training crops/s at the GPU defaults vs the naive recipe, with usage (issue 16);
#   7. ray_scaling: mels on Ray with 1 and 8 CPUs (issue 15: >= 5x);
#   8. ray_gpu: one GPU actor fed by Ray tasks vs the bare bf16 forward (issue 15: >= 50%);
#   9. vqvae_long: usage at 160k crops seen, GPU defaults (issue 16);
#  10. hubert_tokens: bat-hubert tokens vs random weights vs MFCC + k-means, default epochs, and GPU pretraining
#      throughput (issue 14).
# Each part has its own time limit and log; a part that fails does not stop the others.
#   tools/bench/gpu_checks.sh OUT_DIR [WHEEL_DIR] [PARTS]
# PARTS: comma-separated names of the parts to run (default: all of them).
# WHEEL_DIR (default .whl): the bat-* wheels and the audio libraries the machine lacks, installed
# into /tmp/site without an index; WHEEL_DIR/ray/ (when present): Ray and what it needs beyond the image. Real recordings: $BAT_SHARED_BATS (else the demo corpus is cycled).
set -uo pipefail
out=${1:?usage: gpu_checks.sh OUT_DIR [WHEEL_DIR] [PARTS]}
wheels=${2:-.whl}
parts=${3:-feeding,w2v_kmeans,feeding_profile,demo,per_call,vqvae_gpu}
mkdir -p "$out"
extra_wheels=()
[ -d "$wheels/ray" ] && extra_wheels=("$wheels"/ray/*.whl)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$wheels"/*.whl "${extra_wheels[@]}" \
  || { echo "installing the wheels failed"; exit 1; }
# tools/demo.sh calls $BAT_VENV/bin/python: a wrapper (a link to a venv's python outside the venv loses its packages)
printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v python3)" >/tmp/site/bin/python && chmod +x /tmp/site/bin/python
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_DISABLE_PROGRESS_BARS=1
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "cores: $(nproc)"
  python3 -c "import sys, torch, transformers, numpy; print('python', sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'numpy', numpy.__version__)"
} 2>&1 | tee "$out/machine.txt"

part() {  # $1 name, $2 seconds, rest: the command
  local name=$1 limit=$2; shift 2
  case ",$parts," in *",$name,"*) ;; *) return 0 ;; esac
  echo "== $name (limit ${limit} s)"
  local started=$SECONDS
  timeout "$limit" "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  tail -n 25 "$out/$name.txt"
  echo "== $name: exit $rc after $((SECONDS - started)) s"
}

echo "real recordings: ${BAT_SHARED_BATS:-absent (the demo corpus is cycled)}"
part feeding 100 python3 tools/bench/w2v_feeding.py --files 500 --workers-list 1,8,15 --device cuda
part w2v_kmeans 180 python3 tools/bench/w2v_kmeans.py --files 500 --device cuda --json "$out/w2v_kmeans.json"
part feeding_profile 60 python3 tools/bench/w2v_feeding.py --files 500 --workers-list 8 --device cuda --profile 30
BAT_VENV=/tmp/site BAT_DEMO_VQ_STEPS=100 part demo 90 bash tools/demo.sh /tmp/gpu-demo
part per_call 200 python3 tools/bench/per_call.py --device cuda --size base --workers 8
part vqvae_gpu 240 python3 tools/bench/vqvae_gpu.py --crops 40000 --device cuda
part ray_scaling 240 python3 tools/bench/ray_engine.py --mode scaling --files 1200 --cpus-list 1,8
part ray_gpu 360 python3 tools/bench/ray_engine.py --mode gpu --files 400
part vqvae_long 150 python3 tools/bench/vqvae_gpu.py --crops 160000 --device cuda --device-row-only
part hubert_tokens 480 python3 tools/bench/hubert_tokens.py
