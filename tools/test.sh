#!/usr/bin/env bash
# The whole test run, as README.md and .ci/run call it:
#   1. build every package under packages/ into a wheel with hatch;
#   2. each package alone: fresh venv, its wheel + bat-core's, --help, its tests, no other strategy;
#   3. one dev env with every package (editable) runs the cross-package tests in tests/.
# A package joins by existing under packages/. Extra arguments go to the final pytest.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=${BAT_CI_WORK:-"$repo/build/ci"}
mkdir -p "$work"
started=$SECONDS

# Real recordings beside the checkout, when present (tests skip with a reason otherwise).
if [ -z "${BAT_SHARED_BATS:-}" ] && [ -f "$repo/../shared/bats/data/annotations.csv" ]; then
  export BAT_SHARED_BATS=$(cd "$repo/../shared/bats" && pwd)
fi
echo "real recordings: ${BAT_SHARED_BATS:-absent (their tests will skip)}"

echo "== build tools (hatch)"
if [ ! -x "$work/tools-venv/bin/hatch" ]; then
  "$python" -m venv "$work/tools-venv"
  "$work/tools-venv/bin/python" -m pip install --disable-pip-version-check -q "hatch>=1.16" >"$work/pip-tools.log" 2>&1 \
    || { grep -v "^WARNING: Location" "$work/pip-tools.log" | tail -30; exit 1; }
fi

echo "== wheels"
rm -rf "$work/wheels"
mkdir -p "$work/wheels"
packages=()
for package in "$repo"/packages/*/; do
  [ -f "$package/pyproject.toml" ] || continue
  packages+=("${package%/}")
  (cd "$package" && "$work/tools-venv/bin/hatch" build -t wheel "$work/wheels" >/dev/null)
done
ls "$work/wheels"

failed=()
for package in "${packages[@]}"; do
  if ! PYTHON="$python" bash "$repo/tools/ci/isolated_package.sh" "$package" "$work/wheels" "$work"; then
    failed+=("$(basename "$package")")
  fi
done

echo "== dev env: every package editable, cross-package tests in tests/"
PYTHON="$python" bash "$repo/tools/dev_env.sh" "$work/venv-dev" >"$work/pip-dev.log" 2>&1 \
  || { grep -v "^WARNING: Location" "$work/pip-dev.log" | tail -30; echo "FAIL: dev env"; exit 1; }
set +e
(cd "$repo" && "$work/venv-dev/bin/python" -m pytest tests -q -p no:cacheprovider "$@")
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "no cross-package tests collected in tests/"
  status=0
fi
[ "$status" -eq 0 ] || failed+=("tests/")

echo "== $(( SECONDS - started )) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all packages passed alone and together"
