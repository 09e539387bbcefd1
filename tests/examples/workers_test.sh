#!/usr/bin/env bash
# The workers pattern: a coordinator starts a SyncManager and four worker processes that share a
# task queue, a results dict, a lock-protected counter and a barrier between two phases.
source "$(dirname "$0")/lib.sh"
bin=$1/examples/workers
# The coordinator's key, as a user would set it; the coordinator passes it on to its workers
# in their environment.
export ZMANAGER_AUTHKEY="workers-test-$$"

out=$(timeout 100 "$bin/workers_coordinator" --workers 4 --tasks 40) || fail "coordinator exited with $?"
mapfile -t lines <<<"$out"
[[ ${#lines[@]} -eq 3 ]] || fail "expected 3 lines, got: $out"
# How the 40 tasks were split among the workers varies from run to run.
[[ "${lines[0]}" =~ ^"phase 1: 40 tasks by 4 workers ("[0-9]+\+[0-9]+\+[0-9]+\+[0-9]+"), counter 40"$ ]] ||
  fail "phase 1 line: '${lines[0]}'"
# 0^2 + 1^2 + ... + 39^2
[[ "${lines[1]}" == "phase 2: 4 partial sums, total 20540" ]] || fail "phase 2 line: '${lines[1]}'"
[[ "${lines[2]}" == "ok" ]] || fail "last line: '${lines[2]}'"

# A worker that cannot run makes the coordinator fail, and promptly.
expect_failure() {
  local what=$1; shift
  local err; err=$(timeout 60 "$@" 2>&1 >/dev/null) && fail "$what: the coordinator succeeded"
  [[ $? -ne 124 ]] || fail "$what: the coordinator hung"
  echo "$err"
}
err=$(expect_failure "missing worker" "$bin/workers_coordinator" --worker "$bin/no_such_worker")
[[ "$err" == *"cannot start"* ]] || fail "missing worker: '$err'"
err=$(expect_failure "failing worker" "$bin/workers_coordinator" --worker /bin/false)
[[ "$err" == *"exited with status 1"* ]] || fail "failing worker: '$err'"

echo "workers example: ok (${lines[0]#phase 1: })"
