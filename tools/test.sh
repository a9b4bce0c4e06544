#!/usr/bin/env bash
# The whole test run, as README.md and .ci/run call it:
#   1. build every package under packages/ into a wheel with hatch (tools/ci/build_wheels.sh);
#   2. each package alone (tools/ci/isolated_package.sh): fresh venv, its wheel + bat-core's,
#      distributions counted and compared with tools/ci/expected-dists/, --help, bat-core without
#      torch, declared dependencies = imports, its tests, no other strategy importable;
#   3. one dev env with every package (editable, every extra, batdetect2) runs the cross-package tests in
#      tests/, the tests of the CI scripts in tools/ci/ and bat-core's batdetect2 tests;
#   4. a table of each isolated install's distribution count and venv size.
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

echo "== wheels"
PYTHON="$python" bash "$repo/tools/ci/build_wheels.sh" "$work"
packages=()
for package in "$repo"/packages/*/; do
  [ -f "$package/pyproject.toml" ] && packages+=("${package%/}")
done

rm -f "$work/dist-counts.tsv"
# The last run's isolated venvs (GBs of small files) are deleted in the background while this one
# builds new ones; the dev env is kept and updated.
trash="$work/trash-$$"
mkdir -p "$trash"
for old in "$work"/venv-* "$work"/trash-*; do
  [ -e "$old" ] && [ "$old" != "$work/venv-dev" ] && [ "$old" != "$trash" ] && mv "$old" "$trash/"
done
rm -rf "$trash" &
trash_pid=$!
failed=()
for package in "${packages[@]}"; do
  if ! PYTHON="$python" bash "$repo/tools/ci/isolated_package.sh" "$package" "$work/wheels" "$work"; then
    failed+=("$(basename "$package")")
  fi
done

echo "== dev env: every package editable, cross-package tests in tests/, CI script tests in tools/ci/"
PYTHON="$python" bash "$repo/tools/dev_env.sh" "$work/venv-dev" >"$work/pip-dev.log" 2>&1 \
  || { grep -v "^WARNING: Location" "$work/pip-dev.log" | tail -30; echo "FAIL: dev env"; exit 1; }
set +e
# bat-core's batdetect2 tests run here too: only the dev env has batdetect2 (a --no-deps install), the isolated job skips them
(cd "$repo" && "$work/venv-dev/bin/python" -m pytest tests tools/ci packages/core/tests/test_segments_batdetect2.py -q -p no:cacheprovider "$@")
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "no cross-package tests collected in tests/"
  status=0
fi
[ "$status" -eq 0 ] || failed+=("tests/")

echo "== isolated installs (pip, setuptools not counted; venvs without .pyc: pip --no-compile; lists: tools/ci/expected-dists/)"
{ printf 'install\tdistributions\tvenv\n'; cat "$work/dist-counts.tsv" 2>/dev/null; } | column -t -s $'\t'
wait "$trash_pid"
echo "== $(( SECONDS - started )) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all packages passed alone and together"
