#!/usr/bin/env bash
# Regenerate the committed distribution lists (tools/ci/expected-dists/*.txt) from fresh isolated
# installs of every package (or of the package folders given), without running their tests.
# Review `git diff tools/ci/expected-dists` before committing: a new name is a new dependency.
#   tools/ci/update_expected_dists.sh [PACKAGE_DIR...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${BAT_CI_WORK:-"$repo/build/ci"}
bash "$repo/tools/ci/build_wheels.sh" "$work" >/dev/null
packages=("$@")
[ "${#packages[@]}" -gt 0 ] || packages=("$repo"/packages/*/)
rm -f "$work/dist-counts.tsv"
for package in "${packages[@]}"; do
  [ -f "$package/pyproject.toml" ] || continue
  bash "$repo/tools/ci/isolated_package.sh" --update-expected "$package" "$work/wheels" "$work"
done
column -t -s $'\t' "$work/dist-counts.tsv"
git -C "$repo" status --short -- tools/ci/expected-dists
