#!/usr/bin/env bash
# Runs scenarios.txt under Python's SyncManager (the reference) and under zmanager's, and fails
# with the diff when their outputs differ.
# Usage: crosscheck_test.sh ZMANAGER_RUNNER
set -u
here="$(cd "$(dirname "$0")" && pwd)"
runner="${1:?usage: crosscheck_test.sh ZMANAGER_RUNNER}"
scenario="$here/scenarios.txt"
# Debian's interpreter: the one with the system packages (python3 on PATH may be another).
python=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run() {  # name, command...: output to $work/name.out; prints status and time
  local name="$1"
  shift
  local start end rc
  start=$(date +%s%N)
  # Bounded: a hang shows as a truncated output (every line is flushed as it is printed).
  timeout 50 "$@" "$scenario" >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
  end=$(date +%s%N)
  printf '%-8s exit %d in %d ms\n' "$name" "$rc" $(((end - start) / 1000000))
  if [ -s "$work/$name.err" ]; then sed "s/^/  $name stderr: /" "$work/$name.err"; fi
  return $rc
}

run python "$python" "$here/python_runner.py"
python_rc=$?
run zmanager "$runner"
zmanager_rc=$?

if [ $python_rc -ne 0 ]; then
  echo "FAIL: the Python reference run failed (exit $python_rc); its output:"
  cat "$work/python.out"
  exit 1
fi

lines=$(wc -l <"$work/python.out")
if diff -u --label python --label zmanager "$work/python.out" "$work/zmanager.out" >"$work/diff"; then
  if [ $zmanager_rc -ne 0 ]; then
    echo "FAIL: zmanager run exited $zmanager_rc with the same output"
    exit 1
  fi
  echo "PASS: $lines lines identical"
  exit 0
fi
echo "FAIL: zmanager differs from Python's SyncManager ('-' python, '+' zmanager):"
cat "$work/diff"
echo "$(grep -c '^-[^-]' "$work/diff") of $lines reference lines differ"
exit 1
