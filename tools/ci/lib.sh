# Shell helpers of the CI scripts (sourced, not run). The caller sets:
#   repo             the checkout
#   work_dir         where venvs, logs and dist-counts.tsv live
#   update_expected  1: rewrite tools/ci/expected-dists/*.txt instead of comparing
#   log              the pip log of the venv in hand

# pip into a venv; on failure the log's tail, then exit 1. --no-compile: byte-compiling all of
# torch and transformers at install time costs more than the installs themselves; Python compiles
# what a test imports.
ci_pip_install() {
  local venv=$1
  shift
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q --no-compile "$@" >>"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" | tail -40
    echo "FAIL: pip install $* (full log: $log)"
    exit 1
  fi
}

# The torch pin of the repository's pyproject.toml, as pip arguments (array torch_pin).
ci_read_torch_pin() {
  mapfile -t torch_pin < <("${PYTHON:-python3}" "$repo/tools/ci/torch_pin.py")
  [ "${#torch_pin[@]}" -gt 0 ] || { echo "FAIL: no torch pin in $repo/pyproject.toml"; exit 1; }
}

# Count a venv's distributions and compare them with the committed list of LABEL
# (bat-core[mels] -> tools/ci/expected-dists/bat-core+mels.txt); returns 1 when they differ.
ci_check_dists() {
  local venv=$1 label=$2
  local file="$repo/tools/ci/expected-dists/$(echo "$label" | sed 's/\[/+/; s/,/+/g; s/\]//').txt"
  local size
  size=$(du -sh "$venv" | cut -f1)
  local update=()
  [ "${update_expected:-0}" = 1 ] && update=(--update)
  "$venv/bin/python" "$repo/tools/ci/installed_dists.py" "$label" "$file" \
    --table "$work_dir/dist-counts.tsv" --size "$size" "${update[@]}"
}

# Fail (return 1) when any of the named modules is importable in the venv.
ci_assert_absent() {
  local venv=$1
  shift
  "$venv/bin/python" -I -c '
import importlib.util, sys
present = [name for name in sys.argv[1:] if importlib.util.find_spec(name) is not None]
if present:
    sys.exit(f"FAIL: installed, yet must not be: {present}")
print(f"ok: not installed: {sys.argv[1:]}")' "$@"
}

# A stage's title, with the seconds since the script started (where the time goes, in the CI log).
ci_stage() {
  echo "== $* [${SECONDS} s]"
}
