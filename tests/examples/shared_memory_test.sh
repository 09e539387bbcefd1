#!/usr/bin/env bash
# The shared-memory example: 4K frames from frames_producer to a frames_consumer process through
# a segment, slot numbers through the manager's queues; no segment is left behind, also when the
# consumer cannot run.
source "$(dirname "$0")/lib.sh"
bin=$1/examples/shared_memory

segments() { ls /dev/shm | grep -c '^psm_' || true; }
before=$(segments)

out=$(timeout 60 "$bin/frames_producer" --frames 40) || fail "producer exited with $?"
mapfile -t lines <<<"$out"
[[ ${#lines[@]} -eq 3 ]] || fail "expected 3 lines, got: $out"
# The consumer's line and the producer's may come in either order.
printf '%s\n' "${lines[@]}" | grep -Eq "^produced 40 frames of 24883200 bytes through 'psm_[0-9a-f]{8}' \(2 slots\)$" ||
  fail "no producer line in: $out"
rate=$(printf '%s\n' "${lines[@]}" | grep -E '^consumed 40 frames: [0-9]+ frames/s, [0-9]+ MiB/s$') ||
  fail "no consumer line in: $out"
[[ "${lines[2]}" == "ok" ]] || fail "last line: '${lines[2]}'"
[[ $(segments) -eq $before ]] || fail "a segment was left in /dev/shm"

# More slots and small frames work the same way.
out=$(timeout 60 "$bin/frames_producer" --frames 500 --slots 5 --frame-bytes 4096) ||
  fail "small frames: producer exited with $?"
[[ "$out" == *"consumed 500 frames"* && "$out" == *ok ]] || fail "small frames: $out"

# A consumer that cannot start fails the producer promptly, and the segment is still removed.
err=$(timeout 60 "$bin/frames_producer" --frames 10 --consumer "$bin/no_such_consumer" 2>&1 >/dev/null) &&
  fail "the producer succeeded without a consumer"
[[ $? -ne 124 ]] || fail "the producer hung without a consumer"
[[ "$err" == *"consumer exited with 127"* || "$err" == *"cannot start"* ]] || fail "missing consumer: '$err'"
[[ $(segments) -eq $before ]] || fail "a failed run left a segment in /dev/shm"

echo "shared_memory example: ok (${rate#consumed 40 frames: })"
