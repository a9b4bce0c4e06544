#!/usr/bin/env bash
# bat-core as `pip install bat-core` gives it: no torch, no extras. Run by
# tools/ci/isolated_package.sh on the venv of its bare install, before it adds anything:
#   1. torch, librosa, scikit-learn, matplotlib absent; `import bat_core`, `bat-core --help`,
#      `bat-core demo` and `bat-core check` work; `bat-core mels` stops with exit 2 and the
#      pip install hint of the [mels] extra;
#   2. + bat-core[mels] (still no torch): its distributions against
#      tools/ci/expected-dists/bat-core+mels.txt, then `bat-core mels` (and `segment`, once the
#      CLI has it) succeed.
#
#   tools/ci/core_without_torch.sh [--update-expected] VENV CORE_WHEEL WORK_DIR
set -euo pipefail
update_expected=0
if [ "${1:-}" = --update-expected ]; then
  update_expected=1
  shift
fi
venv=$1
core_wheel=$2
work_dir=$3
repo=$(cd "$(dirname "$0")/../.." && pwd)
log="$work_dir/pip-bat-core-mels.log"
rm -f "$log"
# shellcheck source=tools/ci/lib.sh
source "$repo/tools/ci/lib.sh"
bin="$venv/bin"
project="$work_dir/smoke-bat-core"
rm -rf "$project"
failed=()

run() {  # a command that must exit 0; its output only when it does not
  local output status=0
  output=$("$@" 2>&1) || status=$?
  if [ "$status" -eq 0 ]; then
    echo "ok: ${*##*/}"
  else
    echo "$output" | tail -20
    echo "FAIL (exit $status): $*"
    failed+=("${*##*/}")
  fi
}

if [ "$update_expected" = 0 ]; then
  ci_stage "bat-core alone (no extras, no torch)"
  ci_assert_absent "$venv" torch librosa sklearn matplotlib || failed+=("bare install has heavy modules")
  run "$bin/python" -I -c "import bat_core"
  run "$bin/bat-core" --help
  run "$bin/bat-core" demo "$project" --files 4
  run "$bin/bat-core" check --root "$project" -q
  set +e
  message=$("$bin/bat-core" mels --root "$project" -q 2>&1)
  status=$?
  set -e
  if [ "$status" -eq 2 ] && grep -q "pip install 'bat-core\[mels\]'" <<<"$message"; then
    echo "ok: without librosa, bat-core mels exits 2: $(tail -1 <<<"$message")"
  else
    echo "$message" | tail -20
    echo "FAIL: without librosa, bat-core mels should exit 2 saying pip install 'bat-core[mels]' (exit $status)"
    failed+=("mels hint without the extra")
  fi
fi

ci_stage "bat-core[mels] (still no torch)"
ci_pip_install "$venv" "$core_wheel[mels]"
ci_check_dists "$venv" "bat-core[mels]" || failed+=("distributions of bat-core[mels]")
if [ "$update_expected" = 0 ]; then
  ci_assert_absent "$venv" torch matplotlib || failed+=("bat-core[mels] has torch or matplotlib")
  run "$bin/bat-core" mels --root "$project" -q
  if "$bin/bat-core" segment --help >/dev/null 2>&1; then
    run "$bin/bat-core" segment --root "$project" -q
  else
    echo "(bat-core has no segment command yet)"
  fi
fi

if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED (bat-core without torch): $(IFS=';'; echo "${failed[*]}")"
  exit 1
fi
